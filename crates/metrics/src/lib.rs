//! Image quality metrics for qcs, computed as the papers compute them (ALGORITHM.md §7):
//!
//! - [`psnr`]: 10·log10(1/MSE) for images in [0, 1], MSE over all C·H·W values.
//! - [`ssim`]: scikit-image's `structural_similarity(data_range=1)` with its defaults (7×7 uniform window,
//!   sample covariance, K1 = 0.01, K2 = 0.03, mean over the valid region), averaged over channels.
//!
//! Images are f32 slices laid out channel-major with shape [C, H, W].

pub mod error;
pub mod psnr;
pub mod ssim;

pub use error::{MetricsError, Result};
pub use psnr::{mse, psnr};
pub use ssim::{ssim, SsimConfig};
