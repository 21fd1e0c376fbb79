//! Noise schedules and annealed Langevin posterior sampling (ALGORITHM.md §2).
//!
//! A [`PriorScore`] (the NCSNv2 network, or an exact [`GaussianPrior`]) and optionally a
//! [`qcs_likelihood::LikelihoodScore`] with its operator and measurements go into [`sample_posterior`], which
//! runs annealed Langevin dynamics as configured by [`LangevinConfig`] and returns a [`Posterior`].

pub mod config;
#[cfg(feature = "cube")]
mod cube;
pub mod error;
pub mod langevin;
mod noise;
mod precondition;
pub mod prior;
pub mod schedule;

pub use config::{LangevinConfig, LevelSubset, LikelihoodWeight, StepControl};
pub use error::{Result, SamplerError};
pub use langevin::{sample_posterior, Conditioning, Posterior, Progress};
pub use prior::{GaussianPrior, PriorScore};
pub use schedule::{NoiseSchedule, ScheduleError};
