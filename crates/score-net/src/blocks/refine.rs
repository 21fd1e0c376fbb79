//! RefineNet block of NCSNv2 (the reference's unconditional `RefineBlock`).

use burn::config::Config;
use burn::module::Module;
use burn::tensor::{Device, Tensor};

use super::crp::{CrpBlock, CrpBlockConfig};
use super::msf::{MsfBlock, MsfBlockConfig};
use super::rcu::{RcuBlock, RcuBlockConfig};

/// Configuration of a [`RefineBlock`].
#[derive(Config, Debug)]
pub struct RefineBlockConfig {
    /// Channels `C_i` of each input path; with a single path, `C_0` must equal `features`.
    pub in_planes: Vec<usize>,
    /// Channels `F` of the output.
    pub features: usize,
    /// The last block of the network, whose output chain has three residual units instead of one.
    #[config(default = false)]
    pub end: bool,
}

/// `output_convs(crp(msf(adapt_convs_i(x_i))))`; with a single path there is no fusion.
#[derive(Module, Debug)]
pub struct RefineBlock {
    /// Two residual units per input path, `C_i` channels each.
    pub adapt_convs: Vec<RcuBlock>,
    /// Fusion of the paths to `F` channels; `None` for a single path.
    pub msf: Option<MsfBlock>,
    /// Chained residual pooling on `F` channels.
    pub crp: CrpBlock,
    /// One residual unit on `F` channels (three for the `end` block).
    pub output_convs: RcuBlock,
}

impl RefineBlockConfig {
    /// Builds the block.
    pub fn init(&self, device: &Device) -> RefineBlock {
        let adapt_convs = self
            .in_planes
            .iter()
            .map(|&planes| RcuBlockConfig::new(planes, 2).init(device))
            .collect();
        let msf = (self.in_planes.len() > 1)
            .then(|| MsfBlockConfig::new(self.in_planes.clone(), self.features).init(device));
        let output_blocks = if self.end { 3 } else { 1 };
        RefineBlock {
            adapt_convs,
            msf,
            crp: CrpBlockConfig::new(self.features).init(device),
            output_convs: RcuBlockConfig::new(self.features, output_blocks).init(device),
        }
    }
}

impl RefineBlock {
    /// Refines the paths `xs[i]` of shape `[B, C_i, H_i, W_i]` into `[B, F, H, W]`,
    /// `[H, W] = size`.
    ///
    /// # Panics
    /// If `xs` does not hold one tensor per path.
    pub fn forward(&self, xs: Vec<Tensor<4>>, size: [usize; 2]) -> Tensor<4> {
        assert_eq!(
            xs.len(),
            self.adapt_convs.len(),
            "one input per refine path"
        );
        // Every sum that an ELU follows is `add_elu` (one kernel on the GPU backends): the last
        // one of the fusion (or of the single path's units) with the CRP's first ELU, and the
        // CRP's last with the output units' first.
        let activated = match &self.msf {
            Some(msf) => {
                let hs = self
                    .adapt_convs
                    .iter()
                    .zip(xs)
                    .map(|(rcu, x)| rcu.forward(x))
                    .collect();
                msf.forward_activated(hs, size)
            }
            None => {
                let x = xs.into_iter().next().expect("one input per refine path");
                self.adapt_convs[0].forward_pair(x).1
            }
        };
        let (h, h_activated) = self.crp.forward_activated_pair(activated);
        self.output_convs.forward_activated(h, h_activated)
    }
}
