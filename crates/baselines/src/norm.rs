//! The squared operator norm ‖A‖² = λ_max(AᵀA), which sets the gradient step of iterative hard thresholding.
//! It lives in `qcs-sensing` (the QCS-SGM step control needs it too); re-exported here.

pub use qcs_sensing::operator::{normalized_rows as normalized, operator_norm_sq};
