//! Helpers shared by the tests that compare the network with the reference fixtures.

use burn::store::{bridge, ModuleStore, SafetensorsStore};
use burn::tensor::{Device, Int, Tensor, TensorData};
use qcs_score_net::{load_safetensors, NcsnV2Config};

/// Largest accepted `‖ours − reference‖ / ‖reference‖`.
pub const TOLERANCE: f64 = 1e-4;

pub fn fixture(name: &str) -> String {
    format!("{}/../../tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

pub fn read(path: &str, name: &str) -> TensorData {
    let mut store = SafetensorsStore::from_file(path);
    let tensor = store
        .get_tensor(name)
        .expect("readable fixture")
        .unwrap_or_else(|| panic!("`{name}` in {path}"));
    bridge::to_data(tensor).expect("tensor data")
}

pub fn floats(data: TensorData) -> Vec<f64> {
    data.convert::<f64>()
        .try_to_vec::<f64>()
        .expect("float data")
}

pub use qcs_testkit::rel_l2 as relative_error;

/// Loads `<stem>_weights`, runs it on the inputs of `<stem>_io` and returns the relative error
/// against the reference outputs.
pub fn parity(stem: &str, config: NcsnV2Config, device: &Device) -> f64 {
    let weights = fixture(&format!("{stem}_weights.safetensors"));
    let io = fixture(&format!("{stem}_io.safetensors"));
    // As the sampler runs it: convolution weights channels-last on the GPU backends.
    let net = load_safetensors(&config, &weights, device)
        .expect("fixture weights load")
        .with_channels_last_weights();

    let sigmas = floats(net.sigmas().into_data());
    assert_eq!(relative_error(&sigmas, &floats(read(&io, "sigmas"))), 0.0);

    let x = Tensor::<4>::from_data(read(&io, "x"), device);
    let labels = Tensor::<1, Int>::from_data(read(&io, "labels"), device);
    let out = net.forward(x, labels);
    let error = relative_error(&floats(out.into_data()), &floats(read(&io, "out")));
    println!("{stem} on {device:?}: relative L2 error {error:.3e}");
    error
}

pub fn mnist() -> NcsnV2Config {
    NcsnV2Config::new().with_ngf(8).with_num_levels(10)
}

pub fn cifar() -> NcsnV2Config {
    mnist().with_channels(3).with_image_size(32)
}
