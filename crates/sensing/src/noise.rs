//! Seeded Gaussian measurement noise, added before the quantizer: z = A·x + n, n ~ N(0, σ²I).

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use crate::error::{Result, SensingError};

/// Adds N(0, σ²) noise to every value, drawn from a generator seeded with `seed` (same noise on every backend).
pub fn add_gaussian_noise(z: &mut [f32], std: f64, seed: u64) -> Result<()> {
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
    for v in z.iter_mut() {
        *v = (f64::from(*v) + normal.sample(&mut rng)) as f32;
    }
    Ok(())
}
