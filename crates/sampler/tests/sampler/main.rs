//! Annealed Langevin sampling: closed-form posteriors, backends, runs and the stress grid.
//!
//! One test binary per crate: the tests share one process, so a backend compiles (and on wgpu tunes)
//! each kernel once, and the build links one executable instead of one per file.

mod backends;
mod common;
mod gaussian_posterior;
mod one_bit_posterior;
mod runs;
mod stress;
