//! Writing a reconstruction's pictures and report. Called only after every input was checked and every image
//! reconstructed, so a failed run leaves no partial output behind; each file is written atomically.

use std::path::Path;

use anyhow::{Context, Result};
use qcs_data::{Dataset, ImageSpec};

use crate::report::Report;

/// Writes `report.json` atomically.
fn write_json(path: &Path, report: &Report) -> Result<()> {
    let text = serde_json::to_string_pretty(report)? + "\n";
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

/// One PNG per reconstruction (`<name>.png`, the posterior mean), `<name>_std.png` (twice the per-pixel
/// standard deviation over chains, so white = 0.5, the largest possible) when there are several chains,
/// `grid.png` (one row per image: truth | reconstruction | std) and `report.json`.
pub fn write_reconstructions(
    out: &Path,
    names: &[String],
    spec: ImageSpec,
    truth: Option<&Dataset>,
    mean: &[f32],
    std: Option<&[f32]>,
    report: &Report,
) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let n = spec.len();
    let std_image: Option<Vec<f32>> = std.map(|s| s.iter().map(|v| (2.0 * v).min(1.0)).collect());
    let mut grid = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let recon = &mean[i * n..(i + 1) * n];
        qcs_data::save_png(out.join(format!("{name}.png")), recon, spec)?;
        if let Some(t) = truth {
            grid.extend_from_slice(&t.pixels()[i * n..(i + 1) * n]);
        }
        grid.extend_from_slice(recon);
        if let Some(s) = &std_image {
            let s = &s[i * n..(i + 1) * n];
            qcs_data::save_png(out.join(format!("{name}_std.png")), s, spec)?;
            grid.extend_from_slice(s);
        }
    }
    let columns = 1 + usize::from(truth.is_some()) + usize::from(std.is_some());
    qcs_data::save_grid(out.join("grid.png"), &grid, spec, columns)?;
    write_json(&out.join("report.json"), report)
}
