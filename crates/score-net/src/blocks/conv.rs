//! Convolution configurations shared by the NCSNv2 blocks, and the choice of how a
//! convolution runs ([`ConvAlgorithm`]).

use std::sync::atomic::{AtomicU8, Ordering};

#[cfg(any(feature = "flex", feature = "cube"))]
use burn::backend::DispatchDevice;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::PaddingConfig2d;
use burn::tensor::ops::{ConvOptions, PadMode};
use burn::tensor::{s, Device, Tensor};

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

/// How the network's convolutions are computed. A process-wide setting, like PyTorch's
/// `torch.backends.cudnn.benchmark`: it changes speed, not the function computed (both agree to
/// float rounding).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvAlgorithm {
    /// The backend's own convolution (`burn::tensor::module::conv2d`). The default, and the
    /// right choice on the CPU backends, whose convolution is already a GEMM.
    Native,
    /// Every convolution as one matrix product (see [`conv2d_gemm`]).
    Gemm,
    /// Chosen per backend and convolution:
    ///
    /// - On the GPU backends (the `cube` feature), [`Self::Gemm`] for convolutions of at least
    ///   [`GEMM_MIN_MACS`] multiply-adds, [`Self::Native`] below: in burn 0.22 a dense k×k
    ///   convolution on wgpu's WGSL runs as a direct kernel (its GEMM convolutions need
    ///   cooperative-matrix hardware support that WGSL lacks), which is many times slower than the
    ///   tiled matrix product on large shapes (5× for the whole ngf-128 network at batch 100 on an
    ///   H100), while the GEMM form costs four more kernel launches, which is what counts on small
    ///   shapes.
    /// - On flex (the `flex` feature), outside autodiff (sampling), [`Self::Gemm`] for convolutions
    ///   of fewer than [`GEMM_MIN_MACS`] multiply-adds, [`Self::Native`] from there: the GEMM
    ///   form's one-copy im2col and flex's matrix product beat flex's own convolution by
    ///   1.1–1.25× per Langevin step at ngf 16 and 32, batch 1 and 10, and lose at ngf 64, batch
    ///   10, where the columns outgrow the caches (docs/BENCHMARKS.md). Under autodiff (training)
    ///   [`Self::Native`]: the GEMM form's backward is several times slower there.
    /// - [`Self::Native`] on any other backend (ndarray).
    Auto,
}

/// Multiply-adds (`B·C_out·C_in·k_h·k_w·H_out·W_out`) from which [`ConvAlgorithm::Auto`] takes
/// the GEMM form on the GPU backends, and up to which it takes it on flex. Set from H100
/// measurements (docs/BENCHMARKS.md): at batch 1 (a 3×3 ngf-128 convolution at 28×28 is 2^27)
/// both forms cost the same, launches dominating; at batch 10 the GEMM form wins from ngf 128
/// (2^30) and ties at ngf 64 (2^28). On flex the GEMM form wins at ngf 32, batch 10 (2^26) and
/// loses at ngf 64, batch 10 (2^28 and up).
pub const GEMM_MIN_MACS: usize = 1 << 28;

static CONV_ALGORITHM: AtomicU8 = AtomicU8::new(0);

impl ConvAlgorithm {
    /// All algorithms, in the order of their names in [`Self::name`].
    pub const ALL: [Self; 3] = [Self::Native, Self::Gemm, Self::Auto];

    /// The name used on command lines and in reports: `native`, `gemm`, `auto`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Native => "native",
            Self::Gemm => "gemm",
            Self::Auto => "auto",
        }
    }

    /// The algorithm called `name` (see [`Self::name`]).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    fn code(self) -> u8 {
        match self {
            Self::Native => 0,
            Self::Gemm => 1,
            Self::Auto => 2,
        }
    }
}

/// Sets how every NCSNv2 convolution in this process is computed from now on.
pub fn set_conv_algorithm(algorithm: ConvAlgorithm) {
    CONV_ALGORITHM.store(algorithm.code(), Ordering::Relaxed);
}

/// How NCSNv2 convolutions are computed now ([`ConvAlgorithm::Native`] unless
/// [`set_conv_algorithm`] was called).
pub fn conv_algorithm() -> ConvAlgorithm {
    match CONV_ALGORITHM.load(Ordering::Relaxed) {
        1 => ConvAlgorithm::Gemm,
        2 => ConvAlgorithm::Auto,
        _ => ConvAlgorithm::Native,
    }
}

/// Applies `conv` to `[B, C_in, H, W]` with the algorithm of [`conv_algorithm`]. Every NCSNv2
/// convolution has explicit padding and one group; any other runs natively.
pub(crate) fn apply(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let PaddingConfig2d::Explicit(top, left, bottom, right) = conv.padding else {
        return conv.forward(x);
    };
    if conv.groups != 1 || conv_algorithm() == ConvAlgorithm::Native {
        return conv.forward(x);
    }
    let options = ConvOptions::new_with_padding(
        conv.stride,
        [(top, bottom), (left, right)],
        conv.dilation,
        conv.groups,
    );
    let weight = conv.weight.val();
    if conv_algorithm() == ConvAlgorithm::Auto {
        let [batch, _, height, width] = x.dims();
        let [c_out, c_in, kh, kw] = weight.dims();
        let [ho, wo] = output_size([height, width], [kh, kw], &options);
        let macs = batch * c_out * c_in * kh * kw * ho * wo;
        if !auto_takes_gemm(&x.device(), macs) {
            return conv.forward(x);
        }
    }
    conv2d_gemm(x, weight, conv.bias.as_ref().map(|b| b.val()), &options)
}

/// Whether [`ConvAlgorithm::Auto`] computes a convolution of `macs` multiply-adds on `device` as
/// a matrix product (see there).
fn auto_takes_gemm(device: &Device, macs: usize) -> bool {
    #[cfg(feature = "flex")]
    if matches!(device.as_dispatch(), DispatchDevice::Flex(_)) {
        return macs < GEMM_MIN_MACS;
    }
    #[cfg(feature = "cube")]
    if matches!(
        device.clone().inner().as_dispatch(),
        DispatchDevice::Cube(_)
    ) {
        return macs >= GEMM_MIN_MACS;
    }
    let _ = (device, macs);
    false
}

/// The output side lengths of a convolution with these options.
fn output_size(input: [usize; 2], kernel: [usize; 2], options: &ConvOptions<2>) -> [usize; 2] {
    std::array::from_fn(|i| {
        let (before, after) = options.padding[i];
        let span = options.dilation[i] * (kernel[i] - 1) + 1;
        (input[i] + before + after).saturating_sub(span) / options.stride[i] + 1
    })
}

/// A 2-D convolution (one group) as a single matrix product, `W·cols`:
///
/// - `W` is the weight `[C_out, C_in·k_h·k_w]`;
/// - `cols` `[C_in·k_h·k_w, B·H_out·W_out]` holds, for each input channel and kernel tap, the
///   padded input shifted by that tap (im2col).
///
/// It computes what `burn::tensor::module::conv2d` computes, differentiably, with the backend's
/// matrix product doing the arithmetic. Without autodiff, `cols` is one copy of a strided view
/// of the padded input (two `unfold`s); under autodiff it is the concatenation of one slice per
/// tap, whose backward is cheaper than that of `unfold` (a loop over the windows in burn 0.22).
///
/// # Panics
/// If the options have more than one group, or the shapes do not fit (as `conv2d` does).
pub fn conv2d_gemm(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    options: &ConvOptions<2>,
) -> Tensor<4> {
    assert_eq!(options.groups, 1, "conv2d_gemm computes one group");
    let [batch, c_in, height, width] = x.dims();
    let [c_out, weight_c_in, kh, kw] = weight.dims();
    assert_eq!(
        c_in, weight_c_in,
        "input channels {c_in} against the weight's {weight_c_in}"
    );
    let [ho, wo] = output_size([height, width], [kh, kw], options);
    let [(top, bottom), (left, right)] = options.padding;

    // [C_in, B, H + pads, W + pads]: channels first, so that the columns come out as
    // [C_in, k_h, k_w, B, H_out, W_out] and reshape to the GEMM's right operand.
    let x = x.swap_dims(0, 1);
    let x = if top + bottom + left + right > 0 {
        x.pad([(top, bottom), (left, right)], PadMode::Constant(0.0))
    } else {
        x
    };
    let device = x.device();
    let cols = if device.clone().inner() == device {
        columns_by_unfold(x, [kh, kw], [ho, wo], options)
    } else {
        columns_by_taps(x, [kh, kw], [ho, wo], options)
    };
    let out = weight
        .reshape([c_out, c_in * kh * kw])
        .matmul(cols.reshape([c_in * kh * kw, batch * ho * wo]))
        .reshape([c_out, batch, ho, wo]);
    let out = match bias {
        Some(bias) => out + bias.reshape([c_out, 1, 1, 1]),
        None => out,
    };
    out.swap_dims(0, 1)
}

/// The im2col columns `[C, k_h, k_w, B, H_out, W_out]` of the padded `[C, B, H_p, W_p]` as one
/// strided view: each `unfold` adds a window axis without copying, a permutation puts the taps
/// after the channels, and a stepped slice picks the dilated taps.
fn columns_by_unfold(
    x: Tensor<4>,
    [kh, kw]: [usize; 2],
    [ho, wo]: [usize; 2],
    options: &ConvOptions<2>,
) -> Tensor<6> {
    let [sh, sw] = options.stride;
    let [dh, dw] = options.dilation;
    let (span_h, span_w) = ((kh - 1) * dh + 1, (kw - 1) * dw + 1);
    let windows: Tensor<6> = x
        .unfold::<5, _>(2, span_h, sh)
        .unfold::<6, _>(3, span_w, sw)
        .permute([0, 4, 5, 1, 2, 3]);
    debug_assert_eq!(windows.dims()[4..], [ho, wo]);
    if dh > 1 || dw > 1 {
        windows.slice(s![.., 0..span_h;dh, 0..span_w;dw, .., .., ..])
    } else {
        windows
    }
}

/// The same columns as [`columns_by_unfold`], concatenated from one strided slice per tap.
fn columns_by_taps(
    x: Tensor<4>,
    [kh, kw]: [usize; 2],
    [ho, wo]: [usize; 2],
    options: &ConvOptions<2>,
) -> Tensor<6> {
    let [c_in, batch, _, _] = x.dims();
    let [sh, sw] = options.stride;
    let [dh, dw] = options.dilation;
    let taps: Vec<Tensor<5>> = (0..kh)
        .flat_map(|i| (0..kw).map(move |j| (i, j)))
        .map(|(i, j)| {
            let (r0, c0) = (i * dh, j * dw);
            x.clone()
                .slice(s![
                    ..,
                    ..,
                    r0..r0 + (ho - 1) * sh + 1;sh,
                    c0..c0 + (wo - 1) * sw + 1;sw
                ])
                .unsqueeze_dim::<5>(1)
        })
        .collect();
    Tensor::cat(taps, 1).reshape([c_in, kh, kw, batch, ho, wo])
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::module::conv2d;
    use burn::tensor::{Device, Distribution, Tolerance};

    fn check(dims: [usize; 4], c_out: usize, kernel: [usize; 2], options: ConvOptions<2>) {
        let device = Device::flex();
        device.seed(41);
        let x = Tensor::<4>::random(dims, Distribution::Normal(0.0, 1.0), &device);
        let weight = Tensor::<4>::random(
            [c_out, dims[1], kernel[0], kernel[1]],
            Distribution::Normal(0.0, 1.0),
            &device,
        );
        let bias = Tensor::<1>::random([c_out], Distribution::Normal(0.0, 1.0), &device);
        let expected = conv2d(
            x.clone(),
            weight.clone(),
            Some(bias.clone()),
            options.clone(),
        );
        let got = conv2d_gemm(x, weight, Some(bias), &options);
        assert_eq!(got.dims(), expected.dims());
        got.into_data()
            .assert_approx_eq::<f32>(&expected.into_data(), Tolerance::absolute(1e-4));
    }

    #[cfg(feature = "flex")]
    #[test]
    fn auto_takes_the_gemm_form_on_flex_for_small_convolutions_outside_autodiff_only() {
        let flex = Device::flex();
        assert!(auto_takes_gemm(&flex, GEMM_MIN_MACS - 1));
        assert!(!auto_takes_gemm(&flex, GEMM_MIN_MACS));
        assert!(!auto_takes_gemm(&flex.autodiff(), 1 << 20));
        #[allow(deprecated)]
        let ndarray = Device::ndarray();
        assert!(!auto_takes_gemm(&ndarray, 1 << 20));
    }

    #[test]
    fn gemm_convolution_matches_the_backend_convolution() {
        // 3×3 "same", dilated, 1×1, strided with uneven padding, non-square kernel and image.
        let cases = [
            (
                [2, 3, 7, 6],
                4,
                [3, 3],
                ConvOptions::new([1, 1], [1, 1], [1, 1], 1),
            ),
            (
                [1, 2, 9, 9],
                3,
                [3, 3],
                ConvOptions::new([1, 1], [2, 2], [2, 2], 1),
            ),
            (
                [3, 5, 4, 5],
                2,
                [1, 1],
                ConvOptions::new([1, 1], [0, 0], [1, 1], 1),
            ),
            (
                [2, 2, 8, 7],
                3,
                [3, 2],
                ConvOptions::new_with_padding([2, 3], [(1, 0), (2, 1)], [1, 2], 1),
            ),
        ];
        for (dims, c_out, kernel, options) in cases {
            check(dims, c_out, kernel, options);
        }
    }

    #[test]
    fn the_algorithm_setting_round_trips_by_name() {
        for algorithm in ConvAlgorithm::ALL {
            assert_eq!(ConvAlgorithm::from_name(algorithm.name()), Some(algorithm));
        }
        assert_eq!(ConvAlgorithm::from_name("cudnn"), None);
    }
}
