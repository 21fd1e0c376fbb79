//! QCS-SGM+ likelihood score by expectation propagation (ALGORITHM.md §4), batched over images.
//!
//! Per image, with b = A·x_t and D_i = 1/(σ_t²λ_i + σ²), EP alternates between the quantizer factor
//! (moments of a truncated Gaussian per measurement) and the Gaussian factor (the prior of A·x_0 around b),
//! exchanging the messages h^F (M-vector) and τ^F (scalar precision). The Gaussian step is
//! m^b = U·(w ⊙ (Uᵀh^G)), w = 1/(τ^G + D): two [B, M]×[M, M] products per iteration, never an M×M product.
//! For A·Aᵀ = c·I the step is element-wise. Early stopping is per image and on the device: an image whose
//! change fell below the tolerance keeps its messages, so no value is read back inside the loop.

use burn::prelude::*;
use qcs_sensing::{GramSpectrum, Operator};

use crate::error::{LikelihoodError, Result};
use crate::normal::standardized_bin_ratios;
use crate::observation::{Observation, ObservationKind};
use crate::qcs::quantized_gradient;
use crate::{flatten_checked, LikelihoodScore, MIN_VARIANCE};

/// Floor of the extrinsic precision τ^G = 1/χ^a − τ^F that the quantizer factor sends the Gaussian factor
/// (where the tilted variance exceeds the cavity's, the difference would be ≤ 0).
pub(crate) const MIN_EXTRINSIC_PRECISION: f32 = 1e-6;

/// Expectation-propagation settings ([`EpConfig::for_bits`] by default, [`EpConfig::reference`] for parity).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EpConfig {
    /// Maximum number of EP iterations N_EP (qcs: 20, reference: 5).
    pub iterations: usize,
    /// Damping d applied after the first iteration: v ← (1 − d)·v_new + d·v_old (qcs: 0.5, reference: 0.02).
    pub damping: f32,
    /// An image stops once mean|Δh^F| + |Δτ^F| < tolerance (reference: 1e-5 for 1-bit, 1e-3 for Q-bit).
    pub tolerance: f32,
}

impl Default for EpConfig {
    fn default() -> Self {
        Self::for_bits(Some(1))
    }
}

impl EpConfig {
    /// qcs's settings for a bit depth (`None` for linear measurements): up to 20 iterations with damping 0.5,
    /// the reference's tolerances.
    ///
    /// The reference's 5 nearly undamped iterations (damping 0.02, [`EpConfig::reference`]) stop far from
    /// EP's fixed point when the rows of A are strongly correlated and many measurements are violated, as
    /// they are early in a chain: on correlated ρ = 0.8 (M = 400, N = 784, 1-bit, σ_t = 5, x_t 100× a uniform
    /// image) their score had cosine 0.004 with the exact one (Gibbs sampling), 20 damped iterations 0.999.
    /// On the ten shipped digits, 1-bit, M = 400, 116 × 3, QCS-SGM+ went from 9.5 dB to 17.3 dB there, and
    /// within 0.1 dB on ill-conditioned κ = 10, 1000 and correlated ρ = 0.4 (docs/RESULTS.md).
    pub fn for_bits(bits: Option<u32>) -> Self {
        Self {
            iterations: 20,
            damping: 0.5,
            ..Self::reference(bits)
        }
    }

    /// The reference code's settings (parity runs): 5 iterations, damping 0.02, tolerance 1e-5 for 1-bit and
    /// 1e-3 otherwise.
    pub fn reference(bits: Option<u32>) -> Self {
        Self {
            iterations: 5,
            damping: 0.02,
            tolerance: if bits == Some(1) { 1e-5 } else { 1e-3 },
        }
    }

    fn validate(&self) -> Result<()> {
        if self.iterations == 0
            || !(0.0..1.0).contains(&self.damping)
            || self.tolerance.is_nan()
            || self.tolerance < 0.0
        {
            return Err(LikelihoodError::InvalidSetting(format!(
                "EP needs iterations ≥ 1, damping in [0, 1) and tolerance ≥ 0, got {self:?}"
            )));
        }
        Ok(())
    }
}

/// The QCS-SGM+ expectation-propagation likelihood score.
#[derive(Debug, Clone, Copy, Default)]
pub struct EpScore {
    /// Iterations, damping and tolerance.
    pub config: EpConfig,
}

/// The Gaussian factor's view of A·Aᵀ at one noise level: D_i = 1/(σ_t²λ_i + σ²) in its eigenbasis.
#[allow(clippy::large_enum_variant)] // one per score call
enum GaussianFactor {
    /// U [M, M] and D as a row [1, M].
    Eigen {
        vectors: Tensor<2>,
        precision: Tensor<2>,
    },
    /// A·Aᵀ = c·I: D is one number.
    Scaled { precision: f32 },
}

impl GaussianFactor {
    fn new(spectrum: &GramSpectrum, noise_var: f32, sigma_t: f32) -> Self {
        let variance_of = |lambda: f32| (sigma_t * sigma_t * lambda + noise_var).max(MIN_VARIANCE);
        match spectrum {
            GramSpectrum::Eigen { vectors, values } => {
                let m = values.dims()[0];
                let variance =
                    (values.clone() * (sigma_t * sigma_t) + noise_var).clamp_min(MIN_VARIANCE);
                Self::Eigen {
                    vectors: vectors.clone(),
                    precision: variance.recip().reshape([1, m]),
                }
            }
            GramSpectrum::Scaled { value, .. } => Self::Scaled {
                precision: 1.0 / variance_of(*value),
            },
        }
    }

    /// The Gaussian factor's message back to the quantizer factor, for every image: from h^G [B, M] and
    /// τ^G [B, 1], with w = 1/(τ^G + D), m^b = U·(w ⊙ Uᵀh^G) and χ^b = mean(w),
    ///
    /// τ^F = 1/χ^b − τ^G = mean(D ⊙ w)/mean(w),
    /// h^F = m^b/χ^b − h^G = U·(w ⊙ (τ^F − D) ⊙ Uᵀh^G).
    ///
    /// The right-hand forms are the same numbers without the cancellation of the left ones, which loses
    /// every digit once τ^G ≫ D (a bin far from b at a large σ_t) and can make τ^F ≤ 0, so NaN.
    fn extrinsic(&self, h: Tensor<2>, tau: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        match self {
            Self::Eigen { vectors, precision } => {
                let w = (precision.clone() + tau).recip();
                let tau_f = (w.clone() * precision.clone()).mean_dim(1) / w.clone().mean_dim(1);
                let weights = w * (tau_f.clone() - precision.clone());
                let h_f = (h.matmul(vectors.clone()) * weights).matmul(vectors.clone().transpose());
                (h_f, tau_f)
            }
            Self::Scaled { precision } => (h.zeros_like(), tau.ones_like() * *precision),
        }
    }

    /// U·diag(D)·Uᵀ·r for every row of r: the exact Gaussian likelihood's weighting of residuals.
    fn weigh(&self, r: Tensor<2>) -> Tensor<2> {
        match self {
            Self::Eigen { vectors, precision } => {
                (r.matmul(vectors.clone()) * precision.clone()).matmul(vectors.clone().transpose())
            }
            Self::Scaled { precision } => r * *precision,
        }
    }
}

/// The messages of the quantizer factor after EP: the cavity N(h^F/τ^F, 1/τ^F) around b.
struct Cavity {
    /// h^F, [B, M].
    h: Tensor<2>,
    /// τ^F, [B, 1].
    tau: Tensor<2>,
}

/// Mean and variance of N(mean, std²) restricted to [lower, upper), element-wise.
pub(crate) fn truncated_moments(
    mean: Tensor<2>,
    std: Tensor<2>,
    lower: Tensor<2>,
    upper: Tensor<2>,
) -> (Tensor<2>, Tensor<2>) {
    let ratios = standardized_bin_ratios(lower, upper, mean.clone(), std.clone(), true);
    let factor = ratios.variance.unwrap_or_else(|| ratios.first.zeros_like());
    let variance = factor * std.clone().powi_scalar(2);
    (mean + ratios.first * std, variance)
}

/// [`truncated_moments`] of the cavity N(b + h/τ, 1/τ) (`h`: [B, M], `τ`: [B, 1]) in each measurement's bin: in one
/// fused kernel on a GPU backend outside autodiff (the `cube` feature), as tensor operations otherwise.
fn tilted_moments(
    b: Tensor<2>,
    h: Tensor<2>,
    tau: Tensor<2>,
    observation: &Observation,
) -> (Tensor<2>, Tensor<2>) {
    #[cfg(feature = "cube")]
    if let Some(moments) = crate::cube::ep_moments(
        b.clone(),
        h.clone(),
        tau.clone(),
        observation.lower.clone(),
        observation.upper.clone(),
    ) {
        return moments;
    }
    let std = tau.clone().sqrt().recip();
    truncated_moments(
        b + h / tau,
        std,
        observation.lower.clone(),
        observation.upper.clone(),
    )
}

/// The QCS-SGM+ gradient: [`quantized_gradient`] at the converged cavity N(b + h/τ, 1/τ); in one fused kernel on a
/// GPU backend outside autodiff (the `cube` feature), as tensor operations otherwise.
fn cavity_gradient(b: Tensor<2>, cavity: Cavity, observation: &Observation) -> Tensor<2> {
    #[cfg(feature = "cube")]
    if let Some(g) = crate::cube::ep_gradient(
        b.clone(),
        cavity.h.clone(),
        cavity.tau.clone(),
        observation.lower.clone(),
        observation.upper.clone(),
    ) {
        return g;
    }
    let std = cavity.tau.clone().sqrt().recip();
    quantized_gradient(
        b + cavity.h / cavity.tau,
        observation.lower.clone(),
        observation.upper.clone(),
        std,
    )
}

impl EpScore {
    /// Runs EP for every image and returns the final cavity: in three fused kernels per
    /// iteration on a GPU backend outside autodiff (the `cube` feature) where the Gaussian factor
    /// has an eigenbasis, as tensor operations otherwise.
    fn run(&self, b: Tensor<2>, observation: &Observation, factor: &GaussianFactor) -> Cavity {
        #[cfg(feature = "cube")]
        if let GaussianFactor::Eigen { vectors, precision } = factor {
            if let Some((h, tau)) = crate::cube::ep_run(
                b.clone(),
                observation.lower.clone(),
                observation.upper.clone(),
                vectors.clone(),
                precision.clone(),
                &self.config,
            ) {
                return Cavity { h, tau };
            }
        }
        self.run_tensors(b, observation, factor)
    }

    /// [`Self::run`] as tensor operations.
    fn run_tensors(
        &self,
        b: Tensor<2>,
        observation: &Observation,
        factor: &GaussianFactor,
    ) -> Cavity {
        let [batch, m] = b.dims();
        let device = b.device();
        let cfg = self.config;
        let mut h_f: Tensor<2> = Tensor::zeros([batch, m], &device);
        let mut tau_f: Tensor<2> = Tensor::ones([batch, 1], &device);
        let mut done: Tensor<2, Bool> = Tensor::<2>::zeros([batch, 1], &device).greater_elem(0.0);
        for iteration in 0..cfg.iterations {
            // 1. Quantizer factor: moments of b + v constrained to the bin, under the cavity.
            let (post_mean, post_var) =
                tilted_moments(b.clone(), h_f.clone(), tau_f.clone(), observation);
            let m_a = post_mean - b.clone();
            let positive = post_var.clone().greater_elem(0.0).float();
            let chi_a = ((post_var * positive.clone()).sum_dim(1)
                / positive.sum_dim(1).clamp_min(1.0))
            .clamp_min(MIN_VARIANCE);
            // 2. Extrinsic message to the Gaussian factor.
            let h_g = m_a / chi_a.clone() - h_f.clone();
            let tau_g = (chi_a.recip() - tau_f.clone()).clamp_min(MIN_EXTRINSIC_PRECISION);
            // 3. Gaussian factor, and its message back to the quantizer factor.
            let (mut h_new, mut tau_new) = factor.extrinsic(h_g, tau_g);
            if iteration > 0 {
                h_new = h_new * (1.0 - cfg.damping) + h_f.clone() * cfg.damping;
                tau_new = tau_new * (1.0 - cfg.damping) + tau_f.clone() * cfg.damping;
            }
            let change = (h_new.clone() - h_f.clone()).abs().mean_dim(1)
                + (tau_new.clone() - tau_f.clone()).abs();
            let keep = done.clone();
            h_f = h_new.mask_where(keep.clone().repeat_dim(1, m), h_f);
            tau_f = tau_new.mask_where(keep, tau_f);
            done = done.bool_or(change.lower_elem(cfg.tolerance));
        }
        Cavity { h: h_f, tau: tau_f }
    }
}

impl EpScore {
    /// The converged EP messages (h^F [B, M], τ^F [B, 1]) for quantized measurements at x_t: the cavity
    /// N(b + h^F/τ^F, 1/τ^F) under which the score differentiates log P(bin | ·).
    pub fn messages(
        &self,
        operator: &dyn Operator,
        observation: &Observation,
        sigma_t: f32,
        x_t: Tensor<4>,
    ) -> Result<(Tensor<2>, Tensor<2>)> {
        self.config.validate()?;
        let x = flatten_checked(operator, observation, sigma_t, x_t)?;
        let factor = GaussianFactor::new(
            operator.gram()?,
            observation.noise_std * observation.noise_std,
            sigma_t,
        );
        let cavity = self.run(operator.forward(x), observation, &factor);
        Ok((cavity.h, cavity.tau))
    }
}

impl LikelihoodScore for EpScore {
    fn score(
        &self,
        operator: &dyn Operator,
        observation: &Observation,
        sigma_t: f32,
        x_t: Tensor<4>,
    ) -> Result<Tensor<4>> {
        self.config.validate()?;
        let dims = x_t.dims();
        let x = flatten_checked(operator, observation, sigma_t, x_t)?;
        let factor = GaussianFactor::new(
            operator.gram()?,
            observation.noise_std * observation.noise_std,
            sigma_t,
        );
        let b = operator.forward(x);
        let g = match observation.kind {
            // EP is exact for a Gaussian likelihood: g = U·diag(D)·Uᵀ·(y − A·x_t).
            ObservationKind::Linear => factor.weigh(observation.y.clone() - b),
            ObservationKind::Quantized => {
                let cavity = self.run(b.clone(), observation, &factor);
                cavity_gradient(b, cavity, observation)
            }
        };
        Ok(operator.adjoint(g).reshape(dims))
    }
}

#[cfg(all(test, feature = "cube"))]
mod tests {
    use super::*;
    use crate::EDGE_LIMIT;

    /// A Gaussian factor with the orthogonal Householder basis `U = I − 2vvᵀ/‖v‖²` and precisions
    /// `D_i = 1/(σ_t²λ_i + σ²)` over eigenvalues `λ` from 10⁻³ to 10³ (κ = 10⁶).
    fn factor(m: usize, sigma_t: f32, device: &Device) -> GaussianFactor {
        let v: Vec<f32> = (0..m).map(|i| (0.7 * i as f32 + 0.3).sin()).collect();
        let norm_sq: f32 = v.iter().map(|x| x * x).sum();
        let basis: Vec<f32> = (0..m * m)
            .map(|k| {
                let (i, j) = (k / m, k % m);
                f32::from(i == j) - 2.0 * v[i] * v[j] / norm_sq
            })
            .collect();
        let precision: Vec<f32> = (0..m)
            .map(|i| {
                let lambda = 10f32.powf(-3.0 + 6.0 * i as f32 / (m - 1) as f32);
                1.0 / (sigma_t * sigma_t * lambda + 0.01)
            })
            .collect();
        GaussianFactor::Eigen {
            vectors: Tensor::from_data(TensorData::new(basis, [m, m]), device),
            precision: Tensor::from_data(TensorData::new(precision, [1, m]), device),
        }
    }

    /// `b = A·x_t` for `batch` images and their bins: 1-bit (the sign of a shifted `b`) or 3-bit (8
    /// bins of width 0.5 around 0, the outer two open).
    fn observation(batch: usize, m: usize, bits: u32, device: &Device) -> (Tensor<2>, Observation) {
        let b: Vec<f32> = (0..batch * m)
            .map(|k| 1.5 * (1.3 * k as f32 + 0.2).sin())
            .collect();
        let y: Vec<f32> = (0..batch * m)
            .map(|k| b[k] + 0.8 * (2.1 * k as f32).cos())
            .collect();
        let (lower, upper): (Vec<f32>, Vec<f32>) = y
            .iter()
            .map(|&y| {
                if bits == 1 {
                    if y >= 0.0 {
                        (0.0, EDGE_LIMIT)
                    } else {
                        (-EDGE_LIMIT, 0.0)
                    }
                } else {
                    let bin = (y / 0.5).floor().clamp(-4.0, 3.0);
                    let l = if bin <= -4.0 { -EDGE_LIMIT } else { bin * 0.5 };
                    let u = if bin >= 3.0 {
                        EDGE_LIMIT
                    } else {
                        (bin + 1.0) * 0.5
                    };
                    (l, u)
                }
            })
            .unzip();
        let tensor =
            |values: Vec<f32>| Tensor::from_data(TensorData::new(values, [batch, m]), device);
        let observation = Observation {
            kind: ObservationKind::Quantized,
            y: tensor(y),
            lower: tensor(lower),
            upper: tensor(upper),
            noise_std: 0.1,
            one_sided: bits == 1,
        };
        (tensor(b), observation)
    }

    fn host(t: Tensor<2>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().expect("f32")
    }

    #[test]
    fn fused_ep_iterations_match_the_tensor_operations() {
        for device in qcs_testkit::wgpu_devices() {
            let (batch, m) = (3, 40);
            for bits in [1, 3] {
                for (config, sigma_t) in [
                    (EpConfig::for_bits(Some(bits)), 0.05),
                    (EpConfig::for_bits(Some(bits)), 1.0),
                    (EpConfig::reference(Some(bits)), 0.3),
                ] {
                    let factor = factor(m, sigma_t, &device);
                    let (b, observation) = observation(batch, m, bits, &device);
                    let score = EpScore { config };
                    if let GaussianFactor::Eigen { vectors, precision } = &factor {
                        let fused = crate::cube::ep_run(
                            b.clone(),
                            observation.lower.clone(),
                            observation.upper.clone(),
                            vectors.clone(),
                            precision.clone(),
                            &config,
                        );
                        assert!(fused.is_some(), "the kernels must apply on {device:?}");
                    }
                    let fused = score.run(b.clone(), &observation, &factor);
                    let ops = score.run_tensors(b.clone(), &observation, &factor);
                    let (h_fused, h_ops) = (host(fused.h.clone()), host(ops.h.clone()));
                    let (tau_fused, tau_ops) = (host(fused.tau.clone()), host(ops.tau.clone()));
                    let at = format!("{bits} bits, σ_t {sigma_t}, {config:?}");
                    for (k, (got, want)) in tau_fused.iter().zip(&tau_ops).enumerate() {
                        assert!(
                            (got - want).abs() <= 2e-5 * want.abs(),
                            "{at}: τ of image {k}: {got} against {want}"
                        );
                    }
                    let scale = h_ops.iter().fold(0f32, |a, h| a.max(h.abs()));
                    for (k, (got, want)) in h_fused.iter().zip(&h_ops).enumerate() {
                        assert!(
                            (got - want).abs() <= 2e-5 * scale,
                            "{at}: h[{k}]: {got} against {want} (largest |h| {scale})"
                        );
                    }
                    let g_fused = host(cavity_gradient(b.clone(), fused, &observation));
                    let g_ops = host(cavity_gradient(b, ops, &observation));
                    let g_scale = g_ops.iter().fold(0f32, |a, g| a.max(g.abs()));
                    assert!(g_scale > 0.0 && g_ops.iter().all(|g| g.is_finite()), "{at}");
                    for (k, (got, want)) in g_fused.iter().zip(&g_ops).enumerate() {
                        assert!(
                            (got - want).abs() <= 2e-5 * g_scale,
                            "{at}: g[{k}]: {got} against {want}"
                        );
                    }
                }
            }
        }
    }
}
