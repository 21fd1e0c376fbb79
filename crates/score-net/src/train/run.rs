//! The training loop.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor};
use qcs_data::Dataset;

use super::batch::{Batch, BatchSampler};
use super::checkpoint::{adam, Checkpoint, TrainState};
use super::clip::clip_grad_norm;
use super::config::TrainConfig;
use super::ema::ema_update;
use super::log::LossLog;
use super::loss::dsm_loss;
use crate::error::ScoreNetError;
use crate::ncsnv2::{NcsnV2, NcsnV2Config};
use crate::weights::{load_safetensors, save_safetensors, stored_shape};
use crate::widen::widen;

/// Name of the EMA weights, with the reference names (see [`save_safetensors`]), rewritten
/// (atomically) with every checkpoint and at the end of a run: while a run goes on, they are
/// the latest checkpoint's, ready to sample or score with.
pub const EMA_WEIGHTS: &str = "ema.safetensors";

/// Where a run stands, reported after every step.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainProgress {
    /// Optimizer steps done.
    pub step: usize,
    /// Optimizer steps of the whole run.
    pub total_steps: usize,
    /// Mean loss of the last logged interval (`log_every` steps; the losses stay on the device
    /// in between), `None` before the first row of this call.
    pub loss: Option<f32>,
    /// Steps per second since this call started.
    pub steps_per_second: f64,
    /// Learning rate of the next step ([`TrainConfig::learning_rate_at`]).
    pub learning_rate: f64,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainOutcome {
    /// Optimizer steps done.
    pub step: usize,
    /// Whether the stop flag ended the run before its last step.
    pub stopped: bool,
    /// The checkpoint written at the end.
    pub checkpoint: Checkpoint,
    /// The EMA weights as reference-named SafeTensors, in the run folder.
    pub ema_weights: PathBuf,
}

/// Trains a network by denoising score matching on `data`, from random weights or from
/// `config.init`'s (which must be made for the run's noise schedule, and for the run's network or a
/// narrower one whose ngf divides the run's: that one is widened without changing its scores,
/// [`crate::widen`], with shares drawn from `config.seed`), in the run folder `run_dir` (created if
/// needed; it must not hold a run already).
///
/// Runs until `config.steps` steps are done or `stop` is set (checked before every step), then
/// writes a checkpoint and [`EMA_WEIGHTS`] (both also every `checkpoint_every` steps on the
/// way). `progress` is called after every step. Training happens on `device` with autodiff
/// enabled; random initial weights are drawn from the device's generator after seeding it with
/// `config.seed`.
pub fn train(
    config: &TrainConfig,
    data: &Dataset,
    run_dir: impl AsRef<Path>,
    device: &Device,
    progress: impl FnMut(&TrainProgress),
    stop: &AtomicBool,
) -> Result<TrainOutcome, ScoreNetError> {
    let run_dir = run_dir.as_ref();
    config.validate()?;
    check_data(config, data)?;
    if Checkpoint::latest(run_dir)?.is_some() {
        return Err(ScoreNetError::RunExists {
            dir: run_dir.to_path_buf(),
        });
    }
    std::fs::create_dir_all(run_dir).map_err(|e| ScoreNetError::Unwritable {
        path: run_dir.to_path_buf(),
        reason: e.to_string(),
    })?;
    let device = device.clone().autodiff();
    device.seed(config.seed);
    let model = match &config.init {
        None => config.model.init(&device)?,
        Some(path) => initial_weights(config, Path::new(path), &device)?,
    };
    let state = TrainState {
        ema: model.valid(),
        model,
        optimizer: adam(config),
        step: 0,
    };
    run(config, data, run_dir, &device, state, progress, stop)
}

/// How far a weight file's σ may stand from the run's schedule, relative to σ: the rounding of a
/// bf16 file (8 significant bits), the coarsest float type a file may hold (f16: 11 bits, as in
/// the reference checkpoint). A schedule with other ends or another number of levels differs by far
/// more somewhere.
pub const SIGMA_TOLERANCE: f64 = 4e-3;

/// The network of `path`, on the training device, after checking that it was made for the
/// run's noise schedule (the loss draws σ from the network's own `sigmas`); its σ are then the
/// schedule's exact ones, whatever the file's float type rounded them to.
fn initial_weights(
    config: &TrainConfig,
    path: &Path,
    device: &Device,
) -> Result<NcsnV2, ScoreNetError> {
    let mut model = match stored_shape(path)?.ngf {
        ngf if ngf != config.model.ngf => {
            let narrow = NcsnV2Config {
                ngf,
                ..config.model.clone()
            };
            let model = load_safetensors(&narrow, path, device)?;
            widen(&model, &narrow, config.model.ngf, config.seed)?
        }
        _ => load_safetensors(&config.model, path, device)?,
    };
    let found = model
        .sigmas()
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|e| ScoreNetError::Unreadable {
            path: path.to_path_buf(),
            reason: format!("reading `sigmas`: {e:?}"),
        })?;
    let expected = config.model.sigma_schedule();
    let mismatch = expected.iter().zip(&found).enumerate().find(|(_, (e, f))| {
        let relative = ((f64::from(**f) - **e) / **e).abs();
        relative.is_nan() || relative > SIGMA_TOLERANCE
    });
    if let Some((level, (&expected, &found))) = mismatch {
        return Err(ScoreNetError::InitScheduleMismatch {
            path: path.to_path_buf(),
            level,
            expected,
            found,
        });
    }
    model.sigmas = config.model.sigmas(device);
    Ok(model)
}

/// Continues the run in `run_dir` from its latest complete checkpoint, with the configuration
/// saved there; `steps` replaces the total number of steps (to extend a finished run). Otherwise
/// as [`train`]: the result is the same as that of an uninterrupted run.
pub fn resume(
    run_dir: impl AsRef<Path>,
    data: &Dataset,
    device: &Device,
    steps: Option<usize>,
    progress: impl FnMut(&TrainProgress),
    stop: &AtomicBool,
) -> Result<TrainOutcome, ScoreNetError> {
    let run_dir = run_dir.as_ref();
    let checkpoint = Checkpoint::latest(run_dir)?.ok_or_else(|| ScoreNetError::NoCheckpoint {
        dir: run_dir.to_path_buf(),
    })?;
    let mut config = checkpoint.config()?;
    if let Some(steps) = steps {
        config.steps = steps;
    }
    config.validate()?;
    check_data(&config, data)?;
    let device = device.clone().autodiff();
    let state = checkpoint.load_state(&config, &device)?;
    run(&config, data, run_dir, &device, state, progress, stop)
}

/// Checks that the images fit the network.
fn check_data(config: &TrainConfig, data: &Dataset) -> Result<(), ScoreNetError> {
    if data.is_empty() {
        return Err(ScoreNetError::EmptyDataset);
    }
    let spec = data.spec();
    let found = [spec.channels, spec.height, spec.width];
    if found != config.image_shape() {
        return Err(ScoreNetError::DatasetMismatch {
            expected: config.image_shape(),
            found,
        });
    }
    Ok(())
}

/// Steps from `state` to the end of the run, logging and checkpointing on the way and at the
/// end.
fn run(
    config: &TrainConfig,
    data: &Dataset,
    run_dir: &Path,
    device: &Device,
    mut state: TrainState,
    mut progress: impl FnMut(&TrainProgress),
    stop: &AtomicBool,
) -> Result<TrainOutcome, ScoreNetError> {
    // Convolution weights channels-last on the GPU backends: no copy of each into that layout in
    // every forward pass (the fused Adam keeps it).
    state.model = state.model.with_channels_last_weights();
    let levels = config.model.num_levels;
    let mut log = LossLog::open(run_dir, levels, config.level_buckets, state.step)?;
    let mut sampler = BatchSampler::new(
        data,
        config.seed,
        config.batch_size,
        levels,
        config.horizontal_flip,
    );
    let (start, started) = (state.step, Instant::now());
    let mut stopped = false;
    let mut saved = None;
    let mut logged_loss = None;
    while state.step < config.steps {
        if stop.load(Ordering::Relaxed) {
            stopped = true;
            break;
        }
        let batch = sampler.draw(state.step as u64);
        let loss;
        (state, loss) = step(config, state, &batch, device);
        log.record(&batch.levels, loss);
        let checkpoint_due = state.step.is_multiple_of(config.checkpoint_every);
        if checkpoint_due || state.step.is_multiple_of(config.log_every) {
            logged_loss = log.flush(state.step)?.or(logged_loss);
        }
        if checkpoint_due {
            saved = Some(save(run_dir, config, &state)?);
        }
        progress(&TrainProgress {
            step: state.step,
            total_steps: config.steps,
            loss: logged_loss,
            steps_per_second: (state.step - start) as f64
                / started.elapsed().as_secs_f64().max(f64::EPSILON),
            learning_rate: config.learning_rate_at(state.step),
        });
    }
    log.flush(state.step)?;
    // A run that ends on a checkpoint step has written both already.
    let (checkpoint, ema_weights) = match saved {
        Some((checkpoint, ema)) if checkpoint.step == state.step => (checkpoint, ema),
        _ => save(run_dir, config, &state)?,
    };
    Ok(TrainOutcome {
        step: state.step,
        stopped,
        checkpoint,
        ema_weights,
    })
}

/// Writes a checkpoint of `state` and its EMA weights ([`write_ema_weights`]).
fn save(
    run_dir: &Path,
    config: &TrainConfig,
    state: &TrainState,
) -> Result<(Checkpoint, PathBuf), ScoreNetError> {
    let checkpoint = Checkpoint::write(run_dir, config, state)?;
    let ema_weights = write_ema_weights(run_dir, &state.ema)?;
    Ok((checkpoint, ema_weights))
}

/// Writes `ema` as [`EMA_WEIGHTS`] in `run_dir` through a partial file and a rename, so the file
/// is always whole; returns its path.
fn write_ema_weights(run_dir: &Path, ema: &NcsnV2) -> Result<PathBuf, ScoreNetError> {
    let path = run_dir.join(EMA_WEIGHTS);
    let partial = run_dir.join(format!(".{EMA_WEIGHTS}.partial"));
    save_safetensors(ema, &partial)?;
    std::fs::rename(&partial, &path).map_err(|e| ScoreNetError::Unwritable {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    Ok(path)
}

/// One optimizer step on `batch`: loss, gradients (clipped if configured), Adam, EMA. Returns
/// the new state and the loss of each image, `[B]`, left on the device (no autodiff).
fn step(
    config: &TrainConfig,
    state: TrainState,
    batch: &Batch,
    device: &Device,
) -> (TrainState, Tensor<1>) {
    let TrainState {
        model,
        ema,
        mut optimizer,
        step,
    } = state;
    let (images, levels, noise) = batch.to_device(device);
    let loss = dsm_loss(&model, images, levels, noise);
    let per_image = loss.per_image.clone().inner();
    let mut grads = GradientsParams::from_grads(loss.mean.backward(), &model);
    if let Some(max_norm) = config.grad_clip {
        grads = clip_grad_norm(&model, grads, max_norm).0;
    }
    let model = optimizer.step(config.learning_rate_at(step), model, grads);
    let ema = ema_update(ema, &model, config.ema_rate);
    let state = TrainState {
        model,
        ema,
        optimizer,
        step: step + 1,
    };
    (state, per_image)
}
