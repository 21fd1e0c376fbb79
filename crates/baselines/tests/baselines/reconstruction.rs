//! What the baselines recover: projections, sparse images, directions, and more with more measurements.

use crate::common::*;
use qcs_baselines::{back_projection, biht, BihtConfig, OneBitScale};
use qcs_sensing::{Family, QuantizerSpec};

/// P·x for the orthogonal projector P onto the row space of A, by Gram–Schmidt on A's rows in f64.
fn project_onto_rows(a: &[f64], m: usize, n: usize, x: &[f64]) -> Vec<f64> {
    let mut basis: Vec<Vec<f64>> = Vec::new();
    for i in 0..m {
        let mut q = a[i * n..(i + 1) * n].to_vec();
        for b in &basis {
            let dot: f64 = q.iter().zip(b).map(|(u, v)| u * v).sum();
            q.iter_mut().zip(b).for_each(|(u, v)| *u -= dot * v);
        }
        let norm = q.iter().map(|u| u * u).sum::<f64>().sqrt();
        if norm > 1e-9 {
            basis.push(q.iter().map(|u| u / norm).collect());
        }
    }
    let mut p = vec![0.0; n];
    for b in &basis {
        let dot: f64 = x.iter().zip(b).map(|(u, v)| u * v).sum();
        p.iter_mut().zip(b).for_each(|(u, v)| *u += dot * v);
    }
    p
}

#[test]
fn back_projection_of_linear_noiseless_measurements_is_the_projection_onto_the_row_space() {
    let image = qcs_sensing::ImageShape::new(1, 8, 8).unwrap();
    for (name, device) in devices() {
        let op = operator(Family::Dct, 24, image, &device);
        let (x, _) = dct_sparse_image(image, 6, 1, &device);
        let set = measure(op.as_ref(), &x, QuantizerSpec::Linear, 0.0);
        let ours = host(back_projection(op.as_ref(), &set, OneBitScale::default()).unwrap());
        let eye = burn::tensor::Tensor::eye(64, &device);
        let columns = host(op.forward(eye)); // row j is A·e_j
        let a: Vec<f64> = (0..24 * 64)
            .map(|k| columns[(k % 64) * 24 + k / 64])
            .collect();
        let expected: Vec<f64> = project_onto_rows(&a, 24, 64, &x)
            .into_iter()
            .map(|v| v.clamp(0.0, 1.0))
            .collect();
        let worst = qcs_testkit::max_abs_diff(&ours, &expected);
        assert!(
            worst < 1e-4,
            "{name}: back-projection differs from P·x by {worst}"
        );
    }
}

#[test]
fn iht_recovers_an_exactly_sparse_image_from_linear_measurements() {
    for (name, device) in devices() {
        for family in [Family::Gaussian, Family::Dct] {
            let op = operator(family, 128, shape16(), &device);
            let (x, _) = dct_sparse_image(shape16(), 8, 2, &device);
            let set = measure(op.as_ref(), &x, QuantizerSpec::Linear, 0.0);
            let config = BihtConfig {
                sparsity: Some(8),
                ..BihtConfig::default()
            };
            let ours = host(biht(op.as_ref(), &set, &config).unwrap());
            let err = rel_err(&ours, &x);
            assert!(err < 1e-3, "{name} {family:?}: relative error {err}");
        }
    }
}

#[test]
fn one_bit_biht_recovers_the_direction_of_a_sparse_image() {
    for (name, device) in devices() {
        let op = operator(Family::Gaussian, 1024, shape16(), &device);
        let (x, _) = dct_sparse_image(shape16(), 8, 4, &device);
        let set = measure(op.as_ref(), &x, one_bit(), 0.0);
        let config = BihtConfig {
            sparsity: Some(8),
            ..BihtConfig::default()
        };
        let ours = host(biht(op.as_ref(), &set, &config).unwrap());
        let r = correlation(&ours, &x);
        assert!(r > 0.9, "{name}: correlation {r}");
    }
}

#[test]
fn biht_psnr_grows_with_the_number_of_measurements() {
    let device = qcs_testkit::device();
    let x = disc(shape16());
    let psnr_at = |m: usize, quantizer: QuantizerSpec| {
        let op = operator(Family::Gaussian, m, shape16(), &device);
        let set = measure(op.as_ref(), &x, quantizer, 0.05);
        psnr(
            &host(biht(op.as_ref(), &set, &BihtConfig::default()).unwrap()),
            &x,
        )
    };
    // On a GPU backend the 1-bit case only (four BIHT runs of 300 iterations cost a minute on lavapipe).
    let quantizers = if qcs_testkit::on_gpu_backend() {
        vec![one_bit()]
    } else {
        vec![one_bit(), bits(3)]
    };
    for quantizer in quantizers {
        let (few, many) = (psnr_at(32, quantizer), psnr_at(256, quantizer));
        assert!(
            many > few + 1.0,
            "{quantizer:?}: PSNR {few:.2} dB at M = 32, {many:.2} dB at M = 256"
        );
    }
}

#[test]
fn both_baselines_return_images_in_range_for_every_quantizer() {
    let device = qcs_testkit::device();
    let x = disc(shape16());
    let families = [
        Family::Gaussian,
        Family::Hadamard,
        Family::IllConditioned { kappa: 100.0 },
    ];
    let quantizers = [QuantizerSpec::Linear, one_bit(), bits(2)];
    // The CPU passes run every quantizer with every family. On a GPU backend (lavapipe in CI: 300 BIHT
    // iterations take ~15 s there) the diagonal of the grid runs: every quantizer and every family once.
    let pairs: Vec<(QuantizerSpec, Family)> = if qcs_testkit::on_gpu_backend() {
        quantizers.into_iter().zip(families).collect()
    } else {
        quantizers
            .into_iter()
            .flat_map(|q| families.map(|f| (q, f)))
            .collect()
    };
    for (quantizer, family) in pairs {
        let op = operator(family, 64, shape16(), &device);
        let set = measure(
            op.as_ref(),
            &[x.clone(), x.clone()].concat(),
            quantizer,
            0.01,
        );
        for out in [
            back_projection(op.as_ref(), &set, OneBitScale::default()).unwrap(),
            biht(op.as_ref(), &set, &BihtConfig::default()).unwrap(),
        ] {
            assert_eq!(out.dims(), [2, 256]);
            let v = host(out);
            assert!(
                v.iter().all(|p| (0.0..=1.0).contains(p)),
                "{family:?} {quantizer:?}: pixel outside [0, 1]"
            );
            assert!(
                psnr(&v[..256], &x) > 5.0,
                "{family:?} {quantizer:?}: no resemblance"
            );
        }
    }
}
