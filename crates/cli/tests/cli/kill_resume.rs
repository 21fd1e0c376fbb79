//! Training killed with SIGKILL at many moments, during and between checkpoint writes, always resumes from
//! the last complete checkpoint: a checkpoint is never left half-written, and the run folder always holds one.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::{qcs, root, stderr, tiny_train_config, write_training_idx};

/// The steps of the complete checkpoints in the run folder.
fn complete_steps(run: &Path) -> Vec<usize> {
    let mut steps: Vec<usize> = std::fs::read_dir(run.join("checkpoints"))
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            name.strip_prefix("step-").and_then(|n| n.parse().ok())
        })
        .collect();
    steps.sort_unstable();
    steps
}

// Eight cold starts of training on a software Vulkan would each recompile the kernels: the checkpoint logic
// is backend-independent and is exercised by the CPU passes.
#[test]
#[cfg_attr(
    feature = "wgpu-untuned",
    ignore = "backend-independent checkpoint logic, run by the CPU passes"
)]
fn sigkill_at_any_moment_leaves_a_complete_checkpoint_to_resume_from() {
    let tmp = tempfile::tempdir().unwrap();
    let idx = write_training_idx(&tmp.path().join("train-idx3-ubyte"));
    let config = tiny_train_config(tmp.path(), 1);
    let run = tmp.path().join("run");
    let (c, d, o) = (
        config.to_str().unwrap(),
        idx.to_str().unwrap(),
        run.to_str().unwrap(),
    );
    let first = qcs(&[
        "train", "--config", c, "--data", d, "--steps", "2", "--out", o,
    ]);
    assert!(first.status.success(), "{}", stderr(&first));

    // Kill times spread over start-up, steps and checkpoint writes (a fixed pseudo-random sequence).
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut kills = 0;
    for _ in 0..8 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let delay = Duration::from_millis(300 + state % 1700);
        let before = *complete_steps(&run).last().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_qcs"))
            .current_dir(root())
            .args([
                "train", "--config", c, "--data", d, "--steps", "100000", "--out", o, "--resume",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            kills += 1;
        }
        child.wait().unwrap();
        let steps = complete_steps(&run);
        let latest = *steps
            .last()
            .expect("a complete checkpoint survives every kill");
        assert!(
            latest >= before,
            "the checkpoint went back from {before} to {latest}"
        );
        // The latest complete checkpoint resumes, and its EMA weights load.
        let next = (latest + 1).to_string();
        let resumed = qcs(&[
            "train", "--config", c, "--data", d, "--steps", &next, "--out", o, "--resume",
        ]);
        assert!(
            resumed.status.success(),
            "after a kill at {delay:?}: {}",
            stderr(&resumed)
        );
        let stdout = String::from_utf8_lossy(&resumed.stdout);
        assert!(
            stdout.contains(&format!("finished at step {next}")),
            "{stdout}"
        );
        let grid = tmp.path().join("s.png");
        let weights = run.join("ema.safetensors");
        let sample = qcs(&[
            "sample",
            "--config",
            c,
            "--model",
            weights.to_str().unwrap(),
            "--count",
            "1",
            "--out",
            grid.to_str().unwrap(),
        ]);
        assert!(
            sample.status.success(),
            "ema.safetensors after a kill: {}",
            stderr(&sample)
        );
    }
    assert!(kills >= 6, "only {kills} runs were still going when killed");
}
