//! Denoising-score-matching training on a tiny synthetic dataset.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use burn::tensor::{Device, Int, Tensor, TensorData};
use qcs_data::{Dataset, ImageSpec};
use qcs_score_net::train::{
    dsm_loss, resume, train, Checkpoint, TrainConfig, CHECKPOINTS_DIR, EMA_WEIGHTS, LOSS_LOG,
};
use qcs_score_net::{load_safetensors, NcsnV2, NcsnV2Config, ScoreNetError};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

const SIDE: usize = 8;

/// 64 gray 8×8 images, each a Gaussian blob (width 1.2 px) at a random centre.
fn blobs() -> Dataset {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let count = 64;
    let mut pixels = Vec::with_capacity(count * SIDE * SIDE);
    for _ in 0..count {
        let (cx, cy): (f32, f32) = (rng.random_range(2.0..6.0), rng.random_range(2.0..6.0));
        for y in 0..SIDE {
            for x in 0..SIDE {
                let d2 = (x as f32 - cx).powi(2) + (y as f32 - cy).powi(2);
                pixels.push((-d2 / (2.0 * 1.2 * 1.2)).exp());
            }
        }
    }
    let names = (0..count).map(|i| i.to_string()).collect();
    Dataset::new(ImageSpec::square(1, SIDE), pixels, names).expect("consistent dataset")
}

fn tiny_config(steps: usize) -> TrainConfig {
    let model = NcsnV2Config::new()
        .with_ngf(4)
        .with_image_size(SIDE)
        .with_num_levels(4)
        .with_sigma_begin(1.0)
        .with_sigma_end(0.05);
    TrainConfig::new(model, steps)
        .with_batch_size(16)
        .with_learning_rate(2e-3)
        .with_ema_rate(0.9)
        .with_checkpoint_every(100)
        .with_log_every(50)
        .with_level_buckets(2)
        .with_seed(3)
}

/// The DSM loss of `model` on the first 32 images with fixed levels and noise.
fn evaluation_loss(model: &NcsnV2, data: &Dataset, device: &Device) -> f32 {
    let count = 32;
    let size = data.spec().len();
    let images = data.pixels()[..count * size].to_vec();
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    let noise: Vec<f32> = (0..count * size)
        .map(|_| rng.sample::<f32, _>(StandardNormal))
        .collect();
    let levels: Vec<i64> = (0..count as i64).map(|i| i % 4).collect();
    let shape = [count, 1, SIDE, SIDE];
    let loss = dsm_loss(
        model,
        Tensor::from_data(TensorData::new(images, shape), device),
        Tensor::<1, Int>::from_data(TensorData::new(levels, [count]), device),
        Tensor::from_data(TensorData::new(noise, shape), device),
    );
    loss.mean.into_scalar::<f32>()
}

#[test]
fn a_few_hundred_steps_lower_the_loss_on_a_fixed_batch() {
    let device = Device::flex();
    let data = blobs();
    let config = tiny_config(300);
    let dir = tempfile::tempdir().expect("temp dir");
    let stop = AtomicBool::new(false);
    // A run of no step writes its initial weights; resuming it trains from exactly those.
    let start =
        train(&tiny_config(0), &data, dir.path(), &device, |_| {}, &stop).expect("initialized");
    let initial = load_safetensors(&config.model, &start.ema_weights, &device).expect("weights");
    let before = evaluation_loss(&initial, &data, &device);

    let started = Instant::now();
    let mut last_step = 0;
    let outcome = resume(
        dir.path(),
        &data,
        &device,
        Some(300),
        |p| last_step = p.step,
        &stop,
    )
    .expect("trained");
    let per_step = started.elapsed().as_secs_f64() / 300.0;
    assert_eq!(
        (outcome.step, last_step, outcome.stopped),
        (300, 300, false)
    );

    let trained = load_safetensors(&config.model, &outcome.ema_weights, &device).expect("EMA");
    let after = evaluation_loss(&trained, &data, &device);
    eprintln!(
        "DSM loss {before:.3} -> {after:.3}, {:.1} ms/step",
        per_step * 1e3
    );
    assert!(after < 0.6 * before, "loss {before} -> {after}");

    let log = std::fs::read_to_string(dir.path().join(LOSS_LOG)).expect("loss log");
    assert!(
        log.starts_with("step,bucket,mean_loss,count\n50,0,"),
        "{log}"
    );
    assert_eq!(log.lines().count(), 1 + 6 * 2);
}

#[test]
fn the_stop_flag_ends_the_run_with_a_checkpoint() {
    let device = Device::flex();
    let data = blobs();
    let dir = tempfile::tempdir().expect("temp dir");
    let stop = AtomicBool::new(false);
    let outcome = train(
        &tiny_config(50),
        &data,
        dir.path(),
        &device,
        |p| {
            if p.step == 3 {
                stop.store(true, Ordering::Relaxed);
            }
        },
        &stop,
    )
    .expect("stopped cleanly");
    assert!(outcome.stopped);
    assert_eq!(outcome.step, 3);
    assert_eq!(
        Checkpoint::latest(dir.path()).expect("listable"),
        Some(outcome.checkpoint.clone())
    );
    assert_eq!(
        outcome.checkpoint.dir.parent(),
        Some(dir.path().join(CHECKPOINTS_DIR).as_path())
    );
    assert!(dir.path().join(EMA_WEIGHTS).is_file());
    let ema = outcome.checkpoint.load_ema(&device).expect("EMA loads");
    assert_eq!(ema.sigmas().dims(), [4]);
}

#[test]
fn a_run_that_dies_leaves_its_last_checkpoints_ema_weights() {
    // The run panics after step 3 (as if killed): no end-of-run write happens, and the EMA
    // weights on disk are those of the step-2 checkpoint, whole.
    let device = Device::flex();
    let data = blobs();
    let dir = tempfile::tempdir().expect("temp dir");
    let stop = AtomicBool::new(false);
    let config = tiny_config(50).with_checkpoint_every(2);
    let died = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        train(
            &config,
            &data,
            dir.path(),
            &device,
            |p| assert!(p.step < 3, "killed after step {}", p.step),
            &stop,
        )
    }));
    assert!(died.is_err(), "the run should have died at step 3");
    let checkpoint = Checkpoint::latest(dir.path())
        .expect("listable")
        .expect("the step-2 checkpoint");
    assert_eq!(checkpoint.step, 2);
    let saved = load_safetensors(&config.model, dir.path().join(EMA_WEIGHTS), &device)
        .expect("whole EMA weights");
    let ema = checkpoint.load_ema(&device).expect("EMA loads");
    assert_eq!(
        crate::train_resume::parameter_values(&saved),
        crate::train_resume::parameter_values(&ema)
    );
    assert!(!dir.path().join(format!(".{EMA_WEIGHTS}.partial")).exists());
}

#[test]
fn a_run_folder_is_not_trained_over_and_a_resume_needs_a_checkpoint() {
    let device = Device::flex();
    let data = blobs();
    let dir = tempfile::tempdir().expect("temp dir");
    let stop = AtomicBool::new(false);
    let result = resume(dir.path(), &data, &device, None, |_| {}, &stop);
    assert!(matches!(result, Err(ScoreNetError::NoCheckpoint { .. })));
    train(&tiny_config(2), &data, dir.path(), &device, |_| {}, &stop).expect("trained");
    let again = train(&tiny_config(2), &data, dir.path(), &device, |_| {}, &stop);
    assert!(matches!(again, Err(ScoreNetError::RunExists { .. })));
}

#[test]
fn images_of_another_size_are_rejected() {
    let device = Device::flex();
    let dir = tempfile::tempdir().expect("temp dir");
    let data = Dataset::new(
        ImageSpec::square(3, SIDE),
        vec![0.5; 3 * 64],
        vec!["x".into()],
    )
    .expect("consistent dataset");
    let stop = AtomicBool::new(false);
    match train(&tiny_config(2), &data, dir.path(), &device, |_| {}, &stop) {
        Err(ScoreNetError::DatasetMismatch { expected, found }) => {
            assert_eq!((expected, found), ([1, 8, 8], [3, 8, 8]));
        }
        other => panic!(
            "expected a dataset mismatch, got {:?}",
            other.map(|o| o.step)
        ),
    }
}

/// Cuts the file in half.
fn truncate(path: &Path) {
    let bytes = std::fs::read(path).expect("readable");
    std::fs::write(path, &bytes[..bytes.len() / 2]).expect("writable");
}

#[test]
fn a_truncated_checkpoint_file_is_a_typed_error_naming_it() {
    let device = Device::flex();
    let data = blobs();
    let stop = AtomicBool::new(false);
    for file in [
        "model.bpk",
        "optimizer.bpk",
        "ema.bpk",
        "config.json",
        "state.json",
    ] {
        let dir = tempfile::tempdir().expect("temp dir");
        let outcome =
            train(&tiny_config(2), &data, dir.path(), &device, |_| {}, &stop).expect("trained");
        let path = outcome.checkpoint.dir.join(file);
        truncate(&path);
        match resume(dir.path(), &data, &device, Some(4), |_| {}, &stop) {
            Err(ScoreNetError::CorruptCheckpoint { path: reported, .. }) => {
                assert_eq!(reported, path)
            }
            other => panic!(
                "{file}: expected a corrupt checkpoint, got {:?}",
                other.map(|o| o.step)
            ),
        }
    }
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("listable") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[cfg(unix)]
#[test]
fn written_files_are_readable_by_everyone() {
    use std::os::unix::fs::PermissionsExt;
    let device = Device::flex();
    let dir = tempfile::tempdir().expect("temp dir");
    let stop = AtomicBool::new(false);
    train(
        &tiny_config(2),
        &blobs(),
        dir.path(),
        &device,
        |_| {},
        &stop,
    )
    .expect("trained");
    let files = files_under(dir.path());
    assert!(files.iter().any(|f| f.ends_with(EMA_WEIGHTS)));
    assert!(files.iter().any(|f| f.ends_with("ema.bpk")));
    let private: Vec<String> = files
        .iter()
        .map(|file| {
            let mode = std::fs::metadata(file).expect("stat").permissions().mode() & 0o777;
            (file, mode)
        })
        .filter(|&(_, mode)| mode != 0o644)
        .map(|(file, mode)| format!("{} {mode:o}", file.display()))
        .collect();
    assert!(private.is_empty(), "not 0644: {private:?}");
}

/// Three training steps from the same weights on every test backend (`QCS_TEST_BACKENDS`: flex and
/// ndarray by default, wgpu in the GPU pass, where the ELU and InstanceNorm++ are tracked operations
/// with hand-written backward passes, Adam and the EMA are kernels and the weights are stored
/// channels-last) follow the CPU run: the same losses step by step and the same EMA weights, within
/// float rounding carried through three Adam steps (an Adam step moves each weight by about the
/// learning rate whatever the gradient's size, so rounding can flip the sign of a near-zero
/// gradient's step: the weights compare in relative L2 of their change).
#[test]
fn training_steps_on_every_backend_follow_the_cpu() {
    let data = blobs();
    let stop = AtomicBool::new(false);
    let flex = Device::flex();
    let start_dir = tempfile::tempdir().expect("temp dir");
    let start = train(
        &tiny_config(0),
        &data,
        start_dir.path(),
        &flex,
        |_| {},
        &stop,
    )
    .expect("initialized");
    let init = start.ema_weights.to_str().expect("UTF-8 path").to_string();
    let config = tiny_config(3)
        .with_log_every(1)
        .with_checkpoint_every(10)
        .with_init(Some(init));
    let run = |device: &Device| {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut losses = Vec::new();
        let outcome = train(
            &config,
            &data,
            dir.path(),
            device,
            |p| losses.extend(p.loss),
            &stop,
        )
        .expect("trained");
        let ema = load_safetensors(&config.model, &outcome.ema_weights, &flex).expect("EMA");
        (losses, floats_of(&ema))
    };
    let initial = floats_of(
        &load_safetensors(&config.model, &start.ema_weights, &flex).expect("initial weights"),
    );
    let (cpu_losses, cpu_ema) = run(&flex);
    assert_eq!(cpu_losses.len(), 3, "{cpu_losses:?}");
    for (name, device) in qcs_testkit::devices() {
        let (losses, ema) = run(&device);
        for (step, (got, want)) in losses.iter().zip(&cpu_losses).enumerate() {
            assert!(
                (got - want).abs() <= 1e-3 * want.abs(),
                "{name}, step {}: loss {got} against the CPU's {want}",
                step + 1
            );
        }
        let change =
            |w: &[f64]| -> Vec<f64> { w.iter().zip(&initial).map(|(a, b)| a - b).collect() };
        let error = qcs_testkit::rel_l2(&change(&ema), &change(&cpu_ema));
        assert!(
            error < 1e-2,
            "{name}: EMA change off by {error:.2e} (relative L2)"
        );
    }
}

/// Every float parameter of `model`, in module order, as f64.
fn floats_of(model: &NcsnV2) -> Vec<f64> {
    use burn::module::{Module, ModuleVisitor, Param};
    struct Collect(Vec<f64>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0.extend(qcs_testkit::host(param.val()));
        }
    }
    let mut collect = Collect(Vec::new());
    model.visit(&mut collect);
    collect.0
}
