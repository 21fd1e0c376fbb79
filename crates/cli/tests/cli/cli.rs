//! The `qcs` binary as a user runs it: the pipeline end to end on a tiny network, and one test per kind of bad
//! input (clear message, non-zero exit, no partial output).

use crate::common;

use crate::common::{
    files_in, qcs, stderr, tiny_config, tiny_train_config, write_images, write_training_idx,
};

#[test]
fn info_names_the_compiled_backend() {
    let out = qcs(&["info"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let expected = if cfg!(feature = "ndarray") {
        "backend: ndarray"
    } else if cfg!(feature = "wgpu") {
        "backend: wgpu"
    } else if cfg!(feature = "wgpu-untuned") {
        "backend: wgpu-untuned"
    } else {
        "backend: flex"
    };
    assert!(text.lines().any(|l| l == expected), "{text}");
    // The tuned wgpu build keeps its autotune results on disk (cubecl's environment database, under the
    // workspace's target/ where the tests run); the untuned one and the CPU backends tune nothing.
    let cache = text.lines().find_map(|l| l.strip_prefix("tuning cache: "));
    if cfg!(feature = "wgpu") {
        let cache = std::path::Path::new(cache.expect("info names the tuning cache"));
        assert!(
            cache.is_absolute() && cache.extension().is_some_and(|e| e == "db"),
            "{text}"
        );
    } else {
        assert!(cache.is_none(), "{text}");
    }
}

#[test]
fn an_unknown_command_fails_with_usage() {
    let out = qcs(&["reconstrukt"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("Usage"));
}

#[test]
fn reconstruct_writes_pictures_and_an_exact_report() {
    let tmp = tempfile::tempdir().unwrap();
    let images = tmp.path().join("images");
    std::fs::create_dir(&images).unwrap();
    write_images(&images, 3, 28, false);
    let config = tiny_config(tmp.path(), "gaussian", 100);
    let out = tmp.path().join("out");
    let run = qcs(&[
        "reconstruct",
        "--config",
        config.to_str().unwrap(),
        "--images",
        images.to_str().unwrap(),
        "--chains",
        "2",
        "--batch",
        "2",
        "--out",
        out.to_str().unwrap(),
        "--json",
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    let report: serde_json::Value =
        serde_json::from_slice(&run.stdout).expect("stdout is exactly the JSON report");
    let keys: Vec<&str> = report
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut expected = vec![
        "method",
        "backend",
        "bits",
        "measurements",
        "noise_std",
        "matrix",
        "likelihood_scale",
        "ep",
        "levels",
        "steps_per_level",
        "nfe",
        "seconds",
        "images",
        "mean_psnr",
        "mean_ssim",
    ];
    expected.sort_unstable();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, expected);
    assert_eq!(report["nfe"], 3 * 2 + 1);
    assert_eq!(report["likelihood_scale"], 1.0);
    assert!(report["ep"].is_null(), "QCS-SGM runs no EP");
    assert_eq!(report["images"].as_array().unwrap().len(), 3);
    assert!(report["mean_psnr"].as_f64().unwrap().is_finite());
    for name in [
        "img0.png",
        "img0_std.png",
        "img2.png",
        "grid.png",
        "report.json",
    ] {
        assert!(out.join(name).exists(), "missing {name}");
    }
    if cfg!(feature = "wgpu") {
        // The run tuned its kernels and kept the results for the next process (the untuned build has
        // none to keep).
        let info = String::from_utf8_lossy(&qcs(&["info"]).stdout).to_string();
        let cache = info
            .lines()
            .find_map(|l| l.strip_prefix("tuning cache: "))
            .expect("info names the tuning cache");
        assert!(
            std::fs::metadata(cache).is_ok_and(|m| m.len() > 0),
            "{info}"
        );
    }
    let grid = image::open(out.join("grid.png")).unwrap();
    let pad = qcs_data::GRID_PADDING as u32;
    let side = 3 * (28 + pad) + pad;
    assert_eq!(
        (grid.width(), grid.height()),
        (side, side),
        "truth | mean | std, one row per image"
    );
}

/// A reader that stops early (`qcs info | head -1`) closes the pipe before qcs writes: qcs ends without a
/// panic, and a reconstruction still writes its files.
#[test]
#[cfg_attr(
    feature = "wgpu-untuned",
    ignore = "backend-independent output handling (two full runs), in the CPU passes"
)]
fn a_closed_standard_output_is_neither_a_panic_nor_a_lost_file() {
    let run = |args: &[&str]| {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        std::process::Command::new(env!("CARGO_BIN_EXE_qcs"))
            .current_dir(common::root())
            .args(args)
            .stdout(writer)
            .output()
            .unwrap()
    };
    let info = run(&["info"]);
    assert!(info.status.success(), "{}", stderr(&info));
    assert!(!stderr(&info).contains("panicked"), "{}", stderr(&info));

    let tmp = tempfile::tempdir().unwrap();
    let images = tmp.path().join("images");
    std::fs::create_dir(&images).unwrap();
    write_images(&images, 1, 28, false);
    let config = tiny_config(tmp.path(), "gaussian", 50);
    let out = tmp.path().join("out");
    for extra in [None, Some("--json")] {
        let _ = std::fs::remove_dir_all(&out);
        let mut args = common::reconstruct_args(&config, &images, &out);
        args.extend(extra);
        let run = run(&args);
        assert!(run.status.success(), "{extra:?}: {}", stderr(&run));
        assert!(!stderr(&run).contains("panicked"), "{}", stderr(&run));
        assert!(out.join("img0.png").exists() && out.join("report.json").exists());
    }
}

#[test]
fn measure_then_reconstruct_from_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let images = tmp.path().join("images");
    std::fs::create_dir(&images).unwrap();
    write_images(&images, 2, 28, false);
    let config = tiny_config(tmp.path(), "hadamard", 300);
    let file = tmp.path().join("m.qcsm");
    let run = qcs(&[
        "measure",
        "--config",
        config.to_str().unwrap(),
        "--images",
        images.to_str().unwrap(),
        "--bits",
        "3",
        "--out",
        file.to_str().unwrap(),
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    let out = tmp.path().join("out");
    let run = qcs(&[
        "reconstruct",
        "--config",
        config.to_str().unwrap(),
        "--measurements-file",
        file.to_str().unwrap(),
        "--truth",
        images.join("img0.png").to_str().unwrap(),
        images.join("img1.png").to_str().unwrap(),
        "--method",
        "qcs-sgm-plus",
        "--ep-iterations",
        "7",
        "--out",
        out.to_str().unwrap(),
        "--json",
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(report["bits"], 3);
    assert_eq!(report["measurements"], 300);
    assert_eq!(report["matrix"], "hadamard");
    assert_eq!(report["method"], "qcs-sgm-plus");
    // The config's λ = 1 is QCS-SGM's; `--method qcs-sgm-plus` takes the paper's 0.5 for grayscale images.
    assert_eq!(report["likelihood_scale"], 0.5);
    // The EP that ran: the flag's iterations, qcs's damping, the reference's 3-bit tolerance.
    assert_eq!(report["ep"]["iterations"], 7);
    assert_eq!(report["ep"]["damping"], 0.5);
    assert!((report["ep"]["tolerance"].as_f64().unwrap() - 1e-3).abs() < 1e-9);
}

/// Runs a reconstruct that must fail, checking the message and that nothing was written.
fn assert_fails(extra: &[&str], matrix: &str, measurements: usize, images_size: u32, expect: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let images = tmp.path().join("images");
    std::fs::create_dir(&images).unwrap();
    write_images(&images, 1, images_size, false);
    let config = tiny_config(tmp.path(), matrix, measurements);
    let out = tmp.path().join("out");
    let mut args = common::reconstruct_args(&config, &images, &out);
    args.extend_from_slice(extra);
    let run = qcs(&args);
    assert!(!run.status.success(), "should fail: {args:?}");
    let message = stderr(&run);
    assert!(
        message.contains(expect),
        "expected `{expect}` in: {message}"
    );
    assert!(!message.contains("panicked"), "{message}");
    assert_eq!(files_in(&out), 0, "no partial output");
}

#[test]
fn bits_outside_one_to_eight_are_refused() {
    assert_fails(
        &["--bits", "9"],
        "gaussian",
        100,
        28,
        "bits must be between 1 and 8",
    );
    assert_fails(
        &["--bits", "0"],
        "gaussian",
        100,
        28,
        "bits must be between 1 and 8",
    );
}

#[test]
fn more_measurements_than_pixels_are_refused_where_the_operator_cannot() {
    assert_fails(&[], "dct", 1000, 28, "M ≤ N");
}

#[test]
fn an_image_of_another_size_names_both_sizes() {
    assert_fails(&[], "gaussian", 100, 32, "32×32 but the model takes 28×28");
}

#[test]
fn a_missing_model_file_is_named() {
    assert_fails(
        &["--model", "no/such/model.safetensors"],
        "gaussian",
        100,
        28,
        "no/such/model.safetensors",
    );
}

#[test]
fn an_unknown_matrix_is_named() {
    assert_fails(&[], "fourier", 100, 28, "fourier");
}

#[test]
fn rgb_images_are_converted_for_a_gray_model_and_said_so() {
    let tmp = tempfile::tempdir().unwrap();
    let images = tmp.path().join("images");
    std::fs::create_dir(&images).unwrap();
    write_images(&images, 1, 28, true);
    let config = tiny_config(tmp.path(), "gaussian", 50);
    let file = tmp.path().join("m.qcsm");
    let run = qcs(&[
        "measure",
        "--config",
        config.to_str().unwrap(),
        "--images",
        images.to_str().unwrap(),
        "--out",
        file.to_str().unwrap(),
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(
        stderr(&run).contains("converted 1 image(s) to 1 channel"),
        "{}",
        stderr(&run)
    );
}

#[test]
fn a_measurement_file_for_another_image_size_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let images = tmp.path().join("images");
    std::fs::create_dir(&images).unwrap();
    write_images(&images, 1, 32, false);
    // Measure 32×32 images with a config for 32×32 …
    let config32 = tmp.path().join("c32.toml");
    let text = std::fs::read_to_string(tiny_config(tmp.path(), "gaussian", 50))
        .unwrap()
        .replace("image_size = 28", "image_size = 32");
    std::fs::write(&config32, text).unwrap();
    let file = tmp.path().join("m.qcsm");
    let run = qcs(&[
        "measure",
        "--config",
        config32.to_str().unwrap(),
        "--images",
        images.to_str().unwrap(),
        "--out",
        file.to_str().unwrap(),
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    // … and reconstruct them with the 28×28 model.
    let out = tmp.path().join("out");
    let config = tiny_config(tmp.path(), "gaussian", 50);
    let run = qcs(&[
        "reconstruct",
        "--config",
        config.to_str().unwrap(),
        "--measurements-file",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!run.status.success());
    assert!(stderr(&run).contains("1×32×32"), "{}", stderr(&run));
    assert_eq!(files_in(&out), 0);
}

#[test]
fn a_corrupt_measurement_file_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("bad.qcsm");
    std::fs::write(&file, b"\x10\x00\x00\x00\x00\x00\x00\x00{\"y\":").unwrap();
    let config = tiny_config(tmp.path(), "gaussian", 50);
    let out = tmp.path().join("out");
    let run = qcs(&[
        "reconstruct",
        "--config",
        config.to_str().unwrap(),
        "--measurements-file",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!run.status.success());
    assert!(stderr(&run).contains("bad.qcsm"), "{}", stderr(&run));
    assert_eq!(files_in(&out), 0);
}

#[test]
fn train_resume_and_sample_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let idx = write_training_idx(&tmp.path().join("train-images-idx3-ubyte.gz"));
    let config = tiny_train_config(tmp.path(), 2);
    let run_dir = tmp.path().join("run");
    let (c, d, o) = (
        config.to_str().unwrap(),
        idx.to_str().unwrap(),
        run_dir.to_str().unwrap(),
    );
    let run = qcs(&[
        "train", "--config", c, "--data", d, "--steps", "3", "--out", o,
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(String::from_utf8_lossy(&run.stdout).contains("finished at step 3"));
    // A second fresh run into the same folder is refused; --resume extends it.
    let again = qcs(&[
        "train", "--config", c, "--data", d, "--steps", "3", "--out", o,
    ]);
    assert!(!again.status.success());
    // The checkpoint's settings rule a resumed run: flags that would change them are refused.
    for flag in [["--ngf", "8"], ["--batch", "4"], ["--seed", "3"]] {
        let changed = qcs(&[
            "train", "--config", c, "--data", d, "--out", o, "--resume", flag[0], flag[1],
        ]);
        assert!(!changed.status.success(), "{flag:?} with --resume");
        assert!(stderr(&changed).contains(flag[0]), "{}", stderr(&changed));
    }
    let resumed = qcs(&[
        "train", "--config", c, "--data", d, "--steps", "5", "--out", o, "--resume",
    ]);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    assert!(String::from_utf8_lossy(&resumed.stdout).contains("finished at step 5"));
    let weights = run_dir.join("ema.safetensors");
    // A new run can start from those weights (not with --resume: that continues a checkpoint).
    let w = weights.to_str().unwrap();
    let tuned_dir = tmp.path().join("tuned");
    let t = tuned_dir.to_str().unwrap();
    let both = qcs(&[
        "train", "--config", c, "--data", d, "--out", t, "--init", w, "--resume",
    ]);
    assert!(!both.status.success());
    assert!(stderr(&both).contains("--init"), "{}", stderr(&both));
    // With a learning-rate schedule from the config's [training], recorded in the checkpoint.
    let text = std::fs::read_to_string(&config).unwrap();
    let scheduled = tmp.path().join("scheduled.toml");
    std::fs::write(
        &scheduled,
        format!("{text}warmup_steps = 1\nlearning_rate_end = 1e-5\n"),
    )
    .unwrap();
    let s = scheduled.to_str().unwrap();
    let tuned = qcs(&[
        "train", "--config", s, "--data", d, "--steps", "2", "--out", t, "--init", w, "--seed", "9",
    ]);
    assert!(tuned.status.success(), "{}", stderr(&tuned));
    assert!(String::from_utf8_lossy(&tuned.stdout).contains("finished at step 2"));
    assert!(stderr(&tuned).contains("starting from the weights in"));
    let recorded: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(tuned_dir.join("checkpoints/step-00000002/config.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(recorded["warmup_steps"], 1);
    assert_eq!(recorded["learning_rate_end"], 1e-5);
    // A decay that would rise above the peak rate is refused, naming the setting.
    std::fs::write(&scheduled, format!("{text}learning_rate_end = 1e-2\n")).unwrap();
    let rising = tmp.path().join("rising");
    let refused = qcs(&[
        "train",
        "--config",
        s,
        "--data",
        d,
        "--out",
        rising.to_str().unwrap(),
        "--init",
        w,
    ]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("learning_rate_end"),
        "{}",
        stderr(&refused)
    );
    assert!(
        !stderr(&refused).contains("panicked"),
        "{}",
        stderr(&refused)
    );
    let grid = tmp.path().join("samples.png");
    let sample = qcs(&[
        "sample",
        "--config",
        c,
        "--model",
        weights.to_str().unwrap(),
        "--count",
        "4",
        "--out",
        grid.to_str().unwrap(),
    ]);
    assert!(sample.status.success(), "{}", stderr(&sample));
    let image = image::open(&grid).unwrap();
    let pad = qcs_data::GRID_PADDING as u32;
    assert_eq!(
        image.width(),
        2 * (28 + pad) + pad,
        "four samples in a 2×2 grid"
    );
}

#[test]
fn training_data_of_another_size_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let data = qcs_data::Dataset::new(
        qcs_data::ImageSpec::new(1, 20, 20),
        vec![0.5; 2 * 400],
        vec!["a".into(), "b".into()],
    )
    .unwrap();
    let idx = tmp.path().join("small.idx");
    qcs_data::write_idx_images(&idx, &data).unwrap();
    let config = tiny_train_config(tmp.path(), 2);
    let out = tmp.path().join("run");
    let run = qcs(&[
        "train",
        "--config",
        config.to_str().unwrap(),
        "--data",
        idx.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!run.status.success());
    assert!(
        stderr(&run).contains("1×20×20 but the model takes 1×28×28"),
        "{}",
        stderr(&run)
    );
}
