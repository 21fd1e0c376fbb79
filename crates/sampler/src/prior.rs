//! Prior scores s(x, c) ≈ ∇_x log p_{σ_c}(x) at the levels of a noise schedule.

use burn::prelude::*;
use qcs_score_net::NcsnV2;

use crate::error::{Result, SamplerError};

/// The score of the prior smoothed at noise level σ_c, for the levels σ_1 > … > σ_T the prior was built for.
pub trait PriorScore {
    /// σ_1 > … > σ_T, largest first.
    fn sigmas(&self) -> Result<Vec<f64>>;

    /// s(x, c) for a batch x of shape [B, C, H, W] at 0-based level index c (the same level for every image),
    /// shaped like x.
    fn score(&self, x: Tensor<4>, level: usize) -> Result<Tensor<4>>;

    /// The device the prior's tensors live on; samples are drawn there.
    fn device(&self) -> Device;
}

impl PriorScore for NcsnV2 {
    fn sigmas(&self) -> Result<Vec<f64>> {
        let values = NcsnV2::sigmas(self)
            .into_data()
            .try_to_vec_as::<f32>()
            .map_err(|e| SamplerError::ReadBack {
                what: "the network's noise levels".into(),
                message: format!("{e:?}"),
            })?;
        Ok(values.into_iter().map(f64::from).collect())
    }

    /// s_θ(x, c) = f_θ(2x − 1)/σ_c with the level tensor holding c for every image.
    fn score(&self, x: Tensor<4>, level: usize) -> Result<Tensor<4>> {
        let [batch, channels, _, _] = x.dims();
        let expected = self.begin_conv.weight.dims()[1];
        let levels = NcsnV2::sigmas(self).dims()[0];
        if channels != expected || level >= levels {
            return Err(SamplerError::ShapeMismatch {
                what: "images and level against the network (channels, levels)".into(),
                expected: vec![expected, levels],
                found: vec![channels, level],
            });
        }
        let levels = Tensor::<1, Int>::full([batch], level as i64, &x.device());
        Ok(self.forward(x, levels))
    }

    fn device(&self) -> Device {
        NcsnV2::sigmas(self).device()
    }
}

/// An exact Gaussian prior N(μ, diag(v)) over [C, H, W] images: smoothed at level σ_c it is
/// N(μ, diag(v + σ_c²)), whose score is s(x, c) = −(x − μ)/(v + σ_c²).
#[derive(Debug, Clone)]
pub struct GaussianPrior {
    /// μ, shape [1, C, H, W].
    mean: Tensor<4>,
    /// v, shape [1, C, H, W].
    variance: Tensor<4>,
    /// σ_1 > … > σ_T.
    sigmas: Vec<f64>,
}

impl GaussianPrior {
    /// A prior with per-pixel means and variances (channel-major, C·H·W values each, v > 0) at the levels
    /// `sigmas` (largest first).
    pub fn new(
        mean: Vec<f32>,
        variance: Vec<f32>,
        shape: [usize; 3],
        sigmas: Vec<f64>,
        device: &Device,
    ) -> Result<Self> {
        let numel = shape.iter().product::<usize>();
        if mean.len() != numel || variance.len() != numel || numel == 0 {
            return Err(SamplerError::ShapeMismatch {
                what: "Gaussian prior mean and variance".into(),
                expected: vec![numel, numel],
                found: vec![mean.len(), variance.len()],
            });
        }
        if variance.iter().any(|v| !(v.is_finite() && *v > 0.0)) {
            return Err(SamplerError::InvalidConfig(
                "Gaussian prior variances must be positive and finite".into(),
            ));
        }
        check_levels(&sigmas)?;
        let [c, h, w] = shape;
        let upload = |v: Vec<f32>| Tensor::from_data(TensorData::new(v, [1, c, h, w]), device);
        Ok(Self {
            mean: upload(mean),
            variance: upload(variance),
            sigmas,
        })
    }
}

impl PriorScore for GaussianPrior {
    fn sigmas(&self) -> Result<Vec<f64>> {
        Ok(self.sigmas.clone())
    }

    fn score(&self, x: Tensor<4>, level: usize) -> Result<Tensor<4>> {
        let dims = x.dims();
        let own = self.mean.dims();
        if dims[1..] != own[1..] || level >= self.sigmas.len() {
            return Err(SamplerError::ShapeMismatch {
                what: "images and level against the Gaussian prior (C, H, W, levels)".into(),
                expected: vec![own[1], own[2], own[3], self.sigmas.len()],
                found: vec![dims[1], dims[2], dims[3], level],
            });
        }
        let sigma_sq = (self.sigmas[level] * self.sigmas[level]) as f32;
        Ok((self.mean.clone() - x) / (self.variance.clone() + sigma_sq))
    }

    fn device(&self) -> Device {
        self.mean.device()
    }
}

/// Checks that noise levels are non-empty, positive, finite and non-increasing.
pub(crate) fn check_levels(sigmas: &[f64]) -> Result<()> {
    if sigmas.is_empty() || sigmas.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
        return Err(SamplerError::InvalidLevels(format!(
            "need at least one positive finite level, got {sigmas:?}"
        )));
    }
    if sigmas.windows(2).any(|w| w[1] > w[0]) {
        return Err(SamplerError::InvalidLevels(
            "levels must be ordered largest first".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use qcs_score_net::NcsnV2Config;

    fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_to_vec_as::<f32>().unwrap()
    }

    #[test]
    fn gaussian_score_is_minus_deviation_over_smoothed_variance() {
        let device = qcs_testkit::device();
        let prior = GaussianPrior::new(
            vec![0.5, 0.25],
            vec![0.04, 0.01],
            [1, 1, 2],
            vec![1.0, 0.1],
            &device,
        )
        .unwrap();
        let x = Tensor::<4>::from_data(TensorData::new(vec![0.7f32, 0.0], [1, 1, 1, 2]), &device);
        let s = host(prior.score(x, 1).unwrap());
        let expected = [-(0.7 - 0.5) / (0.04 + 0.01), (0.25 - 0.0) / (0.01 + 0.01)];
        for (got, want) in s.iter().zip(expected) {
            assert!((f64::from(*got) - want).abs() < 1e-5, "{got} vs {want}");
        }
        let wrong = Tensor::<4>::zeros([1, 1, 2, 1], &device);
        assert!(prior.score(wrong, 0).is_err());
        assert!(GaussianPrior::new(vec![0.0], vec![0.0], [1, 1, 1], vec![1.0], &device).is_err());
        assert!(
            GaussianPrior::new(vec![0.0], vec![1.0], [1, 1, 1], vec![0.1, 1.0], &device).is_err()
        );
    }

    #[test]
    fn network_prior_evaluates_every_image_at_the_requested_level() {
        let device = qcs_testkit::device();
        device.seed(3);
        let config = NcsnV2Config::new()
            .with_ngf(2)
            .with_image_size(8)
            .with_num_levels(6)
            .with_sigma_begin(1.0)
            .with_sigma_end(0.1);
        let net = config.init(&device).unwrap();
        let sigmas = PriorScore::sigmas(&net).unwrap();
        for (got, want) in sigmas.iter().zip(config.sigma_schedule()) {
            assert!((got / want - 1.0).abs() < 1e-6);
        }
        let x = Tensor::<4>::random([2, 1, 8, 8], burn::tensor::Distribution::Default, &device);
        let ours = host(PriorScore::score(&net, x.clone(), 4).unwrap());
        let direct = host(net.forward(x.clone(), Tensor::<1, Int>::from_ints([4, 4], &device)));
        assert_eq!(ours, direct);
        assert!(PriorScore::score(&net, x, 6).is_err());
    }
}
