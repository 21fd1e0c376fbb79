//! Measurements on the device for the baselines: the de-quantised values ỹ with their bins, and the quantizer
//! that made them, re-applicable to any z.

use burn::prelude::*;
use qcs_likelihood::Observation;
use qcs_sensing::{MeasurementSet, Operator, QuantizerSpec};

use crate::error::{BaselineError, Result};

/// A quantizer on the device that maps z to the de-quantised value of its bin, exactly as the measurements
/// were quantized (the same Δ per image).
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // one per reconstruction, never in a collection
pub enum DeviceQuantizer {
    /// y = z.
    Linear,
    /// y = sign(z) ∈ {−1, +1}, with sign(0) = +1 like the sensing crate's quantizer.
    OneBit,
    /// Q-bit mid-rise uniform: y = (j + ½)·Δ, j = clamp(⌊z/Δ⌋, −2^{Q−1}, 2^{Q−1} − 1).
    Uniform {
        /// Q.
        bits: u32,
        /// Δ of every image, [B, 1].
        delta: Tensor<2>,
    },
}

impl DeviceQuantizer {
    /// Q(z) for z of shape [B, M] (one row per image).
    pub fn apply(&self, z: Tensor<2>) -> Tensor<2> {
        match self {
            Self::Linear => z,
            Self::OneBit => z.greater_equal_elem(0.0).float() * 2.0 - 1.0,
            Self::Uniform { bits, delta } => {
                let half = (1u32 << (bits - 1)) as f32;
                ((z / delta.clone()).floor().clamp(-half, half - 1.0) + 0.5) * delta.clone()
            }
        }
    }
}

/// The measurements of a batch on the operator's device.
#[derive(Debug, Clone)]
pub struct Measured {
    /// ỹ (the bin midpoints for Q-bit, ±1 for 1-bit, y itself for linear measurements; the sensing crate
    /// stores exactly these values as y), the bins and σ.
    pub observation: Observation,
    /// The quantizer that produced ỹ.
    pub quantizer: DeviceQuantizer,
}

impl Measured {
    /// Uploads `set` after checking that it is consistent and was made with `operator`.
    pub fn new(operator: &dyn Operator, set: &MeasurementSet) -> Result<Self> {
        set.validate()?;
        if set.info.operator != *operator.spec() {
            return Err(BaselineError::OperatorMismatch {
                measured: format!("{:?}", set.info.operator),
                operator: format!("{:?}", operator.spec()),
            });
        }
        let device = operator.device();
        let quantizer = match set.info.quantizer {
            QuantizerSpec::Linear => DeviceQuantizer::Linear,
            QuantizerSpec::OneBit => DeviceQuantizer::OneBit,
            QuantizerSpec::Uniform { bits, .. } => DeviceQuantizer::Uniform {
                bits,
                delta: Tensor::from_data(
                    TensorData::new(set.delta.clone(), [set.batch(), 1]),
                    device,
                ),
            },
        };
        Ok(Self {
            observation: Observation::from_set(set, device),
            quantizer,
        })
    }

    /// Whether the measurements are signs, whose pattern carries no scale.
    pub fn is_one_bit(&self) -> bool {
        matches!(self.quantizer, DeviceQuantizer::OneBit)
    }

    /// ỹ, [B, M].
    pub fn y(&self) -> Tensor<2> {
        self.observation.y.clone()
    }
}
