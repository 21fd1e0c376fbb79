//! Multi-resolution fusion of RefineNet (the reference's `MSFBlock`).

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::tensor::{DType, Device, FloatDType, Tensor, TensorData};

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
        self.paths(xs, size)
            .into_iter()
            .reduce(|sum, h| sum + h)
            .expect("an MSF block has at least one path")
    }

    /// `elu(self.forward(xs, size))`, the last addition and the ELU one kernel on the GPU
    /// backends ([`super::activation::add_elu`]).
    pub(crate) fn forward_activated(&self, xs: Vec<Tensor<4>>, size: [usize; 2]) -> Tensor<4> {
        let mut paths = self.paths(xs, size);
        let last = paths.pop().expect("an MSF block has at least one path");
        match paths.into_iter().reduce(|sum, h| sum + h) {
            Some(sum) => super::activation::add_elu(sum, last).1,
            None => super::activation::elu(last),
        }
    }

    /// Each path convolved and resized to `size`.
    fn paths(&self, xs: Vec<Tensor<4>>, size: [usize; 2]) -> Vec<Tensor<4>> {
        assert_eq!(xs.len(), self.convs.len(), "one input per MSF path");
        self.convs
            .iter()
            .zip(xs)
            .map(|(conv, x)| resize_bilinear(super::conv::apply(conv, x), size))
            .collect()
    }
}

/// Bilinear resize with aligned corners; a tensor already of size `size` is returned as is
/// (the aligned-corners resize to the same size is the identity).
///
/// Written as two small products, Y = R_H·X·R_Wᵀ with the interpolation matrices of
/// [`interpolation_matrix`], so that it has a gradient on every backend (burn-ndarray has none for
/// its own bilinear `interpolate`) and gives the same numbers everywhere.
fn resize_bilinear(x: Tensor<4>, size: [usize; 2]) -> Tensor<4> {
    let [batch, channels, height, width] = x.dims();
    if [height, width] == size {
        return x;
    }
    let [out_h, out_w] = size;
    let device = x.device();
    let r_w = Tensor::<2>::from_data(
        TensorData::new(interpolation_matrix(width, out_w), [out_w, width]),
        &device,
    );
    let r_h = Tensor::<2>::from_data(
        TensorData::new(interpolation_matrix(height, out_h), [out_h, height]),
        &device,
    );
    let (r_w, r_h) = match x.dtype() {
        DType::F32 => (r_w, r_h),
        dtype => (
            r_w.cast(FloatDType::from(dtype)),
            r_h.cast(FloatDType::from(dtype)),
        ),
    };
    let along_w = x
        .reshape([batch * channels * height, width])
        .matmul(r_w.transpose());
    let columns = along_w
        .reshape([batch * channels, height, out_w])
        .swap_dims(1, 2)
        .reshape([batch * channels * out_w, height]);
    columns
        .matmul(r_h.transpose())
        .reshape([batch * channels, out_w, out_h])
        .swap_dims(1, 2)
        .reshape([batch, channels, out_h, out_w])
}

/// The `[output, input]` matrix of 1-D linear interpolation with aligned corners: output sample
/// i sits at input position i·(input − 1)/(output − 1) and mixes its two neighbours.
fn interpolation_matrix(input: usize, output: usize) -> Vec<f32> {
    let mut r = vec![0.0f32; output * input];
    for i in 0..output {
        let position = if output > 1 {
            i as f64 * (input - 1) as f64 / (output - 1) as f64
        } else {
            0.0
        };
        let low = (position.floor() as usize).min(input - 1);
        let high = (low + 1).min(input - 1);
        let frac = (position - low as f64) as f32;
        r[i * input + low] += 1.0 - frac;
        r[i * input + high] += frac;
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::module::interpolate;
    use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
    use burn::tensor::Tolerance;

    #[test]
    fn bilinear_resize_keeps_the_corner_pixels() {
        let device = Device::flex();
        let x = Tensor::<4>::from_floats([[[[0.0, 1.0], [2.0, 3.0]]]], &device);
        let expected = TensorData::from([[[[0.0f32, 0.5, 1.0], [1.0, 1.5, 2.0], [2.0, 2.5, 3.0]]]]);
        resize_bilinear(x, [3, 3])
            .into_data()
            .assert_approx_eq::<f32>(&expected, Tolerance::absolute(1e-6));
    }

    #[test]
    fn matrix_resize_equals_burns_bilinear_interpolation() {
        let device = Device::flex();
        let x = Tensor::<4>::random([2, 3, 7, 7], burn::tensor::Distribution::Default, &device);
        let options = InterpolateOptions::new(InterpolateMode::Bilinear)
            .with_align_corners(true)
            .with_output_size([14, 14]);
        let expected = interpolate(x.clone(), options).into_data();
        resize_bilinear(x, [14, 14])
            .into_data()
            .assert_approx_eq::<f32>(&expected, Tolerance::absolute(1e-5));
    }
}
