//! Typed errors of the sensing crate.

use std::path::PathBuf;

/// Everything that can go wrong while building operators, quantizing or reading measurement files.
#[derive(Debug, thiserror::Error)]
pub enum SensingError {
    /// An operator, quantizer or noise setting that cannot work.
    #[error("invalid setting: {0}")]
    InvalidSetting(String),
    /// A tensor or vector whose size does not fit the operator or the image.
    #[error("shape mismatch in {what}: expected {expected:?}, found {found:?}")]
    ShapeMismatch {
        /// What was being checked.
        what: String,
        /// The expected shape.
        expected: Vec<usize>,
        /// The shape that was given.
        found: Vec<usize>,
    },
    /// A NaN or infinity where only finite numbers are allowed.
    #[error("non-finite value in {what} at index {index}")]
    NonFinite {
        /// Which tensor holds the value.
        what: String,
        /// Flat index of the first offending value.
        index: usize,
    },
    /// A matrix family name that qcs does not know.
    #[error("unknown operator family `{0}` (expected gaussian, ill-conditioned, correlated, dct or hadamard)")]
    UnknownFamily(String),
    /// A bit depth outside 1..=8.
    #[error("bits must be between 1 and 8, got {0}")]
    BitsOutOfRange(u32),
    /// A dense linear-algebra step (QR, eigendecomposition) that did not converge.
    #[error("linear algebra failed: {0}")]
    LinearAlgebra(String),
    /// Reading or writing a file failed at the operating-system level.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A measurement file that is truncated, corrupt or not a qcs measurement file.
    #[error("{path}: not a valid qcs measurement file: {reason}")]
    CorruptFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A measurement file written by a newer or unknown format version.
    #[error(
        "{path}: unsupported measurement file version {found} (this qcs reads version {supported})"
    )]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version found in the file.
        found: String,
        /// The version this build reads.
        supported: u32,
    },
}

/// Result alias of the sensing crate.
pub type Result<T> = std::result::Result<T, SensingError>;

/// Checks that every value is finite, naming the tensor and the first bad index otherwise.
pub fn ensure_finite(what: &str, values: &[f32]) -> Result<()> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(SensingError::NonFinite {
            what: what.to_string(),
            index,
        }),
        None => Ok(()),
    }
}
