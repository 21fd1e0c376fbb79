//! Replays the checked-in fuzz corpora (`fuzz/corpus/idx`, `fuzz/corpus/image`): every input parses or is
//! refused with an error, never a panic, and the valid seed files parse to what they hold.

use std::path::{Path, PathBuf};

use qcs_data::{decode_image, parse_idx_images, parse_idx_labels, ImageSpec};

fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} is empty", dir.display());
    files
}

#[test]
fn idx_corpus_replays_without_panics() {
    let mut parsed = 0;
    for path in corpus("idx") {
        let bytes = std::fs::read(&path).expect("readable");
        if let Ok(images) = parse_idx_images(&bytes, &path) {
            assert_eq!(images.pixels().len(), images.len() * images.spec().len());
            parsed += 1;
        }
        if parse_idx_labels(&bytes, &path).is_ok() {
            parsed += 1;
        }
    }
    // The seeds: two image files (raw and gzip) of two 3×4 images, one label file.
    assert!(parsed >= 3, "only {parsed} corpus files parsed");
    let seed = corpus("idx")
        .into_iter()
        .find(|p| p.ends_with("two-3x4-images-idx3-ubyte.gz"))
        .expect("seed present");
    let images = parse_idx_images(&std::fs::read(&seed).unwrap(), &seed).expect("valid seed");
    assert_eq!((images.len(), images.spec()), (2, ImageSpec::new(1, 3, 4)));
    assert_eq!(images.image(1).unwrap()[11], 23.0 / 255.0);
}

#[test]
fn image_corpus_replays_without_panics() {
    let mut decoded = 0;
    for path in corpus("image") {
        let bytes = std::fs::read(&path).expect("readable");
        for spec in [ImageSpec::new(1, 28, 28), ImageSpec::new(3, 32, 32)] {
            if let Ok(pixels) = decode_image(&bytes, &path, spec) {
                assert_eq!(pixels.len(), spec.len());
                assert!(pixels.iter().all(|v| (0.0..=1.0).contains(v)));
                decoded += 1;
            }
        }
    }
    assert!(decoded >= 2 * 7, "only {decoded} decodes succeeded");
}
