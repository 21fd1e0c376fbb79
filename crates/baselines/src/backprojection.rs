//! Normalised back-projection: x̂ = clamp(α·Aᵀỹ, 0, 1).

use burn::prelude::*;
use qcs_sensing::{MeasurementSet, Operator};

use crate::error::Result;
use crate::measured::Measured;
use crate::scale::{fit_scale, OneBitScale};

/// x̂ = clamp(α·Aᵀỹ, 0, 1) for every image of `set`, [B, N] on the operator's device.
///
/// ỹ are the de-quantised measurements (bin midpoints, ±1, or y) and α is fitted per image from the data
/// alone (see [`crate::scale`]): least squares α = argmin ‖ỹ − α·A·Aᵀ·ỹ‖ for linear and Q-bit
/// measurements, `one_bit` for signs. With orthonormal rows and linear noiseless measurements this is the
/// orthogonal projection of x onto the row space of A (before the clamp).
pub fn back_projection(
    operator: &dyn Operator,
    set: &MeasurementSet,
    one_bit: OneBitScale,
) -> Result<Tensor<2>> {
    let measured = Measured::new(operator, set)?;
    let direction = operator.adjoint(measured.y());
    let image = operator.forward(direction.clone());
    let alpha = fit_scale(&measured, direction.clone(), image, one_bit);
    Ok((direction * alpha).clamp(0.0, 1.0))
}
