//! Measurement side of quantized compressed sensing: operators A (dense Gaussian, ill-conditioned,
//! correlated, structured DCT and Walsh–Hadamard), quantizers, noise and measurement files.
//!
//! Images are flattened channel-major (C, H, W) into rows of length N; measurements are rows of length M.

pub mod error;
pub mod file;
pub mod measurements;
pub mod noise;
pub mod operator;
pub mod quantize;
pub mod shape;
pub mod spec;

pub use error::{Result, SensingError};
pub use measurements::{simulate, simulate_from, MeasurementInfo, MeasurementSet};
pub use operator::{build_operator, operator_norm_sq, GramSpectrum, Operator, NORM_ITERATIONS};
pub use quantize::{QuantizerSpec, StepRule};
pub use shape::ImageShape;
pub use spec::{Family, OperatorSpec};
