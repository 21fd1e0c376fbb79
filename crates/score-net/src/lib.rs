//! NCSNv2 score network for quantized compressed sensing.
//!
//! [`NcsnV2`] is the RefineNet of Song & Ermon (2020), "Improved Techniques for Training
//! Score-Based Generative Models", built from burn modules whose parameter paths match the
//! reference PyTorch state dict, so reference checkpoints load through [`load_safetensors`] and
//! qcs checkpoints load back into the reference code. Images smaller than 256×256 get the
//! reference's `NCSNv2` topology, larger ones its `NCSNv2Deepest` ([`Architecture`]).
//!
//! Every parameter path of [`NcsnV2`] is its reference name, with two exceptions that cannot be
//! Rust field paths, translated when SafeTensors files are read and written: the residual units
//! of an RCU chain (`units.{i}.conv{j}` here, `{i+1}_{j}_conv` in the reference), and the enum
//! variant that picks a plain or a mean-pooled convolution (`conv2.Same.weight` /
//! `conv2.Down.conv.weight` here, `conv2.weight` / `conv2.conv.weight` in the reference).
//!
//! ```no_run
//! use burn::tensor::{Device, Int, Tensor};
//! use qcs_score_net::{NcsnV2Config, load_safetensors};
//!
//! # fn main() -> Result<(), qcs_score_net::ScoreNetError> {
//! let device = Device::default();
//! let config = NcsnV2Config::new().with_ngf(64);
//! let net = load_safetensors(&config, "mnist.safetensors", &device)?;
//! let x = Tensor::<4>::zeros([2, 1, 28, 28], &device);
//! let score = net.forward(x, Tensor::<1, Int>::from_ints([0, 231], &device));
//! # Ok(())
//! # }
//! ```

pub mod blocks;
mod error;
mod ncsnv2;
mod permissions;
pub mod train;
mod weights;
mod widen;

pub use blocks::conv::{
    conv2d_gemm, conv_algorithm, set_conv_algorithm, ConvAlgorithm, GEMM_MIN_MACS,
};
pub use error::ScoreNetError;
pub use ncsnv2::{Architecture, NcsnV2, NcsnV2Config};
pub use weights::{
    load_burnpack, load_burnpack_bytes, load_safetensors, load_safetensors_bytes, save_burnpack,
    save_safetensors, stored_shape, Precision, StoredShape,
};
pub use widen::widen;
