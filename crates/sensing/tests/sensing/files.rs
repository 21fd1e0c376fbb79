//! Measurement files: simulation, round trip and one typed error per kind of bad file.
#![allow(clippy::needless_range_loop)] // index loops read like the formulas they check

use std::collections::HashMap;
use std::path::Path;

use crate::common::*;
use qcs_sensing::{
    file, simulate, simulate_from, Family, MeasurementSet, QuantizerSpec, SensingError, StepRule,
};

fn sample_set(bits: Option<u32>) -> MeasurementSet {
    let device = qcs_testkit::device();
    let op = operator(Family::Gaussian, 20, [1, 6, 6], &device);
    let (_, x) = random_matrix(3, 36, 11, &device);
    let q = QuantizerSpec::from_bits(bits, StepRule::FromData).unwrap();
    simulate(
        op.as_ref(),
        x,
        q,
        0.05,
        3,
        vec!["a".into(), "b".into(), "c".into()],
    )
    .unwrap()
}

/// A safetensors file with arbitrary tensors and metadata, bypassing qcs's validation.
fn raw_file(tensors: &[(&str, Vec<f32>, Vec<usize>)], meta: HashMap<String, String>) -> Vec<u8> {
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, v, _)| v.iter().flat_map(|x| x.to_le_bytes()).collect())
        .collect();
    let views: Vec<_> = tensors
        .iter()
        .zip(&bytes)
        .map(|((name, _, shape), b)| {
            (
                name.to_string(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), b)
                    .unwrap(),
            )
        })
        .collect();
    safetensors::serialize(views, Some(meta)).unwrap()
}

fn meta_of(set: &MeasurementSet, info_json: Option<String>) -> HashMap<String, String> {
    HashMap::from([
        ("format".to_string(), "qcs-measurements".to_string()),
        ("version".to_string(), "1".to_string()),
        (
            "info".to_string(),
            info_json.unwrap_or_else(|| serde_json::to_string(&set.info).unwrap()),
        ),
    ])
}

fn tensors_of(set: &MeasurementSet) -> Vec<(&'static str, Vec<f32>, Vec<usize>)> {
    let (b, m) = (set.batch(), set.measurements());
    vec![
        ("y", set.y.clone(), vec![b, m]),
        ("lower", set.lower.clone(), vec![b, m]),
        ("upper", set.upper.clone(), vec![b, m]),
        ("delta", set.delta.clone(), vec![b]),
    ]
}

fn parse(bytes: &[u8]) -> Result<MeasurementSet, SensingError> {
    file::from_bytes(bytes, Path::new("m.qcsm"))
}

#[test]
fn simulated_measurements_round_trip_through_a_file() {
    let dir = tempfile::tempdir().unwrap();
    for bits in [None, Some(1), Some(3), Some(8)] {
        let set = sample_set(bits);
        assert_eq!(set.bits(), bits);
        let path = dir.path().join("m.safetensors");
        file::save(&set, &path).unwrap();
        let back = file::load(&path).unwrap();
        assert_eq!(back, set);
    }
    // Only the final file is left behind.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn the_same_seed_gives_the_same_measurements() {
    assert_eq!(sample_set(Some(2)), sample_set(Some(2)));
}

#[test]
fn the_later_images_of_a_batch_alone_get_the_measurements_they_get_in_it() {
    let device = qcs_testkit::device();
    let op = operator(Family::Gaussian, 20, [1, 6, 6], &device);
    let (_, x) = random_matrix(3, 36, 11, &device);
    let whole = sample_set(None);
    let q = QuantizerSpec::from_bits(None, StepRule::FromData).unwrap();
    let tail = |first: usize| {
        let images = x.clone().slice([first..3, 0..36]);
        let names = whole.info.names[first..].to_vec();
        simulate_from(op.as_ref(), images, q, 0.05, 3, first, names).unwrap()
    };
    let last_two = tail(1);
    // The noise is what the batch's images 1 and 2 get (the linear values are A·x + n, unquantized).
    assert_eq!(last_two.y, whole.y[20..]);
    assert_eq!(tail(2).y, whole.y[40..]);
    // Measured as the batch's first images instead, they get other noise, of σ 0.05.
    let first_two = simulate(
        op.as_ref(),
        x.clone().slice([1..3, 0..36]),
        q,
        0.05,
        3,
        whole.info.names[1..].to_vec(),
    )
    .unwrap();
    let diff: Vec<f32> = first_two
        .y
        .iter()
        .zip(&last_two.y)
        .map(|(a, b)| a - b)
        .collect();
    let rms = (diff.iter().map(|d| d * d).sum::<f32>() / diff.len() as f32).sqrt();
    // The difference of two independent N(0, 0.05²) draws has σ 0.05·√2 ≈ 0.071; 40 values.
    assert!((0.04..0.11).contains(&rms), "{rms}");
}

#[test]
fn truncated_and_garbage_files_are_corrupt_file_errors() {
    let bytes = file::to_bytes(&sample_set(Some(2))).unwrap();
    for cut in [0, 4, 8, 40, bytes.len() / 2, bytes.len() - 1] {
        let err = parse(&bytes[..cut]).unwrap_err();
        assert!(
            matches!(err, SensingError::CorruptFile { .. }),
            "cut at {cut}: {err}"
        );
        assert!(err.to_string().contains("m.qcsm"));
    }
    let err = parse(b"definitely not a safetensors file").unwrap_err();
    assert!(matches!(err, SensingError::CorruptFile { .. }));
}

#[test]
fn a_file_without_qcs_metadata_is_rejected() {
    let set = sample_set(Some(1));
    let err = parse(&raw_file(&tensors_of(&set), HashMap::new())).unwrap_err();
    assert!(matches!(err, SensingError::CorruptFile { .. }), "{err}");
    let mut meta = meta_of(&set, None);
    meta.insert("version".into(), "7".into());
    let err = parse(&raw_file(&tensors_of(&set), meta)).unwrap_err();
    assert!(
        matches!(err, SensingError::UnsupportedVersion { .. }),
        "{err}"
    );
}

#[test]
fn an_unknown_family_is_named() {
    let set = sample_set(Some(1));
    let info = serde_json::to_string(&set.info)
        .unwrap()
        .replace("\"gaussian\"", "\"fourier\"");
    let err = parse(&raw_file(&tensors_of(&set), meta_of(&set, Some(info)))).unwrap_err();
    assert!(
        matches!(&err, SensingError::UnknownFamily(f) if f == "fourier"),
        "{err}"
    );
}

#[test]
fn bits_out_of_range_are_rejected() {
    let set = sample_set(Some(3));
    let info = serde_json::to_string(&set.info)
        .unwrap()
        .replace("\"bits\":3", "\"bits\":12");
    let err = parse(&raw_file(&tensors_of(&set), meta_of(&set, Some(info)))).unwrap_err();
    assert!(matches!(err, SensingError::BitsOutOfRange(12)), "{err}");
}

#[test]
fn a_shape_mismatch_names_both_shapes() {
    let set = sample_set(Some(3));
    let mut tensors = tensors_of(&set);
    tensors[0] = ("y", set.y[..set.y.len() - 3].to_vec(), vec![3, 19]);
    let err = parse(&raw_file(&tensors, meta_of(&set, None))).unwrap_err();
    match err {
        SensingError::ShapeMismatch {
            expected, found, ..
        } => {
            assert_eq!(expected, vec![3, 20]);
            assert_eq!(found, vec![3, 19]);
        }
        other => panic!("expected a shape mismatch, got {other}"),
    }
    let mut missing = tensors_of(&set);
    missing.remove(3);
    let err = parse(&raw_file(&missing, meta_of(&set, None))).unwrap_err();
    assert!(err.to_string().contains("delta"), "{err}");
}

#[test]
fn nan_in_a_measurement_file_is_reported_with_its_index() {
    let set = sample_set(Some(3));
    let mut tensors = tensors_of(&set);
    tensors[0].1[5] = f32::NAN;
    let err = parse(&raw_file(&tensors, meta_of(&set, None))).unwrap_err();
    assert!(
        matches!(&err, SensingError::NonFinite { index: 5, .. }),
        "{err}"
    );
    let mut tensors = tensors_of(&set);
    tensors[1].1[2] = f32::NAN;
    assert!(matches!(
        parse(&raw_file(&tensors, meta_of(&set, None))),
        Err(SensingError::NonFinite { .. })
    ));
}

#[test]
fn values_outside_their_bins_are_rejected() {
    let set = sample_set(Some(3));
    let mut tensors = tensors_of(&set);
    tensors[0].1[0] = 1e6;
    let err = parse(&raw_file(&tensors, meta_of(&set, None))).unwrap_err();
    assert!(matches!(err, SensingError::InvalidSetting(_)), "{err}");
}

#[test]
fn simulate_rejects_images_of_the_wrong_size() {
    let device = qcs_testkit::device();
    let op = operator(Family::Gaussian, 10, [1, 6, 6], &device);
    let (_, x) = random_matrix(2, 35, 1, &device);
    let err = simulate(
        op.as_ref(),
        x,
        QuantizerSpec::OneBit,
        0.0,
        0,
        vec!["a".into(), "b".into()],
    )
    .unwrap_err();
    assert!(matches!(err, SensingError::ShapeMismatch { .. }));
}
