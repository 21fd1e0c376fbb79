//! Measurement sets: y with bins for a batch of images, plus everything needed to rebuild A, and the
//! simulation that produces them (x → A·x + n → Q).

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{ensure_finite, Result, SensingError};
use crate::noise::add_gaussian_noise_at;
use crate::operator::Operator;
use crate::quantize::QuantizerSpec;
use crate::spec::OperatorSpec;

/// The settings of a measurement set that are not tensors (stored as the file's metadata).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeasurementInfo {
    /// The operator A.
    pub operator: OperatorSpec,
    /// The quantizer Q.
    pub quantizer: QuantizerSpec,
    /// σ, the standard deviation of the noise added before quantization.
    pub noise_std: f64,
    /// Seed of the noise generator.
    pub noise_seed: u64,
    /// One name per image (file stems), in batch order.
    pub names: Vec<String>,
}

/// Quantized measurements of a batch of B images, row-major [B, M] each.
#[derive(Debug, Clone, PartialEq)]
pub struct MeasurementSet {
    /// Settings.
    pub info: MeasurementInfo,
    /// y, [B, M].
    pub y: Vec<f32>,
    /// Lower bin edges, [B, M] (−∞ for open bins; y itself for linear measurements).
    pub lower: Vec<f32>,
    /// Upper bin edges, [B, M] (+∞ for open bins; y itself for linear measurements).
    pub upper: Vec<f32>,
    /// Quantizer step Δ per image, [B] (0 for 1-bit and linear).
    pub delta: Vec<f32>,
}

impl MeasurementSet {
    /// Number of images B.
    pub fn batch(&self) -> usize {
        self.info.names.len()
    }

    /// Number of measurements per image M.
    pub fn measurements(&self) -> usize {
        self.info.operator.measurements
    }

    /// Bits per measurement (`None` when not quantized).
    pub fn bits(&self) -> Option<u32> {
        self.info.quantizer.bits()
    }

    /// Checks every invariant: sizes, finite y and Δ, ordered bins, y inside its bin, valid settings.
    pub fn validate(&self) -> Result<()> {
        self.info.operator.validate()?;
        self.info.quantizer.validate()?;
        if !(self.info.noise_std.is_finite() && self.info.noise_std >= 0.0) {
            return Err(SensingError::InvalidSetting(format!(
                "noise_std must be finite and ≥ 0, got {}",
                self.info.noise_std
            )));
        }
        let (b, m) = (self.batch(), self.measurements());
        for (what, len, expected) in [
            ("y", self.y.len(), b * m),
            ("lower", self.lower.len(), b * m),
            ("upper", self.upper.len(), b * m),
            ("delta", self.delta.len(), b),
        ] {
            if len != expected {
                return Err(SensingError::ShapeMismatch {
                    what: what.to_string(),
                    expected: vec![expected],
                    found: vec![len],
                });
            }
        }
        ensure_finite("y", &self.y)?;
        ensure_finite("delta", &self.delta)?;
        for (what, edges) in [("lower", &self.lower), ("upper", &self.upper)] {
            if let Some(index) = edges.iter().position(|v| v.is_nan()) {
                return Err(SensingError::NonFinite {
                    what: what.to_string(),
                    index,
                });
            }
        }
        let bad_bin = (0..b * m).find(|&i| {
            let (l, u, y) = (self.lower[i], self.upper[i], self.y[i]);
            !(l <= u && l <= y && y <= u)
        });
        if let Some(i) = bad_bin {
            return Err(SensingError::InvalidSetting(format!(
                "measurement {i}: y = {} is not inside its bin [{}, {}]",
                self.y[i], self.lower[i], self.upper[i]
            )));
        }
        Ok(())
    }
}

/// Simulates measurements of a batch of images: y = Q(A·x + n).
///
/// `images` is [B, N] on the operator's device; `names` has one entry per image.
pub fn simulate(
    operator: &dyn Operator,
    images: Tensor<2>,
    quantizer: QuantizerSpec,
    noise_std: f64,
    noise_seed: u64,
    names: Vec<String>,
) -> Result<MeasurementSet> {
    simulate_from(operator, images, quantizer, noise_std, noise_seed, 0, names)
}

/// [`simulate`] for images `first_image`, `first_image + 1`, … of a larger batch: each image gets the
/// noise it gets when the whole batch is simulated, so a run over part of the images measures them as a
/// run over all of them does.
pub fn simulate_from(
    operator: &dyn Operator,
    images: Tensor<2>,
    quantizer: QuantizerSpec,
    noise_std: f64,
    noise_seed: u64,
    first_image: usize,
    names: Vec<String>,
) -> Result<MeasurementSet> {
    let [b, n] = images.dims();
    if n != operator.cols() || b != names.len() {
        return Err(SensingError::ShapeMismatch {
            what: "images".into(),
            expected: vec![names.len(), operator.cols()],
            found: vec![b, n],
        });
    }
    let q = quantizer.build()?;
    let m = operator.rows();
    let mut z = operator
        .forward(images)
        .into_data()
        .try_to_vec_as::<f32>()
        .map_err(|e| SensingError::InvalidSetting(format!("reading measurements back: {e:?}")))?;
    ensure_finite("A·x", &z)?;
    let start = (first_image as u64).checked_mul(m as u64).ok_or_else(|| {
        SensingError::InvalidSetting(format!(
            "image {first_image}: too far into the noise stream"
        ))
    })?;
    add_gaussian_noise_at(&mut z, noise_std, noise_seed, start)?;
    let (mut y, mut lower, mut upper, mut delta) = (
        Vec::with_capacity(b * m),
        Vec::with_capacity(b * m),
        Vec::with_capacity(b * m),
        Vec::with_capacity(b),
    );
    for row in z.chunks(m) {
        let qz = q.quantize(row)?;
        y.extend(qz.y);
        lower.extend(qz.lower);
        upper.extend(qz.upper);
        delta.push(qz.delta);
    }
    Ok(MeasurementSet {
        info: MeasurementInfo {
            operator: *operator.spec(),
            quantizer,
            noise_std,
            noise_seed,
            names,
        },
        y,
        lower,
        upper,
        delta,
    })
}
