//! One test per user-facing error path not covered in cli.rs: the message names the file or flag and what
//! was expected, the exit code is 1, and no partial output is left behind. Also reproducibility: the same
//! seed gives bit-identical outputs, and a measurement file plus the model reproduce a reconstruction.

use crate::common;

use std::path::{Path, PathBuf};

use crate::common::{assert_refused, qcs, qcs_tuned, stderr, tiny_config, write_images, Tuning};

/// A folder with one 28×28 test image and the tiny config; returns (tmp, images dir, config, out dir).
fn setup(matrix: &str, m: usize) -> (tempfile::TempDir, PathBuf, PathBuf, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let images = tmp.path().join("images");
    std::fs::create_dir(&images).unwrap();
    write_images(&images, 2, 28, false);
    let config = tiny_config(tmp.path(), matrix, m);
    let out = tmp.path().join("out");
    (tmp, images, config, out)
}

fn reconstruct(
    tuning: Tuning,
    config: &Path,
    images: &Path,
    out: &Path,
    extra: &[&str],
) -> std::process::Output {
    let mut args = common::reconstruct_args(config, images, out);
    args.extend_from_slice(extra);
    qcs_tuned(tuning, &args)
}

fn measure(tuning: Tuning, config: &Path, images: &Path, file: &Path) {
    let run = qcs_tuned(
        tuning,
        &[
            "measure",
            "--config",
            config.to_str().unwrap(),
            "--images",
            images.to_str().unwrap(),
            "--out",
            file.to_str().unwrap(),
        ],
    );
    assert!(run.status.success(), "{}", stderr(&run));
}

fn from_file(
    tuning: Tuning,
    config: &Path,
    file: &Path,
    out: &Path,
    extra: &[&str],
) -> std::process::Output {
    let mut args = vec![
        "reconstruct",
        "--config",
        config.to_str().unwrap(),
        "--measurements-file",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    qcs_tuned(tuning, &args)
}

#[test]
fn nan_in_a_measurement_file_is_named() {
    let (tmp, images, config, out) = setup("gaussian", 20);
    let file = tmp.path().join("m.qcsm");
    measure(Tuning::Shared, &config, &images, &file);
    // Overwrite the first value of `y` (the last tensor block of the file holds y's data somewhere; find the
    // ±1 of a 1-bit measurement by its bytes) with a NaN.
    let mut bytes = std::fs::read(&file).unwrap();
    let header = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let meta: serde_json::Value = serde_json::from_slice(&bytes[8..8 + header]).unwrap();
    let start = meta["y"]["data_offsets"][0].as_u64().unwrap() as usize + 8 + header;
    bytes[start..start + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    std::fs::write(&file, bytes).unwrap();
    let run = from_file(Tuning::Shared, &config, &file, &out, &[]);
    assert_refused(&run, &["m.qcsm", "non-finite", "y"], &out);
}

#[test]
fn a_truncated_measurement_file_is_named() {
    let (tmp, images, config, out) = setup("gaussian", 20);
    let file = tmp.path().join("cut.qcsm");
    measure(Tuning::Shared, &config, &images, &file);
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() - 7]).unwrap();
    let run = from_file(Tuning::Shared, &config, &file, &out, &[]);
    assert_refused(&run, &["cut.qcsm"], &out);
}

#[test]
fn a_config_with_an_unknown_key_names_the_key_and_the_file() {
    let (_tmp, images, config, out) = setup("gaussian", 20);
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("step_lr =", "step_size =")).unwrap();
    let run = reconstruct(Tuning::Shared, &config, &images, &out, &[]);
    assert_refused(&run, &["tiny.toml", "step_size"], &out);
}

#[test]
fn a_config_value_of_the_wrong_type_names_the_key() {
    let (_tmp, images, config, out) = setup("gaussian", 20);
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("chains = 1", "chains = \"one\"")).unwrap();
    let run = reconstruct(Tuning::Shared, &config, &images, &out, &[]);
    assert_refused(&run, &["tiny.toml", "chains"], &out);
}

#[test]
fn a_missing_config_file_is_named() {
    let (tmp, images, _config, out) = setup("gaussian", 20);
    let missing = tmp.path().join("nowhere.toml");
    let run = reconstruct(Tuning::Shared, &missing, &images, &out, &[]);
    assert_refused(&run, &["nowhere.toml"], &out);
}

#[test]
fn impossible_sampler_settings_name_their_flag() {
    let (_tmp, images, config, out) = setup("gaussian", 20);
    for (flag, value, expect) in [
        ("--chains", "0", "chains"),
        ("--batch", "0", "batch"),
        ("--levels", "0", "levels"),
        ("--levels", "11", "levels"),
        ("--steps-per-level", "0", "steps"),
        ("--step-lr=-1", "", "step_lr"),
        ("--likelihood-scale", "nan", "likelihood"),
        ("--ep-iterations", "0", "ep_iterations"),
        ("--ep-damping", "1", "ep_damping"),
    ] {
        let args: Vec<&str> = [flag, value]
            .into_iter()
            .filter(|a| !a.is_empty())
            .collect();
        let run = reconstruct(Tuning::Shared, &config, &images, &out, &args);
        assert_refused(&run, &[expect], &out);
    }
}

#[test]
fn impossible_measurement_settings_name_their_flag() {
    let (_tmp, images, config, out) = setup("gaussian", 20);
    for (extra, expect) in [
        (vec!["--noise-std=-0.1"], "noise"),
        (vec!["--measurements", "0"], "M"),
        (vec!["--matrix", "ill-conditioned", "--kappa", "0.5"], "κ"),
        (vec!["--matrix", "correlated", "--rho", "1"], "ρ"),
        (vec!["--full-scale", "0"], "full-scale"),
    ] {
        let run = reconstruct(Tuning::Shared, &config, &images, &out, &extra);
        assert_refused(&run, &[expect], &out);
    }
}

#[test]
fn a_model_file_that_is_not_a_weight_file_is_named() {
    let (tmp, images, config, out) = setup("gaussian", 20);
    let model = tmp.path().join("junk.safetensors");
    std::fs::write(&model, b"this is not a model").unwrap();
    let run = reconstruct(
        Tuning::Shared,
        &config,
        &images,
        &out,
        &["--model", model.to_str().unwrap()],
    );
    assert_refused(&run, &["junk.safetensors"], &out);
}

#[test]
fn an_unreadable_image_is_named() {
    let (_tmp, images, config, out) = setup("gaussian", 20);
    std::fs::write(images.join("broken.png"), b"\x89PNG\r\n\x1a\nnot really").unwrap();
    let run = reconstruct(Tuning::Shared, &config, &images, &out, &[]);
    assert_refused(&run, &["broken.png"], &out);
}

#[test]
fn training_data_with_a_wrong_magic_number_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("labels-idx1-ubyte");
    let mut bytes = vec![0, 0, 8, 1, 0, 0, 0, 3];
    bytes.extend_from_slice(&[1, 2, 3]);
    std::fs::write(&data, bytes).unwrap();
    let config = common::root().join("configs/mnist-cpu.toml");
    let out = tmp.path().join("run");
    let run = qcs(&[
        "train",
        "--config",
        config.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_refused(&run, &["labels-idx1-ubyte", "magic"], &out);
}

#[test]
fn the_same_seed_gives_bit_identical_outputs() {
    let (tmp, images, config, out) = setup("gaussian", 40);
    // Bit-for-bit comparisons: runs that tuned kernels alone (see `Tuning::Own`).
    let tuning = Tuning::Own("errors-same-seed");
    let again = tmp.path().join("again");
    let first = reconstruct(tuning, &config, &images, &out, &["--json", "--chains", "2"]);
    let second = reconstruct(
        tuning,
        &config,
        &images,
        &again,
        &["--json", "--chains", "2"],
    );
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(second.status.success(), "{}", stderr(&second));
    for name in ["img0.png", "img1.png", "img0_std.png", "grid.png"] {
        assert_eq!(
            std::fs::read(out.join(name)).unwrap(),
            std::fs::read(again.join(name)).unwrap(),
            "{name} differs between two runs with the same seed"
        );
    }
    let psnr = |o: &std::process::Output| -> serde_json::Value {
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()["images"].clone()
    };
    assert_eq!(psnr(&first), psnr(&second));
    // Another seed gives another reconstruction.
    let other = tmp.path().join("other");
    let third = reconstruct(tuning, &config, &images, &other, &["--seed", "99"]);
    assert!(third.status.success(), "{}", stderr(&third));
    assert_ne!(
        std::fs::read(out.join("img0.png")).unwrap(),
        std::fs::read(other.join("img0.png")).unwrap()
    );
}

/// `--step-control` reaches the sampler: the curvature-limited steps (global and per direction) change a
/// 3-bit run, differently, and leave a 1-bit run (one-sided bins, no bound) bit-identical to the reference
/// step. An unknown rule is a usage error.
#[test]
#[cfg_attr(
    feature = "wgpu-untuned",
    ignore = "the flag reaching the sampler is backend-independent; seven runs, in the CPU passes"
)]
fn the_step_control_changes_q_bit_runs_only() {
    let (tmp, images, config, _) = setup("gaussian", 40);
    // Bit-for-bit comparisons: runs that tuned kernels alone (see `Tuning::Own`).
    let tuning = Tuning::Own("errors-step-control");
    let image = |bits: &str, rule: &str| {
        let out = tmp.path().join(format!("{bits}-{rule}"));
        let run = reconstruct(
            tuning,
            &config,
            &images,
            &out,
            &["--bits", bits, "--step-control", rule],
        );
        assert!(run.status.success(), "{}", stderr(&run));
        std::fs::read(out.join("img0.png")).unwrap()
    };
    let reference = image("1", "reference");
    assert_eq!(image("1", "curvature"), reference);
    assert_eq!(image("1", "preconditioned"), reference);
    let curvature = image("3", "curvature");
    assert_ne!(curvature, image("3", "reference"));
    assert_ne!(curvature, image("3", "preconditioned"));
    let out = tmp.path().join("bad");
    let run = reconstruct(tuning, &config, &images, &out, &["--step-control", "fast"]);
    assert_eq!(run.status.code(), Some(2), "{}", stderr(&run));
    assert!(
        stderr(&run).contains("curvature, preconditioned or reference"),
        "{}",
        stderr(&run)
    );
}

#[test]
#[cfg_attr(
    feature = "wgpu-untuned",
    ignore = "backend-independent file round trip, in the CPU passes; wgpu determinism is the same-seed test"
)]
fn a_measurement_file_and_the_model_reproduce_a_reconstruction() {
    let (tmp, images, config, out) = setup("dct", 60);
    // Bit-for-bit comparisons: runs that tuned kernels alone (see `Tuning::Own`).
    let tuning = Tuning::Own("errors-measurement-file");
    let file = tmp.path().join("m.qcsm");
    measure(tuning, &config, &images, &file);
    let direct = reconstruct(tuning, &config, &images, &out, &[]);
    assert!(direct.status.success(), "{}", stderr(&direct));
    let replay = tmp.path().join("replay");
    let run = from_file(tuning, &config, &file, &replay, &[]);
    assert!(run.status.success(), "{}", stderr(&run));
    for name in ["img0.png", "img1.png"] {
        assert_eq!(
            std::fs::read(out.join(name)).unwrap(),
            std::fs::read(replay.join(name)).unwrap(),
            "{name}: the measurement file does not reproduce the reconstruction"
        );
    }
}

/// `--precision f16` reconstructs within 0.1 dB of f32 (same seed, same measurements) where the backend
/// computes in f16, and is refused by name where it cannot (ndarray); an unknown precision is a usage
/// error.
#[test]
fn a_half_precision_network_matches_f32_or_is_refused_by_name() {
    let (tmp, images, config, out) = setup("gaussian", 200);
    let info = qcs(&["info"]);
    let backend = String::from_utf8_lossy(&info.stdout).to_string();
    let half = reconstruct(
        Tuning::Shared,
        &config,
        &images,
        &out,
        &["--json", "--precision", "f16"],
    );
    if !half.status.success() {
        // ndarray has no f16 arithmetic; a GPU without shader-f16 has none either. flex has.
        assert!(!backend.contains("backend: flex"), "{}", stderr(&half));
        assert_refused(&half, &["--precision", "f16"], &out);
        return;
    }
    assert!(!backend.contains("backend: ndarray"), "ndarray took f16");
    let full_out = tmp.path().join("f32");
    let full = reconstruct(
        Tuning::Shared,
        &config,
        &images,
        &full_out,
        &["--json", "--precision", "f32"],
    );
    assert!(full.status.success(), "{}", stderr(&full));
    let psnr = |o: &std::process::Output| -> Vec<f64> {
        let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        report["images"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["psnr"].as_f64().unwrap())
            .collect()
    };
    let (half, full) = (psnr(&half), psnr(&full));
    assert_eq!(half.len(), 2);
    for (h, f) in half.iter().zip(&full) {
        assert!((h - f).abs() < 0.1, "f16 {h:.3} dB against f32 {f:.3} dB");
    }
    let bad = reconstruct(
        Tuning::Shared,
        &config,
        &images,
        &tmp.path().join("bad"),
        &["--precision", "f64"],
    );
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    assert!(stderr(&bad).contains("f64"), "{}", stderr(&bad));
}
