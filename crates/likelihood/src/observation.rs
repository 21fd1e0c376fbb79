//! Measurements on the device: y and its bins, ready for the likelihood scores.

use burn::prelude::*;
use qcs_sensing::MeasurementSet;

use crate::error::{LikelihoodError, Result};

/// Bin edges at ±∞ are stored as ±`EDGE_LIMIT`: far enough that every formula sees an open bin, finite so that
/// no ∞ − ∞ or 0·∞ can appear in f32.
pub const EDGE_LIMIT: f32 = 1e30;

/// Whether the measurements were quantized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObservationKind {
    /// y = A·x + n, no quantizer.
    Linear,
    /// y = Q(A·x + n) with bins (1-bit or Q-bit).
    Quantized,
}

/// y with bins for a batch, on the device.
#[derive(Debug, Clone)]
pub struct Observation {
    /// Linear or quantized.
    pub kind: ObservationKind,
    /// y, [B, M].
    pub y: Tensor<2>,
    /// Lower bin edges, [B, M] (−EDGE_LIMIT for open bins).
    pub lower: Tensor<2>,
    /// Upper bin edges, [B, M] (+EDGE_LIMIT for open bins).
    pub upper: Tensor<2>,
    /// σ, the noise standard deviation before quantization.
    pub noise_std: f32,
    /// Whether the measurements are quantized and every bin is open on one side (1-bit quantizers):
    /// the QCS-SGM score then takes its one-sided form, a few dozen element-wise operations instead of
    /// a few hundred. Known when the observation is built, so no step reads the bins back.
    pub one_sided: bool,
}

/// Whether every bin `[l, u)` is open on one side (edges already clamped to ±`EDGE_LIMIT`).
fn all_one_sided(lower: &[f32], upper: &[f32]) -> bool {
    lower
        .iter()
        .zip(upper)
        .all(|(&l, &u)| l <= -EDGE_LIMIT || u >= EDGE_LIMIT)
}

fn clamp_edges(values: &[f32]) -> Vec<f32> {
    values
        .iter()
        .map(|v| v.clamp(-EDGE_LIMIT, EDGE_LIMIT))
        .collect()
}

impl Observation {
    /// Uploads a measurement set (validated when it was built or loaded) to `device`.
    pub fn from_set(set: &MeasurementSet, device: &Device) -> Self {
        let shape = [set.batch(), set.measurements()];
        let upload = |v: Vec<f32>| Tensor::from_data(TensorData::new(v, shape), device);
        let (lower, upper) = (clamp_edges(&set.lower), clamp_edges(&set.upper));
        let quantized = set.bits().is_some();
        Self {
            kind: if quantized {
                ObservationKind::Quantized
            } else {
                ObservationKind::Linear
            },
            one_sided: quantized && all_one_sided(&lower, &upper),
            y: upload(set.y.clone()),
            lower: upload(lower),
            upper: upload(upper),
            noise_std: set.info.noise_std as f32,
        }
    }

    /// Builds an observation from device tensors ([B, M] each; edges may hold ±∞). Reads the edges
    /// back once, to know whether every bin is open on one side.
    pub fn new(
        kind: ObservationKind,
        y: Tensor<2>,
        lower: Tensor<2>,
        upper: Tensor<2>,
        noise_std: f32,
    ) -> Result<Self> {
        if lower.dims() != y.dims() || upper.dims() != y.dims() {
            return Err(LikelihoodError::ShapeMismatch {
                what: "bin edges".into(),
                expected: y.dims().to_vec(),
                found: lower.dims().to_vec(),
            });
        }
        if !(noise_std.is_finite() && noise_std >= 0.0) {
            return Err(LikelihoodError::InvalidSetting(format!(
                "noise std must be finite and ≥ 0, got {noise_std}"
            )));
        }
        let lower = lower.clamp(-EDGE_LIMIT, EDGE_LIMIT);
        let upper = upper.clamp(-EDGE_LIMIT, EDGE_LIMIT);
        let one_sided = kind == ObservationKind::Quantized
            && all_one_sided(
                &read_back(lower.clone(), "the lower bin edges")?,
                &read_back(upper.clone(), "the upper bin edges")?,
            );
        Ok(Self {
            kind,
            y,
            lower,
            upper,
            noise_std,
            one_sided,
        })
    }

    /// Batch size B.
    pub fn batch(&self) -> usize {
        self.y.dims()[0]
    }

    /// Repeats every image's row `times` times in place (row b becomes rows b·times … b·times + times − 1), to
    /// pair the measurements with several chains per image.
    pub fn repeat_rows(&self, times: usize) -> Self {
        let repeat = |t: &Tensor<2>| {
            let [b, m] = t.dims();
            t.clone()
                .reshape([b, 1, m])
                .repeat_dim(1, times)
                .reshape([b * times, m])
        };
        Self {
            kind: self.kind,
            y: repeat(&self.y),
            lower: repeat(&self.lower),
            upper: repeat(&self.upper),
            noise_std: self.noise_std,
            one_sided: self.one_sided,
        }
    }
}

/// A tensor's values on the host, read whole so that checks on them run there: a bool read-back
/// fails on wgpu, and a device reduction would be one more kernel for a GPU backend to autotune (a
/// run that tunes can round the network's own reductions differently from one that reads the cache).
pub(crate) fn read_back<const D: usize>(t: Tensor<D>, what: &str) -> Result<Vec<f32>> {
    t.into_data()
        .try_to_vec::<f32>()
        .map_err(|e| LikelihoodError::InvalidSetting(format!("reading {what} back: {e:?}")))
}
