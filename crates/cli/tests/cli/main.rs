//! The `qcs` binary end to end: commands, errors, eval, bench and kill/resume.
//!
//! One test binary per crate: the tests share one process, so a backend compiles (and on wgpu tunes)
//! each kernel once, and the build links one executable instead of one per file.

mod bench;
mod cli;
mod common;
mod errors;
mod eval;
mod kill_resume;
mod loss;
