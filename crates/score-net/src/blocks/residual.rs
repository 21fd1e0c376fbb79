//! Pre-activation residual block of NCSNv2 (the reference's unconditional `ResidualBlock`).

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::tensor::{Device, Tensor};

use super::conv::conv3x3;
use super::conv_mean_pool::{ConvMeanPool, ConvMeanPoolConfig};
use super::norm::{InstanceNorm2dPlus, InstanceNorm2dPlusConfig};

/// Configuration of a [`ResidualBlock`].
#[derive(Config, Debug)]
pub struct ResidualBlockConfig {
    /// Input and output channels `[C_in, C_out]`.
    pub channels: [usize; 2],
    /// The reference's `resample='down'`: halves the resolution with [`ConvMeanPool`], unless
    /// `dilation` is set, in which case it only moves the channel change to the second convolution
    /// and forces a convolutional shortcut.
    #[config(default = false)]
    pub down: bool,
    /// Dilation of both 3×3 convolutions (and of the shortcut); `None` means 1.
    #[config(default = "None")]
    pub dilation: Option<usize>,
}

/// A convolution that either keeps the resolution or halves it.
#[derive(Module, Debug)]
pub enum ResampleConv {
    /// Plain convolution, weight `[C_out, C_in, k, k]`, bias `[C_out]`.
    Same(Conv2d),
    /// Convolution then 2×2 mean pooling.
    Down(ConvMeanPool),
}

impl ResampleConv {
    /// Applies the convolution to `[B, C_in, H, W]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Self::Same(conv) => super::conv::apply(conv, x),
            Self::Down(conv) => conv.forward(x),
        }
    }
}

/// `x ↦ shortcut(x) + conv2(elu(norm2(conv1(elu(norm1(x))))))`.
#[derive(Module, Debug)]
pub struct ResidualBlock {
    /// InstanceNorm++ over the `C_in` input channels.
    pub normalize1: InstanceNorm2dPlus,
    /// First 3×3 convolution, weight `[C_mid, C_in, 3, 3]`, where `C_mid` is `C_in` for `down`
    /// blocks and `C_out` otherwise.
    pub conv1: Conv2d,
    /// InstanceNorm++ over the `C_mid` channels.
    pub normalize2: InstanceNorm2dPlus,
    /// Second 3×3 convolution `C_mid → C_out` (with mean pooling for undilated `down` blocks).
    pub conv2: ResampleConv,
    /// Shortcut `C_in → C_out`; `None` (identity) when the block changes neither channels nor
    /// resolution.
    pub shortcut: Option<ResampleConv>,
}

impl ResidualBlockConfig {
    /// Builds the block with the reference's layer choices.
    pub fn init(&self, device: &Device) -> ResidualBlock {
        let [c_in, c_out] = self.channels;
        let c_mid = if self.down { c_in } else { c_out };
        let dilation = self.dilation.unwrap_or(1);

        let conv2 = match (self.down, self.dilation) {
            (true, None) => {
                ResampleConv::Down(ConvMeanPoolConfig::new([c_mid, c_out]).init(device))
            }
            _ => ResampleConv::Same(conv3x3([c_mid, c_out], dilation).init(device)),
        };
        let needs_shortcut = c_in != c_out || self.down;
        let shortcut = needs_shortcut.then(|| match (self.down, self.dilation) {
            (true, None) => ResampleConv::Down(
                ConvMeanPoolConfig::new([c_in, c_out])
                    .with_kernel_size(1)
                    .init(device),
            ),
            (_, Some(d)) => ResampleConv::Same(conv3x3([c_in, c_out], d).init(device)),
            (false, None) => {
                ResampleConv::Same(Conv2dConfig::new([c_in, c_out], [1, 1]).init(device))
            }
        });

        ResidualBlock {
            normalize1: InstanceNorm2dPlusConfig::new(c_in).init(device),
            conv1: conv3x3([c_in, c_mid], dilation).init(device),
            normalize2: InstanceNorm2dPlusConfig::new(c_mid).init(device),
            conv2,
            shortcut,
        }
    }
}

impl ResidualBlock {
    /// Maps `[B, C_in, H, W]` to `[B, C_out, H', W']` (`H' = H/2` for undilated `down` blocks).
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let h = super::conv::apply(&self.conv1, self.normalize1.forward_elu(x.clone()));
        let h = self.conv2.forward(self.normalize2.forward_elu(h));
        let skip = match &self.shortcut {
            Some(shortcut) => shortcut.forward(x),
            None => x,
        };
        skip + h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output_dims(config: ResidualBlockConfig) -> [usize; 4] {
        let device = Device::flex();
        let x = Tensor::<4>::ones([2, config.channels[0], 14, 14], &device);
        config.init(&device).forward(x).dims()
    }

    #[test]
    fn undilated_down_block_halves_the_resolution() {
        let config = ResidualBlockConfig::new([4, 8]).with_down(true);
        assert_eq!(output_dims(config), [2, 8, 7, 7]);
    }

    #[test]
    fn dilated_down_block_keeps_the_resolution() {
        let config = ResidualBlockConfig::new([8, 8])
            .with_down(true)
            .with_dilation(Some(2));
        assert_eq!(output_dims(config), [2, 8, 14, 14]);
    }

    #[test]
    fn shortcut_is_identity_only_without_resampling_or_channel_change() {
        let device = Device::flex();
        let plain = ResidualBlockConfig::new([8, 8]).with_dilation(Some(4));
        let down = ResidualBlockConfig::new([8, 8])
            .with_dilation(Some(4))
            .with_down(true);
        assert!(plain.init(&device).shortcut.is_none());
        assert!(down.init(&device).shortcut.is_some());
    }
}
