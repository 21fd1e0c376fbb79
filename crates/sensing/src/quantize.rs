//! Quantizers y = Q(z): 1-bit sign, Q-bit mid-rise uniform, or none (ALGORITHM.md §1).
//!
//! Each quantized value keeps its bin [l, u): the likelihood scores integrate the noise over exactly that bin.
//! Open outer bins use ±∞.

use serde::{Deserialize, Serialize};

use crate::error::{Result, SensingError};

/// One measurement vector after quantization, with the bin of every value.
#[derive(Debug, Clone, PartialEq)]
pub struct Quantized {
    /// The quantized values (levels, ±1 for 1-bit, z itself when not quantized).
    pub y: Vec<f32>,
    /// Lower bin edges l_m (−∞ for open bins).
    pub lower: Vec<f32>,
    /// Upper bin edges u_m (+∞ for open bins).
    pub upper: Vec<f32>,
    /// The step Δ (0 for 1-bit and linear measurements).
    pub delta: f32,
}

/// A measurement quantizer.
pub trait Quantizer {
    /// Quantizes one measurement vector z.
    fn quantize(&self, z: &[f32]) -> Result<Quantized>;
}

/// How a Q-bit quantizer chooses its step Δ.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "kebab-case")]
pub enum StepRule {
    /// Δ = (max z − min z)/2^Q, from each measurement vector itself.
    FromData,
    /// Δ = width/2^Q for a fixed ADC full-scale width (the span that the 2^Q bins cover).
    FullScale {
        /// The full-scale width of the converter.
        width: f32,
    },
}

/// Which quantizer produced a measurement set; serialised into measurement files.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum QuantizerSpec {
    /// No quantizer: y = z.
    Linear,
    /// y = sign(z).
    OneBit,
    /// Q-bit symmetric mid-rise uniform quantizer.
    Uniform {
        /// Q in 2..=8.
        bits: u32,
        /// How Δ is chosen.
        step: StepRule,
    },
}

impl QuantizerSpec {
    /// The quantizer for `bits` (1 → sign, 2..=8 → uniform with `step`), or `Linear` when `bits` is `None`.
    pub fn from_bits(bits: Option<u32>, step: StepRule) -> Result<Self> {
        match bits {
            None => Ok(Self::Linear),
            Some(1) => Ok(Self::OneBit),
            Some(b @ 2..=8) => Ok(Self::Uniform { bits: b, step }),
            Some(b) => Err(SensingError::BitsOutOfRange(b)),
        }
    }

    /// Bits per measurement, `None` for linear measurements.
    pub fn bits(&self) -> Option<u32> {
        match self {
            Self::Linear => None,
            Self::OneBit => Some(1),
            Self::Uniform { bits, .. } => Some(*bits),
        }
    }

    /// Checks the bit depth and the full-scale width.
    pub fn validate(&self) -> Result<()> {
        if let Self::Uniform { bits, step } = self {
            if !(2..=8).contains(bits) {
                return Err(SensingError::BitsOutOfRange(*bits));
            }
            if let StepRule::FullScale { width } = step {
                if !(width.is_finite() && *width > 0.0) {
                    return Err(SensingError::InvalidSetting(format!(
                        "the full-scale width must be positive and finite, got {width}"
                    )));
                }
            }
        }
        Ok(())
    }

    /// The quantizer this spec describes.
    pub fn build(&self) -> Result<Box<dyn Quantizer>> {
        self.validate()?;
        Ok(match *self {
            Self::Linear => Box::new(NoQuantizer),
            Self::OneBit => Box::new(SignQuantizer),
            Self::Uniform { bits, step } => Box::new(UniformQuantizer { bits, step }),
        })
    }
}

/// No quantizer: y = z, and the "bin" is the point itself.
#[derive(Debug, Clone, Copy)]
pub struct NoQuantizer;

impl Quantizer for NoQuantizer {
    fn quantize(&self, z: &[f32]) -> Result<Quantized> {
        Ok(Quantized {
            y: z.to_vec(),
            lower: z.to_vec(),
            upper: z.to_vec(),
            delta: 0.0,
        })
    }
}

/// 1-bit: y = sign(z) with threshold 0; y = +1 has bin [0, ∞), y = −1 has bin (−∞, 0).
#[derive(Debug, Clone, Copy)]
pub struct SignQuantizer;

impl Quantizer for SignQuantizer {
    fn quantize(&self, z: &[f32]) -> Result<Quantized> {
        let positive: Vec<bool> = z.iter().map(|&v| v >= 0.0).collect();
        Ok(Quantized {
            y: positive
                .iter()
                .map(|&p| if p { 1.0 } else { -1.0 })
                .collect(),
            lower: positive
                .iter()
                .map(|&p| if p { 0.0 } else { f32::NEG_INFINITY })
                .collect(),
            upper: positive
                .iter()
                .map(|&p| if p { f32::INFINITY } else { 0.0 })
                .collect(),
            delta: 0.0,
        })
    }
}

/// Q-bit symmetric mid-rise uniform quantizer: 2^Q levels (j + ½)Δ for bins [jΔ, (j+1)Δ),
/// j = −2^{Q−1} … 2^{Q−1}−1, the two outermost bins open.
#[derive(Debug, Clone, Copy)]
pub struct UniformQuantizer {
    /// Q in 2..=8.
    pub bits: u32,
    /// How Δ is chosen.
    pub step: StepRule,
}

impl UniformQuantizer {
    /// The step Δ this quantizer uses for z.
    pub fn step_for(&self, z: &[f32]) -> Result<f32> {
        let levels = (1u32 << self.bits) as f32;
        let delta = match self.step {
            StepRule::FullScale { width } => width / levels,
            StepRule::FromData => {
                let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let min = z.iter().copied().fold(f32::INFINITY, f32::min);
                (max - min) / levels
            }
        };
        if delta.is_finite() && delta > 0.0 {
            Ok(delta)
        } else {
            Err(SensingError::InvalidSetting(format!(
                "cannot quantize with step Δ = {delta}: the measurement vector is constant or empty; \
                 give a full-scale range instead"
            )))
        }
    }

    /// Quantizes z with a given step Δ.
    pub fn quantize_with_step(&self, z: &[f32], delta: f32) -> Quantized {
        let half = 1i64 << (self.bits - 1);
        let (mut y, mut lower, mut upper) = (
            Vec::with_capacity(z.len()),
            Vec::with_capacity(z.len()),
            Vec::with_capacity(z.len()),
        );
        for &v in z {
            let j = ((f64::from(v) / f64::from(delta)).floor() as i64).clamp(-half, half - 1);
            y.push(((j as f64 + 0.5) * f64::from(delta)) as f32);
            lower.push(if j == -half {
                f32::NEG_INFINITY
            } else {
                (j as f64 * f64::from(delta)) as f32
            });
            upper.push(if j == half - 1 {
                f32::INFINITY
            } else {
                ((j + 1) as f64 * f64::from(delta)) as f32
            });
        }
        Quantized {
            y,
            lower,
            upper,
            delta,
        }
    }
}

impl Quantizer for UniformQuantizer {
    fn quantize(&self, z: &[f32]) -> Result<Quantized> {
        let delta = self.step_for(z)?;
        Ok(self.quantize_with_step(z, delta))
    }
}
