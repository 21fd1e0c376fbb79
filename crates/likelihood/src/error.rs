//! Typed errors of the likelihood crate.

use qcs_sensing::SensingError;

/// What can go wrong while evaluating a likelihood score.
#[derive(Debug, thiserror::Error)]
pub enum LikelihoodError {
    /// x_t and the measurements disagree in batch size or length.
    #[error("shape mismatch in {what}: expected {expected:?}, found {found:?}")]
    ShapeMismatch {
        /// What was being checked.
        what: String,
        /// The expected shape.
        expected: Vec<usize>,
        /// The shape that was given.
        found: Vec<usize>,
    },
    /// A setting that cannot work (negative σ_t, zero iterations, a score that needs quantized data).
    #[error("invalid setting: {0}")]
    InvalidSetting(String),
    /// The operator failed (for example its Gram eigendecomposition).
    #[error(transparent)]
    Sensing(#[from] SensingError),
}

/// Result alias of the likelihood crate.
pub type Result<T> = std::result::Result<T, LikelihoodError>;
