//! Clipping of the gradient by its global norm (PyTorch's `clip_grad_norm_`).

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::Tensor;

/// Scales every gradient of `model`'s parameters by `max_norm / (‖g‖ + 1e-6)` when the global
/// norm `‖g‖` (over all parameters together) exceeds `max_norm`. Returns the gradients and `‖g‖`
/// before clipping.
pub fn clip_grad_norm<M: Module>(
    model: &M,
    grads: GradientsParams,
    max_norm: f32,
) -> (GradientsParams, f32) {
    let mut norm = SquaredNorm {
        grads: &grads,
        sum: None,
    };
    model.visit(&mut norm);
    let total = norm.sum.map_or(0.0, |sum| sum.into_scalar::<f32>().sqrt());
    let factor = max_norm / (total + 1e-6);
    if factor >= 1.0 {
        return (grads, total);
    }
    let mut scale = Scale { grads, factor };
    model.visit(&mut scale);
    (scale.grads, total)
}

/// Sums the squares of every gradient.
struct SquaredNorm<'a> {
    grads: &'a GradientsParams,
    sum: Option<Tensor<1>>,
}

impl ModuleVisitor for SquaredNorm<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(grad) = self.grads.get::<D>(param.id) {
            let squares = grad.square().sum();
            self.sum = Some(match self.sum.take() {
                Some(sum) => sum + squares,
                None => squares,
            });
        }
    }
}

/// Multiplies every gradient by `factor`.
struct Scale {
    grads: GradientsParams,
    factor: f32,
}

impl ModuleVisitor for Scale {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(grad) = self.grads.remove::<D>(param.id) {
            self.grads.register(param.id, grad.mul_scalar(self.factor));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    #[derive(Module, Debug)]
    struct Two {
        a: Param<Tensor<1>>,
        b: Param<Tensor<2>>,
    }

    fn gradients(device: &Device) -> (Two, GradientsParams) {
        let model = Two {
            a: Param::from_data([1.0f32, 2.0], device),
            b: Param::from_data([[0.5f32]], device),
        };
        // d/dθ of 3·a₀ + 4·b₀₀ = (3, 0) and (4): global norm 5.
        let loss = model.a.val().narrow(0, 0, 1).mul_scalar(3.0)
            + model.b.val().reshape([1]).mul_scalar(4.0);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        (model, grads)
    }

    fn values<const D: usize>(grads: &GradientsParams, param: &Param<Tensor<D>>) -> Vec<f32> {
        grads
            .get::<D>(param.id)
            .expect("gradient")
            .into_data()
            .try_to_vec::<f32>()
            .expect("f32")
    }

    #[test]
    fn large_gradients_are_scaled_to_the_maximum_global_norm() {
        let device = Device::flex().autodiff();
        let (model, grads) = gradients(&device);
        let (clipped, norm) = clip_grad_norm(&model, grads, 1.0);
        assert!((norm - 5.0).abs() < 1e-5);
        let a = values(&clipped, &model.a);
        let b = values(&clipped, &model.b);
        assert!((a[0] - 0.6).abs() < 1e-5 && a[1] == 0.0 && (b[0] - 0.8).abs() < 1e-5);
    }

    #[test]
    fn small_gradients_are_left_alone() {
        let device = Device::flex().autodiff();
        let (model, grads) = gradients(&device);
        let (kept, _) = clip_grad_norm(&model, grads, 10.0);
        assert_eq!(values(&kept, &model.a), [3.0, 0.0]);
    }
}
