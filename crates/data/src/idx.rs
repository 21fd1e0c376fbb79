//! IDX files, the format of MNIST and Fashion-MNIST: a big-endian header (magic number
//! `0x0000_08dd` for unsigned bytes in `dd` dimensions, then one `u32` per dimension) followed by
//! the data, raw or gzip-compressed. Compression is detected from the gzip magic bytes
//! `1f 8b`, not from the file name.

use std::io::{Read, Write};
use std::path::Path;

use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;

use crate::atomic::write_atomically;
use crate::dataset::{Dataset, ImageSpec};
use crate::error::{DataError, Result};

/// Magic number of an IDX file of unsigned-byte images `[n, rows, cols]`.
pub const IDX_IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file of unsigned-byte labels `[n]`.
pub const IDX_LABELS_MAGIC: u32 = 0x0000_0801;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Reads an IDX image file (raw or gzip) into a one-channel dataset with values `v/255`, named by
/// index (`"0"`, `"1"`, …).
pub fn read_idx_images(path: impl AsRef<Path>) -> Result<Dataset> {
    let path = path.as_ref();
    parse_idx_images(&read_file(path)?, path)
}

/// Parses the bytes of an IDX image file (raw or gzip); `origin` names the file in errors.
pub fn parse_idx_images(bytes: &[u8], origin: &Path) -> Result<Dataset> {
    let (dims, data) = parse_idx(bytes, origin, IDX_IMAGES_MAGIC)?;
    let [count, height, width] = [dims[0], dims[1], dims[2]];
    // With an empty image size the data says nothing about the count, which could then be 2³² − 1.
    if height == 0 || width == 0 {
        return Err(DataError::InvalidSpec(format!(
            "{}: the IDX header gives images of {height}×{width} pixels",
            origin.display()
        )));
    }
    let spec = ImageSpec::new(1, height, width);
    let pixels = data.iter().map(|&v| f32::from(v) / 255.0).collect();
    let names = (0..count).map(|i| i.to_string()).collect();
    Dataset::new(spec, pixels, names)
}

/// Reads an IDX label file (raw or gzip).
pub fn read_idx_labels(path: impl AsRef<Path>) -> Result<Vec<u8>> {
    let path = path.as_ref();
    parse_idx_labels(&read_file(path)?, path)
}

/// Parses the bytes of an IDX label file (raw or gzip); `origin` names the file in errors.
pub fn parse_idx_labels(bytes: &[u8], origin: &Path) -> Result<Vec<u8>> {
    Ok(parse_idx(bytes, origin, IDX_LABELS_MAGIC)?.1)
}

/// Writes a one-channel dataset as an IDX image file with bytes `round(255·v)` (values clamped to
/// `[0, 1]`), gzip-compressed when the file name ends in `.gz`. Written atomically.
pub fn write_idx_images(path: impl AsRef<Path>, data: &Dataset) -> Result<()> {
    let spec = data.spec();
    if spec.channels != 1 {
        return Err(DataError::InvalidSpec(format!(
            "IDX image files hold one channel, the dataset has {}",
            spec.channels
        )));
    }
    let dims = [data.len(), spec.height, spec.width];
    let bytes: Vec<u8> = data.pixels().iter().map(|&v| to_byte(v)).collect();
    write_idx(path.as_ref(), IDX_IMAGES_MAGIC, &dims, &bytes)
}

/// Writes labels as an IDX label file, gzip-compressed when the file name ends in `.gz`. Written
/// atomically.
pub fn write_idx_labels(path: impl AsRef<Path>, labels: &[u8]) -> Result<()> {
    write_idx(path.as_ref(), IDX_LABELS_MAGIC, &[labels.len()], labels)
}

/// `round(255·v)` for `v` clamped to `[0, 1]`.
pub(crate) fn to_byte(v: f32) -> u8 {
    (v.clamp(0.0, 1.0) * 255.0).round() as u8
}

fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| DataError::Unreadable {
        path: path.to_path_buf(),
        source,
    })
}

/// Parses an IDX file with the given magic number, raw or gzip-compressed (detected from the gzip
/// magic bytes): its dimensions and its data bytes. A compressed stream is decompressed only as
/// far as the header announces (plus one byte to detect trailing data), so a small file that
/// inflates without end cannot exhaust the memory.
fn parse_idx(raw: &[u8], path: &Path, magic: u32) -> Result<(Vec<usize>, Vec<u8>)> {
    let ndims = (magic & 0xff) as usize;
    let header_len = 4 * (1 + ndims);
    let unreadable = |source| DataError::Unreadable {
        path: path.to_path_buf(),
        source,
    };
    let mut reader: Box<dyn Read + '_> = if raw.starts_with(&GZIP_MAGIC) {
        Box::new(GzDecoder::new(raw))
    } else {
        Box::new(raw)
    };
    let mut header = Vec::with_capacity(header_len);
    (&mut reader)
        .take(header_len as u64)
        .read_to_end(&mut header)
        .map_err(unreadable)?;
    let word = |i: usize| {
        header
            .get(4 * i..4 * i + 4)
            .map(|w| u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
    };
    let short_header = || DataError::Truncated {
        path: path.to_path_buf(),
        expected: header_len as u64,
        found: header.len() as u64,
    };
    let found = word(0).ok_or_else(short_header)?;
    if found != magic {
        return Err(DataError::WrongMagic {
            path: path.to_path_buf(),
            found,
            expected: magic,
        });
    }
    let dims: Vec<u64> = (1..=ndims)
        .map(|i| word(i).map(u64::from))
        .collect::<Option<_>>()
        .ok_or_else(short_header)?;
    let overflow = || DataError::DimensionOverflow {
        path: path.to_path_buf(),
        dims: dims.clone(),
    };
    let expected = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
        .ok_or_else(overflow)?;
    let expected_len = usize::try_from(expected).map_err(|_| overflow())?;
    let mut data = Vec::new();
    reader
        .take(expected.saturating_add(1))
        .read_to_end(&mut data)
        .map_err(unreadable)?;
    if data.len() != expected_len {
        return Err(DataError::Truncated {
            path: path.to_path_buf(),
            expected,
            found: data.len() as u64,
        });
    }
    let dims = dims.iter().map(|&d| d as usize).collect();
    Ok((dims, data))
}

/// Writes an IDX file: header, then `data`, gzip-compressed for a `.gz` file name.
fn write_idx(path: &Path, magic: u32, dims: &[usize], data: &[u8]) -> Result<()> {
    let mut bytes = Vec::with_capacity(4 * (1 + dims.len()) + data.len());
    bytes.extend_from_slice(&magic.to_be_bytes());
    for &dim in dims {
        let dim = u32::try_from(dim).map_err(|_| {
            DataError::InvalidSpec(format!("dimension {dim} does not fit an IDX header"))
        })?;
        bytes.extend_from_slice(&dim.to_be_bytes());
    }
    bytes.extend_from_slice(data);
    let gzip = path.extension().is_some_and(|ext| ext == "gz");
    if gzip {
        bytes = gzip_bytes(&bytes).map_err(|source| DataError::Unwritable {
            path: path.to_path_buf(),
            source,
        })?;
    }
    write_atomically(path, &bytes)
}

fn gzip_bytes(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes)?;
    encoder.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(count: usize, height: usize, width: usize) -> Dataset {
        let spec = ImageSpec::new(1, height, width);
        let pixels = (0..count * spec.len())
            .map(|i| (i % 256) as f32 / 255.0)
            .collect();
        let names = (0..count).map(|i| i.to_string()).collect();
        Dataset::new(spec, pixels, names).expect("consistent dataset")
    }

    #[test]
    fn images_round_trip_raw_and_gzip() {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = ramp(3, 5, 4);
        for name in ["images-idx3-ubyte", "images-idx3-ubyte.gz"] {
            let path = dir.path().join(name);
            write_idx_images(&path, &data).expect("written");
            assert_eq!(read_idx_images(&path).expect("read"), data, "{name}");
        }
    }

    #[test]
    fn labels_round_trip() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("labels.gz");
        write_idx_labels(&path, &[3, 1, 4, 1, 5]).expect("written");
        assert_eq!(read_idx_labels(&path).expect("read"), [3, 1, 4, 1, 5]);
    }

    #[test]
    fn gzip_is_detected_by_content_not_by_name() {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = ramp(2, 3, 3);
        let gz = dir.path().join("images.gz");
        write_idx_images(&gz, &data).expect("written");
        let disguised = dir.path().join("images-idx3-ubyte");
        std::fs::rename(&gz, &disguised).expect("renamed");
        assert_eq!(
            std::fs::read(&disguised).expect("readable")[..2],
            GZIP_MAGIC
        );
        assert_eq!(read_idx_images(&disguised).expect("read"), data);
    }

    #[test]
    fn a_compressed_stream_is_read_only_as_far_as_the_header_announces() {
        // One 28×28 image announced, then 64 MiB of zeros: a 64 kB gzip file.
        let mut raw = Vec::new();
        raw.extend_from_slice(&IDX_IMAGES_MAGIC.to_be_bytes());
        for dim in [1u32, 28, 28] {
            raw.extend_from_slice(&dim.to_be_bytes());
        }
        raw.resize(raw.len() + (64 << 20), 0);
        let gz = gzip_bytes(&raw).expect("compressed");
        assert!(gz.len() < 1 << 20, "{} bytes", gz.len());
        match parse_idx_images(&gz, Path::new("bomb.gz")) {
            Err(DataError::Truncated {
                expected, found, ..
            }) => assert_eq!((expected, found), (784, 785)),
            other => panic!("expected a trailing-data error, got {other:?}"),
        }
    }

    #[test]
    fn images_of_no_pixels_are_refused() {
        // Found by fuzzing: 67 million images of 0×8388616 pixels, no data bytes.
        let bytes = [0, 0, 8, 3, 4, 0, 48, 0, 0, 0, 0, 0, 0, 128, 0, 8];
        match parse_idx_images(&bytes, Path::new("empty")) {
            Err(DataError::InvalidSpec(why)) => assert!(why.contains("0×8388616"), "{why}"),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_header_announcing_more_than_the_file_holds_is_truncated() {
        let mut raw = Vec::new();
        raw.extend_from_slice(&IDX_IMAGES_MAGIC.to_be_bytes());
        for dim in [u32::MAX, 1000, 2] {
            raw.extend_from_slice(&dim.to_be_bytes());
        }
        raw.extend_from_slice(&[7; 10]);
        match parse_idx_images(&raw, Path::new("huge")) {
            Err(DataError::Truncated { found, .. }) => assert_eq!(found, 10),
            other => panic!("expected a truncation error, got {other:?}"),
        }
    }

    #[test]
    fn values_are_quantized_to_bytes() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("q-idx3-ubyte");
        let spec = ImageSpec::new(1, 1, 4);
        let data = Dataset::new(spec, vec![-0.5, 0.5, 0.999, 2.0], vec!["0".into()])
            .expect("consistent dataset");
        write_idx_images(&path, &data).expect("written");
        let read = read_idx_images(&path).expect("read");
        assert_eq!(read.pixels(), [0.0, 128.0 / 255.0, 1.0, 1.0]);
    }

    #[test]
    fn a_label_file_read_as_images_reports_both_magic_numbers() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("labels-idx1-ubyte");
        write_idx_labels(&path, &[1, 2]).expect("written");
        match read_idx_images(&path) {
            Err(DataError::WrongMagic {
                path: reported,
                found,
                expected,
            }) => {
                assert_eq!(reported, path);
                assert_eq!((found, expected), (IDX_LABELS_MAGIC, IDX_IMAGES_MAGIC));
            }
            other => panic!("expected a wrong magic number, got {other:?}"),
        }
    }

    #[test]
    fn a_truncated_file_reports_the_announced_and_found_sizes() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("images-idx3-ubyte");
        write_idx_images(&path, &ramp(2, 4, 4)).expect("written");
        let bytes = std::fs::read(&path).expect("readable");
        std::fs::write(&path, &bytes[..bytes.len() - 5]).expect("truncated");
        match read_idx_images(&path) {
            Err(DataError::Truncated {
                expected, found, ..
            }) => assert_eq!((expected, found), (32, 27)),
            other => panic!("expected a truncated file, got {other:?}"),
        }
    }

    #[test]
    fn a_short_header_is_truncated() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("short");
        std::fs::write(&path, [0, 0, 8, 3, 0, 0]).expect("written");
        match read_idx_images(&path) {
            Err(DataError::Truncated {
                expected, found, ..
            }) => assert_eq!((expected, found), (16, 6)),
            other => panic!("expected a truncated header, got {other:?}"),
        }
    }

    #[test]
    fn huge_dimensions_overflow() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("huge");
        let mut bytes = IDX_IMAGES_MAGIC.to_be_bytes().to_vec();
        for _ in 0..3 {
            bytes.extend_from_slice(&u32::MAX.to_be_bytes());
        }
        std::fs::write(&path, bytes).expect("written");
        match read_idx_images(&path) {
            Err(DataError::DimensionOverflow { dims, .. }) => {
                assert_eq!(dims, [u64::from(u32::MAX); 3]);
            }
            other => panic!("expected an overflow, got {other:?}"),
        }
    }

    #[test]
    fn a_missing_file_is_unreadable_and_named() {
        match read_idx_images("/nonexistent/train-images-idx3-ubyte.gz") {
            Err(DataError::Unreadable { path, .. }) => {
                assert!(path.ends_with("train-images-idx3-ubyte.gz"));
            }
            other => panic!("expected an unreadable file, got {other:?}"),
        }
    }

    #[test]
    fn a_corrupt_gzip_stream_is_unreadable() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("images.gz");
        write_idx_images(&path, &ramp(2, 8, 8)).expect("written");
        let bytes = std::fs::read(&path).expect("readable");
        std::fs::write(&path, &bytes[..bytes.len() / 2]).expect("cut");
        assert!(matches!(
            read_idx_images(&path),
            Err(DataError::Unreadable { .. })
        ));
    }
}
