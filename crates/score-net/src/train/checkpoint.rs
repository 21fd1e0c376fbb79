//! Checkpoints of a training run.
//!
//! A run folder holds `checkpoints/step-<step>/` with
//! * `model.bpk`: the trained parameters (burnpack, with their parameter ids),
//! * `ema.bpk`: their exponential moving average,
//! * `optimizer.bpk`: Adam's state,
//! * `config.json`: the full [`TrainConfig`],
//! * `state.json`: the step. The random state needs nothing more: every draw is a function of
//!   the seed (in the config) and the step.
//!
//! A checkpoint is written into a `.partial-…` folder and renamed into place when complete; only
//! then are older checkpoints deleted, so the folder always holds a complete one. Its files get
//! permissions 0644.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::store::ModuleRecord;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::adam::{AdamConstants, FusedAdam};
use super::config::TrainConfig;
use crate::error::ScoreNetError;
use crate::ncsnv2::NcsnV2;
use crate::permissions::make_readable;

/// Folder of the checkpoints in a run folder.
pub const CHECKPOINTS_DIR: &str = "checkpoints";
/// Version of the checkpoint layout, in `state.json`.
const FORMAT: u32 = 1;
const PREFIX: &str = "step-";
const PARTIAL_PREFIX: &str = ".partial-";
const MODEL_FILE: &str = "model.bpk";
const EMA_FILE: &str = "ema.bpk";
const OPTIMIZER_FILE: &str = "optimizer.bpk";
const CONFIG_FILE: &str = "config.json";
const STATE_FILE: &str = "state.json";

/// `state.json`.
#[derive(Debug, Serialize, Deserialize)]
struct StepState {
    format: u32,
    step: usize,
}

/// A complete checkpoint in a run folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The checkpoint's folder.
    pub dir: PathBuf,
    /// Optimizer steps done when it was written.
    pub step: usize,
}

/// What a checkpoint restores.
pub(crate) struct TrainState {
    /// The trained network, on the training (autodiff) device.
    pub model: NcsnV2,
    /// Its moving average, on the device without autodiff.
    pub ema: NcsnV2,
    /// Adam and its state.
    pub optimizer: ModuleOptimizer,
    /// Optimizer steps done.
    pub step: usize,
}

impl Checkpoint {
    /// The latest complete checkpoint of the run in `run_dir`, if any.
    pub fn latest(run_dir: impl AsRef<Path>) -> Result<Option<Self>, ScoreNetError> {
        let dir = run_dir.as_ref().join(CHECKPOINTS_DIR);
        Ok(complete_checkpoints(&dir)?
            .into_iter()
            .max_by_key(|c| c.step))
    }

    /// The configuration of the run.
    pub fn config(&self) -> Result<TrainConfig, ScoreNetError> {
        read_json(&self.dir.join(CONFIG_FILE))
    }

    /// The EMA network (the weights for sampling) on `device`.
    pub fn load_ema(&self, device: &Device) -> Result<NcsnV2, ScoreNetError> {
        let config = self.config()?;
        load_module(&config, &self.dir.join(EMA_FILE), &device.clone().inner())
    }

    /// Everything needed to continue training on `device` (an autodiff device).
    pub(crate) fn load_state(
        &self,
        config: &TrainConfig,
        device: &Device,
    ) -> Result<TrainState, ScoreNetError> {
        let state: StepState = read_json(&self.dir.join(STATE_FILE))?;
        if state.format != FORMAT || state.step != self.step {
            return Err(corrupt(
                &self.dir.join(STATE_FILE),
                format!(
                    "format {} step {}, expected format {FORMAT} step {}",
                    state.format, state.step, self.step
                ),
            ));
        }
        let optimizer_path = self.dir.join(OPTIMIZER_FILE);
        let optimizer = adam(config)
            .load(&optimizer_path)
            .map_err(|e| corrupt(&optimizer_path, e))?;
        Ok(TrainState {
            model: load_module(config, &self.dir.join(MODEL_FILE), device)?,
            ema: load_module(config, &self.dir.join(EMA_FILE), &device.clone().inner())?,
            optimizer,
            step: state.step,
        })
    }

    /// Writes the checkpoint of `state` into `run_dir`, then deletes the older ones. A checkpoint
    /// of the same step already there is kept as it is.
    pub(crate) fn write(
        run_dir: &Path,
        config: &TrainConfig,
        state: &TrainState,
    ) -> Result<Self, ScoreNetError> {
        let root = run_dir.join(CHECKPOINTS_DIR);
        let name = format!("{PREFIX}{:08}", state.step);
        let checkpoint = Self {
            dir: root.join(&name),
            step: state.step,
        };
        if !checkpoint.dir.is_dir() {
            let partial = root.join(format!("{PARTIAL_PREFIX}{name}"));
            write_files(&partial, config, state)?;
            std::fs::rename(&partial, &checkpoint.dir)
                .map_err(|e| unwritable(&checkpoint.dir, e))?;
        }
        remove_all_but(&root, &checkpoint.dir);
        Ok(checkpoint)
    }
}

/// Adam as `config` sets it: [`FusedAdam`], one kernel per parameter on the GPU backends.
pub(crate) fn adam(config: &TrainConfig) -> ModuleOptimizer {
    ModuleOptimizer::from(FusedAdam::new(AdamConstants {
        beta_1: config.beta1,
        beta_2: config.beta2,
        epsilon: config.epsilon,
    }))
}

fn write_files(dir: &Path, config: &TrainConfig, state: &TrainState) -> Result<(), ScoreNetError> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| unwritable(dir, e))?;
    }
    std::fs::create_dir_all(dir).map_err(|e| unwritable(dir, e))?;
    let save = |module: &NcsnV2, file: &str| {
        let path = dir.join(file);
        module
            .clone()
            .into_record()
            .save(&path)
            .map_err(|e| unwritable(&path, e))?;
        make_readable(&path)
    };
    save(&state.model, MODEL_FILE)?;
    save(&state.ema, EMA_FILE)?;
    let optimizer_path = dir.join(OPTIMIZER_FILE);
    state
        .optimizer
        .save(&optimizer_path)
        .map_err(|e| unwritable(&optimizer_path, e))?;
    make_readable(&optimizer_path)?;
    write_json(&dir.join(CONFIG_FILE), config)?;
    let step = StepState {
        format: FORMAT,
        step: state.step,
    };
    write_json(&dir.join(STATE_FILE), &step)
}

/// The complete checkpoints in `dir` (none if it does not exist).
fn complete_checkpoints(dir: &Path) -> Result<Vec<Checkpoint>, ScoreNetError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(corrupt(dir, e)),
    };
    let mut found = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| corrupt(dir, e))?.path();
        let step = path
            .file_name()
            .and_then(|name| name.to_str())
            .and_then(|name| name.strip_prefix(PREFIX))
            .and_then(|step| step.parse::<usize>().ok());
        if let (Some(step), true) = (step, path.is_dir()) {
            found.push(Checkpoint { dir: path, step });
        }
    }
    Ok(found)
}

/// Deletes every checkpoint and partial checkpoint in `root` except `keep`. Best effort: a
/// folder that cannot be deleted only costs disk space.
fn remove_all_but(root: &Path, keep: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for path in entries.flatten().map(|entry| entry.path()) {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let ours = name.starts_with(PREFIX) || name.starts_with(PARTIAL_PREFIX);
        if ours && path != keep && path.is_dir() {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

/// Builds the network of `config` on `device` and fills it from a record file, keeping the
/// recorded parameter ids (which the optimizer state refers to).
fn load_module(
    config: &TrainConfig,
    path: &Path,
    device: &Device,
) -> Result<NcsnV2, ScoreNetError> {
    let record = ModuleRecord::load(path).map_err(|e| corrupt(path, e))?;
    config
        .model
        .init(device)?
        .try_load_record(record)
        .map_err(|e| corrupt(path, e))
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, ScoreNetError> {
    let text = std::fs::read_to_string(path).map_err(|e| corrupt(path, e))?;
    serde_json::from_str(&text).map_err(|e| corrupt(path, e))
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), ScoreNetError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| unwritable(path, e))?;
    std::fs::write(path, text).map_err(|e| unwritable(path, e))?;
    make_readable(path)
}

fn corrupt(path: &Path, reason: impl ToString) -> ScoreNetError {
    ScoreNetError::CorruptCheckpoint {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

fn unwritable(path: &Path, reason: impl ToString) -> ScoreNetError {
    ScoreNetError::Unwritable {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}
