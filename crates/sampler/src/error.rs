//! Typed errors of the sampler crate.

use qcs_likelihood::LikelihoodError;

/// What can go wrong while sampling.
#[derive(Debug, thiserror::Error)]
pub enum SamplerError {
    /// A Langevin setting that cannot work (no steps, a negative ε, more levels than the prior has, …).
    #[error("invalid sampler setting: {0}")]
    InvalidConfig(String),
    /// The prior's noise levels are unusable (empty, non-positive, increasing).
    #[error("invalid prior noise levels: {0}")]
    InvalidLevels(String),
    /// Images, prior, operator and measurements disagree in shape or batch size.
    #[error("shape mismatch in {what}: expected {expected:?}, found {found:?}")]
    ShapeMismatch {
        /// What was being checked.
        what: String,
        /// The expected shape.
        expected: Vec<usize>,
        /// The shape that was given.
        found: Vec<usize>,
    },
    /// Reading a tensor back to the host failed.
    #[error("reading {what} back from the device: {message}")]
    ReadBack {
        /// What was being read.
        what: String,
        /// The backend's message.
        message: String,
    },
    /// The likelihood score failed.
    #[error(transparent)]
    Likelihood(#[from] LikelihoodError),
}

/// Result alias of the sampler crate.
pub type Result<T> = std::result::Result<T, SamplerError>;
