//! Measurement files (safetensors + JSON metadata): parse, then check what a successful parse promises.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(set) = qcs_sensing::file::from_bytes(data, Path::new("fuzz.qcsm")) {
        let (b, m) = (set.batch(), set.measurements());
        assert_eq!(set.y.len(), b * m);
        assert_eq!(set.lower.len(), b * m);
        assert_eq!(set.upper.len(), b * m);
        assert_eq!(set.delta.len(), b);
        assert!(set.y.iter().all(|v| v.is_finite()), "accepted a non-finite y");
        // Writing it back and reading it again gives the same set.
        let bytes = qcs_sensing::file::to_bytes(&set).expect("an accepted set serialises");
        let again = qcs_sensing::file::from_bytes(&bytes, Path::new("again")).expect("round trip");
        assert_eq!(again.y, set.y);
        assert_eq!(again.info, set.info);
    }
});
