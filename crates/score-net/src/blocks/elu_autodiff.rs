//! The ELU as one differentiable operation with its backward pass written by hand: one pass over
//! the elements forward and one backward, where burn's autodiff takes the tensor operations of
//! [`super::activation::elu_ops`] (two clamps, each a comparison and a masked fill, an
//! exponential, a subtraction and a sum) and their backward passes (per clamp two comparisons
//! and two masked fills, and the exponential's product): some seventeen passes, or kernel
//! launches on a GPU, per ELU of a training step, and an NCSNv2 forward has about 60 ELUs.
//!
//! - Flex (the CPU backend, the `flex` feature): both passes are loops over the elements, on
//!   every core, for f32 tensors; the ELU outside autodiff (sampling on the CPU) takes the
//!   forward loop too.
//! - Cube (wgpu, the `cube` feature): both passes are one CubeCL kernel each (`blocks::cube`).
//! - Anything else (ndarray, 16-bit floats on the CPU) comes back as `Err`, and the caller takes
//!   the tensor operations.
//!
//! The backward pass needs only the output: `elu′(x) = 1` where `y = elu(x) > 0` and
//! `eˣ = y + 1` elsewhere, so the operation keeps `y` and no input. Builds with neither feature
//! have no such backend, and no module.

// `Err` hands the caller's own tensor back (the fused operation does not apply), not an error.
#![allow(clippy::result_large_err)]

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::{
    BalancedCheckpointing, CheckpointStrategy, NoCheckpointing,
};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::Autodiff;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, BackendTensor, DispatchTensorKind, GradientCheckpointingStrategy};
use burn::tensor::Tensor;

use super::dispatch::Applied;

/// The two passes of the ELU on one backend.
trait EluPasses: Backend {
    /// `elu(x)`.
    fn elu_forward(x: FloatTensor<Self>) -> FloatTensor<Self>;
    /// The gradient of `x` given `y = elu(x)` and the gradient of `y`: `grad` where `y > 0`,
    /// `grad · (y + 1)` elsewhere.
    fn elu_backward(y: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self>;
}

/// `elu(x)` as one tracked operation when autodiff tracks `x` on a backend with [`EluPasses`], or
/// as one pass on the CPU outside autodiff; `Err(x)` elsewhere (see the module docs).
pub(crate) fn elu<const D: usize>(x: Tensor<D>) -> Result<Tensor<D>, Tensor<D>> {
    super::dispatch::apply(x, |kind, strategy| match strategy {
        Some(strategy) => tracked(kind, strategy),
        None => untracked(kind),
    })
}

/// The ELU of an untracked backend tensor as one pass where this build has one for it (flex).
fn untracked(kind: DispatchTensorKind) -> Applied {
    match kind {
        #[cfg(feature = "flex")]
        DispatchTensorKind::Flex(BackendTensor::Float(t)) if flex::applies(&t) => {
            Ok(DispatchTensorKind::Flex(BackendTensor::Float(
                <burn::backend::Flex as EluPasses>::elu_forward(t),
            )))
        }
        other => Err(other),
    }
}

/// The tracked ELU of the backend tensor inside an autodiff tensor; the tensor back where no
/// backend of this build has [`EluPasses`] for it.
fn tracked(inner: DispatchTensorKind, strategy: GradientCheckpointingStrategy) -> Applied {
    match inner {
        #[cfg(feature = "flex")]
        DispatchTensorKind::Flex(BackendTensor::Autodiff(t)) if flex::applies(t.primitive()) => {
            Ok(DispatchTensorKind::Flex(BackendTensor::Autodiff(
                with_strategy::<burn::backend::Flex>(t, strategy),
            )))
        }
        #[cfg(feature = "cube")]
        DispatchTensorKind::Cube(BackendTensor::Autodiff(t))
            if qcs_cube::readable(t.primitive()) =>
        {
            Ok(DispatchTensorKind::Cube(BackendTensor::Autodiff(
                with_strategy::<burn::backend::Cube>(t, strategy),
            )))
        }
        other => Err(other),
    }
}

/// [`elu_tracked`] under the run's checkpointing strategy (the type the dispatch names it by).
fn with_strategy<B: EluPasses>(
    x: FloatTensor<Autodiff<B>>,
    strategy: GradientCheckpointingStrategy,
) -> FloatTensor<Autodiff<B>> {
    match strategy {
        GradientCheckpointingStrategy::Balanced => elu_tracked::<B, BalancedCheckpointing>(x),
        GradientCheckpointingStrategy::Disabled => elu_tracked::<B, NoCheckpointing>(x),
    }
}

/// The backward step: the output `y` is its state.
#[derive(Debug)]
struct EluBackward;

impl<B: EluPasses> Backward<B, 1> for EluBackward {
    type State = FloatTensor<B>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [parent] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        if let Some(parent) = parent {
            grads.register::<B>(parent.id, B::elu_backward(ops.state, grad));
        }
    }
}

/// `elu(x)` recorded as one operation whose backward pass is [`EluPasses::elu_backward`]. It keeps
/// its output for the backward pass (compute-bound: a checkpointing run keeps it too rather than
/// recomputing it).
fn elu_tracked<B: EluPasses, C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<B, C>>,
) -> FloatTensor<Autodiff<B, C>> {
    match EluBackward
        .prepare::<C>([x.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let y = B::elu_forward(x.into_primitive());
            prep.finish(y.clone(), y)
        }
        OpsKind::UnTracked(prep) => prep.finish(B::elu_forward(x.into_primitive())),
    }
}

/// The two passes as loops over the elements of f32 tensors on the CPU.
#[cfg(feature = "flex")]
pub(super) mod flex {
    use super::EluPasses;
    use burn::backend::flex::FlexTensor;
    use burn::backend::Flex;
    use burn::tensor::{DType, TensorData};
    use rayon::prelude::*;

    /// Elements per task: large enough that a task outweighs its scheduling.
    pub(in crate::blocks) const CHUNK: usize = 1 << 14;

    /// Whether the loops take `t`: an f32 tensor (16-bit ones take the tensor operations).
    pub(in crate::blocks) fn applies(t: &FlexTensor) -> bool {
        t.dtype() == DType::F32
    }

    /// `t`'s values in row-major order: its own buffer when they are, else a copy.
    pub(in crate::blocks) fn row_major(t: &FlexTensor) -> std::borrow::Cow<'_, [f32]> {
        match t.as_slice::<f32>() {
            Some(values) => std::borrow::Cow::Borrowed(values),
            None => std::borrow::Cow::Owned(t.to_contiguous().as_slice::<f32>().map_or_else(
                || unreachable!("a contiguous copy is a slice"),
                <[f32]>::to_vec,
            )),
        }
    }

    fn tensor(values: Vec<f32>, like: &FlexTensor) -> FlexTensor {
        FlexTensor::from_data(TensorData::new(values, like.layout().shape().clone()))
    }

    impl EluPasses for Flex {
        fn elu_forward(x: FlexTensor) -> FlexTensor {
            let mut values = Vec::new();
            row_major(&x)
                .par_iter()
                .with_min_len(CHUNK)
                .map(|&v| if v > 0.0 { v } else { v.exp() - 1.0 })
                .collect_into_vec(&mut values);
            tensor(values, &x)
        }

        fn elu_backward(y: FlexTensor, grad: FlexTensor) -> FlexTensor {
            let mut values = Vec::new();
            let (ys, grads) = (row_major(&y), row_major(&grad));
            ys.par_iter()
                .zip(grads.par_iter())
                .with_min_len(CHUNK)
                .map(|(&y, &g)| if y > 0.0 { g } else { g * (y + 1.0) })
                .collect_into_vec(&mut values);
            tensor(values, &y)
        }
    }
}

#[cfg(feature = "cube")]
impl EluPasses for burn::backend::Cube {
    fn elu_forward(x: FloatTensor<Self>) -> FloatTensor<Self> {
        super::cube::elu_forward(x)
    }

    fn elu_backward(y: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        super::cube::elu_backward(y, grad)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocks::activation::elu_ops;
    use burn::tensor::{Device, TensorData, Tolerance};

    /// `[2, 3, 5, 4]` values spanning both branches of the ELU (large negative values where `eˣ`
    /// underflows towards 0, large positive ones), deterministic; with exact zeros when `zeros`.
    fn values(zeros: bool) -> Vec<f32> {
        (0..120)
            .map(|i| match i % 8 {
                0 if zeros => 0.0,
                0 => 0.3 - i as f32 * 0.005,
                1 => -30.0 + i as f32 * 0.01,
                2 => 25.0 - i as f32 * 0.03,
                _ => ((i * 37 % 101) as f32 - 50.5) * 0.07,
            })
            .collect()
    }

    /// The ELU's value and `∂/∂x Σ w ⊙ elu(elu(x))` on `device` (an autodiff one), with the
    /// ELUs tracked as one operation each (`fused`) or as tensor operations; `x` laid out
    /// channels-last when `channels_last`, as a convolution's output can be.
    fn value_and_gradient(
        device: &Device,
        fused: bool,
        channels_last: bool,
        zeros: bool,
    ) -> [TensorData; 2] {
        let shape = if channels_last {
            [2, 5, 4, 3]
        } else {
            [2, 3, 5, 4]
        };
        let leaf =
            Tensor::<4>::from_data(TensorData::new(values(zeros), shape), device).require_grad();
        let x = if channels_last {
            leaf.clone().permute([0, 3, 1, 2])
        } else {
            leaf.clone()
        };
        let w = Tensor::<4>::from_data(
            TensorData::new(
                (0..120).map(|i| (i % 7) as f32 - 2.5).collect(),
                [2, 3, 5, 4],
            ),
            device,
        );
        let activate = |x: Tensor<4>| {
            if fused {
                elu(x).unwrap_or_else(|_| panic!("the tracked ELU must apply"))
            } else {
                elu_ops(x)
            }
        };
        let y = activate(x);
        let loss = (activate(y.clone()) * w).sum();
        let grads = loss.backward();
        let gradient = leaf.grad(&grads).expect("x is tracked");
        [y.into_data(), gradient.into_data()]
    }

    /// The closed form of [`value_and_gradient`]'s gradient, computed on the host: `elu′(z) = 1`
    /// for `z > 0` and `eᶻ` otherwise, chained twice. In `[2, 3, 5, 4]` order, with zeros.
    fn closed_form_gradient() -> Vec<f32> {
        let derivative = |z: f32| if z > 0.0 { 1.0 } else { z.exp() };
        let elu = |z: f32| if z > 0.0 { z } else { z.exp() - 1.0 };
        values(true)
            .into_iter()
            .enumerate()
            .map(|(i, x)| ((i % 7) as f32 - 2.5) * derivative(elu(x)) * derivative(x))
            .collect()
    }

    /// The tracked ELU against the tensor operations away from 0, and against the closed form
    /// with zeros: at exactly 0 the tensor operations' autodiff passes the gradient through both
    /// clamps (a derivative of 2), where the ELU's is 1 from either side.
    fn check_against_the_tensor_operations(device: &Device) {
        for channels_last in [false, true] {
            let [value, gradient] = value_and_gradient(device, true, channels_last, false);
            let [expected_value, expected_gradient] =
                value_and_gradient(device, false, channels_last, false);
            value.assert_approx_eq::<f32>(&expected_value, Tolerance::absolute(1e-6));
            gradient.assert_approx_eq::<f32>(&expected_gradient, Tolerance::absolute(1e-5));
        }
        let [_, gradient] = value_and_gradient(device, true, false, true);
        gradient.assert_approx_eq::<f32>(
            &TensorData::new(closed_form_gradient(), [2, 3, 5, 4]),
            Tolerance::absolute(1e-5),
        );
    }

    #[cfg(feature = "flex")]
    #[test]
    fn the_tracked_elu_on_the_cpu_has_the_tensor_operations_values_and_gradients() {
        check_against_the_tensor_operations(&Device::flex().autodiff());
        check_against_the_tensor_operations(&Device::flex().autodiff().gradient_checkpointing());
    }

    #[cfg(feature = "flex")]
    #[test]
    fn the_cpu_elu_outside_autodiff_is_one_loop_with_the_tensor_operations_values() {
        let device = Device::flex();
        let x = Tensor::<4>::from_data(TensorData::new(values(true), [2, 3, 5, 4]), &device);
        for x in [x.clone(), x.permute([0, 2, 3, 1])] {
            let expected = elu_ops(x.clone()).into_data();
            let y = elu(x).unwrap_or_else(|_| panic!("the loop must apply"));
            y.into_data()
                .assert_approx_eq::<f32>(&expected, Tolerance::absolute(1e-6));
        }
    }

    #[cfg(feature = "flex")]
    #[test]
    fn sixteen_bit_and_ndarray_tensors_take_the_tensor_operations() {
        let x = Tensor::<1>::from_floats([-1.0, 2.0], &Device::flex())
            .cast(burn::tensor::FloatDType::F16);
        assert!(elu(x).is_err());
        #[allow(deprecated)]
        let ndarray = Device::ndarray().autodiff();
        let x = Tensor::<1>::from_floats([-1.0, 2.0], &ndarray).require_grad();
        assert!(elu(x).is_err());
    }

    #[cfg(feature = "cube")]
    #[test]
    fn the_tracked_elu_on_the_gpu_has_the_tensor_operations_values_and_gradients() {
        for device in qcs_testkit::wgpu_devices() {
            check_against_the_tensor_operations(&device.autodiff());
        }
    }
}
