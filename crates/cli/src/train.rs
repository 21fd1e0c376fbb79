//! `qcs train`: denoising-score-matching training with a progress bar, checkpoints, Ctrl-C and `--resume`.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use qcs_data::{Dataset, ImageSpec};
use qcs_score_net::train::{resume, train, TrainConfig, TrainProgress};
use qcs_score_net::NcsnV2Config;

use crate::args::TrainArgs;
use crate::backend;
use crate::config::Config;
use crate::stdout::outln;

/// Steps between progress lines when standard error is not a terminal.
const PLAIN_PROGRESS_EVERY: usize = 100;

/// Training images: an IDX file (raw or gzip) or a folder of PNG/JPEG images fitted to the model.
fn read_data(path: &Path, spec: ImageSpec) -> Result<Dataset> {
    if path.is_dir() {
        let loaded = qcs_data::read_images(path, spec)
            .with_context(|| format!("--data {}", path.display()))?;
        return Ok(loaded.dataset);
    }
    let data =
        qcs_data::read_idx_images(path).with_context(|| format!("--data {}", path.display()))?;
    if data.spec() != spec {
        bail!(
            "--data {}: the images are {}×{}×{} but the model takes {}×{}×{}",
            path.display(),
            data.spec().channels,
            data.spec().height,
            data.spec().width,
            spec.channels,
            spec.height,
            spec.width
        );
    }
    Ok(data)
}

fn train_config(args: &TrainArgs, config: &Config) -> Result<TrainConfig> {
    let Some(t) = &config.training else {
        bail!("{} has no [training] section", args.config.display());
    };
    let m = &config.model;
    let model = NcsnV2Config {
        ngf: args.ngf.unwrap_or(m.ngf),
        channels: m.channels,
        image_size: m.image_size,
        num_levels: m.num_levels,
        sigma_begin: m.sigma_begin,
        sigma_end: m.sigma_end,
    };
    Ok(TrainConfig::new(model, args.steps.unwrap_or(t.steps))
        .with_batch_size(args.batch.unwrap_or(t.batch_size))
        .with_learning_rate(t.learning_rate)
        .with_warmup_steps(t.warmup_steps)
        .with_learning_rate_end(t.learning_rate_end)
        .with_ema_rate(t.ema_rate)
        .with_horizontal_flip(t.horizontal_flip)
        .with_checkpoint_every(t.checkpoint_every)
        .with_seed(args.seed.unwrap_or(t.seed))
        .with_init(
            args.init
                .as_ref()
                .map(|path| path.to_string_lossy().into_owned()),
        ))
}

/// Runs `qcs train`.
pub fn run(args: &TrainArgs) -> Result<()> {
    let config = Config::load(&args.config)?;
    let train_config = train_config(args, &config)?;
    let m = &train_config.model;
    let data = read_data(
        &args.data,
        ImageSpec::new(m.channels, m.image_size, m.image_size),
    )?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))
        .context("installing the Ctrl-C handler")?;
    let bar = ProgressBar::new(train_config.steps as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} training [{bar:32}] {pos}/{len} · {msg} · ETA {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    // Without a terminal (a run under nohup, its standard error in a log) the bar draws nothing:
    // a line every PLAIN_PROGRESS_EVERY steps says the same.
    let plain = !std::io::stderr().is_terminal();
    let progress = |p: &TrainProgress| {
        let loss = p.loss.map_or_else(|| "…".to_owned(), |l| format!("{l:.2}"));
        let message = format!(
            "loss {loss} · lr {:.2e} · {:.2} steps/s",
            p.learning_rate, p.steps_per_second
        );
        if plain {
            if p.step.is_multiple_of(PLAIN_PROGRESS_EVERY) {
                eprintln!("step {}/{} · {message}", p.step, p.total_steps);
            }
            return;
        }
        bar.set_length(p.total_steps as u64);
        bar.set_position(p.step as u64);
        bar.set_message(message);
    };
    let device = backend::device();
    eprintln!(
        "training on {} images of {}×{}×{} with {}",
        data.len(),
        m.channels,
        m.image_size,
        m.image_size,
        backend::BACKEND
    );
    if let Some(init) = &args.init {
        eprintln!("starting from the weights in {}", init.display());
        match qcs_score_net::stored_shape(init) {
            Ok(stored) if stored.ngf != m.ngf => eprintln!(
                "widening them from ngf {} to ngf {} (the same scores; the copies of each \
                 channel share its input weights unequally, drawn from the seed)",
                stored.ngf, m.ngf
            ),
            _ => {}
        }
    }
    let outcome = if args.resume {
        resume(&args.out, &data, &device, args.steps, progress, &stop)
    } else {
        train(&train_config, &data, &args.out, &device, progress, &stop)
    }
    .with_context(|| format!("training in {}", args.out.display()))?;
    bar.finish_and_clear();
    outln!(
        "{} at step {}: checkpoint {}, EMA weights {}",
        if outcome.stopped {
            "stopped"
        } else {
            "finished"
        },
        outcome.step,
        outcome.checkpoint.dir.display(),
        outcome.ema_weights.display()
    );
    Ok(())
}
