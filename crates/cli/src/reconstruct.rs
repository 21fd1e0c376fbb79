//! `qcs reconstruct`: measurements (simulated from images or read from a file) → posterior samples → pictures,
//! PSNR/SSIM and `report.json`.

use std::time::Instant;

use anyhow::{bail, Context, Result};
use burn::prelude::*;
use indicatif::{ProgressBar, ProgressStyle};
use qcs_data::Dataset;
use qcs_likelihood::{EpConfig, EpScore, LikelihoodScore, Numerics, Observation, QcsSgmScore};
use qcs_sampler::{sample_posterior, LangevinConfig, LevelSubset, LikelihoodWeight};
use qcs_score_net::NcsnV2Config;
use qcs_sensing::{build_operator, simulate, MeasurementSet};

use crate::args::ReconstructArgs;
use crate::config::{Config, SamplerSection};
use crate::report::{score_images, Report};
use crate::setup::{
    image_shape, image_spec, load_model, matrix_label, measurement_settings, operator_spec,
    quantizer, read_images, Prior,
};
use crate::stdout::outln;
use crate::{backend, output};

/// The sampler section with the flags applied.
fn sampler_settings(args: &ReconstructArgs, config: &Config) -> SamplerSection {
    let s = args.sampler.apply(&config.sampler);
    let method = args.method.clone().unwrap_or_else(|| s.method.clone());
    SamplerSection {
        // The config's λ is for its own method; `--method` switching to the other one takes that method's λ.
        likelihood_scale: args
            .likelihood_scale
            .unwrap_or_else(|| config.likelihood_scale_for(&method)),
        method,
        levels: args.levels.unwrap_or(s.levels),
        steps_per_level: args.steps_per_level.unwrap_or(s.steps_per_level),
        step_lr: args.step_lr.unwrap_or(s.step_lr),
        ..s
    }
}

/// Langevin settings for a model with `total` levels.
pub fn langevin_config(s: &SamplerSection, total: usize) -> Result<LangevinConfig> {
    if s.levels == 0 || s.levels > total {
        bail!(
            "--levels must be between 1 and the model's {total} levels, got {}",
            s.levels
        );
    }
    let weight = match s.method.as_str() {
        "qcs-sgm" => LikelihoodWeight::Fixed(s.likelihood_scale),
        "qcs-sgm-plus" => LikelihoodWeight::NormRatio(s.likelihood_scale),
        other => bail!("--method must be qcs-sgm or qcs-sgm-plus, got `{other}`"),
    };
    let config = LangevinConfig {
        steps_per_level: s.steps_per_level,
        epsilon: s.step_lr,
        weight,
        levels: if s.levels == total {
            LevelSubset::All
        } else {
            LevelSubset::Count { count: s.levels }
        },
        step_control: s.step_control,
        final_denoise: s.final_denoise,
        chains: s.chains,
        seed: s.seed,
        first_image: 0,
    };
    config.validate().context("sampler settings")?;
    Ok(config)
}

/// Measurements plus the ground truth when there is one.
struct Inputs {
    set: MeasurementSet,
    truth: Option<Dataset>,
}

fn inputs(
    args: &ReconstructArgs,
    config: &Config,
    net: &NcsnV2Config,
    device: &Device,
) -> Result<Inputs> {
    let spec = image_spec(net);
    let shape = image_shape(net)?;
    if let Some(file) = &args.measurements_file {
        let set = qcs_sensing::file::load(file)
            .with_context(|| format!("--measurements-file {}", file.display()))?;
        if set.info.operator.image != shape {
            bail!(
                "{}: the measurements were made for {} images but the model takes {shape}",
                file.display(),
                set.info.operator.image
            );
        }
        let truth = if args.truth.is_empty() {
            None
        } else {
            let truth = read_images(&args.truth, spec, args.resize).context("--truth")?;
            if truth.len() != set.batch() {
                bail!(
                    "--truth gives {} images but {} holds {}",
                    truth.len(),
                    file.display(),
                    set.batch()
                );
            }
            Some(truth)
        };
        return Ok(Inputs { set, truth });
    }
    let paths = if args.images.is_empty() {
        vec![config.model.default_images()]
    } else {
        args.images.clone()
    };
    let images = read_images(&paths, spec, args.resize).context("--images")?;
    let m = measurement_settings(&args.measurement, args.sampler.seed, config);
    let op_spec = operator_spec(&m, shape)?;
    let q = quantizer(&m, &args.measurement)?;
    let op = build_operator(&op_spec, device)?;
    let x = Tensor::from_data(
        TensorData::new(images.pixels().to_vec(), [images.len(), shape.numel()]),
        device,
    );
    let set = simulate(
        op.as_ref(),
        x,
        q,
        m.noise_std,
        m.seed,
        images.names().to_vec(),
    )
    .context("simulating measurements")?;
    Ok(Inputs {
        set,
        truth: Some(images),
    })
}

/// Rows `start..end` of a measurement set.
pub fn slice_set(set: &MeasurementSet, start: usize, end: usize) -> MeasurementSet {
    let m = set.measurements();
    let mut info = set.info.clone();
    info.names = info.names[start..end].to_vec();
    MeasurementSet {
        info,
        y: set.y[start * m..end * m].to_vec(),
        lower: set.lower[start * m..end * m].to_vec(),
        upper: set.upper[start * m..end * m].to_vec(),
        delta: set.delta[start..end].to_vec(),
    }
}

fn host(t: Tensor<4>) -> Result<Vec<f32>> {
    t.into_data()
        .try_to_vec_as::<f32>()
        .map_err(|e| anyhow::anyhow!("reading results back: {e:?}"))
}

/// Posterior means and spreads of every image, in order.
pub struct Reconstructions {
    /// Posterior means, [B, N] row-major.
    pub mean: Vec<f32>,
    /// Per-pixel standard deviations over chains (with more than one chain).
    pub std: Option<Vec<f32>>,
    /// Network evaluations per image.
    pub nfe: usize,
    /// Wall time of the sampling.
    pub seconds: f64,
    /// The EP settings of a QCS-SGM+ run (`None` for QCS-SGM).
    pub ep: Option<EpConfig>,
}

/// The style of the per-step progress bar of a reconstruction.
pub fn step_bar_style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{spinner} {msg} [{bar:32}] {pos}/{len} steps · {per_sec} · ETA {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
}

/// Reconstructs every image of `set` in batches of `sampler.batch`, with QCS-SGM or QCS-SGM+ as
/// `sampler.method` says (`numerics`: stable, or the reference's formula or EP settings), counting Langevin
/// steps on `bar`. Image `i` of `set` draws its start and noise from the streams of image `first_image + i`
/// (`first_image`: the number of the set's first image in a larger collection, 0 for a whole one).
pub fn reconstruct_all(
    set: &MeasurementSet,
    prior: &Prior,
    sampler: &SamplerSection,
    numerics: Numerics,
    first_image: u64,
    bar: &ProgressBar,
    device: &Device,
) -> Result<Reconstructions> {
    let Prior { model, net } = prior;
    let shape = image_shape(net)?;
    let base = langevin_config(sampler, net.num_levels)?;
    let op = build_operator(&set.info.operator, device)?;
    let ep = (sampler.method == "qcs-sgm-plus").then(|| sampler.ep_config(set.bits(), numerics));
    let likelihood: Box<dyn LikelihoodScore> = match ep {
        Some(config) => Box::new(EpScore { config }),
        None => Box::new(QcsSgmScore { numerics }),
    };
    let batches: Vec<(usize, usize)> = (0..set.batch())
        .step_by(sampler.batch)
        .map(|s| (s, (s + sampler.batch).min(set.batch())))
        .collect();
    let steps = base.nfe(net.num_levels)? - usize::from(base.final_denoise);
    bar.set_length((steps * batches.len()) as u64);
    bar.set_position(0);
    let started = Instant::now();
    let (mut mean, mut std, mut nfe) = (Vec::new(), Vec::new(), 0);
    for (k, &(start, end)) in batches.iter().enumerate() {
        bar.set_message(format!("batch {}/{}", k + 1, batches.len()));
        let sub = slice_set(set, start, end);
        let obs = Observation::from_set(&sub, device);
        let config = LangevinConfig {
            first_image: first_image + start as u64,
            ..base
        };
        let done = (k * steps) as u64;
        let posterior = sample_posterior(
            model,
            Some((likelihood.as_ref(), op.as_ref(), &obs)),
            &config,
            end - start,
            shape,
            &mut |p| bar.set_position(done + p.step as u64),
        )?;
        nfe = posterior.nfe;
        mean.extend(host(posterior.mean)?);
        if let Some(s) = posterior.std {
            std.extend(host(s)?);
        }
    }
    Ok(Reconstructions {
        mean,
        std: (sampler.chains > 1).then_some(std),
        nfe,
        seconds: started.elapsed().as_secs_f64(),
        ep,
    })
}

/// Runs `qcs reconstruct`.
pub fn run(args: &ReconstructArgs) -> Result<()> {
    let config = Config::load(&args.config)?;
    let device = backend::device();
    let (model, net) = load_model(args.model.as_ref(), &config, args.precision, &device)?;
    let prior = Prior { model, net };
    let net = &prior.net;
    let sampler = sampler_settings(args, &config);
    crate::config::check_sampler(&sampler, config.model.num_levels)?;
    langevin_config(&sampler, net.num_levels)?;
    let Inputs { set, truth } = inputs(args, &config, net, &device)?;
    let bar = ProgressBar::new(0).with_style(step_bar_style());
    let result = reconstruct_all(&set, &prior, &sampler, Numerics::Stable, 0, &bar, &device)?;
    bar.finish_and_clear();

    let spec = image_spec(net);
    let names = set.info.names.clone();
    let images = match &truth {
        Some(t) => score_images(t, &result.mean, &names)?,
        None => Vec::new(),
    };
    let report = Report {
        method: sampler.method.clone(),
        backend: backend::BACKEND.to_string(),
        bits: set.bits(),
        measurements: set.measurements(),
        noise_std: set.info.noise_std,
        matrix: matrix_label(&set.info.operator.family),
        likelihood_scale: sampler.likelihood_scale,
        ep: result.ep,
        levels: sampler.levels,
        steps_per_level: sampler.steps_per_level,
        nfe: result.nfe,
        seconds: result.seconds,
        images,
        mean_psnr: None,
        mean_ssim: None,
    }
    .with_means();
    output::write_reconstructions(
        &args.out,
        &names,
        spec,
        truth.as_ref(),
        &result.mean,
        result.std.as_deref(),
        &report,
    )?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        crate::stdout::print(&report.table())?;
        outln!("wrote {}", args.out.display());
    }
    Ok(())
}
