//! Likelihood scores ∇_x log p(y | x_t) for quantized compressed sensing.
//!
//! - [`QcsSgmScore`]: the closed-form pseudo-likelihood of QCS-SGM (ALGORITHM.md §3) for 1-bit, Q-bit and
//!   linear measurements, evaluated stably in f32 through erfcx.
//! - [`EpScore`]: QCS-SGM+ expectation propagation (§4) for general (ill-conditioned, correlated) A, batched
//!   over images, using the cached eigenpairs of A·Aᵀ.

pub mod ep;
pub mod error;
pub mod normal;
pub mod observation;
pub mod qcs;

use burn::prelude::*;
use qcs_sensing::Operator;

pub use ep::{EpConfig, EpScore};
pub use error::{LikelihoodError, Result};
pub use observation::{Observation, ObservationKind, EDGE_LIMIT};
pub use qcs::{Numerics, QcsSgmScore};

/// The gradient of the measurement log-likelihood with respect to the current sample.
pub trait LikelihoodScore {
    /// ∇_x log p(y | x_t) for x_t of shape [B, C, H, W] at noise level σ_t, shaped like x_t.
    ///
    /// `observation` must hold one row of measurements per image of x_t.
    fn score(
        &self,
        operator: &dyn Operator,
        observation: &Observation,
        sigma_t: f32,
        x_t: Tensor<4>,
    ) -> Result<Tensor<4>>;
}

/// Flattens x_t to [B, N] after checking it against the operator and the observation.
pub(crate) fn flatten_checked(
    operator: &dyn Operator,
    observation: &Observation,
    sigma_t: f32,
    x_t: Tensor<4>,
) -> Result<Tensor<2>> {
    let [b, c, h, w] = x_t.dims();
    if c * h * w != operator.cols() || b != observation.batch() {
        return Err(LikelihoodError::ShapeMismatch {
            what: "x_t against the operator and measurements".into(),
            expected: vec![observation.batch(), operator.cols()],
            found: vec![b, c * h * w],
        });
    }
    if observation.y.dims()[1] != operator.rows() {
        return Err(LikelihoodError::ShapeMismatch {
            what: "measurements against the operator".into(),
            expected: vec![operator.rows()],
            found: vec![observation.y.dims()[1]],
        });
    }
    if !(sigma_t.is_finite() && sigma_t >= 0.0) {
        return Err(LikelihoodError::InvalidSetting(format!(
            "σ_t must be finite and ≥ 0, got {sigma_t}"
        )));
    }
    Ok(x_t.reshape([b, c * h * w]))
}

/// Smallest variance any score divides by: keeps σ = σ_t = 0 finite.
pub(crate) const MIN_VARIANCE: f32 = 1e-20;
