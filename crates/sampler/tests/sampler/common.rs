//! Helpers shared by the sampler's integration tests.
#![allow(dead_code, clippy::needless_range_loop)] // each test binary uses a subset; index loops mirror the formulas

use burn::prelude::*;
use qcs_likelihood::{Observation, ObservationKind};
use qcs_sampler::Posterior;
use qcs_sensing::operator::DenseOperator;
use qcs_sensing::{Family, ImageShape, OperatorSpec};

#[allow(unused_imports)] // each test binary uses a subset
pub use qcs_testkit::{devices, host, monte_carlo_devices, tensor2};

/// A dense operator holding exactly `a` (row-major M×N, rounded to f32) for images of `shape`.
pub fn operator(a: &[f64], m: usize, shape: [usize; 3], device: &Device) -> DenseOperator {
    let spec = OperatorSpec {
        family: Family::Gaussian,
        measurements: m,
        image: ImageShape::new(shape[0], shape[1], shape[2]).unwrap(),
        seed: 0,
    };
    let values: Vec<f32> = a.iter().map(|&v| v as f32).collect();
    DenseOperator::from_values(&spec, &values, device).unwrap()
}

/// Linear measurements y (B rows of M) with noise standard deviation σ.
pub fn linear_observation(
    y: &[f64],
    b: usize,
    m: usize,
    sigma: f64,
    device: &Device,
) -> Observation {
    let t = tensor2(y, [b, m], device);
    Observation::new(
        ObservationKind::Linear,
        t.clone(),
        t.clone(),
        t,
        sigma as f32,
    )
    .unwrap()
}

/// 1-bit measurements y ∈ {−1, +1} (B rows of M): bins (0, ∞) and (−∞, 0).
pub fn one_bit_observation(
    y: &[f64],
    b: usize,
    m: usize,
    sigma: f64,
    device: &Device,
) -> Observation {
    let lower: Vec<f64> = y
        .iter()
        .map(|&s| if s > 0.0 { 0.0 } else { f64::NEG_INFINITY })
        .collect();
    let upper: Vec<f64> = y
        .iter()
        .map(|&s| if s > 0.0 { f64::INFINITY } else { 0.0 })
        .collect();
    Observation::new(
        ObservationKind::Quantized,
        tensor2(y, [b, m], device),
        tensor2(&lower, [b, m], device),
        tensor2(&upper, [b, m], device),
        sigma as f32,
    )
    .unwrap()
}

/// The inverse of an n×n matrix (row-major) by Gauss–Jordan elimination with partial pivoting.
pub fn invert(matrix: &[f64], n: usize) -> Vec<f64> {
    let mut a = matrix.to_vec();
    let mut inv: Vec<f64> = (0..n * n)
        .map(|k| f64::from(u8::from(k / n == k % n)))
        .collect();
    for col in 0..n {
        let pivot = (col..n)
            .max_by(|&i, &j| a[i * n + col].abs().total_cmp(&a[j * n + col].abs()))
            .unwrap();
        for k in 0..n {
            a.swap(col * n + k, pivot * n + k);
            inv.swap(col * n + k, pivot * n + k);
        }
        let d = a[col * n + col];
        for k in 0..n {
            a[col * n + k] /= d;
            inv[col * n + k] /= d;
        }
        for row in (0..n).filter(|&r| r != col) {
            let f = a[row * n + col];
            for k in 0..n {
                a[row * n + k] -= f * a[col * n + k];
                inv[row * n + k] -= f * inv[col * n + k];
            }
        }
    }
    inv
}

/// How far a posterior estimate is from the truth, in units that do not depend on the problem's scale.
#[derive(Debug)]
pub struct Agreement {
    /// max_i |mean_i − m_i|/sd_i.
    pub mean_error: f64,
    /// max_i |std_i/sd_i − 1|.
    pub std_error: f64,
}

/// Compares the sampler's mean and spread with the exact posterior means `m` and standard deviations `sd`.
pub fn agreement(posterior: Posterior, m: &[f64], sd: &[f64]) -> Agreement {
    let mean = host(posterior.mean);
    let std = host(posterior.std.unwrap());
    let mut out = Agreement {
        mean_error: 0.0,
        std_error: 0.0,
    };
    for i in 0..m.len() {
        out.mean_error = out.mean_error.max((mean[i] - m[i]).abs() / sd[i]);
        out.std_error = out.std_error.max((std[i] / sd[i] - 1.0).abs());
    }
    out
}

/// Monte-Carlo tolerances for `chains` independent chains: five standard errors of the mean (sd/√n) and of
/// the sample standard deviation (sd/√(2(n − 1))), each plus `bias` (in units of sd) for the discretisation
/// and the σ_T smoothing, which the moment recursion of the Gaussian case puts below 0.02.
pub fn tolerances(chains: usize, bias: f64) -> (f64, f64) {
    let n = chains as f64;
    (5.0 / n.sqrt() + bias, 5.0 / (2.0 * (n - 1.0)).sqrt() + bias)
}

/// The reference ngf-8 NCSNv2 of the fixtures (28×28×1, 10 levels from σ = 50 to 0.01) on `device`.
pub fn fixture_network(device: &Device) -> qcs_score_net::NcsnV2 {
    let config = qcs_score_net::NcsnV2Config {
        ngf: 8,
        channels: 1,
        image_size: 28,
        num_levels: 10,
        sigma_begin: 50.0,
        sigma_end: 0.01,
    };
    qcs_score_net::load_safetensors(
        &config,
        qcs_testkit::fixture_path("ncsnv2_mnist_ngf8_weights.safetensors"),
        device,
    )
    .expect("the fixture network loads")
}
