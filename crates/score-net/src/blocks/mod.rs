//! The building blocks of NCSNv2, one per file, each a burn `Config` + `Module` pair.

mod activation;
pub mod conv;
pub mod conv_mean_pool;
pub mod crp;
#[cfg(feature = "cube")]
pub(crate) mod cube;
#[cfg(any(feature = "flex", feature = "cube"))]
mod dispatch;
#[cfg(any(feature = "flex", feature = "cube"))]
mod elu_autodiff;
pub mod msf;
pub mod norm;
#[cfg(any(feature = "flex", feature = "cube"))]
mod norm_autodiff;
pub mod rcu;
pub mod refine;
pub mod residual;

pub(crate) use conv::conv3x3;
