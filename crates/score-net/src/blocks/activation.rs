//! Pointwise nonlinearity of NCSNv2.

use burn::tensor::Tensor;

/// ELU with α = 1: `elu(x) = max(x, 0) + exp(min(x, 0)) − 1`.
///
/// Written with `min`/`max` rather than a mask so that `exp` never sees a large positive
/// argument: its backward pass stays finite for any input. Both are two-sided `clamp`s, one
/// kernel each on the GPU backends, where burn's one-sided `clamp_min`/`clamp_max` are a
/// comparison and a masked fill (two launches each; an NCSNv2 forward has about 60 ELUs).
///
/// In a `cube` build a GPU tensor outside autodiff takes one fused kernel instead
/// (`blocks::cube`); under autodiff, on the CPU (`flex` feature) and on the GPU (`cube`), the ELU
/// is one operation with a hand-written backward pass, and on the CPU outside autodiff one loop
/// (`blocks::elu_autodiff`).
pub(crate) fn elu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    #[cfg(feature = "cube")]
    let x = match super::cube::elu(x) {
        Ok(y) => return y,
        Err(x) => x,
    };
    #[cfg(any(feature = "flex", feature = "cube"))]
    let x = match super::elu_autodiff::elu(x) {
        Ok(y) => return y,
        Err(x) => x,
    };
    elu_ops(x)
}

/// `(a + b, elu(a + b))`: where a residual sum is kept and activated. In a `cube` build GPU
/// tensors of one layout outside autodiff take one fused kernel that writes both
/// (`blocks::cube`).
pub(crate) fn add_elu(a: Tensor<4>, b: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
    #[cfg(feature = "cube")]
    let (a, b) = match super::cube::add_elu(a, b) {
        Ok(pair) => return pair,
        Err(inputs) => inputs,
    };
    let sum = a + b;
    (sum.clone(), elu(sum))
}

/// [`elu`] as tensor operations, on every backend and under autodiff.
pub(crate) fn elu_ops<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    x.clone().clamp(0.0, f32::INFINITY) + x.clamp(f32::NEG_INFINITY, 0.0).exp().sub_scalar(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData, Tolerance};

    #[test]
    fn elu_is_identity_above_zero_and_exp_minus_one_below() {
        let device = Device::flex();
        let x = Tensor::<1>::from_floats([-2.0, -0.5, 0.0, 0.5, 100.0], &device);
        let expected = TensorData::from([
            (-2.0f32).exp() - 1.0,
            (-0.5f32).exp() - 1.0,
            0.0,
            0.5,
            100.0,
        ]);
        elu(x)
            .into_data()
            .assert_approx_eq::<f32>(&expected, Tolerance::absolute(1e-6));
    }
}
