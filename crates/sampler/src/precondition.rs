//! The curvature limit per direction ([`StepControl::Preconditioned`](crate::StepControl::Preconditioned)).
//!
//! With the right singular vectors v_i of A (A·Aᵀ = U·diag(λ_i)·Uᵀ) and k_c = σ_c²·λ·h_c, h_c the largest
//! per-measurement curvature 1/(σ² + σ_c²·min_m ‖a_m‖²) of the likelihood's factors, the step at level c is
//!
//! x ← x + α_c·P_c·drift + √(2α_c)·P_c^{1/2}·ξ,   P_c = I − Σ_i (1 − p_i)·v_i·v_iᵀ,   p_i = 1/(1 + k_c·λ_i).
//!
//! P_c is a constant (per level) symmetric positive definite preconditioner, so the dynamics keep their
//! target. The likelihood's Hessian is at most h_c·AᵀA = h_c·Σ_i λ_i·v_i·v_iᵀ, so the preconditioned total
//! curvature α_c·P_c^{1/2}·(I/σ_c² + λ·h_c·AᵀA)·P_c^{1/2} is at most α_c/σ_c² in every direction: the
//! stability of [`StepControl::Curvature`](crate::StepControl::Curvature), which divides the whole step by
//! 1 + k_c·‖A‖², the factor of the top direction alone. Here the null space of A keeps the prior's full
//! step and each row-space direction shrinks by its own λ_i.
//!
//! Applied as P·d = d − Aᵀ·U·diag(w)·Uᵀ·A·d with w_i = (1 − p_i)/λ_i = k_c·p_i, and P^{1/2} with
//! w_i = (1 − √p_i)/λ_i = k_c·p_i/(1 + √p_i): both finite for λ_i = 0. For rows that are orthogonal with
//! equal norms (DCT, Hadamard) U is the identity and no M×M product is made.

use burn::prelude::*;
use qcs_likelihood::{Curvature, LikelihoodError};
use qcs_sensing::{GramSpectrum, Operator};

use crate::error::{Result, SamplerError};

/// A's spectrum and the curvature bound, read once per run.
pub(crate) struct Preconditioner<'a> {
    operator: &'a dyn Operator,
    /// U [M, M] (`None`: A·Aᵀ = c·I).
    basis: Option<Tensor<2>>,
    /// λ_i on the host.
    eigenvalues: Vec<f64>,
    curvature: Curvature,
    lambda: f64,
}

/// The two weightings of one level: P (drift) and P^{1/2} (noise).
pub(crate) struct LevelPreconditioner<'p, 'a> {
    owner: &'p Preconditioner<'a>,
    drift: Tensor<2>,
    noise: Tensor<2>,
}

impl<'a> Preconditioner<'a> {
    /// Reads A·Aᵀ's eigenvalues back (once) for the likelihood weight `lambda` and its `curvature` bound.
    pub(crate) fn new(
        operator: &'a dyn Operator,
        curvature: Curvature,
        lambda: f64,
    ) -> Result<Self> {
        let (basis, eigenvalues) = match operator.gram().map_err(LikelihoodError::from)? {
            GramSpectrum::Eigen { vectors, values } => {
                let values = values
                    .clone()
                    .into_data()
                    .try_to_vec::<f32>()
                    .map_err(|e| SamplerError::ReadBack {
                        what: "the eigenvalues of A·Aᵀ".into(),
                        message: format!("{e:?}"),
                    })?;
                (
                    Some(vectors.clone()),
                    values.iter().map(|&v| f64::from(v).max(0.0)).collect(),
                )
            }
            GramSpectrum::Scaled { value, size } => (None, vec![f64::from(*value); *size]),
        };
        Ok(Self {
            operator,
            basis,
            eigenvalues,
            curvature,
            lambda,
        })
    }

    /// P and P^{1/2} at noise level σ_c.
    pub(crate) fn at(&self, sigma: f64) -> LevelPreconditioner<'_, 'a> {
        let c = &self.curvature;
        let k = sigma * sigma * self.lambda / (c.noise_var + sigma * sigma * c.min_row_norm_sq);
        let (drift, noise): (Vec<f32>, Vec<f32>) = self
            .eigenvalues
            .iter()
            .map(|&l| {
                if k.is_finite() {
                    let p = 1.0 / (1.0 + k * l);
                    ((k * p) as f32, (k * p / (1.0 + p.sqrt())) as f32)
                } else {
                    // σ = 0 with a zero row: an unbounded curvature stops the row space (p_i = 0).
                    let w = if l > 0.0 { (1.0 / l) as f32 } else { 0.0 };
                    (w, w)
                }
            })
            .unzip();
        let device = self.operator.device();
        let row = |w: Vec<f32>| {
            let m = w.len();
            Tensor::<2>::from_data(TensorData::new(w, [1, m]), device)
        };
        LevelPreconditioner {
            owner: self,
            drift: row(drift),
            noise: row(noise),
        }
    }
}

impl LevelPreconditioner<'_, '_> {
    /// P·d for every image of `d` [B, C, H, W].
    pub(crate) fn drift(&self, d: Tensor<4>) -> Tensor<4> {
        self.apply(d, &self.drift)
    }

    /// P^{1/2}·ξ for every image of `xi` [B, C, H, W].
    pub(crate) fn noise(&self, xi: Tensor<4>) -> Tensor<4> {
        self.apply(xi, &self.noise)
    }

    /// d − Aᵀ·U·diag(w)·Uᵀ·A·d, the rows of d being images.
    fn apply(&self, d: Tensor<4>, w: &Tensor<2>) -> Tensor<4> {
        let dims = d.dims();
        let flat = d.reshape([dims[0], dims[1] * dims[2] * dims[3]]);
        let op = self.owner.operator;
        let z = op.forward(flat.clone());
        let z = match &self.owner.basis {
            Some(u) => (z.matmul(u.clone()) * w.clone()).matmul(u.clone().transpose()),
            None => z * w.clone(),
        };
        (flat - op.adjoint(z)).reshape(dims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use qcs_sensing::{build_operator, Family, ImageShape, OperatorSpec};

    fn operator(family: Family) -> Box<dyn Operator> {
        let spec = OperatorSpec {
            family,
            measurements: 6,
            image: ImageShape::new(1, 4, 4).unwrap(),
            seed: 5,
        };
        build_operator(&spec, &qcs_testkit::device()).unwrap()
    }

    fn host(t: Tensor<4>) -> Vec<f64> {
        let v = t.into_data().try_to_vec::<f32>().unwrap();
        v.into_iter().map(f64::from).collect()
    }

    fn images(seed: u64) -> Tensor<4> {
        let values: Vec<f32> = (0..2 * 16)
            .map(|i| ((i as f64 * 0.37 + seed as f64).sin()) as f32)
            .collect();
        Tensor::from_data(
            TensorData::new(values, [2, 1, 4, 4]),
            &qcs_testkit::device(),
        )
    }

    fn max_diff(a: &[f64], b: &[f64]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max)
    }

    /// P^{1/2}·P^{1/2} = P, A's null space is left alone, and along Aᵀ·u_i (u_i an eigenvector of A·Aᵀ) P
    /// multiplies by p_i = 1/(1 + k·λ_i): checked for a dense A (eigenbasis) and a Hadamard A (A·Aᵀ = c·I).
    #[test]
    fn the_preconditioner_is_the_per_direction_shrink_it_claims() {
        let curvature = Curvature {
            operator_norm_sq: 0.0, // unused by the preconditioner
            min_row_norm_sq: 1.5,
            noise_var: 0.01,
        };
        for family in [Family::Gaussian, Family::Hadamard] {
            let op = operator(family);
            let pre = Preconditioner::new(op.as_ref(), curvature, 0.8).unwrap();
            let sigma = 0.3;
            let level = pre.at(sigma);
            let d = images(1);

            let twice = host(level.noise(level.noise(d.clone())));
            let once = host(level.drift(d.clone()));
            assert!(max_diff(&twice, &once) < 1e-4, "{family:?}: P^½P^½ ≠ P");

            // The null-space part of d: d − Aᵀ(AAᵀ)⁻¹A·d, made with P itself as k → ∞ would be circular, so
            // take it from the eigenpairs directly.
            let flat = d.clone().reshape([2, 16]);
            let z = op.forward(flat.clone());
            let projected = match op.gram().unwrap() {
                GramSpectrum::Eigen { vectors, values } => {
                    let inv = values.clone().recip().reshape([1, 6]);
                    (z.matmul(vectors.clone()) * inv).matmul(vectors.clone().transpose())
                }
                GramSpectrum::Scaled { value, .. } => z / *value,
            };
            let null = flat.clone() - op.adjoint(projected);
            let null4 = null.clone().reshape([2, 1, 4, 4]);
            let kept = host(level.drift(null4.clone()));
            assert!(
                max_diff(&kept, &host(null4)) < 1e-4,
                "{family:?}: null space moved"
            );

            let k = sigma * sigma * 0.8 / (0.01 + sigma * sigma * 1.5);
            let (u, values) = match op.gram().unwrap() {
                GramSpectrum::Eigen { vectors, values } => (
                    vectors.clone(),
                    values.clone().into_data().try_to_vec::<f32>().unwrap(),
                ),
                GramSpectrum::Scaled { value, size } => (
                    Tensor::<2>::eye(*size, &qcs_testkit::device()),
                    vec![*value; *size],
                ),
            };
            for (i, &l) in values.iter().enumerate() {
                let direction = op
                    .adjoint(u.clone().slice([0..6, i..i + 1]).transpose())
                    .reshape([1, 1, 4, 4]);
                let p = 1.0 / (1.0 + k * f64::from(l));
                let want: Vec<f64> = host(direction.clone()).iter().map(|v| v * p).collect();
                let got = host(level.drift(direction));
                let scale = want.iter().map(|v| v.abs()).fold(0.0, f64::max);
                assert!(
                    max_diff(&got, &want) < 1e-4 * scale.max(1.0),
                    "{family:?}: direction {i}, λ = {l}, p = {p}"
                );
            }
        }
    }
}
