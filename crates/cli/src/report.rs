//! `report.json` and the table printed after a reconstruction.

use anyhow::Result;
use qcs_data::Dataset;
use serde::Serialize;

/// The quality of one reconstruction against its ground truth.
#[derive(Debug, Clone, Serialize)]
pub struct ImageScore {
    /// The image's file stem.
    pub name: String,
    /// PSNR in dB.
    pub psnr: f64,
    /// SSIM (scikit-image definition).
    pub ssim: f64,
}

/// PSNR and SSIM of every reconstruction (`estimate`, [B, N] in the order of `truth`) against its truth,
/// reported under `names`.
pub fn score_images(
    truth: &Dataset,
    estimate: &[f32],
    names: &[String],
) -> Result<Vec<ImageScore>> {
    let spec = truth.spec();
    let (n, dims) = (spec.len(), [spec.channels, spec.height, spec.width]);
    names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let (reference, ours) = (
                &truth.pixels()[i * n..(i + 1) * n],
                &estimate[i * n..(i + 1) * n],
            );
            Ok(ImageScore {
                name: name.clone(),
                psnr: qcs_metrics::psnr(reference, ours, dims)?,
                ssim: qcs_metrics::ssim(reference, ours, dims)?,
            })
        })
        .collect()
}

/// Everything `qcs reconstruct` reports, with exactly the keys of `report.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// qcs-sgm or qcs-sgm-plus.
    pub method: String,
    /// The compiled-in backend.
    pub backend: String,
    /// Bits per measurement (null for unquantized measurements).
    pub bits: Option<u32>,
    /// M.
    pub measurements: usize,
    /// σ.
    pub noise_std: f64,
    /// The operator family (with its parameter, e.g. `ill-conditioned(κ=1000)`).
    pub matrix: String,
    /// The likelihood weight λ (QCS-SGM: fixed; QCS-SGM+: relative to the prior score's norm).
    pub likelihood_scale: f64,
    /// QCS-SGM+'s expectation-propagation settings: iterations, damping, tolerance (null for QCS-SGM).
    pub ep: Option<qcs_likelihood::EpConfig>,
    /// Noise levels used.
    pub levels: usize,
    /// Langevin steps per level.
    pub steps_per_level: usize,
    /// Network evaluations per image.
    pub nfe: usize,
    /// Wall time of the sampling, seconds.
    pub seconds: f64,
    /// Per-image quality (empty without ground truth).
    pub images: Vec<ImageScore>,
    /// Mean PSNR over the images (null without ground truth).
    pub mean_psnr: Option<f64>,
    /// Mean SSIM over the images (null without ground truth).
    pub mean_ssim: Option<f64>,
}

impl Report {
    /// Fills the means from the per-image scores.
    pub fn with_means(mut self) -> Self {
        let n = self.images.len() as f64;
        if n > 0.0 {
            self.mean_psnr = Some(self.images.iter().map(|i| i.psnr).sum::<f64>() / n);
            self.mean_ssim = Some(self.images.iter().map(|i| i.ssim).sum::<f64>() / n);
        }
        self
    }

    /// The short table printed to the terminal.
    pub fn table(&self) -> String {
        let mut out = format!("{:<24} {:>9} {:>7}\n", "image", "PSNR (dB)", "SSIM");
        for i in &self.images {
            out.push_str(&format!("{:<24} {:>9.2} {:>7.4}\n", i.name, i.psnr, i.ssim));
        }
        if let (Some(p), Some(s)) = (self.mean_psnr, self.mean_ssim) {
            out.push_str(&format!("{:<24} {:>9.2} {:>7.4}\n", "mean", p, s));
        }
        out.push_str(&format!(
            "{} · {} · M = {} · {} · σ = {} · {} levels × {} steps = {} NFE · {:.1} s\n",
            self.method,
            self.bits
                .map_or("linear".to_string(), |b| format!("{b}-bit")),
            self.measurements,
            self.matrix,
            self.noise_std,
            self.levels,
            self.steps_per_level,
            self.nfe,
            self.seconds
        ));
        out
    }
}
