//! The NCSNv2 score network: the reference's `NCSNv2` class (28×28 to 64×64 images) and its
//! `NCSNv2Deepest` class (256×256 images), one Rust type for both.

use burn::config::Config;
use burn::module::{Module, ModuleMapper, Param};
use burn::nn::conv::Conv2d;
use burn::tensor::{DType, Device, FloatDType, Int, Tensor, TensorData};

use crate::blocks::conv;
use crate::blocks::conv3x3;
use crate::blocks::norm::{InstanceNorm2dPlus, InstanceNorm2dPlusConfig};
use crate::blocks::refine::{RefineBlock, RefineBlockConfig};
use crate::blocks::residual::{ResidualBlock, ResidualBlockConfig};
use crate::error::ScoreNetError;

/// Configuration of an [`NcsnV2`] network. The defaults are the reference MNIST settings.
#[derive(Config, Debug)]
pub struct NcsnV2Config {
    /// Base width `g`: the network runs on `g` and `2g` feature maps (and `4g` for
    /// [`Architecture::NcsnV2Deepest`]).
    #[config(default = 128)]
    pub ngf: usize,
    /// Image channels `C` (1 for digits, 3 for colour images).
    #[config(default = 1)]
    pub channels: usize,
    /// Side of the square images the network is made for. It picks the [`Architecture`] and
    /// must be a multiple of its [`Architecture::size_multiple`]; the network itself accepts
    /// any such size, this records the size its weights were trained on.
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

/// The RefineNet topology of an [`NcsnV2`]. The reference picks it by data set; qcs picks it by
/// image size, which singles out the same data sets (FFHQ is the reference's only 256×256 one).
/// The reference's `NCSNv2Deeper` (its 96×96 and 128×128 LSUN sets) is not implemented: those
/// sizes get [`Architecture::NcsnV2`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Architecture {
    /// The reference's `NCSNv2`: stages `res1..res4` on `g` and `2g` channels with one
    /// halving of the resolution, refine blocks `refine1..refine4`.
    NcsnV2,
    /// The reference's `NCSNv2Deepest`: stages `res1, res2, res3, res31, res4, res5` on `g`,
    /// `2g` and `4g` channels with three halvings, refine blocks
    /// `refine1, refine2, refine31, refine3, refine4, refine5`.
    NcsnV2Deepest,
}

impl Architecture {
    /// Smallest image side that gets [`Architecture::NcsnV2Deepest`].
    pub const DEEPEST_FROM: usize = 256;

    /// The topology for square images of side `image_size`.
    pub fn for_image_size(image_size: usize) -> Self {
        if image_size >= Self::DEEPEST_FROM {
            Self::NcsnV2Deepest
        } else {
            Self::NcsnV2
        }
    }

    /// What image sides must be a multiple of: `2^h` for `h` halvings of the resolution.
    pub fn size_multiple(self) -> usize {
        match self {
            Self::NcsnV2 => 2,
            Self::NcsnV2Deepest => 8,
        }
    }
}

/// NCSNv2: a RefineNet whose output is scaled by the noise level,
/// `s_θ(x, c) = f_θ(2x − 1) / σ_c`.
///
/// Residual stages take the image down to coarse, wide features; refine blocks take them back
/// up, each fusing one stage's output with the previous block's. The fields marked "Deepest
/// only" are `None` in the [`Architecture::NcsnV2`] topology. Parameter paths match the
/// reference PyTorch state dict of either class (see the [crate] docs for the few renamed ones).
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
    /// Two residual blocks on `2g` channels: with dilation 2 (NCSNv2), or the first halving
    /// the resolution (Deepest).
    pub res3: Vec<ResidualBlock>,
    /// Deepest only: two residual blocks on `2g` channels, the first halving the resolution.
    pub res31: Option<Vec<ResidualBlock>>,
    /// Two residual blocks on `2g` channels with dilation 4 (NCSNv2), or `2g → 4g` then
    /// `4g → 4g` with dilation 2 (Deepest).
    pub res4: Vec<ResidualBlock>,
    /// Deepest only: two residual blocks on `4g` channels with dilation 4.
    pub res5: Option<Vec<ResidualBlock>>,
    /// Refines the last stage's output: `2g` channels (NCSNv2), `4g` (Deepest).
    pub refine1: RefineBlock,
    /// Fuses `refine1` with `res3` into `2g` channels (NCSNv2), or with `res4` from `4g` into
    /// `2g` channels (Deepest).
    pub refine2: RefineBlock,
    /// Deepest only: fuses `refine2` with `res31`, `2g` channels.
    pub refine31: Option<RefineBlock>,
    /// Fuses `refine2` with `res2` into `g` channels (NCSNv2), or `refine31` with `res3`,
    /// `2g` channels (Deepest).
    pub refine3: RefineBlock,
    /// Fuses `refine3` with `res1` at full resolution, `g` channels, the last block (NCSNv2);
    /// or with `res2` from `2g` into `g` channels (Deepest).
    pub refine4: RefineBlock,
    /// Deepest only: fuses `refine4` with `res1` at full resolution, `g` channels, the last
    /// block.
    pub refine5: Option<RefineBlock>,
    /// InstanceNorm++ on the `g` channels of the last refine block.
    pub normalizer: InstanceNorm2dPlus,
    /// Output convolution, weight `[C, g, 3, 3]`, bias `[C]`.
    pub end_conv: Conv2d,
}

impl NcsnV2Config {
    /// The topology of the network, picked by [`Self::image_size`].
    pub fn architecture(&self) -> Architecture {
        Architecture::for_image_size(self.image_size)
    }

    /// Checks that the configuration describes a network that can be built and run.
    pub fn validate(&self) -> Result<(), ScoreNetError> {
        let fail = |msg: String| Err(ScoreNetError::InvalidConfig(msg));
        if self.ngf < 2 {
            return fail(format!("ngf must be at least 2, got {}", self.ngf));
        }
        if self.channels == 0 {
            return fail("channels must be positive".into());
        }
        let multiple = self.architecture().size_multiple();
        if self.image_size < multiple || !self.image_size.is_multiple_of(multiple) {
            return fail(format!(
                "image_size must be a positive multiple of {multiple} for {:?}, got {}",
                self.architecture(),
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

    /// Builds the network of [`Self::architecture`] with the reference's initialization.
    pub fn init(&self, device: &Device) -> Result<NcsnV2, ScoreNetError> {
        self.validate()?;
        Ok(match self.architecture() {
            Architecture::NcsnV2 => self.init_ncsnv2(device),
            Architecture::NcsnV2Deepest => self.init_deepest(device),
        })
    }

    /// The reference's `NCSNv2.__init__`.
    fn init_ncsnv2(&self, device: &Device) -> NcsnV2 {
        let (g, g2) = (self.ngf, 2 * self.ngf);
        NcsnV2 {
            sigmas: self.sigmas(device),
            begin_conv: conv3x3([self.channels, g], 1).init(device),
            res1: stage([g, g], false, None, device),
            res2: stage([g, g2], true, None, device),
            res3: stage([g2, g2], true, Some(2), device),
            res31: None,
            res4: stage([g2, g2], true, Some(4), device),
            res5: None,
            refine1: refine(&[g2], g2, device),
            refine2: refine(&[g2, g2], g2, device),
            refine31: None,
            refine3: refine(&[g2, g2], g, device),
            refine4: last_refine(g, device),
            refine5: None,
            normalizer: InstanceNorm2dPlusConfig::new(g).init(device),
            end_conv: conv3x3([g, self.channels], 1).init(device),
        }
    }

    /// The reference's `NCSNv2Deepest.__init__`.
    fn init_deepest(&self, device: &Device) -> NcsnV2 {
        let (g, g2, g4) = (self.ngf, 2 * self.ngf, 4 * self.ngf);
        NcsnV2 {
            sigmas: self.sigmas(device),
            begin_conv: conv3x3([self.channels, g], 1).init(device),
            res1: stage([g, g], false, None, device),
            res2: stage([g, g2], true, None, device),
            res3: stage([g2, g2], true, None, device),
            res31: Some(stage([g2, g2], true, None, device)),
            res4: stage([g2, g4], true, Some(2), device),
            res5: Some(stage([g4, g4], true, Some(4), device)),
            refine1: refine(&[g4], g4, device),
            refine2: refine(&[g4, g4], g2, device),
            refine31: Some(refine(&[g2, g2], g2, device)),
            refine3: refine(&[g2, g2], g2, device),
            refine4: refine(&[g2, g2], g, device),
            refine5: Some(last_refine(g, device)),
            normalizer: InstanceNorm2dPlusConfig::new(g).init(device),
            end_conv: conv3x3([g, self.channels], 1).init(device),
        }
    }

    /// The noise levels as an untrained parameter, shape `[L]`.
    pub(crate) fn sigmas(&self, device: &Device) -> Param<Tensor<1>> {
        let sigmas: Vec<f32> = self
            .sigma_schedule()
            .into_iter()
            .map(|s| s as f32)
            .collect();
        let sigmas = Tensor::from_data(TensorData::new(sigmas, [self.num_levels]), device);
        Param::from_tensor(sigmas).set_require_grad(false)
    }
}

/// A stage of two residual blocks: `C_in → C_out` (halving the resolution if `down` without
/// `dilation`), then `C_out → C_out`, both with `dilation`.
fn stage(
    channels: [usize; 2],
    down: bool,
    dilation: Option<usize>,
    device: &Device,
) -> Vec<ResidualBlock> {
    let block = |channels, down| {
        ResidualBlockConfig::new(channels)
            .with_down(down)
            .with_dilation(dilation)
            .init(device)
    };
    vec![block(channels, down), block([channels[1]; 2], false)]
}

/// A refine block fusing paths of `in_planes` channels into `features` channels.
fn refine(in_planes: &[usize], features: usize, device: &Device) -> RefineBlock {
    RefineBlockConfig::new(in_planes.to_vec(), features).init(device)
}

/// The last refine block: two paths of `g` channels into `g`, with the longer output chain.
fn last_refine(g: usize, device: &Device) -> RefineBlock {
    RefineBlockConfig::new(vec![g, g], g)
        .with_end(true)
        .init(device)
}

impl NcsnV2 {
    /// The score `s_θ(x, c) = f_θ(2x − 1)/σ_c` of images `x` in `[0, 1]`, shape `[B, C, H, W]`
    /// (`H`, `W` multiples of the architecture's [`Architecture::size_multiple`]), at the noise
    /// levels `levels` (0-based indices into [`Self::sigmas`]), shape `[B]`. The output has the
    /// shape of `x`.
    ///
    /// A network cast to 16-bit floats ([`Self::with_precision`]) computes in that precision but
    /// takes and returns f32, like an f32 one.
    pub fn forward(&self, x: Tensor<4>, levels: Tensor<1, Int>) -> Tensor<4> {
        let [batch, _, _, _] = x.dims();
        let sigma = self
            .sigmas
            .val()
            .select(0, levels)
            .reshape([batch, 1, 1, 1]);
        let dtype = self.float_dtype();
        let h = x.mul_scalar(2.0).sub_scalar(1.0);
        let out = if dtype == DType::F32 {
            self.unscaled(h)
        } else {
            self.unscaled(h.cast(FloatDType::from(dtype)))
                .cast(FloatDType::F32)
        };
        out / sigma
    }

    /// The network with every weight cast to `precision` (f16 or bf16 halve the memory traffic of
    /// inference; f32 undoes a cast up to its rounding). The noise levels and InstanceNorm++'s
    /// parameters stay f32 (it computes its statistics in f32 whatever the input's type, and a
    /// 16-bit copy would be cast back in every forward: 51 launches), and [`Self::forward`] still
    /// takes and returns f32. For inference: training keeps f32.
    ///
    /// # Errors
    /// [`ScoreNetError::UnsupportedPrecision`] if the network's device has no arithmetic in
    /// `precision` (burn's ndarray backend has none in 16 bits).
    pub fn with_precision(self, precision: FloatDType) -> Result<Self, ScoreNetError> {
        let device = self.sigmas.val().device();
        if !device.supports_dtype(DType::from(precision)) {
            return Err(ScoreNetError::UnsupportedPrecision {
                device: format!("{device:?}"),
                precision: format!("{precision:?}").to_lowercase(),
            });
        }
        /// Casts every parameter to `dtype`, those of InstanceNorm++ (`norms` deep inside one) to
        /// f32.
        struct Cast {
            dtype: FloatDType,
            norms: usize,
        }
        const NORM: &str = "Struct:InstanceNorm2dPlus";
        impl ModuleMapper for Cast {
            fn enter_module(&mut self, _name: &str, container_type: &str) {
                if container_type == NORM {
                    self.norms += 1;
                }
            }
            fn exit_module(&mut self, _name: &str, container_type: &str) {
                if container_type == NORM {
                    self.norms -= 1;
                }
            }
            fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
                let dtype = if self.norms > 0 {
                    FloatDType::F32
                } else {
                    self.dtype
                };
                param.map(|t| t.cast(dtype))
            }
        }
        let sigmas = self.sigmas.clone();
        let mut net = self.map(&mut Cast {
            dtype: precision,
            norms: 0,
        });
        net.sigmas = sigmas;
        Ok(net)
    }

    /// The network with every convolution weight stored channels-last in memory (its logical
    /// shape unchanged), the layout burn's direct convolution reads on the GPU backends, so that
    /// a forward pass no longer copies each weight into it (one launch per convolution; a third of
    /// those left at batch 1 after the fused kernels, docs/BENCHMARKS.md). For sampling, and for
    /// training: a network on an autodiff device keeps its autodiff association, checkpointing
    /// strategy and tracked parameters, and the fused Adam keeps each parameter's layout
    /// (`train::cube`). The identity on the CPU backends and in builds without the `cube`
    /// feature.
    pub fn with_channels_last_weights(self) -> Self {
        #[cfg(feature = "cube")]
        {
            struct ChannelsLast;
            impl ModuleMapper for ChannelsLast {
                fn map_float<const D: usize>(
                    &mut self,
                    param: Param<Tensor<D>>,
                ) -> Param<Tensor<D>> {
                    param.map(|t| {
                        if !t.is_autodiff() {
                            return crate::blocks::cube::channels_last(t);
                        }
                        let strategy = t.gradient_checkpointing_strategy();
                        let tracked = t.is_require_grad();
                        let t = crate::blocks::cube::channels_last(t.inner()).autodiff();
                        let t = match strategy {
                            Some(strategy) => t.with_gradient_checkpointing_strategy(strategy),
                            None => t,
                        };
                        if tracked {
                            t.require_grad()
                        } else {
                            t
                        }
                    })
                }
            }
            self.map(&mut ChannelsLast)
        }
        #[cfg(not(feature = "cube"))]
        self
    }

    /// The float type the network computes in: that of its weights.
    pub fn float_dtype(&self) -> DType {
        self.begin_conv.weight.val().dtype()
    }

    /// The noise levels `σ_1 > … > σ_L`, shape `[L]`.
    pub fn sigmas(&self) -> Tensor<1> {
        self.sigmas.val()
    }

    /// `f_θ(h)`: the RefineNet before the division by `σ`. The stages run from the input down;
    /// the first refine block takes the last stage's output, and each further one fuses the
    /// previous block's output with the output of the stage one level up.
    fn unscaled(&self, h: Tensor<4>) -> Tensor<4> {
        let mut layers = Vec::new();
        let mut h = conv::apply(&self.begin_conv, h);
        for stage in self.stages() {
            h = chain(stage, h);
            layers.push(h.clone());
        }
        let mut refined: Option<Tensor<4>> = None;
        for (layer, block) in layers.into_iter().rev().zip(self.refine_blocks()) {
            let size = spatial(&layer);
            let paths = match refined {
                None => vec![layer],
                Some(previous) => vec![layer, previous],
            };
            refined = Some(block.forward(paths, size));
        }
        let out = refined.expect("an NCSNv2 has refine blocks");
        conv::apply(&self.end_conv, self.normalizer.forward_elu(out))
    }

    /// The residual stages from the input down: `res1, res2, res3, [res31], res4, [res5]`.
    fn stages(&self) -> Vec<&[ResidualBlock]> {
        [
            Some(&self.res1),
            Some(&self.res2),
            Some(&self.res3),
            self.res31.as_ref(),
            Some(&self.res4),
            self.res5.as_ref(),
        ]
        .into_iter()
        .flatten()
        .map(Vec::as_slice)
        .collect()
    }

    /// The refine blocks from the coarsest up:
    /// `refine1, refine2, [refine31], refine3, refine4, [refine5]`.
    fn refine_blocks(&self) -> Vec<&RefineBlock> {
        [
            Some(&self.refine1),
            Some(&self.refine2),
            self.refine31.as_ref(),
            Some(&self.refine3),
            Some(&self.refine4),
            self.refine5.as_ref(),
        ]
        .into_iter()
        .flatten()
        .collect()
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
    fn deepest_is_picked_for_images_of_256_pixels_and_more() {
        for (size, architecture) in [
            (28, Architecture::NcsnV2),
            (64, Architecture::NcsnV2),
            (128, Architecture::NcsnV2),
            (256, Architecture::NcsnV2Deepest),
        ] {
            assert_eq!(tiny(3, size).architecture(), architecture, "{size}");
        }
    }

    #[test]
    fn deepest_needs_a_side_divisible_by_eight() {
        let device = Device::flex();
        assert!(matches!(
            tiny(3, 260).init(&device),
            Err(ScoreNetError::InvalidConfig(_))
        ));
    }

    #[test]
    fn deepest_forward_is_the_reference_forward() {
        // The reference's `NCSNv2Deepest.forward`, line by line, on 32×32 images (the network
        // runs on any side divisible by 8).
        let device = Device::flex();
        device.seed(23);
        let net = tiny(3, 256)
            .with_ngf(4)
            .init(&device)
            .expect("valid config");
        let x = Tensor::<4>::random([2, 3, 32, 32], Distribution::Default, &device);
        let levels = Tensor::<1, Int>::from_ints([0, 7], &device);
        let deep = |blocks: &Option<Vec<ResidualBlock>>| blocks.clone().expect("a Deepest stage");
        let deep_refine = |block: &Option<RefineBlock>| block.clone().expect("a Deepest block");

        let output = net.begin_conv.forward(x.clone() * 2.0 - 1.0);
        let layer1 = chain(&net.res1, output);
        let layer2 = chain(&net.res2, layer1.clone());
        let layer3 = chain(&net.res3, layer2.clone());
        let layer31 = chain(&deep(&net.res31), layer3.clone());
        let layer4 = chain(&net.res4, layer31.clone());
        let layer5 = chain(&deep(&net.res5), layer4.clone());
        let ref1 = net.refine1.forward(vec![layer5.clone()], spatial(&layer5));
        let ref2 = net
            .refine2
            .forward(vec![layer4.clone(), ref1], spatial(&layer4));
        let ref31 =
            deep_refine(&net.refine31).forward(vec![layer31.clone(), ref2], spatial(&layer31));
        let ref3 = net
            .refine3
            .forward(vec![layer3.clone(), ref31], spatial(&layer3));
        let ref4 = net
            .refine4
            .forward(vec![layer2.clone(), ref3], spatial(&layer2));
        let output =
            deep_refine(&net.refine5).forward(vec![layer1.clone(), ref4], spatial(&layer1));
        let output = net.end_conv.forward(net.normalizer.forward_elu(output));
        let sigmas = net.sigmas().select(0, levels.clone()).reshape([2, 1, 1, 1]);
        let expected = output / sigmas;

        assert_eq!(spatial(&layer31), [4, 4]);
        assert_eq!(spatial(&layer5), [4, 4]);
        net.forward(x, levels)
            .into_data()
            .assert_eq(&expected.into_data(), true);
    }

    #[test]
    fn deepest_stages_have_the_reference_dilations() {
        // Dilation leaves no trace in the state dict: res4 has 2, res5 has 4, the rest none.
        let net = tiny(3, 256)
            .with_ngf(2)
            .init(&Device::flex())
            .expect("valid config");
        let deep = |blocks: &Option<Vec<ResidualBlock>>| blocks.clone().expect("a Deepest stage");
        for (stage, dilation) in [
            (net.res1, 1),
            (net.res2, 1),
            (net.res3, 1),
            (deep(&net.res31), 1),
            (net.res4, 2),
            (deep(&net.res5), 4),
        ] {
            for block in stage {
                assert_eq!(block.conv1.dilation, [dilation; 2]);
            }
        }
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
