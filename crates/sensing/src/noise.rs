//! Seeded Gaussian measurement noise, added before the quantizer: z = A·x + n, n ~ N(0, σ²I).

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use crate::error::{Result, SensingError};

/// Adds N(0, σ²) noise to every value, drawn from a generator seeded with `seed` (same noise on every backend).
pub fn add_gaussian_noise(z: &mut [f32], std: f64, seed: u64) -> Result<()> {
    add_gaussian_noise_at(z, std, seed, 0)
}

/// Adds draws `start`, `start + 1`, … of the noise stream of `seed` to the values: the noise that
/// [`add_gaussian_noise`] would add to them were they preceded by `start` other values. A part of a batch
/// thus gets the noise it gets in the whole batch.
pub fn add_gaussian_noise_at(z: &mut [f32], std: f64, seed: u64, start: u64) -> Result<()> {
    if !(std.is_finite() && std >= 0.0) {
        return Err(SensingError::InvalidSetting(format!(
            "the noise standard deviation must be finite and ≥ 0, got {std}"
        )));
    }
    if std == 0.0 {
        return Ok(());
    }
    let normal = Normal::new(0.0, std)
        .map_err(|e| SensingError::InvalidSetting(format!("noise std {std}: {e}")))?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // The normal sampler takes a varying number of words per draw, so earlier draws are made, not skipped.
    for _ in 0..start {
        let _: f64 = normal.sample(&mut rng);
    }
    for v in z.iter_mut() {
        *v = (f64::from(*v) + normal.sample(&mut rng)) as f32;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_from_a_later_start_is_the_tail_of_the_whole_streams_noise() {
        let mut whole = vec![0.5f32; 30];
        add_gaussian_noise(&mut whole, 0.3, 7).unwrap();
        let mut tail = vec![0.5f32; 18];
        add_gaussian_noise_at(&mut tail, 0.3, 7, 12).unwrap();
        assert_eq!(tail, whole[12..]);
        // Not the head: the draws really moved on.
        assert_ne!(tail[..6], whole[..6]);
        // Mean and spread of the draws: 30 values of σ 0.3 around 0.5.
        let mean = whole.iter().map(|&v| f64::from(v)).sum::<f64>() / 30.0;
        assert!((mean - 0.5).abs() < 4.0 * 0.3 / 30f64.sqrt(), "{mean}");
    }

    #[test]
    fn no_noise_and_bad_spreads() {
        let mut z = vec![1.0f32; 4];
        add_gaussian_noise_at(&mut z, 0.0, 1, 5).unwrap();
        assert_eq!(z, [1.0; 4]);
        for bad in [-1.0, f64::NAN, f64::INFINITY] {
            let err = add_gaussian_noise_at(&mut z, bad, 1, 0).unwrap_err();
            assert!(err.to_string().contains("standard deviation"), "{err}");
        }
    }
}
