//! Likelihood scores ∇_x log p(y | x_t) for quantized compressed sensing.
//!
//! - [`QcsSgmScore`]: the closed-form pseudo-likelihood of QCS-SGM (ALGORITHM.md §3) for 1-bit, Q-bit and
//!   linear measurements, evaluated stably in f32 through erfcx.
//! - [`EpScore`]: QCS-SGM+ expectation propagation (§4) for general (ill-conditioned, correlated) A, batched
//!   over images, using the cached eigenpairs of A·Aᵀ.

#[cfg(feature = "cube")]
mod cube;
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

    /// A bound on the curvature of −log p(y | x_t) in x_t at every noise level, for the sampler's step
    /// control, or `None` where the score has none (QCS-SGM+, whose weight is rescaled every step). Computed
    /// once per run: it may read a few numbers back from the device.
    fn curvature(
        &self,
        _operator: &dyn Operator,
        _observation: &Observation,
    ) -> Result<Option<Curvature>> {
        Ok(None)
    }
}

/// An upper bound on the largest eigenvalue of the Hessian −∇²_x log p(y | x_t), as a function of σ_t:
/// ‖A‖²/(σ² + σ_t²·min_m ‖a_m‖²).
///
/// For the QCS-SGM pseudo-likelihood the Hessian is Aᵀ·diag(h_m)·A. Every factor is the log-likelihood of
/// a Gaussian measurement (linear, h_m = 1/s_m²) or of a Gaussian falling into a bin (a log-concave function
/// of z_m with 0 ≤ h_m ≤ 1/s_m²), with s_m² = σ² + σ_t²·‖a_m‖², so the largest eigenvalue is at most
/// ‖A‖²·max_m 1/s_m².
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Curvature {
    /// ‖A‖² = λ_max(AᵀA).
    pub operator_norm_sq: f64,
    /// min_m ‖a_m‖².
    pub min_row_norm_sq: f64,
    /// σ², the measurement noise variance.
    pub noise_var: f64,
}

impl Curvature {
    /// The bound at noise level σ_t (∞ only for σ = σ_t = 0).
    pub fn at(&self, sigma_t: f64) -> f64 {
        self.operator_norm_sq / (self.noise_var + sigma_t * sigma_t * self.min_row_norm_sq)
    }
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
