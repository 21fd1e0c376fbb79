//! IDX image and label files, raw or gzip-compressed.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(images) = qcs_data::parse_idx_images(data, Path::new("fuzz-idx3")) {
        let spec = images.spec();
        assert_eq!(images.pixels().len(), images.len() * spec.len());
        assert!(images.pixels().iter().all(|v| (0.0..=1.0).contains(v)));
    }
    let _ = qcs_data::parse_idx_labels(data, Path::new("fuzz-idx1"));
});
