//! Hand-fused CubeCL kernels for the network's forward pass on the GPU backends (`cube` feature),
//! and the backward passes of the ELU and of InstanceNorm++ with its ELU.
//!
//! burn's kernel fusion stays off on wgpu (it computes wrong numbers in burn 0.22.1:
//! docs/BENCHMARKS.md), so every tensor operation is a kernel launch of its own, and at small
//! batches a Langevin step costs its launches, not its arithmetic. The kernels here take the
//! largest groups of launches of an NCSNv2 forward:
//!
//! - [`elu`]: the ELU, five launches as tensor operations (`activation::elu_ops`), one here;
//! - [`add_elu`]: a residual sum and its ELU, the sum and the ELU written by one kernel (where
//!   the refine blocks add a path and the next unit activates the result: two launches before);
//! - [`instance_norm_elu`]: InstanceNorm++ followed by the ELU, 28 launches as tensor
//!   operations (`norm::InstanceNorm2dPlus`: 26 operations and two reshape copies), three here: the plane statistics, the per-channel
//!   factors, and the affine map with the ELU.
//!
//! They run only on a tensor of the Cube backend that autodiff does not track (sampling) and
//! whose elements fill their buffer (any order of the dimensions: a convolution's channels-last
//! output qualifies). Anything else comes back untouched as `Err`, and the caller takes another
//! path. In training the ELU's two passes, [`elu_forward`] and [`elu_backward`], are kernels here
//! too, called by the tracked ELU (`blocks::elu_autodiff`), which records the backward pass; and
//! so are InstanceNorm++ and its ELU, [`norm_elu_forward`] (the three kernels above) and
//! [`norm_elu_backward`] (four more), called by the tracked normalization
//! (`blocks::norm_autodiff`).
//!
//! The elementwise kernels walk the input's buffer linearly and write an output of the same
//! layout, in place when the input's buffer is not shared.

// `Err` hands the caller's own tensor back (the kernel does not apply), not an error; a tensor is
// some 640 bytes, and boxing it would allocate on every fallback.
#![allow(clippy::result_large_err)]

use burn::backend::ops::FloatTensorOps;
use burn::tensor::{DType, Tensor};
use cubecl::prelude::{CubeCount, CubeDim};
use qcs_cube::{
    cube_primitive, cube_primitives, element_type, empty_like, empty_with_layout, from_cube,
    in_memory_order, into_contiguous, launch_dims, output_arg, output_like, sequence, walkable,
    CubeTensor,
};

use kernels::{
    add_elu_kernel, affine_elu_kernel, channel_factors_kernel, elu_backward_kernel, elu_kernel,
    norm_elu_input_grad_kernel, norm_elu_sums_kernel, norm_grad_coefficients_kernel,
    norm_param_grads_kernel, plane_stats_kernel, STATS_UNITS,
};

mod kernels {
    use cubecl::prelude::*;
    use qcs_cube::{cube_sum, strided_offset};

    /// ELU with α = 1 on one element: `max(x, eˣ⁻ − 1)` with `x⁻ = min(x, 0)`, which is `x` for
    /// `x > 0` (where `e⁰ − 1 = 0 < x`) and `eˣ − 1` for `x ≤ 0` (where `eˣ − 1 ≥ x`).
    #[cube]
    fn elu_one<F: Float>(x: F) -> F {
        F::max(x, F::exp(F::min(x, F::new(0.0))) - F::new(1.0))
    }

    #[cube(launch_unchecked)]
    pub(super) fn elu_kernel<F: Float>(
        input: &Tensor<F>,
        output: &mut Tensor<F>,
        #[define(F)] _dtype: ElemType,
    ) {
        if ABSOLUTE_POS >= output.len() {
            terminate!();
        }
        output[ABSOLUTE_POS] = elu_one::<F>(input[ABSOLUTE_POS]);
    }

    /// The ELU's backward pass given its output `y`: `grad` where `y > 0`, `grad·(y + 1)` (which is
    /// `grad·eˣ`) elsewhere; `output`, `grad` and `input_grad` of one layout.
    #[cube(launch_unchecked)]
    pub(super) fn elu_backward_kernel<F: Float>(
        output: &Tensor<F>,
        grad: &Tensor<F>,
        input_grad: &mut Tensor<F>,
        #[define(F)] _dtype: ElemType,
    ) {
        if ABSOLUTE_POS >= input_grad.len() {
            terminate!();
        }
        let y = output[ABSOLUTE_POS];
        let mut g = grad[ABSOLUTE_POS];
        if y <= F::new(0.0) {
            g *= y + F::new(1.0);
        }
        input_grad[ABSOLUTE_POS] = g;
    }

    /// `sum = a + b` and `activated = elu(a + b)`, elementwise over `a`'s buffer (and the
    /// outputs', of `a`'s layout). `b` may have another layout: element `i` of `a`'s buffer is at
    /// [`strided_offset`] in it, with `a`'s `sizes` and `b`'s strides in `a`'s memory order
    /// ([`qcs_cube::in_memory_order`]).
    #[cube(launch_unchecked)]
    pub(super) fn add_elu_kernel<F: Float>(
        a: &Tensor<F>,
        b: &Tensor<F>,
        sum: &mut Tensor<F>,
        activated: &mut Tensor<F>,
        sizes: Sequence<usize>,
        b_strides: Sequence<usize>,
        #[define(F)] _dtype: ElemType,
    ) {
        let i = ABSOLUTE_POS;
        if i >= sum.len() {
            terminate!();
        }
        let s = a[i] + b[strided_offset(i, &sizes, &b_strides)];
        sum[i] = s;
        activated[i] = elu_one::<F>(s);
    }

    /// Units per cube of the two reduction kernels: a cube sums one plane (or one batch
    /// element's channels) in `STATS_UNITS` strided partial sums and a tree in shared memory.
    pub(super) const STATS_UNITS: usize = 64;

    /// Per plane `p = b·C + c` of `x` (one cube each): the spatial mean `μ` and biased variance
    /// `s²` over its `H·W` values, in two passes (the mean, then the squared deviations from it),
    /// computed in `A` (f32) whatever `x`'s float type `F`. `x` may have any dense layout: its
    /// element `(b, c, h, w)` is at `b·sb + c·sc + h·sh + w·sw`.
    #[cube(launch_unchecked)]
    #[allow(clippy::too_many_arguments)]
    pub(super) fn plane_stats_kernel<F: Float, A: Float>(
        input: &Tensor<F>,
        mean: &mut Tensor<A>,
        var: &mut Tensor<A>,
        channels: usize,
        height: usize,
        width: usize,
        stride_b: usize,
        stride_c: usize,
        stride_h: usize,
        stride_w: usize,
        #[define(F, A)] _dtypes: [ElemType; 2],
    ) {
        let p = (CUBE_POS_Y * CUBE_COUNT_X + CUBE_POS_X) as usize;
        if p >= mean.len() {
            terminate!();
        }
        let u = UNIT_POS_X as usize;
        let base = (p / channels) * stride_b + (p % channels) * stride_c;
        let count = height * width;
        let mut partial = Shared::new_slice(STATS_UNITS);

        let mut sum = A::new(0.0);
        let mut k = u;
        while k < count {
            sum += A::cast_from(input[base + (k / width) * stride_h + (k % width) * stride_w]);
            k += STATS_UNITS;
        }
        let mu = cube_sum::<A>(&mut partial, sum) / A::cast_from(count);

        let mut squares = A::new(0.0);
        let mut k = u;
        while k < count {
            let x = A::cast_from(input[base + (k / width) * stride_h + (k % width) * stride_w]);
            let d = x - mu;
            squares += d * d;
            k += STATS_UNITS;
        }
        let squares = cube_sum::<A>(&mut partial, squares);
        if u == 0 {
            mean[p] = mu;
            var[p] = squares / A::cast_from(count);
        }
    }

    /// Per batch element `b` (one cube each), InstanceNorm++'s per-channel factors from the plane
    /// statistics: with `m`, `v` the mean and unbiased variance of the `μ_c` across channels,
    /// `scale_c = γ_c/√(s²_c + ε)` and `shift_c = α_c·γ_c·rel_c + β_c`, where
    /// `rel_c = (μ_c − m)/√(v + ε)`; `rel` and `inv_spread[b] = 1/√(v + ε)` are written too, for
    /// the backward pass of training (`blocks::norm_autodiff`).
    #[cube(launch_unchecked)]
    #[allow(clippy::too_many_arguments)]
    pub(super) fn channel_factors_kernel<F: Float>(
        mean: &Tensor<F>,
        var: &Tensor<F>,
        alpha: &Tensor<F>,
        gamma: &Tensor<F>,
        beta: &Tensor<F>,
        scale: &mut Tensor<F>,
        shift: &mut Tensor<F>,
        rel: &mut Tensor<F>,
        inv_spread: &mut Tensor<F>,
        channels: usize,
        epsilon: f32,
        #[define(F)] _dtype: ElemType,
    ) {
        let b = CUBE_POS_X as usize;
        let u = UNIT_POS_X as usize;
        let base = b * channels;
        let mut partial = Shared::new_slice(STATS_UNITS);

        let mut sum = F::new(0.0);
        let mut c = u;
        while c < channels {
            sum += mean[base + c];
            c += STATS_UNITS;
        }
        let m = cube_sum::<F>(&mut partial, sum) / F::cast_from(channels);

        let mut squares = F::new(0.0);
        let mut c = u;
        while c < channels {
            let d = mean[base + c] - m;
            squares += d * d;
            c += STATS_UNITS;
        }
        let squares = cube_sum::<F>(&mut partial, squares);
        let epsilon = F::cast_from(epsilon);
        let spread = F::sqrt(squares / F::cast_from(channels - 1) + epsilon);
        if u == 0 {
            inv_spread[b] = F::new(1.0) / spread;
        }

        let mut c = u;
        while c < channels {
            let g = gamma[c];
            let r = (mean[base + c] - m) / spread;
            scale[base + c] = g / F::sqrt(var[base + c] + epsilon);
            shift[base + c] = alpha[c] * g * r + beta[c];
            rel[base + c] = r;
            c += STATS_UNITS;
        }
    }

    /// `out = elu((x − μ[b, c])·scale[b, c] + shift[b, c])` elementwise over the buffer, element
    /// `i` at batch `(i / stride_b) % batch` and channel `(i / stride_c) % channels`; `μ`,
    /// `scale` and `shift` are contiguous `[batch, channels]` of `A` (f32), in which the map is
    /// computed, `x` and `out` of `F`.
    #[cube(launch_unchecked)]
    #[allow(clippy::too_many_arguments)]
    pub(super) fn affine_elu_kernel<F: Float, A: Float>(
        input: &Tensor<F>,
        mean: &Tensor<A>,
        scale: &Tensor<A>,
        shift: &Tensor<A>,
        output: &mut Tensor<F>,
        stride_b: usize,
        batch: usize,
        stride_c: usize,
        channels: usize,
        #[define(F, A)] _dtypes: [ElemType; 2],
    ) {
        let i = ABSOLUTE_POS;
        if i >= output.len() {
            terminate!();
        }
        let b = (i / stride_b) % batch;
        let c = (i / stride_c) % channels;
        let p = b * channels + c;
        let x = A::cast_from(input[i]);
        output[i] = F::cast_from(elu_one::<A>((x - mean[p]) * scale[p] + shift[p]));
    }

    /// `elu′(o)·g` from the ELU's output `y = elu(o)`: `g` where `y > 0`, `g·(y + 1)` (which is
    /// `g·eᵒ`) elsewhere.
    #[cube]
    fn elu_grad<F: Float>(y: F, g: F) -> F {
        let mut g = g;
        if y <= F::new(0.0) {
            g *= y + F::new(1.0);
        }
        g
    }

    /// Per plane `p = b·C + c` of the tracked InstanceNorm++ and ELU (one cube each), the two sums
    /// of its backward pass: with `d = x − μ_p` and `g′ = elu′(o)·g` (from the output `y`),
    /// `s1[p] = Σ g′` and `sd[p] = Σ g′·d` over the plane. `x` and `y` (of one layout) and `g`
    /// are read through their strides.
    #[cube(launch_unchecked)]
    #[allow(clippy::too_many_arguments)]
    pub(super) fn norm_elu_sums_kernel<F: Float>(
        input: &Tensor<F>,
        output: &Tensor<F>,
        grad: &Tensor<F>,
        mean: &Tensor<F>,
        s1: &mut Tensor<F>,
        sd: &mut Tensor<F>,
        channels: usize,
        width: usize,
        count: usize,
        x_strides: Sequence<usize>,
        g_strides: Sequence<usize>,
        #[define(F)] _dtype: ElemType,
    ) {
        let p = (CUBE_POS_Y * CUBE_COUNT_X + CUBE_POS_X) as usize;
        if p >= s1.len() {
            terminate!();
        }
        let u = UNIT_POS_X as usize;
        let b = p / channels;
        let c = p % channels;
        let x_base = b * x_strides[0] + c * x_strides[1];
        let g_base = b * g_strides[0] + c * g_strides[1];
        let mu = mean[p];
        let mut partial = Shared::new_slice(STATS_UNITS);

        let mut sum = F::new(0.0);
        let mut weighted = F::new(0.0);
        let mut k = u;
        while k < count {
            let h = k / width;
            let w = k % width;
            let at = x_base + h * x_strides[2] + w * x_strides[3];
            let d = input[at] - mu;
            let g = elu_grad::<F>(
                output[at],
                grad[g_base + h * g_strides[2] + w * g_strides[3]],
            );
            sum += g;
            weighted += g * d;
            k += STATS_UNITS;
        }
        let sum = cube_sum::<F>(&mut partial, sum);
        let weighted = cube_sum::<F>(&mut partial, weighted);
        if u == 0 {
            s1[p] = sum;
            sd[p] = weighted;
        }
    }

    /// Per batch element `b` (one cube each), the per-plane coefficients of the input gradient
    /// `∂x = scale·g′ + coef_d·d + coef_c` (with `g′`, `d` of [`norm_elu_sums_kernel`] and `n`
    /// values per plane): with `σ⁻² = 1/(s² + ε)`, `coef_d = −scale·sd·σ⁻²/n`, and
    /// `coef_c = (∂μ − scale·s1)/n`, where `∂μ_c = (G_c − Ḡ − T·rel_c/(C − 1))/√(v + ε)` is
    /// the gradient reaching the plane mean through the relative means, `G_c = γ_c·α_c·s1_c`,
    /// `Ḡ` their mean over the channels and `T = Σ_c G_c·rel_c`.
    #[cube(launch_unchecked)]
    #[allow(clippy::too_many_arguments)]
    pub(super) fn norm_grad_coefficients_kernel<F: Float>(
        s1: &Tensor<F>,
        sd: &Tensor<F>,
        var: &Tensor<F>,
        scale: &Tensor<F>,
        rel: &Tensor<F>,
        inv_spread: &Tensor<F>,
        alpha: &Tensor<F>,
        gamma: &Tensor<F>,
        coef_d: &mut Tensor<F>,
        coef_c: &mut Tensor<F>,
        channels: usize,
        count: usize,
        epsilon: f32,
        #[define(F)] _dtype: ElemType,
    ) {
        let b = CUBE_POS_X as usize;
        let u = UNIT_POS_X as usize;
        let base = b * channels;
        let mut partial = Shared::new_slice(STATS_UNITS);

        let mut g_sum = F::new(0.0);
        let mut t_sum = F::new(0.0);
        let mut c = u;
        while c < channels {
            let g = gamma[c] * alpha[c] * s1[base + c];
            g_sum += g;
            t_sum += g * rel[base + c];
            c += STATS_UNITS;
        }
        let g_mean = cube_sum::<F>(&mut partial, g_sum) / F::cast_from(channels);
        let t = cube_sum::<F>(&mut partial, t_sum) / F::cast_from(channels - 1);
        let spread = inv_spread[b];
        let n = F::cast_from(count);
        let epsilon = F::cast_from(epsilon);

        let mut c = u;
        while c < channels {
            let q = base + c;
            let g = gamma[c] * alpha[c] * s1[q];
            let d_mu = (g - g_mean - t * rel[q]) * spread;
            coef_d[q] = F::new(0.0) - scale[q] * sd[q] / ((var[q] + epsilon) * n);
            coef_c[q] = (d_mu - scale[q] * s1[q]) / n;
            c += STATS_UNITS;
        }
    }

    /// The parameters' gradients, one unit per channel `c`, summed over the batch:
    /// `∂β_c = Σ_b s1`, `∂γ_c = Σ_b (sd/√(s² + ε) + α_c·rel·s1)`, `∂α_c = Σ_b γ_c·rel·s1`.
    #[cube(launch_unchecked)]
    #[allow(clippy::too_many_arguments)]
    pub(super) fn norm_param_grads_kernel<F: Float>(
        s1: &Tensor<F>,
        sd: &Tensor<F>,
        var: &Tensor<F>,
        rel: &Tensor<F>,
        alpha: &Tensor<F>,
        gamma: &Tensor<F>,
        d_alpha: &mut Tensor<F>,
        d_gamma: &mut Tensor<F>,
        d_beta: &mut Tensor<F>,
        batch: usize,
        epsilon: f32,
        #[define(F)] _dtype: ElemType,
    ) {
        let c = ABSOLUTE_POS;
        let channels = d_beta.len();
        if c >= channels {
            terminate!();
        }
        let epsilon = F::cast_from(epsilon);
        let a = alpha[c];
        let g = gamma[c];
        let mut da = F::new(0.0);
        let mut dg = F::new(0.0);
        let mut db = F::new(0.0);
        let mut b = 0usize;
        while b < batch {
            let q = b * channels + c;
            let s = s1[q];
            let r = rel[q];
            db += s;
            dg += sd[q] / F::sqrt(var[q] + epsilon) + a * r * s;
            da += g * r * s;
            b += 1usize;
        }
        d_alpha[c] = da;
        d_gamma[c] = dg;
        d_beta[c] = db;
    }

    /// The input's gradient `∂x = scale·g′ + coef_d·d + coef_c` elementwise over `grad`'s buffer
    /// (and the input gradient's, of `grad`'s layout): element `i` is at [`strided_offset`] with
    /// `x_strides` in `x` and `y`, and its plane's index is that with `plane_strides` (`C` for the
    /// batch, 1 for the channel, 0 for the others), all in `grad`'s memory order (`sizes`).
    #[cube(launch_unchecked)]
    #[allow(clippy::too_many_arguments)]
    pub(super) fn norm_elu_input_grad_kernel<F: Float>(
        input: &Tensor<F>,
        output: &Tensor<F>,
        grad: &Tensor<F>,
        mean: &Tensor<F>,
        scale: &Tensor<F>,
        coef_d: &Tensor<F>,
        coef_c: &Tensor<F>,
        input_grad: &mut Tensor<F>,
        sizes: Sequence<usize>,
        x_strides: Sequence<usize>,
        plane_strides: Sequence<usize>,
        #[define(F)] _dtype: ElemType,
    ) {
        let i = ABSOLUTE_POS;
        if i >= input_grad.len() {
            terminate!();
        }
        let at = strided_offset(i, &sizes, &x_strides);
        let p = strided_offset(i, &sizes, &plane_strides);
        let d = input[at] - mean[p];
        let g = elu_grad::<F>(output[at], grad[i]);
        input_grad[i] = scale[p] * g + coef_d[p] * d + coef_c[p];
    }
}

/// A 4-D GPU tensor `[O, I, Kh, Kw]` with the same values stored channels-last (`[O, Kh, Kw, I]`
/// contiguous in memory); any other tensor unchanged.
pub(crate) fn channels_last<const D: usize>(w: Tensor<D>) -> Tensor<D> {
    if D != 4 {
        return w;
    }
    let to_last: [usize; D] = std::array::from_fn(|i| [0, 2, 3, 1][i]);
    let back: [usize; D] = std::array::from_fn(|i| [0, 3, 1, 2][i]);
    match cube_primitive(w.permute(to_last)) {
        Ok(t) if t.qparams.is_none() && !t.meta.is_tiled() => {
            from_cube::<D>(into_contiguous(t)).permute(back)
        }
        Ok(t) => from_cube::<D>(t).permute(back),
        Err(w) => w.permute(back),
    }
}

/// ELU (α = 1) in one kernel; `Err(x)` where it does not apply (see the module docs).
pub(crate) fn elu<const D: usize>(x: Tensor<D>) -> Result<Tensor<D>, Tensor<D>> {
    let t = cube_primitive(x)?;
    if !walkable(&t) {
        return Err(from_cube(t));
    }
    Ok(from_cube(elu_walkable(t)))
}

/// The ELU kernel on a [`walkable`] tensor, in place when its buffer is not shared.
fn elu_walkable(t: CubeTensor) -> CubeTensor {
    let (out, in_place) = output_like(&t);
    let (count, dim) = launch_dims(&t);
    let client = t.client.clone();
    let dtype = element_type(&t);
    // SAFETY: both buffers hold exactly `num_elements` values (`walkable`), and the kernel
    // touches no position past the output's length.
    unsafe {
        let input = t.into_tensor_arg();
        let output = output_arg(&out, in_place, 0);
        elu_kernel::launch_unchecked(&client, count, dim, input, output, dtype);
    }
    out
}

/// The ELU of a [`qcs_cube::readable`] tensor (the forward pass of the tracked ELU,
/// `blocks::elu_autodiff`): one kernel, after a contiguous copy where its elements do not fill
/// its buffer.
pub(crate) fn elu_forward(x: CubeTensor) -> CubeTensor {
    let x = if walkable(&x) { x } else { into_contiguous(x) };
    elu_walkable(x)
}

/// The ELU's backward pass from its output `y` and the output's gradient: one kernel, written
/// over `grad` where its buffer is not shared. Both are copied to row-major order first unless
/// they share one walkable layout.
pub(crate) fn elu_backward(y: CubeTensor, grad: CubeTensor) -> CubeTensor {
    let same_layout = y.meta.shape() == grad.meta.shape()
        && y.meta.strides() == grad.meta.strides()
        && y.dtype == grad.dtype;
    let (y, grad) = if same_layout && walkable(&y) && walkable(&grad) {
        (y, grad)
    } else {
        let grad = if grad.dtype == y.dtype {
            grad
        } else {
            <burn::backend::Cube as FloatTensorOps<burn::backend::Cube>>::float_cast(
                grad,
                y.dtype.into(),
            )
        };
        (into_contiguous(y), into_contiguous(grad))
    };
    let (out, in_place) = output_like(&grad);
    let (count, dim) = launch_dims(&y);
    let client = y.client.clone();
    let dtype = element_type(&y);
    // SAFETY: the three buffers share one layout whose elements fill them (`walkable`, or row-major
    // copies), and the kernel touches no position past the output's length.
    unsafe {
        let output = y.into_tensor_arg();
        let gradient = grad.into_tensor_arg();
        let input_grad = output_arg(&out, in_place, 1);
        elu_backward_kernel::launch_unchecked(
            &client, count, dim, output, gradient, input_grad, dtype,
        );
    }
    out
}

/// `(a + b, elu(a + b))` in one kernel for tensors of one shape and element type, both outputs of
/// `a`'s layout (the sum in `a`'s buffer when it is not shared; `b` read through its strides, in
/// any layout); `Err((a, b))` where it does not apply (see the module docs).
pub(crate) fn add_elu(
    a: Tensor<4>,
    b: Tensor<4>,
) -> Result<(Tensor<4>, Tensor<4>), (Tensor<4>, Tensor<4>)> {
    let same_shape = a.dims() == b.dims();
    let [a, b] = match cube_primitives([a, b]) {
        Ok(ts) => ts,
        Err([a, b]) => return Err((a, b)),
    };
    if !(same_shape && walkable(&a) && qcs_cube::readable(&b) && a.dtype == b.dtype) {
        return Err((from_cube(a), from_cube(b)));
    }
    let (sizes, [b_strides]) = in_memory_order(&a, [b.meta.strides()]);
    let (sum, in_place) = output_like(&a);
    let activated = empty_with_layout(&a);
    let (count, dim) = launch_dims(&a);
    let client = a.client.clone();
    let dtype = element_type(&a);
    // SAFETY: `a` and both outputs hold exactly `num_elements` values in one layout (`walkable`),
    // and each unit's coordinates are below the shape that `b` shares, read through `b`'s own
    // strides; no unit touches a position past that.
    unsafe {
        let sum_arg = output_arg(&sum, in_place, 0);
        add_elu_kernel::launch_unchecked(
            &client,
            count,
            dim,
            a.into_tensor_arg(),
            b.into_tensor_arg(),
            sum_arg,
            activated.clone().into_tensor_arg(),
            sequence(sizes),
            sequence(b_strides),
            dtype,
        );
    }
    Ok((from_cube(sum), from_cube(activated)))
}

/// `elu(InstanceNorm++(x))` in three kernels (plane statistics, per-channel factors, the affine
/// map and the ELU; the first two reduce in parallel, a cube of [`STATS_UNITS`] units per plane
/// or batch element) for an `x` of shape `[B, C, H, W]` and f32 parameters `α`, `γ`, `β` of
/// shape `[C]`; `Err(x)` where it does not apply (see the module docs). The arithmetic is the
/// tensor operations' (`norm::InstanceNorm2dPlus`): two-pass variances, the same order of terms,
/// in f32. A 16-bit `x` is read and the result written in its own type, which is what
/// `InstanceNorm2dPlus` computes with its casts to f32 and back, without the two cast kernels.
pub(crate) fn instance_norm_elu(
    x: Tensor<4>,
    alpha: Tensor<1>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    epsilon: f64,
) -> Result<Tensor<4>, Tensor<4>> {
    let [batch, channels, _, _] = x.dims();
    let t = cube_primitive(x)?;
    let params = [alpha, gamma, beta].map(|p| match cube_primitive(p) {
        Ok(p) if p.is_contiguous() && p.dtype == DType::F32 => Some(p),
        _ => None,
    });
    let [Some(alpha), Some(gamma), Some(beta)] = params else {
        return Err(from_cube(t));
    };
    if !walkable(&t) || !norm_applies(batch, channels) {
        return Err(from_cube(t));
    }
    Ok(from_cube(launch_norm_elu(t, alpha, gamma, beta, epsilon).0))
}

/// Whether the InstanceNorm++ kernels take `batch × channels` planes: relative means need two
/// channels, and a batch element is one cube of a 1-D grid (65,535 at most).
pub(crate) fn norm_applies(batch: usize, channels: usize) -> bool {
    channels >= 2 && batch <= 65_535
}

/// The per-plane statistics of one InstanceNorm++, contiguous `[B, C]` f32 tensors (`inv_spread`
/// `[B]`): the plane means and variances, the affine map's `scale` and `shift`, the relative
/// means, and `1/√(v + ε)` of each batch element.
#[derive(Clone, Debug)]
struct NormStats {
    mean: CubeTensor,
    var: CubeTensor,
    scale: CubeTensor,
    shift: CubeTensor,
    rel: CubeTensor,
    inv_spread: CubeTensor,
}

/// The three kernels of [`instance_norm_elu`] on a [`walkable`] `t` whose shape
/// [`norm_applies`] to, with contiguous f32 parameters: the output (in `t`'s buffer when it is not
/// shared) and the statistics.
fn launch_norm_elu(
    t: CubeTensor,
    alpha: CubeTensor,
    gamma: CubeTensor,
    beta: CubeTensor,
    epsilon: f64,
) -> (CubeTensor, NormStats) {
    let [batch, channels, height, width] = t.meta.shape().dims::<4>();
    let strides = t.meta.strides().clone();
    let client = t.client.clone();
    let dtype = element_type(&t);
    let planes = batch * channels;
    let per_plane = || empty_like(&t, &[batch, channels], DType::F32);
    let stats = NormStats {
        mean: per_plane(),
        var: per_plane(),
        scale: per_plane(),
        shift: per_plane(),
        rel: per_plane(),
        inv_spread: empty_like(&t, &[batch], DType::F32),
    };
    let accumulate = element_type(&stats.mean);
    let (out, in_place) = output_like(&t);
    let (count, dim) = launch_dims(&t);
    // SAFETY: `x`'s buffer holds exactly its `B·C·H·W` values (`walkable`), so every
    // `b·sb + c·sc + h·sh + w·sw` is in it; the per-plane buffers are contiguous `[B, C]` (`[B]`),
    // the parameters contiguous `[C]`; each kernel stops at its unit count.
    unsafe {
        plane_stats_kernel::launch_unchecked(
            &client,
            plane_grid(planes),
            CubeDim::new_1d(STATS_UNITS as u32),
            t.clone().into_tensor_arg(),
            stats.mean.clone().into_tensor_arg(),
            stats.var.clone().into_tensor_arg(),
            channels,
            height,
            width,
            strides[0],
            strides[1],
            strides[2],
            strides[3],
            [dtype, accumulate],
        );
        channel_factors_kernel::launch_unchecked(
            &client,
            CubeCount::Static(batch as u32, 1, 1),
            CubeDim::new_1d(STATS_UNITS as u32),
            stats.mean.clone().into_tensor_arg(),
            stats.var.clone().into_tensor_arg(),
            alpha.into_tensor_arg(),
            gamma.into_tensor_arg(),
            beta.into_tensor_arg(),
            stats.scale.clone().into_tensor_arg(),
            stats.shift.clone().into_tensor_arg(),
            stats.rel.clone().into_tensor_arg(),
            stats.inv_spread.clone().into_tensor_arg(),
            channels,
            epsilon as f32,
            accumulate,
        );
        let output = output_arg(&out, in_place, 0);
        affine_elu_kernel::launch_unchecked(
            &client,
            count,
            dim,
            t.into_tensor_arg(),
            stats.mean.clone().into_tensor_arg(),
            stats.scale.clone().into_tensor_arg(),
            stats.shift.clone().into_tensor_arg(),
            output,
            strides[0],
            batch,
            strides[1],
            channels,
            [dtype, accumulate],
        );
    }
    (out, stats)
}

/// One cube per plane on a 2-D grid (at most 65,535 cubes per dimension).
fn plane_grid(planes: usize) -> CubeCount {
    let grid_x = planes.min(65_535);
    CubeCount::Static(grid_x as u32, planes.div_ceil(grid_x) as u32, 1)
}

/// What the tracked InstanceNorm++ and ELU (`blocks::norm_autodiff`) keeps for its backward
/// pass: the input and the output (of one layout), `α` and `γ`, and the statistics of the
/// forward pass.
#[derive(Clone, Debug)]
pub(crate) struct NormEluSaved {
    x: CubeTensor,
    y: CubeTensor,
    alpha: CubeTensor,
    gamma: CubeTensor,
    stats: NormStats,
    epsilon: f64,
}

/// A contiguous f32 copy of `t` unless it is one.
fn contiguous_f32(t: CubeTensor) -> CubeTensor {
    let t = if t.dtype == DType::F32 {
        t
    } else {
        <burn::backend::Cube as FloatTensorOps<burn::backend::Cube>>::float_cast(
            t,
            burn::tensor::FloatDType::F32,
        )
    };
    into_contiguous(t)
}

/// The forward pass of the tracked InstanceNorm++ and ELU on an f32 [`qcs_cube::readable`] `x`
/// whose shape [`norm_applies`] to: the three kernels of [`instance_norm_elu`] (after a contiguous
/// copy where `x`'s elements do not fill its buffer), writing a new buffer (`x` is kept).
pub(crate) fn norm_elu_forward(
    x: CubeTensor,
    alpha: CubeTensor,
    gamma: CubeTensor,
    beta: CubeTensor,
    epsilon: f64,
) -> (CubeTensor, NormEluSaved) {
    let x = if walkable(&x) { x } else { into_contiguous(x) };
    let [alpha, gamma, beta] = [alpha, gamma, beta].map(contiguous_f32);
    let kept = x.clone();
    let (y, stats) = launch_norm_elu(x, alpha.clone(), gamma.clone(), beta, epsilon);
    let saved = NormEluSaved {
        x: kept,
        y: y.clone(),
        alpha,
        gamma,
        stats,
        epsilon,
    };
    (y, saved)
}

/// The backward pass of the tracked InstanceNorm++ and ELU: the gradients of `x`, `α`, `γ` and
/// `β` from the output's gradient, in four kernels (the plane sums, the per-plane coefficients,
/// the parameters' gradients, the input's gradient; the formulas at the kernels). The input's
/// gradient takes `grad`'s layout (its buffer when not shared; a row-major copy first where its
/// elements do not fill it); `x` is read through its strides.
pub(crate) fn norm_elu_backward(saved: NormEluSaved, grad: CubeTensor) -> [CubeTensor; 4] {
    let NormEluSaved {
        x,
        y,
        alpha,
        gamma,
        stats,
        epsilon,
    } = saved;
    let grad = if grad.dtype == x.dtype {
        grad
    } else {
        <burn::backend::Cube as FloatTensorOps<burn::backend::Cube>>::float_cast(
            grad,
            x.dtype.into(),
        )
    };
    let grad = if walkable(&grad) {
        grad
    } else {
        into_contiguous(grad)
    };
    let [batch, channels, height, width] = x.meta.shape().dims::<4>();
    let client = x.client.clone();
    let dtype = element_type(&x);
    let per_plane = || empty_like(&x, &[batch, channels], DType::F32);
    let per_channel = || empty_like(&x, &[channels], DType::F32);
    let (s1, sd, coef_d, coef_c) = (per_plane(), per_plane(), per_plane(), per_plane());
    let (d_alpha, d_gamma, d_beta) = (per_channel(), per_channel(), per_channel());
    let x_strides: [usize; 4] = std::array::from_fn(|d| x.meta.strides()[d]);
    let g_strides: [usize; 4] = std::array::from_fn(|d| grad.meta.strides()[d]);
    // `grad`'s sizes in its memory order, and `x`'s strides and the plane index's in that order.
    let (sizes, [x_order, plane_order]) =
        in_memory_order(&grad, [&x_strides, &[channels, 1, 0, 0]]);
    let (out, in_place) = output_like(&grad);
    let (count, dim) = launch_dims(&grad);
    let stats_dim = CubeDim::new_1d(STATS_UNITS as u32);
    // SAFETY: `x` and `grad` have the shape `[B, C, H, W]` and are read through their own strides
    // at coordinates below it (`grad` and the output walked linearly: `walkable`); the per-plane
    // buffers are contiguous `[B, C]` (`inv_spread` `[B]`), the parameters and their gradients
    // contiguous `[C]`; each kernel stops at its unit count.
    unsafe {
        norm_elu_sums_kernel::launch_unchecked(
            &client,
            plane_grid(batch * channels),
            stats_dim,
            x.clone().into_tensor_arg(),
            y.clone().into_tensor_arg(),
            grad.clone().into_tensor_arg(),
            stats.mean.clone().into_tensor_arg(),
            s1.clone().into_tensor_arg(),
            sd.clone().into_tensor_arg(),
            channels,
            width,
            height * width,
            sequence(x_strides),
            sequence(g_strides),
            dtype,
        );
        norm_grad_coefficients_kernel::launch_unchecked(
            &client,
            CubeCount::Static(batch as u32, 1, 1),
            stats_dim,
            s1.clone().into_tensor_arg(),
            sd.clone().into_tensor_arg(),
            stats.var.clone().into_tensor_arg(),
            stats.scale.clone().into_tensor_arg(),
            stats.rel.clone().into_tensor_arg(),
            stats.inv_spread.into_tensor_arg(),
            alpha.clone().into_tensor_arg(),
            gamma.clone().into_tensor_arg(),
            coef_d.clone().into_tensor_arg(),
            coef_c.clone().into_tensor_arg(),
            channels,
            height * width,
            epsilon as f32,
            dtype,
        );
        let (param_count, param_dim) = launch_dims(&d_beta);
        norm_param_grads_kernel::launch_unchecked(
            &client,
            param_count,
            param_dim,
            s1.into_tensor_arg(),
            sd.into_tensor_arg(),
            stats.var.into_tensor_arg(),
            stats.rel.into_tensor_arg(),
            alpha.into_tensor_arg(),
            gamma.into_tensor_arg(),
            d_alpha.clone().into_tensor_arg(),
            d_gamma.clone().into_tensor_arg(),
            d_beta.clone().into_tensor_arg(),
            batch,
            epsilon as f32,
            dtype,
        );
        let input_grad = output_arg(&out, in_place, 2);
        norm_elu_input_grad_kernel::launch_unchecked(
            &client,
            count,
            dim,
            x.into_tensor_arg(),
            y.into_tensor_arg(),
            grad.into_tensor_arg(),
            stats.mean.into_tensor_arg(),
            stats.scale.into_tensor_arg(),
            coef_d.into_tensor_arg(),
            coef_c.into_tensor_arg(),
            input_grad,
            sequence(sizes),
            sequence(x_order),
            sequence(plane_order),
            dtype,
        );
    }
    [out, d_alpha, d_gamma, d_beta]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocks::activation::elu_ops;
    use crate::blocks::norm::InstanceNorm2dPlusConfig;
    use burn::module::Param;
    use burn::tensor::{Device, Distribution, FloatDType, Tolerance};

    /// `[b, c, h, w]` values spanning both branches of the ELU, laid out channels-last (as a
    /// convolution leaves them) when `channels_last`.
    fn input(device: &Device, [b, c, h, w]: [usize; 4], channels_last: bool) -> Tensor<4> {
        device.seed(7);
        let normal = Distribution::Normal(0.2, 2.0);
        if channels_last {
            Tensor::<4>::random([b, h, w, c], normal, device).permute([0, 3, 1, 2])
        } else {
            Tensor::<4>::random([b, c, h, w], normal, device)
        }
    }

    #[test]
    fn fused_elu_matches_the_tensor_operations_in_place_and_not() {
        for device in qcs_testkit::wgpu_devices() {
            for channels_last in [false, true] {
                let x = input(&device, [2, 3, 5, 4], channels_last);
                let expected = elu_ops(x.clone()).into_data();
                // `x` is shared here, so the kernel writes a new buffer of `x`'s layout ...
                let shared = elu(x.clone()).unwrap_or_else(|_| panic!("the kernel must apply"));
                shared
                    .into_data()
                    .assert_approx_eq::<f32>(&expected, Tolerance::absolute(1e-6));
                // ... and here it is not, so the kernel writes in place.
                let owned = elu(x).unwrap_or_else(|_| panic!("the kernel must apply"));
                owned
                    .into_data()
                    .assert_approx_eq::<f32>(&expected, Tolerance::absolute(1e-6));
            }
        }
    }

    #[test]
    fn fused_sum_and_elu_match_the_tensor_operations_in_place_and_not() {
        for device in qcs_testkit::wgpu_devices() {
            for channels_last in [false, true] {
                let a = input(&device, [2, 3, 5, 4], channels_last);
                let b = input(&device, [2, 3, 5, 4], channels_last) * -0.7;
                let sum = (a.clone() + b.clone()).into_data();
                let activated = elu_ops(a.clone() + b.clone()).into_data();
                // `a` is shared here, so the kernel writes the sum to a new buffer ...
                let (s, e) = add_elu(a.clone(), b.clone())
                    .unwrap_or_else(|_| panic!("the kernel must apply"));
                s.into_data()
                    .assert_approx_eq::<f32>(&sum, Tolerance::absolute(1e-6));
                e.into_data()
                    .assert_approx_eq::<f32>(&activated, Tolerance::absolute(1e-6));
                // ... and here into `a`'s.
                let (s, e) =
                    add_elu(a, b.clone()).unwrap_or_else(|_| panic!("the kernel must apply"));
                s.into_data()
                    .assert_approx_eq::<f32>(&sum, Tolerance::absolute(1e-6));
                e.into_data()
                    .assert_approx_eq::<f32>(&activated, Tolerance::absolute(1e-6));
            }
            // Layouts that differ (a convolution's channels-last output and a resized path),
            // either way round, and a broadcast `b`.
            for (a_last, b_last) in [(true, false), (false, true)] {
                let a = input(&device, [2, 3, 5, 4], a_last);
                let b = input(&device, [2, 3, 5, 4], b_last) * -0.7;
                let sum = (a.clone() + b.clone()).into_data();
                let activated = elu_ops(a.clone() + b.clone()).into_data();
                let (s, e) = add_elu(a, b).unwrap_or_else(|_| panic!("the kernel must apply"));
                s.into_data()
                    .assert_approx_eq::<f32>(&sum, Tolerance::absolute(1e-6));
                e.into_data()
                    .assert_approx_eq::<f32>(&activated, Tolerance::absolute(1e-6));
            }
            let a = input(&device, [2, 3, 5, 4], true);
            let b = input(&device, [1, 3, 5, 1], false).expand([2, 3, 5, 4]);
            let sum = (a.clone() + b.clone()).into_data();
            let (s, _) = add_elu(a, b).unwrap_or_else(|_| panic!("the kernel must apply"));
            s.into_data()
                .assert_approx_eq::<f32>(&sum, Tolerance::absolute(1e-6));
        }
    }

    #[test]
    fn fused_norm_and_elu_match_the_tensor_operations() {
        for device in qcs_testkit::wgpu_devices() {
            // Small planes, and planes and channel counts above the kernels' 64 units per cube.
            for (dims, channels_last) in [
                ([2, 3, 5, 4], false),
                ([2, 3, 5, 4], true),
                ([2, 70, 9, 10], false),
                ([3, 130, 12, 11], true),
            ] {
                let channels = dims[1];
                let mut norm = InstanceNorm2dPlusConfig::new(channels).init(&device);
                norm.beta = Param::from_tensor(Tensor::random(
                    [channels],
                    Distribution::Normal(0.0, 1.0),
                    &device,
                ));
                let x = input(&device, dims, channels_last);
                let expected = elu_ops(norm.forward(x.clone())).into_data();
                let fused = instance_norm_elu(
                    x.clone(),
                    norm.alpha.val(),
                    norm.gamma.val(),
                    norm.beta.val(),
                    norm.epsilon,
                )
                .unwrap_or_else(|_| panic!("the kernels must apply"));
                fused
                    .into_data()
                    .assert_approx_eq::<f32>(&expected, Tolerance::absolute(1e-5));
                norm.forward_elu(x.clone())
                    .into_data()
                    .assert_approx_eq::<f32>(&expected, Tolerance::absolute(1e-5));

                // In f16 (input 100× larger, where its squares would overflow f16): the
                // statistics in f32, the result as the f32 path cast to f16.
                if !device.supports_dtype(DType::F16) {
                    continue;
                }
                let half = (x * 100.0).cast(FloatDType::F16);
                let expected = elu_ops(norm.forward(half.clone().cast(FloatDType::F32)))
                    .cast(FloatDType::F16)
                    .cast(FloatDType::F32)
                    .into_data();
                let fused = instance_norm_elu(
                    half.clone(),
                    norm.alpha.val(),
                    norm.gamma.val(),
                    norm.beta.val(),
                    norm.epsilon,
                )
                .unwrap_or_else(|_| panic!("the kernels must apply in f16"));
                assert_eq!(fused.dtype(), DType::F16);
                // One f16 rounding of results up to ~4: 2⁻⁸ at most.
                fused
                    .cast(FloatDType::F32)
                    .into_data()
                    .assert_approx_eq::<f32>(&expected, Tolerance::absolute(4e-3));
            }
        }
    }

    #[test]
    fn channels_last_weights_keep_the_network_function() {
        use crate::NcsnV2Config;
        use burn::tensor::Int;
        for device in qcs_testkit::wgpu_devices() {
            device.seed(11);
            let net = NcsnV2Config::new()
                .with_ngf(8)
                .with_num_levels(4)
                .init(&device)
                .expect("a valid config");
            let x = Tensor::<4>::random([2, 1, 28, 28], Distribution::Normal(0.5, 0.5), &device);
            let levels = Tensor::<1, Int>::from_ints([0, 3], &device);
            let expected = net.forward(x.clone(), levels.clone()).into_data();
            let net = net.with_channels_last_weights();
            let weight = cube_primitive(net.end_conv.weight.val())
                .unwrap_or_else(|_| panic!("a Cube tensor"));
            assert_eq!(weight.meta.strides()[1], 1, "channels-last: {weight:?}");
            net.forward(x, levels)
                .into_data()
                .assert_approx_eq::<f32>(&expected, Tolerance::absolute(1e-5));
        }
    }

    #[test]
    fn kernels_leave_autodiff_and_cpu_tensors_to_the_tensor_operations() {
        for device in qcs_testkit::non_kernel_devices() {
            let x = Tensor::<4>::ones([1, 2, 3, 3], &device);
            let p = || Tensor::<1>::ones([2], &device);
            assert!(elu(x.clone()).is_err());
            assert!(add_elu(x.clone(), x.clone()).is_err());
            assert!(instance_norm_elu(x, p(), p(), p(), 1e-5).is_err());
        }
    }
}
