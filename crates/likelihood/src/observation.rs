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
        Self {
            kind: if set.bits().is_some() {
                ObservationKind::Quantized
            } else {
                ObservationKind::Linear
            },
            y: upload(set.y.clone()),
            lower: upload(clamp_edges(&set.lower)),
            upper: upload(clamp_edges(&set.upper)),
            noise_std: set.info.noise_std as f32,
        }
    }

    /// Builds an observation from device tensors ([B, M] each; edges may hold ±∞).
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
        Ok(Self {
            kind,
            y,
            lower: lower.clamp(-EDGE_LIMIT, EDGE_LIMIT),
            upper: upper.clamp(-EDGE_LIMIT, EDGE_LIMIT),
            noise_std,
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
        }
    }
}
