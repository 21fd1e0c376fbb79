//! The unwrapping and rewrapping of burn's dispatch tensor that the hand-written operations
//! (`blocks::elu_autodiff`, `blocks::norm_autodiff`) share: they act on the backend tensor inside,
//! tracked by autodiff or not, and hand the caller's tensor back where they do not apply.

// `Err` hands the caller's own tensor back (the operation does not apply), not an error.
#![allow(clippy::result_large_err)]

use burn::backend::{
    DispatchAutodiffContext, DispatchTensor, DispatchTensorKind, GradientCheckpointingStrategy,
};
use burn::tensor::Tensor;

/// What an operation makes of a backend tensor: its output, or the tensor back where it does not
/// apply.
pub(super) type Applied = Result<DispatchTensorKind, DispatchTensorKind>;

/// `op` on the backend tensor inside `x`: with the run's checkpointing strategy where autodiff
/// tracks `x`, with `None` where autodiff is off. The output comes back in `x`'s dispatch context,
/// or `Err(x)` where `op` handed the tensor back.
pub(super) fn apply<const D: usize>(
    x: Tensor<D>,
    op: impl FnOnce(DispatchTensorKind, Option<GradientCheckpointingStrategy>) -> Applied,
) -> Result<Tensor<D>, Tensor<D>> {
    let DispatchTensor { kind, autodiff } = x.into_dispatch();
    let applied = match (kind, autodiff) {
        (DispatchTensorKind::Autodiff(inner), DispatchAutodiffContext::Enabled(strategy)) => {
            let boxed = |kind| DispatchTensorKind::Autodiff(Box::new(kind));
            op(*inner, Some(strategy)).map(boxed).map_err(boxed)
        }
        (kind, DispatchAutodiffContext::Disabled) => op(kind, None),
        (kind, _) => Err(kind),
    };
    let rewrap = |kind| Tensor::from_dispatch(DispatchTensor { kind, autodiff });
    applied.map(rewrap).map_err(rewrap)
}
