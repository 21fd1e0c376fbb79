//! Chained residual pooling of RefineNet (the reference's `CRPBlock` with max pooling).

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::tensor::module::max_pool2d;
use burn::tensor::ops::MaxPoolOptions;
use burn::tensor::{Device, Tensor};

use super::activation::{add_elu, elu};
use super::conv::conv3x3;

/// Configuration of a [`CrpBlock`].
#[derive(Config, Debug)]
pub struct CrpBlockConfig {
    /// Channels `C` of input and output.
    pub features: usize,
    /// Number of pool-and-convolve stages.
    #[config(default = 2)]
    pub n_stages: usize,
}

/// `x ← elu(x)`, then for each stage `p ← conv_i(maxpool₅(p))`, `x ← x + p` (with `p = x` at
/// the start). Keeps shape `[B, C, H, W]`.
#[derive(Module, Debug)]
pub struct CrpBlock {
    /// One 3×3 convolution without bias per stage, weights `[C, C, 3, 3]`.
    pub convs: Vec<Conv2d>,
}

impl CrpBlockConfig {
    /// Builds the block.
    pub fn init(&self, device: &Device) -> CrpBlock {
        let convs = (0..self.n_stages)
            .map(|_| {
                conv3x3([self.features, self.features], 1)
                    .with_bias(false)
                    .init(device)
            })
            .collect();
        CrpBlock { convs }
    }
}

impl CrpBlock {
    /// Applies the chained pooling to `[B, C, H, W]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.forward_activated_pair(elu(x)).0
    }

    /// `(y, elu(y))` for `y = self.forward(x)`, given `activated = elu(x)`; the last stage's sum
    /// and its ELU are [`add_elu`] (one kernel on the GPU backends).
    pub(crate) fn forward_activated_pair(&self, activated: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        let Some((last, stages)) = self.convs.split_last() else {
            return (activated.clone(), elu(activated));
        };
        let (x, path) = stages
            .iter()
            .fold((activated.clone(), activated), |(x, path), conv| {
                let path = super::conv::apply(conv, max_pool5(path));
                (x + path.clone(), path)
            });
        add_elu(x, super::conv::apply(last, max_pool5(path)))
    }
}

/// 5×5 max pooling with stride 1 and padding 2 (padding never wins the max).
fn max_pool5(x: Tensor<4>) -> Tensor<4> {
    max_pool2d(
        x,
        MaxPoolOptions::new([5, 5])
            .with_stride([1, 1])
            .with_padding([2, 2]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{TensorData, Tolerance};

    #[test]
    fn max_pool_ignores_the_padding() {
        let device = Device::flex();
        let x = Tensor::<4>::from_floats([[[[-3.0, -2.0, -1.0], [-6.0, -5.0, -4.0]]]], &device);
        let expected = TensorData::from([[[[-1.0f32, -1.0, -1.0], [-1.0, -1.0, -1.0]]]]);
        max_pool5(x)
            .into_data()
            .assert_approx_eq::<f32>(&expected, Tolerance::absolute(0.0));
    }
}
