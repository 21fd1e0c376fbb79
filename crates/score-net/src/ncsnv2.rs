//! The NCSNv2 score network (the reference's `NCSNv2` class, for 28×28, 32×32 and 64×64 images).

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::conv::Conv2d;
use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::blocks::norm::{InstanceNorm2dPlus, InstanceNorm2dPlusConfig};
use crate::blocks::refine::{RefineBlock, RefineBlockConfig};
use crate::blocks::residual::{ResidualBlock, ResidualBlockConfig};
use crate::blocks::{conv3x3, elu};
use crate::error::ScoreNetError;

/// Configuration of an [`NcsnV2`] network. The defaults are the reference MNIST settings.
#[derive(Config, Debug)]
pub struct NcsnV2Config {
    /// Base width `g`: the network runs on `g` and `2g` feature maps.
    #[config(default = 128)]
    pub ngf: usize,
    /// Image channels `C` (1 for digits, 3 for colour images).
    #[config(default = 1)]
    pub channels: usize,
    /// Side of the square images the network is made for (even). The network itself accepts any
    /// even size; this records the size its weights were trained on.
    #[config(default = 28)]
    pub image_size: usize,
    /// Number of noise levels `L`.
    #[config(default = 232)]
    pub num_levels: usize,
    /// Largest noise level `σ_1`.
    #[config(default = 50.0)]
    pub sigma_begin: f64,
    /// Smallest noise level `σ_L`.
    #[config(default = 0.01)]
    pub sigma_end: f64,
}

/// NCSNv2: a RefineNet whose output is scaled by the noise level,
/// `s_θ(x, c) = f_θ(2x − 1) / σ_c`.
///
/// Parameter paths match the reference PyTorch state dict (see the [crate] docs for the few
/// renamed ones).
#[derive(Module, Debug)]
pub struct NcsnV2 {
    /// Noise levels `σ_1 > … > σ_L`, shape `[L]`; a buffer, not trained.
    pub sigmas: Param<Tensor<1>>,
    /// Input convolution, weight `[g, C, 3, 3]`, bias `[g]`.
    pub begin_conv: Conv2d,
    /// Two residual blocks on `g` channels at full resolution.
    pub res1: Vec<ResidualBlock>,
    /// Residual blocks `g → 2g` halving the resolution, then `2g → 2g`.
    pub res2: Vec<ResidualBlock>,
    /// Two residual blocks on `2g` channels with dilation 2.
    pub res3: Vec<ResidualBlock>,
    /// Two residual blocks on `2g` channels with dilation 4.
    pub res4: Vec<ResidualBlock>,
    /// Refines `res4`'s output, `2g` channels.
    pub refine1: RefineBlock,
    /// Fuses `res3` and `refine1`, `2g` channels.
    pub refine2: RefineBlock,
    /// Fuses `res2` and `refine2` into `g` channels.
    pub refine3: RefineBlock,
    /// Fuses `res1` and `refine3` at full resolution, `g` channels.
    pub refine4: RefineBlock,
    /// InstanceNorm++ on the `g` channels of `refine4`.
    pub normalizer: InstanceNorm2dPlus,
    /// Output convolution, weight `[C, g, 3, 3]`, bias `[C]`.
    pub end_conv: Conv2d,
}

impl NcsnV2Config {
    /// Checks that the configuration describes a network that can be built and run.
    pub fn validate(&self) -> Result<(), ScoreNetError> {
        let fail = |msg: String| Err(ScoreNetError::InvalidConfig(msg));
        if self.ngf < 2 {
            return fail(format!("ngf must be at least 2, got {}", self.ngf));
        }
        if self.channels == 0 {
            return fail("channels must be positive".into());
        }
        if self.image_size < 2 || !self.image_size.is_multiple_of(2) {
            return fail(format!(
                "image_size must be even and positive, got {}",
                self.image_size
            ));
        }
        if self.num_levels == 0 {
            return fail("num_levels must be positive".into());
        }
        let positive = |s: f64| s.is_finite() && s > 0.0;
        if !positive(self.sigma_begin) || !positive(self.sigma_end) {
            return fail(format!(
                "noise levels must be positive and finite, got {} and {}",
                self.sigma_begin, self.sigma_end
            ));
        }
        Ok(())
    }

    /// The geometric noise schedule `σ_i = exp(log σ_1 + (i − 1)/(L − 1)·(log σ_L − log σ_1))`,
    /// `i = 1..L`, computed like the reference (`np.exp(np.linspace(log σ_1, log σ_L, L))`).
    pub fn sigma_schedule(&self) -> Vec<f64> {
        let (start, stop) = (self.sigma_begin.ln(), self.sigma_end.ln());
        let last = self.num_levels.saturating_sub(1);
        let step = if last == 0 {
            0.0
        } else {
            (stop - start) / last as f64
        };
        (0..self.num_levels)
            .map(|i| {
                if i == last && last > 0 {
                    stop
                } else {
                    start + i as f64 * step
                }
            })
            .map(f64::exp)
            .collect()
    }

    /// Builds the network with the reference's initialization.
    pub fn init(&self, device: &Device) -> Result<NcsnV2, ScoreNetError> {
        self.validate()?;
        let (g, g2) = (self.ngf, 2 * self.ngf);
        let residual = |channels: [usize; 2], down: bool, dilation: Option<usize>| {
            ResidualBlockConfig::new(channels)
                .with_down(down)
                .with_dilation(dilation)
                .init(device)
        };
        let sigmas: Vec<f32> = self
            .sigma_schedule()
            .into_iter()
            .map(|s| s as f32)
            .collect();
        let sigmas = Tensor::from_data(TensorData::new(sigmas, [self.num_levels]), device);

        Ok(NcsnV2 {
            sigmas: Param::from_tensor(sigmas).set_require_grad(false),
            begin_conv: conv3x3([self.channels, g], 1).init(device),
            res1: vec![residual([g, g], false, None), residual([g, g], false, None)],
            res2: vec![
                residual([g, g2], true, None),
                residual([g2, g2], false, None),
            ],
            res3: vec![
                residual([g2, g2], true, Some(2)),
                residual([g2, g2], false, Some(2)),
            ],
            res4: vec![
                residual([g2, g2], true, Some(4)),
                residual([g2, g2], false, Some(4)),
            ],
            refine1: RefineBlockConfig::new(vec![g2], g2).init(device),
            refine2: RefineBlockConfig::new(vec![g2, g2], g2).init(device),
            refine3: RefineBlockConfig::new(vec![g2, g2], g).init(device),
            refine4: RefineBlockConfig::new(vec![g, g], g)
                .with_end(true)
                .init(device),
            normalizer: InstanceNorm2dPlusConfig::new(g).init(device),
            end_conv: conv3x3([g, self.channels], 1).init(device),
        })
    }
}

impl NcsnV2 {
    /// The score `s_θ(x, c) = f_θ(2x − 1)/σ_c` of images `x` in `[0, 1]`, shape `[B, C, H, W]`
    /// (`H`, `W` even), at the noise levels `levels` (0-based indices into [`Self::sigmas`]),
    /// shape `[B]`. The output has the shape of `x`.
    pub fn forward(&self, x: Tensor<4>, levels: Tensor<1, Int>) -> Tensor<4> {
        let [batch, _, _, _] = x.dims();
        let sigma = self
            .sigmas
            .val()
            .select(0, levels)
            .reshape([batch, 1, 1, 1]);
        self.unscaled(x.mul_scalar(2.0).sub_scalar(1.0)) / sigma
    }

    /// The noise levels `σ_1 > … > σ_L`, shape `[L]`.
    pub fn sigmas(&self) -> Tensor<1> {
        self.sigmas.val()
    }

    /// `f_θ(h)`: the RefineNet before the division by `σ`.
    fn unscaled(&self, h: Tensor<4>) -> Tensor<4> {
        let layer1 = chain(&self.res1, self.begin_conv.forward(h));
        let layer2 = chain(&self.res2, layer1.clone());
        let layer3 = chain(&self.res3, layer2.clone());
        let layer4 = chain(&self.res4, layer3.clone());

        let ref1 = self.refine1.forward(vec![layer4.clone()], spatial(&layer4));
        let ref2 = self
            .refine2
            .forward(vec![layer3.clone(), ref1], spatial(&layer3));
        let ref3 = self
            .refine3
            .forward(vec![layer2.clone(), ref2], spatial(&layer2));
        let out = self
            .refine4
            .forward(vec![layer1.clone(), ref3], spatial(&layer1));

        self.end_conv.forward(elu(self.normalizer.forward(out)))
    }
}

/// Applies residual blocks in order.
fn chain(blocks: &[ResidualBlock], x: Tensor<4>) -> Tensor<4> {
    blocks.iter().fold(x, |x, block| block.forward(x))
}

/// The `[H, W]` of a `[B, C, H, W]` tensor.
fn spatial(x: &Tensor<4>) -> [usize; 2] {
    let [_, _, height, width] = x.dims();
    [height, width]
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Distribution, Tolerance};

    fn tiny(channels: usize, image_size: usize) -> NcsnV2Config {
        NcsnV2Config::new()
            .with_ngf(8)
            .with_channels(channels)
            .with_image_size(image_size)
            .with_num_levels(10)
    }

    #[test]
    fn parameter_count_matches_the_reference() {
        // `params` of index.json for the ngf = 8 fixtures, plus the 10 entries of `sigmas`.
        let device = Device::flex();
        let mnist = tiny(1, 28).init(&device).expect("valid config");
        let cifar = tiny(3, 32).init(&device).expect("valid config");
        assert_eq!(mnist.num_params(), 117_033 + 10);
        assert_eq!(cifar.num_params(), 117_323 + 10);
    }

    #[test]
    fn sigma_schedule_is_geometric_from_begin_to_end() {
        let sigmas = tiny(1, 28).sigma_schedule();
        assert_eq!(sigmas.len(), 10);
        assert!((sigmas[0] - 50.0).abs() < 1e-12);
        assert!((sigmas[9] - 0.01).abs() < 1e-15);
        let ratio = sigmas[1] / sigmas[0];
        for pair in sigmas.windows(2) {
            assert!((pair[1] / pair[0] - ratio).abs() < 1e-12);
        }
    }

    #[test]
    fn invalid_configs_are_rejected() {
        let device = Device::flex();
        for config in [
            tiny(1, 27),
            tiny(0, 28),
            tiny(1, 28).with_ngf(1),
            tiny(1, 28).with_num_levels(0),
            tiny(1, 28).with_sigma_end(0.0),
        ] {
            assert!(matches!(
                config.init(&device),
                Err(ScoreNetError::InvalidConfig(_))
            ));
        }
    }

    #[test]
    fn output_is_divided_by_the_sigma_of_each_level() {
        let device = Device::flex();
        device.seed(11);
        let net = tiny(3, 32).init(&device).expect("valid config");
        let x = Tensor::<4>::random([1, 3, 32, 32], Distribution::Default, &device);
        let at = |level: i64| net.forward(x.clone(), Tensor::from_ints([level], &device));
        let sigmas = net
            .sigmas()
            .into_data()
            .try_to_vec::<f32>()
            .expect("f32 sigmas");
        let rescaled = at(9) * (sigmas[9] / sigmas[0]);
        rescaled
            .into_data()
            .assert_approx_eq::<f32>(&at(0).into_data(), Tolerance::relative(1e-5));
    }

    #[test]
    fn sixty_four_pixel_images_keep_their_shape() {
        let device = Device::flex();
        let net = tiny(3, 64).init(&device).expect("valid config");
        let x = Tensor::<4>::zeros([2, 3, 64, 64], &device);
        let out = net.forward(x, Tensor::from_ints([0, 5], &device));
        assert_eq!(out.dims(), [2, 3, 64, 64]);
    }
}
