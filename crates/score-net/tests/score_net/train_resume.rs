//! Interrupting and resuming a run changes nothing. (Alone in its test binary: the initial
//! weights come from the device's global random generator, which other tests would share.)

use std::path::Path;
use std::sync::atomic::AtomicBool;

use burn::module::{Module, ModuleVisitor, Param};
use burn::store::ModuleRecord;
use burn::tensor::{Device, Tensor};
use qcs_data::{Dataset, ImageSpec};
use qcs_score_net::train::{resume, train, TrainConfig, EMA_WEIGHTS};
use qcs_score_net::{load_safetensors, NcsnV2, NcsnV2Config};

const SIDE: usize = 8;

fn stripes() -> Dataset {
    let count = 12;
    let pixels = (0..count * SIDE * SIDE)
        .map(|i| ((i / SIDE + i / (SIDE * SIDE)) % 3) as f32 / 2.0)
        .collect();
    let names = (0..count).map(|i| i.to_string()).collect();
    Dataset::new(ImageSpec::square(1, SIDE), pixels, names).expect("consistent dataset")
}

fn config(steps: usize) -> TrainConfig {
    let model = NcsnV2Config::new()
        .with_ngf(4)
        .with_image_size(SIDE)
        .with_num_levels(3)
        .with_sigma_begin(1.0)
        .with_sigma_end(0.1);
    TrainConfig::new(model, steps)
        .with_batch_size(5)
        .with_learning_rate(1e-3)
        .with_ema_rate(0.8)
        .with_horizontal_flip(true)
        .with_grad_clip(Some(5.0))
        .with_checkpoint_every(4)
        .with_seed(11)
}

/// Every parameter value of a network (`sigmas` included), in traversal order.
pub(crate) fn parameter_values(model: &NcsnV2) -> Vec<f32> {
    #[derive(Default)]
    struct Values(Vec<f32>);

    impl ModuleVisitor for Values {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let values = param.val().into_data().try_to_vec::<f32>().expect("f32");
            self.0.extend(values);
        }
    }

    let mut values = Values::default();
    model.visit(&mut values);
    values.0
}

/// The largest absolute difference between two networks' parameters.
fn max_difference(a: &NcsnV2, b: &NcsnV2) -> f32 {
    let (a, b) = (parameter_values(a), parameter_values(b));
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// The network saved in a checkpoint record.
fn record(path: &Path, config: &NcsnV2Config, device: &Device) -> NcsnV2 {
    let record = ModuleRecord::load(path).expect("readable record");
    config
        .init(device)
        .expect("valid config")
        .try_load_record(record)
        .expect("record fits")
}

#[test]
fn two_halves_with_a_resume_equal_one_straight_run() {
    let device = Device::flex();
    let data = stripes();
    let stop = AtomicBool::new(false);

    let straight = tempfile::tempdir().expect("temp dir");
    let whole =
        train(&config(10), &data, straight.path(), &device, |_| {}, &stop).expect("straight run");

    let split = tempfile::tempdir().expect("temp dir");
    let half = train(&config(5), &data, split.path(), &device, |_| {}, &stop).expect("first half");
    assert_eq!(half.step, 5);
    let rest = resume(split.path(), &data, &device, Some(10), |_| {}, &stop).expect("resumed");
    assert_eq!(rest.step, 10);

    // Compared by value: the files also hold parameter ids and (SafeTensors) metadata in hash
    // order, which differ between runs.
    let model = config(10).model;
    for file in ["model.bpk", "ema.bpk"] {
        let difference = max_difference(
            &record(&whole.checkpoint.dir.join(file), &model, &device),
            &record(&rest.checkpoint.dir.join(file), &model, &device),
        );
        assert_eq!(difference, 0.0, "{file}");
    }
    let difference = max_difference(
        &load_safetensors(&model, &whole.ema_weights, &device).expect("EMA weights"),
        &load_safetensors(&model, &rest.ema_weights, &device).expect("EMA weights"),
    );
    assert_eq!(difference, 0.0, "{EMA_WEIGHTS}");
}
