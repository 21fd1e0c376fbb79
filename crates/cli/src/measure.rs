//! `qcs measure`: images → a measurement file (the simulation half of a reconstruction).

use anyhow::{Context, Result};
use burn::prelude::*;
use qcs_data::ImageSpec;
use qcs_sensing::{build_operator, simulate, ImageShape};

use crate::args::MeasureArgs;
use crate::backend;
use crate::config::Config;
use crate::setup::{matrix_label, measurement_settings, operator_spec, quantizer, read_images};
use crate::stdout::outln;

/// Runs `qcs measure`.
pub fn run(args: &MeasureArgs) -> Result<()> {
    let config = Config::load(&args.config)?;
    let size = config.model.image_size;
    let spec = ImageSpec::new(config.model.channels, size, size);
    let shape = ImageShape::new(spec.channels, size, size)?;
    let images = read_images(&args.images, spec, args.resize).context("--images")?;
    let m = measurement_settings(&args.measurement, args.seed, &config);
    let op_spec = operator_spec(&m, shape)?;
    let q = quantizer(&m, &args.measurement)?;
    let device = backend::device();
    let op = build_operator(&op_spec, &device)?;
    let x = Tensor::from_data(
        TensorData::new(images.pixels().to_vec(), [images.len(), shape.numel()]),
        &device,
    );
    let set = simulate(
        op.as_ref(),
        x,
        q,
        m.noise_std,
        m.seed,
        images.names().to_vec(),
    )?;
    qcs_sensing::file::save(&set, &args.out)
        .with_context(|| format!("writing {}", args.out.display()))?;
    outln!(
        "wrote {}: {} image(s) of {shape}, M = {}, {}, {}, σ = {}",
        args.out.display(),
        set.batch(),
        set.measurements(),
        set.bits()
            .map_or("linear".to_string(), |b| format!("{b}-bit")),
        matrix_label(&op_spec.family),
        m.noise_std
    );
    Ok(())
}
