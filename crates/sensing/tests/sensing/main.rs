//! Operators, quantizers and measurement files.
//!
//! One test binary per crate: the tests share one process, so a backend compiles (and on wgpu tunes)
//! each kernel once, and the build links one executable instead of one per file.

mod common;
mod files;
mod fuzz_corpus;
mod operators;
mod quantizer;
