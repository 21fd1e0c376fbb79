//! Operator apply (forward + adjoint) on the default CPU backend (flex) at the reference problem sizes.
//! Run: `cargo bench -p qcs-sensing --bench operators`. FFHQ-sized structured operators are measured with
//! their peak memory in the `structured_memory` bench.

use burn::prelude::*;
use criterion::{criterion_group, criterion_main, Criterion};
use qcs_sensing::{build_operator, Family, ImageShape, OperatorSpec};

fn spec(family: Family, m: usize, image: [usize; 3]) -> OperatorSpec {
    OperatorSpec {
        family,
        measurements: m,
        image: ImageShape::new(image[0], image[1], image[2]).expect("valid shape"),
        seed: 1,
    }
}

fn bench_apply(
    c: &mut Criterion,
    label: &str,
    family: Family,
    m: usize,
    image: [usize; 3],
    batch: usize,
) {
    let device = Device::flex();
    let op = build_operator(&spec(family, m, image), &device).expect("operator builds");
    let n = image.iter().product::<usize>();
    let x: Tensor<2> = Tensor::random([batch, n], burn::tensor::Distribution::Default, &device);
    let r: Tensor<2> = Tensor::random([batch, m], burn::tensor::Distribution::Default, &device);
    c.bench_function(&format!("{label} forward+adjoint batch {batch}"), |b| {
        b.iter(|| {
            let z = op.forward(x.clone());
            let back = op.adjoint(r.clone());
            (z.into_data(), back.into_data())
        })
    });
}

fn operators(c: &mut Criterion) {
    for batch in [1, 10] {
        bench_apply(
            c,
            "mnist gaussian N=784 M=200",
            Family::Gaussian,
            200,
            [1, 28, 28],
            batch,
        );
        bench_apply(
            c,
            "mnist dct N=784 M=200",
            Family::Dct,
            200,
            [1, 28, 28],
            batch,
        );
        bench_apply(
            c,
            "mnist hadamard N=784 M=200",
            Family::Hadamard,
            200,
            [1, 28, 28],
            batch,
        );
    }
    bench_apply(
        c,
        "celeba gaussian N=12288 M=4000",
        Family::Gaussian,
        4000,
        [3, 64, 64],
        8,
    );
    bench_apply(
        c,
        "celeba dct N=12288 M=4000",
        Family::Dct,
        4000,
        [3, 64, 64],
        8,
    );
    bench_apply(
        c,
        "celeba hadamard N=12288 M=4000",
        Family::Hadamard,
        4000,
        [3, 64, 64],
        8,
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = operators
}
criterion_main!(benches);
