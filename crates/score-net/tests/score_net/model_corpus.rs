//! Replays the checked-in fuzz corpus `fuzz/corpus/model_file`: every input loads as safetensors or burnpack
//! or is refused with an error, never a panic; the seeds (the ngf-8 fixture in both formats) load.

use std::path::Path;

use burn::prelude::*;
use qcs_score_net::{load_burnpack_bytes, load_safetensors_bytes, NcsnV2Config};

fn config() -> NcsnV2Config {
    NcsnV2Config {
        ngf: 8,
        channels: 1,
        image_size: 28,
        num_levels: 10,
        sigma_begin: 50.0,
        sigma_end: 0.01,
    }
}

#[test]
fn model_file_corpus_replays_without_panics() {
    let device = Device::flex();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/model_file");
    let mut loaded = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if load_safetensors_bytes(&config(), bytes.clone(), &path, &device).is_ok() {
            loaded.push(name.clone());
        }
        if load_burnpack_bytes(&config(), bytes, &path, &device).is_ok() {
            loaded.push(name);
        }
    }
    loaded.sort();
    assert_eq!(loaded, ["ngf8.bpk", "ngf8.safetensors"]);
}

#[test]
#[ignore = "writes the burnpack seed of the fuzz corpus"]
fn write_burnpack_seed() {
    let device = Device::flex();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let net = qcs_score_net::load_safetensors(
        &config(),
        root.join("tests/fixtures/ncsnv2_mnist_ngf8_weights.safetensors"),
        &device,
    )
    .unwrap();
    qcs_score_net::save_burnpack(
        &net,
        root.join("fuzz/corpus/model_file/ngf8.bpk"),
        qcs_score_net::Precision::F16,
    )
    .unwrap();
}
