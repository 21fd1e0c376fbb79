//! Helpers shared by the baseline tests: sparse images, measurements, host read-back.
#![allow(dead_code)] // each test file uses its own subset

use burn::prelude::*;
use qcs_sensing::operator::Dct2d;
use qcs_sensing::{
    build_operator, simulate, Family, ImageShape, MeasurementSet, Operator, OperatorSpec,
    QuantizerSpec, StepRule,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub use qcs_testkit::{devices, host};

/// A 1×16×16 image shape (N = 256).
pub fn shape16() -> ImageShape {
    ImageShape::new(1, 16, 16).unwrap()
}

pub fn operator(family: Family, m: usize, image: ImageShape, device: &Device) -> Box<dyn Operator> {
    let spec = OperatorSpec {
        family,
        measurements: m,
        image,
        seed: 3,
    };
    build_operator(&spec, device).unwrap()
}

/// An image that is exactly `s`-sparse in the per-channel 2-D DCT: the DC coefficient of every channel sets
/// the mean to ½, the other s − C coefficients sit at random places with random signs and magnitudes small
/// enough that every pixel stays in [0.05, 0.95]. Returns the image [1, N] and its coefficients.
pub fn dct_sparse_image(
    image: ImageShape,
    s: usize,
    seed: u64,
    device: &Device,
) -> (Vec<f64>, Vec<f64>) {
    let (c, plane) = (image.channels, image.plane());
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut theta = vec![0.0; image.numel()];
    for k in 0..c {
        theta[k * plane] = 0.5 * (plane as f64).sqrt();
    }
    let others = s - c;
    // A 2-D DCT basis function is at most 2/√(H·W) in magnitude.
    let largest = 0.45 * (plane as f64).sqrt() / (2.0 * others as f64);
    let mut placed = 0;
    while placed < others {
        let j = rng.random_range(0..image.numel());
        if theta[j] == 0.0 {
            let sign = if rng.random::<bool>() { 1.0 } else { -1.0 };
            theta[j] = sign * largest * rng.random_range(0.5..1.0);
            placed += 1;
        }
    }
    let dct = Dct2d::new(image, device);
    let x = host(dct.inverse(qcs_testkit::tensor2(&theta, [1, image.numel()], device)));
    (x, theta)
}

/// Simulated measurements of the images `x` (flattened rows).
pub fn measure(
    op: &dyn Operator,
    x: &[f64],
    quantizer: QuantizerSpec,
    noise_std: f64,
) -> MeasurementSet {
    let n = op.cols();
    let b = x.len() / n;
    let images = qcs_testkit::tensor2(x, [b, n], op.device());
    let names = (0..b).map(|i| format!("img{i}")).collect();
    simulate(op, images, quantizer, noise_std, 11, names).unwrap()
}

pub fn one_bit() -> QuantizerSpec {
    QuantizerSpec::OneBit
}

pub fn bits(q: u32) -> QuantizerSpec {
    QuantizerSpec::from_bits(Some(q), StepRule::FromData).unwrap()
}

/// ‖a − b‖/‖b‖.
pub fn rel_err(a: &[f64], b: &[f64]) -> f64 {
    qcs_testkit::rel_l2(a, b)
}

/// Pearson correlation of two equally long vectors.
pub fn correlation(a: &[f64], b: &[f64]) -> f64 {
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (ma, mb) = (mean(a), mean(b));
    let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        ab += (x - ma) * (y - mb);
        aa += (x - ma).powi(2);
        bb += (y - mb).powi(2);
    }
    ab / (aa * bb).sqrt()
}

/// 10·log10(1/MSE).
pub fn psnr(a: &[f64], b: &[f64]) -> f64 {
    let mse = a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f64>() / a.len() as f64;
    10.0 * (1.0 / mse).log10()
}

/// A bright disc on a dark background (not sparse in the DCT, but compressible), [1, N].
pub fn disc(image: ImageShape) -> Vec<f64> {
    let (h, w) = (image.height as f64, image.width as f64);
    let mut x = Vec::with_capacity(image.numel());
    for i in 0..image.height {
        for j in 0..image.width {
            let d = ((i as f64 - h / 2.0).powi(2) + (j as f64 - w / 2.0 + 1.5).powi(2)).sqrt();
            x.push(if d < h / 4.0 { 0.9 } else { 0.1 });
        }
    }
    x
}
