//! `qcs bench`: the JSON it writes holds one finite, positive timing per case, images/s consistent with
//! the step time, and (on the CPU backends) the training-step figure; bad settings are refused by name.

use crate::common;

use crate::common::{qcs, stderr};

#[test]
fn bench_writes_consistent_timings() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("bench.json");
    let info = String::from_utf8_lossy(&qcs(&["info"]).stdout).to_string();
    // A training step on lavapipe autotunes for minutes: the GPU pass times inference only.
    let on_wgpu = info.contains("backend: wgpu");
    let train_batch = if on_wgpu { "0" } else { "4" };
    // The default convolution algorithm: `auto` (the GEMM form for large shapes on the GPU backend,
    // for sampling on flex), the backend's own kernel on ndarray.
    let default_conv = if info.contains("backend: ndarray") {
        "native"
    } else {
        "auto"
    };
    assert!(
        info.contains(&format!("convolutions: {default_conv}")),
        "{info}"
    );
    assert_eq!(info.contains("\ncpu threads: "), !on_wgpu, "{info}");
    // The GEMM form end to end on the CPU passes (its training step included); on lavapipe, where
    // each new kernel shape autotunes first, the default (the library's GEMM test covers wgpu).
    let conv = if on_wgpu { "auto" } else { "gemm" };
    // The training measurement's temporary folder goes under the child's own TMPDIR, so the check
    // that it is removed cannot see other programs' folders.
    let scratch = tmp.path().join("scratch");
    std::fs::create_dir(&scratch).unwrap();
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_qcs"))
        .current_dir(common::root())
        .env("TMPDIR", &scratch)
        // The CPU backends' pool takes its size from here, and the report must say so.
        .env("RAYON_NUM_THREADS", "3")
        .args([
            "bench",
            "--conv",
            conv,
            "--ngf",
            "4",
            "--batch",
            "1,2",
            "--size",
            "28",
            "--repeats",
            "2",
            "--steps",
            "2",
            "--train-batch",
            train_batch,
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", stderr(&run));
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(report["precision"], "f32");
    assert_eq!(report["conv"], conv);
    assert_eq!(report["reference_nfe"], 1161);
    let threads = if on_wgpu {
        serde_json::Value::Null
    } else {
        serde_json::json!(3)
    };
    assert_eq!(report["cpu_threads"], threads);
    let cases = report["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 2);
    for (case, batch) in cases.iter().zip([1.0, 2.0]) {
        assert_eq!(case["batch"].as_f64(), Some(batch));
        assert_eq!(case["image"], serde_json::json!([1, 28, 28]));
        let forward = case["forward_ms"].as_f64().unwrap();
        let step = case["langevin_step_ms"].as_f64().unwrap();
        assert!(forward > 0.0 && forward.is_finite(), "{case}");
        assert!(step > 0.0 && step.is_finite(), "{case}");
        let expected = batch * 1e3 / (step * 1161.0);
        let got = case["images_per_s"].as_f64().unwrap();
        assert!((got - expected).abs() <= 1e-9 * expected, "{case}");
    }
    let training = report["training"].as_array().unwrap();
    if train_batch == "0" {
        assert!(training.is_empty());
    } else {
        assert_eq!(training.len(), 1);
        assert_eq!(training[0]["batch"], 4);
        assert_eq!(training[0]["ngf"], 4);
        let ms = training[0]["step_ms"].as_f64().unwrap();
        assert!(ms > 0.0 && ms.is_finite(), "{}", training[0]);
    }
    // The temporary training folder is gone.
    assert_eq!(std::fs::read_dir(&scratch).unwrap().count(), 0);
}

#[test]
fn bench_refuses_impossible_settings_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("bench.json");
    for (flag, value, expect) in [
        ("--repeats", "0", "--repeats"),
        ("--ngf", "0", "--ngf"),
        ("--size", "30", "--size 30"),
    ] {
        let run = qcs(&["bench", flag, value, "--out", out.to_str().unwrap()]);
        assert_eq!(
            run.status.code(),
            Some(1),
            "{flag} {value}: {}",
            stderr(&run)
        );
        assert!(
            stderr(&run).contains(expect),
            "{flag} {value}: {}",
            stderr(&run)
        );
        assert!(!stderr(&run).contains("panicked"), "{}", stderr(&run));
        assert!(!out.exists(), "no JSON after a refused run");
    }
    let run = qcs(&["bench", "--conv", "cudnn", "--out", out.to_str().unwrap()]);
    assert_eq!(run.status.code(), Some(2), "{}", stderr(&run));
    assert!(stderr(&run).contains("cudnn"), "{}", stderr(&run));
    assert!(!out.exists(), "no JSON after a refused run");
}
