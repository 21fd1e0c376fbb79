//! Measurement operators A ∈ R^{M×N} acting on batches of flattened images.
//!
//! Every operator is generated from its [`OperatorSpec`] on the CPU with a seeded generator and then moved to
//! the device, so the same spec gives the same operator on every backend.

pub mod dct;
pub mod dense;
pub mod hadamard;
mod linalg;
pub mod norm;

use burn::prelude::*;

pub use dct::{Dct2d, DctOperator};
pub use dense::DenseOperator;
pub use hadamard::HadamardOperator;
pub use norm::{normalized_rows, operator_norm_sq, NORM_ITERATIONS};

use crate::error::Result;
use crate::spec::{Family, OperatorSpec};

/// The eigendecomposition of the Gram matrix A·Aᵀ that expectation propagation needs.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // one per operator, never in a collection
pub enum GramSpectrum {
    /// A·Aᵀ = U·diag(λ)·Uᵀ.
    Eigen {
        /// Orthonormal eigenvectors U as columns, shape [M, M].
        vectors: Tensor<2>,
        /// Eigenvalues λ (squared singular values of A), shape [M].
        values: Tensor<1>,
    },
    /// A·Aᵀ = c·I (orthogonal rows of equal norm), so any orthonormal basis diagonalises it.
    Scaled {
        /// The common eigenvalue c.
        value: f32,
        /// M.
        size: usize,
    },
}

/// A linear measurement operator applied to batches: rows of the input are images, rows of the output are
/// measurement vectors.
pub trait Operator: Send + Sync + std::fmt::Debug {
    /// The specification that rebuilds this operator exactly.
    fn spec(&self) -> &OperatorSpec;

    /// The device the operator's tensors live on.
    fn device(&self) -> &Device;

    /// z = A·x for every row: [B, N] → [B, M].
    fn forward(&self, x: Tensor<2>) -> Tensor<2>;

    /// Aᵀ·r for every row: [B, M] → [B, N].
    fn adjoint(&self, r: Tensor<2>) -> Tensor<2>;

    /// Squared row norms ‖a_m‖², shape [M].
    fn row_norms_sq(&self) -> Tensor<1>;

    /// The eigenpairs of A·Aᵀ, computed once and cached.
    fn gram(&self) -> Result<&GramSpectrum>;

    /// ‖A‖² = λ_max(A·Aᵀ) as [`operator_norm_sq`] gives it with [`NORM_ITERATIONS`] steps from seed 0 (exact for
    /// DCT and Hadamard), computed once and cached: a sampler asks for it on every call.
    fn norm_sq(&self) -> Result<f64>;

    /// M.
    fn rows(&self) -> usize {
        self.spec().measurements
    }

    /// N.
    fn cols(&self) -> usize {
        self.spec().n()
    }
}

/// Builds the operator that `spec` describes on `device`.
pub fn build_operator(spec: &OperatorSpec, device: &Device) -> Result<Box<dyn Operator>> {
    spec.validate()?;
    Ok(match spec.family {
        Family::Gaussian | Family::IllConditioned { .. } | Family::Correlated { .. } => {
            Box::new(DenseOperator::generate(spec, device)?)
        }
        Family::Dct => Box::new(DctOperator::new(spec, device)),
        Family::Hadamard => Box::new(HadamardOperator::new(spec, device)),
    })
}

/// A random subset of `m` distinct indices of `0..n`, sorted, drawn with `rng`.
fn random_rows(rng: &mut impl rand::Rng, n: usize, m: usize) -> Vec<usize> {
    let mut rows = rand::seq::index::sample(rng, n, m).into_vec();
    rows.sort_unstable();
    rows
}

/// `n` random signs ±1 drawn with `rng`.
fn random_signs(rng: &mut impl rand::Rng, n: usize) -> Vec<f32> {
    (0..n)
        .map(|_| if rng.random::<bool>() { 1.0 } else { -1.0 })
        .collect()
}

/// An index vector on the device.
fn index_tensor(indices: &[usize], device: &Device) -> Tensor<1, Int> {
    let values: Vec<i64> = indices.iter().map(|&i| i as i64).collect();
    Tensor::from_data(TensorData::new(values, [indices.len()]), device)
}

/// Places the columns of r [B, M] at the kept positions `rows` of a zero [B, n] tensor: the adjoint of
/// `select(1, rows)`.
fn scatter_rows(r: Tensor<2>, rows: &Tensor<1, Int>, n: usize) -> Tensor<2> {
    let [b, _] = r.dims();
    Tensor::zeros([b, n], &r.device()).select_assign(
        1,
        rows.clone(),
        r,
        burn::tensor::IndexingUpdateOp::Add,
    )
}

/// A row vector [1, len] on the device.
fn row_tensor(values: Vec<f32>, device: &Device) -> Tensor<2> {
    let len = values.len();
    Tensor::from_data(TensorData::new(values, [1, len]), device)
}
