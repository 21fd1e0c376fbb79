//! NCSNv2 cost on the CPU backends: ms per network evaluation at ngf 32/64/128 and batch 1/10/100 (28×28×1),
//! and one denoising-score-matching training step (forward, backward, Adam) at batch 128.
//!
//! Run: `cargo bench -p qcs-score-net --bench network [-- --quick]`. Each figure is the median of repeated runs
//! after one warm-up run, with the result read back to the host before the clock stops. `--quick` measures
//! ngf 32 only. Writes the table to standard output.

use std::time::Instant;

use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::Distribution;
use qcs_score_net::NcsnV2Config;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Runs `f` once to warm up, then `reps` times; returns the median in ms.
fn time_ms(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    median(
        (0..reps)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect(),
    )
}

fn config(ngf: usize) -> NcsnV2Config {
    NcsnV2Config {
        ngf,
        channels: 1,
        image_size: 28,
        num_levels: 232,
        sigma_begin: 50.0,
        sigma_end: 0.01,
    }
}

fn forward_ms(device: &Device, ngf: usize, batch: usize) -> f64 {
    let net = config(ngf).init(device).expect("valid config");
    let x: Tensor<4> = Tensor::random([batch, 1, 28, 28], Distribution::Default, device);
    let levels: Tensor<1, Int> = Tensor::zeros([batch], device);
    let reps = if ngf * batch >= 6400 { 3 } else { 7 };
    time_ms(reps, || {
        let _ = net.forward(x.clone(), levels.clone()).into_data();
    })
}

fn train_step_ms(device: &Device, ngf: usize, batch: usize) -> f64 {
    let device = device.clone().autodiff();
    let mut net = config(ngf).init(&device).expect("valid config");
    let mut optim = AdamConfig::new().with_epsilon(1e-8).init();
    let x: Tensor<4> = Tensor::random([batch, 1, 28, 28], Distribution::Default, &device);
    let eps: Tensor<4> =
        Tensor::random([batch, 1, 28, 28], Distribution::Normal(0.0, 1.0), &device);
    let levels: Tensor<1, Int> = Tensor::zeros([batch], &device);
    let sigma = 50.0f32;
    time_ms(3, || {
        let noisy = x.clone() + eps.clone() * sigma;
        let residual = net.forward(noisy, levels.clone()) * sigma + eps.clone();
        let loss = residual.powi_scalar(2).sum() * (0.5 / batch as f32);
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        net = optim.step(1e-4, net.clone(), grads);
        let _ = loss.into_data();
    })
}

#[allow(deprecated)]
fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let ngfs: &[usize] = if quick { &[32] } else { &[32, 64, 128] };
    let backends = [("flex", Device::flex()), ("ndarray", Device::ndarray())];
    println!(
        "| backend | ngf | forward b=1 (ms) | b=10 (ms) | b=100 (ms) | train step b=128 (ms) |"
    );
    println!("|---|---|---|---|---|---|");
    for (name, device) in &backends {
        for &ngf in ngfs {
            let f: Vec<String> = [1, 10, 100]
                .iter()
                .map(|&b| format!("{:.1}", forward_ms(device, ngf, b)))
                .collect();
            // ndarray's backward pass is an order of magnitude slower: time its training step at ngf 32 only.
            let train = if *name == "flex" || ngf == 32 {
                format!("{:.0}", train_step_ms(device, ngf, 128))
            } else {
                "—".to_string()
            };
            println!(
                "| {name} | {ngf} | {} | {} | {} | {train} |",
                f[0], f[1], f[2]
            );
        }
    }
}
