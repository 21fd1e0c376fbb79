//! Peak signal-to-noise ratio for images in [0, 1].

use crate::error::{check_pair, Result};

/// Mean squared error over all C·H·W values, accumulated in f64.
pub fn mse(reference: &[f32], estimate: &[f32], shape: [usize; 3]) -> Result<f64> {
    check_pair(reference, estimate, shape)?;
    let sum: f64 = reference
        .iter()
        .zip(estimate)
        .map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2))
        .sum();
    Ok(sum / reference.len() as f64)
}

/// PSNR = 10·log10(1/MSE) in dB for images with data range 1 (scikit-image's
/// `peak_signal_noise_ratio(data_range=1)`), MSE over all C·H·W values.
///
/// Identical images give `f64::INFINITY` (MSE = 0), as numpy's division does in scikit-image; callers that
/// average PSNR over images should report such cases separately.
pub fn psnr(reference: &[f32], estimate: &[f32], shape: [usize; 3]) -> Result<f64> {
    let error = mse(reference, estimate, shape)?;
    Ok(if error == 0.0 {
        f64::INFINITY
    } else {
        -10.0 * error.log10()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MetricsError;

    #[test]
    fn psnr_of_a_uniform_offset_is_ten_log_of_the_inverse_square() {
        // Every value off by 0.1 ⇒ MSE = 0.01 ⇒ PSNR = 20 dB.
        let a = vec![0.5f32; 2 * 3 * 4];
        let b: Vec<f32> = a.iter().map(|v| v + 0.1).collect();
        let p = psnr(&a, &b, [2, 3, 4]).unwrap();
        assert!((p - 20.0).abs() < 1e-5, "{p}");
    }

    #[test]
    fn psnr_of_a_known_mse_over_all_values() {
        // One of four values differs by 1 ⇒ MSE = 1/4 ⇒ PSNR = 10·log10(4) = 6.0206 dB.
        let a = [0.0f32, 0.0, 0.0, 0.0];
        let b = [1.0f32, 0.0, 0.0, 0.0];
        assert!((mse(&a, &b, [1, 2, 2]).unwrap() - 0.25).abs() < 1e-12);
        let p = psnr(&a, &b, [1, 2, 2]).unwrap();
        assert!((p - 10.0 * 4f64.log10()).abs() < 1e-12, "{p}");
    }

    #[test]
    fn identical_images_have_infinite_psnr() {
        let a = [0.25f32, 0.5, 0.75];
        assert_eq!(psnr(&a, &a, [1, 1, 3]).unwrap(), f64::INFINITY);
    }

    #[test]
    fn psnr_rejects_sizes_that_do_not_fit_the_shape() {
        let a = [0.0f32; 4];
        let b = [0.0f32; 3];
        assert!(matches!(
            psnr(&a, &b, [1, 2, 2]),
            Err(MetricsError::InvalidShape {
                what: "estimate",
                ..
            })
        ));
        assert!(matches!(
            psnr(&[], &[], [0, 2, 2]),
            Err(MetricsError::InvalidShape { .. })
        ));
    }
}
