//! Helpers shared by the sensing tests.
#![allow(clippy::needless_range_loop, dead_code)] // index loops read like the formulas they check; helpers shared by several tests

use burn::prelude::*;
use qcs_sensing::{build_operator, Family, ImageShape, Operator, OperatorSpec};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[allow(unused_imports)] // each test binary uses a subset
pub use qcs_testkit::devices;

pub fn spec(family: Family, m: usize, image: [usize; 3], seed: u64) -> OperatorSpec {
    OperatorSpec {
        family,
        measurements: m,
        image: ImageShape::new(image[0], image[1], image[2]).unwrap(),
        seed,
    }
}

pub fn operator(family: Family, m: usize, image: [usize; 3], device: &Device) -> Box<dyn Operator> {
    build_operator(&spec(family, m, image, 7), device).unwrap()
}

pub fn random_matrix(
    rows: usize,
    cols: usize,
    seed: u64,
    device: &Device,
) -> (Vec<f32>, Tensor<2>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let values: Vec<f32> = (0..rows * cols)
        .map(|_| rng.random_range(-1.0..1.0))
        .collect();
    let t = Tensor::from_data(TensorData::new(values.clone(), [rows, cols]), device);
    (values, t)
}

pub fn host(t: Tensor<2>) -> Vec<f32> {
    t.into_data().try_to_vec_as::<f32>().unwrap()
}

/// The operator as a dense row-major M×N matrix, read through `forward` on the identity.
pub fn dense_of(op: &dyn Operator, device: &Device) -> Vec<f64> {
    let (m, n) = (op.rows(), op.cols());
    let eye: Tensor<2> = Tensor::eye(n, device);
    let columns = host(op.forward(eye)); // [N, M]: row j is A·e_j
    let mut a = vec![0.0; m * n];
    for j in 0..n {
        for i in 0..m {
            a[i * n + j] = f64::from(columns[j * m + i]);
        }
    }
    a
}

/// A·Aᵀ of a row-major M×N matrix.
pub fn gram(a: &[f64], m: usize, n: usize) -> Vec<f64> {
    let mut g = vec![0.0; m * m];
    for i in 0..m {
        for k in 0..m {
            g[i * m + k] = (0..n).map(|j| a[i * n + j] * a[k * n + j]).sum();
        }
    }
    g
}

pub const ALL_FAMILIES: [Family; 5] = [
    Family::Gaussian,
    Family::IllConditioned { kappa: 100.0 },
    Family::Correlated { rho: 0.5 },
    Family::Dct,
    Family::Hadamard,
];

#[allow(unused_imports)] // each test binary uses a subset
pub use qcs_testkit::fixture_tensor;
