//! `qcs bench`: speed of the score network and of the Langevin sampler on the compiled-in backend.
//!
//! Per case (ngf × image size × batch): milliseconds per network evaluation, milliseconds per Langevin step
//! (network + QCS-SGM 1-bit likelihood + update, from a run of `--steps` steps), and the images per second
//! that the reference schedule (232 levels × 5 steps + the final denoising step, 1,161 network evaluations)
//! would give at that speed. Warm-up runs come first and are not timed (on wgpu they compile and autotune
//! the kernels); every figure is the median of `--repeats` runs, with a device synchronisation before each
//! clock read.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use burn::prelude::*;
use burn::tensor::FloatDType;
use clap::Args;
use qcs_data::{Dataset, ImageSpec};
use qcs_likelihood::{Observation, QcsSgmScore};
use qcs_sampler::{sample_posterior, LangevinConfig, LevelSubset, LikelihoodWeight, StepControl};
use qcs_score_net::train::{train, TrainConfig};
use qcs_score_net::NcsnV2Config;
use qcs_sensing::{build_operator, simulate, Family, ImageShape, OperatorSpec, QuantizerSpec};
use serde::Serialize;

use crate::args::Precision;
use crate::backend;
use crate::stdout::outln;

/// Network evaluations of the reference schedule: 232 levels × 5 steps + the final denoising step.
pub const REFERENCE_NFE: usize = 232 * 5 + 1;

/// `qcs bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Base channel counts to measure.
    #[arg(long, value_delimiter = ',', default_values_t = vec![32, 64, 128])]
    pub ngf: Vec<usize>,
    /// Batch sizes to measure.
    #[arg(long, value_delimiter = ',', default_values_t = vec![1, 10, 100])]
    pub batch: Vec<usize>,
    /// Image sizes (28 → 28×28×1, 32 → 32×32×3, 64 → 64×64×3). 64 is measured at ngf 128 only unless
    /// `--all-sizes` is given.
    #[arg(long, value_delimiter = ',', default_values_t = vec![28, 64])]
    pub size: Vec<usize>,
    /// Measure every size at every ngf.
    #[arg(long)]
    pub all_sizes: bool,
    /// Timed runs per figure (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub repeats: usize,
    /// Untimed runs before the timed ones.
    #[arg(long, default_value_t = 1)]
    pub warmup: usize,
    /// Langevin steps per timed sampler run.
    #[arg(long, default_value_t = 10)]
    pub steps: usize,
    /// Images per training step for the training benchmark (one denoising-score-matching step:
    /// forward, backward, Adam, EMA) at every ngf on 28×28; 0 skips it.
    #[arg(long, default_value_t = 128)]
    pub train_batch: usize,
    /// Float precision of the network in the forward and Langevin figures (training is f32).
    #[arg(long, value_enum, default_value_t = Precision::F32)]
    pub precision: Precision,
    /// A small fast subset: ngf 32, batch 1 and 10, 28×28, 3 repeats, no training.
    #[arg(long)]
    pub quick: bool,
    /// Where to write the JSON results.
    #[arg(long, default_value = "out/bench.json")]
    pub out: PathBuf,
}

/// One measured case.
#[derive(Debug, Clone, Serialize)]
pub struct Case {
    /// Base channel count.
    pub ngf: usize,
    /// Channels × height × width of the images.
    pub image: [usize; 3],
    /// Images per network call.
    pub batch: usize,
    /// Median milliseconds per network evaluation of the whole batch.
    pub forward_ms: f64,
    /// Median milliseconds per Langevin step of the whole batch (network, likelihood, update).
    pub langevin_step_ms: f64,
    /// Images per second at the reference schedule's NFE.
    pub images_per_s: f64,
}

/// One measured training configuration.
#[derive(Debug, Clone, Serialize)]
pub struct TrainCase {
    /// Base channel count.
    pub ngf: usize,
    /// Channels × height × width of the images.
    pub image: [usize; 3],
    /// Images per step.
    pub batch: usize,
    /// Median milliseconds per optimizer step (batch draw and upload, loss, backward, Adam, EMA).
    pub step_ms: f64,
}

/// What `qcs bench` writes.
#[derive(Debug, Serialize)]
pub struct BenchReport {
    /// The compiled-in backend.
    pub backend: String,
    /// Float precision of the network in the forward and Langevin figures.
    pub precision: String,
    /// How the network's convolutions ran (`--conv`): native, gemm or auto.
    pub conv: String,
    /// The device, as burn names it.
    pub device: String,
    /// Threads the CPU backends computed on (`RAYON_NUM_THREADS`, else every core); `null` on wgpu.
    pub cpu_threads: Option<usize>,
    /// Network evaluations assumed for `images_per_s`.
    pub reference_nfe: usize,
    /// Timed runs per figure.
    pub repeats: usize,
    /// Langevin steps per timed sampler run.
    pub steps: usize,
    /// The measured cases.
    pub cases: Vec<Case>,
    /// The measured training steps.
    pub training: Vec<TrainCase>,
}

fn image_of(size: usize) -> Result<[usize; 3]> {
    Ok(match size {
        28 => [1, 28, 28],
        32 => [3, 32, 32],
        64 => [3, 64, 64],
        other => bail!("--size {other}: the network topologies take 28, 32 or 64"),
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

/// Runs `f` `warmup` times untimed, then `repeats` times timed between device synchronisations; returns the
/// median in milliseconds.
fn time_ms(
    device: &Device,
    warmup: usize,
    repeats: usize,
    mut f: impl FnMut() -> Result<()>,
) -> Result<f64> {
    for _ in 0..warmup {
        f()?;
    }
    let mut times = Vec::with_capacity(repeats);
    for _ in 0..repeats {
        device
            .sync()
            .map_err(|e| anyhow::anyhow!("device synchronisation: {e:?}"))?;
        let start = Instant::now();
        f()?;
        device
            .sync()
            .map_err(|e| anyhow::anyhow!("device synchronisation: {e:?}"))?;
        times.push(start.elapsed().as_secs_f64() * 1e3);
    }
    Ok(median(times))
}

/// The network of the reference schedule (232 levels from σ = 50 to 0.01) for `image` = [C, H, W].
fn reference_network(ngf: usize, image: [usize; 3]) -> NcsnV2Config {
    NcsnV2Config {
        ngf,
        channels: image[0],
        image_size: image[1],
        num_levels: 232,
        sigma_begin: 50.0,
        sigma_end: 0.01,
    }
}

fn measure(
    args: &BenchArgs,
    ngf: usize,
    image: [usize; 3],
    batch: usize,
    device: &Device,
) -> Result<Case> {
    let net = reference_network(ngf, image);
    let model = net.init(device).context("building the network")?;
    let model = match args.precision {
        Precision::F32 => model,
        Precision::F16 => model
            .with_precision(FloatDType::F16)
            .context("--precision")?,
    };
    let model = model.with_channels_last_weights();
    let shape = ImageShape::new(image[0], image[1], image[2])?;
    let n = shape.numel();

    device.seed(0);
    let x = Tensor::<4>::random(
        [batch, image[0], image[1], image[2]],
        burn::tensor::Distribution::Default,
        device,
    );
    let levels = Tensor::<1, Int>::from_data(TensorData::new(vec![100i64; batch], [batch]), device);
    let forward_ms = time_ms(device, args.warmup, args.repeats, || {
        let _ = model.forward(x.clone(), levels.clone());
        Ok(())
    })?;

    // A 1-bit problem with M = N/4 Gaussian measurements of random images.
    let spec = OperatorSpec {
        family: Family::Gaussian,
        measurements: n / 4,
        image: shape,
        seed: 0,
    };
    let op = build_operator(&spec, device)?;
    let truth = Tensor::<2>::random([batch, n], burn::tensor::Distribution::Default, device);
    let names = (0..batch).map(|i| format!("bench-{i}")).collect();
    let set = simulate(op.as_ref(), truth, QuantizerSpec::OneBit, 0.05, 0, names)?;
    let obs = Observation::from_set(&set, device);
    let likelihood = QcsSgmScore::default();
    let config = LangevinConfig {
        steps_per_level: 1,
        epsilon: 2e-4,
        weight: LikelihoodWeight::Fixed(1.0),
        levels: LevelSubset::Count { count: args.steps },
        step_control: StepControl::default(),
        final_denoise: false,
        chains: 1,
        seed: 0,
        first_image: 0,
    };
    let run_ms = time_ms(device, args.warmup, args.repeats, || {
        let posterior = sample_posterior(
            &model,
            Some((&likelihood, op.as_ref(), &obs)),
            &config,
            batch,
            shape,
            &mut |_| {},
        )?;
        drop(posterior);
        Ok(())
    })?;
    let langevin_step_ms = run_ms / args.steps as f64;
    Ok(Case {
        ngf,
        image,
        batch,
        forward_ms,
        langevin_step_ms,
        images_per_s: batch as f64 * 1e3 / (langevin_step_ms * REFERENCE_NFE as f64),
    })
}

/// Times training steps of a fresh network on random images: `max(warmup, 1)` untimed steps (the
/// first clock read needs one), then the median of `repeats` step intervals, each clock read after a
/// device synchronisation. The run folder is a temporary directory, removed however the run ends.
fn measure_training(args: &BenchArgs, ngf: usize, device: &Device) -> Result<TrainCase> {
    let image = [1, 28, 28];
    let net = reference_network(ngf, image);
    let steps = args.warmup.max(1) + args.repeats;
    let config = TrainConfig::new(net, steps)
        .with_batch_size(args.train_batch)
        .with_checkpoint_every(steps + 1)
        .with_log_every(steps + 1);
    let count = args.train_batch.max(256);
    let pixels: Vec<f32> = (0..count * 28 * 28)
        .map(|i| ((i * 761) % 1000) as f32 / 1000.0)
        .collect();
    let names = (0..count).map(|i| format!("bench-{i}")).collect();
    let data = Dataset::new(ImageSpec::new(1, 28, 28), pixels, names)?;
    let dir = tempfile::Builder::new()
        .prefix("qcs-bench-train-")
        .tempdir()
        .context("creating a temporary training folder")?;
    let mut stamps = Vec::with_capacity(steps);
    let mut sync_error = None;
    let outcome = train(
        &config,
        &data,
        dir.path(),
        device,
        |_| {
            if let Err(e) = device.sync() {
                sync_error.get_or_insert(format!("{e:?}"));
            }
            stamps.push(Instant::now());
        },
        &AtomicBool::new(false),
    );
    drop(dir);
    outcome.context("training")?;
    if let Some(e) = sync_error {
        bail!("device synchronisation: {e}");
    }
    let skip = args.warmup.max(1) - 1;
    let intervals = stamps[skip..]
        .windows(2)
        .map(|w| (w[1] - w[0]).as_secs_f64() * 1e3)
        .collect();
    Ok(TrainCase {
        ngf,
        image,
        batch: args.train_batch,
        step_ms: median(intervals),
    })
}

/// The cases to run, in order.
fn cases(args: &BenchArgs) -> Result<Vec<(usize, [usize; 3], usize)>> {
    if args.repeats == 0 || args.steps == 0 {
        bail!("--repeats and --steps must be at least 1");
    }
    if args.quick {
        return Ok(vec![(32, [1, 28, 28], 1), (32, [1, 28, 28], 10)]);
    }
    if args.ngf.contains(&0) || args.batch.contains(&0) {
        bail!("--ngf and --batch values must be at least 1");
    }
    let mut out = Vec::new();
    for &size in &args.size {
        let image = image_of(size)?;
        for &ngf in &args.ngf {
            if size == 64 && ngf != 128 && !args.all_sizes {
                continue;
            }
            for &batch in &args.batch {
                out.push((ngf, image, batch));
            }
        }
    }
    if out.is_empty() {
        bail!("no case to measure (64×64 runs at ngf 128 only; add --all-sizes)");
    }
    Ok(out)
}

/// Writes the report as JSON to `out` (atomically; its folder is created if needed).
fn write_report(report: &BenchReport, out: &Path) -> Result<()> {
    let json = serde_json::to_vec_pretty(report)?;
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    qcs_sensing::file::write_atomically(out, &json)
        .with_context(|| format!("writing {}", out.display()))
}

/// Runs `qcs bench`.
pub fn run(args: &BenchArgs) -> Result<()> {
    let plan = cases(args)?;
    let device = backend::device();
    let args = &BenchArgs {
        repeats: if args.quick { 3 } else { args.repeats },
        ngf: args.ngf.clone(),
        batch: args.batch.clone(),
        size: args.size.clone(),
        out: args.out.clone(),
        ..*args
    };
    let threads = backend::cpu_threads().map_or(String::new(), |n| {
        format!(", {n} thread{}", if n == 1 { "" } else { "s" })
    });
    eprintln!(
        "qcs bench on {} ({device:?}{threads}), network in {}, {} convolutions: {} cases, median of {} runs after {} warm-up",
        backend::BACKEND,
        args.precision.name(),
        qcs_score_net::conv_algorithm().name(),
        plan.len(),
        args.repeats,
        args.warmup
    );
    outln!(
        "| ngf | image | batch | forward ms | Langevin step ms | images/s at {REFERENCE_NFE} NFE |"
    );
    outln!("|---:|---|---:|---:|---:|---:|");
    let mut measured = Vec::with_capacity(plan.len());
    for (ngf, image, batch) in plan {
        let case = measure(args, ngf, image, batch, &device)
            .with_context(|| format!("ngf {ngf}, image {image:?}, batch {batch}"))?;
        outln!(
            "| {} | {}×{}×{} | {} | {:.2} | {:.2} | {:.3} |",
            case.ngf,
            image[1],
            image[2],
            image[0],
            case.batch,
            case.forward_ms,
            case.langevin_step_ms,
            case.images_per_s
        );
        measured.push(case);
    }
    let mut report = BenchReport {
        backend: backend::BACKEND.to_owned(),
        precision: args.precision.name().to_owned(),
        conv: qcs_score_net::conv_algorithm().name().to_owned(),
        device: format!("{device:?}"),
        cpu_threads: backend::cpu_threads(),
        reference_nfe: REFERENCE_NFE,
        repeats: args.repeats,
        steps: args.steps,
        cases: measured,
        training: Vec::new(),
    };
    // Written now and again after each training case, so a failed or interrupted training
    // measurement keeps the figures already taken.
    write_report(&report, &args.out)?;
    if args.train_batch > 0 && !args.quick && args.size.contains(&28) {
        outln!();
        outln!("| ngf | image | train batch | ms per training step |");
        outln!("|---:|---|---:|---:|");
        for &ngf in &args.ngf {
            let case = measure_training(args, ngf, &device)
                .with_context(|| format!("training step, ngf {ngf}"))?;
            outln!(
                "| {} | 28×28×1 | {} | {:.1} |",
                case.ngf,
                case.batch,
                case.step_ms
            );
            report.training.push(case);
            write_report(&report, &args.out)?;
        }
    }
    eprintln!("wrote {}", args.out.display());
    Ok(())
}
