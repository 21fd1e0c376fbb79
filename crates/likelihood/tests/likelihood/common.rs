//! Helpers shared by the likelihood tests.
#![allow(clippy::needless_range_loop, dead_code)] // index loops read like the formulas they check; helpers shared by several tests

use burn::prelude::*;
use qcs_likelihood::{Observation, ObservationKind};
use qcs_sensing::operator::DenseOperator;
use qcs_sensing::{Family, ImageShape, OperatorSpec};

#[allow(unused_imports)] // each test binary uses a subset
pub use qcs_testkit::{devices, host, rel_l2, tensor2};

pub fn spec(family: Family, m: usize, image: [usize; 3], seed: u64) -> OperatorSpec {
    OperatorSpec {
        family,
        measurements: m,
        image: ImageShape::new(image[0], image[1], image[2]).unwrap(),
        seed,
    }
}

pub fn fixture(name: &str) -> (Vec<f64>, Vec<usize>) {
    qcs_testkit::fixture_tensor("likelihood_f64.safetensors", name)
}

/// The fixture's operator A (60×784) on `device`.
pub fn fixture_operator(device: &Device) -> DenseOperator {
    let (a, shape) = fixture("A");
    let values: Vec<f32> = a.iter().map(|&v| v as f32).collect();
    DenseOperator::from_values(
        &spec(Family::Gaussian, shape[0], [1, 28, 28], 0),
        &values,
        device,
    )
    .unwrap()
}

pub fn fixture_x_t(device: &Device) -> Tensor<4> {
    let (x, _) = fixture("x_t");
    let v: Vec<f32> = x.iter().map(|&v| v as f32).collect();
    Tensor::from_data(TensorData::new(v, [2, 1, 28, 28]), device)
}

/// 1-bit bins from signs: y = +1 → [0, ∞), y = −1 → (−∞, 0).
pub fn one_bit_observation(
    y: &[f64],
    shape: [usize; 2],
    noise_std: f32,
    device: &Device,
) -> Observation {
    let lower: Vec<f64> = y
        .iter()
        .map(|&v| if v > 0.0 { 0.0 } else { f64::NEG_INFINITY })
        .collect();
    let upper: Vec<f64> = y
        .iter()
        .map(|&v| if v > 0.0 { f64::INFINITY } else { 0.0 })
        .collect();
    Observation::new(
        ObservationKind::Quantized,
        tensor2(y, shape, device),
        tensor2(&lower, shape, device),
        tensor2(&upper, shape, device),
        noise_std,
    )
    .unwrap()
}

pub fn bin_observation(
    y: &[f64],
    lower: &[f64],
    upper: &[f64],
    shape: [usize; 2],
    noise_std: f32,
    device: &Device,
) -> Observation {
    Observation::new(
        ObservationKind::Quantized,
        tensor2(y, shape, device),
        tensor2(lower, shape, device),
        tensor2(upper, shape, device),
        noise_std,
    )
    .unwrap()
}

pub fn linear_observation(
    y: &[f64],
    shape: [usize; 2],
    noise_std: f32,
    device: &Device,
) -> Observation {
    let t = tensor2(y, shape, device);
    Observation::new(ObservationKind::Linear, t.clone(), t.clone(), t, noise_std).unwrap()
}

/// Q(x)/φ(x), the Mills ratio, by its continued fraction (accurate for x ≥ 2).
pub fn mills_ratio(x: f64) -> f64 {
    let mut tail = 0.0;
    for k in (1..400).rev() {
        tail = k as f64 / (x + tail);
    }
    1.0 / (x + tail)
}

/// log(Φ(b) − Φ(a)) in f64 for a < b, exact in both tails.
pub fn log_bin_mass(a: f64, b: f64) -> f64 {
    let sqrt2 = std::f64::consts::SQRT_2;
    let log_phi = |x: f64| -0.5 * x * x - 0.5 * (2.0 * std::f64::consts::PI).ln();
    if a >= 4.0 {
        // Q(a) − Q(b) = φ(a)·(M(a) − e^{(a²−b²)/2}·M(b)).
        let r = if b.is_finite() {
            (0.5 * (a * a - b * b)).exp()
        } else {
            0.0
        };
        let mb = if b.is_finite() { mills_ratio(b) } else { 0.0 };
        log_phi(a) + (mills_ratio(a) - r * mb).ln()
    } else if b <= -4.0 {
        log_bin_mass(-b, -a)
    } else {
        (0.5 * (libm::erf(b / sqrt2) - libm::erf(a / sqrt2))).ln()
    }
}
