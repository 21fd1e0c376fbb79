//! InstanceNorm++ followed by the ELU (what every InstanceNorm++ of NCSNv2 feeds) as one
//! differentiable operation with its backward pass written by hand. As tensor operations
//! (`norm::InstanceNorm2dPlus::forward` and the tracked ELU) a training step records some 27
//! operations per normalization forward and their backward passes, with the gradients of the
//! broadcast `[B, C, 1, 1]` factors summed back over the planes: about 90 kernel launches per
//! normalization on a GPU, seven here, and the MNIST network (ngf 32) has 17 normalizations.
//!
//! - Flex (the CPU backend, the `flex` feature): both passes are loops over the planes, on every
//!   core, for f32 tensors; outside autodiff (sampling on the CPU) the forward loops serve too.
//! - Cube (wgpu, the `cube` feature): three kernels forward (those of the sampler's fused
//!   normalization, `blocks::cube`) and four backward.
//! - Anything else (ndarray, 16-bit floats, one channel) comes back as `Err`, and the caller
//!   takes the tensor operations.
//!
//! The backward pass, per plane `p = (b, c)` of `n = H·W` values with mean `μ`, variance `s²`,
//! `x̂ = (x − μ)/√(s² + ε)`, relative mean `r_c = (μ_c − m)/R` (`m`, `R² − ε` the mean and
//! unbiased variance of the plane means of batch element `b`), the ELU's input
//! `o = γ·(x̂ + α·r) + β` and `g′ = g·elu′(o)`:
//!
//! - `∂β_c = Σ_b S1`, `∂γ_c = Σ_b (S2 + α_c·r·S1)`, `∂α_c = Σ_b γ_c·r·S1`, with `S1 = Σ g′` and
//!   `S2 = Σ g′·x̂` over the plane;
//! - `∂x = γ/√(s² + ε)·(g′ − S1/n − x̂·S2/n) + ∂μ/n`: instance normalization's own gradient, and
//!   the gradient `∂μ_c = (G_c − Ḡ − T·r_c/(C − 1))/R` reaching the plane mean through the
//!   relative means, where `G_c = γ_c·α_c·S1_c`, `Ḡ` their mean over the channels and
//!   `T = Σ_c G_c·r_c`.
//!
//! The operation keeps its input, its output (from which `elu′(o) = y + 1` where `y ≤ 0`, with no
//! exponential) and the per-plane statistics.

// `Err` hands the caller's own tensor back (the fused operation does not apply), not an error.
#![allow(clippy::result_large_err)]

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::{
    BalancedCheckpointing, CheckpointStrategy, NoCheckpointing,
};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::Autodiff;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, BackendTensor, DispatchTensorKind, GradientCheckpointingStrategy};
use burn::tensor::Tensor;

use super::dispatch::Applied;

/// The two passes of InstanceNorm++ and the ELU on one backend.
trait NormEluPasses: Backend {
    /// What the backward pass keeps of the forward pass.
    type Saved: Clone + Send + std::fmt::Debug + 'static;

    /// `elu(InstanceNorm++(x))` for `x` `[B, C, H, W]` and parameters `α`, `γ`, `β` `[C]`, and
    /// what its backward pass needs.
    fn norm_elu_forward(
        x: FloatTensor<Self>,
        params: [FloatTensor<Self>; 3],
        epsilon: f64,
    ) -> (FloatTensor<Self>, Self::Saved);

    /// The gradients of `x`, `α`, `γ` and `β` given the output's.
    fn norm_elu_backward(saved: Self::Saved, grad: FloatTensor<Self>) -> [FloatTensor<Self>; 4];
}

/// `elu(InstanceNorm++(x))` as one tracked operation when autodiff tracks `x` on a backend with
/// [`NormEluPasses`], or as loops on the CPU outside autodiff; `Err(x)` elsewhere (see the module
/// docs). `alpha`, `gamma` and `beta` are the layer's parameters, of `x`'s device.
pub(crate) fn instance_norm_elu(
    x: Tensor<4>,
    alpha: Tensor<1>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    epsilon: f64,
) -> Result<Tensor<4>, Tensor<4>> {
    let [batch, channels, _, _] = x.dims();
    if channels < 2 || batch > 65_535 {
        return Err(x);
    }
    let params = [alpha, gamma, beta].map(|p| p.into_dispatch().kind);
    super::dispatch::apply(x, |kind, strategy| match strategy {
        Some(strategy) => tracked(kind, params, strategy, epsilon),
        None => untracked(kind, params, epsilon),
    })
}

/// The forward loops on an untracked backend tensor `x` and the parameters' where this build has
/// them (flex); `x`'s kind back elsewhere.
fn untracked(kind: DispatchTensorKind, params: [DispatchTensorKind; 3], epsilon: f64) -> Applied {
    match kind {
        #[cfg(feature = "flex")]
        DispatchTensorKind::Flex(BackendTensor::Float(t)) if flex::applies(&t) => {
            match params.map(flex::untracked_param) {
                [Some(a), Some(g), Some(b)] => {
                    let (y, _) = <burn::backend::Flex as NormEluPasses>::norm_elu_forward(
                        t,
                        [a, g, b],
                        epsilon,
                    );
                    Ok(DispatchTensorKind::Flex(BackendTensor::Float(y)))
                }
                _ => Err(DispatchTensorKind::Flex(BackendTensor::Float(t))),
            }
        }
        other => {
            let _ = (params, epsilon);
            Err(other)
        }
    }
}

/// The tracked operation on the backend tensor inside an autodiff tensor `x` with the parameters'
/// (`params`, dispatch kinds of the same device); `x`'s kind back where no backend of this build
/// has [`NormEluPasses`] for them.
fn tracked(
    inner: DispatchTensorKind,
    params: [DispatchTensorKind; 3],
    strategy: GradientCheckpointingStrategy,
    epsilon: f64,
) -> Applied {
    // The parameters' backend tensors inside their autodiff tensors, when they are `$variant`'s
    // and `$applies`.
    macro_rules! params_of {
        ($variant:ident, $applies:expr) => {
            params.map(|p| match p {
                DispatchTensorKind::Autodiff(inner) => match *inner {
                    DispatchTensorKind::$variant(BackendTensor::Autodiff(p))
                        if $applies(p.primitive()) =>
                    {
                        Some(p)
                    }
                    _ => None,
                },
                _ => None,
            })
        };
    }
    match inner {
        #[cfg(feature = "flex")]
        DispatchTensorKind::Flex(BackendTensor::Autodiff(t)) if flex::applies(t.primitive()) => {
            match params_of!(Flex, flex::applies) {
                [Some(a), Some(g), Some(b)] => {
                    Ok(DispatchTensorKind::Flex(BackendTensor::Autodiff(
                        with_strategy::<burn::backend::Flex>(t, [a, g, b], strategy, epsilon),
                    )))
                }
                _ => Err(DispatchTensorKind::Flex(BackendTensor::Autodiff(t))),
            }
        }
        #[cfg(feature = "cube")]
        DispatchTensorKind::Cube(BackendTensor::Autodiff(t))
            if qcs_cube::readable_f32(t.primitive()) =>
        {
            match params_of!(Cube, qcs_cube::readable_f32) {
                [Some(a), Some(g), Some(b)] => {
                    Ok(DispatchTensorKind::Cube(BackendTensor::Autodiff(
                        with_strategy::<burn::backend::Cube>(t, [a, g, b], strategy, epsilon),
                    )))
                }
                _ => Err(DispatchTensorKind::Cube(BackendTensor::Autodiff(t))),
            }
        }
        other => {
            let _ = (params, strategy, epsilon);
            Err(other)
        }
    }
}

/// [`norm_elu_tracked`] under the run's checkpointing strategy (the type the dispatch names it
/// by).
fn with_strategy<B: NormEluPasses>(
    x: FloatTensor<Autodiff<B>>,
    params: [FloatTensor<Autodiff<B>>; 3],
    strategy: GradientCheckpointingStrategy,
    epsilon: f64,
) -> FloatTensor<Autodiff<B>> {
    match strategy {
        GradientCheckpointingStrategy::Balanced => {
            norm_elu_tracked::<B, BalancedCheckpointing>(x, params, epsilon)
        }
        GradientCheckpointingStrategy::Disabled => {
            norm_elu_tracked::<B, NoCheckpointing>(x, params, epsilon)
        }
    }
}

/// The backward step; [`NormEluPasses::Saved`] is its state.
#[derive(Debug)]
struct NormEluBackward;

impl<B: NormEluPasses> Backward<B, 4> for NormEluBackward {
    type State = B::Saved;

    fn backward(self, ops: Ops<Self::State, 4>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        let gradients = B::norm_elu_backward(ops.state, grad);
        for (parent, gradient) in ops.parents.into_iter().zip(gradients) {
            if let Some(parent) = parent {
                grads.register::<B>(parent.id, gradient);
            }
        }
    }
}

/// `elu(InstanceNorm++(x))` recorded as one operation of four inputs (`x`, `α`, `γ`, `β`) whose
/// backward pass is [`NormEluPasses::norm_elu_backward`]. Compute-bound: a checkpointing run
/// keeps its state rather than recomputing it.
fn norm_elu_tracked<B: NormEluPasses, C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<B, C>>,
    params: [FloatTensor<Autodiff<B, C>>; 3],
    epsilon: f64,
) -> FloatTensor<Autodiff<B, C>> {
    let [alpha, gamma, beta] = params;
    let nodes = [x.node(), alpha.node(), gamma.node(), beta.node()];
    let params = [alpha, gamma, beta].map(|p| p.into_primitive());
    match NormEluBackward
        .prepare::<C>(nodes)
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let (y, saved) = B::norm_elu_forward(x.into_primitive(), params, epsilon);
            prep.finish(saved, y)
        }
        OpsKind::UnTracked(prep) => {
            prep.finish(B::norm_elu_forward(x.into_primitive(), params, epsilon).0)
        }
    }
}

/// Both passes as loops over the planes of f32 tensors on the CPU, statistics accumulated in f64.
#[cfg(feature = "flex")]
mod flex {
    use super::NormEluPasses;
    use burn::backend::flex::FlexTensor;
    use burn::backend::{BackendTensor, DispatchTensorKind, Flex};
    use burn::tensor::TensorData;
    use rayon::prelude::*;
    use std::sync::Arc;

    // The ELU's: f32 tensors only, tasks of about `CHUNK` elements, values in row-major order.
    pub(super) use crate::blocks::elu_autodiff::flex::applies;
    use crate::blocks::elu_autodiff::flex::{row_major, CHUNK};

    /// A parameter's CPU tensor outside autodiff, when it is an f32 one.
    pub(super) fn untracked_param(kind: DispatchTensorKind) -> Option<FlexTensor> {
        match kind {
            DispatchTensorKind::Flex(BackendTensor::Float(t)) if applies(&t) => Some(t),
            _ => None,
        }
    }

    fn tensor(values: Vec<f32>, shape: &[usize]) -> FlexTensor {
        FlexTensor::from_data(TensorData::new(values, shape.to_vec()))
    }

    /// The per-plane statistics of one forward pass (`[B, C]` row-major, `inv_spread` `[B]`).
    #[derive(Debug)]
    pub(super) struct Stats {
        dims: [usize; 4],
        alpha: Vec<f32>,
        gamma: Vec<f32>,
        mean: Vec<f32>,
        inv_std: Vec<f32>,
        scale: Vec<f32>,
        shift: Vec<f32>,
        rel: Vec<f32>,
        inv_spread: Vec<f32>,
    }

    /// The input and the output in row-major order, and the statistics.
    #[derive(Clone, Debug)]
    pub(super) struct Saved {
        x: FlexTensor,
        y: FlexTensor,
        stats: Arc<Stats>,
    }

    /// Tasks of whole planes of `n` values, about [`CHUNK`] values each.
    fn planes_per_task(n: usize) -> usize {
        (CHUNK / n.max(1)).max(1)
    }

    /// `elu(o)`.
    fn elu(o: f32) -> f32 {
        if o > 0.0 {
            o
        } else {
            o.exp() - 1.0
        }
    }

    /// `elu′(o)·g` from the output `y = elu(o)`: `g` where `y > 0`, `g·(y + 1) = g·eᵒ` elsewhere
    /// (no exponential: the backward pass keeps the output).
    fn elu_grad(y: f32, g: f32) -> f32 {
        if y > 0.0 {
            g
        } else {
            g * (y + 1.0)
        }
    }

    /// The values of a row-major f32 tensor.
    fn values(t: &FlexTensor) -> &[f32] {
        t.as_slice::<f32>()
            .unwrap_or_else(|| unreachable!("a row-major f32 tensor"))
    }

    impl NormEluPasses for Flex {
        type Saved = Saved;

        fn norm_elu_forward(
            x: FlexTensor,
            [alpha, gamma, beta]: [FlexTensor; 3],
            epsilon: f64,
        ) -> (FlexTensor, Saved) {
            let dims = x.layout().shape().dims::<4>();
            let [batch, channels, height, width] = dims;
            let n = height * width;
            let x = x.to_contiguous();
            let xs = values(&x);
            let [alpha, gamma, beta] = [&alpha, &gamma, &beta].map(|p| row_major(p).into_owned());

            // Per plane: the mean and the (biased) variance, in two passes.
            let moments: Vec<(f64, f64)> = xs
                .par_chunks(n)
                .with_min_len(planes_per_task(n))
                .map(|plane| {
                    let mean = plane.iter().map(|&v| f64::from(v)).sum::<f64>() / n as f64;
                    let var = plane
                        .iter()
                        .map(|&v| (f64::from(v) - mean).powi(2))
                        .sum::<f64>()
                        / n as f64;
                    (mean, var)
                })
                .collect();

            // Per batch element: the relative means and the affine map of each plane.
            let planes = batch * channels;
            let mut stats = Stats {
                dims,
                mean: vec![0.0; planes],
                inv_std: vec![0.0; planes],
                scale: vec![0.0; planes],
                shift: vec![0.0; planes],
                rel: vec![0.0; planes],
                inv_spread: vec![0.0; batch],
                alpha,
                gamma,
            };
            for b in 0..batch {
                let row = &moments[b * channels..(b + 1) * channels];
                let m = row.iter().map(|&(mu, _)| mu).sum::<f64>() / channels as f64;
                let v = row.iter().map(|&(mu, _)| (mu - m).powi(2)).sum::<f64>()
                    / (channels - 1) as f64;
                let inv_spread = 1.0 / (v + epsilon).sqrt();
                stats.inv_spread[b] = inv_spread as f32;
                for (c, &(mu, var)) in row.iter().enumerate() {
                    let p = b * channels + c;
                    let (a, g) = (f64::from(stats.alpha[c]), f64::from(stats.gamma[c]));
                    let rel = (mu - m) * inv_spread;
                    let inv_std = 1.0 / (var + epsilon).sqrt();
                    stats.mean[p] = mu as f32;
                    stats.inv_std[p] = inv_std as f32;
                    stats.scale[p] = (g * inv_std) as f32;
                    stats.shift[p] = (g * a * rel + f64::from(beta[c])) as f32;
                    stats.rel[p] = rel as f32;
                }
            }

            let mut out = vec![0.0f32; xs.len()];
            out.par_chunks_mut(n)
                .zip(xs.par_chunks(n))
                .enumerate()
                .with_min_len(planes_per_task(n))
                .for_each(|(p, (out, plane))| {
                    let (mu, scale, shift) = (stats.mean[p], stats.scale[p], stats.shift[p]);
                    for (o, &v) in out.iter_mut().zip(plane) {
                        *o = elu((v - mu) * scale + shift);
                    }
                });
            let y = tensor(out, &dims);
            let saved = Saved {
                x,
                y: y.clone(),
                stats: Arc::new(stats),
            };
            (y, saved)
        }

        fn norm_elu_backward(saved: Saved, grad: FlexTensor) -> [FlexTensor; 4] {
            let Saved { x, y, stats } = saved;
            let s = &*stats;
            let [batch, channels, height, width] = s.dims;
            let n = height * width;
            let (xs, ys) = (values(&x), values(&y));
            let grad = row_major(&grad);
            let per_task = planes_per_task(n);

            // Per plane: g′ (into the input gradient's buffer), S1 = Σ g′ and S2 = Σ g′·x̂.
            let mut dx = vec![0.0f32; xs.len()];
            let sums: Vec<(f64, f64)> = dx
                .par_chunks_mut(n)
                .zip(xs.par_chunks(n).zip(ys.par_chunks(n)))
                .zip(grad.par_chunks(n))
                .enumerate()
                .with_min_len(per_task)
                .map(|(p, ((out, (plane, outputs)), g))| {
                    let mu = s.mean[p];
                    let (mut s1, mut sd) = (0.0f64, 0.0f64);
                    for (o, ((&v, &y), &g)) in out.iter_mut().zip(plane.iter().zip(outputs).zip(g))
                    {
                        let g = elu_grad(y, g);
                        *o = g;
                        s1 += f64::from(g);
                        sd += f64::from(g * (v - mu));
                    }
                    (s1, sd * f64::from(s.inv_std[p]))
                })
                .collect();

            // Per plane, the input gradient's coefficients: ∂x = scale·g′ + coef_d·(x − μ) + coef_c.
            let planes = batch * channels;
            let (mut coef_d, mut coef_c) = (vec![0.0f32; planes], vec![0.0f32; planes]);
            // ∂α, ∂γ, ∂β per channel, summed over the batch.
            let mut params = vec![[0.0f64; 3]; channels];
            for b in 0..batch {
                let base = b * channels;
                let weight = |c: usize| f64::from(s.gamma[c]) * f64::from(s.alpha[c]);
                let g_mean = (0..channels)
                    .map(|c| weight(c) * sums[base + c].0)
                    .sum::<f64>()
                    / channels as f64;
                let t = (0..channels)
                    .map(|c| weight(c) * sums[base + c].0 * f64::from(s.rel[base + c]))
                    .sum::<f64>()
                    / (channels - 1) as f64;
                let inv_spread = f64::from(s.inv_spread[b]);
                for (c, [d_alpha, d_gamma, d_beta]) in params.iter_mut().enumerate() {
                    let p = base + c;
                    let (s1, s2) = sums[p];
                    let (scale, rel) = (f64::from(s.scale[p]), f64::from(s.rel[p]));
                    let d_mu = (weight(c) * s1 - g_mean - t * rel) * inv_spread;
                    coef_d[p] = (-scale * s2 * f64::from(s.inv_std[p]) / n as f64) as f32;
                    coef_c[p] = ((d_mu - scale * s1) / n as f64) as f32;
                    *d_alpha += f64::from(s.gamma[c]) * rel * s1;
                    *d_gamma += s2 + f64::from(s.alpha[c]) * rel * s1;
                    *d_beta += s1;
                }
            }

            dx.par_chunks_mut(n)
                .zip(xs.par_chunks(n))
                .enumerate()
                .with_min_len(per_task)
                .for_each(|(p, (out, plane))| {
                    let (mu, scale) = (s.mean[p], s.scale[p]);
                    let (cd, cc) = (coef_d[p], coef_c[p]);
                    for (o, &v) in out.iter_mut().zip(plane) {
                        *o = scale * *o + cd * (v - mu) + cc;
                    }
                });
            let [d_alpha, d_gamma, d_beta] = [0, 1, 2]
                .map(|k| tensor(params.iter().map(|g| g[k] as f32).collect(), &[channels]));
            [tensor(dx, &s.dims), d_alpha, d_gamma, d_beta]
        }
    }
}

#[cfg(feature = "cube")]
impl NormEluPasses for burn::backend::Cube {
    type Saved = super::cube::NormEluSaved;

    fn norm_elu_forward(
        x: FloatTensor<Self>,
        [alpha, gamma, beta]: [FloatTensor<Self>; 3],
        epsilon: f64,
    ) -> (FloatTensor<Self>, Self::Saved) {
        super::cube::norm_elu_forward(x, alpha, gamma, beta, epsilon)
    }

    fn norm_elu_backward(saved: Self::Saved, grad: FloatTensor<Self>) -> [FloatTensor<Self>; 4] {
        super::cube::norm_elu_backward(saved, grad)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocks::activation::elu_ops;
    use crate::blocks::norm::InstanceNorm2dPlusConfig;
    use burn::module::Param;
    use burn::tensor::{Device, TensorData, Tolerance};

    /// The values of `elu(InstanceNorm++(x))` and the gradients of `Σ w ⊙ (that)²` with respect
    /// to `x`, `α`, `γ` and `β` on `device` (an autodiff one), for an `x` of `dims` (laid out
    /// channels-last when `channels_last`, as a convolution's output can be), through the tracked
    /// operation (`fused`) or the tensor operations.
    fn value_and_gradients(
        device: &Device,
        dims: [usize; 4],
        channels_last: bool,
        fused: bool,
    ) -> [TensorData; 5] {
        use rand::SeedableRng;
        use rand_distr::Distribution as _;
        let [b, c, h, w] = dims;
        // The same values for both paths: a seeded generator of the test's own (a device's is
        // shared with the tests that run beside it).
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let mut normal = |count: usize, mean: f32, std: f32| {
            let dist = rand_distr::Normal::new(mean, std).expect("a valid normal");
            (0..count)
                .map(|_| dist.sample(&mut rng))
                .collect::<Vec<f32>>()
        };
        let x_values = normal(b * c * h * w, 0.3, 2.0);
        // Parameters away from their initial values, so that every term matters.
        let [alpha, gamma, beta] =
            [(0.8, 0.5), (1.0, 0.5), (0.1, 0.7)].map(|(mean, std)| normal(c, mean, std));
        let weights = normal(b * c * h * w, 0.0, 1.0);

        let leaf = if channels_last {
            let permuted: Vec<f32> = (0..b * h * w * c)
                .map(|i| {
                    let (n, rest) = (i / (h * w * c), i % (h * w * c));
                    let (y, rest) = (rest / (w * c), rest % (w * c));
                    let (x, ch) = (rest / c, rest % c);
                    x_values[((n * c + ch) * h + y) * w + x]
                })
                .collect();
            Tensor::<4>::from_data(TensorData::new(permuted, [b, h, w, c]), device)
        } else {
            Tensor::<4>::from_data(TensorData::new(x_values, [b, c, h, w]), device)
        }
        .require_grad();
        let x = if channels_last {
            leaf.clone().permute([0, 3, 1, 2])
        } else {
            leaf.clone()
        };
        let param = |values: Vec<f32>| {
            Param::from_tensor(Tensor::<1>::from_data(TensorData::new(values, [c]), device))
        };
        let mut norm = InstanceNorm2dPlusConfig::new(c).init(device);
        norm.alpha = param(alpha);
        norm.gamma = param(gamma);
        norm.beta = param(beta);
        let y = if fused {
            instance_norm_elu(
                x,
                norm.alpha.val(),
                norm.gamma.val(),
                norm.beta.val(),
                norm.epsilon,
            )
            .unwrap_or_else(|_| panic!("the tracked operation must apply"))
        } else {
            elu_ops(norm.forward(x))
        };
        let w = Tensor::<4>::from_data(TensorData::new(weights, [b, c, h, w]), device);
        let grads = (y.clone().powi_scalar(2) * w).sum().backward();
        let grad_of = |p: &Param<Tensor<1>>| p.val().grad(&grads).expect("tracked").into_data();
        let dx = leaf.grad(&grads).expect("x is tracked");
        let dx = if channels_last {
            dx.permute([0, 3, 1, 2])
        } else {
            dx
        };
        [
            y.into_data(),
            dx.into_data(),
            grad_of(&norm.alpha),
            grad_of(&norm.gamma),
            grad_of(&norm.beta),
        ]
    }

    /// The tracked operation against the tensor operations: values and all four gradients, on
    /// small planes and on planes and channel counts above the GPU kernels' 64 units per cube.
    fn check_against_the_tensor_operations(device: &Device) {
        for (dims, channels_last) in [
            ([2, 3, 5, 4], false),
            ([2, 3, 5, 4], true),
            ([3, 70, 9, 10], false),
            ([2, 130, 12, 11], true),
        ] {
            let fused = value_and_gradients(device, dims, channels_last, true);
            let expected = value_and_gradients(device, dims, channels_last, false);
            let names = ["value", "∂x", "∂α", "∂γ", "∂β"];
            for ((got, want), name) in fused.iter().zip(&expected).zip(names) {
                // Relative to the largest expected magnitude: the parameters' gradients sum over
                // the batch and the planes.
                let scale = want.iter::<f32>().fold(1.0f32, |m, v| m.max(v.abs()));
                let tolerance = Tolerance::absolute(2e-5 * f64::from(scale));
                let check = || got.assert_approx_eq::<f32>(want, tolerance);
                if std::panic::catch_unwind(std::panic::AssertUnwindSafe(check)).is_err() {
                    panic!("{name} differs for {dims:?} (channels last: {channels_last})");
                }
            }
        }
    }

    #[cfg(feature = "flex")]
    #[test]
    fn the_tracked_norm_on_the_cpu_has_the_tensor_operations_values_and_gradients() {
        check_against_the_tensor_operations(&Device::flex().autodiff());
        check_against_the_tensor_operations(&Device::flex().autodiff().gradient_checkpointing());
    }

    /// `∂/∂x_i` of `Σ (elu(InstanceNorm++(x)))²·w` by central differences in f64 on the host,
    /// at a few coordinates, against the tracked operation's gradient: a check that needs no
    /// other implementation.
    #[cfg(feature = "flex")]
    #[test]
    fn the_tracked_norm_gradient_matches_central_differences() {
        let (b, c, h, w) = (2usize, 3usize, 3usize, 2usize);
        let n = h * w;
        let x: Vec<f64> = (0..b * c * n)
            .map(|i| ((i * 29 % 17) as f64 - 8.0) * 0.21 + (i % 3) as f64 * 0.4)
            .collect();
        let weights: Vec<f64> = (0..b * c * n).map(|i| (i % 5) as f64 - 1.7).collect();
        let (alpha, gamma, beta) = ([0.7, 1.3, -0.4], [1.1, 0.6, 1.5], [0.2, -0.3, 0.1]);
        let eps = 1e-5;
        let loss = |x: &[f64]| -> f64 {
            let mut total = 0.0;
            for bb in 0..b {
                let means: Vec<f64> = (0..c)
                    .map(|k| {
                        x[(bb * c + k) * n..(bb * c + k + 1) * n]
                            .iter()
                            .sum::<f64>()
                            / n as f64
                    })
                    .collect();
                let m = means.iter().sum::<f64>() / c as f64;
                let spread_var =
                    means.iter().map(|mu| (mu - m).powi(2)).sum::<f64>() / (c - 1) as f64;
                for k in 0..c {
                    let plane = &x[(bb * c + k) * n..(bb * c + k + 1) * n];
                    let var = plane.iter().map(|v| (v - means[k]).powi(2)).sum::<f64>() / n as f64;
                    for (i, &v) in plane.iter().enumerate() {
                        let o = gamma[k]
                            * ((v - means[k]) / (var + eps).sqrt()
                                + alpha[k] * (means[k] - m) / (spread_var + eps).sqrt())
                            + beta[k];
                        let y = if o > 0.0 { o } else { o.exp() - 1.0 };
                        total += y * y * weights[(bb * c + k) * n + i];
                    }
                }
            }
            total
        };
        let device = Device::flex().autodiff();
        let f32s = |values: &[f64]| values.iter().map(|&v| v as f32).collect::<Vec<_>>();
        let xt =
            Tensor::<4>::from_data(TensorData::new(f32s(&x), [b, c, h, w]), &device).require_grad();
        let param = |v: &[f64]| Tensor::<1>::from_data(TensorData::new(f32s(v), [c]), &device);
        let y = instance_norm_elu(xt.clone(), param(&alpha), param(&gamma), param(&beta), eps)
            .unwrap_or_else(|_| panic!("the tracked operation must apply"));
        let wt = Tensor::<4>::from_data(TensorData::new(f32s(&weights), [b, c, h, w]), &device);
        let grads = (y.powi_scalar(2) * wt).sum().backward();
        let dx = xt
            .grad(&grads)
            .expect("x is tracked")
            .into_data()
            .try_to_vec::<f32>()
            .expect("f32 values");
        for i in [0, 5, 7, 16, 23, 35] {
            let step = 1e-5;
            let (mut up, mut down) = (x.clone(), x.clone());
            up[i] += step;
            down[i] -= step;
            let numeric = (loss(&up) - loss(&down)) / (2.0 * step);
            assert!(
                (f64::from(dx[i]) - numeric).abs() < 1e-3 * numeric.abs().max(1.0),
                "∂x[{i}]: {} against {numeric}",
                dx[i]
            );
        }
    }

    #[cfg(feature = "flex")]
    #[test]
    fn the_cpu_norm_outside_autodiff_has_the_tensor_operations_values() {
        use burn::tensor::Distribution;
        let device = Device::flex();
        device.seed(9);
        let mut norm = InstanceNorm2dPlusConfig::new(5).init(&device);
        norm.beta =
            Param::from_tensor(Tensor::random([5], Distribution::Normal(0.0, 1.0), &device));
        let x = Tensor::<4>::random([3, 7, 6, 5], Distribution::Normal(0.4, 2.0), &device)
            .permute([0, 3, 1, 2]);
        let expected = elu_ops(norm.forward(x.clone())).into_data();
        let y = instance_norm_elu(
            x.clone(),
            norm.alpha.val(),
            norm.gamma.val(),
            norm.beta.val(),
            norm.epsilon,
        )
        .unwrap_or_else(|_| panic!("the loops must apply"));
        y.into_data()
            .assert_approx_eq::<f32>(&expected, Tolerance::absolute(1e-5));
        norm.forward_elu(x)
            .into_data()
            .assert_approx_eq::<f32>(&expected, Tolerance::absolute(1e-5));
    }

    #[cfg(feature = "flex")]
    #[test]
    fn one_channel_sixteen_bits_and_ndarray_take_the_tensor_operations() {
        let device = Device::flex();
        let p = |c: usize| Tensor::<1>::ones([c], &device);
        let one_channel = Tensor::<4>::ones([1, 1, 2, 2], &device);
        assert!(instance_norm_elu(one_channel, p(1), p(1), p(1), 1e-5).is_err());
        let half = Tensor::<4>::ones([1, 2, 2, 2], &device).cast(burn::tensor::FloatDType::F16);
        assert!(instance_norm_elu(half, p(2), p(2), p(2), 1e-5).is_err());
        #[allow(deprecated)]
        let ndarray = Device::ndarray().autodiff();
        let x = Tensor::<4>::ones([1, 2, 2, 2], &ndarray).require_grad();
        let q = || Tensor::<1>::ones([2], &ndarray).require_grad();
        assert!(instance_norm_elu(x, q(), q(), q(), 1e-5).is_err());
    }

    #[cfg(feature = "cube")]
    #[test]
    fn the_tracked_norm_on_the_gpu_has_the_tensor_operations_values_and_gradients() {
        for device in qcs_testkit::wgpu_devices() {
            check_against_the_tensor_operations(&device.autodiff());
        }
    }
}
