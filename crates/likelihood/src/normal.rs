//! Standard-normal special functions on device tensors, evaluated so that f32 stays accurate in the tails.
//!
//! Everything is built on the scaled complementary error function erfcx(x) = exp(x²)·erfc(x): ratios such
//! as φ(w)/Φ(w) and (φ(a) − φ(b))/(Φ(b) − Φ(a)) are written as ratios of erfcx terms, so no difference of two
//! tiny Φ values and no exp(−x²) underflow ever enters a division. The same element-wise formulas run on every
//! backend, so CPU and GPU results agree to rounding.

use burn::prelude::*;

/// √(2/π).
pub const SQRT_2_OVER_PI: f32 = 0.797_884_6;
/// 1/√(2π).
pub const INV_SQRT_2PI: f32 = 0.398_942_3;
/// 1/√2.
pub const FRAC_1_SQRT_2: f32 = std::f32::consts::FRAC_1_SQRT_2;

/// erfcx(x) = exp(x²)·erfc(x) for every real x, relative error below 2e-7 in f64 arithmetic.
///
/// For x ≥ 0 the Chebyshev fit erfc(x) ≈ t·exp(−x² + P(t)), t = 1/(1 + x/2) (fractional error < 1.2e-7
/// everywhere), becomes erfcx(x) = t·exp(P(t)) with no cancellation. For x < 0, erfcx(x) = 2·exp(x²) −
/// erfcx(−x), which overflows to +∞ only where the true value exceeds f32's range (x < −9.3).
pub fn erfcx<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    const C: [f32; 10] = [
        -1.265_512_2,
        1.000_023_7,
        0.374_091_96,
        0.096_784_18,
        -0.186_288_06,
        0.278_868_07,
        -1.135_204,
        1.488_515_9,
        -0.822_152_23,
        0.170_872_77,
    ];
    let t = (x.clone().abs() * 0.5 + 1.0).recip();
    let mut poly = t.clone() * C[9];
    for &c in C[1..9].iter().rev() {
        poly = (poly + c) * t.clone();
    }
    let positive = t * (poly + C[0]).exp();
    let negative = x.clone().powi_scalar(2).exp() * 2.0 - positive.clone();
    positive.mask_where(x.lower_elem(0.0), negative)
}

/// erf(x), accurate in relative terms near 0 as well: a Taylor series for |x| < 0.5, 1 − exp(−x²)·erfcx(|x|)
/// elsewhere. Used instead of the backends' own erf so that every backend computes the same numbers.
pub fn erf<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    // erf(x) = 2/√π · Σ_k (−1)^k x^{2k+1} / (k!(2k+1)), truncated after k = 7 (error < 1e-9 for |x| < 0.5).
    const SERIES: [f32; 8] = [
        1.0,
        -1.0 / 3.0,
        1.0 / 10.0,
        -1.0 / 42.0,
        1.0 / 216.0,
        -1.0 / 1320.0,
        1.0 / 9360.0,
        -1.0 / 75600.0,
    ];
    let x2 = x.clone().powi_scalar(2);
    let mut sum = x2.clone() * SERIES[7];
    for &c in SERIES[1..7].iter().rev() {
        sum = (sum + c) * x2.clone();
    }
    let small = (sum + SERIES[0]) * x.clone() * std::f32::consts::FRAC_2_SQRT_PI;
    let ax = x.clone().abs();
    let large = ((x2.neg().exp() * erfcx(ax.clone())).neg() + 1.0) * x.sign();
    large.mask_where(ax.lower_elem(0.5), small)
}

/// φ(x) = exp(−x²/2)/√(2π).
pub fn pdf<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    (x.powi_scalar(2) * -0.5).exp() * INV_SQRT_2PI
}

/// Φ(x) = ½·(1 + erf(x/√2)) (used only by the reference-parity mode).
pub fn cdf<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    (erf(x * FRAC_1_SQRT_2) + 1.0) * 0.5
}

/// 1 − exp(−δ) for δ ≥ 0 without cancellation near 0 (Kahan's expm1 trick below δ = ½).
fn one_minus_exp_neg<const D: usize>(delta: Tensor<D>) -> Tensor<D> {
    let small = delta.clone().clamp(1e-30, 0.5);
    let u = small.clone().neg().exp();
    // expm1(−δ) = (u − 1)·(−δ)/ln(u); exact ratio correction removes the rounding of u.
    let kahan = (u.clone() - 1.0) * small.clone().neg() / u.log();
    let kahan = kahan
        .neg()
        .mask_where(small.clone().lower_equal_elem(1e-7), small);
    let direct = delta.clone().neg().exp().neg() + 1.0;
    direct.mask_where(delta.lower_elem(0.5), kahan)
}

/// Ratios of a standard normal restricted to the bin [a, b) (a < b, ±∞ allowed as large finite values):
/// `first` = (φ(a) − φ(b))/(Φ(b) − Φ(a)) and, when asked for, `second` = (a·φ(a) − b·φ(b))/(Φ(b) − Φ(a)).
///
/// The truncated normal has mean `first` and variance 1 + `second` − `first`². Three regimes:
/// - a ≥ 0 (bin in the upper tail): with a' = a/√2, b' = b/√2 and r = exp(a'² − b'²),
///   first = √(2/π)(1 − r)/(erfcx(a') − r·erfcx(b')), second = √(2/π)(a − b·r)/(erfcx(a') − r·erfcx(b')).
/// - b ≤ 0 (lower tail): the mirror image, first(a, b) = −first(−b, −a), second(a, b) = second(−b, −a).
/// - a < 0 < b: Φ(b) − Φ(a) = ½(erf(b') + erf(−a')), a sum of two positive terms.
///
/// A bin so narrow that the density is flat across it, (b − a)·max(|a|, |b|, 1) < 1e-3, takes the uniform
/// limit: first = (a + b)/2, second = first² + (b − a)²/12 − 1. Far in a tail the exact forms divide two
/// vanishing differences (0/0 once a and b round to the same float); the limit is accurate to that 1e-3.
pub struct BinRatios<const D: usize> {
    /// (φ(a) − φ(b))/(Φ(b) − Φ(a)).
    pub first: Tensor<D>,
    /// (a·φ(a) − b·φ(b))/(Φ(b) − Φ(a)), when requested.
    pub second: Option<Tensor<D>>,
    /// The truncated normal's variance 1 + second − first², in [0, 1], with `second`. Beyond 10 standard
    /// deviations in a tail that difference cancels (at 30 it is 5 % off in f32), so there the density across
    /// the bin is taken as an exponential of rate √(t² + 6) (t the nearer edge): exact in the one-sided
    /// limit 1/(t² + 6) and the uniform limit w²/12.
    pub variance: Option<Tensor<D>>,
}

/// (b − a)·max(|a|, |b|, 1) below which a bin counts as narrow (see [`BinRatios`]).
pub(crate) const NARROW_BIN: f32 = 1e-3;

/// Standard deviations into a tail beyond which the variance takes its asymptote (see [`BinRatios`]).
pub(crate) const FAR_TAIL: f32 = 10.0;

/// See [`BinRatios`]. The bin's width is taken as `b − a`; where a and b come from a bin [l, u) seen from a
/// distant centre, [`standardized_bin_ratios`] keeps the width that rounding a and b would lose.
pub fn bin_ratios<const D: usize>(a: Tensor<D>, b: Tensor<D>, with_second: bool) -> BinRatios<D> {
    let width = (b.clone() - a.clone()).clamp_min(0.0);
    ratios(a, b, width, with_second)
}

/// [`BinRatios`] of the bin [lower, upper) for N(centre, std²): a = (lower − centre)/std,
/// b = (upper − centre)/std, with the width (upper − lower)/std computed directly. Far from the centre, a
/// and b are large and round apart by whole ulps (at 10⁶, 1/16) while the width can be far smaller.
pub fn standardized_bin_ratios<const D: usize>(
    lower: Tensor<D>,
    upper: Tensor<D>,
    centre: Tensor<D>,
    std: Tensor<D>,
    with_second: bool,
) -> BinRatios<D> {
    let width = ((upper.clone() - lower.clone()) / std.clone()).clamp_min(0.0);
    let a = (lower - centre.clone()) / std.clone();
    let b = (upper - centre) / std;
    ratios(a, b, width, with_second)
}

fn ratios<const D: usize>(
    a: Tensor<D>,
    b: Tensor<D>,
    width: Tensor<D>,
    with_second: bool,
) -> BinRatios<D> {
    let lower_tail = b.clone().lower_equal_elem(0.0);
    let straddles = a
        .clone()
        .lower_elem(0.0)
        .bool_and(b.clone().greater_elem(0.0));

    // Tail regime, mirrored so that 0 ≤ ta ≤ tb = ta + width; δ = (tb² − ta²)/2 from the width.
    let ta = a.clone().mask_where(lower_tail.clone(), b.clone().neg());
    let tb = ta.clone() + width.clone();
    let (ta_s, tb_s) = (ta.clone() * FRAC_1_SQRT_2, tb.clone() * FRAC_1_SQRT_2);
    let delta = (width.clone() * (ta.clone() + width.clone() * 0.5)).clamp_min(0.0);
    let r = delta.clone().neg().exp();
    let denominator = erfcx(ta_s) - r.clone() * erfcx(tb_s);
    let tail_first = one_minus_exp_neg(delta) / denominator.clone() * SQRT_2_OVER_PI;
    let tail_first = tail_first.clone().mask_where(lower_tail, tail_first.neg());

    // Straddling regime.
    let mass = (erf(b.clone() * FRAC_1_SQRT_2) - erf(a.clone() * FRAC_1_SQRT_2)) * 0.5;
    let (pa, pb) = (pdf(a.clone()), pdf(b.clone()));
    let mid_first = (pa.clone() - pb.clone()) / mass.clone();
    let first = tail_first.mask_where(straddles.clone(), mid_first);

    // Uniform limit of a narrow bin.
    let reach = a.clone().abs().max_pair(b.clone().abs()).clamp_min(1.0);
    let narrow = (width.clone() * reach).lower_elem(NARROW_BIN);
    let centre = a.clone() + width.clone() * 0.5;
    let first = first.mask_where(narrow.clone(), centre.clone());

    let second = with_second.then(|| {
        let tail_second = (ta.clone() - tb * r) / denominator * SQRT_2_OVER_PI;
        let mid_second = (a * pa - b * pb) / mass;
        let uniform = centre.powi_scalar(2) + width.clone().powi_scalar(2) / 12.0 - 1.0;
        tail_second
            .mask_where(straddles.clone(), mid_second)
            .mask_where(narrow.clone(), uniform)
    });
    let variance = second.as_ref().map(|second| {
        let exact = (second.clone() - first.clone().powi_scalar(2) + 1.0).clamp(0.0, 1.0);
        let uniform = width.clone().powi_scalar(2) / 12.0;
        // Far tail: the density across the bin is an exponential of rate λ = √(t² + 6) truncated to
        // [0, w): variance (1 − (λw)²/(4·sinh²(λw/2)))/λ², w²/12·(1 − (λw)²/60) for small λw.
        let rate_sq = ta.clone().powi_scalar(2) + 6.0;
        let x = rate_sq.clone().sqrt() * width.clone();
        // Beyond λw = 40 the second term is below 1e-14/λ² (and w may be a 1e30 stand-in for ∞).
        let bounded = x.clone().clamp_max(40.0);
        let half = bounded.clone() * 0.5;
        let sinh2 = (half.clone().exp() - half.neg().exp()).powi_scalar(2);
        // (e^{x/2} − e^{−x/2})² = 4·sinh²(x/2), so the variance is (1 − x²/sinh2)/λ².
        let exponential = (bounded.powi_scalar(2) / sinh2).neg().add_scalar(1.0) / rate_sq;
        let small = uniform.clone() * (x.clone().powi_scalar(2) / -60.0 + 1.0);
        let truncated_exponential = exponential
            .mask_where(x.lower_elem(0.1), small)
            .clamp_min(0.0);
        let far = ta
            .greater_elem(FAR_TAIL)
            .bool_and(straddles.bool_not())
            .bool_and(narrow.clone().bool_not());
        exact
            .mask_where(far, truncated_exponential)
            .mask_where(narrow, uniform.clamp_max(1.0))
    });
    BinRatios {
        first,
        second,
        variance,
    }
}
