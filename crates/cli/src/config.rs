//! The TOML configuration files in `configs/`: model, measurement, sampler and training settings, with the
//! reference values of ALGORITHM.md §6. Command-line flags override single values.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use qcs_likelihood::{EpConfig, Numerics};
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
    /// Weights (safetensors with the reference names). A relative path is taken from the working
    /// directory or, where nothing is there, from the config file's folder or the nearest folder
    /// above it that holds it (so `--config /opt/qcs/configs/mnist.toml` finds
    /// `/opt/qcs/assets/models/…` from anywhere).
    pub path: PathBuf,
    /// The images that `reconstruct`, `eval` and `loss` take without `--images`: a folder of PNG/JPEG
    /// images or an image file, found as `path` is. Default: `assets/images/<stem of path>` (the test
    /// images shipped beside a dataset's first prior).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<PathBuf>,
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

impl ModelSection {
    /// The images taken without `--images`: `images`, else `assets/images/<stem of path>`.
    pub fn default_images(&self) -> PathBuf {
        self.images.clone().unwrap_or_else(|| {
            let name = self
                .path
                .file_stem()
                .map_or_else(|| "mnist".into(), |s| s.to_string_lossy().into_owned());
            Path::new("assets/images").join(name)
        })
    }
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
    /// `preconditioned` (default): QCS-SGM steps shrink with the likelihood's curvature along each direction
    /// of A's row space, so that linear and Q-bit measurements cannot make the chain diverge; `curvature`: the
    /// whole step shrinks by the stiffest direction's factor; `reference`: ε·(σ_c/σ_T)² throughout.
    #[serde(default)]
    pub step_control: qcs_sampler::StepControl,
    /// QCS-SGM+: most EP iterations per likelihood evaluation (default: 20; the reference 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ep_iterations: Option<usize>,
    /// QCS-SGM+: EP damping in [0, 1) (default: 0.5; the reference 0.02).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ep_damping: Option<f64>,
}

impl SamplerSection {
    /// QCS-SGM+'s EP settings for a bit depth: qcs's ([`EpConfig::for_bits`]) or, with `numerics`
    /// reference, the reference code's ([`EpConfig::reference`]); `ep_iterations` and `ep_damping` override
    /// either.
    pub fn ep_config(&self, bits: Option<u32>, numerics: Numerics) -> EpConfig {
        let base = match numerics {
            Numerics::Stable | Numerics::Clamped => EpConfig::for_bits(bits),
            Numerics::Reference => EpConfig::reference(bits),
        };
        EpConfig {
            iterations: self.ep_iterations.unwrap_or(base.iterations),
            damping: self.ep_damping.map_or(base.damping, |d| d as f32),
            ..base
        }
    }
}

/// `[training]`: denoising score matching.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingSection {
    /// Images per step.
    pub batch_size: usize,
    /// Total optimizer steps.
    pub steps: usize,
    /// Adam learning rate (the peak, with a warm-up or a decay).
    pub learning_rate: f64,
    /// Steps of linear warm-up to `learning_rate` (absent or 0: none).
    #[serde(default)]
    pub warmup_steps: Option<usize>,
    /// Where set, a half-cosine decay from `learning_rate` to this rate at the last step.
    #[serde(default)]
    pub learning_rate_end: Option<f64>,
    /// EMA rate of the parameters used for sampling.
    pub ema_rate: f64,
    /// Random horizontal flips (natural images only).
    pub horizontal_flip: bool,
    /// Write a checkpoint every this many steps.
    pub checkpoint_every: usize,
    /// Seed of batches, levels and noise.
    pub seed: u64,
}

/// λ of QCS-SGM in the paper (ALGORITHM.md §2).
pub const QCS_SGM_LIKELIHOOD_SCALE: f64 = 1.0;
/// λ of QCS-SGM+ in the paper for grayscale images (MNIST).
pub const QCS_SGM_PLUS_LIKELIHOOD_SCALE_GRAY: f64 = 0.5;
/// λ of QCS-SGM+ in the paper for colour images (CIFAR-10, CelebA).
pub const QCS_SGM_PLUS_LIKELIHOOD_SCALE_COLOR: f64 = 0.3;

impl Config {
    /// λ for a sampling method: `sampler.likelihood_scale` for the config's own method, the paper's value for
    /// the other one (a config holds one λ, and the two methods weight the likelihood differently).
    pub fn likelihood_scale_for(&self, method: &str) -> f64 {
        match method {
            m if m == self.sampler.method => self.sampler.likelihood_scale,
            "qcs-sgm-plus" if self.model.channels == 1 => QCS_SGM_PLUS_LIKELIHOOD_SCALE_GRAY,
            "qcs-sgm-plus" => QCS_SGM_PLUS_LIKELIHOOD_SCALE_COLOR,
            _ => QCS_SGM_LIKELIHOOD_SCALE,
        }
    }

    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config {}", path.display()))?;
        let mut config = Self::from_toml(&text, path)?;
        config.model.path = resolve_beside(&config.model.path, path);
        config.model.images = Some(resolve_beside(&config.model.default_images(), path));
        Ok(config)
    }

    /// Parses and checks a configuration's text; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &Path) -> Result<Self> {
        let config: Self =
            toml::from_str(text).with_context(|| format!("parsing config {}", origin.display()))?;
        config
            .check()
            .with_context(|| format!("config {}", origin.display()))?;
        Ok(config)
    }

    /// Rejects values no run can use.
    pub fn check(&self) -> Result<()> {
        check_sampler(&self.sampler, self.model.num_levels)?;
        if !(1..=8).contains(&self.measurement.bits) {
            bail!(
                "measurement.bits must be between 1 and 8, got {}",
                self.measurement.bits
            );
        }
        Ok(())
    }
}

/// `file` as given where it exists or is absolute; otherwise the first of `config`'s folder and the
/// folders above it that holds it, or `file` as given where none does (its error names it then).
fn resolve_beside(file: &Path, config: &Path) -> PathBuf {
    if file.is_absolute() || file.exists() {
        return file.to_path_buf();
    }
    let folder = std::path::absolute(config)
        .ok()
        .and_then(|c| c.parent().map(Path::to_path_buf));
    folder
        .iter()
        .flat_map(|f| f.ancestors())
        .map(|dir| dir.join(file))
        .find(|candidate| candidate.exists())
        .unwrap_or_else(|| file.to_path_buf())
}

/// Rejects sampler settings no run can use, naming the config key and the flag that set it.
pub fn check_sampler(s: &SamplerSection, num_levels: usize) -> Result<()> {
    if !matches!(s.method.as_str(), "qcs-sgm" | "qcs-sgm-plus") {
        bail!(
            "sampler.method (--method) must be qcs-sgm or qcs-sgm-plus, got `{}`",
            s.method
        );
    }
    if s.levels == 0 || s.levels > num_levels {
        bail!(
            "sampler.levels (--levels) must be between 1 and the model's {num_levels} levels, got {}",
            s.levels
        );
    }
    for (key, flag, value) in [
        ("steps_per_level", "--steps-per-level", s.steps_per_level),
        ("chains", "--chains", s.chains),
        ("batch", "--batch", s.batch),
    ] {
        if value == 0 {
            bail!("sampler.{key} ({flag}) must be at least 1, got 0");
        }
    }
    if !(s.step_lr.is_finite() && s.step_lr > 0.0) {
        bail!(
            "sampler.step_lr (--step-lr) must be a positive number, got {}",
            s.step_lr
        );
    }
    if !(s.likelihood_scale.is_finite() && s.likelihood_scale >= 0.0) {
        bail!(
            "sampler.likelihood_scale (--likelihood-scale) must be a number ≥ 0, got {}",
            s.likelihood_scale
        );
    }
    check_ep(s.ep_iterations, s.ep_damping)
}

/// Checks QCS-SGM+'s EP overrides (sampler.ep_iterations and sampler.ep_damping, or their flags).
pub fn check_ep(iterations: Option<usize>, damping: Option<f64>) -> Result<()> {
    if iterations == Some(0) {
        bail!("sampler.ep_iterations (--ep-iterations) must be at least 1, got 0");
    }
    if let Some(d) = damping.filter(|d| !(0.0..1.0).contains(d)) {
        bail!("sampler.ep_damping (--ep-damping) must be in [0, 1), got {d}");
    }
    Ok(())
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
    fn a_model_path_is_found_beside_the_config_from_another_working_directory() {
        // Tests run in crates/cli, where the shipped prior (`assets/models/…`) is not: the config's
        // folder's parent (the repository) holds it.
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let text = std::fs::read_to_string(root.join("configs/mnist.toml")).unwrap();
        let table: toml::Table = text.parse().unwrap();
        let shipped = table["model"]["path"].as_str().unwrap();
        assert!(shipped.starts_with("assets/models/"), "{shipped}");
        assert!(!Path::new(shipped).exists());
        let config = Config::load(&root.join("configs/mnist.toml")).unwrap();
        assert!(config.model.path.is_absolute(), "{:?}", config.model.path);
        assert_eq!(
            std::fs::read(&config.model.path).unwrap(),
            std::fs::read(root.join(shipped)).unwrap()
        );

        let dir = tempfile::tempdir().unwrap();
        let text = text.replace(shipped, "nowhere/net.safetensors");
        let config_path = dir.path().join("c.toml");
        std::fs::write(&config_path, text).unwrap();
        let config = Config::load(&config_path).unwrap();
        assert_eq!(config.model.path, Path::new("nowhere/net.safetensors"));
    }

    #[test]
    fn every_config_with_a_shipped_prior_finds_its_dataset_images_from_another_working_directory() {
        // Tests run in crates/cli: the images are found beside the config, as the model is. The MNIST
        // configs of the ngf-32 prior name theirs (`model.images`); the others take the model file's stem.
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut checked = Vec::new();
        for entry in std::fs::read_dir(root.join("configs")).unwrap() {
            let path = entry.unwrap().path();
            let config = Config::load(&path).unwrap();
            if !config.model.path.exists() {
                continue; // no shipped prior (CIFAR-10, CelebA, FFHQ)
            }
            let images = config.model.images.clone().unwrap();
            assert!(
                images.is_absolute() && images.is_dir(),
                "{path:?}: {images:?}"
            );
            let dataset = images.file_name().unwrap().to_string_lossy().into_owned();
            let file = path.file_name().unwrap().to_string_lossy().into_owned();
            assert!(
                file.starts_with(&dataset),
                "{file} takes the images of {dataset}"
            );
            checked.push(file);
        }
        checked.sort();
        assert_eq!(
            checked,
            [
                "fashion-mnist-cpu.toml",
                "fashion-mnist.toml",
                "mnist-cpu.toml",
                "mnist-ngf32-cpu.toml",
                "mnist-plus.toml",
                "mnist-quick.toml",
                "mnist.toml"
            ]
        );

        // Without model.images, the stem of a model file that is not shipped names a folder that is not
        // there: kept relative, and refused by the commands with its name.
        let text = std::fs::read_to_string(root.join("configs/mnist-cpu.toml"))
            .unwrap()
            .replace("assets/models/mnist.safetensors", "out/run/ema.safetensors");
        let dir = tempfile::tempdir().unwrap();
        let config_path = dir.path().join("c.toml");
        std::fs::write(&config_path, text).unwrap();
        let config = Config::load(&config_path).unwrap();
        assert_eq!(config.model.images, Some("assets/images/ema".into()));
    }

    /// Replays the checked-in fuzz corpus `fuzz/corpus/config_toml`: every input parses or is refused with
    /// an error, never a panic, and an accepted one checks again.
    #[test]
    fn the_config_fuzz_corpus_replays_without_panics() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/config_toml");
        let (mut accepted, mut total) = (0, 0);
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            total += 1;
            if let Ok(text) = std::str::from_utf8(&bytes) {
                if let Ok(config) = Config::from_toml(text, &path) {
                    config.check().unwrap();
                    accepted += 1;
                }
            }
        }
        // The seeds are the shipped configs.
        assert!(accepted >= 9, "{accepted} of {total} accepted");
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

    #[test]
    fn ep_settings_follow_the_numerics_and_the_overrides() {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/mnist.toml"),
        )
        .unwrap();
        let config = Config::from_toml(&text, Path::new("mnist.toml")).unwrap();
        let s = &config.sampler;
        assert_eq!((s.ep_iterations, s.ep_damping), (None, None));
        let qcs = s.ep_config(Some(1), Numerics::Stable);
        assert_eq!(
            (qcs.iterations, qcs.damping, qcs.tolerance),
            (20, 0.5, 1e-5)
        );
        let reference = s.ep_config(Some(3), Numerics::Reference);
        assert_eq!(
            (reference.iterations, reference.damping, reference.tolerance),
            (5, 0.02, 1e-3)
        );

        let with = |extra: &str| {
            let text = text.replace("[sampler]\n", &format!("[sampler]\n{extra}\n"));
            Config::from_toml(&text, Path::new("mnist.toml"))
        };
        let overridden = with("ep_iterations = 9\nep_damping = 0.25").unwrap();
        for numerics in [Numerics::Stable, Numerics::Reference] {
            let ep = overridden.sampler.ep_config(None, numerics);
            assert_eq!((ep.iterations, ep.damping, ep.tolerance), (9, 0.25, 1e-3));
        }
        for (bad, key) in [
            ("ep_iterations = 0", "ep_iterations"),
            ("ep_damping = 1.0", "ep_damping"),
            ("ep_damping = -0.1", "ep_damping"),
        ] {
            let err = format!("{:#}", with(bad).unwrap_err());
            assert!(err.contains(key), "{bad}: {err}");
        }
    }
}
