//! The loss log: mean loss per bucket of noise levels, appended to `loss.csv` in the run folder
//! (columns `step,bucket,mean_loss,count`; bucket `b` of `K` holds the levels `c` with
//! `⌊cK/L⌋ = b`, level 0 being the largest σ).
//!
//! The sums stay on the device between rows: a step adds its per-image losses to them without a
//! read-back, so the device is synchronised only when a row is written.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use burn::tensor::{Tensor, TensorData};

use crate::error::ScoreNetError;

/// Name of the loss log in the run folder.
pub const LOSS_LOG: &str = "loss.csv";

const HEADER: &str = "step,bucket,mean_loss,count";

/// Accumulates per-image losses by level bucket and appends their means to the log.
#[derive(Debug)]
pub struct LossLog {
    path: PathBuf,
    num_levels: usize,
    /// Per-bucket sums of the losses recorded since the last row, `[K]`, on the losses' device.
    sums: Option<Tensor<1>>,
    counts: Vec<usize>,
}

/// The band (the log's bucket) of noise level `level` among `levels` levels split into `bands`
/// bands of consecutive levels: band 0 holds the largest σ.
pub(crate) fn band_of(level: usize, levels: usize, bands: usize) -> usize {
    (level * bands / levels).min(bands - 1)
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
            sums: None,
            counts: vec![0; buckets.max(1)],
        })
    }

    /// The bucket of noise level `level`.
    pub fn bucket(&self, level: usize) -> usize {
        band_of(level, self.num_levels, self.counts.len())
    }

    /// Adds the losses `[B]` of one batch, image by image with their `levels`, on the losses'
    /// device (no read-back).
    pub fn record(&mut self, levels: &[i64], losses: Tensor<1>) {
        let buckets = self.counts.len();
        let mut one_hot = vec![0.0f32; levels.len() * buckets];
        for (image, &level) in levels.iter().enumerate() {
            let bucket = self.bucket(usize::try_from(level).unwrap_or(0));
            one_hot[image * buckets + bucket] = 1.0;
            self.counts[bucket] += 1;
        }
        let one_hot = Tensor::<2>::from_data(
            TensorData::new(one_hot, [levels.len(), buckets]),
            &losses.device(),
        );
        let sums = losses
            .reshape([1, levels.len()])
            .matmul(one_hot)
            .reshape([buckets]);
        self.sums = Some(match self.sums.take() {
            Some(total) => total + sums,
            None => sums,
        });
    }

    /// Appends one row per non-empty bucket for `step` and starts over. Returns the mean loss
    /// of all the images recorded since the last row (`None` if there were none).
    pub fn flush(&mut self, step: usize) -> Result<Option<f32>, ScoreNetError> {
        let Some(sums) = self.sums.take() else {
            return Ok(None);
        };
        let sums = sums
            .into_data()
            .convert::<f64>()
            .try_into_vec::<f64>()
            .map_err(|e| ScoreNetError::LossReadBack(format!("{e:?}")))?;
        let mut rows = String::new();
        let (mut total, mut images) = (0.0f64, 0usize);
        for (bucket, (sum, count)) in sums.iter().zip(&mut self.counts).enumerate() {
            if *count > 0 {
                let mean = *sum / *count as f64;
                rows.push_str(&format!("{step},{bucket},{mean},{count}\n"));
                (total, images) = (total + sum, images + *count);
            }
            *count = 0;
        }
        OpenOptions::new()
            .append(true)
            .open(&self.path)
            .and_then(|mut file| file.write_all(rows.as_bytes()))
            .map_err(|e| unwritable(&self.path, e))?;
        Ok((images > 0).then(|| (total / images as f64) as f32))
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
    use burn::tensor::Device;

    fn losses(values: &[f32]) -> Tensor<1> {
        Tensor::from_floats(values, &Device::flex())
    }

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
        log.record(&[0, 1], losses(&[1.0, 3.0]));
        log.record(&[3], losses(&[5.0]));
        assert_eq!(log.flush(10).expect("flushed"), Some(3.0));
        assert_eq!(log.flush(20).expect("nothing to flush"), None);
        let text = std::fs::read_to_string(dir.path().join(LOSS_LOG)).expect("log");
        assert_eq!(text, "step,bucket,mean_loss,count\n10,0,2,2\n10,1,5,1\n");
    }

    #[test]
    fn resuming_drops_the_rows_after_the_checkpoint() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut log = LossLog::open(dir.path(), 2, 1, 0).expect("opened");
        for step in [5, 10, 15] {
            log.record(&[0], losses(&[1.0]));
            log.flush(step).expect("flushed");
        }
        LossLog::open(dir.path(), 2, 1, 10).expect("reopened");
        let text = std::fs::read_to_string(dir.path().join(LOSS_LOG)).expect("log");
        assert_eq!(text, "step,bucket,mean_loss,count\n5,0,1,1\n10,0,1,1\n");
    }
}
