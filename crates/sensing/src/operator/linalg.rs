//! Host-side dense linear algebra in f64 (faer): random orthogonal factors, matrix square roots, Gram
//! eigendecompositions. Used once per operator, never inside a sampling loop.

use faer::{Mat, Side};
use rand::Rng;
use rand_distr::StandardNormal;

use crate::error::{Result, SensingError};

/// A rows×cols matrix of i.i.d. N(0, 1) entries.
pub fn standard_normal(rng: &mut impl Rng, rows: usize, cols: usize) -> Mat<f64> {
    Mat::from_fn(rows, cols, |_, _| rng.sample::<f64, _>(StandardNormal))
}

/// `rows` orthonormal rows of length `cols` (rows ≤ cols), Haar distributed: the first rows of a Haar-random
/// cols×cols orthogonal matrix. QR of a Gaussian matrix with the signs of R's diagonal moved into Q.
pub fn haar_rows(rng: &mut impl Rng, rows: usize, cols: usize) -> Mat<f64> {
    let g = standard_normal(rng, cols, rows);
    let qr = g.qr();
    let r = qr.thin_R();
    let mut q = qr.compute_thin_Q();
    for j in 0..rows {
        if r[(j, j)] < 0.0 {
            for i in 0..cols {
                q[(i, j)] = -q[(i, j)];
            }
        }
    }
    q.transpose().to_owned()
}

/// The symmetric eigendecomposition S = V·diag(λ)·Vᵀ, eigenvalues in nondecreasing order.
pub fn symmetric_eigen(s: &Mat<f64>) -> Result<(Mat<f64>, Vec<f64>)> {
    let evd = s
        .self_adjoint_eigen(Side::Lower)
        .map_err(|e| SensingError::LinearAlgebra(format!("eigendecomposition failed: {e:?}")))?;
    let values = (0..s.nrows()).map(|i| evd.S()[i]).collect();
    Ok((evd.U().to_owned(), values))
}

/// The principal square root of the n×n Toeplitz correlation matrix R_ij = ρ^{|i-j|}.
pub fn toeplitz_correlation_sqrt(n: usize, rho: f64) -> Result<Mat<f64>> {
    let r = Mat::from_fn(n, n, |i, j| rho.powi(i.abs_diff(j) as i32));
    let (v, lambda) = symmetric_eigen(&r)?;
    let scaled = Mat::from_fn(n, n, |i, k| v[(i, k)] * lambda[k].max(0.0).sqrt());
    Ok(&scaled * v.transpose())
}

/// Row-major f32 copy of a matrix, for upload to a device.
pub fn to_row_major_f32(m: &Mat<f64>) -> Vec<f32> {
    let mut out = Vec::with_capacity(m.nrows() * m.ncols());
    for i in 0..m.nrows() {
        for j in 0..m.ncols() {
            out.push(m[(i, j)] as f32);
        }
    }
    out
}

/// A matrix from row-major f32 values.
pub fn from_row_major_f32(values: &[f32], rows: usize, cols: usize) -> Mat<f64> {
    Mat::from_fn(rows, cols, |i, j| f64::from(values[i * cols + j]))
}
