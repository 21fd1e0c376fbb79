//! Residual convolution unit chain of RefineNet (the reference's `RCUBlock`, two stages each).

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::tensor::{Device, Tensor};

use super::activation::{add_elu, elu};
use super::conv::conv3x3;

/// Configuration of an [`RcuBlock`].
#[derive(Config, Debug)]
pub struct RcuBlockConfig {
    /// Channels `C` of input and output.
    pub features: usize,
    /// Number of residual units in the chain.
    pub n_blocks: usize,
}

/// One residual unit: `x ↦ x + conv2(elu(conv1(elu(x))))`.
#[derive(Module, Debug)]
pub struct RcuUnit {
    /// First 3×3 convolution without bias, weight `[C, C, 3, 3]` (reference `{i}_1_conv`).
    pub conv1: Conv2d,
    /// Second 3×3 convolution without bias, weight `[C, C, 3, 3]` (reference `{i}_2_conv`).
    pub conv2: Conv2d,
}

/// A chain of [`RcuUnit`]s; keeps shape `[B, C, H, W]`.
#[derive(Module, Debug)]
pub struct RcuBlock {
    /// The units in order; unit `i` is the reference's `{i+1}_{j}_conv` pair.
    pub units: Vec<RcuUnit>,
}

impl RcuBlockConfig {
    /// Builds the chain.
    pub fn init(&self, device: &Device) -> RcuBlock {
        let conv = || {
            conv3x3([self.features, self.features], 1)
                .with_bias(false)
                .init(device)
        };
        let units = (0..self.n_blocks)
            .map(|_| RcuUnit {
                conv1: conv(),
                conv2: conv(),
            })
            .collect();
        RcuBlock { units }
    }
}

impl RcuBlock {
    /// Applies the units in order to `[B, C, H, W]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let activated = elu(x.clone());
        self.chain(x, activated, false).0
    }

    /// [`Self::forward`] of `x` given `elu(x)` too.
    pub(crate) fn forward_activated(&self, x: Tensor<4>, activated: Tensor<4>) -> Tensor<4> {
        self.chain(x, activated, false).0
    }

    /// `(y, elu(y))` for `y = self.forward(x)`.
    pub(crate) fn forward_pair(&self, x: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        let activated = elu(x.clone());
        match self.chain(x, activated, true) {
            (y, Some(activated)) => (y, activated),
            (y, None) => (y.clone(), elu(y)),
        }
    }

    /// The units applied to `x` with `activated = elu(x)`. Each unit's sum is activated by the
    /// next one, so the two are [`add_elu`] (one kernel on the GPU backends); so is the last
    /// unit's when `activate_last`, which returns `elu` of the output too.
    fn chain(
        &self,
        x: Tensor<4>,
        activated: Tensor<4>,
        activate_last: bool,
    ) -> (Tensor<4>, Option<Tensor<4>>) {
        let (mut x, mut activated) = (x, activated);
        let last = self.units.len().saturating_sub(1);
        for (i, unit) in self.units.iter().enumerate() {
            let h = super::conv::apply(&unit.conv1, activated);
            let r = super::conv::apply(&unit.conv2, elu(h));
            if i == last && !activate_last {
                return (x + r, None);
            }
            (x, activated) = add_elu(x, r);
        }
        (x, Some(activated))
    }
}
