//! Noise schedules and annealed Langevin posterior sampling (ALGORITHM.md §2).

pub mod schedule;

pub use schedule::{NoiseSchedule, ScheduleError};
