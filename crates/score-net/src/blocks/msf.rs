//! Multi-resolution fusion of RefineNet (the reference's `MSFBlock`).

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{Device, Tensor};

use super::conv::conv3x3;

/// Configuration of an [`MsfBlock`].
#[derive(Config, Debug)]
pub struct MsfBlockConfig {
    /// Channels `C_i` of each input path.
    pub in_planes: Vec<usize>,
    /// Channels `F` of the fused output.
    pub features: usize,
}

/// `Σ_i resize(conv_i(x_i))`, each path convolved to `F` channels, then resized bilinearly
/// (align_corners = true) to the output size.
#[derive(Module, Debug)]
pub struct MsfBlock {
    /// One 3×3 convolution with bias per path, weights `[F, C_i, 3, 3]`, biases `[F]`.
    pub convs: Vec<Conv2d>,
}

impl MsfBlockConfig {
    /// Builds the block.
    pub fn init(&self, device: &Device) -> MsfBlock {
        let convs = self
            .in_planes
            .iter()
            .map(|&planes| conv3x3([planes, self.features], 1).init(device))
            .collect();
        MsfBlock { convs }
    }
}

impl MsfBlock {
    /// Fuses `xs[i]` of shape `[B, C_i, H_i, W_i]` into `[B, F, H, W]` with `[H, W] = size`.
    ///
    /// # Panics
    /// If `xs` does not hold one tensor per path.
    pub fn forward(&self, xs: Vec<Tensor<4>>, size: [usize; 2]) -> Tensor<4> {
        assert_eq!(xs.len(), self.convs.len(), "one input per MSF path");
        self.convs
            .iter()
            .zip(xs)
            .map(|(conv, x)| resize_bilinear(conv.forward(x), size))
            .reduce(|sum, h| sum + h)
            .expect("an MSF block has at least one path")
    }
}

/// Bilinear resize with aligned corners; a tensor already of size `size` is returned as is
/// (the aligned-corners resize to the same size is the identity).
fn resize_bilinear(x: Tensor<4>, size: [usize; 2]) -> Tensor<4> {
    let [_, _, height, width] = x.dims();
    if [height, width] == size {
        return x;
    }
    let options = InterpolateOptions::new(InterpolateMode::Bilinear)
        .with_align_corners(true)
        .with_output_size(size);
    interpolate(x, options)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{TensorData, Tolerance};

    #[test]
    fn bilinear_resize_keeps_the_corner_pixels() {
        let device = Device::flex();
        let x = Tensor::<4>::from_floats([[[[0.0, 1.0], [2.0, 3.0]]]], &device);
        let expected = TensorData::from([[[[0.0f32, 0.5, 1.0], [1.0, 1.5, 2.0], [2.0, 2.5, 3.0]]]]);
        resize_bilinear(x, [3, 3])
            .into_data()
            .assert_approx_eq::<f32>(&expected, Tolerance::absolute(1e-6));
    }
}
