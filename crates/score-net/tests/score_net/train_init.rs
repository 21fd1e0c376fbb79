//! A run started from saved weights (`TrainConfig::init`) trains those weights.

use std::sync::atomic::AtomicBool;

use burn::module::Module;
use burn::store::ModuleRecord;
use burn::tensor::{Device, Int, Tensor, TensorData};
use qcs_data::{Dataset, ImageSpec};
use qcs_score_net::train::{train, TrainConfig};
use qcs_score_net::{load_safetensors, save_safetensors, NcsnV2, NcsnV2Config, ScoreNetError};

use crate::train_resume::parameter_values;

const SIDE: usize = 8;
const LEARNING_RATE: f64 = 1e-3;

fn checkers() -> Dataset {
    let count = 10;
    let pixels = (0..count * SIDE * SIDE)
        .map(|i| ((i % SIDE + i / SIDE + i / (SIDE * SIDE)) % 2) as f32)
        .collect();
    let names = (0..count).map(|i| i.to_string()).collect();
    Dataset::new(ImageSpec::square(1, SIDE), pixels, names).expect("consistent dataset")
}

fn network() -> NcsnV2Config {
    NcsnV2Config::new()
        .with_ngf(4)
        .with_image_size(SIDE)
        .with_num_levels(3)
        .with_sigma_begin(1.0)
        .with_sigma_end(0.1)
}

fn config(steps: usize, init: &std::path::Path) -> TrainConfig {
    TrainConfig::new(network(), steps)
        .with_batch_size(4)
        .with_learning_rate(LEARNING_RATE)
        .with_ema_rate(0.5)
        .with_seed(5)
        .with_init(Some(init.to_string_lossy().into_owned()))
}

/// The largest absolute change of a parameter value from `a` to `b`, and how many values changed
/// (over all values, the `sigmas` included: they never change).
fn changes(a: &NcsnV2, b: &NcsnV2) -> (f32, usize) {
    let (x, y) = (parameter_values(a), parameter_values(b));
    assert_eq!(x.len(), y.len());
    let differences: Vec<f32> = x.iter().zip(&y).map(|(p, q)| (p - q).abs()).collect();
    let moved = differences.iter().filter(|d| **d > 0.0).count();
    (differences.iter().copied().fold(0.0, f32::max), moved)
}

/// Random weights unlike the ones the run's seed would draw, saved as SafeTensors.
fn saved_weights(dir: &std::path::Path, device: &Device) -> (std::path::PathBuf, NcsnV2) {
    device.seed(12_345);
    let model = network().init(device).expect("valid config");
    let path = dir.join("init.safetensors");
    save_safetensors(&model, &path).expect("saved");
    let loaded = load_safetensors(&network(), &path, device).expect("loaded");
    (path, loaded)
}

#[test]
fn a_run_from_saved_weights_moves_them_by_adam_sized_steps() {
    let device = Device::flex();
    let dir = tempfile::tempdir().expect("temp dir");
    let (path, init) = saved_weights(dir.path(), &device);
    let stop = AtomicBool::new(false);
    let run = dir.path().join("run");
    let outcome = train(&config(2, &path), &checkers(), &run, &device, |_| {}, &stop)
        .expect("a run from saved weights");
    assert_eq!(outcome.step, 2);

    let record = ModuleRecord::load(outcome.checkpoint.dir.join("model.bpk")).expect("record");
    let trained = network()
        .init(&device)
        .expect("valid config")
        .try_load_record(record)
        .expect("record fits");
    // Adam moves every value by at most about the learning rate per step; random weights drawn
    // by the run's own seed would be O(0.1) away.
    let (largest, moved) = changes(&init, &trained);
    assert!(
        largest > 0.0 && largest <= 2.5 * LEARNING_RATE as f32,
        "{largest}"
    );
    assert!(moved > 100, "only {moved} values changed");

    // The EMA (rate ½) starts at the saved weights and trails the model.
    let ema = load_safetensors(&network(), &outcome.ema_weights, &device).expect("EMA");
    let (largest, _) = changes(&init, &ema);
    assert!(
        largest > 0.0 && largest <= 2.5 * LEARNING_RATE as f32,
        "{largest}"
    );
    let recorded = outcome.checkpoint.config().expect("config.json");
    assert_eq!(recorded.init.as_deref(), Some(&*path.to_string_lossy()));
}

#[test]
fn weights_for_another_schedule_or_network_are_refused() {
    let device = Device::flex();
    let dir = tempfile::tempdir().expect("temp dir");
    let (path, _) = saved_weights(dir.path(), &device);
    let stop = AtomicBool::new(false);
    let data = checkers();
    // Each start is refused before it writes a run: the error, for `config` in the folder `run`.
    let refused = |config: &TrainConfig, run: &str| {
        train(config, &data, dir.path().join(run), &device, |_| {}, &stop).expect_err(run)
    };

    let mut other_schedule = config(1, &path);
    other_schedule.model.sigma_end = 0.2;
    let error = refused(&other_schedule, "another schedule");
    assert!(
        matches!(error, ScoreNetError::InitScheduleMismatch { level: 1, .. }),
        "{error}"
    );
    assert!(error.to_string().contains("init.safetensors"), "{error}");

    for (ngf, run) in [(6, "not a multiple"), (2, "narrower")] {
        let mut other_width = config(1, &path);
        other_width.model.ngf = ngf;
        let error = refused(&other_width, run);
        assert!(
            matches!(error, ScoreNetError::CannotWiden { from: 4, to } if to == ngf),
            "{error}"
        );
    }

    let error = refused(
        &config(1, &dir.path().join("missing.safetensors")),
        "no such file",
    );
    assert!(error.to_string().contains("missing.safetensors"), "{error}");
}

#[test]
fn a_wider_run_starts_from_the_narrow_weights_widened() {
    let device = Device::flex();
    let dir = tempfile::tempdir().expect("temp dir");
    let (path, narrow) = saved_weights(dir.path(), &device);
    let mut wider = config(1, &path);
    wider.model.ngf = 8;
    // Stopped before its first step, the run writes its starting network as the EMA weights.
    let stop = AtomicBool::new(true);
    let run = dir.path().join("run");
    let outcome =
        train(&wider, &checkers(), &run, &device, |_| {}, &stop).expect("a widening start");
    assert_eq!((outcome.step, outcome.stopped), (0, true));
    let wide = load_safetensors(&wider.model, &outcome.ema_weights, &device).expect("ngf 8");
    let x = Tensor::<4>::from_data(
        TensorData::new(
            (0..2 * SIDE * SIDE)
                .map(|k| 0.5 + 0.5 * (0.61 * k as f32).cos())
                .collect::<Vec<f32>>(),
            [2, 1, SIDE, SIDE],
        ),
        &device,
    );
    let levels = Tensor::<1, Int>::from_ints([0, 2], &device);
    let scores = |model: &NcsnV2| {
        model
            .forward(x.clone(), levels.clone())
            .into_data()
            .try_to_vec::<f32>()
            .expect("f32")
    };
    let (expected, found) = (scores(&narrow), scores(&wide));
    let diff: f32 = expected
        .iter()
        .zip(&found)
        .map(|(a, b)| (a - b).powi(2))
        .sum();
    let norm: f32 = expected.iter().map(|a| a * a).sum();
    assert!((diff / norm).sqrt() < 1e-4, "{}", (diff / norm).sqrt());
}

#[test]
fn sigmas_rounded_to_half_precision_start_a_run_on_the_exact_schedule() {
    let device = Device::flex();
    let dir = tempfile::tempdir().expect("temp dir");
    let (_, mut model) = saved_weights(dir.path(), &device);
    // An f16 file (such as the reference checkpoint) keeps 11 significant bits of each σ.
    model.sigmas = model.sigmas.map(|s| s.mul_scalar(1.0 + 4.5e-4));
    let path = dir.path().join("half.safetensors");
    save_safetensors(&model, &path).expect("saved");
    let stop = AtomicBool::new(false);
    let run = dir.path().join("run");
    let outcome = train(&config(1, &path), &checkers(), &run, &device, |_| {}, &stop)
        .expect("a run from rounded σ");
    let ema = load_safetensors(&network(), &outcome.ema_weights, &device).expect("EMA");
    let sigmas = ema.sigmas().into_data().try_to_vec::<f32>().expect("f32");
    let exact: Vec<f32> = network()
        .sigma_schedule()
        .into_iter()
        .map(|s| s as f32)
        .collect();
    assert_eq!(sigmas, exact);
}

#[test]
fn a_warm_up_scales_the_first_step_by_its_rate() {
    // Adam's first step moves each value by lr·|g|/(|g| + ε), so the largest move is the step's
    // learning rate to a few parts in 10⁶: with a 4-step warm-up, a quarter of the constant run's.
    let device = Device::flex();
    let dir = tempfile::tempdir().expect("temp dir");
    let (path, init) = saved_weights(dir.path(), &device);
    let first_step = |config: TrainConfig, run: &str| {
        let stop = AtomicBool::new(false);
        let outcome = train(
            &config.with_ema_rate(0.0),
            &checkers(),
            dir.path().join(run),
            &device,
            |_| stop.store(true, std::sync::atomic::Ordering::Relaxed),
            &stop,
        )
        .expect(run);
        assert_eq!((outcome.step, outcome.stopped), (1, true));
        let ema = load_safetensors(&network(), &outcome.ema_weights, &device).expect("EMA");
        changes(&init, &ema).0 as f64
    };
    let constant = first_step(config(4, &path), "constant");
    let warm = first_step(config(4, &path).with_warmup_steps(Some(4)), "warm-up");
    let decay = first_step(
        config(4, &path).with_learning_rate_end(Some(0.0)),
        "cosine decay",
    );
    assert!((constant / LEARNING_RATE - 1.0).abs() < 1e-4, "{constant}");
    assert!((warm / constant - 0.25).abs() < 1e-4, "{warm} / {constant}");
    // A decay starts at the peak rate.
    assert!(
        (decay / constant - 1.0).abs() < 1e-4,
        "{decay} / {constant}"
    );
}
