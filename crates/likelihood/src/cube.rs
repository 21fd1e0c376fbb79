//! The element-wise parts of the likelihood scores in CubeCL kernels (`cube` feature).
//!
//! As tensor operations, the pseudo-variances and
//! [`one_sided_gradient`](crate::qcs::one_sided_gradient) (1-bit) are about 40 kernel launches per
//! Langevin step (erfcx alone is two dozen), and [`quantized_gradient`](crate::qcs::quantized_gradient)
//! (Q-bit bins, three regimes and a narrow-bin limit) about 130: more than any other part of the
//! step but the network's convolutions. QCS-SGM+ computes the truncated normal's mean and variance
//! (about 300 launches) in each of its 20 EP iterations. Here each is one kernel: every unit takes
//! one measurement of one image, from `z = A·x` (and the EP cavity) and its bin to the result,
//! with the same arithmetic in the same order:
//! - [`quantized_gradient`]: the QCS-SGM score's `g`, 1-bit or Q-bit;
//! - [`ep_moments`]: EP's tilted moments (`ep::truncated_moments` of the cavity);
//! - [`ep_gradient`]: QCS-SGM+'s `g` at the converged cavity.
//!
//! [`ep_run`] goes further: it runs all of EP's iterations with three kernels each, one cube per
//! image summing over its measurements in shared memory (the quantizer factor with its mean
//! tilted variance and extrinsic message; the Gaussian factor's weights and precision; the damped
//! update with its change and early stop), around burn's two products with the Gram eigenbasis:
//! 5 launches per iteration where the tensor operations take about 45.
//!
//! Only for f32 tensors of the Cube backend outside autodiff; anything else is left to the tensor
//! operations (see `qcs_cube`).

// `Err` hands the caller's own tensor back (the kernel does not apply), not an error.
#![allow(clippy::result_large_err)]

use burn::tensor::{DType, Tensor};
use qcs_cube::{
    cube_primitive, cube_primitives, element_type, empty_like, from_cube, readable_f32, CubeTensor,
};

use crate::ep::{EpConfig, MIN_EXTRINSIC_PRECISION};
use crate::MIN_VARIANCE;
use cubecl::prelude::{CubeCount, CubeDim};
use kernels::{
    ep_damp_kernel, ep_gaussian_kernel, ep_moments_kernel, ep_quantizer_kernel, ep_score_kernel,
    score_kernel, ROW_UNITS,
};

mod kernels {
    use cubecl::prelude::*;
    use qcs_cube::cube_sum;

    /// erfcx(x) = exp(x²)·erfc(x): the fit and the order of operations of
    /// [`crate::normal::erfcx`].
    #[cube]
    fn erfcx<F: Float>(x: F) -> F {
        let t = F::new(1.0) / (F::abs(x) * F::new(0.5) + F::new(1.0));
        let mut poly = t * F::new(0.170_872_77);
        poly = (poly + F::new(-0.822_152_23)) * t;
        poly = (poly + F::new(1.488_515_9)) * t;
        poly = (poly + F::new(-1.135_204)) * t;
        poly = (poly + F::new(0.278_868_07)) * t;
        poly = (poly + F::new(-0.186_288_06)) * t;
        poly = (poly + F::new(0.096_784_18)) * t;
        poly = (poly + F::new(0.374_091_96)) * t;
        poly = (poly + F::new(1.000_023_7)) * t;
        let positive = t * F::exp(poly + F::new(-1.265_512_2));
        let mut value = positive;
        if x < F::new(0.0) {
            value = F::exp(x * x) * F::new(2.0) - positive;
        }
        value
    }

    /// erf(x): the series and the order of operations of [`crate::normal::erf`].
    #[cube]
    fn erf<F: Float>(x: F) -> F {
        let x2 = x * x;
        let mut sum = x2 * F::new(-1.322_751_4e-5);
        sum = (sum + F::new(0.000_106_837_61)) * x2;
        sum = (sum + F::new(-0.000_757_575_73)) * x2;
        sum = (sum + F::new(0.004_629_629_7)) * x2;
        sum = (sum + F::new(-0.023_809_524)) * x2;
        sum = (sum + F::new(0.1)) * x2;
        sum = (sum + F::new(-0.333_333_34)) * x2;
        let ax = F::abs(x);
        let mut value = (sum + F::new(1.0)) * x * F::new(core::f32::consts::FRAC_2_SQRT_PI);
        if ax >= F::new(0.5) {
            let mut sign = F::new(0.0);
            if x > F::new(0.0) {
                sign = F::new(1.0);
            }
            if x < F::new(0.0) {
                sign = F::new(-1.0);
            }
            value = (-(F::exp(-x2) * erfcx::<F>(ax)) + F::new(1.0)) * sign;
        }
        value
    }

    /// φ(x): [`crate::normal::pdf`].
    #[cube]
    fn pdf<F: Float>(x: F) -> F {
        F::exp(x * x * F::new(-0.5)) * F::new(0.398_942_3)
    }

    /// 1 − exp(−δ) for δ ≥ 0: `normal::one_minus_exp_neg`.
    #[cube]
    fn one_minus_exp_neg<F: Float>(delta: F) -> F {
        let small = F::min(F::max(delta, F::new(1e-30)), F::new(0.5));
        let u = F::exp(-small);
        let kahan = (u - F::new(1.0)) * (-small) / F::ln(u);
        let mut value = -kahan;
        if small <= F::new(1e-7) {
            value = small;
        }
        if delta >= F::new(0.5) {
            value = -F::exp(-delta) + F::new(1.0);
        }
        value
    }

    /// `(first, variance)` of the standard normal restricted to the standardized bin
    /// `[(l − z)/s, (u − z)/s)`: its mean and, `with_variance`, its variance (else 0), as
    /// `normal::standardized_bin_ratios(l, u, z, s, with_variance)` has them (`first` and
    /// `variance`), their regimes (upper tail, lower tail, straddling bin, narrow bin, far tail)
    /// chosen per element as there.
    #[cube]
    fn bin_moments<F: Float>(z: F, l: F, u: F, s: F, #[comptime] with_variance: bool) -> (F, F) {
        let frac_1_sqrt_2 = F::new(core::f32::consts::FRAC_1_SQRT_2);
        let sqrt_2_over_pi = F::new(0.797_884_6);
        let width = F::max((u - l) / s, F::new(0.0));
        let a = (l - z) / s;
        let b = (u - z) / s;
        let lower_tail = b <= F::new(0.0);
        let straddles = a < F::new(0.0) && b > F::new(0.0);

        // Tail regime, mirrored so that 0 ≤ ta ≤ tb = ta + width.
        let mut ta = a;
        if lower_tail {
            ta = -b;
        }
        let tb = ta + width;
        let delta = F::max(width * (ta + width * F::new(0.5)), F::new(0.0));
        let r = F::exp(-delta);
        let denominator = erfcx::<F>(ta * frac_1_sqrt_2) - r * erfcx::<F>(tb * frac_1_sqrt_2);
        let mut first = one_minus_exp_neg::<F>(delta) / denominator * sqrt_2_over_pi;
        if lower_tail {
            first = -first;
        }
        // Straddling regime.
        let mass = (erf::<F>(b * frac_1_sqrt_2) - erf::<F>(a * frac_1_sqrt_2)) * F::new(0.5);
        let (pa, pb) = (pdf::<F>(a), pdf::<F>(b));
        if straddles {
            first = (pa - pb) / mass;
        }
        // Uniform limit of a narrow bin.
        let reach = F::max(F::max(F::abs(a), F::abs(b)), F::new(1.0));
        let narrow = width * reach < F::new(crate::normal::NARROW_BIN);
        let centre = a + width * F::new(0.5);
        if narrow {
            first = centre;
        }

        let mut variance = F::new(0.0);
        if with_variance {
            let mut second = (ta - tb * r) / denominator * sqrt_2_over_pi;
            if straddles {
                second = (a * pa - b * pb) / mass;
            }
            let uniform = width * width / F::new(12.0);
            if narrow {
                second = centre * centre + uniform - F::new(1.0);
            }
            variance = F::min(
                F::max(second - first * first + F::new(1.0), F::new(0.0)),
                F::new(1.0),
            );
            // Far tail: an exponential of rate λ = √(ta² + 6) truncated to [0, width).
            let rate_sq = ta * ta + F::new(6.0);
            let x = F::sqrt(rate_sq) * width;
            let bounded = F::min(x, F::new(40.0));
            let half = bounded * F::new(0.5);
            let sinh = F::exp(half) - F::exp(-half);
            let sinh2 = sinh * sinh;
            let mut truncated = (-(bounded * bounded / sinh2) + F::new(1.0)) / rate_sq;
            if x < F::new(0.1) {
                truncated = uniform * (x * x / F::new(-60.0) + F::new(1.0));
            }
            truncated = F::max(truncated, F::new(0.0));
            if ta > F::new(crate::normal::FAR_TAIL) && !straddles && !narrow {
                variance = truncated;
            }
            if narrow {
                variance = F::min(uniform, F::new(1.0));
            }
        }
        (first, variance)
    }

    /// The 1-bit gradient `g = ±√(2/π)/(erfcx(t/√2)·s)` of a bin open on one side, positive for
    /// `[l, ∞)`: with the bin's finite edge `e`, `t = (e − z)/s` for `[l, ∞)` and `(z − e)/s` for
    /// `(−∞, u)` (`qcs::one_sided_gradient`).
    #[cube]
    fn one_sided<F: Float>(z: F, l: F, u: F, s: F) -> F {
        let upper_open = u >= F::new(crate::EDGE_LIMIT);
        let mut edge = u;
        if upper_open {
            edge = l;
        }
        let mut t = (edge - z) / s;
        if !upper_open {
            t = -t;
        }
        let e = erfcx::<F>(t * F::new(core::f32::consts::FRAC_1_SQRT_2));
        let mut value = F::new(1.0) / (e * s) * F::new(0.797_884_6);
        if !upper_open {
            value = -value;
        }
        value
    }

    /// `g[b, m]` of the QCS-SGM score for a contiguous `[B, M]` output, with
    /// `s = √max(‖a_m‖²·σ_t² + σ², MIN_VARIANCE)`: [`one_sided`] for 1-bit bins, `first/s` of
    /// [`bin_moments`] for any bin. The inputs are read through their strides (broadcast rows
    /// included); `row_norms_sq` is `[M]`.
    #[cube(launch_unchecked)]
    #[allow(clippy::too_many_arguments)]
    pub(super) fn score_kernel<F: Float>(
        z: &Tensor<F>,
        lower: &Tensor<F>,
        upper: &Tensor<F>,
        row_norms_sq: &Tensor<F>,
        g: &mut Tensor<F>,
        measurements: usize,
        sigma_t_sq: f32,
        noise_var: f32,
        #[comptime] one_bit: bool,
        #[define(F)] _dtype: ElemType,
    ) {
        let i = ABSOLUTE_POS;
        if i >= g.len() {
            terminate!();
        }
        let image = i / measurements;
        let m = i % measurements;
        let zi = z[image * z.stride(0) + m * z.stride(1)];
        let l = lower[image * lower.stride(0) + m * lower.stride(1)];
        let u = upper[image * upper.stride(0) + m * upper.stride(1)];
        let variance = F::max(
            row_norms_sq[m * row_norms_sq.stride(0)] * F::cast_from(sigma_t_sq)
                + F::cast_from(noise_var),
            F::new(crate::MIN_VARIANCE),
        );
        let s = F::sqrt(variance);
        if one_bit {
            g[i] = one_sided::<F>(zi, l, u, s);
        } else {
            g[i] = bin_moments::<F>(zi, l, u, s, false).0 / s;
        }
    }

    /// EP's cavity and bin at element `i` of a contiguous `[B, M]` output, `(μ, s, l, u)`: the
    /// cavity's mean `z + h/τ` and standard deviation `1/√τ` (`τ` one per image;
    /// `ep::EpScore::run`) and the measurement's bin `[l, u)`.
    #[cube]
    #[allow(clippy::too_many_arguments)]
    fn cavity<F: Float>(
        z: &Tensor<F>,
        h: &Tensor<F>,
        tau: &Tensor<F>,
        lower: &Tensor<F>,
        upper: &Tensor<F>,
        i: usize,
        measurements: usize,
    ) -> (F, F, F, F) {
        let image = i / measurements;
        let m = i % measurements;
        let t = tau[image * tau.stride(0)];
        let mean =
            z[image * z.stride(0) + m * z.stride(1)] + h[image * h.stride(0) + m * h.stride(1)] / t;
        let l = lower[image * lower.stride(0) + m * lower.stride(1)];
        let u = upper[image * upper.stride(0) + m * upper.stride(1)];
        (mean, F::new(1.0) / F::sqrt(t), l, u)
    }

    /// EP's tilted moments for a contiguous `[B, M]` output: with the [`cavity`] `N(μ, s²)` and
    /// its bin `[l, u)`, `post_mean = μ + first·s` and `post_var = variance·s²`
    /// (`ep::truncated_moments`).
    #[cube(launch_unchecked)]
    #[allow(clippy::too_many_arguments)]
    pub(super) fn ep_moments_kernel<F: Float>(
        z: &Tensor<F>,
        h: &Tensor<F>,
        tau: &Tensor<F>,
        lower: &Tensor<F>,
        upper: &Tensor<F>,
        post_mean: &mut Tensor<F>,
        post_var: &mut Tensor<F>,
        measurements: usize,
        #[define(F)] _dtype: ElemType,
    ) {
        let i = ABSOLUTE_POS;
        if i >= post_mean.len() {
            terminate!();
        }
        let (mean, s, l, u) = cavity::<F>(z, h, tau, lower, upper, i, measurements);
        let (first, variance) = bin_moments::<F>(mean, l, u, s, true);
        post_var[i] = variance * (s * s);
        post_mean[i] = mean + first * s;
    }

    /// QCS-SGM+'s gradient `g = first/s` at the [`cavity`] `N(μ, s²)` for a contiguous `[B, M]`
    /// output (`ep::EpScore::score`).
    #[cube(launch_unchecked)]
    #[allow(clippy::too_many_arguments)]
    pub(super) fn ep_score_kernel<F: Float>(
        z: &Tensor<F>,
        h: &Tensor<F>,
        tau: &Tensor<F>,
        lower: &Tensor<F>,
        upper: &Tensor<F>,
        g: &mut Tensor<F>,
        measurements: usize,
        #[define(F)] _dtype: ElemType,
    ) {
        let i = ABSOLUTE_POS;
        if i >= g.len() {
            terminate!();
        }
        let (mean, s, l, u) = cavity::<F>(z, h, tau, lower, upper, i, measurements);
        g[i] = bin_moments::<F>(mean, l, u, s, false).0 / s;
    }

    /// Units per cube of EP's per-image kernels (one cube per image, the measurements strided
    /// over its units and summed by a tree in shared memory).
    pub(super) const ROW_UNITS: usize = 64;

    /// EP's quantizer factor for image `b` (cube `b`), steps 1 and 2 of `ep::EpScore::run`: the
    /// tilted moments of the cavity `N(z + h/τ, 1/τ)` in each bin, their mean positive variance
    /// `χ = max(Σ⁺ var / max(#⁺, 1), min_variance)`, and the extrinsic message
    /// `h^G = (post_mean − z)/χ − h`, `τ^G = max(1/χ − τ, min_tau)`. `h_g` is a contiguous
    /// `[B, M]`, `tau_g` a contiguous `[B]`.
    #[cube(launch_unchecked)]
    #[allow(clippy::too_many_arguments)]
    pub(super) fn ep_quantizer_kernel<F: Float>(
        z: &Tensor<F>,
        h: &Tensor<F>,
        tau: &Tensor<F>,
        lower: &Tensor<F>,
        upper: &Tensor<F>,
        h_g: &mut Tensor<F>,
        tau_g: &mut Tensor<F>,
        measurements: usize,
        min_variance: f32,
        min_tau: f32,
        #[define(F)] _dtype: ElemType,
    ) {
        let b = CUBE_POS_X as usize;
        let u = UNIT_POS_X as usize;
        let mut partial = Shared::new_slice(ROW_UNITS);
        let mut variances = F::new(0.0);
        let mut positives = F::new(0.0);
        let mut m = u;
        while m < measurements {
            let i = b * measurements + m;
            let (mean, s, l, up) = cavity::<F>(z, h, tau, lower, upper, i, measurements);
            let (first, variance) = bin_moments::<F>(mean, l, up, s, true);
            let post_var = variance * (s * s);
            h_g[i] = mean + first * s - z[b * z.stride(0) + m * z.stride(1)];
            if post_var > F::new(0.0) {
                variances += post_var;
                positives += F::new(1.0);
            }
            m += ROW_UNITS;
        }
        let variances = cube_sum::<F>(&mut partial, variances);
        let positives = cube_sum::<F>(&mut partial, positives);
        let chi = F::max(
            variances / F::max(positives, F::new(1.0)),
            F::cast_from(min_variance),
        );
        let mut m = u;
        while m < measurements {
            let i = b * measurements + m;
            h_g[i] = h_g[i] / chi - h[b * h.stride(0) + m * h.stride(1)];
            m += ROW_UNITS;
        }
        if u == 0 {
            tau_g[b] = F::max(
                F::new(1.0) / chi - tau[b * tau.stride(0)],
                F::cast_from(min_tau),
            );
        }
    }

    /// EP's Gaussian factor for image `b` (cube `b`), between the two products with `U`
    /// (`ep::GaussianFactor::extrinsic`): with `w = 1/(D + τ^G)`, `τ^F = Σ D·w / Σ w`, and
    /// `weighted = projected ⊙ w ⊙ (τ^F − D)`, where `projected = h^G·U`. `precision` is `D`,
    /// `[1, M]`; `weighted` a contiguous `[B, M]`, `tau_f` a contiguous `[B]`.
    #[cube(launch_unchecked)]
    pub(super) fn ep_gaussian_kernel<F: Float>(
        projected: &Tensor<F>,
        precision: &Tensor<F>,
        tau_g: &Tensor<F>,
        weighted: &mut Tensor<F>,
        tau_f: &mut Tensor<F>,
        measurements: usize,
        #[define(F)] _dtype: ElemType,
    ) {
        let b = CUBE_POS_X as usize;
        let u = UNIT_POS_X as usize;
        let mut partial = Shared::new_slice(ROW_UNITS);
        let t = tau_g[b];
        let mut weighted_precisions = F::new(0.0);
        let mut weights = F::new(0.0);
        let mut m = u;
        while m < measurements {
            let d = precision[m * precision.stride(1)];
            let w = F::new(1.0) / (d + t);
            weighted_precisions += d * w;
            weights += w;
            m += ROW_UNITS;
        }
        let weighted_precisions = cube_sum::<F>(&mut partial, weighted_precisions);
        let weights = cube_sum::<F>(&mut partial, weights);
        let t_f = weighted_precisions / weights;
        let mut m = u;
        while m < measurements {
            let d = precision[m * precision.stride(1)];
            let w = F::new(1.0) / (d + t);
            weighted[b * measurements + m] =
                projected[b * projected.stride(0) + m * projected.stride(1)] * (w * (t_f - d));
            m += ROW_UNITS;
        }
        if u == 0 {
            tau_f[b] = t_f;
        }
    }

    /// EP's damped update for image `b` (cube `b`), the end of an iteration of
    /// `ep::EpScore::run`: unless the image is `done` already, `h ← h_new·(1 − d) + h·d`,
    /// `τ ← τ_new·(1 − d) + τ·d` (`d = damping`, none when `damp` is false), and the image is done
    /// once `mean|Δh| + |Δτ| < tolerance`. `h` is a contiguous `[B, M]`, `tau`, `tau_new` and
    /// `done` (0 or 1) contiguous `[B]`; all three are updated in place.
    #[cube(launch_unchecked)]
    #[allow(clippy::too_many_arguments)]
    pub(super) fn ep_damp_kernel<F: Float>(
        h_new: &Tensor<F>,
        tau_new: &Tensor<F>,
        h: &mut Tensor<F>,
        tau: &mut Tensor<F>,
        done: &mut Tensor<F>,
        measurements: usize,
        damping: f32,
        tolerance: f32,
        #[comptime] damp: bool,
        #[define(F)] _dtype: ElemType,
    ) {
        let b = CUBE_POS_X as usize;
        if done[b] > F::new(0.5) {
            terminate!();
        }
        let u = UNIT_POS_X as usize;
        let mut partial = Shared::new_slice(ROW_UNITS);
        let d = F::cast_from(damping);
        let keep = F::new(1.0) - d;
        let t_old = tau[b];
        let mut t_new = tau_new[b];
        if damp {
            t_new = t_new * keep + t_old * d;
        }
        let mut changes = F::new(0.0);
        let mut m = u;
        while m < measurements {
            let i = b * measurements + m;
            let old = h[i];
            let mut new = h_new[b * h_new.stride(0) + m * h_new.stride(1)];
            if damp {
                new = new * keep + old * d;
            }
            changes += F::abs(new - old);
            h[i] = new;
            m += ROW_UNITS;
        }
        let changes = cube_sum::<F>(&mut partial, changes);
        if u == 0 {
            tau[b] = t_new;
            if changes / F::cast_from(measurements) + F::abs(t_new - t_old)
                < F::cast_from(tolerance)
            {
                done[b] = F::new(1.0);
            }
        }
    }
}

/// The QCS-SGM score's gradient `g` of `z` ([B, M]) with the standard deviations of
/// [`crate::qcs::pseudo_variances`] (from `row_norms_sq`, [M], `sigma_t` and `noise_std`), in one
/// kernel: [`crate::qcs::one_sided_gradient`] when `one_bit` (every bin open on one side), else
/// [`crate::qcs::quantized_gradient`]. `Err(z)` where the kernel does not apply (not f32 tensors
/// of the Cube backend outside autodiff, or shapes that disagree).
pub(crate) fn quantized_gradient(
    z: Tensor<2>,
    lower: Tensor<2>,
    upper: Tensor<2>,
    row_norms_sq: Tensor<1>,
    sigma_t: f32,
    noise_std: f32,
    one_bit: bool,
) -> Result<Tensor<2>, Tensor<2>> {
    let [batch, measurements] = z.dims();
    let ok = lower.dims() == [batch, measurements]
        && upper.dims() == [batch, measurements]
        && row_norms_sq.dims() == [measurements];
    let [z, lower, upper] = match cube_primitives([z, lower, upper]) {
        Ok(ts) if ok => ts,
        Ok([z, _, _]) => return Err(from_cube(z)),
        Err([z, _, _]) => return Err(z),
    };
    let row_norms_sq = match cube_primitive(row_norms_sq) {
        Ok(r) => r,
        Err(_) => return Err(from_cube(z)),
    };
    if ![&z, &lower, &upper, &row_norms_sq]
        .iter()
        .all(|t| readable_f32(t))
    {
        return Err(from_cube(z));
    }
    let g = empty_like(&z, &[batch, measurements], DType::F32);
    let (count, dim) = qcs_cube::launch_dims(&g);
    let client = z.client.clone();
    let dtype = element_type(&z);
    // SAFETY: every input is read at `b·stride(0) + m·stride(1)` (or `m·stride(0)`) with
    // `b < B` and `m < M`, inside its buffer since its shape is `[B, M]` (or `[M]`) and its
    // strides are its own; the output is a new contiguous `[B, M]` and no unit writes past it.
    unsafe {
        score_kernel::launch_unchecked(
            &client,
            count,
            dim,
            z.into_tensor_arg(),
            lower.into_tensor_arg(),
            upper.into_tensor_arg(),
            row_norms_sq.into_tensor_arg(),
            g.clone().into_tensor_arg(),
            measurements,
            sigma_t * sigma_t,
            noise_std * noise_std,
            one_bit,
            dtype,
        );
    }
    Ok(from_cube(g))
}

/// The f32 Cube primitives of EP's inputs (`z`, `h`, `lower`, `upper` `[B, M]`, `tau` `[B, 1]`),
/// or `None` where the kernels do not apply.
fn ep_inputs(
    z: Tensor<2>,
    h: Tensor<2>,
    tau: Tensor<2>,
    lower: Tensor<2>,
    upper: Tensor<2>,
) -> Option<[CubeTensor; 5]> {
    let [batch, measurements] = z.dims();
    let shapes_agree = [&h, &lower, &upper]
        .iter()
        .all(|t| t.dims() == [batch, measurements])
        && tau.dims() == [batch, 1];
    let inputs = cube_primitives([z, h, tau, lower, upper]).ok()?;
    (shapes_agree && inputs.iter().all(readable_f32)).then_some(inputs)
}

/// EP's tilted moments `(post_mean, post_var)` of the cavity `N(z + h/τ, 1/τ)` in the bins
/// `[lower, upper)` (`ep::truncated_moments` with the cavity's mean and deviation) in one kernel,
/// or `None` where it does not apply (not f32 tensors of the Cube backend outside autodiff, or
/// shapes that disagree: the caller keeps its own tensors for the tensor operations).
pub(crate) fn ep_moments(
    z: Tensor<2>,
    h: Tensor<2>,
    tau: Tensor<2>,
    lower: Tensor<2>,
    upper: Tensor<2>,
) -> Option<(Tensor<2>, Tensor<2>)> {
    let [batch, measurements] = z.dims();
    let [z, h, tau, lower, upper] = ep_inputs(z, h, tau, lower, upper)?;
    let post_mean = empty_like(&z, &[batch, measurements], DType::F32);
    let post_var = empty_like(&z, &[batch, measurements], DType::F32);
    let (count, dim) = qcs_cube::launch_dims(&post_mean);
    let client = z.client.clone();
    let dtype = element_type(&z);
    // SAFETY: every input is read at `b·stride(0) + m·stride(1)` (`tau` at `b·stride(0)`) with
    // `b < B` and `m < M`, inside its buffer; the outputs are new contiguous `[B, M]` tensors and
    // no unit writes past them.
    unsafe {
        ep_moments_kernel::launch_unchecked(
            &client,
            count,
            dim,
            z.into_tensor_arg(),
            h.into_tensor_arg(),
            tau.into_tensor_arg(),
            lower.into_tensor_arg(),
            upper.into_tensor_arg(),
            post_mean.clone().into_tensor_arg(),
            post_var.clone().into_tensor_arg(),
            measurements,
            dtype,
        );
    }
    Some((from_cube(post_mean), from_cube(post_var)))
}

/// QCS-SGM+'s gradient at the cavity `N(z + h/τ, 1/τ)`: [`crate::qcs::quantized_gradient`] of
/// the cavity's mean and deviation, in one kernel; `None` where it does not apply (as for
/// [`ep_moments`]).
pub(crate) fn ep_gradient(
    z: Tensor<2>,
    h: Tensor<2>,
    tau: Tensor<2>,
    lower: Tensor<2>,
    upper: Tensor<2>,
) -> Option<Tensor<2>> {
    let [batch, measurements] = z.dims();
    let [z, h, tau, lower, upper] = ep_inputs(z, h, tau, lower, upper)?;
    let g = empty_like(&z, &[batch, measurements], DType::F32);
    let (count, dim) = qcs_cube::launch_dims(&g);
    let client = z.client.clone();
    let dtype = element_type(&z);
    // SAFETY: as in `ep_moments`, with the one output.
    unsafe {
        ep_score_kernel::launch_unchecked(
            &client,
            count,
            dim,
            z.into_tensor_arg(),
            h.into_tensor_arg(),
            tau.into_tensor_arg(),
            lower.into_tensor_arg(),
            upper.into_tensor_arg(),
            g.clone().into_tensor_arg(),
            measurements,
            dtype,
        );
    }
    Some(from_cube(g))
}

/// EP's iterations (`ep::EpScore::run`) for a Gaussian factor with the eigenbasis `vectors`
/// (`U`, `[M, M]`) and the precisions `precision` (`D`, `[1, M]`), from the cavity `h = 0`,
/// `τ = 1`: per iteration three kernels (the quantizer factor, the Gaussian factor's weights, the
/// damped update: [`kernels`]) and burn's two products with `U`, where the tensor operations
/// launch about 45 kernels. The final cavity `(h^F [B, M], τ^F [B, 1])`, or `None` where the
/// kernels do not apply (as for [`ep_moments`]; the caller then runs EP from the start).
pub(crate) fn ep_run(
    z: Tensor<2>,
    lower: Tensor<2>,
    upper: Tensor<2>,
    vectors: Tensor<2>,
    precision: Tensor<2>,
    config: &EpConfig,
) -> Option<(Tensor<2>, Tensor<2>)> {
    let [batch, measurements] = z.dims();
    if batch == 0
        || batch > 65_535
        || vectors.dims() != [measurements, measurements]
        || precision.dims() != [1, measurements]
    {
        return None;
    }
    let device = z.device();
    let h = Tensor::<2>::zeros([batch, measurements], &device);
    let tau = Tensor::<2>::ones([batch, 1], &device);
    let done = Tensor::<2>::zeros([batch, 1], &device);
    let [z, h, tau, lower, upper] = ep_inputs(z, h, tau, lower, upper)?;
    let [basis, precision, done] = cube_primitives([vectors.clone(), precision, done]).ok()?;
    if ![&basis, &precision].iter().all(|t| readable_f32(t)) {
        return None;
    }
    let transposed = vectors.clone().transpose();
    let client = z.client.clone();
    let dtype = element_type(&z);
    let (count, dim) = (
        CubeCount::Static(batch as u32, 1, 1),
        CubeDim::new_1d(ROW_UNITS as u32),
    );
    for iteration in 0..config.iterations {
        let h_g = empty_like(&z, &[batch, measurements], DType::F32);
        let tau_g = empty_like(&z, &[batch, 1], DType::F32);
        // SAFETY: one cube per image `b < B`; its units read `[B, M]` inputs at
        // `b·stride(0) + m·stride(1)` with `m < M` (`τ` at `b·stride(0)`) and write the new
        // contiguous `h_g` at `b·M + m` and `tau_g` at `b`.
        unsafe {
            ep_quantizer_kernel::launch_unchecked(
                &client,
                count.clone(),
                dim,
                z.clone().into_tensor_arg(),
                h.clone().into_tensor_arg(),
                tau.clone().into_tensor_arg(),
                lower.clone().into_tensor_arg(),
                upper.clone().into_tensor_arg(),
                h_g.clone().into_tensor_arg(),
                tau_g.clone().into_tensor_arg(),
                measurements,
                MIN_VARIANCE,
                MIN_EXTRINSIC_PRECISION,
                dtype,
            );
        }
        let projected = cube_primitive(from_cube::<2>(h_g).matmul(vectors.clone())).ok()?;
        let weighted = empty_like(&z, &[batch, measurements], DType::F32);
        let tau_new = empty_like(&z, &[batch, 1], DType::F32);
        // SAFETY: as above; `precision` is read at `m·stride(1)`, `m < M`.
        unsafe {
            ep_gaussian_kernel::launch_unchecked(
                &client,
                count.clone(),
                dim,
                projected.into_tensor_arg(),
                precision.clone().into_tensor_arg(),
                tau_g.into_tensor_arg(),
                weighted.clone().into_tensor_arg(),
                tau_new.clone().into_tensor_arg(),
                measurements,
                dtype,
            );
        }
        let h_new = cube_primitive(from_cube::<2>(weighted).matmul(transposed.clone())).ok()?;
        // SAFETY: as above; `h`, `tau` and `done` are the contiguous buffers made here, each
        // image's written only by its own cube.
        unsafe {
            ep_damp_kernel::launch_unchecked(
                &client,
                count.clone(),
                dim,
                h_new.into_tensor_arg(),
                tau_new.into_tensor_arg(),
                h.clone().into_tensor_arg(),
                tau.clone().into_tensor_arg(),
                done.clone().into_tensor_arg(),
                measurements,
                config.damping,
                config.tolerance,
                iteration > 0,
                dtype,
            );
        }
    }
    Some((from_cube(h), from_cube(tau)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EDGE_LIMIT, MIN_VARIANCE};
    use burn::tensor::{Device, TensorData, Tolerance};

    fn tensor2(values: Vec<f32>, dims: [usize; 2], device: &Device) -> Tensor<2> {
        Tensor::from_data(TensorData::new(values, dims), device)
    }

    /// The pseudo-likelihood's standard deviations as tensor operations (`qcs::pseudo_variances`).
    fn stds(row_norms_sq: Tensor<1>, sigma_t: f32, noise_std: f32) -> Tensor<2> {
        let m = row_norms_sq.dims()[0];
        (row_norms_sq * (sigma_t * sigma_t) + noise_std * noise_std)
            .clamp_min(MIN_VARIANCE)
            .reshape([1, m])
            .sqrt()
    }

    /// The tensor operations' result: pseudo-variances, then the one-sided gradient.
    fn expected(
        z: Tensor<2>,
        lower: Tensor<2>,
        upper: Tensor<2>,
        row_norms_sq: Tensor<1>,
        sigma_t: f32,
        noise_std: f32,
    ) -> TensorData {
        let std = stds(row_norms_sq, sigma_t, noise_std);
        crate::qcs::one_sided_gradient(z, lower, upper, std).into_data()
    }

    #[test]
    fn fused_one_bit_score_matches_the_tensor_operations() {
        for device in qcs_testkit::wgpu_devices() {
            // Three images × six measurements: z from deep inside its bin to far outside it
            // (erfcx's both branches), bins open above and below, edges at 0 and elsewhere.
            let (b, m) = (3, 6);
            let z: Vec<f32> = (0..b * m).map(|i| (i as f32 - 8.5) * 4.7).collect();
            let open_above = |i: usize| !(i * 7 + i / m).is_multiple_of(3);
            let edge = |i: usize| [0.0, 0.3, -1.2][i % 3];
            let lower: Vec<f32> = (0..b * m)
                .map(|i| if open_above(i) { edge(i) } else { -EDGE_LIMIT })
                .collect();
            let upper: Vec<f32> = (0..b * m)
                .map(|i| if open_above(i) { EDGE_LIMIT } else { edge(i) })
                .collect();
            let norms: Vec<f32> = (0..m).map(|j| 0.5 + j as f32 * 0.4).collect();
            let z = tensor2(z, [b, m], &device);
            let lower = tensor2(lower, [b, m], &device);
            let upper = tensor2(upper, [b, m], &device);
            let norms = Tensor::<1>::from_data(TensorData::new(norms, [m]), &device);
            // Large, small and vanishing σ_t (the last one at the variance floor).
            for (sigma_t, noise_std) in [(3.0, 0.05), (0.02, 0.05), (0.0, 0.0)] {
                let want = expected(
                    z.clone(),
                    lower.clone(),
                    upper.clone(),
                    norms.clone(),
                    sigma_t,
                    noise_std,
                );
                let got = quantized_gradient(
                    z.clone(),
                    lower.clone(),
                    upper.clone(),
                    norms.clone(),
                    sigma_t,
                    noise_std,
                    true,
                )
                .unwrap_or_else(|_| panic!("the kernel must apply"));
                got.into_data()
                    .assert_approx_eq::<f32>(&want, Tolerance::relative(1e-5));
            }
            // Edges shared by every image through a broadcast view (stride 0 over the images).
            let shared_lower = lower.clone().slice([0..1, 0..m]).expand([b, m]);
            let shared_upper = upper.clone().slice([0..1, 0..m]).expand([b, m]);
            let want = expected(
                z.clone(),
                shared_lower.clone(),
                shared_upper.clone(),
                norms.clone(),
                0.7,
                0.1,
            );
            let got = quantized_gradient(z, shared_lower, shared_upper, norms, 0.7, 0.1, true)
                .unwrap_or_else(|_| panic!("the kernel must apply"));
            got.into_data()
                .assert_approx_eq::<f32>(&want, Tolerance::relative(1e-5));
        }
    }

    /// Bins of a 2-bit quantizer (outer ones open), a narrow bin and a bin far from zero, each
    /// against z from inside it to far outside it on both sides, `[10, 7]`: every regime of the
    /// bins (upper and lower tail, straddling, narrow, far tail) and erf's both branches. Column
    /// [`NARROW`] holds the narrow bin.
    fn bin_grid(device: &Device) -> (Tensor<2>, Tensor<2>, Tensor<2>) {
        let bins: [(f32, f32); 7] = [
            (-EDGE_LIMIT, -1.0),
            (-1.0, 0.0),
            (0.0, 1.0),
            (1.0, EDGE_LIMIT),
            (0.25, 0.250_01),
            (-3.0, 2.5),
            (40.0, 41.0),
        ];
        let offsets = [-60.0f32, -7.0, -1.3, -0.4, 0.0, 0.2, 0.9, 3.0, 11.0, 55.0];
        let (b, m) = (offsets.len(), bins.len());
        let mut z = Vec::new();
        let (mut lower, mut upper) = (Vec::new(), Vec::new());
        for offset in offsets {
            for (l, u) in bins {
                let centre = if l <= -EDGE_LIMIT {
                    u
                } else if u >= EDGE_LIMIT {
                    l
                } else {
                    (l + u) / 2.0
                };
                z.push(centre + offset);
                lower.push(l);
                upper.push(u);
            }
        }
        (
            tensor2(z, [b, m], device),
            tensor2(lower, [b, m], device),
            tensor2(upper, [b, m], device),
        )
    }

    /// The narrow bin's column in [`bin_grid`]. Seen from afar it is the tail regime's
    /// cancellation erfcx(a') − r·erfcx(b') with r = e^(−δ), δ ~ 1e-3: a rounding difference of
    /// 1e-7 (an FMA, an exp) grows to 1e-4 there, the accuracy the operations have against f64
    /// for such bins (tests/likelihood/stability.rs).
    const NARROW: usize = 4;

    /// Relative tolerance of `first` between the kernels and the operations in column `j`.
    fn first_tolerance(j: usize) -> f32 {
        if j == NARROW {
            2e-4
        } else {
            2e-5
        }
    }

    #[test]
    fn fused_bin_score_matches_the_tensor_operations() {
        for device in qcs_testkit::wgpu_devices() {
            let (z, lower, upper) = bin_grid(&device);
            let m = z.dims()[1];
            let norms: Vec<f32> = (0..m).map(|j| 0.3 + j as f32 * 0.25).collect();
            let norms = Tensor::<1>::from_data(TensorData::new(norms, [m]), &device);
            for (sigma_t, noise_std) in [(2.0, 0.1), (0.05, 0.1), (0.0, 1e-3), (0.0, 0.0)] {
                let std = stds(norms.clone(), sigma_t, noise_std);
                let want =
                    crate::qcs::quantized_gradient(z.clone(), lower.clone(), upper.clone(), std)
                        .into_data();
                let got = quantized_gradient(
                    z.clone(),
                    lower.clone(),
                    upper.clone(),
                    norms.clone(),
                    sigma_t,
                    noise_std,
                    false,
                )
                .unwrap_or_else(|_| panic!("the kernel must apply"));
                let (got, want) = (
                    got.into_data().try_to_vec::<f32>().unwrap(),
                    want.try_to_vec::<f32>().unwrap(),
                );
                for (k, (g, w)) in got.iter().zip(&want).enumerate() {
                    let tolerance = first_tolerance(k % m);
                    assert!(
                        w.is_finite() && (g - w).abs() <= tolerance * w.abs() + 1e-30,
                        "σ_t = {sigma_t}, σ = {noise_std}, measurement {k}: fused {g}, \
                         operations {w}"
                    );
                }
            }
        }
    }

    #[test]
    fn fused_ep_moments_and_gradient_match_the_tensor_operations() {
        for device in qcs_testkit::wgpu_devices() {
            let (z, lower, upper) = bin_grid(&device);
            let [b, m] = z.dims();
            // Cavity precisions from 1e-5 to 1e4 (deviations from 316 to 0.01), one per image,
            // and cavity shifts h/τ of a few units either way.
            let tau: Vec<f32> = (0..b).map(|i| 10f32.powi(i as i32 - 5)).collect();
            let h: Vec<f32> = (0..b * m)
                .map(|k| tau[k / m] * 0.25 * ((k % m) as f32 - 3.0))
                .collect();
            let h = tensor2(h, [b, m], &device);
            let tau = tensor2(tau, [b, 1], &device);

            let mean = z.clone() + h.clone() / tau.clone();
            let std = tau.clone().sqrt().recip();
            let (want_mean, want_var) = crate::ep::truncated_moments(
                mean.clone(),
                std.clone(),
                lower.clone(),
                upper.clone(),
            );
            let want_g = crate::qcs::quantized_gradient(
                mean.clone(),
                lower.clone(),
                upper.clone(),
                std.clone(),
            );
            let (got_mean, got_var) = ep_moments(
                z.clone(),
                h.clone(),
                tau.clone(),
                lower.clone(),
                upper.clone(),
            )
            .expect("the kernel must apply");
            let (lower_copy, upper_copy) = (lower.clone(), upper.clone());
            let got_g = ep_gradient(z, h, tau, lower, upper).expect("the kernel must apply");

            let host = |t: Tensor<2>| t.into_data().try_to_vec::<f32>().unwrap();
            let (edges_l, edges_u) = (host(lower_copy), host(upper_copy));
            let (mean, std) = (host(mean), host(std));
            let (want_mean, want_var, want_g) = (host(want_mean), host(want_var), host(want_g));
            let (got_mean, got_var, got_g) = (host(got_mean), host(got_var), host(got_g));
            for k in 0..b * m {
                let s = std[k / m];
                let first = (want_mean[k] - mean[k]) / s;
                // A bin narrow against the cavity's deviation is a difference of nearly equal
                // terms, whose rounding grows as its relative size shrinks: Φ(b) − Φ(a) ~ w for a
                // bin around the mean, erfcx(a') − e^(−δ)·erfcx(b') ~ δ = w·(t + w/2) for one at
                // a distance t (w and t in deviations).
                let (l, u) = (edges_l[k], edges_u[k]);
                let width = ((u - l) / s).min(1e6);
                let distance = ((l - mean[k]).max(mean[k] - u) / s).max(0.0);
                let gap = if distance > 0.0 {
                    width * (distance + width / 2.0)
                } else {
                    width
                };
                let tolerance = (2e-5 + 5e-7 / gap.min(1.0)).min(1e-2);
                let at = format!("image {}, bin {}", k / m, k % m);
                assert!(
                    (got_mean[k] - want_mean[k]).abs()
                        <= 1e-6 * mean[k].abs() + tolerance * (first.abs() + 1.0) * s,
                    "{at}: mean {} against {}",
                    got_mean[k],
                    want_mean[k]
                );
                // Up to 10 deviations out, 1 + second − first² cancels as the bin recedes (both
                // terms grow as the distance squared): the operations' own rounding is
                // 1e-7·(1 + first²). Beyond, both take the far tail's closed form.
                let var_tolerance = if distance > 10.5 {
                    1e-4 * want_var[k]
                } else {
                    (2e-6 * (1.0 + first * first) + tolerance) * s * s
                };
                assert!(
                    want_var[k].is_finite()
                        && (got_var[k] - want_var[k]).abs() <= var_tolerance + 1e-30,
                    "{at}: variance {} against {}",
                    got_var[k],
                    want_var[k]
                );
                assert!(
                    (got_g[k] - want_g[k]).abs() <= tolerance * want_g[k].abs() + 1e-30,
                    "{at}: gradient {} against {}",
                    got_g[k],
                    want_g[k]
                );
            }
        }
    }

    #[test]
    fn the_kernel_leaves_cpu_autodiff_and_misshapen_tensors_alone() {
        for device in qcs_testkit::non_kernel_devices() {
            let t = || Tensor::<2>::ones([2, 3], &device);
            let norms = || Tensor::<1>::ones([3], &device);
            for one_bit in [true, false] {
                assert!(quantized_gradient(t(), t(), t(), norms(), 1.0, 0.1, one_bit).is_err());
            }
            let tau = || Tensor::<2>::ones([2, 1], &device);
            assert!(ep_moments(t(), t(), tau(), t(), t()).is_none());
            assert!(ep_gradient(t(), t(), tau(), t(), t()).is_none());
        }
        for device in qcs_testkit::wgpu_devices() {
            let t = || Tensor::<2>::ones([2, 3], &device);
            let norms = Tensor::<1>::ones([4], &device);
            assert!(quantized_gradient(t(), t(), t(), norms, 1.0, 0.1, true).is_err());
        }
    }
}
