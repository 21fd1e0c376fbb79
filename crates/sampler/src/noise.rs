//! The sampler's randomness: drawn on the host from a seeded ChaCha8 generator and uploaded, so that a seed
//! gives the same start and the same noise on every backend (and independently of other users of the device
//! generator, such as tests running in parallel).

use burn::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

/// A seeded stream of start states and Langevin noise of one fixed shape [B, C, H, W].
pub(crate) struct HostNoise {
    rng: ChaCha8Rng,
    shape: [usize; 4],
    device: Device,
}

impl HostNoise {
    pub(crate) fn new(seed: u64, shape: [usize; 4], device: &Device) -> Self {
        Self {
            rng: ChaCha8Rng::seed_from_u64(seed),
            shape,
            device: device.clone(),
        }
    }

    /// x ~ U[0, 1)^shape.
    pub(crate) fn uniform(&mut self) -> Tensor<4> {
        let values = (0..self.numel())
            .map(|_| self.rng.random::<f32>())
            .collect();
        self.upload(values)
    }

    /// ξ ~ N(0, I) of the stream's shape.
    pub(crate) fn normal(&mut self) -> Tensor<4> {
        let values = (0..self.numel())
            .map(|_| self.rng.sample::<f32, _>(StandardNormal))
            .collect();
        self.upload(values)
    }

    fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    fn upload(&self, values: Vec<f32>) -> Tensor<4> {
        Tensor::from_data(TensorData::new(values, self.shape), &self.device)
    }
}
