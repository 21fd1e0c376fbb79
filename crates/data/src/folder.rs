//! PNG and JPEG images, fitted to a model's layout.
//!
//! Each image is scaled so that it covers `height × width` (its shorter side, relative to the
//! target's aspect ratio, becomes the target's), centre-cropped, and converted to the model's
//! channel count: RGB to gray by the ITU-R BT.601 luma `0.299 R + 0.587 G + 0.114 B` (what PIL
//! and torchvision use), gray to RGB by replication. Alpha is dropped.

use std::path::{Path, PathBuf};

use image::imageops::FilterType;
use image::{DynamicImage, ImageReader, Rgb, Rgb32FImage};

use crate::dataset::{Dataset, ImageSpec};
use crate::error::{DataError, Result};

/// File extensions read from a folder (compared without case).
const IMAGE_EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

/// Images read from files, and what had to be done to fit them to the layout.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedImages {
    /// The images, named by file stem.
    pub dataset: Dataset,
    /// How many images had another channel count (RGB read as gray or gray as RGB).
    pub channel_conversions: usize,
    /// How many images had another size and were resized and cropped.
    pub resized: usize,
}

/// Reads one PNG/JPEG file, or every PNG/JPEG file of a folder (not its subfolders) sorted by
/// file name, fitted to `spec`.
pub fn read_images(path: impl AsRef<Path>, spec: ImageSpec) -> Result<LoadedImages> {
    let path = path.as_ref();
    if path.is_dir() {
        read_image_files(&image_files(path)?, spec)
    } else {
        read_image_files(&[path.to_path_buf()], spec)
    }
}

/// Reads the given PNG/JPEG files in order, fitted to `spec`.
pub fn read_image_files(paths: &[PathBuf], spec: ImageSpec) -> Result<LoadedImages> {
    spec.validate()?;
    let mut pixels = Vec::with_capacity(paths.len() * spec.len());
    let mut names = Vec::with_capacity(paths.len());
    let (mut channel_conversions, mut resized) = (0, 0);
    for path in paths {
        let bytes = std::fs::read(path).map_err(|e| DataError::Unreadable {
            path: path.to_path_buf(),
            source: e,
        })?;
        let fitted = fit(&decode(&bytes, path)?, spec)?;
        channel_conversions += usize::from(fitted.converted);
        resized += usize::from(fitted.resized);
        pixels.extend(fitted.pixels);
        names.push(stem(path));
    }
    Ok(LoadedImages {
        dataset: Dataset::new(spec, pixels, names)?,
        channel_conversions,
        resized,
    })
}

/// The PNG/JPEG files directly in `dir`, sorted by file name.
pub fn image_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let unreadable = |source| DataError::Unreadable {
        path: dir.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(unreadable)? {
        let path = entry.map_err(unreadable)?.path();
        if path.is_file() && has_image_extension(&path) {
            files.push(path);
        }
    }
    if files.is_empty() {
        return Err(DataError::NoImages {
            path: dir.to_path_buf(),
        });
    }
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    Ok(files)
}

fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|ext| ext.to_str())
        .is_some_and(|ext| {
            IMAGE_EXTENSIONS
                .iter()
                .any(|known| ext.eq_ignore_ascii_case(known))
        })
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The largest image side accepted, in pixels.
pub const MAX_IMAGE_SIDE: u32 = 16_384;
/// The most memory the decoder may allocate for one image, in bytes.
pub const MAX_IMAGE_BYTES: u64 = 256 << 20;

/// Decodes the bytes of a PNG/JPEG image (format guessed from the content) and fits it to `spec`;
/// `origin` names the file in errors. Returns `[C, H, W]` values in `[0, 1]`.
pub fn decode_image(bytes: &[u8], origin: &Path, spec: ImageSpec) -> Result<Vec<f32>> {
    spec.validate()?;
    Ok(fit(&decode(bytes, origin)?, spec)?.pixels)
}

/// Decodes an image, guessing its format from its content, within [`MAX_IMAGE_SIDE`] and
/// [`MAX_IMAGE_BYTES`].
fn decode(bytes: &[u8], path: &Path) -> Result<DynamicImage> {
    let unreadable = |reason: String| DataError::UnreadableImage {
        path: path.to_path_buf(),
        reason,
    };
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    limits.max_alloc = Some(MAX_IMAGE_BYTES);
    let mut reader = ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| unreadable(e.to_string()))?;
    reader.limits(limits);
    let image = reader.decode().map_err(|e| unreadable(e.to_string()))?;
    // The float copy made for fitting takes 12 bytes per pixel: refuse what would exceed the budget.
    let floats = u64::from(image.width()) * u64::from(image.height()) * 12;
    if floats > 4 * MAX_IMAGE_BYTES {
        return Err(unreadable(format!(
            "{}×{} pixels is too large (at most {} MiB of pixel data)",
            image.width(),
            image.height(),
            (4 * MAX_IMAGE_BYTES) >> 20
        )));
    }
    if image.width() == 0 || image.height() == 0 {
        return Err(unreadable("the image has no pixels".into()));
    }
    Ok(image)
}

/// One image fitted to a layout.
struct Fitted {
    /// `[C, H, W]` values in `[0, 1]`.
    pixels: Vec<f32>,
    /// Whether the channel count changed.
    converted: bool,
    /// Whether the size changed.
    resized: bool,
}

/// Scales, crops and converts `image` to `spec`.
fn fit(image: &DynamicImage, spec: ImageSpec) -> Result<Fitted> {
    let too_large = |side: usize| {
        DataError::InvalidSpec(format!("image side {side} does not fit a 32-bit size"))
    };
    let width = u32::try_from(spec.width).map_err(|_| too_large(spec.width))?;
    let height = u32::try_from(spec.height).map_err(|_| too_large(spec.height))?;
    let colour = image.color().has_color();
    let resized = image.width() != width || image.height() != height;
    let mut rgb = DynamicImage::ImageRgb32F(rgb_values(image));
    if resized {
        rgb = rgb.resize_to_fill(width, height, FilterType::Triangle);
    }
    let rgb = rgb.into_rgb32f();
    let plane = spec.height * spec.width;
    let pixels = match spec.channels {
        1 if colour => rgb.pixels().map(|p| luma(p.0).clamp(0.0, 1.0)).collect(),
        1 => rgb.pixels().map(|p| p.0[0].clamp(0.0, 1.0)).collect(),
        _ => {
            let mut planes = vec![0.0; 3 * plane];
            for (i, p) in rgb.pixels().enumerate() {
                for (c, &v) in p.0.iter().enumerate() {
                    planes[c * plane + i] = v.clamp(0.0, 1.0);
                }
            }
            planes
        }
    };
    Ok(Fitted {
        pixels,
        converted: colour != (spec.channels == 3),
        resized,
    })
}

/// The image as RGB values in `[0, 1]`; 8-bit values `v` become exactly `v/255` (as in IDX
/// files).
fn rgb_values(image: &DynamicImage) -> Rgb32FImage {
    let colour = image.color();
    if colour.bytes_per_pixel() != colour.channel_count() {
        return image.to_rgb32f();
    }
    let bytes = image.to_rgb8();
    Rgb32FImage::from_fn(bytes.width(), bytes.height(), |x, y| {
        Rgb(bytes.get_pixel(x, y).0.map(|v| f32::from(v) / 255.0))
    })
}

/// ITU-R BT.601 luma of an RGB pixel.
fn luma([r, g, b]: [f32; 3]) -> f32 {
    0.299 * r + 0.587 * g + 0.114 * b
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayImage, ImageEncoder, Luma, RgbImage};

    fn save(image: DynamicImage, path: &Path) {
        image.save(path).expect("test image written");
    }

    #[test]
    fn an_image_larger_than_the_limits_is_refused_before_decoding() {
        // A valid PNG header announcing 100000×100000 pixels.
        let mut bytes = Vec::new();
        image::codecs::png::PngEncoder::new(&mut bytes)
            .write_image(&[0u8; 4], 2, 2, image::ExtendedColorType::L8)
            .expect("encoded");
        // IHDR width/height live at bytes 16..24; patch them (the CRC then fails or the limits do).
        bytes[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        bytes[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        let err = decode_image(&bytes, Path::new("big.png"), ImageSpec::new(1, 28, 28))
            .expect_err("refused");
        assert!(matches!(err, DataError::UnreadableImage { .. }), "{err:?}");
    }

    #[test]
    fn bytes_decode_like_files() {
        let mut bytes = Vec::new();
        image::codecs::png::PngEncoder::new(&mut bytes)
            .write_image(&[0u8, 255, 51, 102], 2, 2, image::ExtendedColorType::L8)
            .expect("encoded");
        let pixels =
            decode_image(&bytes, Path::new("x.png"), ImageSpec::new(1, 2, 2)).expect("decoded");
        assert_eq!(pixels, [0.0, 1.0, 0.2, 0.4]);
    }

    #[test]
    fn a_folder_is_read_in_file_name_order_with_stems_as_names() {
        let dir = tempfile::tempdir().expect("temp dir");
        for (name, value) in [("b.png", 200u8), ("a.png", 100), ("c.jpg", 50)] {
            save(
                DynamicImage::ImageLuma8(GrayImage::from_pixel(4, 4, Luma([value]))),
                &dir.path().join(name),
            );
        }
        std::fs::write(dir.path().join("notes.txt"), "not an image").expect("written");
        let loaded = read_images(dir.path(), ImageSpec::square(1, 4)).expect("read");
        assert_eq!(loaded.dataset.names(), ["a", "b", "c"]);
        assert_eq!(loaded.dataset.image(0).expect("first")[0], 100.0 / 255.0);
        assert_eq!(loaded.dataset.image(1).expect("second")[0], 200.0 / 255.0);
        assert_eq!((loaded.channel_conversions, loaded.resized), (0, 0));
    }

    #[test]
    fn a_wide_image_is_scaled_to_its_height_and_centre_cropped() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("wide.png");
        // 16×8: two black columns at each end, white in between.
        let image = GrayImage::from_fn(16, 8, |x, _| {
            Luma([if (2..14).contains(&x) { 255 } else { 0 }])
        });
        save(DynamicImage::ImageLuma8(image), &path);
        let loaded = read_images(&path, ImageSpec::square(1, 4)).expect("read");
        let pixels = loaded.dataset.pixels();
        assert_eq!(pixels.len(), 16);
        assert_eq!(loaded.resized, 1);
        // Halved to 8×4, the middle 4 columns come from source columns 4..12 (and the filter's
        // reach, 3..13): all white.
        assert!(pixels.iter().all(|&v| v > 0.99), "{pixels:?}");
    }

    #[test]
    fn rgb_becomes_gray_by_luma_and_gray_becomes_rgb_by_replication() {
        let dir = tempfile::tempdir().expect("temp dir");
        let rgb_path = dir.path().join("red.png");
        save(
            DynamicImage::ImageRgb8(RgbImage::from_pixel(2, 2, Rgb([255, 0, 0]))),
            &rgb_path,
        );
        let gray = read_images(&rgb_path, ImageSpec::square(1, 2)).expect("read");
        assert_eq!(gray.channel_conversions, 1);
        assert!(gray
            .dataset
            .pixels()
            .iter()
            .all(|&v| (v - 0.299).abs() < 1e-6));

        let gray_path = dir.path().join("gray.png");
        save(
            DynamicImage::ImageLuma8(GrayImage::from_pixel(2, 2, Luma([51]))),
            &gray_path,
        );
        let rgb = read_images(&gray_path, ImageSpec::square(3, 2)).expect("read");
        assert_eq!(rgb.channel_conversions, 1);
        assert_eq!(rgb.dataset.pixels(), [0.2; 12]);
    }

    #[test]
    fn rgb_keeps_its_planes_in_channel_first_order() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("rgb.png");
        save(
            DynamicImage::ImageRgb8(RgbImage::from_pixel(1, 2, Rgb([0, 51, 255]))),
            &path,
        );
        let loaded = read_images(&path, ImageSpec::new(3, 2, 1)).expect("read");
        assert_eq!(loaded.channel_conversions, 0);
        assert_eq!(loaded.dataset.pixels(), [0.0, 0.0, 0.2, 0.2, 1.0, 1.0]);
    }

    #[test]
    fn an_undecodable_image_is_named() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("broken.png");
        std::fs::write(&path, b"\x89PNG\r\n\x1a\n not really").expect("written");
        match read_images(dir.path(), ImageSpec::square(1, 4)) {
            Err(DataError::UnreadableImage { path: reported, .. }) => assert_eq!(reported, path),
            other => panic!("expected an unreadable image, got {other:?}"),
        }
    }

    #[test]
    fn an_empty_folder_has_no_images() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert!(matches!(
            read_images(dir.path(), ImageSpec::square(1, 4)),
            Err(DataError::NoImages { .. })
        ));
    }

    #[test]
    fn unsupported_channel_counts_are_rejected() {
        let result = read_image_files(&[], ImageSpec::square(2, 4));
        assert!(matches!(result, Err(DataError::InvalidSpec(_))));
    }
}
