//! The stress grid (tiny network): bits 1–8 and linear, σ ∈ {0, 1e-4, 0.05, 0.5}, M ∈ {1, 10, N/2, N, 2N},
//! every operator family at its extremes (κ = 1e6, ρ = 0.95), QCS-SGM and QCS-SGM+. Every likelihood score
//! of every step must be finite, and every reconstruction finite and in [0, 1].
//!
//! The grid is covered in two parts so it stays fast: all bit depths × all noise levels × both methods at
//! M = N/2 (Gaussian), and all M × all operator families × both methods at 1 bit, 3 bits and linear.
//! On a GPU backend (lavapipe in CI) the corners run, with three noise levels each instead of five:
//! bits 1, 8 and linear at σ ∈ {0, 0.5}, and every family at M ∈ {1, 2N} with 3 bits; and the prior is a
//! per-pixel Gaussian on the network's noise levels instead of the network, whose every level costs about
//! 2 s there. What this grid stresses is the likelihood, which runs on the GPU either way; the network's
//! wgpu path has its own tests (the reference fixtures in the score-net tests, the CLI's end-to-end runs).

use crate::common;

use std::cell::Cell;

use burn::prelude::*;
use qcs_likelihood::{EpConfig, EpScore, LikelihoodScore, Observation, QcsSgmScore};
use qcs_sampler::{
    sample_posterior, GaussianPrior, LangevinConfig, LevelSubset, LikelihoodWeight, PriorScore,
    StepControl,
};
use qcs_sensing::{
    build_operator, simulate, Family, ImageShape, Operator, OperatorSpec, QuantizerSpec,
    SensingError, StepRule,
};

const N: usize = 784;

/// Delegates to a likelihood score and checks that each score it returns is finite.
struct Checked<'a> {
    setting: Setting,
    inner: &'a dyn LikelihoodScore,
    calls: Cell<usize>,
    worst: Cell<f64>,
}

impl LikelihoodScore for Checked<'_> {
    fn score(
        &self,
        operator: &dyn Operator,
        observation: &Observation,
        sigma_t: f32,
        x_t: Tensor<4>,
    ) -> qcs_likelihood::Result<Tensor<4>> {
        let score = self.inner.score(operator, observation, sigma_t, x_t)?;
        let values = common::host(score.clone());
        let bad = values.iter().position(|v| !v.is_finite());
        assert!(
            bad.is_none(),
            "{:?}: non-finite likelihood score at σ_t = {sigma_t}: element {:?} = {}",
            self.setting,
            bad,
            values[bad.unwrap_or(0)]
        );
        let peak = values.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        self.worst.set(self.worst.get().max(peak));
        self.calls.set(self.calls.get() + 1);
        Ok(score)
    }
}

/// The ngf-8 fixture network on the CPU backends; on a GPU backend a Gaussian prior (mean 0.5, variance
/// 0.05 in every pixel) on the network's noise levels.
fn prior(device: &Device) -> Box<dyn PriorScore> {
    let net = common::fixture_network(device);
    if !qcs_testkit::on_gpu_backend() {
        return Box::new(net);
    }
    let sigmas = PriorScore::sigmas(&net).unwrap();
    Box::new(GaussianPrior::new(vec![0.5; N], vec![0.05; N], [1, 28, 28], sigmas, device).unwrap())
}

/// A smooth blob in [0, 1], 28×28.
fn truth(device: &Device) -> Tensor<2> {
    let values: Vec<f32> = (0..N)
        .map(|k| {
            let (r, c) = ((k / 28) as f32 - 13.5, (k % 28) as f32 - 11.0);
            (-(r * r + c * c) / 40.0).exp()
        })
        .collect();
    Tensor::from_data(TensorData::new(values, [1, N]), device)
}

#[derive(Debug, Clone, Copy)]
struct Setting {
    family: Family,
    m: usize,
    bits: Option<u32>,
    noise_std: f64,
    plus: bool,
}

/// Noise levels visited per run: five spread over the schedule, three (first, middle, last) on a GPU
/// backend (lavapipe in CI compiles every new kernel shape).
fn levels() -> usize {
    if qcs_testkit::on_gpu_backend() {
        3
    } else {
        5
    }
}

/// Runs one setting; `Ok(None)` when the operator refuses the size (M > N for the structured families).
fn run(setting: Setting, prior: &dyn PriorScore, device: &Device) -> Option<(usize, f64)> {
    let shape = ImageShape::new(1, 28, 28).unwrap();
    let spec = OperatorSpec {
        family: setting.family,
        measurements: setting.m,
        image: shape,
        seed: 3,
    };
    let op = match build_operator(&spec, device) {
        Ok(op) => op,
        Err(SensingError::InvalidSetting(why)) if setting.m > N => {
            assert!(why.contains(&setting.m.to_string()), "{why}");
            return None;
        }
        Err(e) => panic!("{setting:?}: {e}"),
    };
    // Δ from the data needs at least two distinct measurements: a single one takes a fixed ADC range.
    let step = if setting.m == 1 {
        StepRule::FullScale { width: 8.0 }
    } else {
        StepRule::FromData
    };
    let quantizer = QuantizerSpec::from_bits(setting.bits, step).unwrap();
    let set = simulate(
        op.as_ref(),
        truth(device),
        quantizer,
        setting.noise_std,
        5,
        vec!["blob".into()],
    )
    .unwrap_or_else(|e| panic!("{setting:?}: {e}"));
    let obs = Observation::from_set(&set, device);
    let (sgm, ep) = (
        QcsSgmScore::default(),
        EpScore {
            config: EpConfig::for_bits(setting.bits),
        },
    );
    let checked = Checked {
        setting,
        inner: if setting.plus { &ep } else { &sgm },
        calls: Cell::new(0),
        worst: Cell::new(0.0),
    };
    let config = LangevinConfig {
        steps_per_level: 1,
        epsilon: 2e-4,
        weight: if setting.plus {
            LikelihoodWeight::NormRatio(1.0)
        } else {
            LikelihoodWeight::Fixed(1.0)
        },
        levels: LevelSubset::Count { count: levels() },
        step_control: StepControl::default(),
        final_denoise: true,
        chains: 1,
        seed: 11,
        first_image: 0,
    };
    let posterior = sample_posterior(
        prior,
        Some((&checked, op.as_ref(), &obs)),
        &config,
        1,
        shape,
        &mut |_| {},
    )
    .unwrap_or_else(|e| panic!("{setting:?}: {e}"));
    let mean = common::host(posterior.mean);
    assert!(
        mean.iter()
            .all(|v| v.is_finite() && (0.0..=1.0).contains(v)),
        "{setting:?}: reconstruction outside [0, 1] or not finite"
    );
    assert_eq!(
        checked.calls.get(),
        levels(),
        "{setting:?}: one score per step"
    );
    Some((checked.calls.get(), checked.worst.get()))
}

#[test]
fn every_bit_depth_and_noise_level_stays_finite() {
    let device = qcs_testkit::device();
    let prior = prior(&device);
    // On a GPU backend (lavapipe in CI compiles every new kernel shape) a corner subset of the grid runs.
    let gpu = qcs_testkit::on_gpu_backend();
    let bit_depths: Vec<Option<u32>> = if gpu {
        vec![Some(1), Some(8), None]
    } else {
        (1..=8).map(Some).chain([None]).collect()
    };
    let noise_levels: &[f64] = if gpu {
        &[0.0, 0.5]
    } else {
        &[0.0, 1e-4, 0.05, 0.5]
    };
    let mut runs = 0;
    for &bits in &bit_depths {
        for &noise_std in noise_levels {
            for plus in [false, true] {
                let setting = Setting {
                    family: Family::Gaussian,
                    m: N / 2,
                    bits,
                    noise_std,
                    plus,
                };
                runs += usize::from(run(setting, prior.as_ref(), &device).is_some());
            }
        }
    }
    assert_eq!(runs, bit_depths.len() * noise_levels.len() * 2);
}

#[test]
fn every_operator_and_measurement_count_stays_finite() {
    let device = qcs_testkit::device();
    let prior = prior(&device);
    let families = [
        Family::Gaussian,
        Family::IllConditioned { kappa: 1e6 },
        Family::Correlated { rho: 0.95 },
        Family::Dct,
        Family::Hadamard,
    ];
    let gpu = qcs_testkit::on_gpu_backend();
    let counts: &[usize] = if gpu {
        &[1, 2 * N]
    } else {
        &[1, 10, N / 2, N, 2 * N]
    };
    let bit_depths: &[Option<u32>] = if gpu {
        &[Some(3)]
    } else {
        &[Some(1), Some(3), None]
    };
    let (mut runs, mut refused) = (0, 0);
    for family in families {
        for &m in counts {
            for &bits in bit_depths {
                for plus in [false, true] {
                    let setting = Setting {
                        family,
                        m,
                        bits,
                        noise_std: 0.05,
                        plus,
                    };
                    match run(setting, prior.as_ref(), &device) {
                        Some(_) => runs += 1,
                        None => refused += 1,
                    }
                }
            }
        }
    }
    // M = 2N is refused by the families built on an orthogonal basis (ill-conditioned, DCT, Hadamard) and
    // accepted by the Gaussian and correlated ones.
    assert_eq!(
        refused,
        3 * bit_depths.len() * 2,
        "{runs} runs, {refused} refused"
    );
    assert_eq!(runs, 5 * counts.len() * bit_depths.len() * 2 - refused);
}
