//! One likelihood score per call on the default CPU backend (flex): QCS-SGM at the MNIST and CelebA sizes
//! (dense and DCT) and QCS-SGM+ EP per Langevin step at M = 400 and M = 4000, batch 10.
//! Run: `cargo bench -p qcs-likelihood --bench scores`.

use burn::prelude::*;
use criterion::{criterion_group, criterion_main, Criterion};
use qcs_likelihood::{EpConfig, EpScore, LikelihoodScore, Observation, QcsSgmScore};
use qcs_sensing::{
    build_operator, simulate, Family, ImageShape, Operator, OperatorSpec, QuantizerSpec, StepRule,
};

struct Setup {
    op: Box<dyn Operator>,
    obs: Observation,
    x_t: Tensor<4>,
}

fn setup(family: Family, m: usize, image: [usize; 3], batch: usize, bits: u32) -> Setup {
    let device = Device::flex();
    let spec = OperatorSpec {
        family,
        measurements: m,
        image: ImageShape::new(image[0], image[1], image[2]).expect("valid shape"),
        seed: 1,
    };
    let op = build_operator(&spec, &device).expect("operator builds");
    let n = spec.n();
    let x: Tensor<2> = Tensor::random([batch, n], burn::tensor::Distribution::Default, &device);
    let q = QuantizerSpec::from_bits(Some(bits), StepRule::FromData).expect("valid bits");
    let names = (0..batch).map(|i| i.to_string()).collect();
    let set = simulate(op.as_ref(), x.clone(), q, 0.05, 2, names).expect("simulation runs");
    let obs = Observation::from_set(&set, &device);
    let noise: Tensor<2> = Tensor::random(
        [batch, n],
        burn::tensor::Distribution::Normal(0.0, 0.1),
        &device,
    );
    let x_t = (x + noise).reshape([batch, image[0], image[1], image[2]]);
    Setup { op, obs, x_t }
}

fn bench_score(c: &mut Criterion, label: &str, s: &Setup, score: &dyn LikelihoodScore) {
    c.bench_function(label, |b| {
        b.iter(|| {
            score
                .score(s.op.as_ref(), &s.obs, 0.1, s.x_t.clone())
                .expect("score evaluates")
                .into_data()
        })
    });
}

fn scores(c: &mut Criterion) {
    let qcs = QcsSgmScore::default();
    let mnist = setup(Family::Gaussian, 200, [1, 28, 28], 10, 1);
    bench_score(
        c,
        "qcs-sgm 1-bit mnist gaussian M=200 batch 10",
        &mnist,
        &qcs,
    );
    let mnist3 = setup(Family::Gaussian, 200, [1, 28, 28], 10, 3);
    bench_score(
        c,
        "qcs-sgm 3-bit mnist gaussian M=200 batch 10",
        &mnist3,
        &qcs,
    );
    let celeba = setup(Family::Gaussian, 4000, [3, 64, 64], 8, 1);
    bench_score(
        c,
        "qcs-sgm 1-bit celeba gaussian M=4000 batch 8",
        &celeba,
        &qcs,
    );
    let celeba_dct = setup(Family::Dct, 4000, [3, 64, 64], 8, 1);
    bench_score(
        c,
        "qcs-sgm 1-bit celeba dct M=4000 batch 8",
        &celeba_dct,
        &qcs,
    );

    let ep = EpScore {
        config: EpConfig::for_bits(Some(1)),
    };
    let ill = setup(
        Family::IllConditioned { kappa: 1000.0 },
        400,
        [1, 28, 28],
        10,
        1,
    );
    bench_score(
        c,
        "ep 1-bit mnist ill-conditioned M=400 batch 10",
        &ill,
        &ep,
    );
    let ep_large = setup(Family::Gaussian, 4000, [3, 64, 64], 10, 1);
    ep_large.op.gram().expect("eigendecomposition");
    bench_score(
        c,
        "ep 1-bit celeba gaussian M=4000 batch 10",
        &ep_large,
        &ep,
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = scores
}
criterion_main!(benches);
