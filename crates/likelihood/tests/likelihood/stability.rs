//! Numerical stability in f32: erfcx accuracy, and scores that stay finite, correctly signed and on their
//! Gaussian-tail asymptote for badly violated measurements.
#![allow(clippy::needless_range_loop)] // index loops read like the formulas they check

use crate::common::*;
use burn::prelude::*;
use qcs_likelihood::normal::{erf, erfcx};
use qcs_likelihood::qcs::{one_sided_gradient, quantized_gradient};

/// erfcx in f64: exp(x²)·erfc(x) where that is representable, √(2/π)·M(√2·x) in the upper tail.
fn erfcx_f64(x: f64) -> f64 {
    if x < 3.0 {
        (x * x).exp() * libm::erfc(x)
    } else {
        (2.0 / std::f64::consts::PI).sqrt() * mills_ratio(std::f64::consts::SQRT_2 * x)
    }
}

fn row(values: &[f64], device: &Device) -> Tensor<2> {
    tensor2(values, [1, values.len()], device)
}

#[test]
fn erfcx_is_accurate_over_the_real_line() {
    for (name, device) in devices() {
        let xs: Vec<f64> = (0..=4000)
            .map(|i| -9.0 + i as f64 * 0.0125)
            .chain((1..=200).map(|i| 41.0 * 1.05f64.powi(i)))
            .collect();
        let ours = host(erfcx(tensor2(&xs, [1, xs.len()], &device)));
        for (x, v) in xs.iter().zip(&ours) {
            let exact = erfcx_f64(f64::from(*x as f32));
            // For x < 0, erfcx grows like 2·exp(x²): the f32 rounding of x alone moves it by 2x²·2⁻²⁴ relative.
            let tolerance = 1e-6 + if *x < 0.0 { 3.0 * x * x * 6e-8 } else { 0.0 };
            assert!(
                ((v - exact) / exact).abs() < tolerance,
                "{name}: erfcx({x}) = {v}, exact {exact}"
            );
        }
    }
}

#[test]
fn erf_is_accurate_in_relative_terms_near_zero() {
    let device = qcs_testkit::device();
    let xs: Vec<f64> = (-600..=600)
        .map(|i| f64::from(i) * 0.005)
        .chain([1e-6, -3e-5, 1e-3])
        .collect();
    let ours = host(erf(tensor2(&xs, [1, xs.len()], &device)));
    for (x, v) in xs.iter().zip(&ours) {
        let exact = libm::erf(f64::from(*x as f32));
        assert!(
            (v - exact).abs() <= 1e-6 * exact.abs() + 1e-12,
            "erf({x}) = {v}, exact {exact}"
        );
    }
}

/// g = ∂/∂z log P(l ≤ z + e < u), e ~ N(0, 1), from the exact f64 log-mass by a central difference on z.
fn exact_gradient(z: f64, lower: f64, upper: f64) -> f64 {
    let h = 1e-6 * (1.0 + z.abs());
    (log_bin_mass(lower - z - h, upper - z - h) - log_bin_mass(lower - z + h, upper - z + h))
        / (2.0 * h)
}

#[test]
fn scores_stay_finite_signed_and_exact_in_both_tails() {
    let zs: Vec<f64> = (-80..=80).map(|i| f64::from(i) * 0.5).collect(); // |w| up to 40
    for (name, device) in devices() {
        let bins = [
            (0.0, f64::INFINITY),
            (f64::NEG_INFINITY, 0.0),
            (1.0, 2.0),
            (-3.0, -2.5),
            (0.25, 0.26),
        ];
        for (lower, upper) in bins {
            let n = zs.len();
            let g = host(quantized_gradient(
                row(&zs, &device),
                row(&vec![lower; n], &device),
                row(&vec![upper; n], &device),
                row(&vec![1.0; n], &device),
            ));
            for (z, v) in zs.iter().zip(&g) {
                assert!(v.is_finite(), "{name} bin [{lower}, {upper}) z = {z}: {v}");
                if *z < lower {
                    assert!(
                        *v > 0.0,
                        "{name}: below [{lower}, {upper}) the score must pull up, z = {z}: {v}"
                    );
                }
                if *z > upper {
                    assert!(
                        *v < 0.0,
                        "{name}: above [{lower}, {upper}) the score must pull down, z = {z}: {v}"
                    );
                }
                let exact = exact_gradient(*z, lower, upper);
                let width = (upper - lower).min(1.0);
                let tolerance = 2e-5 * (1.0 + exact.abs()) / width.max(0.01);
                assert!(
                    (v - exact).abs() < tolerance,
                    "{name} bin [{lower}, {upper}) z = {z}: {v} vs {exact}"
                );
                // Far outside the bin the score follows the Gaussian tail −(z − edge)/s².
                let distance = if *z > upper {
                    z - upper
                } else if *z < lower {
                    lower - z
                } else {
                    0.0
                };
                if distance > 8.0 {
                    let edge = if *z > upper { upper } else { lower };
                    let asymptote = -(z - edge);
                    assert!(
                        ((v - asymptote) / asymptote).abs() < 2.0 / (distance * distance),
                        "{name} z = {z}"
                    );
                }
            }
        }
    }
}

/// The one-sided form that 1-bit observations take computes the general form's function: the exact
/// f64 gradient, on both sides of the edge and 40 standard deviations out, at several scales.
#[test]
fn the_one_sided_form_is_the_general_form_for_one_bit_bins() {
    let zs: Vec<f64> = (-80..=80).map(|i| f64::from(i) * 0.5).collect();
    let n = zs.len();
    for (name, device) in devices() {
        for (lower, upper) in [
            (0.0, f64::INFINITY),
            (f64::NEG_INFINITY, 0.0),
            (-1.5, f64::INFINITY),
            (f64::NEG_INFINITY, 2.0),
        ] {
            for std in [0.3, 1.0, 4.0] {
                let args = || {
                    (
                        row(&zs, &device),
                        row(&vec![lower; n], &device),
                        row(&vec![upper; n], &device),
                        row(&vec![std; n], &device),
                    )
                };
                let (z, l, u, s) = args();
                let fast = host(one_sided_gradient(z, l, u, s));
                let (z, l, u, s) = args();
                let general = host(quantized_gradient(z, l, u, s));
                for ((z, v), g) in zs.iter().zip(&fast).zip(&general) {
                    let exact = exact_gradient(z / std, lower / std, upper / std) / std;
                    let tolerance = 2e-5 * (1.0 + exact.abs());
                    assert!(
                        (v - exact).abs() < tolerance && (v - g).abs() < tolerance,
                        "{name} bin [{lower}, {upper}) σ {std} z = {z}: {v}, general {g}, exact {exact}"
                    );
                }
            }
        }
    }
}

#[test]
fn scale_of_the_pseudo_likelihood_is_respected() {
    // With s = 10, a point 400 units above the bin (w = 40) still gets −(z − u)/s² ≈ −4.
    let device = qcs_testkit::device();
    let g = host(quantized_gradient(
        row(&[401.0], &device),
        row(&[0.0], &device),
        row(&[1.0], &device),
        row(&[10.0], &device),
    ));
    assert!(((g[0] + 4.0) / 4.0).abs() < 2.0 / 1600.0, "{}", g[0]);
}

/// (first, variance) of N(0, 1) truncated to [a, a + w), a ≥ 0, in f64 by quadrature on a fine grid.
fn truncated_f64(a: f64, w: f64) -> (f64, f64) {
    let n = 200_000;
    let (mut z, mut m1, mut m2) = (0.0, 0.0, 0.0);
    for i in 0..n {
        let t = a + w * (i as f64 + 0.5) / n as f64;
        let d = (-0.5 * (t * t - a * a)).exp(); // scaled by exp(a²/2): only ratios matter
        z += d;
        m1 += d * t;
        m2 += d * t * t;
    }
    let mean = m1 / z;
    (mean, m2 / z - mean * mean)
}

#[test]
fn bins_narrower_than_their_distance_allows_stay_finite_and_accurate() {
    use qcs_likelihood::normal::{bin_ratios, standardized_bin_ratios};
    for (name, device) in devices() {
        // A 3-bit bin [2.23, 3.34) seen from N(−5.9e7, 63.4²): a ≈ 930 500 standard deviations away, where
        // a and b round to neighbouring floats (1/16 apart) while the bin is 0.0175 wide.
        let r = standardized_bin_ratios(
            row(&[2.225_275_8], &device),
            row(&[3.337_913_5], &device),
            row(&[-59_011_476.0], &device),
            row(&[63.419_117], &device),
            true,
        );
        let first = host(r.first)[0];
        let variance = host(r.variance.unwrap())[0];
        let a = (2.225_275_8 + 59_011_476.0) / 63.419_117;
        assert!(
            first.is_finite() && (first - a).abs() < 0.2,
            "{name}: first {first}, a {a}"
        );
        assert!(
            (0.0..1e-9).contains(&variance),
            "{name}: variance {variance}"
        );

        // A zero-width bin: the point itself, no spread.
        let r = bin_ratios(row(&[2.5, -7.0], &device), row(&[2.5, -7.0], &device), true);
        assert_eq!(host(r.first), [2.5, -7.0], "{name}");
        assert_eq!(host(r.variance.unwrap()), [0.0, 0.0], "{name}");

        // Narrow and far-tail bins against quadrature.
        for (a, w) in [
            (1.0, 5e-4),
            (150.0, 1e-6),
            (150.0, 0.5),
            (3.0, 0.1),
            (30.0, 2.0),
        ] {
            let r = bin_ratios(row(&[a], &device), row(&[a + w], &device), true);
            let (mean, var) = truncated_f64(a, w);
            let (first, variance) = (host(r.first)[0], host(r.variance.unwrap())[0]);
            assert!(
                (first - mean).abs() < 1e-4 * mean.abs().max(1.0),
                "{name}: [{a}, {a}+{w}): first {first}, exact {mean}"
            );
            assert!(
                (variance - var).abs() < 0.05 * var + 1e-9,
                "{name}: [{a}, {a}+{w}): variance {variance}, exact {var}"
            );
        }
    }
}
