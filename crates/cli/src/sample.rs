//! `qcs sample`: unconditional annealed Langevin samples from a score network, written as a PNG grid.

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};
use qcs_sampler::sample_posterior;

use crate::args::SampleArgs;
use crate::backend;
use crate::config::{Config, SamplerSection};
use crate::reconstruct::langevin_config;
use crate::setup::{image_shape, image_spec, load_model};
use crate::stdout::outln;

/// Runs `qcs sample`.
pub fn run(args: &SampleArgs) -> Result<()> {
    let config = Config::load(&args.config)?;
    let device = backend::device();
    let (model, net) = load_model(args.model.as_ref(), &config, args.precision, &device)?;
    if args.count == 0 {
        anyhow::bail!("--count must be at least 1");
    }
    let s = &config.sampler;
    let settings = SamplerSection {
        method: "qcs-sgm".into(),
        levels: args.levels.unwrap_or(s.levels.min(net.num_levels)),
        steps_per_level: args.steps_per_level.unwrap_or(s.steps_per_level),
        chains: 1,
        seed: args.seed.unwrap_or(s.seed),
        final_denoise: true,
        ..s.clone()
    };
    let langevin = langevin_config(&settings, net.num_levels)?;
    let total = langevin.nfe(net.num_levels)? - 1;
    let bar = ProgressBar::new(total as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} sampling [{bar:32}] {pos}/{len} steps · {per_sec} · ETA {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let posterior = sample_posterior(
        &model,
        None,
        &langevin,
        args.count,
        image_shape(&net)?,
        &mut |p| bar.set_position(p.step as u64),
    )?;
    bar.finish_and_clear();
    let pixels = posterior
        .mean
        .into_data()
        .try_to_vec_as::<f32>()
        .map_err(|e| anyhow::anyhow!("reading samples back: {e:?}"))?;
    let columns = (args.count as f64).sqrt().ceil() as usize;
    qcs_data::save_grid(&args.out, &pixels, image_spec(&net), columns)?;
    outln!(
        "wrote {} ({} samples, {} NFE each)",
        args.out.display(),
        args.count,
        posterior.nfe
    );
    Ok(())
}
