//! Wiring shared by the commands: models, operators, quantizers and images from the config and the flags.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use burn::prelude::*;
use burn::tensor::FloatDType;
use qcs_data::{Dataset, ImageSpec};
use qcs_score_net::{NcsnV2, NcsnV2Config};
use qcs_sensing::{Family, ImageShape, OperatorSpec, QuantizerSpec, StepRule};

use crate::args::{ImageSelection, MeasurementFlags, Precision};
use crate::config::{Config, MeasurementSection};

/// The network configuration stored in a weight file: ngf from `begin_conv.weight` ([ngf, C, 3, 3]) and the
/// number of levels from `sigmas`; image size and σ range from the config.
pub fn model_config(path: &Path, config: &Config) -> Result<NcsnV2Config> {
    let stored = qcs_score_net::stored_shape(path)?;
    Ok(NcsnV2Config {
        ngf: stored.ngf,
        channels: stored.channels,
        image_size: config.model.image_size,
        num_levels: stored.num_levels,
        sigma_begin: config.model.sigma_begin,
        sigma_end: config.model.sigma_end,
    })
}

/// A loaded score network and its configuration.
pub struct Prior {
    /// The network, its weights loaded.
    pub model: NcsnV2,
    /// Its configuration (ngf and levels from the weight file, the rest from the config).
    pub net: NcsnV2Config,
}

/// Loads the score network named by `--model` or the config.
pub fn load_model(
    flag: Option<&PathBuf>,
    config: &Config,
    precision: Precision,
    device: &Device,
) -> Result<(NcsnV2, NcsnV2Config)> {
    let path = flag.unwrap_or(&config.model.path);
    if !path.exists() {
        bail!(
            "model file {} does not exist (give --model, or train one with `qcs train`)",
            path.display()
        );
    }
    let net_config = model_config(path, config)?;
    let model = qcs_score_net::load_safetensors(&net_config, path, device)
        .with_context(|| format!("loading model {}", path.display()))?;
    let model = match precision {
        Precision::F32 => model,
        Precision::F16 => model
            .with_precision(FloatDType::F16)
            .context("--precision")?,
    };
    Ok((model.with_channels_last_weights(), net_config))
}

/// The config's measurement settings with the flags applied.
pub fn measurement_settings(
    flags: &MeasurementFlags,
    seed: Option<u64>,
    config: &Config,
) -> MeasurementSection {
    let c = &config.measurement;
    MeasurementSection {
        measurements: flags.measurements.unwrap_or(c.measurements),
        bits: flags.bits.unwrap_or(c.bits),
        noise_std: flags.noise_std.unwrap_or(c.noise_std),
        matrix: flags.matrix.clone().unwrap_or_else(|| c.matrix.clone()),
        kappa: flags.kappa.unwrap_or(c.kappa),
        rho: flags.rho.unwrap_or(c.rho),
        seed: seed.unwrap_or(c.seed),
    }
}

/// The operator spec for images of `image` shape.
pub fn operator_spec(m: &MeasurementSection, image: ImageShape) -> Result<OperatorSpec> {
    let family = Family::parse(&m.matrix, m.kappa, m.rho).context("--matrix")?;
    let spec = OperatorSpec {
        family,
        measurements: m.measurements,
        image,
        seed: m.seed,
    };
    spec.validate().context("--measurements / --matrix")?;
    Ok(spec)
}

/// The quantizer for `--bits` / `--no-quantize` / `--full-scale`.
pub fn quantizer(m: &MeasurementSection, flags: &MeasurementFlags) -> Result<QuantizerSpec> {
    if !(m.noise_std.is_finite() && m.noise_std >= 0.0) {
        bail!(
            "measurement.noise_std (--noise-std) must be a number ≥ 0, got {}",
            m.noise_std
        );
    }
    if let Some(width) = flags.full_scale {
        if !(width.is_finite() && width > 0.0) {
            bail!("--full-scale must be a positive width, got {width}");
        }
    }
    let step = flags
        .full_scale
        .map_or(StepRule::FromData, |width| StepRule::FullScale { width });
    let bits = (!flags.no_quantize).then_some(m.bits);
    let q = QuantizerSpec::from_bits(bits, step).context("--bits")?;
    q.validate().context("--full-scale")?;
    Ok(q)
}

/// A human name of the operator family with its parameter.
pub fn matrix_label(family: &Family) -> String {
    match family {
        Family::IllConditioned { kappa } => format!("ill-conditioned(κ={kappa})"),
        Family::Correlated { rho } => format!("correlated(ρ={rho})"),
        other => other.name().to_string(),
    }
}

/// The image files that `paths` name: files as given, folders expanded to their PNG/JPEG files sorted by name.
pub fn image_paths(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let found = qcs_data::image_files(path)
                .with_context(|| format!("listing {}", path.display()))?;
            if found.is_empty() {
                bail!("{}: no PNG or JPEG images in this folder", path.display());
            }
            files.extend(found);
        } else if path.exists() {
            files.push(path.clone());
        } else {
            bail!("{}: no such image file or folder", path.display());
        }
    }
    Ok(files)
}

/// Reads images (files or folders) for a model of `spec`. Images of another size are an error naming both
/// sizes unless `resize`; images of another channel count are converted, and the conversion is reported.
pub fn read_images(paths: &[PathBuf], spec: ImageSpec, resize: bool) -> Result<Dataset> {
    let files = image_paths(paths)?;
    if !resize {
        for file in &files {
            let (w, h) = image::image_dimensions(file)
                .with_context(|| format!("{}: unreadable image", file.display()))?;
            if (h as usize, w as usize) != (spec.height, spec.width) {
                bail!(
                    "{}: the image is {w}×{h} but the model takes {}×{}; pass --resize to resize and crop it",
                    file.display(),
                    spec.width,
                    spec.height
                );
            }
        }
    }
    let loaded = qcs_data::read_image_files(&files, spec).context("reading images")?;
    if loaded.channel_conversions > 0 {
        eprintln!(
            "note: converted {} image(s) to {} channel(s) for this model",
            loaded.channel_conversions, spec.channels
        );
    }
    if loaded.resized > 0 {
        eprintln!(
            "note: resized and cropped {} image(s) to {}×{}",
            loaded.resized, spec.width, spec.height
        );
    }
    Ok(loaded.dataset)
}

/// The image layout a model takes.
pub fn image_spec(net: &NcsnV2Config) -> ImageSpec {
    ImageSpec::new(net.channels, net.image_size, net.image_size)
}

/// The same layout as the sensing crate's shape.
pub fn image_shape(net: &NcsnV2Config) -> Result<ImageShape> {
    Ok(ImageShape::new(
        net.channels,
        net.image_size,
        net.image_size,
    )?)
}

/// The images of `selection`: `--images` (PNG/JPEG files and folders, or one IDX file; default: the
/// config's shipped images), `--skip` and `--count`.
pub fn select_images(
    selection: &ImageSelection,
    config: &Config,
    spec: ImageSpec,
) -> Result<Dataset> {
    let paths = if selection.images.is_empty() {
        vec![config.model.default_images()]
    } else {
        selection.images.clone()
    };
    let (skip, count) = (selection.skip, selection.count);
    let wanted = |available: usize| -> Result<std::ops::Range<usize>> {
        let end = count.map_or(available, |c| (skip + c).min(available));
        if count == Some(0) || skip >= end {
            bail!(
                "--skip {skip} --count {}: no images left of the {available} given",
                count.map_or("all".into(), |c| c.to_string())
            );
        }
        Ok(skip..end)
    };
    if let [single] = paths.as_slice() {
        if single.is_file() && !is_image_file(single) {
            return idx_images(single, spec, &wanted);
        }
    }
    let files = image_paths(&paths).context("--images")?;
    let range = wanted(files.len())?;
    read_images(&files[range], spec, selection.resize).context("--images")
}

fn is_image_file(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| ["png", "jpg", "jpeg"].contains(&e.to_ascii_lowercase().as_str()))
}

/// Images `range` of an IDX file, which must hold images of `spec`.
fn idx_images(
    path: &Path,
    spec: ImageSpec,
    wanted: &dyn Fn(usize) -> Result<std::ops::Range<usize>>,
) -> Result<Dataset> {
    let data =
        qcs_data::read_idx_images(path).with_context(|| format!("--images {}", path.display()))?;
    if data.spec() != spec {
        let s = data.spec();
        bail!(
            "--images {}: the images are {}×{}×{} but the model takes {}×{}×{}",
            path.display(),
            s.channels,
            s.height,
            s.width,
            spec.channels,
            spec.height,
            spec.width
        );
    }
    let range = wanted(data.len())?;
    let n = spec.len();
    Ok(Dataset::new(
        spec,
        data.pixels()[range.start * n..range.end * n].to_vec(),
        data.names()[range].to_vec(),
    )?)
}
