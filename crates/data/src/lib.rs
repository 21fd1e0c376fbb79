//! Image datasets for qcs.
//!
//! A [`Dataset`] holds images as `f32` values in `[0, 1]`, `[B, C, H, W]` row-major, each with a
//! name. It is read from IDX files ([`read_idx_images`]: MNIST, Fashion-MNIST; raw or gzip) or
//! from PNG/JPEG files and folders ([`read_images`]), fitted to the model's layout
//! ([`ImageSpec`]). [`save_png`] and [`save_grid`] write results; [`write_idx_images`] writes IDX
//! files. Every writer replaces its file atomically.
//!
//! ```no_run
//! use qcs_data::{read_idx_images, save_grid};
//!
//! # fn main() -> Result<(), qcs_data::DataError> {
//! let test = read_idx_images("data/mnist/t10k-images-idx3-ubyte.gz")?.truncated(16);
//! save_grid("first16.png", test.pixels(), test.spec(), 4)?;
//! # Ok(())
//! # }
//! ```

mod atomic;
mod dataset;
mod error;
mod folder;
mod idx;
mod png;

pub use dataset::{Dataset, ImageSpec};
pub use error::DataError;
pub use folder::{
    decode_image, image_files, read_image_files, read_images, LoadedImages, MAX_IMAGE_BYTES,
    MAX_IMAGE_SIDE,
};
pub use idx::{
    parse_idx_images, parse_idx_labels, read_idx_images, read_idx_labels, write_idx_images,
    write_idx_labels, IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC,
};
pub use png::{save_grid, save_png, GRID_PADDING};
