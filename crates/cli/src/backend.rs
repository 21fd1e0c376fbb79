//! The compile-time backend choice: exactly one of the features `flex`, `ndarray`, `wgpu` (or
//! `wgpu-untuned`, which `wgpu` turns on: every `cfg(feature = "wgpu-untuned")` here means a wgpu build).

use burn::prelude::*;

#[cfg(not(any(feature = "flex", feature = "ndarray", feature = "wgpu-untuned")))]
compile_error!("qcs-cli needs exactly one backend feature: `flex` (default), `ndarray` or `wgpu`");

#[cfg(any(
    all(feature = "flex", feature = "ndarray"),
    all(feature = "flex", feature = "wgpu-untuned"),
    all(feature = "ndarray", feature = "wgpu-untuned")
))]
compile_error!(
    "qcs-cli takes exactly one backend feature; build with `--no-default-features --features <flex|ndarray|wgpu>`"
);

/// The backend's name, as reports print it.
#[cfg(feature = "flex")]
pub const BACKEND: &str = "flex";
/// The backend's name, as reports print it.
#[cfg(feature = "ndarray")]
pub const BACKEND: &str = "ndarray";
/// The backend's name, as reports print it.
#[cfg(feature = "wgpu")]
pub const BACKEND: &str = "wgpu";
/// The backend's name, as reports print it: wgpu without autotune, so that no figure of this build passes
/// for the tuned one's.
#[cfg(all(feature = "wgpu-untuned", not(feature = "wgpu")))]
pub const BACKEND: &str = "wgpu-untuned";

/// How the score network's convolutions run unless `--conv` says otherwise: `auto`, which on wgpu
/// takes the large ones as matrix products (burn's WGSL convolution is a direct kernel) and on
/// flex the sampler's (its im2col view and matrix product beat flex's convolution; training keeps
/// flex's own, whose backward is faster).
#[cfg(any(feature = "wgpu-untuned", feature = "flex"))]
pub const DEFAULT_CONV: qcs_score_net::ConvAlgorithm = qcs_score_net::ConvAlgorithm::Auto;
/// How the score network's convolutions run unless `--conv` says otherwise: on ndarray the
/// backend's own convolution (the matrix-product form is unmeasured there).
#[cfg(not(any(feature = "wgpu-untuned", feature = "flex")))]
pub const DEFAULT_CONV: qcs_score_net::ConvAlgorithm = qcs_score_net::ConvAlgorithm::Native;

/// The file that keeps autotune results and the device's measured throughput between runs (cubecl's
/// environment store: `target/environment/` inside a cargo workspace, otherwise the user cache directory).
/// `None` on the CPU backends and the untuned wgpu build, which tune nothing.
pub fn tuning_cache() -> Option<std::path::PathBuf> {
    #[cfg(feature = "wgpu")]
    return Some(burn::cubecl::environment::path());
    #[cfg(not(feature = "wgpu"))]
    None
}

/// How many threads the CPU backends compute on (rayon's pool: every core, or `RAYON_NUM_THREADS`);
/// `None` on wgpu, whose host threads only launch kernels.
pub fn cpu_threads() -> Option<usize> {
    #[cfg(feature = "wgpu-untuned")]
    return None;
    #[cfg(not(feature = "wgpu-untuned"))]
    Some(rayon::current_num_threads())
}

/// Runs a command. On the CPU backends it runs on a thread of rayon's pool, the one burn's CPU kernels
/// split their work over: each kernel called from outside the pool would hand its work to the pool and
/// sleep until it is done, a wake-up per kernel that made a batch-1 ngf-16 network evaluation twice as
/// slow on one thread (docs/BENCHMARKS.md, CPU); called from inside, it runs inline and the other threads
/// steal from it. The pool's threads get the main thread's 8 MiB of stack.
pub fn run_command<R: Send>(command: impl FnOnce() -> R + Send) -> R {
    #[cfg(not(feature = "wgpu-untuned"))]
    {
        // An error leaves the pool unbuilt (a thread would not start); the kernels then build rayon's
        // default pool on first use, as they would without this.
        let _ = rayon::ThreadPoolBuilder::new()
            .stack_size(8 << 20)
            .build_global();
        rayon::scope(|_| command())
    }
    #[cfg(feature = "wgpu-untuned")]
    command()
}

/// The device this build computes on.
pub fn device() -> Device {
    #[cfg(feature = "flex")]
    return Device::flex();
    #[cfg(feature = "ndarray")]
    #[allow(deprecated)]
    return Device::ndarray();
    #[cfg(feature = "wgpu-untuned")]
    return Device::default();
}
