//! Replays the checked-in fuzz corpus `fuzz/corpus/measurement_file`: every input parses or is refused with
//! an error, never a panic; the valid seeds parse and survive a write/read round trip.

use std::path::{Path, PathBuf};

use qcs_sensing::file::{from_bytes, to_bytes};

#[test]
fn measurement_file_corpus_replays_without_panics() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/measurement_file");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .collect();
    files.sort();
    let mut parsed = 0;
    for path in &files {
        let bytes = std::fs::read(path).expect("readable");
        if let Ok(set) = from_bytes(&bytes, path) {
            assert!(set.y.iter().all(|v| v.is_finite()));
            let again = from_bytes(&to_bytes(&set).expect("serialises"), path).expect("round trip");
            assert_eq!(again, set);
            parsed += 1;
        }
    }
    // The three seeds written by `qcs measure`: 1-bit Gaussian, 3-bit DCT, linear correlated.
    assert!(
        parsed >= 3,
        "only {parsed} of {} corpus files parsed",
        files.len()
    );
}
