//! The building blocks: re-applied quantizers, scale fits, hard thresholding, ‖A‖², and refused inputs.

use crate::common::*;
use burn::prelude::*;
use qcs_baselines::biht::hard_threshold;
use qcs_baselines::norm::operator_norm_sq;
use qcs_baselines::scale::fit_scale;
use qcs_baselines::{
    back_projection, biht, default_sparsity, BaselineError, BihtConfig, Measured, OneBitScale,
};
use qcs_sensing::{Family, GramSpectrum, ImageShape, QuantizerSpec};

#[test]
fn the_device_quantizer_reproduces_the_measurements() {
    for (name, device) in devices() {
        let op = operator(Family::Gaussian, 200, shape16(), &device);
        let x = disc(shape16());
        for quantizer in [QuantizerSpec::Linear, one_bit(), bits(2), bits(3)] {
            let set = measure(op.as_ref(), &x, quantizer, 0.0);
            let measured = Measured::new(op.as_ref(), &set).unwrap();
            let z = op.forward(qcs_testkit::tensor2(&x, [1, 256], &device));
            let again = host(measured.quantizer.apply(z));
            let worst = again
                .iter()
                .zip(&set.y)
                .map(|(a, b)| (a - f64::from(*b)).abs())
                .fold(0.0, f64::max);
            assert!(
                worst < 1e-5,
                "{name} {quantizer:?}: Q(A·x) differs from y by {worst}"
            );
        }
    }
}

#[test]
fn the_probit_scale_recovers_the_norm_of_a_known_direction() {
    let image = ImageShape::new(1, 8, 8).unwrap();
    for (name, device) in devices() {
        let op = operator(Family::Gaussian, 4000, image, &device);
        let x = disc(image);
        let set = measure(op.as_ref(), &x, one_bit(), 0.03);
        let measured = Measured::new(op.as_ref(), &set).unwrap();
        // The direction x/7: the fitted α should be close to 7.
        let d = qcs_testkit::tensor2(&x, [1, 64], &device) / 7.0;
        let alpha = host(fit_scale(
            &measured,
            d.clone(),
            op.forward(d),
            OneBitScale::Probit,
        ))[0];
        assert!(
            (alpha - 7.0).abs() < 0.35,
            "{name}: α = {alpha}, expected 7"
        );
    }
}

#[test]
fn without_noise_a_one_bit_estimate_peaks_at_one() {
    let device = qcs_testkit::device();
    let op = operator(Family::Gaussian, 200, shape16(), &device);
    let set = measure(op.as_ref(), &disc(shape16()), one_bit(), 0.0);
    for rule in [OneBitScale::Peak, OneBitScale::Probit] {
        // The scale rule acts on the last iterate, whatever the iteration count: 30 iterations show it at a
        // tenth of the default's cost (the default 300 made this test 22 s of CI's wgpu pass).
        let config = BihtConfig {
            one_bit_scale: rule,
            iterations: 30,
            ..BihtConfig::default()
        };
        for out in [
            back_projection(op.as_ref(), &set, rule).unwrap(),
            biht(op.as_ref(), &set, &config).unwrap(),
        ] {
            let peak = host(out).into_iter().fold(f64::MIN, f64::max);
            assert!((peak - 1.0).abs() < 1e-6, "{rule:?}: largest pixel {peak}");
        }
    }
}

#[test]
fn least_squares_scale_is_one_for_a_consistent_direction() {
    let device = qcs_testkit::device();
    let op = operator(Family::Gaussian, 100, shape16(), &device);
    let x = disc(shape16());
    let set = measure(op.as_ref(), &x, QuantizerSpec::Linear, 0.0);
    let measured = Measured::new(op.as_ref(), &set).unwrap();
    let d = qcs_testkit::tensor2(&x, [1, 256], &device);
    let alpha = host(fit_scale(
        &measured,
        d.clone(),
        op.forward(d),
        OneBitScale::Probit,
    ))[0];
    assert!((alpha - 1.0).abs() < 1e-5, "α = {alpha}");
}

#[test]
fn hard_thresholding_keeps_the_largest_magnitudes_of_every_row() {
    let device = qcs_testkit::device();
    let theta = qcs_testkit::tensor2(
        &[0.1, -3.0, 2.0, 0.5, -0.2, 1.0, 0.0, 0.3, -4.0, 0.2],
        [2, 5],
        &device,
    );
    let kept = host(hard_threshold(theta, 2));
    assert_eq!(
        kept,
        vec![0.0, -3.0, 2.0, 0.0, 0.0, 1.0, 0.0, 0.0, -4.0, 0.0]
    );
}

#[test]
fn the_operator_norm_matches_the_largest_gram_eigenvalue() {
    let device = qcs_testkit::device();
    for family in [Family::Gaussian, Family::Correlated { rho: 0.5 }] {
        let op = operator(family, 60, shape16(), &device);
        let GramSpectrum::Eigen { values, .. } = op.gram().unwrap() else {
            panic!("dense operators have eigenpairs");
        };
        let largest = host(values.clone()).into_iter().fold(f64::MIN, f64::max);
        let estimate = operator_norm_sq(op.as_ref(), 100, 0).unwrap();
        assert!(
            (estimate / largest - 1.0).abs() < 0.02,
            "{family:?}: ‖A‖² ≈ {estimate}, λ_max = {largest}"
        );
    }
    let dct = operator(Family::Dct, 64, shape16(), &device);
    assert_eq!(operator_norm_sq(dct.as_ref(), 0, 0).unwrap(), 4.0);
}

#[test]
fn the_default_sparsity_is_a_quarter_of_m_capped_at_an_eighth_of_n() {
    assert_eq!(default_sparsity(100, 784), 25);
    assert_eq!(default_sparsity(400, 784), 98);
    assert_eq!(default_sparsity(2, 784), 1);
}

#[test]
fn measurements_of_another_operator_and_impossible_settings_are_refused() {
    let device = qcs_testkit::device();
    let op = operator(Family::Gaussian, 50, shape16(), &device);
    let other = operator(Family::Dct, 50, shape16(), &device);
    let set = measure(op.as_ref(), &disc(shape16()), one_bit(), 0.0);
    assert!(matches!(
        back_projection(other.as_ref(), &set, OneBitScale::default()),
        Err(BaselineError::OperatorMismatch { .. })
    ));
    for config in [
        BihtConfig {
            iterations: 0,
            ..BihtConfig::default()
        },
        BihtConfig {
            sparsity: Some(0),
            ..BihtConfig::default()
        },
        BihtConfig {
            sparsity: Some(257),
            ..BihtConfig::default()
        },
    ] {
        assert!(
            matches!(
                biht(op.as_ref(), &set, &config),
                Err(BaselineError::InvalidSetting(_))
            ),
            "{config:?}"
        );
    }
}

#[test]
fn the_dct_basis_is_orthonormal() {
    let device = qcs_testkit::device();
    let image = ImageShape::new(2, 4, 6).unwrap();
    let dct = qcs_sensing::operator::Dct2d::new(image, &device);
    let eye: Tensor<2> = Tensor::eye(48, &device);
    let round_trip = host(dct.inverse(dct.forward(eye.clone())));
    let gram = host(
        dct.forward(eye.clone())
            .matmul(dct.forward(eye.clone()).transpose()),
    );
    let identity = host(eye);
    assert!(qcs_testkit::max_abs_diff(&round_trip, &identity) < 1e-5);
    assert!(qcs_testkit::max_abs_diff(&gram, &identity) < 1e-5);
}
