//! Every test backend against the CPU reference (flex), on wgpu in the GPU pass and on ndarray in the CPU
//! passes: the same seed, network, operator and measurements give the same QCS-SGM posterior mean within
//! float tolerance, and the same QCS-SGM+ (EP) likelihood score. EP stops each image's iterations when they
//! change less than a tolerance, a discontinuous test that rounding can flip, so whole EP chains are
//! compared call by call rather than end to end.

use crate::common;

use burn::prelude::*;
use qcs_likelihood::{EpConfig, EpScore, LikelihoodScore, Observation, QcsSgmScore};
use qcs_sampler::{sample_posterior, LangevinConfig, LevelSubset, LikelihoodWeight, StepControl};
use qcs_sensing::{
    build_operator, simulate, Family, ImageShape, OperatorSpec, QuantizerSpec, StepRule,
};

struct Problem {
    net: qcs_score_net::NcsnV2,
    op: Box<dyn qcs_sensing::Operator>,
    obs: Observation,
}

fn problem(device: &Device) -> Problem {
    let net = common::fixture_network(device);
    let shape = ImageShape::new(1, 28, 28).unwrap();
    let spec = OperatorSpec {
        family: Family::Gaussian,
        measurements: 200,
        image: shape,
        seed: 1,
    };
    let op = build_operator(&spec, device).unwrap();
    let truth: Vec<f32> = (0..2 * 784)
        .map(|k| {
            let (r, c) = (
                ((k % 784) / 28) as f32 - 14.0,
                (k % 28) as f32 - 12.0 - (k / 784) as f32,
            );
            (-(r * r + c * c) / 30.0).exp()
        })
        .collect();
    let x = Tensor::from_data(TensorData::new(truth, [2, 784]), device);
    let quantizer = QuantizerSpec::Uniform {
        bits: 2,
        step: StepRule::FromData,
    };
    let set = simulate(
        op.as_ref(),
        x,
        quantizer,
        0.05,
        2,
        vec!["a".into(), "b".into()],
    )
    .unwrap();
    let obs = Observation::from_set(&set, device);
    Problem { net, op, obs }
}

fn posterior_mean(device: &Device) -> Vec<f64> {
    let Problem { net, op, obs } = problem(device);
    let shape = ImageShape::new(1, 28, 28).unwrap();
    let config = LangevinConfig {
        steps_per_level: 2,
        epsilon: 2e-4,
        weight: LikelihoodWeight::Fixed(1.0),
        levels: LevelSubset::Count { count: 5 },
        step_control: StepControl::Curvature,
        final_denoise: true,
        chains: 2,
        seed: 4,
        first_image: 0,
    };
    let posterior = sample_posterior(
        &net,
        Some((&QcsSgmScore::default(), op.as_ref(), &obs)),
        &config,
        2,
        shape,
        &mut |_| {},
    )
    .unwrap();
    common::host(posterior.mean)
}

#[test]
fn every_backend_samples_like_the_cpu_reference() {
    let reference = posterior_mean(&qcs_testkit::reference_device());
    assert!(reference.iter().all(|v| v.is_finite()));
    for (name, device) in qcs_testkit::devices() {
        let diff = qcs_testkit::max_abs_diff(&posterior_mean(&device), &reference);
        println!("{name}: max |Δ| = {diff:.2e}");
        assert!(
            diff < 2e-3,
            "{name}: posterior means differ from flex by {diff:.2e}"
        );
    }
}

fn ep_scores(device: &Device) -> Vec<f64> {
    let Problem { op, obs, .. } = problem(device);
    let ep = EpScore {
        config: EpConfig::for_bits(Some(2)),
    };
    let x: Vec<f32> = (0..2 * 784)
        .map(|k| ((k * 37) % 101) as f32 / 100.0)
        .collect();
    let x = Tensor::<4>::from_data(TensorData::new(x, [2, 1, 28, 28]), device);
    [5.0, 0.5, 0.05]
        .into_iter()
        .flat_map(|sigma| common::host(ep.score(op.as_ref(), &obs, sigma, x.clone()).unwrap()))
        .collect()
}

#[test]
fn every_backend_scores_like_the_cpu_reference_under_ep() {
    let reference = ep_scores(&qcs_testkit::reference_device());
    for (name, device) in qcs_testkit::devices() {
        let error = qcs_testkit::rel_l2(&ep_scores(&device), &reference);
        println!("{name}: relative L2 error {error:.2e}");
        assert!(
            error < 1e-4,
            "{name}: EP scores differ from flex by {error:.2e}"
        );
    }
}
