//! Subsampled orthonormal 2-D DCT-II per channel with random signs: A = √(N/M)·S·(I_C ⊗ C_H ⊗ C_W)·D.
//!
//! D flips the sign of each pixel at random, the per-channel 2-D DCT is applied separably (C_H·X·C_Wᵀ), and S
//! keeps M of the N coefficients. A·Aᵀ = (N/M)·I and ‖a_m‖² = N/M, like `gaussian` in expectation. Memory is
//! O(N + M + H² + W²); an apply costs O(N·(H + W)) as two small dense products, which run at matrix-multiply
//! speed on every backend.

use burn::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::{
    index_tensor, random_rows, random_signs, row_tensor, scatter_rows, GramSpectrum, Operator,
};
use crate::error::Result;
use crate::shape::ImageShape;
use crate::spec::OperatorSpec;

/// The subsampled, sign-randomised 2-D DCT operator.
#[derive(Debug)]
pub struct DctOperator {
    spec: OperatorSpec,
    device: Device,
    /// Random signs D, shape [1, N].
    signs: Tensor<2>,
    /// Kept coefficient indices S, shape [M].
    rows: Tensor<1, Int>,
    /// The per-channel 2-D DCT-II.
    transform: Dct2d,
    /// √(N/M).
    scale: f32,
    gram: GramSpectrum,
    /// ‖a_m‖² = N/M for every row, shape [M]: made once, read at every sampler step.
    row_norms: Tensor<1>,
}

/// The orthonormal DCT-II matrix of size n: C_kj = α_k·cos(π(2j+1)k/(2n)), α_0 = √(1/n), α_k = √(2/n).
pub fn dct_matrix(n: usize) -> Vec<f32> {
    let mut c = Vec::with_capacity(n * n);
    for k in 0..n {
        let alpha = if k == 0 {
            (1.0 / n as f64).sqrt()
        } else {
            (2.0 / n as f64).sqrt()
        };
        for j in 0..n {
            let angle = std::f64::consts::PI * (2 * j + 1) as f64 * k as f64 / (2 * n) as f64;
            c.push((alpha * angle.cos()) as f32);
        }
    }
    c
}

/// The orthonormal 2-D DCT-II of every channel plane of flattened (C, H, W) images, applied separably as two
/// small dense products: Y = C_H·X·C_Wᵀ per plane (forward), X = C_Hᵀ·Y·C_W (inverse, the transpose).
#[derive(Debug, Clone)]
pub struct Dct2d {
    image: ImageShape,
    /// Orthonormal DCT-II matrix along H, shape [H, H].
    dct_h: Tensor<2>,
    /// Orthonormal DCT-II matrix along W, shape [W, W].
    dct_w: Tensor<2>,
}

impl Dct2d {
    /// The transform for images of `image` shape, its matrices on `device`.
    pub fn new(image: ImageShape, device: &Device) -> Self {
        let (h, w) = (image.height, image.width);
        Self {
            image,
            dct_h: Tensor::from_data(TensorData::new(dct_matrix(h), [h, h]), device),
            dct_w: Tensor::from_data(TensorData::new(dct_matrix(w), [w, w]), device),
        }
    }

    /// Y = C_H·X·C_Wᵀ for every plane: [B, N] → [B, N].
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        self.apply(
            x,
            self.dct_h.clone().transpose(),
            self.dct_w.clone().transpose(),
        )
    }

    /// X = C_Hᵀ·Y·C_W for every plane, the inverse (and adjoint) of [`Dct2d::forward`]: [B, N] → [B, N].
    pub fn inverse(&self, y: Tensor<2>) -> Tensor<2> {
        self.apply(y, self.dct_h.clone(), self.dct_w.clone())
    }

    /// Right-multiplies the rows of every plane by `mw` and its columns by `mh`.
    fn apply(&self, x: Tensor<2>, mh: Tensor<2>, mw: Tensor<2>) -> Tensor<2> {
        let [b, n] = x.dims();
        let [c, h, w] = self.image.dims();
        let along_w = x.reshape([b * c * h, w]).matmul(mw);
        let columns = along_w
            .reshape([b * c, h, w])
            .swap_dims(1, 2)
            .reshape([b * c * w, h]);
        let along_h = columns.matmul(mh);
        along_h
            .reshape([b * c, w, h])
            .swap_dims(1, 2)
            .reshape([b, n])
    }
}

impl DctOperator {
    /// Draws the signs and the kept coefficients from the spec's seed and uploads them to `device`.
    pub fn new(spec: &OperatorSpec, device: &Device) -> Self {
        let (m, n) = (spec.measurements, spec.n());
        let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
        let signs = random_signs(&mut rng, n);
        let rows = random_rows(&mut rng, n, m);
        let ratio = n as f32 / m as f32;
        Self {
            spec: *spec,
            device: device.clone(),
            signs: row_tensor(signs, device),
            rows: index_tensor(&rows, device),
            transform: Dct2d::new(spec.image, device),
            scale: ratio.sqrt(),
            gram: GramSpectrum::Scaled {
                value: ratio,
                size: m,
            },
            row_norms: Tensor::full([m], ratio, device),
        }
    }
}

impl Operator for DctOperator {
    fn spec(&self) -> &OperatorSpec {
        &self.spec
    }

    fn device(&self) -> &Device {
        &self.device
    }

    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let coefficients = self.transform.forward(x * self.signs.clone());
        coefficients.select(1, self.rows.clone()) * self.scale
    }

    fn adjoint(&self, r: Tensor<2>) -> Tensor<2> {
        let full = scatter_rows(r * self.scale, &self.rows, self.cols());
        self.transform.inverse(full) * self.signs.clone()
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
