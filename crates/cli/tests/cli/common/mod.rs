//! Helpers shared by the CLI tests: running the built binary, tiny configs and test images.
#![allow(dead_code)] // each test binary uses a subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The workspace root, where the binary runs (configs/ and assets/ are found from there).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs the built `qcs` with `args` from the workspace root.
pub fn qcs(args: &[&str]) -> Output {
    qcs_tuned(Tuning::Shared, args)
}

/// The autotune cache a wgpu run reads and fills (the CPU backends tune nothing).
#[derive(Clone, Copy, Debug)]
pub enum Tuning<'a> {
    /// The suite's: every test process shares it, so a kernel shape is tuned once per run of the suite.
    Shared,
    /// A cubecl environment of the test's own, named so. A test that compares two runs bit for bit needs
    /// both to pick the same kernels: the second run reads what the first tuned. With the shared cache a
    /// test running beside it may tune the same shape at the same time and keep another winner.
    Own(&'a str),
}

/// Runs the built `qcs` with `args` from the workspace root, with the autotune cache `tuning`.
pub fn qcs_tuned(tuning: Tuning, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_qcs"));
    command.current_dir(root()).args(args);
    if let Tuning::Own(name) = tuning {
        command.env("CUBECL_ENVIRONMENT", name);
    }
    command.output().expect("the qcs binary runs")
}

/// `qcs reconstruct --config <config> --images <images> --out <out>`, for a test to extend.
pub fn reconstruct_args<'a>(config: &'a Path, images: &'a Path, out: &'a Path) -> Vec<&'a str> {
    vec![
        "reconstruct",
        "--config",
        config.to_str().unwrap(),
        "--images",
        images.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]
}

/// The standard error of a run, as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

/// `configs/<name>` with each `(section, key, value)` set, as TOML text. Every key must be in the file
/// already, so a renamed or removed setting fails here rather than leaving a test at real sizes.
fn config_with(name: &str, settings: &[(&str, &str, toml::Value)]) -> String {
    let text = std::fs::read_to_string(root().join("configs").join(name)).unwrap();
    let mut table: toml::Table = text.parse().unwrap();
    for (section, key, value) in settings {
        let slot = table
            .get_mut(*section)
            .and_then(|s| s.get_mut(*key))
            .unwrap_or_else(|| panic!("configs/{name} has no {section}.{key}"));
        *slot = value.clone();
    }
    toml::to_string(&table).unwrap()
}

/// A config for the reference ngf-8 fixture network (10 levels), with a short schedule.
pub fn tiny_config(dir: &Path, matrix: &str, measurements: usize) -> PathBuf {
    let fixture = "tests/fixtures/ncsnv2_mnist_ngf8_weights.safetensors";
    let text = config_with(
        "mnist.toml",
        &[
            ("model", "path", fixture.into()),
            ("model", "num_levels", 10.into()),
            ("sampler", "levels", 3.into()),
            ("sampler", "steps_per_level", 2.into()),
            ("measurement", "matrix", matrix.into()),
            ("measurement", "measurements", (measurements as i64).into()),
        ],
    );
    let path = dir.join("tiny.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// A training config for a 4-channel network on 28×28 with 6 levels, batch 4, a checkpoint every
/// `checkpoint_every` steps.
pub fn tiny_train_config(dir: &Path, checkpoint_every: usize) -> PathBuf {
    let text = config_with(
        "mnist-cpu.toml",
        &[
            ("model", "ngf", 4.into()),
            ("model", "num_levels", 6.into()),
            ("sampler", "levels", 6.into()),
            ("sampler", "steps_per_level", 1.into()),
            ("training", "batch_size", 4.into()),
            (
                "training",
                "checkpoint_every",
                (checkpoint_every as i64).into(),
            ),
        ],
    );
    let path = dir.join("train.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Writes `count` square PNG blobs of side `size` (gray, or RGB) into `dir` as img<k>.png.
pub fn write_images(dir: &Path, count: usize, size: u32, rgb: bool) {
    for k in 0..count {
        let f = |x: u32, y: u32| {
            let (cx, cy) = (size as f32 / 2.0 + k as f32, size as f32 / 2.0);
            let d = ((x as f32 - cx).powi(2) + (y as f32 - cy).powi(2)).sqrt();
            if d < size as f32 / 4.0 {
                255u8
            } else {
                0u8
            }
        };
        let path = dir.join(format!("img{k}.png"));
        if rgb {
            image::RgbImage::from_fn(size, size, |x, y| image::Rgb([f(x, y), 0, f(x, y)]))
                .save(path)
                .unwrap();
        } else {
            image::GrayImage::from_fn(size, size, |x, y| image::Luma([f(x, y)]))
                .save(path)
                .unwrap();
        }
    }
}

/// Entries in `dir` (0 when it does not exist).
pub fn files_in(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

/// Checks a failed run: non-zero exit, every `expect` in the message, no panic, nothing in `out`.
pub fn assert_refused(run: &Output, expect: &[&str], out: &Path) {
    let message = stderr(run);
    assert!(
        !run.status.success(),
        "should have failed; stderr: {message}"
    );
    assert_eq!(run.status.code(), Some(1), "exit code; stderr: {message}");
    for e in expect {
        assert!(message.contains(e), "expected `{e}` in: {message}");
    }
    assert!(!message.contains("panicked"), "{message}");
    assert_eq!(files_in(out), 0, "no partial output in {}", out.display());
}

/// Writes 8 fixed 28×28 training images as an IDX file (gzip when `path` ends in `.gz`); returns `path`.
#[allow(dead_code)]
pub fn write_training_idx(path: &Path) -> PathBuf {
    let pixels: Vec<f32> = (0..8 * 784)
        .map(|i| ((i * 37) % 101) as f32 / 100.0)
        .collect();
    let names = (0..8).map(|i| i.to_string()).collect();
    let data = qcs_data::Dataset::new(qcs_data::ImageSpec::new(1, 28, 28), pixels, names).unwrap();
    qcs_data::write_idx_images(path, &data).unwrap();
    path.to_path_buf()
}
