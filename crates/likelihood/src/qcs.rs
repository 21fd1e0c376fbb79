//! QCS-SGM closed-form likelihood score (ALGORITHM.md §3).
//!
//! With z = A·x_t and s_m² = σ² + σ_t²·‖a_m‖², ∇_x log p(y | x_t) = Aᵀ·g where
//! - quantized (any bin [l, u), 1-bit included): g_m = (φ(a) − φ(b))/(s_m·(Φ(b) − Φ(a))),
//!   a = (l_m − z_m)/s_m, b = (u_m − z_m)/s_m;
//! - linear: g_m = (y_m − z_m)/s_m².

use burn::prelude::*;
use qcs_sensing::Operator;

use crate::error::Result;
use crate::normal::{cdf, pdf, standardized_bin_ratios};
use crate::observation::{Observation, ObservationKind};
use crate::{flatten_checked, LikelihoodScore, MIN_VARIANCE};

/// How the quantized score is evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Numerics {
    /// erfcx ratios: finite with the right sign for every z, exact in the tails.
    #[default]
    Stable,
    /// The reference code's form: Φ(b) − Φ(a) clamped to ≥ 1e-6, which zeroes the pull of badly violated
    /// measurements. For parity runs only.
    Reference,
}

/// The QCS-SGM likelihood score.
#[derive(Debug, Clone, Copy, Default)]
pub struct QcsSgmScore {
    /// Stable (default) or reference numerics.
    pub numerics: Numerics,
}

/// Per-measurement pseudo-likelihood variances s_m² = σ² + σ_t²·‖a_m‖², shape [1, M].
pub fn pseudo_variances(operator: &dyn Operator, noise_std: f32, sigma_t: f32) -> Tensor<2> {
    let m = operator.rows();
    (operator.row_norms_sq() * (sigma_t * sigma_t) + noise_std * noise_std)
        .clamp_min(MIN_VARIANCE)
        .reshape([1, m])
}

/// g_m = ∂/∂z_m log P(l_m ≤ z_m + e < u_m), e ~ N(0, s_m²), evaluated stably.
pub fn quantized_gradient(
    z: Tensor<2>,
    lower: Tensor<2>,
    upper: Tensor<2>,
    std: Tensor<2>,
) -> Tensor<2> {
    standardized_bin_ratios(lower, upper, z, std.clone(), false).first / std
}

/// The reference code's clamped form of [`quantized_gradient`].
fn quantized_gradient_reference(
    z: Tensor<2>,
    lower: Tensor<2>,
    upper: Tensor<2>,
    std: Tensor<2>,
) -> Tensor<2> {
    let a = (lower - z.clone()) / std.clone();
    let b = (upper - z) / std.clone();
    let mass = (cdf(b.clone()) - cdf(a.clone())).clamp(1e-6, 1.0);
    (pdf(a) - pdf(b)) / (mass * std)
}

/// g_m = (y_m − z_m)/s_m² for linear measurements.
pub fn linear_gradient(z: Tensor<2>, y: Tensor<2>, variance: Tensor<2>) -> Tensor<2> {
    (y - z) / variance
}

impl LikelihoodScore for QcsSgmScore {
    fn score(
        &self,
        operator: &dyn Operator,
        observation: &Observation,
        sigma_t: f32,
        x_t: Tensor<4>,
    ) -> Result<Tensor<4>> {
        let dims = x_t.dims();
        let x = flatten_checked(operator, observation, sigma_t, x_t)?;
        let z = operator.forward(x);
        let variance = pseudo_variances(operator, observation.noise_std, sigma_t);
        let g = match (observation.kind, self.numerics) {
            (ObservationKind::Linear, _) => linear_gradient(z, observation.y.clone(), variance),
            (ObservationKind::Quantized, Numerics::Stable) => quantized_gradient(
                z,
                observation.lower.clone(),
                observation.upper.clone(),
                variance.sqrt(),
            ),
            (ObservationKind::Quantized, Numerics::Reference) => quantized_gradient_reference(
                z,
                observation.lower.clone(),
                observation.upper.clone(),
                variance.sqrt(),
            ),
        };
        Ok(operator.adjoint(g).reshape(dims))
    }
}
