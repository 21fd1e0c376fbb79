//! InstanceNorm++ (Song & Ermon 2019, appendix of NCSN).

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::Initializer;
use burn::tensor::{DType, Device, FloatDType, Tensor};

/// Configuration of an [`InstanceNorm2dPlus`] layer.
#[derive(Config, Debug)]
pub struct InstanceNorm2dPlusConfig {
    /// Number of channels `C` of the normalized input.
    pub num_features: usize,
    /// Added to both variances before the square root.
    #[config(default = 1e-5)]
    pub epsilon: f64,
}

/// Instance normalization that keeps the relative channel means:
///
/// `h_c = (x_c − μ_c)/√(s²_c + ε) + α_c·(μ_c − m)/√(v + ε)`, `out_c = γ_c·h_c + β_c`,
///
/// where `μ_c`, `s²_c` are the spatial mean and (biased) variance of channel `c`, and `m`, `v` the
/// mean and unbiased variance of the `μ_c` across channels.
#[derive(Module, Debug)]
pub struct InstanceNorm2dPlus {
    /// Weight `α` of the normalized channel means, shape `[C]`.
    pub alpha: Param<Tensor<1>>,
    /// Scale `γ`, shape `[C]`.
    pub gamma: Param<Tensor<1>>,
    /// Shift `β`, shape `[C]`.
    pub beta: Param<Tensor<1>>,
    /// Added to both variances before the square root.
    pub epsilon: f64,
}

impl InstanceNorm2dPlusConfig {
    /// Builds the layer with `α, γ ~ N(1, 0.02²)` and `β = 0`, as the reference does.
    pub fn init(&self, device: &Device) -> InstanceNorm2dPlus {
        let near_one = Initializer::Normal {
            mean: 1.0,
            std: 0.02,
        };
        InstanceNorm2dPlus {
            alpha: near_one.init([self.num_features], device),
            gamma: near_one.init([self.num_features], device),
            beta: Initializer::Zeros.init([self.num_features], device),
            epsilon: self.epsilon,
        }
    }
}

impl InstanceNorm2dPlus {
    /// Normalizes `x` of shape `[B, C, H, W]`; the output has the same shape.
    ///
    /// A 16-bit input is normalized in f32 (its squares overflow f16 at the large noise levels,
    /// where the network's input 2x − 1 reaches ±300) and the result cast back.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match x.dtype() {
            DType::F32 => {
                let (centered, scale, shift) = self.statistics(x);
                centered * scale + shift
            }
            dtype => self
                .forward(x.cast(FloatDType::F32))
                .cast(FloatDType::from(dtype)),
        }
    }

    /// `elu(self.forward(x))`, what every InstanceNorm++ of NCSNv2 feeds; in a `cube` build a GPU
    /// tensor outside autodiff takes three fused kernels instead of 28 launches (26 tensor
    /// operations and two reshape copies; `blocks::cube`), and a 16-bit one the same three
    /// instead of those and two casts. Under autodiff, on the CPU (`flex` feature) and on the GPU
    /// (`cube`), it is one operation with a hand-written backward pass, and on the CPU outside
    /// autodiff loops over the planes (`blocks::norm_autodiff`).
    pub fn forward_elu(&self, x: Tensor<4>) -> Tensor<4> {
        #[cfg(feature = "cube")]
        let x = {
            let f32_val = |p: &Param<Tensor<1>>| p.val().cast(FloatDType::F32);
            let (alpha, gamma, beta) = (
                f32_val(&self.alpha),
                f32_val(&self.gamma),
                f32_val(&self.beta),
            );
            match super::cube::instance_norm_elu(x, alpha, gamma, beta, self.epsilon) {
                Ok(y) => return y,
                Err(x) => x,
            }
        };
        #[cfg(any(feature = "flex", feature = "cube"))]
        let x = match super::norm_autodiff::instance_norm_elu(
            x,
            self.alpha.val(),
            self.gamma.val(),
            self.beta.val(),
            self.epsilon,
        ) {
            Ok(y) => return y,
            Err(x) => x,
        };
        match x.dtype() {
            DType::F32 => super::activation::elu(self.forward(x)),
            dtype => self
                .forward_elu(x.cast(FloatDType::F32))
                .cast(FloatDType::from(dtype)),
        }
    }

    /// The centred input `x − μ` and the per-channel `[B, C, 1, 1]` scale and shift with which
    /// the output is `(x − μ)·scale + shift`.
    fn statistics(&self, x: Tensor<4>) -> (Tensor<4>, Tensor<4>, Tensor<4>) {
        let [batch, channels, height, width] = x.dims();
        let spatial_mean = x
            .clone()
            .reshape([batch, channels, height * width])
            .mean_dim(2)
            .reshape([batch, channels, 1, 1]);
        let centered = x - spatial_mean.clone();
        let spatial_var = centered
            .clone()
            .powi_scalar(2)
            .reshape([batch, channels, height * width])
            .mean_dim(2)
            .reshape([batch, channels, 1, 1]);

        let (channel_var, channel_mean) = spatial_mean.clone().var_mean(1);
        let relative_mean =
            (spatial_mean - channel_mean) / channel_var.add_scalar(self.epsilon).sqrt();

        // γ·((x − μ)/s + α·rel) + β as (x − μ)·scale + shift: the centred input serves the
        // variance and the output, and the rest runs on [B, C, 1, 1].
        let gamma = per_channel(&self.gamma);
        let scale = gamma.clone() / spatial_var.add_scalar(self.epsilon).sqrt();
        let shift = relative_mean * per_channel(&self.alpha) * gamma + per_channel(&self.beta);
        (centered, scale, shift)
    }
}

/// A `[C]` parameter as a `[1, C, 1, 1]` tensor that broadcasts over `[B, C, H, W]`.
fn per_channel(param: &Param<Tensor<1>>) -> Tensor<4> {
    let [channels] = param.dims();
    param
        .val()
        .cast(FloatDType::F32)
        .reshape([1, channels, 1, 1])
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Distribution, TensorData, Tolerance};

    /// The reference formula evaluated in f64 on a row-major `[B, C, H, W]` buffer.
    fn reference(
        x: &[f32],
        dims: [usize; 4],
        alpha: &[f32],
        gamma: &[f32],
        beta: &[f32],
    ) -> Vec<f32> {
        let [b, c, h, w] = dims;
        let hw = h * w;
        let mut out = vec![0.0f32; x.len()];
        for n in 0..b {
            let plane = |k: usize| &x[(n * c + k) * hw..(n * c + k + 1) * hw];
            let means: Vec<f64> = (0..c)
                .map(|k| plane(k).iter().map(|&v| f64::from(v)).sum::<f64>() / hw as f64)
                .collect();
            let m = means.iter().sum::<f64>() / c as f64;
            let v = means.iter().map(|mu| (mu - m).powi(2)).sum::<f64>() / (c - 1) as f64;
            for k in 0..c {
                let s2 = plane(k)
                    .iter()
                    .map(|&val| (f64::from(val) - means[k]).powi(2))
                    .sum::<f64>()
                    / hw as f64;
                let rel = (means[k] - m) / (v + 1e-5).sqrt();
                for (i, &val) in plane(k).iter().enumerate() {
                    let hval = (f64::from(val) - means[k]) / (s2 + 1e-5).sqrt()
                        + f64::from(alpha[k]) * rel;
                    out[(n * c + k) * hw + i] =
                        (f64::from(gamma[k]) * hval + f64::from(beta[k])) as f32;
                }
            }
        }
        out
    }

    #[test]
    fn instance_norm_plus_matches_the_reference_formula() {
        let device = Device::flex();
        device.seed(3);
        let dims = [2, 4, 5, 3];
        let x = Tensor::<4>::random(dims, Distribution::Normal(0.5, 2.0), &device);
        let mut norm = InstanceNorm2dPlusConfig::new(4).init(&device);
        norm.beta =
            Param::from_tensor(Tensor::random([4], Distribution::Normal(0.0, 1.0), &device));

        let values = |t: Tensor<1>| t.into_data().try_to_vec::<f32>().expect("f32 tensor");
        let expected = reference(
            &x.clone()
                .into_data()
                .try_to_vec::<f32>()
                .expect("f32 tensor"),
            dims,
            &values(norm.alpha.val()),
            &values(norm.gamma.val()),
            &values(norm.beta.val()),
        );
        norm.forward(x)
            .into_data()
            .assert_approx_eq::<f32>(&TensorData::new(expected, dims), Tolerance::absolute(1e-5));
    }
}
