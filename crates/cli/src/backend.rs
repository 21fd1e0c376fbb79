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

/// How the score network's convolutions run unless `--conv` says otherwise: on wgpu the large
/// ones as matrix products (burn's WGSL convolution is a direct kernel), on the CPU backends the
/// backend's own convolution, which is a GEMM already.
#[cfg(feature = "wgpu-untuned")]
pub const DEFAULT_CONV: qcs_score_net::ConvAlgorithm = qcs_score_net::ConvAlgorithm::Auto;
/// How the score network's convolutions run unless `--conv` says otherwise: on wgpu the large
/// ones as matrix products (burn's WGSL convolution is a direct kernel), on the CPU backends the
/// backend's own convolution, which is a GEMM already.
#[cfg(not(feature = "wgpu-untuned"))]
pub const DEFAULT_CONV: qcs_score_net::ConvAlgorithm = qcs_score_net::ConvAlgorithm::Native;

/// The file that keeps autotune results and the device's measured throughput between runs (cubecl's
/// environment store: `target/environment/` inside a cargo workspace, otherwise the user cache directory).
/// `None` on the CPU backends, which tune nothing.
pub fn tuning_cache() -> Option<std::path::PathBuf> {
    #[cfg(feature = "wgpu-untuned")]
    return Some(burn::cubecl::environment::path());
    #[cfg(not(feature = "wgpu-untuned"))]
    None
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
