//! Errors of the score-network crate.

use std::path::PathBuf;

/// Everything that can go wrong while building, loading, saving or training an NCSNv2 network.
#[derive(Debug, thiserror::Error)]
pub enum ScoreNetError {
    /// The device has no arithmetic in the float type asked for.
    #[error("the device {device} cannot compute in {precision} (give f32)")]
    UnsupportedPrecision {
        /// The device, as burn names it.
        device: String,
        /// The float type asked for.
        precision: String,
    },

    /// The configuration describes a network that cannot be built.
    #[error("invalid NCSNv2 configuration: {0}")]
    InvalidConfig(String),

    /// The weight file cannot be opened, or it is truncated or corrupt.
    #[error("cannot read weights from `{path}`: {reason}")]
    Unreadable {
        /// The file that was read.
        path: PathBuf,
        /// What the reader reported.
        reason: String,
    },

    /// The weight file cannot be written.
    #[error("cannot write weights to `{path}`: {reason}")]
    Unwritable {
        /// The file that was written.
        path: PathBuf,
        /// What the writer reported.
        reason: String,
    },

    /// A parameter of the network has no tensor in the file.
    #[error("tensor `{name}` is missing from `{path}`")]
    MissingTensor {
        /// Reference (PyTorch state-dict) name of the parameter.
        name: String,
        /// The file that was read.
        path: PathBuf,
    },

    /// The file holds a tensor that is not a parameter of the network.
    #[error("tensor `{name}` in `{path}` is not a parameter of the network")]
    UnexpectedTensor {
        /// Name of the tensor in the file.
        name: String,
        /// The file that was read.
        path: PathBuf,
    },

    /// A tensor in the file does not have the shape of the parameter it should fill.
    #[error("tensor `{name}` has shape {found:?}, expected {expected:?}")]
    WrongShape {
        /// Reference (PyTorch state-dict) name of the parameter.
        name: String,
        /// Shape of the network's parameter.
        expected: Vec<usize>,
        /// Shape of the tensor in the file.
        found: Vec<usize>,
    },

    /// A tensor in the file has a dtype that cannot fill a float parameter.
    #[error("tensor `{name}` has dtype {found}, expected a float dtype")]
    WrongDtype {
        /// Reference (PyTorch state-dict) name of the parameter.
        name: String,
        /// The dtype found in the file.
        found: String,
    },

    /// The training configuration describes a run that cannot work.
    #[error("invalid training configuration: {0}")]
    InvalidTrainConfig(String),

    /// The training images do not have the layout the network is made for.
    #[error("the training images are {found:?} (C, H, W), the network is made for {expected:?}")]
    DatasetMismatch {
        /// `[C, H, W]` of the network's configuration.
        expected: [usize; 3],
        /// `[C, H, W]` of the dataset.
        found: [usize; 3],
    },

    /// Weights to start a run from were made for another noise schedule.
    #[error(
        "`{path}` was trained for another noise schedule: its level {level} is σ = {found}, \
         the run's is σ = {expected}"
    )]
    InitScheduleMismatch {
        /// The weights file.
        path: PathBuf,
        /// The first level (0-based) that differs.
        level: usize,
        /// σ of that level in the run's configuration.
        expected: f64,
        /// σ of that level in the file.
        found: f32,
    },

    /// A network cannot be widened to a width that is not a multiple of its own.
    #[error("a network of ngf {from} cannot be widened to ngf {to}: the new ngf must be a multiple of the old")]
    CannotWiden {
        /// The network's ngf.
        from: usize,
        /// The requested ngf.
        to: usize,
    },

    /// The training dataset holds no image.
    #[error("the training dataset is empty")]
    EmptyDataset,

    /// A fresh training run was pointed at a folder that already holds one.
    #[error("`{dir}` already holds a training run: resume it or choose another folder")]
    RunExists {
        /// The run folder.
        dir: PathBuf,
    },

    /// A run folder to resume holds no complete checkpoint.
    #[error("no complete checkpoint in `{dir}`")]
    NoCheckpoint {
        /// The run folder.
        dir: PathBuf,
    },

    /// A checkpoint file is missing, truncated, corrupt or does not fit the run.
    #[error("corrupt checkpoint file `{path}`: {reason}")]
    CorruptCheckpoint {
        /// The file that was read.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// The device could not hand back the training losses.
    #[error("reading the training losses back from the device: {0}")]
    LossReadBack(String),
}
