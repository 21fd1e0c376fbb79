//! NCSNv2 cost on the CPU backends (28×28×1 images): ms per network evaluation at ngf 32/64/128
//! and batch 1/10/100, and ms per denoising-score-matching training step (forward, backward,
//! Adam) at batch 128.
//!
//! Run: `cargo bench -p qcs-score-net --features flex --bench network [-- OPTIONS]` (`--profile
//! test` reuses the test build). Each figure is the median of the timed runs after one warm-up
//! run, with the result read back to the host before the clock stops. One table row per
//! measurement, printed as soon as it is taken, so rows can also be run one at a time:
//!
//! * `--quick`: ngf 32 only.
//! * `--backend flex|ndarray`: one backend (default both).
//! * `--ngf 32,64,128`: base widths.
//! * `--batch 1,10,100`: forward batches; `--batch none` for no forward rows.
//! * `--train-batch 128`: batch of the training step; `--train-batch none` for no training row.
//!   Without this option ndarray's training step (about 40× slower than flex's) is timed at
//!   ngf 32 only.
//! * `--reps N`: timed runs (default 7, and 3 for rows of ngf × batch ≥ 6400 and for training).

use std::process::ExitCode;
use std::time::Instant;

use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::Distribution;
use qcs_score_net::NcsnV2Config;

/// What to measure, from the command line.
#[derive(Debug)]
struct Options {
    backends: Vec<&'static str>,
    ngfs: Vec<usize>,
    batches: Vec<usize>,
    train_batch: Option<usize>,
    train_batch_given: bool,
    reps: Option<usize>,
}

impl Options {
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Self, String> {
        let mut options = Self {
            backends: vec!["flex", "ndarray"],
            ngfs: vec![32, 64, 128],
            batches: vec![1, 10, 100],
            train_batch: Some(128),
            train_batch_given: false,
            reps: None,
        };
        while let Some(arg) = args.next() {
            let mut value = || args.next().ok_or(format!("{arg} needs a value"));
            match arg.as_str() {
                // cargo bench passes --bench to every bench binary.
                "--bench" => {}
                "--quick" => options.ngfs = vec![32],
                "--backend" => {
                    let name = value()?;
                    options.backends = match name.as_str() {
                        "flex" => vec!["flex"],
                        "ndarray" => vec!["ndarray"],
                        _ => return Err(format!("unknown backend {name}")),
                    };
                }
                "--ngf" => options.ngfs = numbers(&value()?)?,
                "--batch" => options.batches = numbers(&value()?)?,
                "--train-batch" => {
                    options.train_batch = numbers(&value()?)?.first().copied();
                    options.train_batch_given = true;
                }
                "--reps" => options.reps = numbers(&value()?)?.first().copied(),
                _ => return Err(format!("unknown argument {arg}")),
            }
        }
        Ok(options)
    }

    /// Timed runs of a row costing about `ngf × batch`.
    fn reps(&self, ngf: usize, batch: usize) -> usize {
        self.reps.unwrap_or(if ngf * batch >= 6400 { 3 } else { 7 })
    }
}

/// `1,10,100` as numbers; `none` as none.
fn numbers(list: &str) -> Result<Vec<usize>, String> {
    if list == "none" {
        return Ok(Vec::new());
    }
    list.split(',')
        .map(|n| match n.trim().parse() {
            Ok(value) if value > 0 => Ok(value),
            _ => Err(format!("`{n}` is not a positive number")),
        })
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Runs `f` once to warm up, then `reps` times; returns the median in ms.
fn time_ms(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    median(
        (0..reps.max(1))
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect(),
    )
}

fn config(ngf: usize) -> NcsnV2Config {
    NcsnV2Config::new().with_ngf(ngf)
}

fn forward_ms(device: &Device, ngf: usize, batch: usize, reps: usize) -> f64 {
    let net = config(ngf).init(device).expect("valid config");
    let x: Tensor<4> = Tensor::random([batch, 1, 28, 28], Distribution::Default, device);
    let levels: Tensor<1, Int> = Tensor::zeros([batch], device);
    time_ms(reps, || {
        let _ = net.forward(x.clone(), levels.clone()).into_data();
    })
}

fn train_step_ms(device: &Device, ngf: usize, batch: usize, reps: usize) -> f64 {
    let device = device.clone().autodiff();
    let mut net = config(ngf).init(&device).expect("valid config");
    let mut optim = AdamConfig::new().with_epsilon(1e-8).init();
    let x: Tensor<4> = Tensor::random([batch, 1, 28, 28], Distribution::Default, &device);
    let eps: Tensor<4> =
        Tensor::random([batch, 1, 28, 28], Distribution::Normal(0.0, 1.0), &device);
    let levels: Tensor<1, Int> = Tensor::zeros([batch], &device);
    let sigma = 50.0f32;
    time_ms(reps, || {
        let noisy = x.clone() + eps.clone() * sigma;
        let residual = net.forward(noisy, levels.clone()) * sigma + eps.clone();
        let loss = residual.powi_scalar(2).sum() * (0.5 / batch as f32);
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        net = optim.step(1e-4, net.clone(), grads);
        let _ = loss.into_data();
    })
}

#[allow(deprecated)]
fn device(backend: &str) -> Device {
    match backend {
        "ndarray" => Device::ndarray(),
        _ => Device::flex(),
    }
}

fn row(backend: &str, ngf: usize, pass: &str, batch: usize, reps: usize, ms: f64) {
    println!(
        "| {backend} | {ngf} | {pass} | {batch} | {reps} | {ms:.1} | {:.2} |",
        ms / batch as f64
    );
}

fn main() -> ExitCode {
    let options = match Options::parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("network bench: {message} (see the header of benches/network.rs)");
            return ExitCode::FAILURE;
        }
    };
    println!("| backend | ngf | pass | batch | timed runs | ms (median) | ms per image |");
    println!("|---|---|---|---|---|---|---|");
    for &backend in &options.backends {
        let device = device(backend);
        for &ngf in &options.ngfs {
            for &batch in &options.batches {
                let reps = options.reps(ngf, batch);
                let ms = forward_ms(&device, ngf, batch, reps);
                row(backend, ngf, "forward", batch, reps, ms);
            }
            let skip = !options.train_batch_given && backend == "ndarray" && ngf > 32;
            if let (Some(batch), false) = (options.train_batch, skip) {
                let reps = options.reps.unwrap_or(3);
                let ms = train_step_ms(&device, ngf, batch, reps);
                row(backend, ngf, "train step", batch, reps, ms);
            }
        }
    }
    ExitCode::SUCCESS
}
