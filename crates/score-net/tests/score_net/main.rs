//! The NCSNv2 network: reference parity, training, resume, model files.
//!
//! One test binary per crate: the tests share one process, so a backend compiles (and on wgpu tunes)
//! each kernel once, and the build links one executable instead of one per file.

mod common;
mod deepest;
mod model_corpus;
mod reference_parity;
mod train;
mod train_init;
mod train_resume;
