//! The denoising-score-matching loss of NCSNv2.

use burn::tensor::{Int, Tensor};

use crate::ncsnv2::NcsnV2;

/// The loss of one batch.
#[derive(Debug, Clone)]
pub struct DsmLoss {
    /// Mean over the batch, shape `[1]`: what is differentiated.
    pub mean: Tensor<1>,
    /// Loss of each image, shape `[B]` (for the per-level log).
    pub per_image: Tensor<1>,
}

/// Denoising score matching (ALGORITHM.md §5): for images `x` `[B, C, H, W]` in `[0, 1]`,
/// levels `c` `[B]` and standard normal noise `ε` `[B, C, H, W]`,
///
/// `ℓ_b = ½ ‖s_θ(x_b + σ_{c_b} ε_b, c_b) + ε_b / σ_{c_b}‖² · σ_{c_b}²`, summed over the pixels,
/// and `ℓ = (1/B) Σ_b ℓ_b`.
pub fn dsm_loss(
    model: &NcsnV2,
    images: Tensor<4>,
    levels: Tensor<1, Int>,
    noise: Tensor<4>,
) -> DsmLoss {
    let [batch, _, _, _] = images.dims();
    let sigma = model
        .sigmas()
        .select(0, levels.clone())
        .reshape([batch, 1, 1, 1]);
    let perturbed = images + noise.clone() * sigma.clone();
    let score = model.forward(perturbed, levels);
    let residual = score + noise / sigma.clone();
    let per_image = (residual.powi_scalar(2).sum_dim(3).sum_dim(2).sum_dim(1)
        * sigma.powi_scalar(2))
    .mul_scalar(0.5)
    .reshape([batch]);
    DsmLoss {
        mean: per_image.clone().mean(),
        per_image,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ncsnv2::NcsnV2Config;
    use burn::tensor::{Device, Distribution};

    #[test]
    fn loss_is_the_squared_error_of_sigma_times_score_against_minus_noise() {
        let device = Device::flex();
        device.seed(3);
        let config = NcsnV2Config::new()
            .with_ngf(4)
            .with_image_size(8)
            .with_num_levels(3)
            .with_sigma_begin(1.0)
            .with_sigma_end(0.1);
        let model = config.init(&device).expect("valid config");
        let images = Tensor::<4>::random([2, 1, 8, 8], Distribution::Default, &device);
        let noise = Tensor::<4>::random([2, 1, 8, 8], Distribution::Normal(0.0, 1.0), &device);
        let levels = Tensor::<1, Int>::from_ints([0, 2], &device);
        let loss = dsm_loss(&model, images.clone(), levels.clone(), noise.clone());

        // ½‖σ s + ε‖² per image, computed independently.
        let sigmas = config.sigma_schedule();
        let score = model.forward(
            images.clone()
                + noise.clone() * Tensor::from_floats([[[[1.0f32]]], [[[0.1]]]], &device),
            levels,
        );
        let score = score.into_data().try_to_vec::<f32>().expect("f32");
        let eps = noise.into_data().try_to_vec::<f32>().expect("f32");
        let expected: Vec<f32> = [0usize, 1]
            .iter()
            .map(|&b| {
                let sigma = sigmas[2 * b] as f32;
                (0..64)
                    .map(|i| (sigma * score[64 * b + i] + eps[64 * b + i]).powi(2))
                    .sum::<f32>()
                    * 0.5
            })
            .collect();
        let found = loss.per_image.into_data().try_to_vec::<f32>().expect("f32");
        for (f, e) in found.iter().zip(&expected) {
            assert!((f - e).abs() <= 1e-4 * e.abs(), "{f} vs {e}");
        }
        let mean = loss.mean.into_scalar::<f32>();
        assert!((mean - (expected[0] + expected[1]) / 2.0).abs() <= 1e-4 * mean);
    }
}
