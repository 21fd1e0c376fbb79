//! Adam whose whole update of a parameter is one CubeCL kernel on the GPU backends (`cube`
//! feature).
//!
//! burn's Adam updates a parameter with 13 tensor operations (the two moments, the bias-corrected
//! step, the subtraction), each a kernel launch: about 2,000 per training step of NCSNv2's 153
//! parameter tensors, a quarter of all its launches. [`FusedAdam`] computes the same numbers in the
//! same order in one kernel per parameter and keeps burn's state ([`AdamState`]), so checkpoints
//! read and write as before; on the CPU backends, and for anything the kernel does not take, it is
//! burn's Adam.

use burn::optim::{Adam, AdamConfig, AdamState, LearningRate, Optimizer};
use burn::tensor::{Device, Tensor};

/// Adam with β₁, β₂ and ε (no weight decay, no AMSGrad: what qcs trains with).
#[derive(Clone)]
pub(crate) struct FusedAdam {
    /// burn's Adam, for the tensors the kernel does not take.
    inner: Adam,
    #[cfg_attr(not(feature = "cube"), allow(dead_code))]
    constants: AdamConstants,
}

/// Adam's constants, as burn's Adam holds them (f32).
#[derive(Clone, Copy, Debug)]
pub(crate) struct AdamConstants {
    pub beta_1: f32,
    pub beta_2: f32,
    pub epsilon: f32,
}

impl FusedAdam {
    pub(crate) fn new(constants: AdamConstants) -> Self {
        let config = AdamConfig::new()
            .with_beta_1(constants.beta_1)
            .with_beta_2(constants.beta_2)
            .with_epsilon(constants.epsilon);
        Self {
            inner: config.build(),
            constants,
        }
    }
}

impl Optimizer for FusedAdam {
    type State<const D: usize> = AdamState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        #[cfg(feature = "cube")]
        let (tensor, grad, state) =
            match super::cube::adam_step(self.constants, lr, tensor, grad, state) {
                Ok((tensor, state)) => return (tensor, Some(state)),
                Err(inputs) => inputs,
            };
        self.inner.step(lr, tensor, grad, state)
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        Adam::to_device(state, device)
    }
}
