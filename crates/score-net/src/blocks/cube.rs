//! Hand-fused CubeCL kernels for the network's forward pass on the GPU backends (`cube` feature),
//! and the ELU's backward pass.
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
//! too, called by the tracked ELU (`blocks::elu_autodiff`), which records the backward pass.
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
    into_contiguous, launch_dims, output_arg, output_like, walkable, CubeTensor,
};

use kernels::{
    add_elu_kernel, affine_elu_kernel, channel_factors_kernel, elu_backward_kernel, elu_kernel,
    plane_stats_kernel, STATS_UNITS,
};

mod kernels {
    use cubecl::prelude::*;
    use qcs_cube::cube_sum;

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
    /// outputs', of `a`'s layout). `b` may have another layout: element `i` of `a`'s buffer has
    /// the coordinates `i` decomposes into over `a`'s dimensions from the outermost in memory
    /// (`sizes`), and `b` holds it at those coordinates times `b_strides` (the same order).
    #[cube(launch_unchecked)]
    #[allow(clippy::too_many_arguments)]
    pub(super) fn add_elu_kernel<F: Float>(
        a: &Tensor<F>,
        b: &Tensor<F>,
        sum: &mut Tensor<F>,
        activated: &mut Tensor<F>,
        size_0: usize,
        size_1: usize,
        size_2: usize,
        size_3: usize,
        b_stride_0: usize,
        b_stride_1: usize,
        b_stride_2: usize,
        b_stride_3: usize,
        #[define(F)] _dtype: ElemType,
    ) {
        let i = ABSOLUTE_POS;
        if i >= sum.len() {
            terminate!();
        }
        let c_3 = i % size_3;
        let rest = i / size_3;
        let c_2 = rest % size_2;
        let rest = rest / size_2;
        let c_1 = rest % size_1;
        let c_0 = (rest / size_1) % size_0;
        let at = c_0 * b_stride_0 + c_1 * b_stride_1 + c_2 * b_stride_2 + c_3 * b_stride_3;
        let s = a[i] + b[at];
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
    /// `scale_c = γ_c/√(s²_c + ε)` and `shift_c = α_c·γ_c·(μ_c − m)/√(v + ε) + β_c`.
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

        let mut c = u;
        while c < channels {
            let g = gamma[c];
            scale[base + c] = g / F::sqrt(var[base + c] + epsilon);
            shift[base + c] = alpha[c] * g * ((mean[base + c] - m) / spread) + beta[c];
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
    // `a`'s dimensions from the outermost in memory (the largest stride; a dimension of size 1
    // may go anywhere), with their sizes and `b`'s strides.
    let (shape, a_strides, b_strides) = (a.meta.shape(), a.meta.strides(), b.meta.strides());
    let mut order = [0, 1, 2, 3];
    order.sort_by_key(|&d| std::cmp::Reverse((a_strides[d], shape[d])));
    let size = order.map(|d| shape[d]);
    let b_stride = order.map(|d| b_strides[d]);
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
            size[0],
            size[1],
            size[2],
            size[3],
            b_stride[0],
            b_stride[1],
            b_stride[2],
            b_stride[3],
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
    let [batch, channels, height, width] = x.dims();
    let t = cube_primitive(x)?;
    let params = [alpha, gamma, beta].map(|p| match cube_primitive(p) {
        Ok(p) if p.is_contiguous() && p.dtype == DType::F32 => Some(p),
        _ => None,
    });
    let [Some(alpha), Some(gamma), Some(beta)] = params else {
        return Err(from_cube(t));
    };
    if !walkable(&t) || channels < 2 || batch > 65_535 {
        return Err(from_cube(t));
    }
    let strides = t.meta.strides().clone();
    let client = t.client.clone();
    let dtype = element_type(&t);
    let planes = batch * channels;
    let per_plane = || empty_like(&t, &[batch, channels], DType::F32);
    let (mean, var, scale, shift) = (per_plane(), per_plane(), per_plane(), per_plane());
    let accumulate = element_type(&mean);
    let (out, in_place) = output_like(&t);
    let (count, dim) = launch_dims(&t);
    // One cube per plane, on a 2-D grid (at most 65,535 cubes per dimension); one per batch
    // element for the factors.
    let stats_dim = CubeDim::new_1d(STATS_UNITS as u32);
    let grid_x = planes.min(65_535);
    let stats_count = CubeCount::Static(grid_x as u32, planes.div_ceil(grid_x) as u32, 1);
    let factors_count = CubeCount::Static(batch as u32, 1, 1);
    // SAFETY: `x`'s buffer holds exactly its `B·C·H·W` values (`walkable`), so every
    // `b·sb + c·sc + h·sh + w·sw` is in it; the per-plane buffers are contiguous `[B, C]`, the
    // parameters contiguous `[C]`; each kernel stops at its unit count.
    unsafe {
        plane_stats_kernel::launch_unchecked(
            &client,
            stats_count,
            stats_dim,
            t.clone().into_tensor_arg(),
            mean.clone().into_tensor_arg(),
            var.clone().into_tensor_arg(),
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
            factors_count,
            stats_dim,
            mean.clone().into_tensor_arg(),
            var.into_tensor_arg(),
            alpha.into_tensor_arg(),
            gamma.into_tensor_arg(),
            beta.into_tensor_arg(),
            scale.clone().into_tensor_arg(),
            shift.clone().into_tensor_arg(),
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
            mean.into_tensor_arg(),
            scale.into_tensor_arg(),
            shift.into_tensor_arg(),
            output,
            strides[0],
            batch,
            strides[1],
            channels,
            [dtype, accumulate],
        );
    }
    Ok(from_cube(out))
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
            let net = net.with_inference_layout();
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
