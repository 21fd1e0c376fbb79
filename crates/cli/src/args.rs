//! Command-line arguments. Defaults for everything that has a reference value come from the config file.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use qcs_sampler::StepControl;

use crate::config::SamplerSection;

/// Quantized compressed sensing with score-based generative priors (QCS-SGM, QCS-SGM+).
#[derive(Parser, Debug)]
#[command(name = "qcs", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// How the score network's convolutions run: native (the backend's own kernel), gemm (each
    /// one a single matrix product) or auto (gemm for the large ones on wgpu, for the small ones
    /// when sampling on flex; native otherwise). Only speed changes. Default: auto, but native on
    /// ndarray.
    #[arg(long, global = true, value_enum)]
    pub conv: Option<ConvChoice>,
}

/// The `--conv` values (see `qcs_score_net::ConvAlgorithm`).
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConvChoice {
    /// The backend's own convolution kernel.
    Native,
    /// Each convolution as one matrix product (im2col).
    Gemm,
    /// gemm for large convolutions on wgpu, for small ones when sampling (not training) on flex;
    /// native otherwise.
    Auto,
}

impl ConvChoice {
    /// The library's algorithm.
    pub fn algorithm(self) -> qcs_score_net::ConvAlgorithm {
        match self {
            Self::Native => qcs_score_net::ConvAlgorithm::Native,
            Self::Gemm => qcs_score_net::ConvAlgorithm::Gemm,
            Self::Auto => qcs_score_net::ConvAlgorithm::Auto,
        }
    }
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Reconstruct images from quantized measurements (simulated from images, or read from a file).
    Reconstruct(Box<ReconstructArgs>),
    /// Simulate measurements of images and write a measurement file.
    Measure(MeasureArgs),
    /// Train an NCSNv2 score network by denoising score matching.
    Train(TrainArgs),
    /// Draw unconditional samples from a score network and write a PNG grid.
    Sample(SampleArgs),
    /// Sweep methods and measurement settings over a set of images: a results table, CSV and plots.
    Eval(Box<EvalArgs>),
    /// Score networks' denoising-score-matching loss on held-out images, per band of noise levels,
    /// compared image by image: a measure of a prior that needs no sampling.
    Loss(LossArgs),
    /// Measure the speed of the score network and of the sampler on the compiled-in backend.
    Bench(crate::bench::BenchArgs),
    /// Print the compiled-in backend and the device it uses.
    Info,
}

/// Float precision of the score network's arithmetic.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// 32-bit floats.
    #[default]
    F32,
    /// 16-bit floats (weights and activations; the likelihood and the Langevin update stay f32).
    F16,
}

impl Precision {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::F16 => "f16",
        }
    }
}

/// Settings of the measurement simulation shared by `reconstruct` and `measure`.
#[derive(Args, Debug, Clone, Default)]
pub struct MeasurementFlags {
    /// Bits per measurement, 1–8 (config: measurement.bits).
    #[arg(long)]
    pub bits: Option<u32>,
    /// Do not quantize: linear measurements y = A·x + n.
    #[arg(long)]
    pub no_quantize: bool,
    /// Number of measurements M (config: measurement.measurements).
    #[arg(long)]
    pub measurements: Option<usize>,
    /// Standard deviation σ of the noise added before quantization (config: measurement.noise_std).
    #[arg(long)]
    pub noise_std: Option<f64>,
    /// Operator family: gaussian, ill-conditioned, correlated, dct or hadamard (config: measurement.matrix).
    #[arg(long)]
    pub matrix: Option<String>,
    /// κ of the ill-conditioned family (config: measurement.kappa).
    #[arg(long)]
    pub kappa: Option<f64>,
    /// ρ of the correlated family (config: measurement.rho).
    #[arg(long)]
    pub rho: Option<f64>,
    /// Fixed ADC full-scale width for Q-bit quantizers (default: Δ from each measurement vector).
    #[arg(long)]
    pub full_scale: Option<f32>,
}

/// `qcs reconstruct`.
#[derive(Args, Debug)]
pub struct ReconstructArgs {
    /// Configuration file (the default runs the shipped MNIST prior on a shortened schedule).
    #[arg(long, default_value = "configs/mnist-quick.toml")]
    pub config: PathBuf,
    /// Float precision of the score network: f32, or f16 (half the weight memory; its speed depends
    /// on the GPU, see docs/BENCHMARKS.md; the likelihood and the update stay f32).
    #[arg(long, value_enum, default_value_t = Precision::F32)]
    pub precision: Precision,
    /// Score-network weights (config: model.path).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Image files or directories of PNG/JPEG images (default: the config's model.images, the test
    /// images shipped for its dataset in assets/images/).
    #[arg(long, num_args = 1..)]
    pub images: Vec<PathBuf>,
    /// Resize images of another size to the model's instead of refusing them.
    #[arg(long)]
    pub resize: bool,
    /// Reconstruct from this measurement file instead of simulating measurements.
    #[arg(long, conflicts_with = "images")]
    pub measurements_file: Option<PathBuf>,
    /// Ground-truth images for a measurement file, in its order (enables PSNR/SSIM).
    #[arg(long, requires = "measurements_file", num_args = 1..)]
    pub truth: Vec<PathBuf>,
    /// Measurement settings.
    #[command(flatten)]
    pub measurement: MeasurementFlags,
    /// qcs-sgm (closed form) or qcs-sgm-plus (expectation propagation) (config: sampler.method).
    #[arg(long)]
    pub method: Option<String>,
    /// Noise levels used, spread evenly over the model's schedule (config: sampler.levels).
    #[arg(long)]
    pub levels: Option<usize>,
    /// Langevin steps per level K (config: sampler.steps_per_level).
    #[arg(long)]
    pub steps_per_level: Option<usize>,
    /// Step size ε at the last level (config: sampler.step_lr).
    #[arg(long)]
    pub step_lr: Option<f64>,
    /// Likelihood weight λ (config: sampler.likelihood_scale).
    #[arg(long)]
    pub likelihood_scale: Option<f64>,
    /// Sampler settings shared with `eval`.
    #[command(flatten)]
    pub sampler: SamplerFlags,
    /// Output directory.
    #[arg(long, default_value = "out/reconstruct")]
    pub out: PathBuf,
    /// Print report.json to standard output (and nothing else there).
    #[arg(long)]
    pub json: bool,
}

/// `qcs measure`.
#[derive(Args, Debug)]
pub struct MeasureArgs {
    /// Configuration file (measurement settings and image size).
    #[arg(long, default_value = "configs/mnist.toml")]
    pub config: PathBuf,
    /// Image files or directories of PNG/JPEG images.
    #[arg(long, required = true, num_args = 1..)]
    pub images: Vec<PathBuf>,
    /// Resize images of another size to the model's instead of refusing them.
    #[arg(long)]
    pub resize: bool,
    /// Measurement settings.
    #[command(flatten)]
    pub measurement: MeasurementFlags,
    /// Seed of the operator and the noise (config: measurement.seed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// The measurement file to write.
    #[arg(long)]
    pub out: PathBuf,
}

/// `qcs train`.
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Configuration file ([model] and [training]).
    #[arg(long)]
    pub config: PathBuf,
    /// Training images: an IDX file (raw or .gz) or a directory of PNG/JPEG images.
    #[arg(long)]
    pub data: PathBuf,
    /// Total steps (config: training.steps).
    #[arg(long)]
    pub steps: Option<usize>,
    /// Images per step (config: training.batch_size); not with --resume.
    #[arg(long, conflicts_with = "resume")]
    pub batch: Option<usize>,
    /// Base channel count (config: model.ngf); not with --resume.
    #[arg(long, conflicts_with = "resume")]
    pub ngf: Option<usize>,
    /// Checkpoint directory.
    #[arg(long, default_value = "out/train")]
    pub out: PathBuf,
    /// Continue from the latest checkpoint in --out, with the settings its checkpoint recorded:
    /// of the flags, only --steps changes them, and --config's [training] is not used.
    #[arg(long, conflicts_with = "init")]
    pub resume: bool,
    /// Start a new run from these weights (SafeTensors with the reference names, e.g. a shipped
    /// model or a run's ema.safetensors) instead of random ones; the optimizer starts afresh.
    /// Weights of a smaller ngf that divides the run's (--ngf) are widened first, keeping their
    /// scores, so a wider network starts where a narrower one's training ended.
    #[arg(long)]
    pub init: Option<PathBuf>,
    /// Seed of the run's batches, noise and levels (config: training.seed); a run started with
    /// --init from an earlier run's weights should draw other batches than it did.
    #[arg(long, conflicts_with = "resume")]
    pub seed: Option<u64>,
}

/// `qcs sample`.
#[derive(Args, Debug)]
pub struct SampleArgs {
    /// Configuration file ([model] and [sampler]).
    #[arg(long, default_value = "configs/mnist.toml")]
    pub config: PathBuf,
    /// Float precision of the score network: f32, or f16 (half the weight memory; its speed depends
    /// on the GPU, see docs/BENCHMARKS.md; the likelihood and the update stay f32).
    #[arg(long, value_enum, default_value_t = Precision::F32)]
    pub precision: Precision,
    /// Score-network weights (config: model.path).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Number of samples.
    #[arg(long, default_value_t = 16)]
    pub count: usize,
    /// Noise levels used (config: sampler.levels).
    #[arg(long)]
    pub levels: Option<usize>,
    /// Langevin steps per level (config: sampler.steps_per_level).
    #[arg(long)]
    pub steps_per_level: Option<usize>,
    /// Seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// The PNG grid to write.
    #[arg(long)]
    pub out: PathBuf,
}

/// `qcs eval`. Every list flag takes comma-separated values (or is repeated; duplicates are dropped); the
/// cartesian product of all lists is run.
#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Configuration file (model, measurement and sampler defaults).
    #[arg(long, default_value = "configs/mnist.toml")]
    pub config: PathBuf,
    /// Float precision of the score network: f32, or f16 (half the weight memory; its speed depends
    /// on the GPU, see docs/BENCHMARKS.md; the likelihood and the update stay f32).
    #[arg(long, value_enum, default_value_t = Precision::F32)]
    pub precision: Precision,
    /// Score-network weights (config: model.path); used by qcs-sgm and qcs-sgm-plus only.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// The images.
    #[command(flatten)]
    pub selection: ImageSelection,
    /// Bit depths: 1–8 or `linear` (config: measurement.bits).
    #[arg(long, value_delimiter = ',')]
    pub bits: Vec<String>,
    /// Numbers of measurements M (config: measurement.measurements).
    #[arg(long, value_delimiter = ',', conflicts_with = "budget")]
    pub measurements: Vec<usize>,
    /// Bits per image Q·M instead of --measurements: M = ⌊budget/Q⌋ for each bit depth (not for linear).
    #[arg(long)]
    pub budget: Option<usize>,
    /// Methods: qcs-sgm, qcs-sgm-plus, biht, back-projection (default: the config's method, biht,
    /// back-projection).
    #[arg(long, value_delimiter = ',')]
    pub methods: Vec<String>,
    /// Operator families, with an optional parameter after a colon: gaussian, dct, hadamard,
    /// ill-conditioned[:κ], correlated[:ρ] (default: the config's; without a parameter, its kappa/rho).
    #[arg(long, value_delimiter = ',')]
    pub matrices: Vec<String>,
    /// Noise standard deviations σ (config: measurement.noise_std).
    #[arg(long, value_delimiter = ',', allow_negative_numbers = true)]
    pub noise_std: Vec<f64>,
    /// Langevin schedules LEVELSxSTEPS, e.g. 232x5,58x2 (config: sampler.levels x sampler.steps_per_level).
    #[arg(long, value_delimiter = ',')]
    pub schedules: Vec<String>,
    /// Likelihood numerics: stable, reference, clamped (default: stable). For QCS-SGM `reference` is the
    /// reference's clamped formula with its step size; for QCS-SGM+ it is the reference's EP (5 iterations,
    /// damping 0.02): either way it reproduces the reference algorithm. `clamped` is the reference's formula
    /// under --step-control, to compare the two formulas at the same step (QCS-SGM+: as stable).
    #[arg(long, value_delimiter = ',')]
    pub numerics: Vec<String>,
    /// Sampler settings shared with `reconstruct`.
    #[command(flatten)]
    pub sampler: SamplerFlags,
    /// Output directory: results.csv, results.md, psnr_vs_m.png, psnr_vs_nfe.png.
    #[arg(long, default_value = "out/eval")]
    pub out: PathBuf,
    /// Add to an existing results.csv in --out, skipping the cells it already holds.
    #[arg(long)]
    pub resume: bool,
}

/// The images of `eval` and `loss`.
#[derive(Args, Debug, Clone)]
pub struct ImageSelection {
    /// PNG/JPEG files or folders, or one IDX image file (default: the config's model.images, the test
    /// images shipped for its dataset in assets/images/).
    #[arg(long, num_args = 1..)]
    pub images: Vec<PathBuf>,
    /// Resize images of another size to the model's instead of refusing them.
    #[arg(long)]
    pub resize: bool,
    /// Use the first N images (after --skip; default: all).
    #[arg(long)]
    pub count: Option<usize>,
    /// Leave out the first K images (the others keep their numbers, and so the measurement noise and
    /// random draws they get in a run without --skip: a run can be split into parts).
    #[arg(long, default_value_t = 0)]
    pub skip: usize,
}

/// `qcs loss`.
#[derive(Args, Debug)]
pub struct LossArgs {
    /// Configuration file ([model]: the default weights, the image size and the noise schedule).
    #[arg(long, default_value = "configs/mnist.toml")]
    pub config: PathBuf,
    /// Score-network weights, comma-separated (default: the config's model.path). Every network
    /// sees the same noisy images; each after the first is compared with the first, image by image.
    #[arg(long, value_delimiter = ',')]
    pub model: Vec<PathBuf>,
    /// The images: held-out ones, such as a test split.
    #[command(flatten)]
    pub selection: ImageSelection,
    /// Bands of consecutive noise levels, as in a training run's loss.csv (band 0: the largest σ).
    #[arg(long, default_value_t = 10)]
    pub bands: usize,
    /// Noisy images per forward pass.
    #[arg(long, default_value_t = 50)]
    pub batch: usize,
    /// Seed of the levels and the noise.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Also write every image's loss in every band, for each network, to this CSV file.
    #[arg(long)]
    pub csv: Option<PathBuf>,
}

/// Sampler flags shared by `reconstruct` and `eval`; each overrides one value of the config's
/// `[sampler]` ([`SamplerFlags::apply`]).
#[derive(Args, Debug, Clone, Copy, Default)]
pub struct SamplerFlags {
    /// Step size rule: preconditioned (steps shrink with the likelihood's curvature along each direction of
    /// A's row space; needed for linear and Q-bit measurements), curvature (the whole step shrinks by the
    /// stiffest direction's factor) or reference (ε·(σ_c/σ_T)² throughout); in `eval`, the rule of the
    /// stable and clamped numerics (config: sampler.step_control).
    #[arg(long, value_parser = parse_step_control)]
    pub step_control: Option<StepControl>,
    /// QCS-SGM+: most EP iterations per likelihood evaluation (config: sampler.ep_iterations; default 20,
    /// the reference 5).
    #[arg(long)]
    pub ep_iterations: Option<usize>,
    /// QCS-SGM+: EP damping d in [0, 1), v ← (1 − d)·v_new + d·v_old (config: sampler.ep_damping; default
    /// 0.5, the reference 0.02).
    #[arg(long)]
    pub ep_damping: Option<f64>,
    /// Independent chains per image: PSNR is that of their mean, and `reconstruct` also writes their
    /// per-pixel standard deviation when there are more than one (config: sampler.chains).
    #[arg(long)]
    pub chains: Option<usize>,
    /// Images per batch (config: sampler.batch).
    #[arg(long)]
    pub batch: Option<usize>,
    /// Seed of the operator, the measurement noise and the sampler, the same in every cell of `eval`
    /// (config: measurement.seed, sampler.seed).
    #[arg(long)]
    pub seed: Option<u64>,
}

impl SamplerFlags {
    /// `section` with the values that these flags set replaced.
    pub fn apply(&self, section: &SamplerSection) -> SamplerSection {
        SamplerSection {
            step_control: self.step_control.unwrap_or(section.step_control),
            ep_iterations: self.ep_iterations.or(section.ep_iterations),
            ep_damping: self.ep_damping.or(section.ep_damping),
            chains: self.chains.unwrap_or(section.chains),
            batch: self.batch.unwrap_or(section.batch),
            seed: self.seed.unwrap_or(section.seed),
            ..section.clone()
        }
    }
}

/// `curvature` or `reference`.
fn parse_step_control(text: &str) -> Result<StepControl, String> {
    match text {
        "curvature" => Ok(StepControl::Curvature),
        "preconditioned" => Ok(StepControl::Preconditioned),
        "reference" => Ok(StepControl::Reference),
        other => Err(format!(
            "unknown step control `{other}` (expected curvature, preconditioned or reference)"
        )),
    }
}
