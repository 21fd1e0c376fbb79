//! The sampler's randomness: drawn on the host from seeded ChaCha8 generators and uploaded, so that a seed
//! gives the same start and the same noise on every backend (and independently of other users of the device
//! generator, such as tests running in parallel).
//!
//! Every chain has a stream of its own, keyed by the run's seed, its image's index in the whole run and its
//! chain index, so an image's chains draw the same numbers whatever batch it is in, whichever images share it
//! and however many chains run beside them.

use burn::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

use crate::error::{Result, SamplerError};

/// Bits of a stream number that hold the chain index; the image index takes the bits above them.
const CHAIN_BITS: u32 = 24;

/// The most chains one image may have, so that its streams stay apart from the next image's.
const MAX_CHAINS: usize = 1 << CHAIN_BITS;

/// The most images one run may index, so that stream numbers fit in 64 bits.
const MAX_IMAGES: u64 = 1 << (64 - CHAIN_BITS);

/// Seeded streams of start states and Langevin noise of one fixed shape [B·chains, C, H, W], one stream per
/// row (the chains of one image are consecutive rows).
pub(crate) struct HostNoise {
    rows: Vec<ChaCha8Rng>,
    row_len: usize,
    shape: [usize; 4],
    device: Device,
}

impl HostNoise {
    /// Streams for `images` images numbered `first_image`, `first_image + 1`, … in the run, `chains` each.
    pub(crate) fn new(
        seed: u64,
        first_image: u64,
        images: usize,
        chains: usize,
        image: [usize; 3],
        device: &Device,
    ) -> Result<Self> {
        let last = first_image.checked_add(images as u64);
        if chains > MAX_CHAINS || last.is_none_or(|last| last > MAX_IMAGES) {
            return Err(SamplerError::InvalidConfig(format!(
                "images {first_image}..{} with {chains} chains each: at most {MAX_IMAGES} images and \
                 {MAX_CHAINS} chains per image have noise streams of their own",
                first_image.saturating_add(images as u64)
            )));
        }
        let rows = (0..images as u64)
            .flat_map(|i| {
                (0..chains as u64).map(move |k| {
                    let mut rng = ChaCha8Rng::seed_from_u64(seed);
                    rng.set_stream(((first_image + i) << CHAIN_BITS) | k);
                    rng
                })
            })
            .collect();
        let [c, h, w] = image;
        Ok(Self {
            rows,
            row_len: c * h * w,
            shape: [images * chains, c, h, w],
            device: device.clone(),
        })
    }

    /// x ~ U[0, 1)^shape.
    pub(crate) fn uniform(&mut self) -> Tensor<4> {
        self.draw(|rng| rng.random::<f32>())
    }

    /// ξ ~ N(0, I) of the streams' shape.
    pub(crate) fn normal(&mut self) -> Tensor<4> {
        self.draw(|rng| rng.sample::<f32, _>(StandardNormal))
    }

    /// One value per element, each row from its own stream.
    fn draw(&mut self, mut one: impl FnMut(&mut ChaCha8Rng) -> f32) -> Tensor<4> {
        let mut values = Vec::with_capacity(self.rows.len() * self.row_len);
        for rng in &mut self.rows {
            values.extend((0..self.row_len).map(|_| one(rng)));
        }
        Tensor::from_data(TensorData::new(values, self.shape), &self.device)
    }
}
