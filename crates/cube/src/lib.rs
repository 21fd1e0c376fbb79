//! Plumbing between burn's tensors and the hand-fused CubeCL kernels of the qcs crates (their
//! `cube` features): the network's ELU and InstanceNorm++ and training's Adam and EMA
//! (`qcs-score-net`), the QCS-SGM likelihood score, 1-bit and Q-bit, and QCS-SGM+'s EP
//! (`qcs-likelihood`), and the Langevin update (`qcs-sampler`); and [`cube_sum`], the sum over a
//! cube's units that their reductions share. Without its own `cube` feature the crate is empty.
//!
//! burn's kernel fusion stays off on wgpu (it computes wrong numbers in burn 0.22.1:
//! docs/BENCHMARKS.md), so every tensor operation is a kernel launch of its own, and at small
//! batches a Langevin step costs its launches, not its arithmetic. [`cube_primitive`] takes
//! tensors of the Cube backend that autodiff does not track (the kernels have no backward pass of
//! their own: the tracked ELU and InstanceNorm++ of `qcs-score-net` record one around theirs) and hands anything
//! else back, and the caller takes the tensor-operation path.

#![cfg(feature = "cube")]
// `Err` hands the caller's own tensor back (the kernel does not apply), not an error; a tensor is
// some 640 bytes, and boxing it would allocate on every fallback.
#![allow(clippy::result_large_err)]

use burn::backend::cubecl::dtype_to_storage_type;
use burn::backend::{BackendTensor, DispatchAutodiffContext, DispatchTensor, DispatchTensorKind};
use burn::tensor::{DType, Tensor};
use burn_cubecl::ops::numeric::empty_device_dtype;
pub use burn_cubecl::tensor::CubeTensor;
use cubecl::calculate_cube_count_elemwise;
use cubecl::ir::ElemType;
use cubecl::prelude::{CubeCount, CubeDim, SequenceArg, TensorArg};

/// The tensor's Cube primitive when autodiff does not track it; the tensor back otherwise.
pub fn cube_primitive<const D: usize>(x: Tensor<D>) -> Result<CubeTensor, Tensor<D>> {
    let DispatchTensor { kind, autodiff } = x.into_dispatch();
    match (kind, autodiff) {
        (DispatchTensorKind::Cube(BackendTensor::Float(t)), DispatchAutodiffContext::Disabled) => {
            Ok(t)
        }
        (kind, autodiff) => Err(Tensor::from_dispatch(DispatchTensor { kind, autodiff })),
    }
}

/// The Cube primitives of several tensors when every one of them is one, all tensors back
/// otherwise.
pub fn cube_primitives<const D: usize, const K: usize>(
    xs: [Tensor<D>; K],
) -> Result<[CubeTensor; K], [Tensor<D>; K]> {
    let results = xs.map(cube_primitive);
    if results.iter().all(Result::is_ok) {
        Ok(results.map(|r| r.unwrap_or_else(|_| unreachable!("checked above"))))
    } else {
        Err(results.map(|r| r.map_or_else(|t| t, from_cube)))
    }
}

/// A tensor of the Cube backend, outside autodiff.
pub fn from_cube<const D: usize>(t: CubeTensor) -> Tensor<D> {
    Tensor::from_dispatch(DispatchTensor {
        kind: DispatchTensorKind::Cube(BackendTensor::Float(t)),
        autodiff: DispatchAutodiffContext::Disabled,
    })
}

/// Whether a kernel can read `t` through its shape and strides: a plain (not quantized, not
/// tiled) float tensor with elements.
pub fn readable(t: &CubeTensor) -> bool {
    matches!(t.dtype, DType::F32 | DType::F16 | DType::BF16)
        && t.meta.num_elements() > 0
        && t.qparams.is_none()
        && !t.meta.is_tiled()
}

/// [`readable`] and f32: what the f32-only kernels (the likelihoods, the update, training) take.
pub fn readable_f32(t: &CubeTensor) -> bool {
    t.dtype == DType::F32 && readable(t)
}

/// Whether the kernels can walk `t` linearly: [`readable`], with elements that fill the start of
/// its buffer exactly once (contiguous in some order of its dimensions). The buffer may be longer:
/// a 16-bit tensor's is padded (120 f16 values in 256 bytes, say), and a kernel that walks it
/// stops at the elements' count or, past it, touches only that padding.
pub fn walkable(t: &CubeTensor) -> bool {
    let elements = t.meta.num_elements();
    let extent = t
        .meta
        .shape()
        .iter()
        .zip(t.meta.strides().iter())
        .map(|(&n, &stride)| (n.max(1) - 1) * stride)
        .sum::<usize>()
        + 1;
    readable(t)
        && t.is_nonoverlapping()
        && extent == elements
        && t.handle.size() as usize >= elements * t.dtype.size()
}

/// An output for `t`: `t` itself when its buffer is not shared, else a new buffer of its layout.
/// The flag says which.
pub fn output_like(t: &CubeTensor) -> (CubeTensor, bool) {
    if t.can_mut() {
        return (t.clone(), true);
    }
    (empty_with_layout(t), false)
}

/// The kernel argument for an output from [`output_like`]: the kernel's input `input_pos` itself
/// when `in_place`, else the new buffer.
pub fn output_arg(out: &CubeTensor, in_place: bool, input_pos: usize) -> TensorArg {
    if in_place {
        out.as_tensor_alias(input_pos)
    } else {
        out.clone().into_tensor_arg()
    }
}

/// A new buffer with `t`'s shape, strides and element type.
pub fn empty_with_layout(t: &CubeTensor) -> CubeTensor {
    let handle = t.client.empty(t.handle.size() as usize);
    CubeTensor::new(
        t.client.clone(),
        handle,
        (*t.meta).clone(),
        t.device.clone(),
        t.dtype,
    )
}

/// A new contiguous tensor of `shape` and `dtype` on `like`'s device.
pub fn empty_like(like: &CubeTensor, shape: &[usize], dtype: DType) -> CubeTensor {
    empty_device_dtype(
        like.client.clone(),
        like.device.clone(),
        shape.to_vec().into(),
        dtype,
    )
}

/// The cube count and cube size for one unit per element of `t`.
pub fn launch_dims(t: &CubeTensor) -> (CubeCount, CubeDim) {
    let units = t.meta.num_elements();
    let cube_dim = CubeDim::new(&t.client, units);
    (
        calculate_cube_count_elemwise(&t.client, units, cube_dim),
        cube_dim,
    )
}

/// The kernel element type of `t`'s values.
pub fn element_type(t: &CubeTensor) -> ElemType {
    dtype_to_storage_type(t.dtype)
}

/// `t` with its values copied into contiguous (row-major) order, or `t` itself when they are.
pub fn into_contiguous(t: CubeTensor) -> CubeTensor {
    burn_cubecl::kernel::into_contiguous(t)
}

/// The sizes of `t`'s dimensions from the outermost in memory (the largest stride; a dimension of
/// size 1 may go anywhere), padded to four with leading ones, and each of `strides` (the strides
/// of tensors of `t`'s shape, one per dimension of `t`) in that order, 0 for the padding: what a
/// kernel walking `t`'s buffer linearly passes [`strided_offset`] to read those tensors at the same
/// coordinates. `t` has at most four dimensions.
pub fn in_memory_order<const N: usize>(
    t: &CubeTensor,
    strides: [&[usize]; N],
) -> ([usize; 4], [[usize; 4]; N]) {
    let (shape, own) = (t.meta.shape(), t.meta.strides());
    let mut order: Vec<usize> = (0..shape.len()).collect();
    order.sort_by_key(|&d| std::cmp::Reverse((own[d], shape[d])));
    let pad = 4 - order.len();
    let sizes = std::array::from_fn(|k| if k < pad { 1 } else { shape[order[k - pad]] });
    let strides =
        strides.map(|s| std::array::from_fn(|k| if k < pad { 0 } else { s[order[k - pad]] }));
    (sizes, strides)
}

/// Four sizes or strides as a kernel argument.
pub fn sequence(values: [usize; 4]) -> SequenceArg<usize> {
    values.into_iter().collect()
}

pub use reduce::{cube_sum, strided_offset};

mod reduce {
    use cubecl::prelude::*;

    /// Where element `i` of a buffer walked linearly lies in a tensor of the same shape: `i`
    /// decomposed into coordinates over the walked tensor's four dimensions from the outermost in
    /// memory (`sizes`), times the other tensor's `strides` in that order (both from
    /// [`super::in_memory_order`]).
    #[cube]
    pub fn strided_offset(i: usize, sizes: &Sequence<usize>, strides: &Sequence<usize>) -> usize {
        let c_3 = i % sizes[3];
        let rest = i / sizes[3];
        let c_2 = rest % sizes[2];
        let rest = rest / sizes[2];
        let c_1 = rest % sizes[1];
        let c_0 = (rest / sizes[1]) % sizes[0];
        c_0 * strides[0] + c_1 * strides[1] + c_2 * strides[2] + c_3 * strides[3]
    }

    /// The sum of every unit's `value` in the cube, returned to all of them (each of the
    /// `CUBE_DIM` units, a power of two, calls it): a tree over `partial` (at least `CUBE_DIM`
    /// long), which is free for reuse afterwards.
    #[cube]
    pub fn cube_sum<F: Float>(partial: &mut Shared<[F]>, value: F) -> F {
        let u = UNIT_POS_X as usize;
        partial[u] = value;
        sync_cube();
        let mut half = CUBE_DIM as usize / 2;
        while half > 0 {
            if u < half {
                let mine = partial[u];
                let other = partial[u + half];
                partial[u] = mine + other;
            }
            sync_cube();
            half /= 2usize;
        }
        let total = partial[0];
        sync_cube();
        total
    }
}
