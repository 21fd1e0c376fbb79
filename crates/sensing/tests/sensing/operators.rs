//! Properties of every operator family.
#![allow(clippy::needless_range_loop)] // index loops read like the formulas they check

use crate::common::*;
use burn::prelude::*;
use qcs_sensing::operator::{dct::dct_matrix, hadamard::fwht, DenseOperator};
use qcs_sensing::{build_operator, Family, GramSpectrum, Operator, SensingError};

#[test]
fn adjoint_matches_forward_for_every_family() {
    for (name, device) in devices() {
        for family in ALL_FAMILIES {
            let op = operator(family, 40, [2, 6, 8], &device);
            let (xv, x) = random_matrix(3, 96, 1, &device);
            let (rv, r) = random_matrix(3, 40, 2, &device);
            let ax = host(op.forward(x));
            let atr = host(op.adjoint(r));
            let lhs: f64 = ax
                .iter()
                .zip(&rv)
                .map(|(a, b)| f64::from(*a) * f64::from(*b))
                .sum();
            let rhs: f64 = xv
                .iter()
                .zip(&atr)
                .map(|(a, b)| f64::from(*a) * f64::from(*b))
                .sum();
            let scale: f64 = ax.iter().map(|v| f64::from(*v).abs()).sum::<f64>().max(1.0);
            assert!(
                (lhs - rhs).abs() / scale < 1e-5,
                "{name} {family:?}: <Ax,r> = {lhs}, <x,Aᵀr> = {rhs}"
            );
        }
    }
}

#[test]
fn structured_operators_are_orthonormal_transforms() {
    for (name, device) in devices() {
        for family in [Family::Dct, Family::Hadamard] {
            // M = N: A is an orthogonal N×N matrix.
            let n = 3 * 5 * 6;
            let op = operator(family, n, [3, 5, 6], &device);
            let a = dense_of(op.as_ref(), &device);
            let g = gram(&a, n, n);
            for i in 0..n {
                for k in 0..n {
                    let expected = if i == k { 1.0 } else { 0.0 };
                    assert!(
                        (g[i * n + k] - expected).abs() < 1e-5,
                        "{name} {family:?} AAᵀ[{i},{k}] = {}",
                        g[i * n + k]
                    );
                }
            }
            // M < N: A·Aᵀ = (N/M)·I and ‖a_m‖² = N/M.
            let m = 30;
            let op = operator(family, m, [3, 5, 6], &device);
            let a = dense_of(op.as_ref(), &device);
            let g = gram(&a, m, n);
            let ratio = n as f64 / m as f64;
            for i in 0..m {
                for k in 0..m {
                    let expected = if i == k { ratio } else { 0.0 };
                    assert!((g[i * m + k] - expected).abs() < 1e-4, "{name} {family:?}");
                }
            }
            let norms = op
                .row_norms_sq()
                .into_data()
                .try_to_vec_as::<f32>()
                .unwrap();
            assert!(norms.iter().all(|v| (f64::from(*v) - ratio).abs() < 1e-5));
            assert!(matches!(op.gram().unwrap(), GramSpectrum::Scaled { .. }));
        }
    }
}

#[test]
fn dct_matrix_and_fwht_are_orthonormal() {
    let n = 7;
    let c = dct_matrix(n);
    for i in 0..n {
        for k in 0..n {
            let dot: f32 = (0..n).map(|j| c[i * n + j] * c[k * n + j]).sum();
            assert!((dot - if i == k { 1.0 } else { 0.0 }).abs() < 1e-6);
        }
    }
    let device = qcs_testkit::device();
    let eye: Tensor<2> = Tensor::eye(16, &device);
    let h = host(fwht(eye));
    // Sylvester order: H_ij = (−1)^{popcount(i & j)}/4.
    for i in 0..16usize {
        for j in 0..16usize {
            let sign = if (i & j).count_ones() % 2 == 0 {
                1.0
            } else {
                -1.0
            };
            assert!((h[i * 16 + j] - sign * 0.25).abs() < 1e-6);
        }
    }
}

#[test]
fn gaussian_rows_have_norm_n_over_m_on_average() {
    let device = qcs_testkit::device();
    let op = operator(Family::Gaussian, 50, [1, 28, 28], &device);
    let norms = op
        .row_norms_sq()
        .into_data()
        .try_to_vec_as::<f32>()
        .unwrap();
    let mean = norms.iter().sum::<f32>() / 50.0;
    // E‖a_m‖² = N/M = 15.68 with standard error √(2N)/M/√M ≈ 0.112.
    assert!((mean - 15.68).abs() < 0.5, "mean row norm² {mean}");
}

#[test]
fn ill_conditioned_spectrum_has_the_specified_ratio_and_scale() {
    for (name, device) in devices() {
        let (m, n, kappa) = (30, 80, 1000.0f64);
        let op = operator(Family::IllConditioned { kappa }, m, [1, 8, 10], &device);
        let GramSpectrum::Eigen { vectors, values } = op.gram().unwrap() else {
            panic!("dense operators have an eigen spectrum");
        };
        let lambda = values.clone().into_data().try_to_vec_as::<f32>().unwrap();
        let (max, min) = lambda
            .iter()
            .fold((0.0f32, f32::MAX), |(a, b), &v| (a.max(v), b.min(v)));
        let expected_ratio = kappa.powf((m - 1) as f64 / m as f64);
        assert!(
            ((f64::from(max / min)) / expected_ratio - 1.0).abs() < 1e-3,
            "{name}: ratio {}",
            max / min
        );
        let total: f32 = lambda.iter().sum();
        assert!((total - n as f32).abs() < 1e-3 * n as f32);
        // The analytic eigenpairs reproduce A·Aᵀ.
        let a = dense_of(op.as_ref(), &device);
        let g = gram(&a, m, n);
        let u = host(vectors.clone());
        for i in 0..m {
            for k in 0..m {
                let rebuilt: f64 = (0..m)
                    .map(|j| {
                        f64::from(u[i * m + j]) * f64::from(lambda[j]) * f64::from(u[k * m + j])
                    })
                    .sum();
                assert!(
                    (rebuilt - g[i * m + k]).abs() < 1e-3 * f64::from(max),
                    "{name}"
                );
            }
        }
    }
}

#[test]
fn gram_eigenpairs_of_a_dense_gaussian_reconstruct_a_a_transpose() {
    let device = qcs_testkit::device();
    let (m, n) = (12, 40);
    let op = operator(Family::Gaussian, m, [1, 5, 8], &device);
    let GramSpectrum::Eigen { vectors, values } = op.gram().unwrap() else {
        panic!("dense operators have an eigen spectrum");
    };
    let (u, lambda) = (
        host(vectors.clone()),
        values.clone().into_data().try_to_vec_as::<f32>().unwrap(),
    );
    let g = gram(&dense_of(op.as_ref(), &device), m, n);
    for i in 0..m {
        for k in 0..m {
            let rebuilt: f64 = (0..m)
                .map(|j| f64::from(u[i * m + j]) * f64::from(lambda[j]) * f64::from(u[k * m + j]))
                .sum();
            assert!((rebuilt - g[i * m + k]).abs() < 1e-4 * g[0].abs().max(1.0));
        }
    }
}

/// `norm_sq` is the seeded power iteration's value (exact for the structured families), within 2 % of the
/// largest eigenvalue of A·Aᵀ, and the same value on a second call (cached, not recomputed from another
/// start).
#[test]
fn the_cached_norm_is_the_power_iteration_and_near_the_top_eigenvalue() {
    for (name, device) in devices() {
        for family in ALL_FAMILIES {
            let op = operator(family, 24, [1, 6, 8], &device);
            let cached = op.norm_sq().unwrap();
            let direct =
                qcs_sensing::operator_norm_sq(op.as_ref(), qcs_sensing::NORM_ITERATIONS, 0)
                    .unwrap();
            assert_eq!(cached, direct, "{name} {family:?}");
            assert_eq!(op.norm_sq().unwrap(), cached, "{name} {family:?}");
            let top = match op.gram().unwrap() {
                GramSpectrum::Scaled { value, .. } => f64::from(*value),
                GramSpectrum::Eigen { values, .. } => {
                    let values = values.clone().into_data().try_to_vec_as::<f32>().unwrap();
                    f64::from(values.into_iter().fold(f32::NEG_INFINITY, f32::max))
                }
            };
            assert!(
                (cached - top).abs() <= 0.02 * top,
                "{name} {family:?}: ‖A‖² {cached} against λ_max {top}"
            );
        }
    }
}

#[test]
fn correlated_matrix_has_the_specified_row_and_column_correlation() {
    let device = qcs_testkit::device();
    let (m, n, rho) = (120, 300, 0.6);
    let op = operator(Family::Correlated { rho }, m, [1, 15, 20], &device);
    let a = dense_of(op.as_ref(), &device);
    let dot_rows =
        |i: usize, k: usize| -> f64 { (0..n).map(|j| a[i * n + j] * a[k * n + j]).sum() };
    let dot_cols =
        |j: usize, l: usize| -> f64 { (0..m).map(|i| a[i * n + j] * a[i * n + l]).sum() };
    let mean_sq_row = (0..m).map(|i| dot_rows(i, i)).sum::<f64>() / m as f64;
    let lag1_row = (0..m - 1).map(|i| dot_rows(i, i + 1)).sum::<f64>() / (m - 1) as f64;
    let lag2_row = (0..m - 2).map(|i| dot_rows(i, i + 2)).sum::<f64>() / (m - 2) as f64;
    let mean_sq_col = (0..n).map(|j| dot_cols(j, j)).sum::<f64>() / n as f64;
    let lag1_col = (0..n - 1).map(|j| dot_cols(j, j + 1)).sum::<f64>() / (n - 1) as f64;
    // E[A·Aᵀ] ∝ R_L and E[Aᵀ·A] ∝ R_R: neighbours correlate with ρ, second neighbours with ρ².
    assert!(
        (lag1_row / mean_sq_row - rho).abs() < 0.05,
        "row lag-1 {}",
        lag1_row / mean_sq_row
    );
    assert!((lag2_row / mean_sq_row - rho * rho).abs() < 0.05);
    assert!(
        (lag1_col / mean_sq_col - rho).abs() < 0.05,
        "col lag-1 {}",
        lag1_col / mean_sq_col
    );
}

#[test]
fn the_same_spec_gives_the_same_operator_on_every_backend() {
    let reference = [("flex", qcs_testkit::reference_device())];
    let outputs: Vec<Vec<f32>> = reference
        .into_iter()
        .chain(devices())
        .map(|(_, device)| {
            let (_, x) = random_matrix(2, 96, 3, &device);
            let mut out = Vec::new();
            for family in ALL_FAMILIES {
                out.extend(host(
                    operator(family, 30, [1, 8, 12], &device).forward(x.clone()),
                ));
            }
            out
        })
        .collect();
    for other in &outputs[1..] {
        for (a, b) in outputs[0].iter().zip(other) {
            assert!(
                (a - b).abs() <= 1e-5 * (1.0 + a.abs()),
                "{a} against flex's {b}"
            );
        }
    }
}

#[test]
fn impossible_operators_are_rejected_with_a_clear_error() {
    let device = qcs_testkit::device();
    let bad = [
        (Family::Dct, 100),
        (Family::Hadamard, 100),
        (Family::IllConditioned { kappa: 10.0 }, 100),
        (Family::Gaussian, 0),
        (Family::IllConditioned { kappa: 0.5 }, 10),
        (Family::Correlated { rho: 1.0 }, 10),
    ];
    for (family, m) in bad {
        let err = build_operator(&spec(family, m, [1, 8, 8], 1), &device).unwrap_err();
        assert!(
            matches!(err, SensingError::InvalidSetting(_)),
            "{family:?}: {err}"
        );
    }
    // Gaussian allows M > N.
    assert!(build_operator(&spec(Family::Gaussian, 100, [1, 8, 8], 1), &device).is_ok());
    assert!(matches!(
        Family::parse("fourier", 1.0, 0.0),
        Err(SensingError::UnknownFamily(_))
    ));
}

#[test]
fn a_given_matrix_is_used_as_is() {
    let device = qcs_testkit::device();
    let values: Vec<f32> = (0..6).map(|v| v as f32).collect();
    let op = DenseOperator::from_values(&spec(Family::Gaussian, 2, [1, 1, 3], 0), &values, &device)
        .unwrap();
    let x = Tensor::<2>::from_data(TensorData::new(vec![1.0f32, 1.0, 1.0], [1, 3]), &device);
    assert_eq!(host(op.forward(x)), vec![3.0, 12.0]);
    assert!(DenseOperator::from_values(
        &spec(Family::Gaussian, 2, [1, 1, 3], 0),
        &values[..5],
        &device
    )
    .is_err());
}
