//! Non-learned baselines for quantized compressed sensing, to put the score-based reconstructions in context.
//!
//! - [`back_projection`]: x̂ = α·Aᵀỹ, the matched filter, with ỹ the de-quantised measurements and α fitted
//!   from the data alone ([`scale`]).
//! - [`biht`]: (binary) iterative hard thresholding in the orthonormal 2-D DCT basis of every channel,
//!   θ ← H_s(θ + τ·Bᵀ(ỹ − Q(B·θ))), B = A·Dᵀ; plain IHT for linear measurements, the quantization-consistent
//!   generalisation for Q-bit, normalised BIHT for 1-bit.
//!
//! Both take an [`qcs_sensing::Operator`] and the [`qcs_sensing::MeasurementSet`] made with it, run on the
//! operator's device (any burn backend), and return images [B, N] in [0, 1], flattened channel-major like the
//! inputs of the operator (ALGORITHM.md §1).

pub mod backprojection;
pub mod biht;
pub mod error;
pub mod measured;
pub mod norm;
pub mod scale;

pub use backprojection::back_projection;
pub use biht::{biht, default_sparsity, BihtConfig};
pub use error::{BaselineError, Result};
pub use measured::{DeviceQuantizer, Measured};
pub use scale::OneBitScale;
