//! Function-preserving widening of a trained network (Net2WiderNet, Chen, Goodfellow & Shlens
//! 2016): a network of `ngf` channels becomes one of `k·ngf` that computes the same score, so a
//! wider network's training can start where a narrower one's ended.
//!
//! Every channel `c` of a layer with `C` channels is copied to channels `c, c + C, …, c + (k−1)·C`:
//! a convolution's output filters and biases, and InstanceNorm++'s `γ` and `β`, are repeated; the
//! weights that a convolution gives to an input channel are split among that channel's `k` copies
//! with random positive shares that sum to one. The copies of a channel then carry equal values
//! through every convolution, InstanceNorm++, ELU, sum, pooling and upsampling of NCSNv2, so the
//! output is unchanged, and the unequal shares give the copies unequal gradients, so training can
//! pull them apart.
//!
//! One quantity is not a per-channel one: InstanceNorm++ divides the channel means' deviations by
//! their *unbiased* variance across the `C` channels, which `k` copies of every mean change by the
//! factor `k(C−1)/(kC−1)`; `α` is scaled by its square root to keep `α·(μ_c − m)/√v`. That is
//! exact up to the `ε = 1e-5` that the layer adds to `v`.

use std::collections::HashMap;

use burn::store::bridge;
use burn::store::burn_pack::Tensor as PackTensor;
use burn::store::ModuleSnapshot;
use burn::tensor::TensorData;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::ScoreNetError;
use crate::ncsnv2::{NcsnV2, NcsnV2Config};

/// Smallest and largest share (before normalisation) of a copy of an input channel: far enough
/// from equal for the copies' gradients to differ by tens of per cent, never a sign flip.
const SHARE_RANGE: (f32, f32) = (0.5, 1.5);

/// Widens `model` (made for `config`) to `ngf` channels, which must be a multiple of
/// `config.ngf`; the result computes the same scores (module docs). `seed` draws the shares of the
/// split input weights. The network is built on the device of `model`'s parameters.
pub fn widen(
    model: &NcsnV2,
    config: &NcsnV2Config,
    ngf: usize,
    seed: u64,
) -> Result<NcsnV2, ScoreNetError> {
    if ngf < config.ngf || !ngf.is_multiple_of(config.ngf) {
        return Err(ScoreNetError::CannotWiden {
            from: config.ngf,
            to: ngf,
        });
    }
    let factor = ngf / config.ngf;
    let wide_config = NcsnV2Config {
        ngf,
        ..config.clone()
    };
    let device = model.sigmas().device();
    let mut wide = wide_config.init(&device)?;
    let narrow: HashMap<String, PackTensor> = model
        .collect(None, None, false)
        .into_iter()
        .map(|tensor| (tensor.name.clone(), tensor))
        .collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut widened = Vec::new();
    for target in wide.collect(None, None, false) {
        let name = target.name.clone();
        let source = narrow
            .get(&name)
            .ok_or_else(|| ScoreNetError::InvalidConfig(format!("widening: no tensor `{name}`")))?;
        let data = bridge::to_data(source)
            .map_err(|e| ScoreNetError::InvalidConfig(format!("widening `{name}`: {e}")))?;
        let data = widen_tensor(&name, data, target.shape.as_slice(), factor, &mut rng)?;
        widened.push(bridge::from_data(data, name, None));
    }
    let result = wide.apply(widened, None, None, false);
    if let Some(error) = result.errors.first() {
        return Err(ScoreNetError::InvalidConfig(format!("widening: {error:?}")));
    }
    if let Some((missing, _)) = result.missing.first() {
        return Err(ScoreNetError::InvalidConfig(format!(
            "widening: `{missing}` was not filled"
        )));
    }
    Ok(wide)
}

/// One parameter widened to `shape`: every dimension is the narrow one or `factor` times it.
fn widen_tensor(
    name: &str,
    data: TensorData,
    shape: &[usize],
    factor: usize,
    rng: &mut impl Rng,
) -> Result<TensorData, ScoreNetError> {
    let narrow_shape = data.shape().as_slice().to_vec();
    let grown: Vec<bool> = narrow_shape
        .iter()
        .zip(shape)
        .map(|(&n, &w)| w != n)
        .collect();
    let fits = narrow_shape.len() == shape.len()
        && narrow_shape
            .iter()
            .zip(shape)
            .all(|(&n, &w)| w == n || w == factor * n);
    if !fits {
        return Err(ScoreNetError::WrongShape {
            name: name.to_owned(),
            expected: shape.to_vec(),
            found: narrow_shape,
        });
    }
    let values = data
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| ScoreNetError::InvalidConfig(format!("widening `{name}`: {e:?}")))?;
    let mut out = tile(&values, &narrow_shape, shape);
    // A convolution weight [out, in, kh, kw] whose input channels grew: split each input
    // channel's weight among its copies.
    if shape.len() == 4 && grown[1] {
        let (c_in, taps) = (narrow_shape[1], shape[2] * shape[3]);
        for o in 0..shape[0] {
            for i in 0..c_in {
                for t in 0..taps {
                    let shares: Vec<f32> = (0..factor)
                        .map(|_| rng.random_range(SHARE_RANGE.0..SHARE_RANGE.1))
                        .collect();
                    let total: f32 = shares.iter().sum();
                    for (copy, share) in shares.iter().enumerate() {
                        let index = (o * shape[1] + i + copy * c_in) * taps + t;
                        out[index] *= share / total;
                    }
                }
            }
        }
    }
    if shape.len() == 1 && grown[0] && name.ends_with(".alpha") {
        let (c, k) = (narrow_shape[0] as f32, factor as f32);
        let scale = (k * (c - 1.0) / (k * c - 1.0)).sqrt();
        out.iter_mut().for_each(|a| *a *= scale);
    }
    Ok(TensorData::new(out, shape.to_vec()))
}

/// `values` of `narrow` shape tiled to `wide` shape: `out[i] = values[i mod narrow]` along every
/// dimension.
fn tile(values: &[f32], narrow: &[usize], wide: &[usize]) -> Vec<f32> {
    let total: usize = wide.iter().product();
    let mut out = Vec::with_capacity(total);
    let mut index = vec![0usize; wide.len()];
    for _ in 0..total {
        let source = index
            .iter()
            .zip(narrow)
            .fold(0, |flat, (&i, &n)| flat * n + i % n);
        out.push(values[source]);
        for d in (0..wide.len()).rev() {
            index[d] += 1;
            if index[d] < wide[d] {
                break;
            }
            index[d] = 0;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load_safetensors;
    use crate::weights::tests::{
        mnist_config as config, outputs as scores, relative_error, MNIST_WEIGHTS,
    };
    use burn::tensor::Device;

    #[test]
    fn a_widened_network_computes_the_same_scores() {
        let device = Device::flex();
        let narrow = load_safetensors(&config(), MNIST_WEIGHTS, &device).expect("fixture");
        let expected = scores(&narrow, &device);
        for ngf in [16, 24] {
            let wide = widen(&narrow, &config(), ngf, 7).expect("widened");
            let error = relative_error(scores(&wide, &device), expected.clone());
            assert!(error < 1e-4, "ngf {ngf}: relative error {error}");
        }
    }

    #[test]
    fn without_the_alpha_correction_the_scores_would_differ() {
        // The test above can fail: InstanceNorm++'s cross-channel term is what the α scaling keeps.
        let device = Device::flex();
        let narrow = load_safetensors(&config(), MNIST_WEIGHTS, &device).expect("fixture");
        let expected = scores(&narrow, &device);
        let mut wide = widen(&narrow, &config(), 16, 7).expect("widened");
        let undo = (15.0f32 / (2.0 * 7.0)).sqrt(); // 1/√(k(C−1)/(kC−1)) for C = 8, k = 2
        let alphas: Vec<PackTensor> = wide
            .collect(None, None, false)
            .into_iter()
            .filter(|t| t.name.ends_with(".alpha"))
            .map(|t| {
                let values: Vec<f32> = bridge::to_data(&t)
                    .expect("data")
                    .try_into_vec::<f32>()
                    .expect("f32")
                    .into_iter()
                    .map(|a| a * undo)
                    .collect();
                let shape = t.shape.as_slice().to_vec();
                bridge::from_data(TensorData::new(values, shape), t.name.clone(), None)
            })
            .collect();
        assert!(wide.apply(alphas, None, None, false).errors.is_empty());
        let error = relative_error(scores(&wide, &device), expected.clone());
        assert!(error > 1e-3, "relative error {error}");
    }

    #[test]
    fn the_copies_of_a_channel_get_unequal_input_weights() {
        let device = Device::flex();
        let narrow = load_safetensors(&config(), MNIST_WEIGHTS, &device).expect("fixture");
        let wide = widen(&narrow, &config(), 16, 7).expect("widened");
        let weight = |model: &NcsnV2| -> Vec<f32> {
            model
                .end_conv
                .weight
                .val()
                .into_data()
                .try_into_vec::<f32>()
                .expect("f32")
        };
        // end_conv: [1, ngf, 3, 3]; the copies' weights share the narrow weight unequally.
        let (before, after) = (weight(&narrow), weight(&wide));
        let mut ratios = Vec::new();
        for (j, w) in before.iter().enumerate() {
            let (first, second) = (after[j], after[j + 72]);
            assert!((first + second - w).abs() <= 1e-6 * w.abs().max(1.0));
            ratios.push(first / w);
        }
        let spread = ratios.iter().cloned().fold(f32::MIN, f32::max)
            - ratios.iter().cloned().fold(f32::MAX, f32::min);
        assert!(
            ratios.iter().all(|r| (0.25..=0.75).contains(r)),
            "{ratios:?}"
        );
        assert!(spread > 0.2, "shares {ratios:?}");
    }

    #[test]
    fn only_a_multiple_of_ngf_is_accepted() {
        let device = Device::flex();
        let narrow = config().init(&device).expect("valid");
        for ngf in [4, 12] {
            assert!(matches!(
                widen(&narrow, &config(), ngf, 0),
                Err(ScoreNetError::CannotWiden { from: 8, to }) if to == ngf
            ));
        }
    }
}
