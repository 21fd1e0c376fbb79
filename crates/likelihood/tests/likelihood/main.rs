//! Likelihood scores: golden vectors, finite differences, stability, EP agreement.
//!
//! One test binary per crate: the tests share one process, so a backend compiles (and on wgpu tunes)
//! each kernel once, and the build links one executable instead of one per file.

mod common;
mod ep_agreement;
mod finite_differences;
mod golden;
mod stability;
