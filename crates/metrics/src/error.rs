//! Typed errors of the metrics crate.

/// Why a metric could not be computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MetricsError {
    /// A slice does not hold C·H·W values, or the shape has an empty dimension.
    #[error("{what} has {len} values, which does not fit the shape {shape:?} (C, H, W all ≥ 1)")]
    InvalidShape {
        /// Which input.
        what: &'static str,
        /// The shape [C, H, W] given.
        shape: [usize; 3],
        /// The number of values in the slice.
        len: usize,
    },
    /// The image is smaller than the SSIM window.
    #[error("SSIM needs images of at least {window}×{window} pixels, got {height}×{width}")]
    TooSmall {
        /// H.
        height: usize,
        /// W.
        width: usize,
        /// The side of the SSIM window.
        window: usize,
    },
    /// A setting that cannot work (an even window, a non-positive data range).
    #[error("invalid setting: {0}")]
    InvalidSetting(String),
}

/// Result alias of the metrics crate.
pub type Result<T> = std::result::Result<T, MetricsError>;

/// Checks that both images hold C·H·W values with C, H, W ≥ 1.
pub(crate) fn check_pair(reference: &[f32], estimate: &[f32], shape: [usize; 3]) -> Result<()> {
    let numel = shape.iter().product::<usize>();
    for (what, image) in [("reference", reference), ("estimate", estimate)] {
        if numel == 0 || image.len() != numel {
            return Err(MetricsError::InvalidShape {
                what,
                shape,
                len: image.len(),
            });
        }
    }
    Ok(())
}
