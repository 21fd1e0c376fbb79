//! Typed errors of the baselines crate.

use qcs_sensing::SensingError;

/// What can go wrong in a baseline reconstruction.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    /// The measurements were not made with the given operator.
    #[error("the measurements were made with {measured} but the operator is {operator}")]
    OperatorMismatch {
        /// The operator recorded with the measurements.
        measured: String,
        /// The operator that was given.
        operator: String,
    },
    /// A setting that cannot work (zero iterations, a sparsity of 0, a step that is not positive).
    #[error("invalid setting: {0}")]
    InvalidSetting(String),
    /// The measurement set is inconsistent, or the operator failed.
    #[error(transparent)]
    Sensing(#[from] SensingError),
}

/// Result alias of the baselines crate.
pub type Result<T> = std::result::Result<T, BaselineError>;
