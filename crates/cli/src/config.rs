//! The TOML configuration files in `configs/`: model, measurement, sampler and training settings, with the
//! reference values of ALGORITHM.md §6. Command-line flags override single values.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

/// A whole configuration file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The score network and its noise levels.
    pub model: ModelSection,
    /// How images are measured.
    pub measurement: MeasurementSection,
    /// How they are reconstructed.
    pub sampler: SamplerSection,
    /// How the score network is trained (absent for configs that only reconstruct).
    #[serde(default)]
    pub training: Option<TrainingSection>,
}

/// `[model]`: the NCSNv2 network.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    /// Weights (safetensors with the reference names), relative to the working directory.
    pub path: PathBuf,
    /// Base channel count.
    pub ngf: usize,
    /// Image channels (1 or 3).
    pub channels: usize,
    /// Image height and width.
    pub image_size: usize,
    /// Number of noise levels T.
    pub num_levels: usize,
    /// σ_1.
    pub sigma_begin: f64,
    /// σ_T.
    pub sigma_end: f64,
}

/// `[measurement]`: operator, quantizer and noise.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeasurementSection {
    /// M.
    pub measurements: usize,
    /// Bits per measurement (1–8).
    pub bits: u32,
    /// σ of the Gaussian noise added before quantization.
    pub noise_std: f64,
    /// gaussian | ill-conditioned | correlated | dct | hadamard.
    pub matrix: String,
    /// κ of `ill-conditioned`.
    pub kappa: f64,
    /// ρ of `correlated`.
    pub rho: f64,
    /// Seed of the operator and of the noise.
    pub seed: u64,
}

/// `[sampler]`: annealed Langevin settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamplerSection {
    /// qcs-sgm | qcs-sgm-plus.
    pub method: String,
    /// Noise levels used (≤ the model's; fewer levels are spread evenly over the schedule).
    pub levels: usize,
    /// K, Langevin steps per level.
    pub steps_per_level: usize,
    /// ε, the step size at the last level.
    pub step_lr: f64,
    /// λ, the likelihood weight (QCS-SGM+: the norm-ratio factor).
    pub likelihood_scale: f64,
    /// Independent chains per image.
    pub chains: usize,
    /// Images per batch.
    pub batch: usize,
    /// Seed of the sampler's noise.
    pub seed: u64,
    /// Apply the final denoising step x + σ_T²·s(x, T).
    pub final_denoise: bool,
}

/// `[training]`: denoising score matching.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingSection {
    /// Images per step.
    pub batch_size: usize,
    /// Total optimizer steps.
    pub steps: usize,
    /// Adam learning rate.
    pub learning_rate: f64,
    /// EMA rate of the parameters used for sampling.
    pub ema_rate: f64,
    /// Random horizontal flips (natural images only).
    pub horizontal_flip: bool,
    /// Write a checkpoint every this many steps.
    pub checkpoint_every: usize,
    /// Seed of batches, levels and noise.
    pub seed: u64,
}

impl Config {
    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config {}", path.display()))?;
        let config: Self =
            toml::from_str(&text).with_context(|| format!("parsing config {}", path.display()))?;
        config
            .check()
            .with_context(|| format!("config {}", path.display()))?;
        Ok(config)
    }

    /// Rejects values no run can use.
    pub fn check(&self) -> Result<()> {
        let s = &self.sampler;
        if !matches!(s.method.as_str(), "qcs-sgm" | "qcs-sgm-plus") {
            bail!(
                "sampler.method must be qcs-sgm or qcs-sgm-plus, got `{}`",
                s.method
            );
        }
        if s.levels == 0 || s.levels > self.model.num_levels {
            bail!(
                "sampler.levels must be between 1 and model.num_levels = {}, got {}",
                self.model.num_levels,
                s.levels
            );
        }
        if s.steps_per_level == 0 || s.chains == 0 || s.batch == 0 {
            bail!("sampler.steps_per_level, chains and batch must be at least 1");
        }
        if !(s.step_lr.is_finite() && s.step_lr > 0.0) {
            bail!("sampler.step_lr must be positive, got {}", s.step_lr);
        }
        if !(s.likelihood_scale.is_finite() && s.likelihood_scale >= 0.0) {
            bail!(
                "sampler.likelihood_scale must be ≥ 0, got {}",
                s.likelihood_scale
            );
        }
        if !(1..=8).contains(&self.measurement.bits) {
            bail!(
                "measurement.bits must be between 1 and 8, got {}",
                self.measurement.bits
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_config_parses_and_checks() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
        let mut count = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                Config::load(&path).unwrap();
                count += 1;
            }
        }
        assert!(
            count >= 5,
            "expected the dataset configs in {}",
            dir.display()
        );
    }

    #[test]
    fn a_typo_in_a_key_is_an_error_naming_it() {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/mnist.toml"),
        )
        .unwrap()
        .replace("steps_per_level", "step_per_level");
        let err = toml::from_str::<Config>(&text).unwrap_err().to_string();
        assert!(err.contains("step_per_level"), "{err}");
    }
}
