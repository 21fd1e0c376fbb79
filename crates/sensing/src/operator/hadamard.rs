//! Subsampled orthonormal Walsh–Hadamard operator: A = √(N/M)·S·H·D·P.
//!
//! P permutes the pixels at random and D flips their signs. H is block-diagonal with one orthonormal
//! Sylvester–Hadamard block per set bit of N (N = 784 = 512 + 256 + 16): for N a power of two it is the full
//! Walsh–Hadamard transform, and for any other N it stays exactly orthogonal, where zero-padding to the next
//! power of two would make A·Aᵀ only approximately a multiple of I. S keeps M of the N rows. A·Aᵀ = (N/M)·I
//! and ‖a_m‖² = N/M. Memory O(N + M); an apply costs O(N log N) as log₂ N butterfly stages.

use burn::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::{
    index_tensor, random_rows, random_signs, row_tensor, scatter_rows, GramSpectrum, Operator,
};
use crate::error::Result;
use crate::spec::OperatorSpec;

/// The subsampled, permuted and sign-randomised Walsh–Hadamard operator.
#[derive(Debug)]
pub struct HadamardOperator {
    spec: OperatorSpec,
    device: Device,
    /// Random pixel permutation P, shape [N].
    permutation: Tensor<1, Int>,
    /// Its inverse, shape [N].
    inverse_permutation: Tensor<1, Int>,
    /// Random signs D, shape [1, N].
    signs: Tensor<2>,
    /// Kept rows S, shape [M].
    rows: Tensor<1, Int>,
    /// (offset, length) of each power-of-two block, largest first.
    blocks: Vec<(usize, usize)>,
    /// √(N/M).
    scale: f32,
    gram: GramSpectrum,
    /// ‖a_m‖² = N/M for every row, shape [M]: made once, read at every sampler step.
    row_norms: Tensor<1>,
}

/// The power-of-two blocks that tile 0..n, largest first.
fn power_of_two_blocks(n: usize) -> Vec<(usize, usize)> {
    let mut blocks = Vec::new();
    let mut offset = 0;
    for bit in (0..usize::BITS).rev() {
        let len = 1usize << bit;
        if n & len != 0 {
            blocks.push((offset, len));
            offset += len;
        }
    }
    blocks
}

/// The orthonormal fast Walsh–Hadamard transform (Sylvester order) of every row of x, [B, L] with L = 2^k.
pub fn fwht(x: Tensor<2>) -> Tensor<2> {
    let [b, len] = x.dims();
    let mut x = x;
    let mut half = 1;
    while half < len {
        let pairs = x.reshape([b, len / (2 * half), 2, half]);
        let first = pairs.clone().narrow(2, 0, 1);
        let second = pairs.narrow(2, 1, 1);
        x = Tensor::cat(vec![first.clone() + second.clone(), first - second], 2).reshape([b, len]);
        half *= 2;
    }
    x * (1.0 / (len as f32).sqrt())
}

impl HadamardOperator {
    /// Draws the permutation, signs and kept rows from the spec's seed and uploads them to `device`.
    pub fn new(spec: &OperatorSpec, device: &Device) -> Self {
        let (m, n) = (spec.measurements, spec.n());
        let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
        let permutation = rand::seq::index::sample(&mut rng, n, n).into_vec();
        let mut inverse = vec![0; n];
        for (position, &source) in permutation.iter().enumerate() {
            inverse[source] = position;
        }
        let signs = random_signs(&mut rng, n);
        let rows = random_rows(&mut rng, n, m);
        let ratio = n as f32 / m as f32;
        Self {
            spec: *spec,
            device: device.clone(),
            permutation: index_tensor(&permutation, device),
            inverse_permutation: index_tensor(&inverse, device),
            signs: row_tensor(signs, device),
            rows: index_tensor(&rows, device),
            blocks: power_of_two_blocks(n),
            scale: ratio.sqrt(),
            gram: GramSpectrum::Scaled {
                value: ratio,
                size: m,
            },
            row_norms: Tensor::full([m], ratio, device),
        }
    }

    /// The block-diagonal orthonormal transform H applied to every row (H is symmetric and its own inverse).
    fn blockwise_fwht(&self, x: Tensor<2>) -> Tensor<2> {
        if self.blocks.len() == 1 {
            return fwht(x);
        }
        let parts = self
            .blocks
            .iter()
            .map(|&(offset, len)| fwht(x.clone().narrow(1, offset, len)))
            .collect();
        Tensor::cat(parts, 1)
    }
}

impl Operator for HadamardOperator {
    fn spec(&self) -> &OperatorSpec {
        &self.spec
    }

    fn device(&self) -> &Device {
        &self.device
    }

    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let mixed = x.select(1, self.permutation.clone()) * self.signs.clone();
        self.blockwise_fwht(mixed).select(1, self.rows.clone()) * self.scale
    }

    fn adjoint(&self, r: Tensor<2>) -> Tensor<2> {
        let full = scatter_rows(r * self.scale, &self.rows, self.cols());
        let mixed = self.blockwise_fwht(full) * self.signs.clone();
        mixed.select(1, self.inverse_permutation.clone())
    }

    fn row_norms_sq(&self) -> Tensor<1> {
        self.row_norms.clone()
    }

    fn gram(&self) -> Result<&GramSpectrum> {
        Ok(&self.gram)
    }

    fn norm_sq(&self) -> Result<f64> {
        super::operator_norm_sq(self, super::NORM_ITERATIONS, 0)
    }
}
