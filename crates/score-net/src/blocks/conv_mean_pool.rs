//! Convolution followed by 2×2 mean pooling (the reference's `ConvMeanPool`).

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::PaddingConfig2d;
use burn::tensor::module::avg_pool2d;
use burn::tensor::ops::AvgPoolOptions;
use burn::tensor::{Device, Tensor};

/// Configuration of a [`ConvMeanPool`] block.
#[derive(Config, Debug)]
pub struct ConvMeanPoolConfig {
    /// Input and output channels `[C_in, C_out]`.
    pub channels: [usize; 2],
    /// Side `k` of the square kernel (odd); the convolution pads by `k / 2`.
    #[config(default = 3)]
    pub kernel_size: usize,
}

/// `k×k` convolution (stride 1, "same" padding, with bias), then the mean of each 2×2 block.
#[derive(Module, Debug)]
pub struct ConvMeanPool {
    /// The convolution, weight `[C_out, C_in, k, k]`, bias `[C_out]`.
    pub conv: Conv2d,
}

impl ConvMeanPoolConfig {
    /// Builds the block.
    pub fn init(&self, device: &Device) -> ConvMeanPool {
        let pad = self.kernel_size / 2;
        let conv = Conv2dConfig::new(self.channels, [self.kernel_size, self.kernel_size])
            .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
            .init(device);
        ConvMeanPool { conv }
    }
}

impl ConvMeanPool {
    /// Maps `[B, C_in, H, W]` to `[B, C_out, H/2, W/2]` (`H`, `W` even).
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        avg_pool2d(
            super::conv::apply(&self.conv, x),
            AvgPoolOptions::new([2, 2]),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{s, Distribution, Tolerance};

    #[test]
    fn conv_mean_pool_averages_the_four_strided_sub_grids() {
        let device = Device::flex();
        device.seed(5);
        let block = ConvMeanPoolConfig::new([2, 3]).init(&device);
        let x = Tensor::<4>::random([2, 2, 6, 8], Distribution::Normal(0.0, 1.0), &device);

        let y = block.conv.forward(x.clone());
        let expected = (y.clone().slice(s![.., .., 0..;2, 0..;2])
            + y.clone().slice(s![.., .., 1..;2, 0..;2])
            + y.clone().slice(s![.., .., 0..;2, 1..;2])
            + y.slice(s![.., .., 1..;2, 1..;2]))
            / 4.0;

        let out = block.forward(x);
        assert_eq!(out.dims(), [2, 3, 3, 4]);
        out.into_data()
            .assert_approx_eq::<f32>(&expected.into_data(), Tolerance::absolute(1e-6));
    }
}
