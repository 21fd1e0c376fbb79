//! Convolution configurations shared by the NCSNv2 blocks.

use burn::nn::conv::Conv2dConfig;
use burn::nn::PaddingConfig2d;

/// A 3×3 convolution `[in, out]` with dilation `d` and padding `d`, so the spatial size is kept.
///
/// The reference's `conv3x3` is the case `d = 1`, its `dilated_conv3x3` the case `d > 1`.
pub(crate) fn conv3x3(channels: [usize; 2], dilation: usize) -> Conv2dConfig {
    Conv2dConfig::new(channels, [3, 3])
        .with_dilation([dilation, dilation])
        .with_padding(PaddingConfig2d::Explicit(
            dilation, dilation, dilation, dilation,
        ))
}
