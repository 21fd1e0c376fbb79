//! Image shapes: the C×H×W layout every operator and measurement file refers to.

use serde::{Deserialize, Serialize};

use crate::error::{Result, SensingError};

/// The shape of one image, flattened channel-major (C, then H, then W) into N = C·H·W values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageShape {
    /// Channels (1 for grayscale, 3 for RGB).
    pub channels: usize,
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
}

impl ImageShape {
    /// A shape, rejecting empty dimensions.
    pub fn new(channels: usize, height: usize, width: usize) -> Result<Self> {
        if channels == 0 || height == 0 || width == 0 {
            return Err(SensingError::InvalidSetting(format!(
                "image shape {channels}×{height}×{width} has an empty dimension"
            )));
        }
        Ok(Self {
            channels,
            height,
            width,
        })
    }

    /// N = C·H·W, the length of the flattened image.
    pub fn numel(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// Pixels per channel, H·W.
    pub fn plane(&self) -> usize {
        self.height * self.width
    }

    /// The shape as `[C, H, W]`.
    pub fn dims(&self) -> [usize; 3] {
        [self.channels, self.height, self.width]
    }
}

impl std::fmt::Display for ImageShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}×{}×{}", self.channels, self.height, self.width)
    }
}
