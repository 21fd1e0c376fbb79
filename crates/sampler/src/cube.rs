//! The Langevin update in one CubeCL kernel (`cube` feature).
//!
//! As tensor operations, `x + α·(s + λ·g) + c·ξ` is six kernel launches a step; here it is one,
//! with the same arithmetic in the same order. Only for f32 tensors of the Cube backend outside
//! autodiff; anything else comes back as `Err` (see `qcs_cube`).

// `Err` hands the caller's own tensors back (the kernel does not apply), not an error.
#![allow(clippy::result_large_err)]

use burn::tensor::{DType, Tensor};
use qcs_cube::{cube_primitives, element_type, empty_like, from_cube, launch_dims, readable_f32};

use kernels::langevin_update_kernel;

mod kernels {
    use cubecl::prelude::*;

    /// `out = x + (prior + weight·likelihood)·step + noise·noise_scale` (without the likelihood
    /// term when not `conditioned`) for a contiguous `[B, C, H, W]` output; the inputs are read
    /// through their own strides.
    #[cube(launch_unchecked)]
    #[allow(clippy::too_many_arguments)]
    pub(super) fn langevin_update_kernel<F: Float>(
        x: &Tensor<F>,
        prior: &Tensor<F>,
        likelihood: &Tensor<F>,
        noise: &Tensor<F>,
        out: &mut Tensor<F>,
        step: f32,
        weight: f32,
        noise_scale: f32,
        #[comptime] conditioned: bool,
        #[define(F)] _dtype: ElemType,
    ) {
        let i = ABSOLUTE_POS;
        if i >= out.len() {
            terminate!();
        }
        let w = i % out.shape(3);
        let r = i / out.shape(3);
        let h = r % out.shape(2);
        let r = r / out.shape(2);
        let c = r % out.shape(1);
        let b = r / out.shape(1);
        let state = x[b * x.stride(0) + c * x.stride(1) + h * x.stride(2) + w * x.stride(3)];
        let mut drift = prior
            [b * prior.stride(0) + c * prior.stride(1) + h * prior.stride(2) + w * prior.stride(3)];
        if conditioned {
            let g = likelihood[b * likelihood.stride(0)
                + c * likelihood.stride(1)
                + h * likelihood.stride(2)
                + w * likelihood.stride(3)];
            drift += g * F::cast_from(weight);
        }
        let z = noise
            [b * noise.stride(0) + c * noise.stride(1) + h * noise.stride(2) + w * noise.stride(3)];
        out[i] = state + drift * F::cast_from(step) + z * F::cast_from(noise_scale);
    }
}

/// `x + (prior + λ·g)·step + noise·noise_scale` (`likelihood` = `Some((g, λ))`), or without the
/// likelihood term, in one kernel; every tensor `[B, C, H, W]` of one shape. `Err` with the
/// tensors back where the kernel does not apply.
pub(crate) fn langevin_update(
    x: Tensor<4>,
    prior: Tensor<4>,
    likelihood: Option<(Tensor<4>, f32)>,
    noise: Tensor<4>,
    step: f32,
    noise_scale: f32,
) -> Result<Tensor<4>, UpdateInputs> {
    let dims = x.dims();
    let (g, weight) = match likelihood {
        Some((g, weight)) => (Some(g), weight),
        None => (None, 0.0),
    };
    let conditioned = g.is_some();
    // Without a likelihood term the kernel reads `prior` in its place (and ignores it).
    let g_or_prior = g.unwrap_or_else(|| prior.clone());
    let same_shape = [&prior, &g_or_prior, &noise]
        .iter()
        .all(|t| t.dims() == dims);
    let give_back = |[x, prior, g, noise]: [Tensor<4>; 4]| UpdateInputs {
        x,
        prior,
        likelihood: conditioned.then_some((g, weight)),
        noise,
    };
    let tensors = match cube_primitives([x, prior, g_or_prior, noise]) {
        Ok(ts) if same_shape => ts,
        Ok(ts) => return Err(give_back(ts.map(from_cube))),
        Err(ts) => return Err(give_back(ts)),
    };
    if !tensors.iter().all(readable_f32) {
        return Err(give_back(tensors.map(from_cube)));
    }
    let [x, prior, g, noise] = tensors;
    let out = empty_like(&x, &dims, DType::F32);
    let (count, dim) = launch_dims(&out);
    let client = x.client.clone();
    let dtype = element_type(&x);
    // SAFETY: every input has the output's shape `[B, C, H, W]` and is read at its own strides
    // with each index below its dimension; the output is a new contiguous tensor of that shape
    // and no unit writes past it.
    unsafe {
        langevin_update_kernel::launch_unchecked(
            &client,
            count,
            dim,
            x.into_tensor_arg(),
            prior.into_tensor_arg(),
            g.into_tensor_arg(),
            noise.into_tensor_arg(),
            out.clone().into_tensor_arg(),
            step,
            weight,
            noise_scale,
            conditioned,
            dtype,
        );
    }
    Ok(from_cube(out))
}

/// The inputs of [`langevin_update`], handed back where its kernel does not apply.
pub(crate) struct UpdateInputs {
    pub x: Tensor<4>,
    pub prior: Tensor<4>,
    pub likelihood: Option<(Tensor<4>, f32)>,
    pub noise: Tensor<4>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Distribution, Tolerance};

    #[test]
    fn fused_update_matches_the_tensor_operations() {
        for device in qcs_testkit::wgpu_devices() {
            device.seed(5);
            let dims = [2, 3, 5, 4];
            let normal = || Tensor::<4>::random(dims, Distribution::Normal(0.0, 2.0), &device);
            // The prior score as a convolution leaves it: channels-last in memory.
            let prior = Tensor::<4>::random([2, 5, 4, 3], Distribution::Normal(0.0, 30.0), &device)
                .permute([0, 3, 1, 2]);
            let (x, g, xi) = (normal(), normal(), normal());
            let (step, lambda, scale) = (0.013, 0.8, 0.16);
            let want =
                (x.clone() + (prior.clone() + g.clone() * lambda) * step + xi.clone() * scale)
                    .into_data();
            let got = langevin_update(
                x.clone(),
                prior.clone(),
                Some((g, lambda)),
                xi.clone(),
                step,
                scale,
            )
            .unwrap_or_else(|_| panic!("the kernel must apply"));
            got.into_data()
                .assert_approx_eq::<f32>(&want, Tolerance::absolute(1e-5));

            let want = (x.clone() + prior.clone() * step + xi.clone() * scale).into_data();
            let got = langevin_update(x, prior, None, xi, step, scale)
                .unwrap_or_else(|_| panic!("the kernel must apply"));
            got.into_data()
                .assert_approx_eq::<f32>(&want, Tolerance::absolute(1e-5));
        }
    }

    #[test]
    fn the_kernel_hands_cpu_autodiff_and_misshapen_tensors_back() {
        for device in qcs_testkit::non_kernel_devices() {
            let t = || Tensor::<4>::ones([1, 1, 2, 2], &device);
            let back = langevin_update(t(), t(), Some((t(), 2.0)), t(), 0.1, 0.2)
                .expect_err("not a Cube tensor outside autodiff");
            assert_eq!(back.likelihood.map(|(_, w)| w), Some(2.0));
        }
        for device in qcs_testkit::wgpu_devices() {
            let t = || Tensor::<4>::ones([1, 1, 2, 2], &device);
            let other = Tensor::<4>::ones([1, 1, 2, 3], &device);
            assert!(langevin_update(t(), other, None, t(), 0.1, 0.2).is_err());
        }
    }
}
