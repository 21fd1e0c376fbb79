//! FFHQ-sized structured operators (N = 3·256² = 196,608, M = 24,576): apply time and the process's peak
//! resident memory, which must stay under 100 MB. Run: `cargo bench -p qcs-sensing --bench structured_memory`.

use burn::prelude::*;
use criterion::{criterion_group, criterion_main, Criterion};
use qcs_sensing::{build_operator, Family, ImageShape, OperatorSpec};

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<f64>().ok())
            })
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn structured(c: &mut Criterion) {
    let device = Device::flex();
    for family in [Family::Dct, Family::Hadamard] {
        let spec = OperatorSpec {
            family,
            measurements: 24_576,
            image: ImageShape::new(3, 256, 256).expect("valid shape"),
            seed: 1,
        };
        let op = build_operator(&spec, &device).expect("operator builds");
        let x: Tensor<2> =
            Tensor::random([1, spec.n()], burn::tensor::Distribution::Default, &device);
        let r: Tensor<2> =
            Tensor::random([1, 24_576], burn::tensor::Distribution::Default, &device);
        c.bench_function(
            &format!("ffhq {} forward+adjoint batch 1", family.name()),
            |b| {
                b.iter(|| {
                    (
                        op.forward(x.clone()).into_data(),
                        op.adjoint(r.clone()).into_data(),
                    )
                })
            },
        );
        println!(
            "peak resident memory after ffhq {}: {:.1} MB",
            family.name(),
            peak_rss_mb()
        );
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = structured
}
criterion_main!(benches);
