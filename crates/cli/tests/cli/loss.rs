//! `qcs loss`: held-out DSM loss per band of noise levels, paired between networks.

use crate::common::{qcs, stderr, tiny_config, tiny_train_config, write_training_idx};

const FIXTURE: &str = "tests/fixtures/ncsnv2_mnist_ngf8_weights.safetensors";

/// The numbers of a table line after its label columns.
fn numbers(line: &str) -> Vec<f64> {
    line.split(|c: char| c.is_whitespace() || c == '(' || c == '±')
        .filter_map(|w| w.parse::<f64>().ok())
        .collect()
}

#[test]
fn two_copies_of_a_network_score_the_same_and_the_csv_holds_every_draw() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tiny_config(tmp.path(), "gaussian", 50);
    let csv = tmp.path().join("loss.csv");
    let run = qcs(&[
        "loss",
        "--config",
        config.to_str().unwrap(),
        "--model",
        &format!("{FIXTURE},{FIXTURE}"),
        "--images",
        "assets/images/mnist",
        "--count",
        "3",
        "--bands",
        "5",
        "--batch",
        "4",
        "--csv",
        csv.to_str().unwrap(),
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    let text = String::from_utf8_lossy(&run.stdout);
    assert!(text.contains("DSM loss on 3 images"), "{text}");
    assert!(text.contains("A: tests/fixtures/ncsnv2_mnist_ngf8_weights.safetensors (ngf 8)"));
    let all = text
        .lines()
        .find(|l| l.starts_with("all"))
        .expect("an `all` row");
    // A, its s.e., B, its s.e., B − A, its s.e., how many images B is lower on.
    let [a, a_se, b, b_se, d, d_se, lower] = numbers(all)[..] else {
        panic!("{all}");
    };
    assert!(a > 0.0 && a_se > 0.0, "{all}");
    assert_eq!((a, a_se), (b, b_se), "{all}");
    assert_eq!((d, d_se, lower), (0.0, 0.0, 0.0), "{all}");
    // Ten levels in five bands of two: band 3 holds levels 6–7.
    assert!(text.lines().any(|l| l.starts_with("3     6–7 ")), "{text}");

    let rows: Vec<Vec<String>> = std::fs::read_to_string(&csv)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect();
    assert_eq!(rows.len(), 3 * 5);
    let mut sum = 0.0;
    for row in &rows {
        let (band, level): (usize, usize) = (row[1].parse().unwrap(), row[2].parse().unwrap());
        assert!(level / 2 == band, "level {level} in band {band}");
        assert_eq!(row[4], row[5]);
        sum += row[4].parse::<f64>().unwrap();
    }
    // The table's `all` mean is the mean over images of each image's mean over bands.
    assert!((sum / 15.0 - a).abs() < 1e-3, "{} against {a}", sum / 15.0);
}

#[test]
fn networks_that_cannot_be_compared_and_impossible_bands_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tiny_config(tmp.path(), "gaussian", 50);
    let c = config.to_str().unwrap();
    let base = [
        "loss",
        "--config",
        c,
        "--images",
        "assets/images/mnist",
        "--count",
        "2",
    ];
    let run = |extra: &[&str]| {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        qcs(&args)
    };
    let bands = run(&["--bands", "11"]);
    assert!(!bands.status.success());
    assert!(stderr(&bands).contains("11 bands"), "{}", stderr(&bands));

    // A network trained on another schedule (6 levels) cannot be paired with the fixture's 10.
    let idx = write_training_idx(&tmp.path().join("train.idx.gz"));
    let train_config = tiny_train_config(tmp.path(), 1);
    let run_dir = tmp.path().join("run");
    let trained = qcs(&[
        "train",
        "--config",
        train_config.to_str().unwrap(),
        "--data",
        idx.to_str().unwrap(),
        "--steps",
        "1",
        "--out",
        run_dir.to_str().unwrap(),
    ]);
    assert!(trained.status.success(), "{}", stderr(&trained));
    let other = run_dir.join("ema.safetensors");
    let mixed = run(&["--model", &format!("{FIXTURE},{}", other.display())]);
    assert!(!mixed.status.success());
    let message = stderr(&mixed);
    assert!(
        message.contains("6 noise levels") && message.contains("ema.safetensors"),
        "{message}"
    );
}
