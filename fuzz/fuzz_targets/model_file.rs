//! Model files: safetensors (reference state-dict names) and burnpack, loaded into the ngf-8 28×28 network of
//! the fixtures on the CPU; an accepted file gives a network whose output is finite-shaped.
#![no_main]

use std::path::Path;

use burn::prelude::*;
use libfuzzer_sys::fuzz_target;
use qcs_score_net::{load_burnpack_bytes, load_safetensors_bytes, NcsnV2Config};

fuzz_target!(|data: &[u8]| {
    let device = Device::flex();
    let config = NcsnV2Config {
        ngf: 8,
        channels: 1,
        image_size: 28,
        num_levels: 10,
        sigma_begin: 50.0,
        sigma_end: 0.01,
    };
    for loaded in [
        load_safetensors_bytes(&config, data.to_vec(), Path::new("fuzz.safetensors"), &device),
        load_burnpack_bytes(&config, data.to_vec(), Path::new("fuzz.bpk"), &device),
    ] {
        if let Ok(net) = loaded {
            let x = Tensor::<4>::zeros([1, 1, 28, 28], &device);
            let levels = Tensor::<1, Int>::zeros([1], &device);
            assert_eq!(net.forward(x, levels).dims(), [1, 1, 28, 28]);
        }
    }
});
