//! The training step's fused CubeCL kernels (`cube` feature): Adam's update of one parameter, and
//! the EMA's blend of one.

// `Err` hands the caller's own tensors back (the kernel does not apply), not an error.
#![allow(clippy::result_large_err)]

use burn::optim::{AdamState, AdaptiveMomentumState, LearningRate};
use burn::tensor::Tensor;
use qcs_cube::{
    cube_primitives, element_type, empty_with_layout, from_cube, in_memory_order, into_contiguous,
    launch_dims, readable_f32, sequence, walkable, CubeTensor,
};

use super::adam::AdamConstants;
use kernels::{adam_kernel, ema_kernel};

mod kernels {
    use cubecl::prelude::*;
    use qcs_cube::strided_offset;

    /// One Adam step on element `i` of the parameter and the outputs (of one layout that fills
    /// their buffers), burn's arithmetic in burn's order (`burn::optim::Adam`):
    /// `m ← β₁m + (1 − β₁)g`, `v ← β₂v + (1 − β₂)g²` (from zero moments on the `first` step),
    /// `θ ← θ − lr·(m·c)/(√v + ε')` with the bias corrections folded into `c` and `ε'`. The
    /// gradient and the moments may have any layout: element `i` has the coordinates `i`
    /// decomposes into over the parameter's four dimensions (padded with leading ones) from the
    /// outermost in memory (`sizes`), and each of them holds it at those coordinates times its
    /// strides (the same order).
    #[cube(launch_unchecked)]
    #[allow(clippy::too_many_arguments)]
    pub(super) fn adam_kernel<F: Float>(
        param: &Tensor<F>,
        grad: &Tensor<F>,
        moment_1: &Tensor<F>,
        moment_2: &Tensor<F>,
        param_out: &mut Tensor<F>,
        moment_1_out: &mut Tensor<F>,
        moment_2_out: &mut Tensor<F>,
        sizes: Sequence<usize>,
        grad_strides: Sequence<usize>,
        moment_1_strides: Sequence<usize>,
        moment_2_strides: Sequence<usize>,
        beta_1: f32,
        beta_2: f32,
        step_factor: f32,
        epsilon: f32,
        lr: f32,
        #[comptime] first: bool,
        #[define(F)] _dtype: ElemType,
    ) {
        let i = ABSOLUTE_POS;
        if i >= param_out.len() {
            terminate!();
        }
        let g = grad[strided_offset(i, &sizes, &grad_strides)];
        let (b1, b2) = (F::cast_from(beta_1), F::cast_from(beta_2));
        let (c1, c2) = (F::new(1.0) - b1, F::new(1.0) - b2);
        let mut m = g * c1;
        let mut v = (g * g) * c2;
        if !first {
            m = moment_1[strided_offset(i, &sizes, &moment_1_strides)] * b1 + m;
            v = moment_2[strided_offset(i, &sizes, &moment_2_strides)] * b2 + v;
        }
        moment_1_out[i] = m;
        moment_2_out[i] = v;
        let step = (m * F::cast_from(step_factor)) / (F::sqrt(v) + F::cast_from(epsilon));
        param_out[i] = param[i] - step * F::cast_from(lr);
    }

    /// `out = ema·rate + value·keep` on element `i` of `ema` and `out` (of one layout that fills
    /// their buffers; `ema_update`'s arithmetic, `keep = 1 − rate` computed by the caller as burn
    /// would); `value` in any layout, read as the gradient of [`adam_kernel`].
    #[cube(launch_unchecked)]
    pub(super) fn ema_kernel<F: Float>(
        ema: &Tensor<F>,
        value: &Tensor<F>,
        out: &mut Tensor<F>,
        sizes: Sequence<usize>,
        value_strides: Sequence<usize>,
        rate: f32,
        keep: f32,
        #[define(F)] _dtype: ElemType,
    ) {
        let i = ABSOLUTE_POS;
        if i >= out.len() {
            terminate!();
        }
        let at = strided_offset(i, &sizes, &value_strides);
        out[i] = ema[i] * F::cast_from(rate) + value[at] * F::cast_from(keep);
    }
}

/// `t` where its elements fill its buffer (in any order of the dimensions: a parameter stored
/// channels-last keeps its layout, and the kernels' outputs take it), else a contiguous copy.
fn walkable_or_copy(t: CubeTensor) -> CubeTensor {
    if walkable(&t) {
        t
    } else {
        into_contiguous(t)
    }
}

/// `ema·rate + value·(1 − rate)` (of one shape) in one kernel, or `Err` with both where the
/// kernel does not apply (as for [`adam_step`]).
pub(crate) fn ema_blend<const D: usize>(
    ema: Tensor<D>,
    value: Tensor<D>,
    rate: f64,
) -> Result<Tensor<D>, (Tensor<D>, Tensor<D>)> {
    if ema.dims() != value.dims() {
        return Err((ema, value));
    }
    if D > 4 {
        return Err((ema, value));
    }
    let [e, v] = match cube_primitives([ema.clone(), value.clone()]) {
        Ok([e, v]) if readable_f32(&e) && readable_f32(&v) => [walkable_or_copy(e), v],
        _ => return Err((ema, value)),
    };
    let (sizes, [value_strides]) = in_memory_order(&e, [v.meta.strides()]);
    let out = empty_with_layout(&e);
    let (count, dim) = launch_dims(&out);
    let client = e.client.clone();
    let dtype = element_type(&e);
    // SAFETY: `ema` and `out` (a new buffer of `ema`'s layout) share one layout that fills each
    // buffer, so every unit `i < len` reads and writes the same element of each, inside it; its
    // coordinates are below the shape `value` shares, read through `value`'s own strides.
    unsafe {
        ema_kernel::launch_unchecked(
            &client,
            count,
            dim,
            e.into_tensor_arg(),
            v.into_tensor_arg(),
            out.clone().into_tensor_arg(),
            sequence(sizes),
            sequence(value_strides),
            rate as f32,
            (1.0 - rate) as f32,
            dtype,
        );
    }
    Ok(from_cube(out))
}

/// The inputs of a step handed back where the kernel does not apply.
type Inputs<const D: usize> = (Tensor<D>, Tensor<D>, Option<AdamState<D>>);

/// burn's Adam step (no weight decay, no AMSGrad) on `tensor` with `grad` in one kernel: the new
/// parameter and state, or `Err` with the inputs where the kernel does not apply (not f32
/// tensors of the Cube backend outside autodiff, more than four dimensions). The gradient and the
/// moments are read through their strides, in any layout (a convolution's weight gradient comes
/// channels-last; moments loaded from a checkpoint row-major); the new parameter and moments take
/// the parameter's layout.
pub(crate) fn adam_step<const D: usize>(
    constants: AdamConstants,
    lr: LearningRate,
    tensor: Tensor<D>,
    grad: Tensor<D>,
    state: Option<AdamState<D>>,
) -> Result<(Tensor<D>, AdamState<D>), Inputs<D>> {
    let dims = tensor.dims();
    let (time, moments) = match &state {
        Some(s) if s.momentum.max_moment_2.is_none() => (
            s.momentum.time + 1,
            Some((s.momentum.moment_1.clone(), s.momentum.moment_2.clone())),
        ),
        Some(_) => return Err((tensor, grad, state)),
        None => (1, None),
    };
    if D > 4
        || grad.dims() != dims
        || moments
            .as_ref()
            .is_some_and(|(m, v)| m.dims() != dims || v.dims() != dims)
    {
        return Err((tensor, grad, state));
    }
    let first = moments.is_none();
    // Placeholders on the first step, never read.
    let (m, v) = moments.unwrap_or_else(|| (tensor.clone(), tensor.clone()));
    let [param, g, m, v] = match cube_primitives([tensor.clone(), grad.clone(), m, v]) {
        Ok(all) if all.iter().all(readable_f32) => all,
        _ => return Err((tensor, grad, state)),
    };
    let param = walkable_or_copy(param);
    let (sizes, [grad_strides, m_strides, v_strides]) = in_memory_order(
        &param,
        [g.meta.strides(), m.meta.strides(), v.meta.strides()],
    );
    let param_out = empty_with_layout(&param);
    let m_out = empty_with_layout(&param);
    let v_out = empty_with_layout(&param);
    // burn's scalars, in f32 as burn computes them.
    let AdamConstants {
        beta_1,
        beta_2,
        epsilon,
    } = constants;
    let exponent = time as i32;
    let bias_correction_2 = (1.0 - beta_2.powi(exponent)).sqrt();
    let step_factor = bias_correction_2 / (1.0 - beta_1.powi(exponent));
    let (count, dim) = launch_dims(&param_out);
    let client = param.client.clone();
    let dtype = element_type(&param);
    // SAFETY: the parameter and the outputs (new buffers of its layout) share one layout that fills
    // each buffer, so every unit `i < len` reads and writes the same element of each, inside it;
    // its coordinates are below the shape the gradient and the moments share, read through their
    // own strides (the moments, placeholders of the parameter's shape on the first step, unread).
    unsafe {
        adam_kernel::launch_unchecked(
            &client,
            count,
            dim,
            param.into_tensor_arg(),
            g.into_tensor_arg(),
            m.into_tensor_arg(),
            v.into_tensor_arg(),
            param_out.clone().into_tensor_arg(),
            m_out.clone().into_tensor_arg(),
            v_out.clone().into_tensor_arg(),
            sequence(sizes),
            sequence(grad_strides),
            sequence(m_strides),
            sequence(v_strides),
            beta_1,
            beta_2,
            step_factor,
            epsilon * bias_correction_2,
            lr as f32,
            first,
            dtype,
        );
    }
    let momentum = AdaptiveMomentumState::new(time, from_cube(m_out), from_cube(v_out));
    Ok((from_cube(param_out), AdamState::new(momentum)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::adam::FusedAdam;
    use burn::optim::{AdamConfig, Optimizer};
    use burn::tensor::{Device, TensorData};

    fn tensor<const D: usize>(shape: [usize; D], phase: f32, device: &Device) -> Tensor<D> {
        let n: usize = shape.iter().product();
        let values: Vec<f32> = (0..n).map(|k| (0.37 * k as f32 + phase).sin()).collect();
        Tensor::from_data(TensorData::new(values, shape), device)
    }

    fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().expect("f32")
    }

    fn assert_close(got: Vec<f32>, want: Vec<f32>, what: &str) {
        assert_eq!(got.len(), want.len());
        let scale = want.iter().fold(0f32, |a, w| a.max(w.abs()));
        for (k, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(
                (g - w).abs() <= 1e-6 * scale.max(1e-30),
                "{what}[{k}]: {g} against {w}"
            );
        }
    }

    /// Three steps of both optimizers from the same start, with gradients that change sign and
    /// scale: the parameters and both moments agree to float rounding, and the kernel ran.
    fn compare<const D: usize>(shape: [usize; D], device: &Device) {
        let constants = AdamConstants {
            beta_1: 0.9,
            beta_2: 0.99,
            epsilon: 1e-8,
        };
        let config = AdamConfig::new().with_beta_2(0.99).with_epsilon(1e-8);
        let (fused, burn_adam) = (FusedAdam::new(constants), config.build());
        let (mut a, mut b) = (tensor(shape, 0.1, device), tensor(shape, 0.1, device));
        let (mut state_a, mut state_b) = (None, None);
        for step in 0..3 {
            let grad = tensor(shape, 1.0 + step as f32, device).mul_scalar(10f32.powi(step - 1));
            let lr = 1e-3 * (step + 1) as f64;
            assert!(
                adam_step(constants, lr, a.clone(), grad.clone(), state_a.clone()).is_ok(),
                "the kernel must apply on {device:?}"
            );
            (a, state_a) = fused.step(lr, a, grad.clone(), state_a);
            (b, state_b) = burn_adam.step(lr, b, grad, state_b);
        }
        let (sa, sb) = (state_a.expect("state"), state_b.expect("state"));
        assert_eq!(sa.momentum.time, sb.momentum.time);
        assert_close(host(a), host(b), "parameter");
        assert_close(host(sa.momentum.moment_1), host(sb.momentum.moment_1), "m");
        assert_close(host(sa.momentum.moment_2), host(sb.momentum.moment_2), "v");
    }

    #[test]
    fn fused_adam_matches_burns_adam() {
        for device in qcs_testkit::wgpu_devices() {
            compare([7], &device);
            compare([5, 3, 3, 3], &device);
        }
    }

    #[test]
    fn fused_adam_takes_permuted_tensors() {
        /// Three steps of the fused Adam and burn's from `start` with the gradients `grad(step)`:
        /// the parameters and both moments agree.
        fn follow_burn<const D: usize>(start: Tensor<D>, grad: impl Fn(f32) -> Tensor<D>) {
            let constants = AdamConstants {
                beta_1: 0.9,
                beta_2: 0.999,
                epsilon: 1e-5,
            };
            let burn_adam = AdamConfig::new().build();
            let (mut a, mut b) = (start.clone(), start);
            let (mut state_a, mut state_b) = (None, None);
            for step in 0..3 {
                let grad = grad(step as f32);
                let (next, state) = adam_step(constants, 1e-2, a, grad.clone(), state_a)
                    .unwrap_or_else(|_| panic!("the kernel must apply"));
                (a, state_a) = (next, Some(state));
                (b, state_b) = burn_adam.step(1e-2, b, grad, state_b);
            }
            assert_close(host(a), host(b), "parameter");
            let (sa, sb) = (state_a.expect("state"), state_b.expect("state"));
            assert_close(host(sa.momentum.moment_1), host(sb.momentum.moment_1), "m");
            assert_close(host(sa.momentum.moment_2), host(sb.momentum.moment_2), "v");
        }
        for device in qcs_testkit::wgpu_devices() {
            let d = &device;
            // A contiguous parameter with a permuted gradient, then both permuted alike.
            let transposed = |phase| tensor([3, 5], phase, d).transpose();
            follow_burn(tensor([5, 3], 0.4, d), transposed);
            follow_burn(transposed(0.4), transposed);
            // A convolution's weight with a channels-last gradient, and a channels-last weight (as
            // training stores it) with a row-major gradient.
            let channels_last = |phase| tensor([4, 3, 2, 3], phase, d).permute([0, 3, 1, 2]);
            follow_burn(tensor([4, 3, 3, 2], 0.7, d), channels_last);
            follow_burn(channels_last(0.7), |phase| tensor([4, 3, 3, 2], phase, d));
        }
    }

    #[test]
    fn fused_ema_matches_the_tensor_operations() {
        for device in qcs_testkit::wgpu_devices() {
            let (ema, value) = (
                tensor([5, 3, 3, 3], 0.2, &device),
                tensor([5, 3, 3, 3], 2.0, &device),
            );
            let rate = 0.999;
            let want = ema.clone().mul_scalar(rate) + value.clone().mul_scalar(1.0 - rate);
            let got = ema_blend(ema, value, rate).expect("the kernel must apply");
            assert_close(host(got), host(want), "ema");
        }
        for device in qcs_testkit::non_kernel_devices() {
            let t = tensor([4], 0.0, &device);
            assert!(ema_blend(t.clone(), t, 0.5).is_err());
        }
    }

    #[test]
    fn fused_adam_leaves_the_cpu_and_autodiff_to_burns_adam() {
        for device in qcs_testkit::non_kernel_devices() {
            let constants = AdamConstants {
                beta_1: 0.9,
                beta_2: 0.999,
                epsilon: 1e-5,
            };
            let t = tensor([4], 0.0, &device);
            let result = adam_step(constants, 1e-3, t.clone(), t, None);
            assert!(result.is_err());
        }
    }
}
