//! PNG output of single images and of grids of images, written atomically.

use std::path::Path;

use image::codecs::png::PngEncoder;
use image::{ExtendedColorType, ImageEncoder};

use crate::atomic::write_atomically;
use crate::dataset::ImageSpec;
use crate::error::{DataError, Result};
use crate::idx::to_byte;

/// Pixels between the tiles of a grid, and around them (as torchvision's `make_grid`).
pub const GRID_PADDING: usize = 2;

/// Writes one `[C, H, W]` image with values in `[0, 1]` (clamped) as an 8-bit gray or RGB PNG.
pub fn save_png(path: impl AsRef<Path>, pixels: &[f32], spec: ImageSpec) -> Result<()> {
    if spec.count(pixels.len())? != 1 {
        return Err(DataError::InvalidSpec(format!(
            "one {}×{}×{} image has {} values, got {}",
            spec.channels,
            spec.height,
            spec.width,
            spec.len(),
            pixels.len()
        )));
    }
    encode(path.as_ref(), &interleave(pixels, spec), spec)
}

/// Writes images `[B, C, H, W]` (values in `[0, 1]`, clamped) as one PNG grid of `columns` tiles
/// per row, in reading order, separated and surrounded by [`GRID_PADDING`] black pixels.
pub fn save_grid(
    path: impl AsRef<Path>,
    images: &[f32],
    spec: ImageSpec,
    columns: usize,
) -> Result<()> {
    let count = spec.count(images.len())?;
    if count == 0 || columns == 0 {
        return Err(DataError::InvalidSpec(format!(
            "a grid needs at least one image and one column, got {count} images and {columns} columns"
        )));
    }
    let columns = columns.min(count);
    let rows = count.div_ceil(columns);
    let grid = ImageSpec::new(
        spec.channels,
        rows * (spec.height + GRID_PADDING) + GRID_PADDING,
        columns * (spec.width + GRID_PADDING) + GRID_PADDING,
    );
    let mut pixels = vec![0.0; grid.len()];
    for (index, image) in images.chunks_exact(spec.len()).enumerate() {
        let top = GRID_PADDING + (index / columns) * (spec.height + GRID_PADDING);
        let left = GRID_PADDING + (index % columns) * (spec.width + GRID_PADDING);
        for c in 0..spec.channels {
            for y in 0..spec.height {
                let src = (c * spec.height + y) * spec.width;
                let dst = (c * grid.height + top + y) * grid.width + left;
                pixels[dst..dst + spec.width].copy_from_slice(&image[src..src + spec.width]);
            }
        }
    }
    encode(path.as_ref(), &interleave(&pixels, grid), grid)
}

/// `[C, H, W]` floats to `[H, W, C]` bytes.
fn interleave(pixels: &[f32], spec: ImageSpec) -> Vec<u8> {
    let plane = spec.height * spec.width;
    (0..plane)
        .flat_map(|i| (0..spec.channels).map(move |c| to_byte(pixels[c * plane + i])))
        .collect()
}

fn encode(path: &Path, bytes: &[u8], spec: ImageSpec) -> Result<()> {
    let colour = if spec.channels == 3 {
        ExtendedColorType::Rgb8
    } else {
        ExtendedColorType::L8
    };
    let side = |n: usize| {
        u32::try_from(n)
            .map_err(|_| DataError::InvalidSpec(format!("side {n} is too large for a PNG")))
    };
    let (width, height) = (side(spec.width)?, side(spec.height)?);
    let mut png = Vec::new();
    PngEncoder::new(&mut png)
        .write_image(bytes, width, height, colour)
        .map_err(|e| DataError::Unwritable {
            path: path.to_path_buf(),
            source: std::io::Error::other(e),
        })?;
    write_atomically(path, &png)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::folder::read_images;

    #[test]
    fn a_png_round_trips_to_byte_precision() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("one.png");
        let spec = ImageSpec::new(3, 2, 3);
        let pixels: Vec<f32> = (0..spec.len()).map(|i| i as f32 / 17.0).collect();
        save_png(&path, &pixels, spec).expect("written");
        let read = read_images(&path, spec).expect("read");
        for (a, b) in read.dataset.pixels().iter().zip(&pixels) {
            assert!((a - b).abs() <= 0.5 / 255.0 + 1e-6, "{a} vs {b}");
        }
    }

    #[test]
    fn a_grid_places_tiles_in_reading_order_with_padding() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("grid.png");
        let spec = ImageSpec::square(1, 2);
        let images = [
            0.2f32, 0.2, 0.2, 0.2, 0.4, 0.4, 0.4, 0.4, 0.6, 0.6, 0.6, 0.6,
        ];
        save_grid(&path, &images, spec, 2).expect("written");
        let grid = image::open(&path).expect("decodable").into_luma8();
        assert_eq!(grid.dimensions(), (10, 10));
        assert_eq!(grid.get_pixel(0, 0).0, [0]);
        assert_eq!(grid.get_pixel(2, 2).0, [51]);
        assert_eq!(grid.get_pixel(6, 3).0, [102]);
        assert_eq!(grid.get_pixel(3, 6).0, [153]);
        assert_eq!(grid.get_pixel(6, 6).0, [0]);
    }

    #[test]
    fn a_wrong_number_of_values_is_rejected() {
        let dir = tempfile::tempdir().expect("temp dir");
        let result = save_png(dir.path().join("x.png"), &[0.0; 5], ImageSpec::square(1, 2));
        assert!(matches!(result, Err(DataError::InvalidSpec(_))));
        let result = save_png(dir.path().join("x.png"), &[0.0; 8], ImageSpec::square(1, 2));
        assert!(matches!(result, Err(DataError::InvalidSpec(_))));
    }
}
