//! The results of `qcs eval`: one CSV row per cell (appended and flushed as each cell finishes), one row per
//! image and cell in `images.csv` (for paired comparisons of methods on the same images), the markdown table
//! regenerated from them, and the summary printed at the end.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::report::ImageScore;
use crate::sweep::Method;

/// The CSV columns, in order.
pub const HEADER: [&str; 15] = [
    "method",
    "numerics",
    "matrix",
    "bits",
    "measurements",
    "noise_std",
    "levels",
    "steps_per_level",
    "nfe",
    "images",
    "psnr",
    "psnr_se",
    "ssim",
    "seconds",
    "backend",
];

/// The number of leading columns that identify a cell (the settings); `images` is part of the key too.
const SETTING_COLUMNS: usize = 8;

/// The columns of `images.csv` after a cell's settings (the first [`SETTING_COLUMNS`] of [`HEADER`]).
const IMAGE_COLUMNS: [&str; 3] = ["image", "psnr", "ssim"];

/// The header line of `images.csv`.
fn image_header() -> String {
    HEADER[..SETTING_COLUMNS]
        .iter()
        .chain(&IMAGE_COLUMNS)
        .copied()
        .collect::<Vec<_>>()
        .join(",")
}

/// The per-image PSNRs of each cell, keyed by the cell's settings (the first [`SETTING_COLUMNS`] fields of
/// its row): (image name, PSNR) in the order the cell scored them.
pub type PerImage = BTreeMap<String, Vec<(String, f64)>>;

/// Parses a line of `images.csv`: the cell's settings, the image name (unquoted) and its PSNR.
fn parse_image_line(line: &str) -> Result<(String, String, f64)> {
    let mut tail = line.rsplitn(3, ',');
    let (Some(ssim), Some(psnr), Some(head)) = (tail.next(), tail.next(), tail.next()) else {
        bail!("expected {} fields", SETTING_COLUMNS + IMAGE_COLUMNS.len());
    };
    ssim.parse::<f64>().context("ssim")?;
    let fields: Vec<&str> = head.splitn(SETTING_COLUMNS + 1, ',').collect();
    let [settings @ .., name] = fields.as_slice() else {
        unreachable!("splitn yields at least one field")
    };
    if settings.len() != SETTING_COLUMNS {
        bail!("expected {} fields", SETTING_COLUMNS + IMAGE_COLUMNS.len());
    }
    let name = match name.strip_prefix('"').and_then(|n| n.strip_suffix('"')) {
        Some(quoted) => quoted.replace("\"\"", "\""),
        None => (*name).to_string(),
    };
    Ok((settings.join(","), name, psnr.parse().context("psnr")?))
}

/// The mean of `values` (not empty) and its standard error (sample standard deviation over √n; NaN for
/// a single value).
pub fn mean_se(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    if values.len() < 2 {
        return (mean, f64::NAN);
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, (var / n).sqrt())
}

/// A CSV field: as it is, or quoted when it holds a comma, a quote or a line break.
pub fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// One evaluated cell.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// qcs-sgm, qcs-sgm-plus, biht or back-projection.
    pub method: String,
    /// The likelihood numerics: QCS-SGM's stable or reference; `reference` or empty for QCS-SGM+ (the
    /// reference's EP settings or qcs's); empty for the baselines.
    pub numerics: String,
    /// The operator family as `--matrices` spells it, with its parameter.
    pub matrix: String,
    /// 1–8 or `linear`.
    pub bits: String,
    /// M.
    pub measurements: usize,
    /// σ.
    pub noise_std: f64,
    /// Noise levels visited (the samplers only).
    pub levels: Option<usize>,
    /// Langevin steps per level (the samplers only).
    pub steps_per_level: Option<usize>,
    /// Network evaluations per image (0 for the baselines).
    pub nfe: usize,
    /// Images evaluated.
    pub images: usize,
    /// Mean PSNR in dB.
    pub psnr: f64,
    /// Standard error of the mean PSNR (none for a single image).
    pub psnr_se: Option<f64>,
    /// Mean SSIM.
    pub ssim: f64,
    /// Wall time of the reconstructions, seconds.
    pub seconds: f64,
    /// The compiled-in backend.
    pub backend: String,
}

fn optional<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(String::new, |v| v.to_string())
}

impl Row {
    /// The CSV fields, in [`HEADER`] order.
    fn fields(&self) -> Vec<String> {
        vec![
            self.method.clone(),
            self.numerics.clone(),
            self.matrix.clone(),
            self.bits.clone(),
            self.measurements.to_string(),
            self.noise_std.to_string(),
            optional(self.levels),
            optional(self.steps_per_level),
            self.nfe.to_string(),
            self.images.to_string(),
            format!("{:.4}", self.psnr),
            optional(self.psnr_se.map(|se| format!("{se:.4}"))),
            format!("{:.5}", self.ssim),
            format!("{:.3}", self.seconds),
            self.backend.clone(),
        ]
    }

    /// The cell's settings, the first [`SETTING_COLUMNS`] fields joined by commas.
    fn settings(&self) -> String {
        self.fields()[..SETTING_COLUMNS].join(",")
    }

    /// What identifies the cell: its settings and the number of images.
    pub fn key(&self) -> String {
        format!("{},{}", self.settings(), self.images)
    }

    /// The CSV line (no newline).
    pub fn to_csv(&self) -> String {
        self.fields().join(",")
    }

    /// Parses a CSV line written by [`Row::to_csv`].
    pub fn parse(line: &str) -> Result<Self> {
        let f: Vec<&str> = line.split(',').collect();
        if f.len() != HEADER.len() {
            bail!("expected {} fields, found {}", HEADER.len(), f.len());
        }
        let opt = |s: &str| -> Result<Option<usize>> {
            Ok(if s.is_empty() { None } else { Some(s.parse()?) })
        };
        Ok(Self {
            method: f[0].into(),
            numerics: f[1].into(),
            matrix: f[2].into(),
            bits: f[3].into(),
            measurements: f[4].parse()?,
            noise_std: f[5].parse()?,
            levels: opt(f[6])?,
            steps_per_level: opt(f[7])?,
            nfe: f[8].parse()?,
            images: f[9].parse()?,
            psnr: f[10].parse()?,
            psnr_se: if f[11].is_empty() {
                None
            } else {
                Some(f[11].parse()?)
            },
            ssim: f[12].parse()?,
            seconds: f[13].parse()?,
            backend: f[14].into(),
        })
    }

    /// `LxK` for the samplers, empty for the baselines.
    pub fn schedule(&self) -> String {
        match (self.levels, self.steps_per_level) {
            (Some(l), Some(k)) => format!("{l}×{k}"),
            _ => String::new(),
        }
    }

    /// The sort key of the tables: bits (linear last), M, method, numerics, NFE.
    fn order(&self) -> (u32, usize, usize, String, usize) {
        let bits = self.bits.parse().unwrap_or(u32::MAX);
        let method = Method::parse(&self.method).map_or(usize::MAX, |m| m as usize);
        (
            bits,
            self.measurements,
            method,
            self.numerics.clone(),
            self.nfe,
        )
    }
}

/// `results.csv`, appended one flushed and synced line per finished cell.
pub struct ResultsFile {
    path: PathBuf,
    file: File,
    images_path: PathBuf,
    images: File,
    per_image: PerImage,
}

impl ResultsFile {
    /// Opens `results.csv` and `images.csv` in `dir`: new files (refusing to replace either unless `resume`),
    /// or, with `resume`, the existing ones, returning the rows `results.csv` already holds. Per-image rows of
    /// a cell that `results.csv` lacks (a run stopped between the two writes) are dropped, as that cell runs
    /// again; a run written before `images.csv` existed gets one for the cells still to run.
    pub fn open(dir: &Path, resume: bool) -> Result<(Self, Vec<Row>)> {
        let path = dir.join("results.csv");
        let images_path = dir.join("images.csv");
        let rows = if path.exists() {
            if !resume {
                bail!(
                    "{} exists: pass --resume to add to it, or choose another --out",
                    path.display()
                );
            }
            read_rows(&path)?
        } else {
            if images_path.exists() {
                bail!(
                    "{} exists without results.csv beside it: choose another --out",
                    images_path.display()
                );
            }
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            std::fs::write(&path, HEADER.join(",") + "\n")
                .with_context(|| format!("writing {}", path.display()))?;
            Vec::new()
        };
        let per_image = prune_images(&images_path, &rows)?;
        let append = |p: &Path| {
            OpenOptions::new()
                .append(true)
                .open(p)
                .with_context(|| format!("opening {}", p.display()))
        };
        Ok((
            Self {
                file: append(&path)?,
                images: append(&images_path)?,
                path,
                images_path,
                per_image,
            },
            rows,
        ))
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The per-image PSNRs of every cell that `images.csv` holds.
    pub fn per_image(&self) -> &PerImage {
        &self.per_image
    }

    /// The per-image PSNRs, closing the files.
    pub fn into_per_image(self) -> PerImage {
        self.per_image
    }

    /// Appends one cell: its images' scores to `images.csv`, then its row to `results.csv`, making sure both
    /// reached the disk.
    pub fn append(&mut self, row: &Row, scores: &[ImageScore]) -> Result<()> {
        let settings = row.settings();
        let lines: String = scores
            .iter()
            .map(|s| {
                format!(
                    "{settings},{},{:.4},{:.5}\n",
                    csv_field(&s.name),
                    s.psnr,
                    s.ssim
                )
            })
            .collect();
        self.images
            .write_all(lines.as_bytes())
            .and_then(|()| self.images.sync_data())
            .with_context(|| format!("appending to {}", self.images_path.display()))?;
        let line = row.to_csv() + "\n";
        self.file
            .write_all(line.as_bytes())
            .and_then(|()| self.file.sync_data())
            .with_context(|| format!("appending to {}", self.path.display()))?;
        self.per_image.insert(
            settings,
            scores.iter().map(|s| (s.name.clone(), s.psnr)).collect(),
        );
        Ok(())
    }
}

/// Makes `images.csv` hold exactly the per-image rows of the cells in `rows`: creates it (header only) when
/// missing, checks its header, and rewrites it without the rows of unfinished cells. Returns what it holds.
fn prune_images(path: &Path, rows: &[Row]) -> Result<PerImage> {
    let header = image_header();
    if !path.exists() {
        std::fs::write(path, header + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
        return Ok(PerImage::new());
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut lines = text.lines();
    if lines.next() != Some(header.as_str()) {
        bail!(
            "{}: not a qcs eval per-image file (its header differs)",
            path.display()
        );
    }
    let finished: BTreeSet<String> = rows.iter().map(Row::settings).collect();
    let mut kept = format!("{header}\n");
    let mut per_image = PerImage::new();
    for (i, line) in lines.enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let (settings, name, psnr) = parse_image_line(line)
            .with_context(|| format!("{}: line {}", path.display(), i + 2))?;
        if finished.contains(&settings) {
            kept.push_str(line);
            kept.push('\n');
            per_image.entry(settings).or_default().push((name, psnr));
        }
    }
    if kept != text {
        write_atomically(path, &kept)?;
    }
    Ok(per_image)
}

/// Each row's paired PSNR difference to the best row (highest mean PSNR) among the rows of its comparison
/// (same matrix, σ, bits and M) that have per-image scores for the same images: the mean over images of
/// (row − best) and its standard error, keyed by [`Row::settings`]. The best row maps to `None`; rows without
/// per-image scores, with a PSNR that is not finite (a diverged chain), or alone in their comparison, are
/// absent.
fn paired_to_best(rows: &[Row], per_image: &PerImage) -> BTreeMap<String, Option<(f64, f64)>> {
    let mut out = BTreeMap::new();
    let comparison = |r: &Row| {
        (
            r.matrix.clone(),
            r.noise_std.to_bits(),
            r.bits.clone(),
            r.measurements,
        )
    };
    let mut seen = BTreeSet::new();
    for r in rows {
        if !seen.insert(comparison(r)) {
            continue;
        }
        let scored: Vec<(&Row, BTreeMap<&str, f64>)> = rows
            .iter()
            .filter(|o| comparison(o) == comparison(r) && o.psnr.is_finite())
            .filter_map(|o| {
                let scores = per_image.get(&o.settings())?;
                Some((o, scores.iter().map(|(n, p)| (n.as_str(), *p)).collect()))
            })
            .collect();
        let Some((best, best_scores)) = scored.iter().max_by(|a, b| a.0.psnr.total_cmp(&b.0.psnr))
        else {
            continue;
        };
        let mut paired = 0;
        for (o, scores) in &scored {
            if std::ptr::eq(*o, *best) {
                continue;
            }
            let same_images = scores.len() == best_scores.len()
                && scores.keys().all(|n| best_scores.contains_key(n));
            if !same_images || scores.len() < 2 {
                continue;
            }
            let d: Vec<f64> = scores.iter().map(|(n, p)| p - best_scores[n]).collect();
            let (mean, se) = mean_se(&d);
            out.insert(o.settings(), Some((mean, se)));
            paired += 1;
        }
        if paired > 0 {
            out.insert(best.settings(), None);
        }
    }
    out
}

/// The rows of an existing `results.csv`.
pub fn read_rows(path: &Path) -> Result<Vec<Row>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut lines = text.lines();
    if lines.next() != Some(HEADER.join(",").as_str()) {
        bail!(
            "{}: not a qcs eval results file (its header differs)",
            path.display()
        );
    }
    lines
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            Row::parse(line).with_context(|| format!("{}: line {}", path.display(), i + 2))
        })
        .collect()
}

/// Writes `text` to `path` through a temporary file and a rename.
pub fn write_atomically(path: &Path, text: &str) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

/// The distinct (matrix, σ) groups of `rows`, in the order they first appear.
fn groups(rows: &[Row]) -> Vec<(String, f64)> {
    let mut seen = Vec::new();
    for r in rows {
        let g = (r.matrix.clone(), r.noise_std);
        if !seen.contains(&g) {
            seen.push(g);
        }
    }
    seen
}

fn sorted_group<'a>(rows: &'a [Row], group: &(String, f64)) -> Vec<&'a Row> {
    let mut members: Vec<&Row> = rows
        .iter()
        .filter(|r| r.matrix == group.0 && r.noise_std == group.1)
        .collect();
    members.sort_by_key(|r| r.order());
    members
}

/// `results.md`: the command line, then one table per (matrix, σ), rows sorted by bits, M, method. Where
/// `per_image` has the scores, the column "Δ best" gives each row's paired PSNR difference (mean ± standard
/// error over the same images) to the best row of the same bits and M.
pub fn markdown(rows: &[Row], per_image: &PerImage, command: &str) -> String {
    let paired = paired_to_best(rows, per_image);
    let mut out = format!("# qcs eval\n\n```sh\n{command}\n```\n\n");
    if rows.iter().any(|r| r.images != rows[0].images) {
        out.push_str("Rows of earlier runs with other image counts are included (see the `images` column).\n\n");
    }
    for group in groups(rows) {
        out.push_str(&format!("## {} · σ = {}\n\n", group.0, group.1));
        out.push_str("| bits | M | method | numerics | schedule | NFE | PSNR (dB) | ± s.e. | Δ best (paired) | SSIM | images | seconds | backend |\n");
        out.push_str("|---|--:|---|---|---|--:|--:|--:|--:|--:|--:|--:|---|\n");
        for r in sorted_group(rows, &group) {
            let delta = match paired.get(&r.settings()) {
                Some(None) => "best".to_string(),
                Some(Some((mean, se))) => format!("{mean:+.2} ± {se:.2}"),
                None => String::new(),
            };
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {:.2} | {} | {delta} | {:.3} | {} | {:.1} | {} |\n",
                r.bits,
                r.measurements,
                r.method,
                r.numerics,
                r.schedule(),
                if r.nfe > 0 {
                    r.nfe.to_string()
                } else {
                    String::new()
                },
                r.psnr,
                r.psnr_se.map_or_else(String::new, |se| format!("{se:.2}")),
                r.ssim,
                r.images,
                r.seconds,
                r.backend
            ));
        }
        out.push('\n');
    }
    out
}

/// The terminal summary: for each (matrix, σ, bits), one line per method variant with its PSNR at every M.
pub fn summary(rows: &[Row]) -> String {
    let mut out = String::new();
    for group in groups(rows) {
        let members = sorted_group(rows, &group);
        let bit_depths: Vec<String> = members.iter().fold(Vec::new(), |mut acc, r| {
            if !acc.contains(&r.bits) {
                acc.push(r.bits.clone());
            }
            acc
        });
        for bits in bit_depths {
            let of_bits: Vec<&&Row> = members.iter().filter(|r| r.bits == bits).collect();
            let ms: BTreeSet<usize> = of_bits.iter().map(|r| r.measurements).collect();
            let depth = if bits == "linear" {
                bits.clone()
            } else {
                format!("{bits}-bit")
            };
            out.push_str(&format!(
                "{} · σ = {} · {depth} · PSNR (dB)\n{:<32}",
                group.0, group.1, "method"
            ));
            for m in &ms {
                out.push_str(&format!(" {:>8}", format!("M={m}")));
            }
            out.push('\n');
            let mut variants: Vec<String> = Vec::new();
            for r in &of_bits {
                let v = variant(r);
                if !variants.contains(&v) {
                    variants.push(v);
                }
            }
            for v in variants {
                out.push_str(&format!("{v:<32}"));
                for m in &ms {
                    let cell = of_bits
                        .iter()
                        .find(|r| variant(r) == v && r.measurements == *m)
                        .map_or("–".to_string(), |r| format!("{:.2}", r.psnr));
                    out.push_str(&format!(" {cell:>8}"));
                }
                out.push('\n');
            }
            out.push('\n');
        }
    }
    out
}

/// A method with its numerics and schedule, e.g. `qcs-sgm stable 58×2`.
fn variant(r: &Row) -> String {
    [r.method.clone(), r.numerics.clone(), r.schedule()]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(method: &str, m: usize, psnr: f64) -> Row {
        Row {
            method: method.into(),
            numerics: if method == "qcs-sgm" {
                "stable".into()
            } else {
                String::new()
            },
            matrix: "ill-conditioned:1000".into(),
            bits: "1".into(),
            measurements: m,
            noise_std: 0.05,
            levels: (method == "qcs-sgm").then_some(58),
            steps_per_level: (method == "qcs-sgm").then_some(2),
            nfe: if method == "qcs-sgm" { 117 } else { 0 },
            images: 10,
            psnr,
            psnr_se: Some(0.25),
            ssim: 0.5,
            seconds: 1.25,
            backend: "flex".into(),
        }
    }

    #[test]
    fn image_names_are_quoted_only_where_csv_needs_it() {
        assert_eq!(
            csv_field("t10k-images-idx3-ubyte#12"),
            "t10k-images-idx3-ubyte#12"
        );
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"7\""), "\"say \"\"7\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
    }

    #[test]
    fn an_image_line_parses_back_with_a_quoted_name() {
        let r = row("qcs-sgm", 100, 15.5);
        for name in ["t10k#3", "a,b", "say \"7\""] {
            let line = format!("{},{},12.3456,0.81234", r.settings(), csv_field(name));
            let (settings, parsed, psnr) = parse_image_line(&line).unwrap();
            assert_eq!(
                (settings.as_str(), parsed.as_str(), psnr),
                (r.settings().as_str(), name, 12.3456)
            );
        }
        assert!(parse_image_line("qcs-sgm,stable,12.0,0.5").is_err());
        assert!(parse_image_line(&format!("{},x,12.0,high", r.settings())).is_err());
    }

    #[test]
    fn the_paired_difference_to_the_best_row_is_the_mean_and_se_over_images() {
        // Two samplers and a baseline on three images, at M = 100; a lone row at M = 200.
        let (a, mut b, c, lone) = (
            row("qcs-sgm", 100, 20.0),
            row("qcs-sgm", 100, 19.0),
            row("biht", 100, 10.0),
            row("qcs-sgm", 200, 25.0),
        );
        b.numerics = "reference".into();
        let scores = |p: [f64; 3]| -> Vec<(String, f64)> {
            ["x", "y", "z"]
                .iter()
                .map(|n| n.to_string())
                .zip(p)
                .collect()
        };
        let per_image = PerImage::from([
            (a.settings(), scores([19.0, 20.0, 21.0])),
            // Listed in another order: pairing goes by name.
            (
                b.settings(),
                vec![("z".into(), 21.0), ("x".into(), 18.0), ("y".into(), 18.0)],
            ),
            (c.settings(), scores([10.0, 10.0, 10.0])),
            (lone.settings(), scores([25.0, 25.0, 25.0])),
        ]);
        let rows = vec![a.clone(), b.clone(), c.clone(), lone.clone()];
        let paired = paired_to_best(&rows, &per_image);
        assert_eq!(paired[&a.settings()], None, "a is the best");
        // b − a per image: −1, −2, 0: mean −1, sd 1, se 1/√3.
        let (mean, se) = paired[&b.settings()].unwrap();
        assert!((mean + 1.0).abs() < 1e-12 && (se - 1.0 / 3f64.sqrt()).abs() < 1e-12);
        // c − a: −9, −10, −11: mean −10, se 1/√3.
        let (mean, se) = paired[&c.settings()].unwrap();
        assert!((mean + 10.0).abs() < 1e-12 && (se - 1.0 / 3f64.sqrt()).abs() < 1e-12);
        assert!(
            !paired.contains_key(&lone.settings()),
            "nothing to pair with"
        );
        let md = markdown(&rows, &per_image, "qcs eval");
        assert!(
            md.contains("| best |") && md.contains("| -1.00 ± 0.58 |"),
            "{md}"
        );

        // A diverged row (NaN) is never the best, and is not paired.
        let mut diverged = b.clone();
        diverged.psnr = f64::NAN;
        let mut with_nan = per_image.clone();
        with_nan.insert(b.settings(), scores([f64::NAN, 30.0, 30.0]));
        let paired = paired_to_best(&[a.clone(), diverged, c.clone()], &with_nan);
        assert_eq!(paired[&a.settings()], None);
        assert!(!paired.contains_key(&b.settings()));

        // Other images for one row: that row is left out, not paired with the wrong ones.
        let mut other = per_image.clone();
        other.insert(
            b.settings(),
            vec![("x".into(), 1.0), ("y".into(), 1.0), ("w".into(), 1.0)],
        );
        let paired = paired_to_best(&rows, &other);
        assert!(!paired.contains_key(&b.settings()) && paired.contains_key(&c.settings()));
    }

    #[test]
    fn a_row_survives_the_csv_round_trip() {
        for r in [row("qcs-sgm", 100, 15.5), row("biht", 200, 9.25)] {
            let line = r.to_csv();
            assert_eq!(line.split(',').count(), HEADER.len());
            assert_eq!(Row::parse(&line).unwrap(), r);
        }
        let mut single = row("biht", 100, 9.0);
        single.psnr_se = None;
        assert_eq!(Row::parse(&single.to_csv()).unwrap(), single);
    }

    #[test]
    fn the_key_ignores_results_but_not_settings() {
        let a = row("qcs-sgm", 100, 15.5);
        let mut b = a.clone();
        b.psnr = 3.0;
        b.seconds = 99.0;
        assert_eq!(a.key(), b.key());
        b.measurements = 200;
        assert_ne!(a.key(), b.key());
    }

    #[test]
    fn the_tables_sort_by_bits_then_m_then_method() {
        let rows = vec![
            row("biht", 200, 9.0),
            row("qcs-sgm", 200, 16.0),
            row("biht", 100, 8.0),
        ];
        let md = markdown(&rows, &PerImage::new(), "qcs eval");
        let first = md.find("| 1 | 100 | biht").unwrap();
        let second = md.find("| 1 | 200 | qcs-sgm").unwrap();
        let third = md.find("| 1 | 200 | biht").unwrap();
        assert!(first < second && second < third, "{md}");
        let text = summary(&rows);
        assert!(text.contains("qcs-sgm stable 58×2"), "{text}");
        assert!(text.contains("M=100") && text.contains("–"), "{text}");
    }
}
