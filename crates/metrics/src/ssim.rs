//! Structural similarity exactly as scikit-image's `structural_similarity(data_range=1)` computes it with its
//! defaults (uniform window, sample covariance, mean over the valid region, averaged over channels).
//!
//! scikit-image filters the whole image with a reflect-padded uniform filter and then crops
//! pad = (window − 1)/2 pixels from every side before averaging. Every pixel that survives the crop has its
//! window entirely inside the image, so the padding never reaches the mean: it is the mean of the SSIM map over
//! all window positions inside the image, which is what [`SsimConfig::ssim`] computes (in f64).

use crate::error::{check_pair, MetricsError, Result};

/// SSIM settings. The defaults are scikit-image's with `data_range = 1`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SsimConfig {
    /// Side of the square uniform window, odd (default 7).
    pub window: usize,
    /// K1 of C1 = (K1·R)² (default 0.01).
    pub k1: f64,
    /// K2 of C2 = (K2·R)² (default 0.03).
    pub k2: f64,
    /// Data range R of the images (default 1: images in [0, 1]).
    pub data_range: f64,
}

impl Default for SsimConfig {
    fn default() -> Self {
        Self {
            window: 7,
            k1: 0.01,
            k2: 0.03,
            data_range: 1.0,
        }
    }
}

/// Sums over one w×w window of the five moments SSIM needs.
#[derive(Debug, Default, Clone, Copy)]
struct WindowSums {
    x: f64,
    y: f64,
    xx: f64,
    yy: f64,
    xy: f64,
}

impl SsimConfig {
    /// Mean SSIM of two [C, H, W] images: the mean over channels of the mean over window positions of
    /// S = (2·μx·μy + C1)(2·σxy + C2) / ((μx² + μy² + C1)(σx² + σy² + C2)), with window means μ and sample
    /// (co)variances σ (normalised by w² − 1).
    pub fn ssim(&self, reference: &[f32], estimate: &[f32], shape: [usize; 3]) -> Result<f64> {
        self.validate()?;
        check_pair(reference, estimate, shape)?;
        let [channels, height, width] = shape;
        if height < self.window || width < self.window {
            return Err(MetricsError::TooSmall {
                height,
                width,
                window: self.window,
            });
        }
        let plane = height * width;
        let total: f64 = (0..channels)
            .map(|c| {
                let range = c * plane..(c + 1) * plane;
                self.channel_ssim(&reference[range.clone()], &estimate[range], height, width)
            })
            .sum();
        Ok(total / channels as f64)
    }

    fn validate(&self) -> Result<()> {
        if self.window < 3 || self.window.is_multiple_of(2) {
            return Err(MetricsError::InvalidSetting(format!(
                "the SSIM window must be odd and at least 3, got {}",
                self.window
            )));
        }
        let positive = |v: f64| v.is_finite() && v > 0.0;
        if !(positive(self.data_range) && positive(self.k1) && positive(self.k2)) {
            return Err(MetricsError::InvalidSetting(format!(
                "K1, K2 and the data range must be positive, got {}, {}, {}",
                self.k1, self.k2, self.data_range
            )));
        }
        Ok(())
    }

    /// Mean SSIM over all window positions of one channel.
    fn channel_ssim(&self, x: &[f32], y: &[f32], height: usize, width: usize) -> f64 {
        let sums = window_sums(x, y, height, width, self.window);
        let total: f64 = sums.iter().map(|s| self.window_ssim(s)).sum();
        total / sums.len() as f64
    }

    /// SSIM of one window from its moment sums.
    fn window_ssim(&self, s: &WindowSums) -> f64 {
        let np = (self.window * self.window) as f64;
        let cov_norm = np / (np - 1.0);
        let (ux, uy) = (s.x / np, s.y / np);
        let vx = cov_norm * (s.xx / np - ux * ux);
        let vy = cov_norm * (s.yy / np - uy * uy);
        let vxy = cov_norm * (s.xy / np - ux * uy);
        let c1 = (self.k1 * self.data_range).powi(2);
        let c2 = (self.k2 * self.data_range).powi(2);
        (2.0 * ux * uy + c1) * (2.0 * vxy + c2) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    }
}

/// Moment sums of every w×w window inside an H×W plane, row-major over window positions
/// ((H − w + 1)·(W − w + 1) of them), computed separably: first along rows, then along columns.
fn window_sums(x: &[f32], y: &[f32], height: usize, width: usize, w: usize) -> Vec<WindowSums> {
    let out_w = width - w + 1;
    let point = |i: usize| {
        let (a, b) = (f64::from(x[i]), f64::from(y[i]));
        WindowSums {
            x: a,
            y: b,
            xx: a * a,
            yy: b * b,
            xy: a * b,
        }
    };
    let rows: Vec<WindowSums> = (0..height)
        .flat_map(|r| (0..out_w).map(move |c| (r, c)))
        .map(|(r, c)| add_all((0..w).map(|k| point(r * width + c + k))))
        .collect();
    (0..height - w + 1)
        .flat_map(|r| (0..out_w).map(move |c| (r, c)))
        .map(|(r, c)| add_all((0..w).map(|k| rows[(r + k) * out_w + c])))
        .collect()
}

fn add_all(items: impl Iterator<Item = WindowSums>) -> WindowSums {
    items.fold(WindowSums::default(), |acc, s| WindowSums {
        x: acc.x + s.x,
        y: acc.y + s.y,
        xx: acc.xx + s.xx,
        yy: acc.yy + s.yy,
        xy: acc.xy + s.xy,
    })
}

/// Mean SSIM with scikit-image's defaults and data range 1 (see [`SsimConfig`]).
pub fn ssim(reference: &[f32], estimate: &[f32], shape: [usize; 3]) -> Result<f64> {
    SsimConfig::default().ssim(reference, estimate, shape)
}

#[cfg(test)]
mod tests {
    //! Expected values marked "numpy" come from `scripts/ssim_reference.py`, a numpy/scipy re-implementation
    //! of scikit-image's formula: `scipy.ndimage.uniform_filter(size=7, mode='reflect')` on float64 copies of
    //! the f32 images, cov_norm = 49/48, C1 = 0.01², C2 = 0.03², `S[3:-3, 3:-3].mean()`, then the mean over
    //! channels (numpy 2.4, scipy 1.17; scikit-image itself was not installed).
    use super::*;

    fn ramp() -> Vec<f32> {
        (0..64).map(|k| k as f32 / 63.0).collect()
    }

    fn ramp_transposed() -> Vec<f32> {
        (0..64)
            .map(|k| ((k % 8) * 8 + k / 8) as f32 / 63.0)
            .collect()
    }

    #[test]
    fn constant_images_follow_the_luminance_term_in_closed_form() {
        // σx = σy = σxy = 0 ⇒ S = (2ab + C1)/(a² + b² + C1) in every window.
        let (a, b) = (0.5f32, 0.6f32);
        let x = vec![a; 2 * 8 * 9];
        let y = vec![b; 2 * 8 * 9];
        let (a, b) = (f64::from(a), f64::from(b));
        let expected = (2.0 * a * b + 1e-4) / (a * a + b * b + 1e-4);
        let s = ssim(&x, &y, [2, 8, 9]).unwrap();
        assert!((s - expected).abs() < 1e-12, "{s} vs {expected}");
    }

    #[test]
    fn identical_images_have_ssim_one() {
        let x = ramp();
        assert!((ssim(&x, &x, [1, 8, 8]).unwrap() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn ramp_against_its_square_matches_scikit_image_formula() {
        let x = ramp();
        let y: Vec<f32> = x.iter().map(|v| v * v).collect();
        let s = ssim(&x, &y, [1, 8, 8]).unwrap();
        assert!((s - 0.871_582_865_001_435).abs() < 1e-9, "{s}"); // numpy
    }

    #[test]
    fn ramp_against_its_transpose_matches_scikit_image_formula() {
        let s = ssim(&ramp(), &ramp_transposed(), [1, 8, 8]).unwrap();
        assert!((s - 0.248_130_006_455_621).abs() < 1e-9, "{s}"); // numpy
        let p = crate::psnr(&ramp(), &ramp_transposed(), [1, 8, 8]).unwrap();
        assert!((p - 8.872_957_051_467_372).abs() < 1e-9, "{p}"); // numpy
    }

    #[test]
    fn multichannel_ssim_is_the_mean_over_channels() {
        let pattern = |f: &dyn Fn(usize, usize, usize) -> f32| -> Vec<f32> {
            (0..3)
                .flat_map(|c| (0..9).flat_map(move |i| (0..11).map(move |j| (c, i, j))))
                .map(|(c, i, j)| f(c, i, j))
                .collect()
        };
        let x = pattern(&|c, i, j| ((7 * i + 3 * j + 5 * c) % 11) as f32 / 10.0);
        let y = pattern(&|c, i, j| ((i * i + 2 * j + c) % 13) as f32 / 12.0);
        let s = ssim(&x, &y, [3, 9, 11]).unwrap();
        assert!((s - -0.074_597_944_538_007).abs() < 1e-9, "{s}"); // numpy
        let first = ssim(&x[..99], &y[..99], [1, 9, 11]).unwrap();
        assert!((first - -0.015_808_828_840_554).abs() < 1e-9, "{first}"); // numpy
    }

    #[test]
    fn images_smaller_than_the_window_are_rejected() {
        let x = vec![0.0f32; 6 * 8];
        assert_eq!(
            ssim(&x, &x, [1, 6, 8]),
            Err(MetricsError::TooSmall {
                height: 6,
                width: 8,
                window: 7
            })
        );
    }

    #[test]
    fn mismatched_sizes_and_even_windows_are_rejected() {
        let x = vec![0.0f32; 64];
        assert!(matches!(
            ssim(&x, &x[..63], [1, 8, 8]),
            Err(MetricsError::InvalidShape { .. })
        ));
        let even = SsimConfig {
            window: 6,
            ..SsimConfig::default()
        };
        assert!(matches!(
            even.ssim(&x, &x, [1, 8, 8]),
            Err(MetricsError::InvalidSetting(_))
        ));
    }
}
