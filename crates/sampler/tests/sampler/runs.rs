//! Properties of a run that hold whatever the problem: determinism, the NFE count, progress reports and
//! rejected inputs.

use crate::common::{devices, host, linear_observation, operator};
use burn::prelude::*;
use qcs_likelihood::{Observation, QcsSgmScore};
use qcs_sampler::{
    sample_posterior, GaussianPrior, LangevinConfig, LevelSubset, LikelihoodWeight, NoiseSchedule,
    Posterior, Progress, SamplerError,
};
use qcs_sensing::operator::DenseOperator;
use qcs_sensing::ImageShape;

const M: usize = 3;

/// The two images' linear measurements, M each.
const Y: [f64; 2 * M] = [0.1, -0.2, 0.3, 0.0, 0.4, -0.1];

fn shape() -> ImageShape {
    ImageShape::new(1, 2, 2).unwrap()
}

fn prior(device: &Device) -> GaussianPrior {
    let sigmas = NoiseSchedule::new(2.0, 0.01, 20).unwrap().sigmas();
    GaussianPrior::new(vec![0.5; 4], vec![0.02; 4], [1, 2, 2], sigmas, device).unwrap()
}

fn measurements(device: &Device) -> (DenseOperator, Observation) {
    let a: Vec<f64> = (0..M * 4)
        .map(|k| ((k * 7 % 5) as f64 - 2.0) / 3.0)
        .collect();
    (
        operator(&a, M, [1, 2, 2], device),
        linear_observation(&Y, 2, M, 0.05, device),
    )
}

fn config(seed: u64) -> LangevinConfig {
    LangevinConfig {
        steps_per_level: 3,
        epsilon: 1e-5,
        weight: LikelihoodWeight::NormRatio(0.5),
        levels: LevelSubset::Count { count: 7 },
        chains: 3,
        seed,
        ..LangevinConfig::default()
    }
}

fn run(device: &Device, config: &LangevinConfig) -> (Posterior, Vec<Progress>) {
    let (a, y) = measurements(device);
    let mut reports = Vec::new();
    let posterior = sample_posterior(
        &prior(device),
        Some((&QcsSgmScore::default(), &a, &y)),
        config,
        2,
        shape(),
        &mut |p| reports.push(p),
    )
    .unwrap();
    (posterior, reports)
}

fn bits(t: Tensor<5>) -> Vec<u32> {
    host(t).iter().map(|&v| (v as f32).to_bits()).collect()
}

#[test]
fn same_seed_gives_bit_identical_samples_on_each_backend() {
    for (name, device) in devices() {
        let first = bits(run(&device, &config(7)).0.samples);
        let second = bits(run(&device, &config(7)).0.samples);
        let other = bits(run(&device, &config(8)).0.samples);
        assert_eq!(first, second, "{name}");
        assert_ne!(first, other, "{name}");
        assert_eq!(first.len(), 2 * 3 * 4);
    }
}

#[test]
fn nfe_is_visited_levels_times_steps_and_progress_reports_every_step() {
    for (name, device) in devices() {
        let (posterior, reports) = run(&device, &config(1));
        assert_eq!(posterior.nfe, 7 * 3, "{name}");
        assert_eq!(reports.len(), 21, "{name}");
        assert_eq!(
            reports.last(),
            Some(&Progress {
                level: 19,
                step: 21,
                total: 21
            })
        );
        assert_eq!(reports[0].level, 0);
        let denoised = LangevinConfig {
            final_denoise: true,
            levels: LevelSubset::Stride { stride: 4 },
            ..config(1)
        };
        let (posterior, reports) = run(&device, &denoised);
        assert_eq!(posterior.nfe, 5 * 3 + 1, "{name}");
        assert_eq!(reports.len(), 15, "{name}");
    }
}

#[test]
fn outputs_are_clamped_and_one_chain_has_no_spread() {
    for (name, device) in devices() {
        let single = LangevinConfig {
            chains: 1,
            ..config(2)
        };
        let (posterior, _) = run(&device, &single);
        assert!(posterior.std.is_none(), "{name}");
        assert_eq!(posterior.mean.dims(), [2, 1, 2, 2]);
        assert!(host(posterior.samples)
            .iter()
            .all(|v| (0.0..=1.0).contains(v)));
    }
}

#[test]
fn mismatched_measurements_and_shapes_are_rejected() {
    let device = &devices()[0].1;
    let (a, y) = measurements(device);
    let score = QcsSgmScore::default();
    let prior = prior(device);
    let one_image = sample_posterior(
        &prior,
        Some((&score, &a, &y)),
        &config(0),
        1,
        shape(),
        &mut |_| {},
    );
    assert!(matches!(one_image, Err(SamplerError::ShapeMismatch { .. })));
    let wrong_shape = sample_posterior(
        &prior,
        None,
        &config(0),
        1,
        ImageShape::new(1, 3, 3).unwrap(),
        &mut |_| {},
    );
    assert!(matches!(
        wrong_shape,
        Err(SamplerError::ShapeMismatch { .. })
    ));
    let too_many_levels = LangevinConfig {
        levels: LevelSubset::Count { count: 21 },
        ..config(0)
    };
    let rejected = sample_posterior(&prior, None, &too_many_levels, 1, shape(), &mut |_| {});
    assert!(matches!(rejected, Err(SamplerError::InvalidConfig(_))));
}

/// Runs image `which` of the two measured images alone (`first_image` = its index), or both at once.
fn run_images(device: &Device, config: &LangevinConfig, which: Option<usize>) -> Vec<f64> {
    let (a, _) = measurements(device);
    let (rows, images, first) = match which {
        Some(i) => (&Y[i * M..(i + 1) * M], 1, i as u64),
        None => (&Y[..], 2, 0),
    };
    let obs = linear_observation(rows, images, M, 0.05, device);
    let config = LangevinConfig {
        first_image: first,
        ..*config
    };
    let posterior = sample_posterior(
        &prior(device),
        Some((&QcsSgmScore::default(), &a, &obs)),
        &config,
        images,
        shape(),
        &mut |_| {},
    )
    .unwrap();
    host(posterior.samples)
}

fn assert_close(a: &[f64], b: &[f64], what: &str) {
    let diff = qcs_testkit::max_abs_diff(a, b);
    assert!(diff < 1e-5, "{what}: max |Δ| = {diff}");
}

#[test]
fn an_image_draws_the_same_noise_whatever_its_batch_and_chain_count() {
    for (name, device) in devices() {
        // A fixed likelihood weight: each image's drift depends on its own row only.
        let fixed = LangevinConfig {
            weight: LikelihoodWeight::Fixed(0.5),
            ..config(9)
        };
        let both = run_images(&device, &fixed, None);
        let (first, second) = both.split_at(both.len() / 2);
        assert_close(first, &run_images(&device, &fixed, Some(0)), name);
        assert_close(second, &run_images(&device, &fixed, Some(1)), name);
        // The chains of one image differ, and chain 0 of three is the one chain of a one-chain run.
        let per_chain = first.len() / 3;
        assert!(
            first[..per_chain] != first[per_chain..2 * per_chain],
            "{name}"
        );
        let one_chain = LangevinConfig { chains: 1, ..fixed };
        assert_close(
            &first[..per_chain],
            &run_images(&device, &one_chain, Some(0)),
            name,
        );
    }
}
