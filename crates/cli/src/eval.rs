//! `qcs eval`: a sweep of methods × measurement settings over the same images with the same seeds, written
//! cell by cell to `results.csv` (resumable), `results.md`, and PSNR plots.

use std::collections::HashSet;
use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use burn::prelude::*;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use qcs_baselines::{back_projection, biht, BihtConfig, OneBitScale};
use qcs_data::{Dataset, ImageSpec};
use qcs_likelihood::Numerics;
use qcs_sampler::StepControl;
use qcs_sensing::{
    build_operator, simulate_from, ImageShape, MeasurementSet, Operator, QuantizerSpec, StepRule,
};

use crate::args::{EvalArgs, Precision};
use crate::config::{Config, SamplerSection};
use crate::reconstruct::{langevin_config, reconstruct_all, slice_set, step_bar_style};
use crate::report::{score_images, ImageScore};
use crate::results::{markdown, mean_se, summary, write_atomically, PerImage, ResultsFile, Row};
use crate::setup::{load_model, select_images, Prior};
use crate::stdout::outln;
use crate::sweep::{bits_name, numerics_name, plan, Cell, Method, Setting};
use crate::{backend, plot};

/// What every cell shares.
struct Shared<'a> {
    args: &'a EvalArgs,
    config: &'a Config,
    /// The score network, when a sampling method is evaluated.
    prior: Option<&'a Prior>,
    truth: &'a Dataset,
    device: Device,
}

/// Runs `qcs eval`.
pub fn run(args: &EvalArgs) -> Result<()> {
    let config = Config::load(&args.config)?;
    let device = backend::device();
    let needs_prior = crate::sweep::methods(&args.methods, &config)?
        .iter()
        .any(|m| m.uses_prior());
    let prior = if needs_prior {
        let (model, net) = load_model(args.model.as_ref(), &config, args.precision, &device)?;
        Some(Prior { model, net })
    } else {
        None
    };
    let (channels, size) = prior
        .as_ref()
        .map_or((config.model.channels, config.model.image_size), |p| {
            (p.net.channels, p.net.image_size)
        });
    let shape = ImageShape::new(channels, size, size)?;
    let settings = plan(
        args,
        &config,
        shape,
        prior.as_ref().map(|p| p.net.num_levels),
    )?;
    let truth = select_images(
        &args.selection,
        &config,
        ImageSpec::new(channels, size, size),
    )?;

    let fingerprint = Fingerprint::of(args, &config, &truth)?;
    let (file, rows) = ResultsFile::open(&args.out, args.resume)?;
    fingerprint.check_or_write(&args.out)?;
    let context = Shared {
        args,
        config: &config,
        prior: prior.as_ref(),
        truth: &truth,
        device,
    };
    let command = command_line();
    let (rows, per_image) = run_pending(&context, &settings, file, rows, &command)?;
    finish(&args.out, &rows, &per_image, &command)
}

/// What a row of `results.csv` depends on beyond its own columns: kept in `run.json`, so `--resume` refuses
/// to mix rows of different models, images, seeds, chains or configs.
#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Fingerprint {
    /// The model file and an FNV-1a hash of its bytes (none when only baselines run).
    model: Option<(String, String)>,
    /// The config file and a hash of its text.
    config: (String, String),
    /// The evaluated images, in order.
    images: Vec<String>,
    /// Seed of operators, noise and sampler.
    seed: u64,
    /// Chains per image.
    chains: usize,
    /// Float precision of the network (f32 when only baselines run).
    #[serde(default = "f32_name")]
    precision: String,
    /// The step size rule (runs written before it was recorded used the default, curvature).
    #[serde(default)]
    step_control: StepControl,
    /// QCS-SGM+'s EP overrides, `--ep-iterations` and `--ep-damping` (none: qcs's settings).
    #[serde(default)]
    ep_iterations: Option<usize>,
    #[serde(default)]
    ep_damping: Option<f64>,
    /// How the sampler's start and noise are keyed: per image since 2026-12-04 (`PER_IMAGE`); run files
    /// written before say nothing, and their runs drew them per batch.
    #[serde(default = "per_batch")]
    noise_streams: String,
    /// Images per batch where QCS-SGM+ runs (none where it does not): its step weight is a norm over the
    /// batch, so its rows depend on which images share one.
    #[serde(default)]
    plus_batch: Option<usize>,
    /// The number of the first image (`--skip`), which keys the noise streams of every image after it; run
    /// files written before 2026-12-06 say nothing (read as 0), and their streams were numbered from 0
    /// whatever `--skip`.
    #[serde(default)]
    first_image: usize,
}

/// The noise streams of this qcs: one per image and chain, the same whatever the batch.
const PER_IMAGE: &str = "per-image";

fn f32_name() -> String {
    Precision::F32.name().to_string()
}

fn per_batch() -> String {
    "per-batch".to_string()
}

fn fnv1a(bytes: &[u8]) -> String {
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{hash:016x}")
}

impl Fingerprint {
    fn of(args: &EvalArgs, config: &Config, truth: &Dataset) -> Result<Self> {
        let hashed = |path: &Path| -> Result<(String, String)> {
            let bytes =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            Ok((path.display().to_string(), fnv1a(&bytes)))
        };
        let methods = crate::sweep::methods(&args.methods, config)?;
        let needs_prior = methods.iter().any(|m| m.uses_prior());
        let runs_plus = methods.contains(&Method::QcsSgmPlus);
        let sampler = args.sampler.apply(&config.sampler);
        let model_path = args
            .model
            .clone()
            .unwrap_or_else(|| config.model.path.clone());
        Ok(Self {
            model: needs_prior.then(|| hashed(&model_path)).transpose()?,
            config: hashed(&args.config)?,
            images: truth.names().to_vec(),
            seed: sampler.seed,
            chains: sampler.chains,
            precision: if needs_prior {
                args.precision.name().to_string()
            } else {
                f32_name()
            },
            step_control: sampler.step_control,
            ep_iterations: sampler.ep_iterations,
            ep_damping: sampler.ep_damping,
            noise_streams: PER_IMAGE.to_string(),
            plus_batch: runs_plus.then_some(sampler.batch),
            first_image: args.selection.skip,
        })
    }

    /// Writes `run.json` for a new run; for a resumed one, checks that it matches.
    fn check_or_write(&self, out: &Path) -> Result<()> {
        let path = out.join("run.json");
        if path.exists() {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            let earlier: Self = serde_json::from_str(&text)
                .with_context(|| format!("{}: not a qcs eval run file", path.display()))?;
            let differences: Vec<&str> = [
                (earlier.model != self.model, "the model"),
                (earlier.config != self.config, "the config file"),
                (earlier.images != self.images, "the images"),
                (earlier.seed != self.seed, "--seed"),
                (earlier.chains != self.chains, "--chains"),
                (earlier.precision != self.precision, "--precision"),
                (earlier.step_control != self.step_control, "--step-control"),
                (
                    earlier.ep_iterations != self.ep_iterations,
                    "--ep-iterations",
                ),
                (earlier.ep_damping != self.ep_damping, "--ep-damping"),
                (
                    earlier.noise_streams != self.noise_streams,
                    "the sampler's noise streams (per batch before 2026-12-04, per image since)",
                ),
                (
                    earlier.plus_batch != self.plus_batch,
                    "--batch (QCS-SGM+ weighs its steps by norms over the batch)",
                ),
                (
                    earlier.first_image != self.first_image,
                    "the numbering of the noise streams (from 0 whatever --skip before 2026-12-06)",
                ),
            ]
            .into_iter()
            .filter_map(|(differs, name)| differs.then_some(name))
            .collect();
            if !differences.is_empty() {
                bail!(
                    "--resume: {} differ from the run in {} ({}); choose another --out",
                    differences.join(", "),
                    out.display(),
                    path.display()
                );
            }
            return Ok(());
        }
        let text = serde_json::to_string_pretty(self)? + "\n";
        write_atomically(&path, &text)
    }
}

impl Shared<'_> {
    /// The key of a cell's row, to find it among the rows of an earlier run.
    fn key(&self, setting: &Setting, cell: &Cell) -> String {
        row(self, setting, cell, &Outcome::default(), Quality::default()).key()
    }
}

/// Runs every cell that `rows` does not hold yet, appending each finished one to `file` and rewriting
/// `results.md`; returns all rows and the per-image scores.
fn run_pending(
    context: &Shared,
    settings: &[Setting],
    mut file: ResultsFile,
    mut rows: Vec<Row>,
    command: &str,
) -> Result<(Vec<Row>, PerImage)> {
    let done: HashSet<String> = rows.iter().map(Row::key).collect();
    let pending = |s: &Setting| -> Vec<Cell> {
        s.cells
            .iter()
            .filter(|c| !done.contains(&context.key(s, c)))
            .cloned()
            .collect()
    };
    let total: usize = settings.iter().map(|s| pending(s).len()).sum();
    let skipped = settings.iter().map(|s| s.cells.len()).sum::<usize>() - total;
    if skipped > 0 {
        eprintln!(
            "resuming: {skipped} cell(s) already in {}",
            file.path().display()
        );
    }
    let bars = MultiProgress::new();
    let cells_bar = bars.add(ProgressBar::new(total as u64)).with_style(
        ProgressStyle::with_template("{spinner} cell {pos}/{len} [{bar:32}] {msg} · ETA {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let steps_bar = if context.prior.is_some() {
        bars.add(ProgressBar::new(0)).with_style(step_bar_style())
    } else {
        ProgressBar::hidden()
    };
    for setting in settings {
        let cells = pending(setting);
        if cells.is_empty() {
            continue;
        }
        let operator = build_operator(&setting.operator, &context.device)?;
        let set = measure(context, setting, operator.as_ref())?;
        for cell in &cells {
            cells_bar.set_message(label(setting, cell));
            let outcome = run_cell(context, operator.as_ref(), &set, cell, &steps_bar)
                .with_context(|| format!("cell {}", label(setting, cell)))?;
            let scores = score_images(context.truth, &outcome.images, context.truth.names())?;
            let r = row(context, setting, cell, &outcome, quality(&scores));
            file.append(&r, &scores)?;
            rows.push(r);
            write_atomically(
                &context.args.out.join("results.md"),
                &markdown(&rows, file.per_image(), command),
            )?;
            cells_bar.inc(1);
        }
    }
    steps_bar.finish_and_clear();
    cells_bar.finish_and_clear();
    Ok((rows, file.into_per_image()))
}

/// Writes the table and the plots of all rows, and prints the summary.
fn finish(out: &Path, rows: &[Row], per_image: &PerImage, command: &str) -> Result<()> {
    write_atomically(&out.join("results.md"), &markdown(rows, per_image, command))?;
    let mut written = vec!["results.csv", "results.md"];
    if plot::psnr_vs_m(rows, &out.join("psnr_vs_m.png"))? {
        written.push("psnr_vs_m.png");
    }
    if plot::psnr_vs_nfe(rows, &out.join("psnr_vs_nfe.png"))? {
        written.push("psnr_vs_nfe.png");
    }
    crate::stdout::print(&summary(rows))?;
    outln!("wrote {} in {}", written.join(", "), out.display());
    Ok(())
}

/// Simulated measurements of every image for one setting (the seeds are the same in every setting; an image
/// gets the noise it gets in a run without `--skip`).
fn measure(context: &Shared, setting: &Setting, operator: &dyn Operator) -> Result<MeasurementSet> {
    let truth = context.truth;
    let x = Tensor::from_data(
        TensorData::new(truth.pixels().to_vec(), [truth.len(), truth.spec().len()]),
        &context.device,
    );
    let quantizer = QuantizerSpec::from_bits(setting.bits, StepRule::FromData)?;
    Ok(simulate_from(
        operator,
        x,
        quantizer,
        setting.noise_std,
        setting.operator.seed,
        context.args.selection.skip,
        truth.names().to_vec(),
    )?)
}

/// What one cell produced.
#[derive(Default)]
struct Outcome {
    /// Reconstructions, [B, N].
    images: Vec<f32>,
    nfe: usize,
    seconds: f64,
}

fn run_cell(
    context: &Shared,
    operator: &dyn Operator,
    set: &MeasurementSet,
    cell: &Cell,
    steps_bar: &ProgressBar,
) -> Result<Outcome> {
    match (cell.method, cell.schedule) {
        (Method::QcsSgm | Method::QcsSgmPlus, Some(schedule)) => {
            let Some(prior) = context.prior else {
                bail!("no score network loaded for {}", cell.method.name());
            };
            let sampler = sampler_section(
                context,
                cell.method,
                schedule.levels,
                schedule.steps_per_level,
            );
            langevin_config(&sampler, prior.net.num_levels)?;
            let result = reconstruct_all(
                set,
                prior,
                &sampler,
                cell.numerics.unwrap_or(Numerics::Stable),
                context.args.selection.skip as u64,
                steps_bar,
                &context.device,
            )?;
            Ok(Outcome {
                images: result.mean,
                nfe: result.nfe,
                seconds: result.seconds,
            })
        }
        (method, _) => baseline(context, operator, set, method),
    }
}

/// The config's sampler section for one cell.
fn sampler_section(
    context: &Shared,
    method: Method,
    levels: usize,
    steps: usize,
) -> SamplerSection {
    SamplerSection {
        method: method.name().to_string(),
        levels,
        steps_per_level: steps,
        likelihood_scale: context.config.likelihood_scale_for(method.name()),
        ..context.args.sampler.apply(&context.config.sampler)
    }
}

/// BIHT or back-projection of every image, in batches of `--batch`.
fn baseline(
    context: &Shared,
    operator: &dyn Operator,
    set: &MeasurementSet,
    method: Method,
) -> Result<Outcome> {
    let batch = context
        .args
        .sampler
        .batch
        .unwrap_or(context.config.sampler.batch)
        .max(1);
    let started = Instant::now();
    let mut images = Vec::with_capacity(set.batch() * operator.cols());
    for start in (0..set.batch()).step_by(batch) {
        let sub = slice_set(set, start, (start + batch).min(set.batch()));
        let out = match method {
            Method::Biht => biht(operator, &sub, &BihtConfig::default())?,
            _ => back_projection(operator, &sub, OneBitScale::default())?,
        };
        images.extend(
            out.into_data()
                .try_to_vec_as::<f32>()
                .map_err(|e| anyhow::anyhow!("reading results back: {e:?}"))?,
        );
    }
    Ok(Outcome {
        images,
        nfe: 0,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Mean PSNR, its standard error (none for one image) and mean SSIM of a cell.
#[derive(Default)]
struct Quality {
    psnr: f64,
    psnr_se: Option<f64>,
    ssim: f64,
}

/// The mean quality of a cell's reconstructions, from their scores.
fn quality(scores: &[ImageScore]) -> Quality {
    let psnrs: Vec<f64> = scores.iter().map(|s| s.psnr).collect();
    let (psnr, se) = mean_se(&psnrs);
    let ssim = scores.iter().map(|s| s.ssim).sum::<f64>() / scores.len() as f64;
    let psnr_se = (scores.len() > 1).then_some(se);
    Quality {
        psnr,
        psnr_se,
        ssim,
    }
}

/// The results row of a cell (with default outcome and quality: the row whose key identifies the cell).
fn row(
    context: &Shared,
    setting: &Setting,
    cell: &Cell,
    outcome: &Outcome,
    quality: Quality,
) -> Row {
    Row {
        method: cell.method.name().to_string(),
        numerics: cell
            .numerics
            .map_or(String::new(), |n| numerics_name(n).to_string()),
        matrix: setting.matrix.clone(),
        bits: bits_name(setting.bits),
        measurements: setting.operator.measurements,
        noise_std: setting.noise_std,
        levels: cell.schedule.map(|s| s.levels),
        steps_per_level: cell.schedule.map(|s| s.steps_per_level),
        nfe: outcome.nfe,
        images: context.truth.len(),
        psnr: quality.psnr,
        psnr_se: quality.psnr_se,
        ssim: quality.ssim,
        seconds: outcome.seconds,
        backend: match (cell.method.uses_prior(), context.args.precision) {
            (true, Precision::F16) => format!("{} f16", backend::BACKEND),
            _ => backend::BACKEND.to_string(),
        },
    }
}

/// A short description of a cell for the progress bar.
fn label(setting: &Setting, cell: &Cell) -> String {
    let mut parts = vec![
        cell.method.name().to_string(),
        format!("{} bits", bits_name(setting.bits)),
        format!("M={}", setting.operator.measurements),
        setting.matrix.clone(),
        format!("σ={}", setting.noise_std),
    ];
    if let Some(s) = cell.schedule {
        parts.push(format!("{}×{}", s.levels, s.steps_per_level));
    }
    if let Some(n) = cell.numerics {
        parts.push(numerics_name(n).to_string());
    }
    parts.join(" · ")
}

/// The command line as typed, quoted for a POSIX shell where needed.
fn command_line() -> String {
    std::env::args()
        .map(|a| {
            let plain = !a.is_empty()
                && a.chars()
                    .all(|c| c.is_alphanumeric() || "-_./:,=+@%".contains(c));
            if plain {
                a
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
