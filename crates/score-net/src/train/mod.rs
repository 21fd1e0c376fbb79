//! Training of [`NcsnV2`](crate::NcsnV2) by denoising score matching (ALGORITHM.md §5).
//!
//! An explicit loop: every random draw (batch order, flips, levels, noise) comes from the run's
//! seed on the CPU, so a resumed run repeats an uninterrupted one exactly; the loss is
//! [`dsm_loss`]; Adam updates the weights, optionally after [`clip_grad_norm`]; [`ema_update`]
//! keeps the moving average used for sampling. The run folder holds the checkpoints ([`Checkpoint`]), the per-level loss log ([`LOSS_LOG`]) and the EMA
//! weights of the latest checkpoint ([`EMA_WEIGHTS`]).
//!
//! ```no_run
//! use std::sync::atomic::AtomicBool;
//! use burn::tensor::Device;
//! use qcs_score_net::NcsnV2Config;
//! use qcs_score_net::train::{train, TrainConfig};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let data = qcs_data::read_idx_images("data/mnist/train-images-idx3-ubyte.gz")?;
//! let config = TrainConfig::new(NcsnV2Config::new().with_ngf(64), 100_000);
//! let stop = AtomicBool::new(false); // set by a Ctrl-C handler
//! let outcome = train(&config, &data, "runs/mnist", &Device::default(), |p| {
//!     eprint!("\rstep {}/{} loss {:?}", p.step, p.total_steps, p.loss);
//! }, &stop)?;
//! println!("\nEMA weights in {}", outcome.ema_weights.display());
//! # Ok(())
//! # }
//! ```

mod adam;
mod batch;
mod checkpoint;
mod clip;
mod config;
#[cfg(feature = "cube")]
mod cube;
mod ema;
mod held_out;
mod log;
mod loss;
mod run;

pub use checkpoint::{Checkpoint, CHECKPOINTS_DIR};
pub use clip::clip_grad_norm;
pub use config::TrainConfig;
pub use ema::ema_update;
pub use held_out::{held_out_loss, HeldOutConfig, HeldOutLoss};
pub use log::LOSS_LOG;
pub use loss::{dsm_loss, DsmLoss};
pub use run::{resume, train, TrainOutcome, TrainProgress, EMA_WEIGHTS, SIGMA_TOLERANCE};
