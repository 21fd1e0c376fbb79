//! Exponential moving average of the parameters, the weights used for sampling (one kernel per
//! parameter on the GPU backends: `cube` feature).

use std::collections::VecDeque;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::Tensor;

/// `θ_ema ← μ θ_ema + (1 − μ) θ` for every parameter `θ` of `model` that is trained (requires
/// gradients); the others (NCSNv2's noise levels) are copied. `ema` is a copy of `model` without
/// autodiff (from [`Module::valid`]) and `model` the training model on an autodiff device; both
/// have the same structure, and parameters are matched in traversal order.
pub fn ema_update<M: Module>(ema: M, model: &M, rate: f64) -> M {
    let mut collector = Collector::default();
    model.visit(&mut collector);
    ema.map(&mut Blender {
        params: collector.params,
        rate,
    })
}

/// One parameter of the training model, flattened.
struct Source {
    trained: bool,
    value: Tensor<1>,
}

/// Collects the training model's float parameters, detached from autodiff.
#[derive(Default)]
struct Collector {
    params: VecDeque<Source>,
}

impl ModuleVisitor for Collector {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let value = param.val();
        let trained = value.is_require_grad();
        let size = value.shape().num_elements();
        self.params.push_back(Source {
            trained,
            value: value.inner().reshape([size]),
        });
    }
}

/// Blends the collected parameters into the EMA model's.
struct Blender {
    params: VecDeque<Source>,
    rate: f64,
}

impl ModuleMapper for Blender {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let Some(source) = self.params.pop_front() else {
            return param;
        };
        let rate = self.rate;
        param.map(|ema| {
            let value = source.value.reshape(ema.dims());
            if source.trained {
                #[cfg(feature = "cube")]
                let (ema, value) = match super::cube::ema_blend(ema, value, rate) {
                    Ok(blended) => return blended,
                    Err(both) => both,
                };
                ema.mul_scalar(rate) + value.mul_scalar(1.0 - rate)
            } else {
                value
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    #[derive(Module, Debug)]
    struct Pair {
        trained: Param<Tensor<2>>,
        frozen: Param<Tensor<1>>,
    }

    fn pair(trained: [[f32; 2]; 1], frozen: [f32; 2], device: &Device) -> Pair {
        Pair {
            trained: Param::from_data(trained, device),
            frozen: Param::from_data(frozen, device).set_require_grad(false),
        }
    }

    #[test]
    fn trained_parameters_move_towards_the_model_and_frozen_ones_are_copied() {
        let device = Device::flex().autodiff();
        let ema = pair([[1.0, 2.0]], [5.0, 6.0], &device).valid();
        let model = pair([[3.0, 4.0]], [7.0, 8.0], &device);
        let ema = ema_update(ema, &model, 0.9);
        let trained = ema
            .trained
            .val()
            .into_data()
            .try_to_vec::<f32>()
            .expect("f32");
        // 0.9·1 + 0.1·3 = 1.2 and 0.9·2 + 0.1·4 = 2.2.
        assert!((trained[0] - 1.2).abs() < 1e-6 && (trained[1] - 2.2).abs() < 1e-6);
        let frozen = ema
            .frozen
            .val()
            .into_data()
            .try_to_vec::<f32>()
            .expect("f32");
        assert_eq!(frozen, [7.0, 8.0]);
        assert!(!ema.trained.val().is_autodiff());
    }

    #[test]
    fn rate_one_keeps_the_average_and_rate_zero_copies_the_model() {
        let device = Device::flex().autodiff();
        let model = pair([[3.0, 4.0]], [7.0, 8.0], &device);
        let start = pair([[1.0, 2.0]], [5.0, 6.0], &device).valid();
        let kept = ema_update(start.clone(), &model, 1.0);
        let copied = ema_update(start, &model, 0.0);
        let values = |p: &Pair| {
            p.trained
                .val()
                .into_data()
                .try_to_vec::<f32>()
                .expect("f32")
        };
        assert_eq!(values(&kept), [1.0, 2.0]);
        assert_eq!(values(&copied), [3.0, 4.0]);
    }
}
