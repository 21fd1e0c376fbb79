//! `qcs loss`: the denoising-score-matching loss of score networks on held-out images, band by band of
//! noise levels, with the paired differences between the networks: a measure of a prior that needs no
//! sampling.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use qcs_score_net::train::{held_out_loss, HeldOutConfig, HeldOutLoss, SIGMA_TOLERANCE};

use crate::args::{LossArgs, Precision};
use crate::backend;
use crate::config::Config;
use crate::results::{csv_field, mean_se, write_atomically};
use crate::setup::{image_spec, load_model, select_images};
use crate::stdout::{outln, print};

/// One network's losses and what they are for.
struct Scored {
    path: PathBuf,
    ngf: usize,
    sigmas: Vec<f32>,
    loss: HeldOutLoss,
}

/// `a − b`, element by element.
fn minus(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter().zip(b).map(|(x, y)| x - y).collect()
}

/// Column letter of network `i`: A, B, …
fn label(i: usize) -> String {
    char::from_u32('A' as u32 + (i % 26) as u32).map_or_else(|| i.to_string(), String::from)
}

/// Checks that network `other` has the `first` one's noise schedule, so that the draws pair up.
fn check_schedule(first: &Scored, other: &Path, sigmas: &[f32]) -> Result<()> {
    if sigmas.len() != first.sigmas.len() {
        bail!(
            "{} has {} noise levels and {} has {}: the networks must share a schedule to be compared",
            other.display(),
            sigmas.len(),
            first.path.display(),
            first.sigmas.len()
        );
    }
    let differs = first
        .sigmas
        .iter()
        .zip(sigmas)
        .position(|(a, b)| (a - b).abs() > SIGMA_TOLERANCE as f32 * a.abs().max(b.abs()));
    if let Some(level) = differs {
        bail!(
            "{} and {} have other noise schedules (level {level}: σ {} against {}): the networks must share a schedule to be compared",
            first.path.display(),
            other.display(),
            first.sigmas[level],
            sigmas[level]
        );
    }
    Ok(())
}

/// The table printed on standard output.
fn table(scored: &[Scored], images: usize, args: &LossArgs) -> String {
    let first = &scored[0];
    let mut text = String::new();
    let _ = writeln!(
        text,
        "DSM loss on {images} images, one noise level and noise draw per image and band (seed {}): mean ± standard error",
        args.seed
    );
    for (i, s) in scored.iter().enumerate() {
        let _ = writeln!(text, "{}: {} (ngf {})", label(i), s.path.display(), s.ngf);
    }
    let mut header = format!("{:<5} {:<9} {:<17}", "band", "levels", "σ");
    for i in 0..scored.len() {
        let _ = write!(header, " {:>17}", label(i));
    }
    for i in 1..scored.len() {
        let _ = write!(
            header,
            " {:>27}",
            format!("{} − {} (paired)", label(i), label(0))
        );
    }
    let _ = writeln!(text, "{header}");
    let bands = &first.loss.bands;
    let rows = bands
        .iter()
        .enumerate()
        .map(|(b, band)| {
            let sigma = |level: usize| first.sigmas[level];
            (
                b.to_string(),
                format!("{}–{}", band.start, band.end - 1),
                format!("{:.4}–{:.4}", sigma(band.start), sigma(band.end - 1)),
                scored.iter().map(|s| s.loss.band(b)).collect::<Vec<_>>(),
            )
        })
        .chain(std::iter::once((
            "all".to_string(),
            String::new(),
            String::new(),
            scored.iter().map(|s| s.loss.per_image()).collect(),
        )));
    for (band, levels, sigmas, values) in rows {
        let mut line = format!("{band:<5} {levels:<9} {sigmas:<17}");
        for v in &values {
            let (m, se) = mean_se(v);
            let _ = write!(line, " {:>17}", format!("{m:.4} ± {se:.4}"));
        }
        for v in &values[1..] {
            let d = minus(v, &values[0]);
            let (m, se) = mean_se(&d);
            let lower = d.iter().filter(|x| **x < 0.0).count();
            let _ = write!(
                line,
                " {:>27}",
                format!("{m:+.4} ± {se:.4} ({lower} lower)")
            );
        }
        let _ = writeln!(text, "{line}");
    }
    text
}

/// Every image's loss in every band, one column per network.
fn csv(scored: &[Scored], names: &[String]) -> String {
    let first = &scored[0];
    let bands = first.loss.bands.len();
    let mut text = String::from("image,band,level,sigma");
    for s in scored {
        let _ = write!(text, ",{}", csv_field(&s.path.display().to_string()));
    }
    text.push('\n');
    for (i, name) in names.iter().enumerate() {
        for b in 0..bands {
            let level = first.loss.levels[i * bands + b];
            let _ = write!(
                text,
                "{},{b},{level},{}",
                csv_field(name),
                first.sigmas[level]
            );
            for s in scored {
                let _ = write!(text, ",{}", s.loss.losses[i * bands + b]);
            }
            text.push('\n');
        }
    }
    text
}

/// Runs `qcs loss`.
pub fn run(args: &LossArgs) -> Result<()> {
    let config = Config::load(&args.config)?;
    let paths = if args.model.is_empty() {
        vec![config.model.path.clone()]
    } else {
        args.model.clone()
    };
    let settings = HeldOutConfig {
        bands: args.bands,
        batch: args.batch,
        seed: args.seed,
        first_image: args.selection.skip,
    };
    let device = backend::device();
    let mut data = None;
    let mut scored: Vec<Scored> = Vec::with_capacity(paths.len());
    for path in &paths {
        let (model, net) = load_model(Some(path), &config, Precision::F32, &device)?;
        let data = match &mut data {
            Some(data) => data,
            None => data.insert(select_images(&args.selection, &config, image_spec(&net))?),
        };
        let sigmas = model
            .sigmas()
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .map_err(|e| anyhow::anyhow!("reading the noise levels back: {e:?}"))?;
        if let Some(first) = scored.first() {
            check_schedule(first, path, &sigmas)?;
        }
        let bar = ProgressBar::new((data.len() * args.bands) as u64);
        bar.set_style(
            ProgressStyle::with_template(&format!(
                "{{spinner}} {} [{{bar:32}}] {{pos}}/{{len}} noisy images · ETA {{eta}}",
                path.display()
            ))
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        let loss = held_out_loss(&model, &net, data, &settings, |done, _| {
            bar.set_position(done as u64);
        })
        .with_context(|| format!("scoring {}", path.display()))?;
        bar.finish_and_clear();
        scored.push(Scored {
            path: path.clone(),
            ngf: net.ngf,
            sigmas,
            loss,
        });
    }
    let data = data.context("no network given")?;
    print(&table(&scored, data.len(), args))?;
    if let Some(path) = &args.csv {
        write_atomically(path, &csv(&scored, data.names()))?;
        outln!("wrote {}", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mean_and_its_standard_error_are_those_of_the_sample() {
        let (m, se) = mean_se(&[1.0, 2.0, 3.0, 6.0]);
        assert!((m - 3.0).abs() < 1e-12);
        // Sample variance (4 + 1 + 0 + 9)/3 = 14/3; s.e. = √(14/3/4).
        assert!((se - (14.0f64 / 12.0).sqrt()).abs() < 1e-12);
        assert!(mean_se(&[2.0]).1.is_nan());
    }

    fn scored(sigmas: Vec<f32>) -> Scored {
        Scored {
            path: PathBuf::from("a.safetensors"),
            ngf: 8,
            sigmas,
            loss: HeldOutLoss {
                bands: std::iter::once(0..1).collect(),
                levels: vec![0],
                losses: vec![1.0],
            },
        }
    }

    #[test]
    fn networks_pair_only_on_the_same_schedule() {
        let first = scored(vec![1.0, 0.5, 0.25]);
        let b = Path::new("b.safetensors");
        check_schedule(&first, b, &[1.0, 0.500_25, 0.25]).unwrap();
        let shifted = check_schedule(&first, b, &[1.0, 0.5, 0.252]).unwrap_err();
        assert!(shifted.to_string().contains("level 2"), "{shifted}");
        let shorter = check_schedule(&first, b, &[1.0, 0.5]).unwrap_err();
        assert!(
            shorter
                .to_string()
                .contains("b.safetensors has 2 noise levels"),
            "{shorter}"
        );
    }
}
