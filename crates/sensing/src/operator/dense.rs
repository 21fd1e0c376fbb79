//! Dense operators: `gaussian`, `ill-conditioned(κ)` and `correlated(ρ)` (ALGORITHM.md §1).

use std::sync::OnceLock;

use burn::prelude::*;
use faer::Mat;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::linalg::{
    from_row_major_f32, haar_rows, standard_normal, symmetric_eigen, to_row_major_f32,
    toeplitz_correlation_sqrt,
};
use super::{GramSpectrum, Operator};
use crate::error::{Result, SensingError};
use crate::spec::{Family, OperatorSpec};

/// An operator stored as a dense M×N matrix on the device.
#[derive(Debug)]
pub struct DenseOperator {
    spec: OperatorSpec,
    device: Device,
    /// A, shape [M, N].
    matrix: Tensor<2>,
    /// ‖a_m‖², shape [M].
    row_norms: Tensor<1>,
    /// Eigenpairs of A·Aᵀ, filled on first use (or at construction when they are known analytically).
    gram: OnceLock<GramSpectrum>,
    /// ‖A‖², filled on first use.
    norm_sq: OnceLock<f64>,
}

impl DenseOperator {
    /// Draws the matrix that `spec` describes (dense families only) and uploads it to `device`.
    pub fn generate(spec: &OperatorSpec, device: &Device) -> Result<Self> {
        spec.validate()?;
        let (m, n) = (spec.measurements, spec.n());
        let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
        let gram = OnceLock::new();
        let matrix = match spec.family {
            Family::Gaussian => gaussian(&mut rng, m, n),
            Family::Correlated { rho } => correlated(&mut rng, m, n, rho)?,
            Family::IllConditioned { kappa } => {
                let (a, u, d2) = ill_conditioned(&mut rng, m, n, kappa);
                let spectrum = GramSpectrum::Eigen {
                    vectors: Tensor::from_data(
                        TensorData::new(to_row_major_f32(&u), [m, m]),
                        device,
                    ),
                    values: Tensor::from_data(
                        TensorData::new(d2.iter().map(|&v| v as f32).collect::<Vec<_>>(), [m]),
                        device,
                    ),
                };
                let _ = gram.set(spectrum);
                a
            }
            Family::Dct | Family::Hadamard => {
                return Err(SensingError::InvalidSetting(format!(
                    "{} is a structured operator, not a dense one",
                    spec.family.name()
                )))
            }
        };
        Ok(Self::from_matrix(spec, &matrix, gram, device))
    }

    /// Wraps a given row-major M×N matrix (for example one exported from another implementation). `spec`
    /// records M, N and provenance; the matrix is used as given and its Gram eigenpairs are computed on demand.
    pub fn from_values(spec: &OperatorSpec, values: &[f32], device: &Device) -> Result<Self> {
        let (m, n) = (spec.measurements, spec.n());
        if values.len() != m * n {
            return Err(SensingError::ShapeMismatch {
                what: "matrix values".into(),
                expected: vec![m, n],
                found: vec![values.len()],
            });
        }
        crate::error::ensure_finite("matrix", values)?;
        Ok(Self::from_matrix(
            spec,
            &from_row_major_f32(values, m, n),
            OnceLock::new(),
            device,
        ))
    }

    fn from_matrix(
        spec: &OperatorSpec,
        a: &Mat<f64>,
        gram: OnceLock<GramSpectrum>,
        device: &Device,
    ) -> Self {
        let (m, n) = (a.nrows(), a.ncols());
        let norms: Vec<f32> = (0..m)
            .map(|i| (0..n).map(|j| a[(i, j)] * a[(i, j)]).sum::<f64>() as f32)
            .collect();
        Self {
            spec: *spec,
            device: device.clone(),
            matrix: Tensor::from_data(TensorData::new(to_row_major_f32(a), [m, n]), device),
            row_norms: Tensor::from_data(TensorData::new(norms, [m]), device),
            gram,
            norm_sq: OnceLock::new(),
        }
    }

    /// The matrix A as a device tensor [M, N].
    pub fn matrix(&self) -> Tensor<2> {
        self.matrix.clone()
    }

    fn compute_gram(&self) -> Result<GramSpectrum> {
        let (m, n) = (self.rows(), self.cols());
        let values = self
            .matrix
            .clone()
            .into_data()
            .try_to_vec_as::<f32>()
            .map_err(|e| SensingError::LinearAlgebra(format!("reading A back: {e:?}")))?;
        let a = from_row_major_f32(&values, m, n);
        let (u, lambda) = symmetric_eigen(&(&a * a.transpose()))?;
        Ok(GramSpectrum::Eigen {
            vectors: Tensor::from_data(TensorData::new(to_row_major_f32(&u), [m, m]), &self.device),
            values: Tensor::from_data(
                TensorData::new(
                    lambda
                        .iter()
                        .map(|&v| v.max(0.0) as f32)
                        .collect::<Vec<_>>(),
                    [m],
                ),
                &self.device,
            ),
        })
    }
}

/// `gaussian`: A_ij ~ N(0, 1/M) i.i.d.
fn gaussian(rng: &mut ChaCha8Rng, m: usize, n: usize) -> Mat<f64> {
    let scale = 1.0 / (m as f64).sqrt();
    let g = standard_normal(rng, m, n);
    Mat::from_fn(m, n, |i, j| g[(i, j)] * scale)
}

/// `ill-conditioned(κ)`: A = U·diag(d)·V with U Haar M×M, V the first M rows of a Haar N×N matrix,
/// d_i² ∝ κ^{-(i-1)/M} and Σ d_i² = N. Returns A, U and d².
fn ill_conditioned(
    rng: &mut ChaCha8Rng,
    m: usize,
    n: usize,
    kappa: f64,
) -> (Mat<f64>, Mat<f64>, Vec<f64>) {
    let u = haar_rows(rng, m, m);
    let v = haar_rows(rng, m, n);
    let raw: Vec<f64> = (0..m).map(|i| kappa.powf(-(i as f64) / m as f64)).collect();
    let total: f64 = raw.iter().sum();
    let d2: Vec<f64> = raw.iter().map(|r| r * n as f64 / total).collect();
    let ud = Mat::from_fn(m, m, |i, k| u[(i, k)] * d2[k].sqrt());
    (&ud * &v, u, d2)
}

/// `correlated(ρ)`: A = R_L^{1/2}·G·R_R^{1/2}/√M with (R)_ij = ρ^{|i-j|} and principal matrix square roots.
fn correlated(rng: &mut ChaCha8Rng, m: usize, n: usize, rho: f64) -> Result<Mat<f64>> {
    let g = standard_normal(rng, m, n);
    let left = toeplitz_correlation_sqrt(m, rho)?;
    let right = toeplitz_correlation_sqrt(n, rho)?;
    let scale = 1.0 / (m as f64).sqrt();
    let a = &(&left * &g) * &right;
    Ok(Mat::from_fn(m, n, |i, j| a[(i, j)] * scale))
}

impl Operator for DenseOperator {
    fn spec(&self) -> &OperatorSpec {
        &self.spec
    }

    fn device(&self) -> &Device {
        &self.device
    }

    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        x.matmul(self.matrix.clone().transpose())
    }

    fn adjoint(&self, r: Tensor<2>) -> Tensor<2> {
        r.matmul(self.matrix.clone())
    }

    fn row_norms_sq(&self) -> Tensor<1> {
        self.row_norms.clone()
    }

    fn gram(&self) -> Result<&GramSpectrum> {
        if let Some(g) = self.gram.get() {
            return Ok(g);
        }
        let computed = self.compute_gram()?;
        Ok(self.gram.get_or_init(|| computed))
    }

    fn norm_sq(&self) -> Result<f64> {
        if let Some(&value) = self.norm_sq.get() {
            return Ok(value);
        }
        let computed = super::operator_norm_sq(self, super::NORM_ITERATIONS, 0)?;
        Ok(*self.norm_sq.get_or_init(|| computed))
    }
}
