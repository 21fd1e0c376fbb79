//! Test support shared by the qcs crates' tests and benches (a dev-dependency only).
//!
//! The backends a test runs on are chosen at run time by `QCS_TEST_BACKENDS`, a comma-separated list of
//! `flex`, `ndarray` and `wgpu` (default `flex,ndarray`). `wgpu` needs this crate's `wgpu` feature; CI runs
//! the backend-agnostic tests a second time with `QCS_TEST_BACKENDS=wgpu` on Mesa's software Vulkan.

use std::path::PathBuf;

use burn::prelude::*;

/// The environment variable naming the backends tests run on.
pub const BACKENDS_VAR: &str = "QCS_TEST_BACKENDS";

/// A backend name and its device.
pub type NamedDevice = (&'static str, Device);

/// The device of a backend name, or a message saying why there is none.
#[allow(deprecated)] // burn-ndarray is deprecated upstream; users asked for it, so it stays tested
pub fn named_device(name: &str) -> Result<NamedDevice, String> {
    match name.trim() {
        "flex" => Ok(("flex", Device::flex())),
        "ndarray" => Ok(("ndarray", Device::ndarray())),
        "wgpu" => wgpu_device(),
        other => Err(format!(
            "{BACKENDS_VAR}: unknown backend `{other}` (expected flex, ndarray or wgpu)"
        )),
    }
}

#[cfg(feature = "wgpu")]
fn wgpu_device() -> Result<NamedDevice, String> {
    Ok(("wgpu", Device::wgpu(DeviceKind::DefaultDevice)))
}

#[cfg(not(feature = "wgpu"))]
fn wgpu_device() -> Result<NamedDevice, String> {
    Err(format!(
        "{BACKENDS_VAR} names wgpu, but qcs-testkit was built without its `wgpu` feature \
         (add `--features qcs-testkit/wgpu`)"
    ))
}

/// The backends the tests run on: `QCS_TEST_BACKENDS`, or flex and ndarray.
///
/// # Panics
/// On an unknown or not compiled-in backend name: a test run must not silently test less than asked.
pub fn devices() -> Vec<NamedDevice> {
    let list = std::env::var(BACKENDS_VAR).unwrap_or_else(|_| "flex,ndarray".to_owned());
    let devices: Vec<NamedDevice> = list
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|name| named_device(name).unwrap_or_else(|e| panic!("{e}")))
        .collect();
    assert!(!devices.is_empty(), "{BACKENDS_VAR} names no backend");
    devices
}

/// The first backend of [`devices`]: where single-backend tests run.
pub fn device() -> Device {
    devices().remove(0).1
}

/// The wgpu devices of [`devices`] (none unless `QCS_TEST_BACKENDS` names wgpu): where the tests of the
/// hand-fused GPU kernels run.
pub fn wgpu_devices() -> Vec<Device> {
    devices()
        .into_iter()
        .filter(|(name, _)| *name == "wgpu")
        .map(|(_, device)| device)
        .collect()
}

/// Devices whose tensors the hand-fused GPU kernels must leave to the tensor operations: the CPU
/// (flex), and every device of [`wgpu_devices`] under autodiff.
pub fn non_kernel_devices() -> Vec<Device> {
    std::iter::once(Device::flex())
        .chain(wgpu_devices().into_iter().map(|d| d.autodiff()))
        .collect()
}

/// Whether the tests run on a GPU backend, where long training runs are left to the CPU passes.
pub fn on_gpu_backend() -> bool {
    devices().iter().any(|(name, _)| *name == "wgpu")
}

/// The backends for the Monte-Carlo tests that run a thousand or more sampler steps: [`devices`] without
/// wgpu, whose skipping is said on standard error.
///
/// On wgpu a sampler step is tens of kernel launches, each about 3 ms on lavapipe (CI's software Vulkan), so
/// one such test takes minutes there. The sampler's arithmetic on wgpu is checked instead, against the CPU
/// reference, by the sampler's `backends` tests (same seed, same network, operator and measurements).
pub fn monte_carlo_devices() -> Vec<NamedDevice> {
    let (skipped, kept): (Vec<_>, Vec<_>) =
        devices().into_iter().partition(|(name, _)| *name == "wgpu");
    if !skipped.is_empty() {
        eprintln!(
            "wgpu: skipped (a Monte-Carlo test of a thousand steps; the sampler's backends tests compare wgpu \
             with the CPU on the same seed)"
        );
    }
    kept
}

/// The CPU reference that cross-backend tests compare against.
pub fn reference_device() -> Device {
    Device::flex()
}

/// A tensor's values on the host, as f64.
pub fn host<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data()
        .try_to_vec_as::<f32>()
        .expect("a float tensor")
        .into_iter()
        .map(f64::from)
        .collect()
}

/// A [rows, cols] device tensor from f64 values (rounded to f32).
pub fn tensor2(values: &[f64], shape: [usize; 2], device: &Device) -> Tensor<2> {
    let v: Vec<f32> = values.iter().map(|&x| x as f32).collect();
    Tensor::from_data(TensorData::new(v, shape), device)
}

/// ‖ours − reference‖₂ / ‖reference‖₂.
pub fn rel_l2(ours: &[f64], reference: &[f64]) -> f64 {
    assert_eq!(ours.len(), reference.len(), "rel_l2 of different lengths");
    let diff: f64 = ours
        .iter()
        .zip(reference)
        .map(|(a, b)| (a - b).powi(2))
        .sum();
    let norm: f64 = reference.iter().map(|b| b * b).sum();
    (diff / norm).sqrt()
}

/// The largest |a − b| over two equally long slices.
pub fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len(), "max_abs_diff of different lengths");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// The path of a file in the workspace's `tests/fixtures/`.
pub fn fixture_path(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(file)
}

/// A tensor of a fixture file (f64 or f32) as f64 values and its shape.
///
/// # Panics
/// When the file or the tensor is missing, or its dtype is not a float.
pub fn fixture_tensor(file: &str, name: &str) -> (Vec<f64>, Vec<usize>) {
    let path = fixture_path(file);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let st = safetensors::SafeTensors::deserialize(&bytes)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let view = st
        .tensor(name)
        .unwrap_or_else(|e| panic!("{}: tensor {name}: {e}", path.display()));
    let values = match view.dtype() {
        safetensors::Dtype::F64 => view
            .data()
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect(),
        safetensors::Dtype::F32 => view
            .data()
            .chunks_exact(4)
            .map(|c| f64::from(f32::from_le_bytes(c.try_into().expect("4 bytes"))))
            .collect(),
        other => panic!("{}: tensor {name} has dtype {other:?}", path.display()),
    };
    (values, view.shape().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_backend_is_named() {
        let err = named_device("cuda").unwrap_err();
        assert!(err.contains("`cuda`"), "{err}");
    }

    #[test]
    fn rel_l2_of_known_vectors() {
        assert!((rel_l2(&[3.0, 4.0], &[0.0, 4.0]) - 0.75).abs() < 1e-15);
        assert_eq!(max_abs_diff(&[1.0, -2.0], &[1.5, 2.0]), 4.0);
    }

    #[test]
    fn fixtures_are_found() {
        let (values, shape) = fixture_tensor("likelihood_f64.safetensors", "A");
        assert_eq!(values.len(), shape.iter().product::<usize>());
    }
}
