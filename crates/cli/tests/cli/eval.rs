//! `qcs eval` as a user runs it: a tiny sweep on the ngf-8 fixture network, `--resume`, IDX input, and one
//! check per kind of bad sweep (clear message naming the flag, non-zero exit, nothing written).

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::common::{qcs, stderr};

/// The CLI tests' tiny config (the ngf-8 fixture network, 10 levels). Every sweep here sets its own schedule
/// and measurements.
fn tiny_config(dir: &Path) -> PathBuf {
    common::tiny_config(dir, "gaussian", 200)
}

/// The tiny sweep's bit depths: 1-bit and linear on the CPU backends; 1-bit alone on wgpu, where every cell
/// costs seconds on lavapipe (the 12-cell sweep was 87 s of CI's wgpu pass) and the 6-cell one still runs
/// every method on the GPU backend and writes the table, the plot and a resumable CSV (the linear likelihood
/// has its own wgpu tests).
const BITS: &[&str] = if cfg!(feature = "wgpu-untuned") {
    &["1"]
} else {
    &["1", "linear"]
};

/// A tiny sweep: 2 shipped digits, one 2×1 schedule, M ∈ {50, 100}, [`BITS`], `methods`.
fn eval_with(config: &Path, out: &Path, methods: &str, extra: &[&str]) -> Output {
    let bits = BITS.join(",");
    let mut args = vec![
        "eval",
        "--config",
        config.to_str().unwrap(),
        "--images",
        "assets/images/mnist",
        "--count",
        "2",
        "--schedules",
        "2x1",
        "--measurements",
        "50,100",
        "--bits",
        &bits,
        "--methods",
        methods,
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    qcs(&args)
}

/// The tiny sweep with qcs-sgm, biht and back-projection.
fn tiny_eval(config: &Path, out: &Path, extra: &[&str]) -> Output {
    eval_with(config, out, "qcs-sgm,biht,back-projection", extra)
}

/// A first, successful tiny sweep of `methods` in a fresh folder: the folder, the config and `--out`.
fn first_run(methods: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let config = tiny_config(tmp.path());
    let out = tmp.path().join("eval");
    let first = eval_with(&config, &out, methods, &[]);
    assert!(first.status.success(), "{}", stderr(&first));
    (tmp, config, out)
}

fn csv_lines(out: &Path) -> Vec<String> {
    std::fs::read_to_string(out.join("results.csv"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn a_tiny_eval_writes_one_row_per_cell_a_table_and_a_plot() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tiny_config(tmp.path());
    let out = tmp.path().join("eval");
    let run = tiny_eval(&config, &out, &[]);
    assert!(run.status.success(), "{}", stderr(&run));

    let lines = csv_lines(&out);
    assert_eq!(
        lines[0],
        "method,numerics,matrix,bits,measurements,noise_std,levels,steps_per_level,nfe,images,psnr,psnr_se,ssim,seconds,backend"
    );
    let cells = BITS.len() * 2 * 3;
    assert_eq!(
        lines.len(),
        1 + cells,
        "{} bit depth(s) × 2 M × 3 methods",
        BITS.len()
    );
    for line in &lines[1..] {
        let fields: Vec<&str> = line.split(',').collect();
        assert_eq!(fields.len(), 15, "{line}");
        assert_eq!(fields[9], "2", "two images: {line}");
        let psnr: f64 = fields[10].parse().unwrap();
        assert!(psnr.is_finite() && psnr > 0.0, "{line}");
    }
    let sampler: Vec<&String> = lines.iter().filter(|l| l.starts_with("qcs-sgm,")).collect();
    assert_eq!(sampler.len(), BITS.len() * 2);
    assert!(sampler
        .iter()
        .all(|l| l.contains(",stable,gaussian,") && l.contains(",2,1,3,")));

    let md = std::fs::read_to_string(out.join("results.md")).unwrap();
    assert!(
        md.contains("qcs eval --config"),
        "the command line heads the table: {md}"
    );
    assert!(md.contains("| bits | M | method |"), "{md}");
    assert_eq!(
        md.lines()
            .filter(|l| l.starts_with("| 1 |") || l.starts_with("| linear |"))
            .count(),
        cells
    );

    let plot = image::open(out.join("psnr_vs_m.png")).expect("a valid PNG");
    assert!(plot.width() > 400 && plot.height() > 300);
    assert!(
        !out.join("psnr_vs_nfe.png").exists(),
        "one schedule: no NFE plot"
    );

    let summary = String::from_utf8_lossy(&run.stdout);
    assert!(
        summary.contains("M=50") && summary.contains("biht"),
        "{summary}"
    );

    // Resuming a finished run runs no cell and leaves the CSV as it was.
    let before = std::fs::read(out.join("results.csv")).unwrap();
    let again = tiny_eval(&config, &out, &["--resume"]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        stderr(&again).contains(&format!("{cells} cell(s) already")),
        "{}",
        stderr(&again)
    );
    assert_eq!(std::fs::read(out.join("results.csv")).unwrap(), before);

    // Without --resume an existing results file is not replaced.
    let refused = tiny_eval(&config, &out, &[]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("--resume"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(std::fs::read(out.join("results.csv")).unwrap(), before);
}

#[test]
#[cfg_attr(
    feature = "wgpu-untuned",
    ignore = "backend-independent results.csv bookkeeping, in the CPU passes"
)]
fn resume_adds_only_the_missing_cells() {
    let (_tmp, config, out) = first_run("biht");
    assert_eq!(csv_lines(&out).len(), 1 + 4);
    let second = eval_with(&config, &out, "biht,back-projection,biht", &["--resume"]);
    assert!(second.status.success(), "{}", stderr(&second));
    let lines = csv_lines(&out);
    assert_eq!(lines.len(), 1 + 8);
    assert_eq!(lines.iter().filter(|l| l.starts_with("biht,")).count(), 4);
    // Rows made with another seed are not mixed in.
    let other = eval_with(&config, &out, "biht", &["--resume", "--seed", "7"]);
    assert!(!other.status.success());
    assert!(stderr(&other).contains("--seed"), "{}", stderr(&other));
    assert_eq!(csv_lines(&out).len(), 1 + 8);
    // Baselines run no network: the precision does not split their rows.
    let half = eval_with(&config, &out, "biht", &["--resume", "--precision", "f16"]);
    assert!(half.status.success(), "{}", stderr(&half));
    assert_eq!(csv_lines(&out).len(), 1 + 8);
}

/// The lines of `images.csv` after its header, split into fields.
fn image_rows(out: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(out.join("images.csv")).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("method,numerics,matrix,bits,measurements,noise_std,levels,steps_per_level,image,psnr,ssim")
    );
    lines
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

#[test]
#[cfg_attr(
    feature = "wgpu-untuned",
    ignore = "backend-independent images.csv bookkeeping, in the CPU passes"
)]
fn images_csv_holds_every_cells_scores_and_mends_a_torn_write() {
    let (_tmp, config, out) = first_run("biht");
    let rows = image_rows(&out);
    assert_eq!(rows.len(), 4 * 2, "4 cells × 2 images");
    // Each cell's PSNR and SSIM in results.csv are the means of its images' (both rounded on writing).
    for line in &csv_lines(&out)[1..] {
        let cell: Vec<&str> = line.split(',').collect();
        let mine: Vec<&Vec<String>> = rows.iter().filter(|r| r[..8] == cell[..8]).collect();
        assert_eq!(mine.len(), 2, "{line}");
        let mean = |i: usize| {
            mine.iter()
                .map(|r| r[i].parse::<f64>().unwrap())
                .sum::<f64>()
                / 2.0
        };
        assert!(
            (mean(9) - cell[10].parse::<f64>().unwrap()).abs() < 1e-3,
            "{line}"
        );
        assert!(
            (mean(10) - cell[12].parse::<f64>().unwrap()).abs() < 1e-4,
            "{line}"
        );
        assert_ne!(mine[0][8], mine[1][8], "two different images");
    }

    // A run stopped after writing a cell's images but before its row: the orphan rows go on --resume, and the
    // cell's rows are written once, when it runs again.
    let mut text = std::fs::read_to_string(out.join("images.csv")).unwrap();
    for r in &rows[..2] {
        text.push_str(&format!(
            "back-projection,{},999.0,0.5\n",
            r[1..9].join(",")
        ));
    }
    std::fs::write(out.join("images.csv"), text).unwrap();
    let resumed = eval_with(&config, &out, "biht,back-projection", &["--resume"]);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    let rows = image_rows(&out);
    assert_eq!(rows.len(), 8 * 2, "8 cells × 2 images, no orphans");
    assert!(
        rows.iter().all(|r| r[9] != "999.0"),
        "the orphan rows are gone"
    );
    let mut keys: Vec<String> = rows.iter().map(|r| r[..9].join(",")).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 16, "no image of a cell twice");
    // results.md pairs the two methods image by image in each of the 4 (bits, M) comparisons.
    let md = std::fs::read_to_string(out.join("results.md")).unwrap();
    assert!(md.contains("| Δ best (paired) |"), "{md}");
    assert_eq!(md.matches("| best |").count(), 4, "{md}");
    let deltas = md
        .lines()
        .filter(|l| l.contains(" ± ") && !l.contains("s.e."));
    assert_eq!(deltas.count(), 4, "{md}");

    // A per-image file that is not ours is named, and left as it was.
    std::fs::write(out.join("images.csv"), "psnr\n1.0\n").unwrap();
    let refused = eval_with(&config, &out, "biht", &["--resume"]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("images.csv"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(
        std::fs::read_to_string(out.join("images.csv")).unwrap(),
        "psnr\n1.0\n"
    );
}

#[test]
#[cfg_attr(
    feature = "wgpu-untuned",
    ignore = "backend-independent run.json bookkeeping, in the CPU passes"
)]
fn resume_refuses_rows_of_another_precision_step_rule_or_ep() {
    let (_tmp, config, out) = first_run("qcs-sgm");
    let rows = csv_lines(&out).len();
    for (flags, names) in [
        (["--precision", "f16"], "--precision"),
        (["--step-control", "reference"], "--step-control"),
        (["--ep-damping", "0.1"], "--ep-damping"),
        (["--ep-iterations", "3"], "--ep-iterations"),
    ] {
        let mut extra = vec!["--resume"];
        extra.extend(flags);
        let other = eval_with(&config, &out, "qcs-sgm", &extra);
        assert!(!other.status.success(), "{flags:?} rows mixed into the run");
        assert!(stderr(&other).contains(names), "{}", stderr(&other));
        assert_eq!(csv_lines(&out).len(), rows);
    }
    // A run written before the noise streams were per image (its run.json does not name them) is not
    // resumed either: its rows drew other noise.
    let path = out.join("run.json");
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(json["noise_streams"], "per-image");
    json.as_object_mut().unwrap().remove("noise_streams");
    std::fs::write(&path, json.to_string()).unwrap();
    let older = eval_with(&config, &out, "qcs-sgm", &["--resume"]);
    assert!(!older.status.success(), "rows of per-batch noise mixed in");
    assert!(
        stderr(&older).contains("noise streams"),
        "{}",
        stderr(&older)
    );
    assert_eq!(csv_lines(&out).len(), rows);
}

#[test]
#[cfg_attr(
    feature = "wgpu-untuned",
    ignore = "backend-independent run.json bookkeeping, in the CPU passes"
)]
fn resume_takes_another_batch_except_for_qcs_sgm_plus() {
    // QCS-SGM's rows do not depend on the batch: a finished run resumes with another one (and runs nothing).
    let (_tmp, config, out) = first_run("qcs-sgm");
    let before = std::fs::read(out.join("results.csv")).unwrap();
    let resumed = eval_with(&config, &out, "qcs-sgm", &["--resume", "--batch", "1"]);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    assert_eq!(std::fs::read(out.join("results.csv")).unwrap(), before);
    // QCS-SGM+ weighs each step by norms over the batch: its rows are not mixed across batch sizes.
    let (_tmp, config, out) = first_run("qcs-sgm-plus");
    let rows = csv_lines(&out).len();
    let other = eval_with(&config, &out, "qcs-sgm-plus", &["--resume", "--batch", "1"]);
    assert!(
        !other.status.success(),
        "QCS-SGM+ rows of another batch mixed in"
    );
    assert!(stderr(&other).contains("--batch"), "{}", stderr(&other));
    assert_eq!(csv_lines(&out).len(), rows);
}

#[test]
#[cfg_attr(
    feature = "wgpu-untuned",
    ignore = "backend-independent seeding; the sampler's tests run it on wgpu"
)]
fn an_image_reconstructs_the_same_whatever_its_batch() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tiny_config(tmp.path());
    let psnr_by_image = |batch: &str| {
        let out = tmp.path().join(format!("batch-{batch}"));
        let run = eval_with(&config, &out, "qcs-sgm", &["--batch", batch]);
        assert!(run.status.success(), "{}", stderr(&run));
        let mut rows: Vec<(String, f64)> = image_rows(&out)
            .into_iter()
            .map(|r| (r[..9].join(","), r[9].parse().unwrap()))
            .collect();
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        rows
    };
    let together = psnr_by_image("2");
    let apart = psnr_by_image("1");
    assert_eq!(together.len(), 2 * 2 * 2, "2 bit depths × 2 M × 2 images");
    for (a, b) in together.iter().zip(&apart) {
        assert_eq!(a.0, b.0);
        assert!(
            (a.1 - b.1).abs() < 1e-3,
            "{}: {} in a batch of 2, {} alone",
            a.0,
            a.1,
            b.1
        );
    }
    // The two images of a cell differ, so equal rows are not a constant.
    assert!((together[0].1 - together[1].1).abs() > 1e-3, "{together:?}");
}

#[test]
#[cfg_attr(
    feature = "wgpu-untuned",
    ignore = "backend-independent IDX selection; BIHT on wgpu is in the baselines tests"
)]
fn baselines_alone_read_an_idx_file_with_skip_and_count_and_need_no_model() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = qcs_data::ImageSpec::new(1, 28, 28);
    let pixels: Vec<f32> = (0..3 * 784).map(|i| ((i % 97) as f32) / 96.0).collect();
    let names = (0..3).map(|i| i.to_string()).collect();
    let data = qcs_data::Dataset::new(spec, pixels, names).unwrap();
    let idx = tmp.path().join("images-idx3-ubyte");
    qcs_data::write_idx_images(&idx, &data).unwrap();
    let out = tmp.path().join("eval");
    let run = qcs(&[
        "eval",
        "--model",
        "does/not/exist.safetensors",
        "--images",
        idx.to_str().unwrap(),
        "--skip",
        "1",
        "--count",
        "5",
        "--methods",
        "back-projection,biht",
        "--budget",
        "200",
        "--bits",
        "1,2",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    let lines = csv_lines(&out);
    assert_eq!(lines.len(), 1 + 2 * 2);
    let m: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l.split(',').nth(4).unwrap())
        .collect();
    assert_eq!(m, ["200", "200", "100", "100"], "M = ⌊budget/Q⌋");
    assert!(
        lines[1..].iter().all(|l| l.split(',').nth(9) == Some("2")),
        "images 1 and 2 of 3"
    );
}

#[test]
#[cfg_attr(
    feature = "wgpu-untuned",
    ignore = "backend-independent numbering of images; costs two sampling runs on lavapipe"
)]
fn images_after_skip_are_measured_and_sampled_as_in_a_run_over_all() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tiny_config(tmp.path());
    let run =
        |name: &str, extra: &[&str]| eval_with(&config, &tmp.path().join(name), "qcs-sgm", extra);
    let rows = |name: &str, extra: &[&str]| {
        let output = run(name, extra);
        assert!(output.status.success(), "{}", stderr(&output));
        let mut rows = image_rows(&tmp.path().join(name));
        rows.sort();
        rows
    };
    // Images 0 and 1 in one batch, then 1 and 2 one at a time: image 1's rows (names, PSNR and SSIM) agree,
    // so it drew the same measurement noise, start and Langevin noise.
    let all = rows("all", &[]);
    let later = rows("later", &["--skip", "1", "--batch", "1"]);
    let image = |r: &Vec<String>| r[8].clone();
    let second: Vec<_> = all
        .iter()
        .filter(|r| later.iter().any(|l| image(l) == image(r)))
        .collect();
    let again: Vec<_> = later
        .iter()
        .filter(|r| image(r) == image(second[0]))
        .collect();
    assert_eq!(second.len(), all.len() / 2, "one image in common");
    assert_eq!(second, again);
    assert_ne!(all[0][9], all[1][9], "two different images");
    // A run file of a qcs that numbered the streams from 0 whatever --skip (it does not name the first
    // image) is not resumed with --skip: its rows drew other noise. With --skip 0 the numbering agrees.
    for (name, skip, resumes) in [("later", "1", false), ("all", "0", true)] {
        let path = tmp.path().join(name).join("run.json");
        let mut json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(json["first_image"], skip.parse::<u64>().unwrap());
        json.as_object_mut().unwrap().remove("first_image");
        std::fs::write(&path, json.to_string()).unwrap();
        let resumed = run(name, &["--skip", skip, "--resume"]);
        assert_eq!(resumed.status.success(), resumes, "{}", stderr(&resumed));
        if !resumes {
            assert!(
                stderr(&resumed).contains("numbering of the noise streams"),
                "{}",
                stderr(&resumed)
            );
        }
    }
}

/// Runs an eval that must fail before any work, checking the message and that nothing was written.
fn assert_refused(extra: &[&str], expect: &[&str]) {
    let tmp = tempfile::tempdir().unwrap();
    let config = tiny_config(tmp.path());
    let out = tmp.path().join("eval");
    let run = tiny_eval(&config, &out, extra);
    assert!(!run.status.success(), "should fail: {extra:?}");
    let message = stderr(&run);
    for e in expect {
        assert!(message.contains(e), "expected `{e}` in: {message}");
    }
    assert!(!message.contains("panicked"), "{message}");
    assert!(!out.exists(), "nothing written for {extra:?}");
}

#[test]
fn an_unknown_matrix_is_named_with_its_flag() {
    assert_refused(
        &["--matrices", "gaussian,circulant"],
        &["--matrices", "circulant"],
    );
    assert_refused(
        &["--matrices", "dct:3"],
        &["--matrices", "takes no parameter"],
    );
    assert_refused(
        &["--matrices", "correlated:high"],
        &["--matrices", "not a number"],
    );
}

#[test]
fn dct_with_more_measurements_than_pixels_is_refused() {
    assert_refused(
        &["--matrices", "dct", "--measurements", "100,1000"],
        &["--matrices dct with M = 1000", "M ≤ N"],
    );
}

#[test]
fn other_bad_lists_are_named_with_their_flag() {
    assert_refused(&["--methods", "omp"], &["--methods", "omp"]);
    assert_refused(&["--bits", "1,9"], &["--bits", "`9`"]);
    assert_refused(&["--schedules", "11x1"], &["--schedules", "11x1"]);
    assert_refused(&["--schedules", "fast"], &["--schedules", "LEVELSxSTEPS"]);
    assert_refused(&["--numerics", "exact"], &["--numerics", "exact"]);
    assert_refused(&["--noise-std", "-1"], &["--noise-std"]);
    assert_refused(&["--batch", "0"], &["--batch must be at least 1"]);
    assert_refused(&["--ep-damping", "1.5"], &["--ep-damping", "1.5"]);
    assert_refused(&["--ep-iterations", "0"], &["--ep-iterations"]);
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("eval");
    for (flags, expect) in [
        (vec!["--count", "0"], "--count 0"),
        (vec!["--skip", "10"], "--skip 10"),
        (
            vec!["--budget", "400", "--bits", "1,linear"],
            "drop `linear`",
        ),
    ] {
        let mut args = vec!["eval", "--methods", "biht", "--out", out.to_str().unwrap()];
        args.extend(flags);
        let run = qcs(&args);
        assert!(!run.status.success());
        assert!(stderr(&run).contains(expect), "{}", stderr(&run));
        assert!(!out.exists());
    }
}
