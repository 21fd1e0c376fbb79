//! The loss log: mean loss per bucket of noise levels, appended to `loss.csv` in the run folder
//! (columns `step,bucket,mean_loss,count`; bucket `b` of `K` holds the levels `c` with
//! `⌊cK/L⌋ = b`, level 0 being the largest σ).

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::ScoreNetError;

/// Name of the loss log in the run folder.
pub const LOSS_LOG: &str = "loss.csv";

const HEADER: &str = "step,bucket,mean_loss,count";

/// Accumulates per-image losses by level bucket and appends their means to the log.
#[derive(Debug)]
pub struct LossLog {
    path: PathBuf,
    num_levels: usize,
    sums: Vec<f64>,
    counts: Vec<usize>,
}

impl LossLog {
    /// Opens the log of the run in `run_dir` that continues from step `step` (0 for a fresh
    /// run), creating it with its header if needed. The rows of later steps (logged after the
    /// checkpoint by an interrupted run) are dropped, so every row is logged once.
    pub fn open(
        run_dir: &Path,
        num_levels: usize,
        buckets: usize,
        step: usize,
    ) -> Result<Self, ScoreNetError> {
        let path = run_dir.join(LOSS_LOG);
        let kept = std::fs::read_to_string(&path)
            .map(|text| rows_up_to(&text, step))
            .unwrap_or_default();
        let text = format!("{HEADER}\n{kept}");
        let tmp = run_dir.join(format!(".{LOSS_LOG}.tmp"));
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| unwritable(&path, e))?;
        Ok(Self {
            path,
            num_levels,
            sums: vec![0.0; buckets],
            counts: vec![0; buckets],
        })
    }

    /// The bucket of noise level `level`.
    pub fn bucket(&self, level: usize) -> usize {
        (level * self.sums.len() / self.num_levels).min(self.sums.len() - 1)
    }

    /// Adds the losses of one batch, image by image with their levels.
    pub fn record(&mut self, levels: &[i64], losses: &[f32]) {
        for (&level, &loss) in levels.iter().zip(losses) {
            let bucket = self.bucket(usize::try_from(level).unwrap_or(0));
            self.sums[bucket] += f64::from(loss);
            self.counts[bucket] += 1;
        }
    }

    /// Appends one row per non-empty bucket for `step` and starts over.
    pub fn flush(&mut self, step: usize) -> Result<(), ScoreNetError> {
        let mut rows = String::new();
        for (bucket, (sum, count)) in self.sums.iter_mut().zip(&mut self.counts).enumerate() {
            if *count > 0 {
                let mean = *sum / *count as f64;
                rows.push_str(&format!("{step},{bucket},{mean},{count}\n"));
            }
            (*sum, *count) = (0.0, 0);
        }
        if rows.is_empty() {
            return Ok(());
        }
        OpenOptions::new()
            .append(true)
            .open(&self.path)
            .and_then(|mut file| file.write_all(rows.as_bytes()))
            .map_err(|e| unwritable(&self.path, e))
    }
}

/// The data rows of a log whose step is at most `step`.
fn rows_up_to(text: &str, step: usize) -> String {
    text.lines()
        .skip(1)
        .filter(|line| {
            line.split(',')
                .next()
                .and_then(|s| s.parse::<usize>().ok())
                .is_some_and(|row_step| row_step <= step)
        })
        .map(|line| format!("{line}\n"))
        .collect()
}

fn unwritable(path: &Path, error: std::io::Error) -> ScoreNetError {
    ScoreNetError::Unwritable {
        path: path.to_path_buf(),
        reason: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_split_into_equal_consecutive_buckets() {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = LossLog::open(dir.path(), 232, 10, 0).expect("opened");
        assert_eq!(log.bucket(0), 0);
        assert_eq!(log.bucket(23), 0);
        assert_eq!(log.bucket(24), 1);
        assert_eq!(log.bucket(231), 9);
    }

    #[test]
    fn rows_hold_the_mean_and_count_of_each_bucket() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut log = LossLog::open(dir.path(), 4, 2, 0).expect("opened");
        log.record(&[0, 1, 3], &[1.0, 3.0, 5.0]);
        log.flush(10).expect("flushed");
        log.flush(20).expect("nothing to flush");
        let text = std::fs::read_to_string(dir.path().join(LOSS_LOG)).expect("log");
        assert_eq!(text, "step,bucket,mean_loss,count\n10,0,2,2\n10,1,5,1\n");
    }

    #[test]
    fn resuming_drops_the_rows_after_the_checkpoint() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut log = LossLog::open(dir.path(), 2, 1, 0).expect("opened");
        for step in [5, 10, 15] {
            log.record(&[0], &[1.0]);
            log.flush(step).expect("flushed");
        }
        LossLog::open(dir.path(), 2, 1, 10).expect("reopened");
        let text = std::fs::read_to_string(dir.path().join(LOSS_LOG)).expect("log");
        assert_eq!(text, "step,bucket,mean_loss,count\n5,0,1,1\n10,0,1,1\n");
    }
}
