//! BIHT, IHT and back-projection: their parts and whole reconstructions.
//!
//! One test binary per crate: the tests share one process, so a backend compiles (and on wgpu tunes)
//! each kernel once, and the build links one executable instead of one per file.

mod common;
mod parts;
mod reconstruction;
