//! In-memory image datasets.

use crate::error::{DataError, Result};

/// Layout of one image: `channels × height × width`, row-major, channel first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ImageSpec {
    /// Channels `C` (1 for gray, 3 for RGB).
    pub channels: usize,
    /// Rows `H`.
    pub height: usize,
    /// Columns `W`.
    pub width: usize,
}

impl ImageSpec {
    /// A `channels × height × width` layout.
    pub fn new(channels: usize, height: usize, width: usize) -> Self {
        Self {
            channels,
            height,
            width,
        }
    }

    /// A square `channels × size × size` layout.
    pub fn square(channels: usize, size: usize) -> Self {
        Self::new(channels, size, size)
    }

    /// Values per image, `C·H·W`.
    pub fn len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// Whether an image of this layout holds no value.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Checks that the layout is gray or RGB with a positive size.
    pub fn validate(&self) -> Result<()> {
        if self.channels != 1 && self.channels != 3 {
            return Err(DataError::InvalidSpec(format!(
                "images have 1 or 3 channels, got {}",
                self.channels
            )));
        }
        if self.height == 0 || self.width == 0 {
            return Err(DataError::InvalidSpec(format!(
                "images must be at least 1×1, got {}×{}",
                self.height, self.width
            )));
        }
        Ok(())
    }

    /// Checks that `values` holds a whole number of images of this layout and returns that
    /// number.
    pub(crate) fn count(&self, values: usize) -> Result<usize> {
        self.validate()?;
        if !values.is_multiple_of(self.len()) {
            return Err(DataError::InvalidSpec(format!(
                "{values} values are not a whole number of {}×{}×{} images",
                self.channels, self.height, self.width
            )));
        }
        Ok(values / self.len())
    }
}

/// Images with values in `[0, 1]`, stored as one `[B, C, H, W]` row-major array, each with a
/// name (the file stem for image files, the index for IDX files).
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    spec: ImageSpec,
    pixels: Vec<f32>,
    names: Vec<String>,
}

impl Dataset {
    /// A dataset of `names.len()` images of layout `spec` stored in `pixels`, `[B, C, H, W]`.
    pub fn new(spec: ImageSpec, pixels: Vec<f32>, names: Vec<String>) -> Result<Self> {
        let count = spec.count(pixels.len())?;
        if count != names.len() {
            return Err(DataError::InvalidSpec(format!(
                "{count} images but {} names",
                names.len()
            )));
        }
        Ok(Self {
            spec,
            pixels,
            names,
        })
    }

    /// The layout of every image.
    pub fn spec(&self) -> ImageSpec {
        self.spec
    }

    /// Number of images `B`.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether the dataset holds no image.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// All values, `[B, C, H, W]` row-major.
    pub fn pixels(&self) -> &[f32] {
        &self.pixels
    }

    /// The values of image `index`, `[C, H, W]`, if there is such an image.
    pub fn image(&self, index: usize) -> Option<&[f32]> {
        let size = self.spec.len();
        self.pixels.get(index * size..(index + 1) * size)
    }

    /// The names of the images, in order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The first `count` images (all of them if there are fewer).
    pub fn truncated(mut self, count: usize) -> Self {
        let count = count.min(self.len());
        self.pixels.truncate(count * self.spec.len());
        self.names.truncate(count);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_gray_2x2() -> Dataset {
        let pixels = vec![0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7];
        Dataset::new(
            ImageSpec::square(1, 2),
            pixels,
            vec!["a".into(), "b".into()],
        )
        .expect("consistent dataset")
    }

    #[test]
    fn images_are_consecutive_slices() {
        let data = two_gray_2x2();
        assert_eq!(data.len(), 2);
        assert_eq!(data.image(1), Some(&[0.4, 0.5, 0.6, 0.7][..]));
        assert_eq!(data.image(2), None);
    }

    #[test]
    fn truncation_keeps_the_first_images_and_names() {
        let data = two_gray_2x2().truncated(1);
        assert_eq!(data.names(), ["a"]);
        assert_eq!(data.pixels(), [0.0, 0.1, 0.2, 0.3]);
    }

    #[test]
    fn inconsistent_sizes_are_rejected() {
        let spec = ImageSpec::square(1, 2);
        assert!(Dataset::new(spec, vec![0.0; 7], vec!["a".into(), "b".into()]).is_err());
        assert!(Dataset::new(spec, vec![0.0; 8], vec!["a".into()]).is_err());
        assert!(Dataset::new(ImageSpec::square(2, 2), vec![0.0; 8], vec!["a".into()]).is_err());
    }
}
