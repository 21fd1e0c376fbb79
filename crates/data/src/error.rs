//! Typed errors of the data crate.

use std::path::PathBuf;

/// Everything that can go wrong while reading or writing datasets and images.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file cannot be opened or read (missing, permissions, corrupt gzip stream, …).
    #[error("cannot read `{path}`: {source}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// What the operating system or the decompressor reported.
        source: std::io::Error,
    },

    /// The file cannot be written.
    #[error("cannot write `{path}`: {source}")]
    Unwritable {
        /// The file.
        path: PathBuf,
        /// What the operating system or the encoder reported.
        source: std::io::Error,
    },

    /// An IDX file starts with another magic number than the one expected.
    #[error("`{path}` has magic number {found:#010x}, expected {expected:#010x}")]
    WrongMagic {
        /// The file.
        path: PathBuf,
        /// The magic number in the file.
        found: u32,
        /// The magic number of the expected kind of IDX file.
        expected: u32,
    },

    /// An IDX file whose data does not have the size its header announces, or shorter than its
    /// header.
    #[error("`{path}` is truncated or corrupt: {expected} bytes expected, {found} found")]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Bytes of data the header's dimensions announce (or bytes of header, if the file is
        /// shorter than its header).
        expected: u64,
        /// Bytes of data after the header (or bytes in the file).
        found: u64,
    },

    /// An IDX header whose dimensions multiply to more than memory can address.
    #[error("`{path}` announces dimensions {dims:?}, too large to hold")]
    DimensionOverflow {
        /// The file.
        path: PathBuf,
        /// The dimensions in the header.
        dims: Vec<u64>,
    },

    /// An image file that cannot be decoded.
    #[error("cannot decode image `{path}`: {reason}")]
    UnreadableImage {
        /// The image file.
        path: PathBuf,
        /// What the decoder reported.
        reason: String,
    },

    /// A folder with no PNG or JPEG file in it.
    #[error("no PNG or JPEG images in `{path}`")]
    NoImages {
        /// The folder.
        path: PathBuf,
    },

    /// An image layout, or pixels that do not fit their layout.
    #[error("invalid image layout: {0}")]
    InvalidSpec(String),
}

/// Result alias of the data crate.
pub type Result<T> = std::result::Result<T, DataError>;
