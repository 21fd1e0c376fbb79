//! Training batches and all the randomness of a run, drawn on the CPU.
//!
//! Every draw comes from a ChaCha8 stream keyed by the run's seed and what the draw is for, and
//! numbered by the step (or the epoch), so the randomness of any step is a pure function of
//! `(seed, step)`: a resumed run draws exactly what an uninterrupted one would, and no generator
//! state needs saving.

use burn::tensor::{Device, Int, Tensor, TensorData};
use qcs_data::Dataset;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

/// Stream key of the per-epoch orders in which the images are visited.
const EPOCH_ORDER: u64 = 1;
/// Stream key of the per-step draws: flips, levels and noise.
const STEP_DRAWS: u64 = 2;

/// The generator of stream `index` for `purpose` in the run seeded with `seed`.
pub(crate) fn stream(seed: u64, purpose: u64, index: u64) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&purpose.to_le_bytes());
    let mut rng = ChaCha8Rng::from_seed(key);
    rng.set_stream(index);
    rng
}

/// One training batch on the CPU.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// Images `[B, C, H, W]`, flipped where drawn so.
    pub images: Vec<f32>,
    /// Noise levels `[B]`, indices into the schedule.
    pub levels: Vec<i64>,
    /// Standard normal noise `ε`, `[B, C, H, W]`.
    pub noise: Vec<f32>,
    /// `[B, C, H, W]`.
    pub shape: [usize; 4],
}

impl Batch {
    /// Uploads the batch: images, levels and noise.
    pub fn to_device(&self, device: &Device) -> (Tensor<4>, Tensor<1, Int>, Tensor<4>) {
        let images = Tensor::from_data(TensorData::new(self.images.clone(), self.shape), device);
        let levels = Tensor::from_data(
            TensorData::new(self.levels.clone(), [self.shape[0]]),
            device,
        );
        let noise = Tensor::from_data(TensorData::new(self.noise.clone(), self.shape), device);
        (images, levels, noise)
    }
}

/// Draws the batches of a run: the images of each epoch in a random order (without replacement,
/// batches running on across epochs), then per image a flip (if enabled), a level uniform in
/// `0..L` and noise.
#[derive(Debug)]
pub struct BatchSampler<'a> {
    data: &'a Dataset,
    seed: u64,
    batch_size: usize,
    num_levels: usize,
    horizontal_flip: bool,
    /// The epoch whose order is in `order`.
    order_epoch: Option<u64>,
    /// The order in which that epoch visits the images.
    order: Vec<usize>,
}

impl<'a> BatchSampler<'a> {
    /// A sampler over `data` (not empty).
    pub fn new(
        data: &'a Dataset,
        seed: u64,
        batch_size: usize,
        num_levels: usize,
        horizontal_flip: bool,
    ) -> Self {
        Self {
            data,
            seed,
            batch_size,
            num_levels,
            horizontal_flip,
            order_epoch: None,
            order: Vec::new(),
        }
    }

    /// The batch of step `step` (0-based).
    pub fn draw(&mut self, step: u64) -> Batch {
        let spec = self.data.spec();
        let size = spec.len();
        let first = step * self.batch_size as u64;
        let mut rng = stream(self.seed, STEP_DRAWS, step);
        let mut images = Vec::with_capacity(self.batch_size * size);
        for position in first..first + self.batch_size as u64 {
            let index = self.index_at(position);
            let image = &self.data.pixels()[index * size..(index + 1) * size];
            if self.horizontal_flip && rng.random::<bool>() {
                images.extend(
                    image
                        .chunks_exact(spec.width)
                        .flat_map(|row| row.iter().rev()),
                );
            } else {
                images.extend_from_slice(image);
            }
        }
        let levels = (0..self.batch_size)
            .map(|_| rng.random_range(0..self.num_levels) as i64)
            .collect();
        let noise = (0..self.batch_size * size)
            .map(|_| rng.sample::<f32, _>(StandardNormal))
            .collect();
        Batch {
            images,
            levels,
            noise,
            shape: [self.batch_size, spec.channels, spec.height, spec.width],
        }
    }

    /// The image visited at `position` of the endless sequence of epochs.
    fn index_at(&mut self, position: u64) -> usize {
        let count = self.data.len() as u64;
        let epoch = position / count;
        if self.order_epoch != Some(epoch) {
            self.order = (0..self.data.len()).collect();
            self.order
                .shuffle(&mut stream(self.seed, EPOCH_ORDER, epoch));
            self.order_epoch = Some(epoch);
        }
        self.order[(position % count) as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use qcs_data::ImageSpec;

    fn numbered(count: usize) -> Dataset {
        let spec = ImageSpec::new(1, 1, 2);
        let pixels = (0..count)
            .flat_map(|i| [i as f32, i as f32 + 0.5])
            .collect();
        let names = (0..count).map(|i| i.to_string()).collect();
        Dataset::new(spec, pixels, names).expect("consistent dataset")
    }

    #[test]
    fn each_epoch_visits_every_image_once() {
        let data = numbered(10);
        let mut sampler = BatchSampler::new(&data, 5, 4, 3, false);
        let mut seen: Vec<f32> = (0..5)
            .flat_map(|step| sampler.draw(step).images)
            .step_by(2)
            .collect();
        let (first, second) = seen.split_at_mut(10);
        first.sort_by(f32::total_cmp);
        assert_eq!(first, (0..10).map(|i| i as f32).collect::<Vec<_>>());
        second.sort_by(f32::total_cmp);
        assert_eq!(second, (0..10).map(|i| i as f32).collect::<Vec<_>>());
    }

    #[test]
    fn a_step_draws_the_same_batch_whatever_came_before() {
        let data = numbered(7);
        let mut straight = BatchSampler::new(&data, 9, 3, 4, true);
        let batches: Vec<Batch> = (0..6).map(|step| straight.draw(step)).collect();
        let mut fresh = BatchSampler::new(&data, 9, 3, 4, true);
        assert_eq!(fresh.draw(4), batches[4]);
        let mut other_seed = BatchSampler::new(&data, 10, 3, 4, true);
        assert_ne!(other_seed.draw(4), batches[4]);
    }

    #[test]
    fn levels_cover_the_schedule_and_flips_reverse_rows() {
        let data = numbered(4);
        let mut sampler = BatchSampler::new(&data, 1, 64, 5, true);
        let batch = sampler.draw(0);
        assert!(batch.levels.iter().all(|&l| (0..5).contains(&l)));
        assert!((0..5).all(|l| batch.levels.contains(&l)));
        let pairs: Vec<&[f32]> = batch.images.chunks_exact(2).collect();
        assert!(pairs.iter().any(|p| p[0] > p[1]), "some image flipped");
        assert!(pairs.iter().any(|p| p[0] < p[1]), "some image kept");
        let mean = batch.noise.iter().sum::<f32>() / batch.noise.len() as f32;
        assert!(mean.abs() < 0.3);
    }
}
