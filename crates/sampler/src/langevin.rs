//! Annealed Langevin dynamics with a likelihood term (ALGORITHM.md §2):
//!
//! x_0 ~ U[0, 1]^N; for each visited level c, K times:
//! x ← x + α_c·(s(x, c) + λ·∇_x log p(y | x)) + √(2α_c)·ξ,  α_c = ε·(σ_c/σ_T)²,  ξ ~ N(0, I);
//! no clamping inside the loop, the final state (the last update kept) clamped to [0, 1]. With
//! [`StepControl::Curvature`] a conditioned run divides α_c by 1 + σ_c²·λ·L_c, L_c the likelihood's
//! curvature bound, so that linear and Q-bit measurements cannot make the chain diverge; with
//! [`StepControl::Preconditioned`] (the default) it divides the step by that factor only along A's stiffest
//! directions, each by its own (`precondition` module).

use burn::prelude::*;
use qcs_likelihood::{LikelihoodScore, Observation};
use qcs_sensing::{ImageShape, Operator};

use crate::config::{LangevinConfig, LikelihoodWeight, StepControl};
use crate::error::{Result, SamplerError};
use crate::noise::HostNoise;
use crate::precondition::Preconditioner;
use crate::prior::{check_levels, PriorScore};

/// What the samples are conditioned on: the likelihood score, the operator A and the measurements (one row
/// per image).
pub type Conditioning<'a> = (&'a dyn LikelihoodScore, &'a dyn Operator, &'a Observation);

/// Where a run is, reported after every Langevin step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// 0-based index of the current level among the prior's levels.
    pub level: usize,
    /// Steps done so far, 1 … `total`.
    pub step: usize,
    /// Steps in the whole run: visited levels × K.
    pub total: usize,
}

/// The result of a run.
#[derive(Debug, Clone)]
pub struct Posterior {
    /// Posterior mean: the mean over chains of the final samples, [B, C, H, W].
    pub mean: Tensor<4>,
    /// Per-pixel standard deviation over chains (Bessel-corrected), [B, C, H, W]; `None` with one chain.
    pub std: Option<Tensor<4>>,
    /// Every final sample, clamped to [0, 1], [B, chains, C, H, W].
    pub samples: Tensor<5>,
    /// Prior evaluations made (each a single batched call over all images and chains).
    pub nfe: usize,
}

/// Draws `config.chains` posterior samples for each of `images` images of `shape` by annealed Langevin
/// dynamics, conditioned on `likelihood` (or unconditionally when it is `None`).
///
/// All B·chains states go through the prior in one call per step; the chains of one image are consecutive,
/// matching [`Observation::repeat_rows`]. The start and the noise come from host ChaCha8 generators, one
/// stream per chain keyed by `config.seed`, the image's index `config.first_image + i` and the chain's, and
/// are uploaded each step: a seed gives bit-identical results on a given backend, the same random numbers on
/// every backend, and each image the same numbers whichever batch it runs in. Nothing is read back inside the
/// loop; `progress` receives host integers only.
pub fn sample_posterior(
    prior: &dyn PriorScore,
    likelihood: Option<Conditioning<'_>>,
    config: &LangevinConfig,
    images: usize,
    shape: ImageShape,
    progress: &mut dyn FnMut(Progress),
) -> Result<Posterior> {
    config.validate()?;
    if images == 0 {
        return Err(SamplerError::InvalidConfig(
            "at least one image is needed".into(),
        ));
    }
    let sigmas = prior.sigmas()?;
    check_levels(&sigmas)?;
    let visited = config.levels.select(sigmas.len())?;
    let repeated = likelihood
        .map(|c| conditioning_for_chains(c, images, shape, config.chains))
        .transpose()?;
    let conditioning = likelihood
        .zip(repeated.as_ref())
        .map(|((s, a, _), y)| (s, a, y));

    let [c, h, w] = shape.dims();
    let mut noise = HostNoise::new(
        config.seed,
        config.first_image,
        images,
        config.chains,
        [c, h, w],
        &prior.device(),
    )?;
    let mut x = noise.uniform();
    let last = sigmas.len() - 1;
    let total = visited.len() * config.steps_per_level;
    let mut step = 0;
    let curvature = step_curvature(conditioning, config)?;
    let preconditioner = match (config.step_control, curvature, conditioning) {
        (StepControl::Preconditioned, Some((bound, lambda)), Some((_, operator, _))) => {
            Some(Preconditioner::new(operator, bound, lambda)?)
        }
        _ => None,
    };
    for &level in &visited {
        let sigma = sigmas[level];
        let mut alpha = config.epsilon * (sigma / sigmas[last]).powi(2);
        let directions = preconditioner.as_ref().map(|p| p.at(sigma));
        if let (None, Some((curvature, lambda))) = (&directions, curvature) {
            alpha /= 1.0 + sigma * sigma * lambda * curvature.at(sigma);
        }
        for _ in 0..config.steps_per_level {
            let (prior_score, likelihood_score) =
                scores(prior, conditioning, x.clone(), level, sigmas[level])?;
            let xi = noise.normal();
            let noise_scale = (2.0 * alpha).sqrt() as f32;
            x = match (&directions, config.weight, likelihood_score) {
                (None, LikelihoodWeight::Fixed(lambda), Some(g)) => update(
                    x,
                    prior_score,
                    Some((g, lambda as f32)),
                    xi,
                    alpha as f32,
                    noise_scale,
                ),
                (directions, weight, g) => {
                    let drift = combine(prior_score, g, weight);
                    let (drift, xi) = match directions {
                        Some(p) => (p.drift(drift), p.noise(xi)),
                        None => (drift, xi),
                    };
                    update(x, drift, None, xi, alpha as f32, noise_scale)
                }
            };
            step += 1;
            progress(Progress { level, step, total });
        }
    }
    if config.final_denoise {
        let score = prior.score(x.clone(), last)?;
        x = x + score * (sigmas[last] * sigmas[last]) as f32;
    }
    Ok(summarize(
        x.clamp(0.0, 1.0),
        images,
        config.chains,
        shape,
        config.nfe(sigmas.len())?,
    ))
}

/// The likelihood's curvature bound and λ when the step follows them: [`StepControl::Curvature`] or
/// [`StepControl::Preconditioned`], a fixed
/// λ > 0 and a score that has a bound.
fn step_curvature(
    conditioning: Option<Conditioning<'_>>,
    config: &LangevinConfig,
) -> Result<Option<(qcs_likelihood::Curvature, f64)>> {
    let (
        Some((likelihood, operator, observation)),
        StepControl::Curvature | StepControl::Preconditioned,
        LikelihoodWeight::Fixed(lambda),
    ) = (conditioning, config.step_control, config.weight)
    else {
        return Ok(None);
    };
    if lambda == 0.0 {
        return Ok(None);
    }
    let bound = likelihood.curvature(operator, observation)?;
    Ok(bound.map(|c| (c, lambda)))
}

/// Checks the measurements against the images and repeats each image's row once per chain.
fn conditioning_for_chains(
    (_, operator, observation): Conditioning<'_>,
    images: usize,
    shape: ImageShape,
    chains: usize,
) -> Result<Observation> {
    if operator.cols() != shape.numel() || observation.batch() != images {
        return Err(SamplerError::ShapeMismatch {
            what: "images against the operator and measurements (B, N)".into(),
            expected: vec![images, shape.numel()],
            found: vec![observation.batch(), operator.cols()],
        });
    }
    Ok(if chains > 1 {
        observation.repeat_rows(chains)
    } else {
        observation.clone()
    })
}

/// s(x, c) and ∇_x log p(y | x) at level c (σ_c = `sigma`); the second `None` without measurements.
fn scores(
    prior: &dyn PriorScore,
    conditioning: Option<Conditioning<'_>>,
    x: Tensor<4>,
    level: usize,
    sigma: f64,
) -> Result<(Tensor<4>, Option<Tensor<4>>)> {
    let prior_score = prior.score(x.clone(), level)?;
    let Some((likelihood, operator, observation)) = conditioning else {
        return Ok((prior_score, None));
    };
    let g = likelihood.score(operator, observation, sigma as f32, x)?;
    Ok((prior_score, Some(g)))
}

/// The drift s(x, c) + λ_step·∇_x log p(y | x), or s(x, c) alone without measurements.
fn combine(
    prior_score: Tensor<4>,
    likelihood_score: Option<Tensor<4>>,
    weight: LikelihoodWeight,
) -> Tensor<4> {
    let Some(g) = likelihood_score else {
        return prior_score;
    };
    match weight {
        LikelihoodWeight::Fixed(lambda) => prior_score + g * lambda as f32,
        LikelihoodWeight::NormRatio(lambda) => {
            let ratio = norm_ratio(prior_score.clone(), g.clone());
            prior_score + g * ratio * lambda as f32
        }
    }
}

/// The Langevin update x + α·(s + λ·g) + c·ξ (`likelihood` = `Some((g, λ))`), or x + α·s + c·ξ: one fused
/// kernel on a GPU backend outside autodiff (the `cube` feature), tensor operations in the same order
/// otherwise.
fn update(
    x: Tensor<4>,
    prior_score: Tensor<4>,
    likelihood: Option<(Tensor<4>, f32)>,
    xi: Tensor<4>,
    alpha: f32,
    noise_scale: f32,
) -> Tensor<4> {
    #[cfg(feature = "cube")]
    let (x, prior_score, likelihood, xi) =
        match crate::cube::langevin_update(x, prior_score, likelihood, xi, alpha, noise_scale) {
            Ok(next) => return next,
            Err(inputs) => (inputs.x, inputs.prior, inputs.likelihood, inputs.noise),
        };
    let drift = match likelihood {
        Some((g, lambda)) => prior_score + g * lambda,
        None => prior_score,
    };
    x + drift * alpha + xi * noise_scale
}

/// ‖s‖_F/‖g‖_F over the whole batch as a [1, 1, 1, 1] device tensor (1 where g = 0), computed without reading
/// anything back.
fn norm_ratio(prior_score: Tensor<4>, likelihood_score: Tensor<4>) -> Tensor<4> {
    let prior_norm = prior_score.square().sum().sqrt();
    let likelihood_norm = likelihood_score.square().sum().sqrt();
    let zero = likelihood_norm.clone().lower_equal_elem(0.0);
    (prior_norm / likelihood_norm.mask_fill(zero.clone(), 1.0))
        .mask_fill(zero, 1.0)
        .reshape([1, 1, 1, 1])
}

/// Splits the final states [B·chains, C, H, W] into [B, chains, C, H, W] and takes the mean and spread over
/// chains.
fn summarize(
    x: Tensor<4>,
    images: usize,
    chains: usize,
    shape: ImageShape,
    nfe: usize,
) -> Posterior {
    let [c, h, w] = shape.dims();
    let samples = x.reshape([images, chains, c, h, w]);
    let mean = samples.clone().mean_dim(1).reshape([images, c, h, w]);
    let std = (chains > 1).then(|| samples.clone().var(1).sqrt().reshape([images, c, h, w]));
    Posterior {
        mean,
        std,
        samples,
        nfe,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensor(values: Vec<f32>) -> Tensor<4> {
        let n = values.len();
        Tensor::from_data(
            TensorData::new(values, [n, 1, 1, 1]),
            &qcs_testkit::device(),
        )
    }

    #[test]
    fn norm_ratio_is_the_ratio_of_frobenius_norms_and_one_for_a_zero_likelihood() {
        let ratio = norm_ratio(tensor(vec![3.0, 4.0]), tensor(vec![0.0, 0.5]));
        let value = ratio.into_data().try_to_vec_as::<f32>().unwrap();
        assert_eq!(value, vec![10.0]);
        let ratio = norm_ratio(tensor(vec![3.0, 4.0]), tensor(vec![0.0, 0.0]));
        assert_eq!(ratio.into_data().try_to_vec_as::<f32>().unwrap(), vec![1.0]);
    }
}
