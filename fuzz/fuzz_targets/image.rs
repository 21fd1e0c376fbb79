//! PNG/JPEG images fitted to the model layouts (gray 28×28 and RGB 32×32).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use qcs_data::ImageSpec;

fuzz_target!(|data: &[u8]| {
    for spec in [ImageSpec::new(1, 28, 28), ImageSpec::new(3, 32, 32)] {
        if let Ok(pixels) = qcs_data::decode_image(data, Path::new("fuzz.png"), spec) {
            assert_eq!(pixels.len(), spec.len());
            assert!(pixels.iter().all(|v| (0.0..=1.0).contains(v)));
        }
    }
});
