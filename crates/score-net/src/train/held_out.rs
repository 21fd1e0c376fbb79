//! The denoising-score-matching loss of a network on images it was not trained on, band by band
//! of noise levels: a measure of a prior that needs no sampling.
//!
//! Each image draws one level in every band (bands as in the training log, [`band_of`]) and
//! one noise image per band, from a ChaCha8 stream keyed by the seed and numbered by the image.
//! The draws depend on nothing else (not on the batch, the network or the other images), so two
//! networks with the same schedule are scored on the same noisy images and compare image by
//! image.

use std::ops::Range;

use burn::tensor::{Int, Tensor, TensorData};
use qcs_data::Dataset;
use rand::Rng;
use rand_distr::StandardNormal;

use super::batch::stream;
use super::log::band_of;
use super::loss::dsm_loss;
use crate::error::ScoreNetError;
use crate::ncsnv2::{NcsnV2, NcsnV2Config};

/// Stream key of the held-out draws (the training streams use 1 and 2).
const HELD_OUT: u64 = 3;

/// Settings of [`held_out_loss`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeldOutConfig {
    /// Bands of consecutive noise levels; band 0 holds the largest σ.
    pub bands: usize,
    /// Noisy images per forward pass.
    pub batch: usize,
    /// Seed of the levels and the noise.
    pub seed: u64,
    /// The number of the data's first image in its collection: image `i` draws from stream
    /// `first_image + i`, so a run over the later images of a collection draws for them what a run
    /// over the whole collection does.
    pub first_image: usize,
}

impl Default for HeldOutConfig {
    /// Ten bands (those of the training log), batch 50, seed 0, from the collection's first image.
    fn default() -> Self {
        Self {
            bands: 10,
            batch: 50,
            seed: 0,
            first_image: 0,
        }
    }
}

/// The loss of every image in every band.
#[derive(Debug, Clone, PartialEq)]
pub struct HeldOutLoss {
    /// The levels of each band.
    pub bands: Vec<Range<usize>>,
    /// `[images × bands]`, row-major: the level drawn for each image in each band.
    pub levels: Vec<usize>,
    /// `[images × bands]`, row-major: the loss ℓ (`dsm_loss`) of each image at its level of each
    /// band.
    pub losses: Vec<f64>,
}

impl HeldOutLoss {
    /// Number of images scored.
    pub fn images(&self) -> usize {
        self.losses.len() / self.bands.len().max(1)
    }

    /// The losses of band `band`, one per image.
    pub fn band(&self, band: usize) -> Vec<f64> {
        self.losses
            .iter()
            .skip(band)
            .step_by(self.bands.len())
            .copied()
            .collect()
    }

    /// Each image's loss averaged over the bands.
    pub fn per_image(&self) -> Vec<f64> {
        self.losses
            .chunks_exact(self.bands.len())
            .map(|row| row.iter().sum::<f64>() / row.len() as f64)
            .collect()
    }
}

/// Checks that `levels` levels split into `bands` bands that are none empty.
fn check_config(config: &HeldOutConfig, levels: usize) -> Result<(), ScoreNetError> {
    if config.batch == 0 {
        return Err(ScoreNetError::InvalidTrainConfig(
            "the held-out batch must be at least 1".into(),
        ));
    }
    if config.bands == 0 || config.bands > levels {
        return Err(ScoreNetError::InvalidTrainConfig(format!(
            "the {levels} noise levels cannot be split into {} bands (1 to {levels})",
            config.bands
        )));
    }
    Ok(())
}

/// The levels of each of `bands` bands of `levels` levels, as [`band_of`] assigns them (with
/// `bands ≤ levels`, none is empty: the band rises by at most one from a level to the next).
fn band_ranges(levels: usize, bands: usize) -> Vec<Range<usize>> {
    let mut ranges: Vec<Range<usize>> = Vec::with_capacity(bands);
    for level in 0..levels {
        let band = band_of(level, levels, bands);
        if band < ranges.len() {
            ranges[band].end = level + 1;
        } else {
            ranges.push(level..level + 1);
        }
    }
    ranges
}

/// Image `index`'s level and noise in every band.
fn draws(seed: u64, index: usize, bands: &[Range<usize>], numel: usize) -> Vec<(usize, Vec<f32>)> {
    let mut rng = stream(seed, HELD_OUT, index as u64);
    bands
        .iter()
        .map(|band| {
            let level = rng.random_range(band.clone());
            let noise = (0..numel)
                .map(|_| rng.sample::<f32, _>(StandardNormal))
                .collect();
            (level, noise)
        })
        .collect()
}

/// The DSM loss ℓ (ALGORITHM.md §5, [`dsm_loss`]) of `model` (built from `net`) on every image of
/// `data` at one level drawn in each band of its schedule. `progress` receives the noisy images
/// done and their total after each forward pass.
///
/// # Errors
/// [`ScoreNetError::EmptyDataset`], [`ScoreNetError::DatasetMismatch`] for images of another size
/// than `net`'s, [`ScoreNetError::InvalidTrainConfig`] for a zero batch or a number of bands
/// outside `1..=levels`, [`ScoreNetError::InvalidConfig`] when `model` has another number of
/// levels than `net`, [`ScoreNetError::LossReadBack`] when the losses cannot be read back.
pub fn held_out_loss(
    model: &NcsnV2,
    net: &NcsnV2Config,
    data: &Dataset,
    config: &HeldOutConfig,
    mut progress: impl FnMut(usize, usize),
) -> Result<HeldOutLoss, ScoreNetError> {
    if data.is_empty() {
        return Err(ScoreNetError::EmptyDataset);
    }
    let spec = data.spec();
    let expected = [net.channels, net.image_size, net.image_size];
    let found = [spec.channels, spec.height, spec.width];
    if found != expected {
        return Err(ScoreNetError::DatasetMismatch { expected, found });
    }
    let [levels] = model.sigmas().dims();
    if levels != net.num_levels {
        return Err(ScoreNetError::InvalidConfig(format!(
            "the network has {levels} noise levels, its configuration {}",
            net.num_levels
        )));
    }
    check_config(config, levels)?;
    let bands = band_ranges(levels, config.bands);
    let numel = spec.len();
    let total = data.len() * bands.len();
    let device = model.sigmas().device();
    let mut drawn = Vec::with_capacity(total);
    let mut losses = Vec::with_capacity(total);
    let mut pending: Vec<(usize, usize, Vec<f32>)> = Vec::with_capacity(config.batch);
    let mut flush = |pending: &mut Vec<(usize, usize, Vec<f32>)>| -> Result<(), ScoreNetError> {
        let batch = pending.len();
        let mut images = Vec::with_capacity(batch * numel);
        let mut noise = Vec::with_capacity(batch * numel);
        let mut level_ids = Vec::with_capacity(batch);
        for (index, level, eps) in pending.drain(..) {
            images.extend_from_slice(&data.pixels()[index * numel..(index + 1) * numel]);
            noise.extend(eps);
            level_ids.push(level as i64);
        }
        let shape = [batch, spec.channels, spec.height, spec.width];
        let loss = dsm_loss(
            model,
            Tensor::from_data(TensorData::new(images, shape), &device),
            Tensor::<1, Int>::from_data(TensorData::new(level_ids, [batch]), &device),
            Tensor::from_data(TensorData::new(noise, shape), &device),
        );
        let values = loss
            .per_image
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .map_err(|e| ScoreNetError::LossReadBack(format!("{e:?}")))?;
        losses.extend(values.into_iter().map(f64::from));
        progress(losses.len(), total);
        Ok(())
    };
    for index in 0..data.len() {
        for (level, eps) in draws(config.seed, config.first_image + index, &bands, numel) {
            drawn.push(level);
            pending.push((index, level, eps));
            if pending.len() == config.batch {
                flush(&mut pending)?;
            }
        }
    }
    if !pending.is_empty() {
        flush(&mut pending)?;
    }
    Ok(HeldOutLoss {
        bands,
        levels: drawn,
        losses,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::{Module, ModuleMapper, Param};
    use burn::tensor::Device;
    use qcs_data::ImageSpec;

    fn tiny() -> NcsnV2Config {
        NcsnV2Config::new()
            .with_ngf(4)
            .with_image_size(8)
            .with_num_levels(7)
            .with_sigma_begin(1.0)
            .with_sigma_end(0.1)
    }

    fn images(count: usize) -> Dataset {
        let pixels = (0..count * 64).map(|i| (i % 17) as f32 / 16.0).collect();
        let names = (0..count).map(|i| i.to_string()).collect();
        Dataset::new(ImageSpec::new(1, 8, 8), pixels, names).unwrap()
    }

    #[test]
    fn the_bands_split_the_levels_as_the_training_log_does() {
        let bands = band_ranges(232, 10);
        assert_eq!(bands[0].start, 0);
        assert_eq!(bands[9].end, 232);
        for pair in bands.windows(2) {
            assert_eq!(pair[0].end, pair[1].start);
        }
        for (b, band) in bands.iter().enumerate() {
            assert!(band.len() == 23 || band.len() == 24, "{band:?}");
            assert!(band.clone().all(|level| band_of(level, 232, 10) == b));
        }
        assert_eq!(
            band_ranges(7, 7),
            (0..7).map(|l| l..l + 1).collect::<Vec<_>>()
        );
    }

    #[test]
    fn each_loss_is_the_dsm_loss_of_its_own_draw_whatever_the_batch() {
        let device = Device::flex();
        device.seed(5);
        let net = tiny();
        let model = net.init(&device).unwrap();
        let data = images(3);
        let config = HeldOutConfig {
            bands: 3,
            batch: 4,
            seed: 9,
            first_image: 0,
        };
        let mut calls = Vec::new();
        let result = held_out_loss(&model, &net, &data, &config, |done, total| {
            calls.push((done, total))
        })
        .unwrap();
        assert_eq!(calls, vec![(4, 9), (8, 9), (9, 9)]);
        assert_eq!(result.images(), 3);
        for (i, row) in result.levels.chunks(3).enumerate() {
            for (b, &level) in row.iter().enumerate() {
                assert!(result.bands[b].contains(&level), "image {i} band {b}");
            }
        }
        // Image 2, band 1, computed alone from its draw.
        let (level, noise) = draws(9, 2, &result.bands, 64).swap_remove(1);
        assert_eq!(level, result.levels[2 * 3 + 1]);
        let alone = dsm_loss(
            &model,
            Tensor::from_data(
                TensorData::new(data.image(2).unwrap().to_vec(), [1, 1, 8, 8]),
                &device,
            ),
            Tensor::from_data(TensorData::new(vec![level as i64], [1]), &device),
            Tensor::from_data(TensorData::new(noise, [1, 1, 8, 8]), &device),
        )
        .mean
        .into_scalar::<f32>();
        let batched = result.losses[2 * 3 + 1];
        assert!(
            (batched - f64::from(alone)).abs() <= 1e-4 * batched.abs(),
            "{batched} against {alone}"
        );
        let rerun =
            |config: HeldOutConfig| held_out_loss(&model, &net, &data, &config, |_, _| {}).unwrap();
        let single = rerun(HeldOutConfig { batch: 1, ..config });
        for (a, b) in single.losses.iter().zip(&result.losses) {
            assert!((a - b).abs() <= 1e-4 * b.abs(), "{a} against {b}");
        }
        assert_eq!(single.levels, result.levels);
        let other_seed = rerun(HeldOutConfig { seed: 10, ..config });
        assert_ne!(other_seed.losses, result.losses);
        // Images 1 and 2 alone, numbered as in the collection, draw what they drew in it.
        let tail = Dataset::new(
            data.spec(),
            data.pixels()[64..].to_vec(),
            data.names()[1..].to_vec(),
        )
        .unwrap();
        let later = |first_image: usize| {
            held_out_loss(
                &model,
                &net,
                &tail,
                &HeldOutConfig {
                    first_image,
                    ..config
                },
                |_, _| {},
            )
            .unwrap()
        };
        let numbered = later(1);
        assert_eq!(numbered.levels, result.levels[3..]);
        for (a, b) in numbered.losses.iter().zip(&result.losses[3..]) {
            assert!((a - b).abs() <= 1e-4 * b.abs(), "{a} against {b}");
        }
        assert_ne!(
            later(0).losses,
            numbered.losses,
            "numbered from 0: other draws"
        );
    }

    #[test]
    fn a_network_that_scores_zero_loses_half_the_squared_noise() {
        // With every weight zero the score is 0, so ℓ = ½·σ²·‖ε/σ‖² = ½‖ε‖²: mean N/2 = 32 for
        // 8×8 pixels, standard deviation √(N/2) per image and band.
        struct Zero;
        impl ModuleMapper for Zero {
            fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
                param.map(|t| t.zeros_like())
            }
        }
        let device = Device::flex();
        let net = tiny();
        let model = net.init(&device).unwrap();
        let sigmas = model.sigmas.clone();
        let mut zero = model.map(&mut Zero);
        zero.sigmas = sigmas;
        let data = images(20);
        let config = HeldOutConfig {
            bands: 7,
            batch: 32,
            seed: 1,
            first_image: 0,
        };
        let result = held_out_loss(&zero, &net, &data, &config, |_, _| {}).unwrap();
        let n = result.losses.len() as f64;
        let mean = result.losses.iter().sum::<f64>() / n;
        let se = (32.0f64).sqrt() / n.sqrt();
        assert!((mean - 32.0).abs() < 4.0 * se, "mean {mean}, s.e. {se}");
    }

    #[test]
    fn impossible_settings_and_images_are_refused() {
        let device = Device::flex();
        let net = tiny();
        let model = net.init(&device).unwrap();
        let data = images(2);
        let run = |config: HeldOutConfig, data: &Dataset| {
            held_out_loss(&model, &net, data, &config, |_, _| {}).unwrap_err()
        };
        let base = HeldOutConfig::default();
        assert!(matches!(
            run(HeldOutConfig { bands: 8, ..base }, &data),
            ScoreNetError::InvalidTrainConfig(m) if m.contains("8 bands")
        ));
        assert!(matches!(
            run(HeldOutConfig { bands: 0, ..base }, &data),
            ScoreNetError::InvalidTrainConfig(_)
        ));
        assert!(matches!(
            run(
                HeldOutConfig {
                    batch: 0,
                    bands: 2,
                    ..base
                },
                &data
            ),
            ScoreNetError::InvalidTrainConfig(_)
        ));
        let big =
            Dataset::new(ImageSpec::new(1, 16, 16), vec![0.0; 256], vec!["a".into()]).unwrap();
        assert!(matches!(
            run(HeldOutConfig { bands: 2, ..base }, &big),
            ScoreNetError::DatasetMismatch { .. }
        ));
    }
}
