//! Weight interchange.
//!
//! * SafeTensors with the reference PyTorch state-dict names and layouts (`[out, in, kh, kw]`
//!   convolution weights, which is also burn's layout), so files move both ways between qcs
//!   and the reference code.
//! * burnpack, burn's own format, in f32 or f16, under the same names except that the enum
//!   variants described in the crate docs stay in the paths.

use std::fmt::Display;
use std::path::{Path, PathBuf};

use burn::store::{
    ApplyError, ApplyResult, BurnpackStore, FloatCastAdapter, KeyRemapper, ModuleSnapshot,
    ModuleStore, SafetensorsStore,
};
use burn::tensor::{DType, Device};

use crate::error::ScoreNetError;
use crate::ncsnv2::{NcsnV2, NcsnV2Config};
use crate::permissions::make_readable;

/// Most residual units in an RCU chain of NCSNv2 (the output chain of the last refine block).
const MAX_RCU_UNITS: usize = 3;

/// Float precision of the tensors written to a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// 32-bit floats.
    #[default]
    F32,
    /// 16-bit floats (half the size; loading casts back to f32).
    F16,
}

impl Precision {
    fn dtype(self) -> DType {
        match self {
            Self::F32 => DType::F32,
            Self::F16 => DType::F16,
        }
    }
}

/// Builds the network described by `config` on `device` and fills it from a SafeTensors file
/// holding the reference state dict (f32, f16 or any float dtype; cast to f32).
///
/// The noise levels come from the file's `sigmas`, like any other parameter.
pub fn load_safetensors(
    config: &NcsnV2Config,
    path: impl AsRef<Path>,
    device: &Device,
) -> Result<NcsnV2, ScoreNetError> {
    let path = path.as_ref();
    let store = SafetensorsStore::from_file(path)
        .remap(from_reference())
        .skip_enum_variants(true)
        .with_from_adapter(FloatCastAdapter::to(DType::F32))
        .allow_partial(true)
        .validate(false);
    load(config, device, path, store)
}

/// [`load_safetensors`] from the bytes of a file; `origin` names it in errors.
pub fn load_safetensors_bytes(
    config: &NcsnV2Config,
    bytes: Vec<u8>,
    origin: &Path,
    device: &Device,
) -> Result<NcsnV2, ScoreNetError> {
    let store = SafetensorsStore::from_bytes(Some(bytes))
        .remap(from_reference())
        .skip_enum_variants(true)
        .with_from_adapter(FloatCastAdapter::to(DType::F32))
        .allow_partial(true)
        .validate(false);
    load(config, device, origin, store)
}

/// Writes the network's parameters, `sigmas` included, as f32 SafeTensors with the reference
/// state-dict names, in a file with permissions 0644. An existing file is replaced.
pub fn save_safetensors(model: &NcsnV2, path: impl AsRef<Path>) -> Result<(), ScoreNetError> {
    let path = path.as_ref();
    let mut store = SafetensorsStore::from_file(path)
        .remap(to_reference())
        .skip_enum_variants(true)
        .overwrite(true);
    model
        .save_into(&mut store)
        .map_err(|e| unwritable(path, e))?;
    make_readable(path)
}

/// Builds the network described by `config` on `device` and fills it from a burnpack file
/// written by [`save_burnpack`] (f32 or f16; cast to f32).
pub fn load_burnpack(
    config: &NcsnV2Config,
    path: impl AsRef<Path>,
    device: &Device,
) -> Result<NcsnV2, ScoreNetError> {
    let path = path.as_ref();
    let store = BurnpackStore::from_file(path)
        .auto_extension(false)
        .remap(from_reference())
        .with_from_adapter(FloatCastAdapter::to(DType::F32))
        .allow_partial(true)
        .validate(false);
    load(config, device, path, store)
}

/// [`load_burnpack`] from the bytes of a file; `origin` names it in errors.
pub fn load_burnpack_bytes(
    config: &NcsnV2Config,
    bytes: Vec<u8>,
    origin: &Path,
    device: &Device,
) -> Result<NcsnV2, ScoreNetError> {
    let store = BurnpackStore::from_bytes(Some(burn::tensor::Bytes::from_bytes_vec(bytes)))
        .remap(from_reference())
        .with_from_adapter(FloatCastAdapter::to(DType::F32))
        .allow_partial(true)
        .validate(false);
    load(config, device, origin, store)
}

/// Writes the network's parameters as burnpack with the reference names, in `precision`, in a
/// file with permissions 0644. An existing file is replaced.
pub fn save_burnpack(
    model: &NcsnV2,
    path: impl AsRef<Path>,
    precision: Precision,
) -> Result<(), ScoreNetError> {
    let path = path.as_ref();
    let mut store = BurnpackStore::from_file(path)
        .auto_extension(false)
        .remap(to_reference())
        .with_to_adapter(FloatCastAdapter::to(precision.dtype()))
        .overwrite(true);
    model
        .save_into(&mut store)
        .map_err(|e| unwritable(path, e))?;
    make_readable(path)
}

/// What a SafeTensors weight file says of the network it holds, read from its header alone:
/// `begin_conv.weight` is `[ngf, channels, 3, 3]` and `sigmas` has one value per noise level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoredShape {
    /// Base channel count.
    pub ngf: usize,
    /// Image channels.
    pub channels: usize,
    /// Noise levels.
    pub num_levels: usize,
}

/// The [`StoredShape`] of the network in the SafeTensors file `path`: an error naming the file
/// when it cannot be read as SafeTensors, lacks either tensor, or gives one an unexpected rank.
pub fn stored_shape(path: &Path) -> Result<StoredShape, ScoreNetError> {
    let mut store = SafetensorsStore::from_file(path);
    let mut shape_of = |name: &str| -> Result<Vec<usize>, ScoreNetError> {
        let tensor = store
            .get_tensor(name)
            .map_err(|e| ScoreNetError::Unreadable {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?
            .ok_or_else(|| ScoreNetError::MissingTensor {
                name: name.to_owned(),
                path: path.to_path_buf(),
            })?;
        Ok(tensor.shape.as_slice().to_vec())
    };
    let begin = shape_of("begin_conv.weight")?;
    let sigmas = shape_of("sigmas")?;
    match (begin.as_slice(), sigmas.as_slice()) {
        (&[ngf, channels, _, _], &[num_levels]) => Ok(StoredShape {
            ngf,
            channels,
            num_levels,
        }),
        _ => Err(ScoreNetError::Unreadable {
            path: path.to_path_buf(),
            reason: format!(
                "unexpected shapes of begin_conv.weight {begin:?} or sigmas {sigmas:?}: not an \
                 NCSNv2 weight file"
            ),
        }),
    }
}

/// Initializes the network and applies `store` to it, turning every problem into a typed error.
fn load<S: ModuleStore>(
    config: &NcsnV2Config,
    device: &Device,
    path: &Path,
    mut store: S,
) -> Result<NcsnV2, ScoreNetError> {
    let mut model = config.init(device)?;
    let result = model
        .load_from(&mut store)
        .map_err(|e| unreadable(path, e))?;
    check_applied(result, path)?;
    Ok(model)
}

/// The first problem of a load, if any: missing tensors, then bad tensors, then extra ones.
fn check_applied(result: ApplyResult, path: &Path) -> Result<(), ScoreNetError> {
    if let Some((missing, _)) = result.missing.first() {
        return Err(ScoreNetError::MissingTensor {
            name: reference_name(missing),
            path: path.to_path_buf(),
        });
    }
    if let Some(error) = result.errors.into_iter().next() {
        return Err(match error {
            ApplyError::ShapeMismatch {
                path: name,
                expected,
                found,
            } => ScoreNetError::WrongShape {
                name: reference_name(&name),
                expected: expected.as_slice().to_vec(),
                found: found.as_slice().to_vec(),
            },
            ApplyError::DTypeMismatch {
                path: name, found, ..
            } => ScoreNetError::WrongDtype {
                name: reference_name(&name),
                found: format!("{found:?}"),
            },
            ApplyError::AdapterError {
                path: name,
                message,
            }
            | ApplyError::LoadError {
                path: name,
                message,
            } => ScoreNetError::Unreadable {
                path: path.to_path_buf(),
                reason: format!("tensor `{}`: {message}", reference_name(&name)),
            },
        });
    }
    if let Some(unused) = result.unused.first() {
        return Err(ScoreNetError::UnexpectedTensor {
            name: reference_name(unused),
            path: path.to_path_buf(),
        });
    }
    Ok(())
}

/// The reference name of a parameter path of [`NcsnV2`], with or without enum variants.
fn reference_name(path: &str) -> String {
    let without_variants = path.replace(".Same.", ".").replace(".Down.", ".");
    to_reference()
        .to_regex_pairs()
        .iter()
        .fold(without_variants, |name, (pattern, replacement)| {
            pattern
                .replace_all(&name, replacement.as_str())
                .into_owned()
        })
}

/// Renames burn paths to reference names: `….units.{i}.conv{j}.…` → `….{i+1}_{j}_conv.…`.
fn to_reference() -> KeyRemapper {
    remapper((0..MAX_RCU_UNITS).map(|i| {
        (
            format!(r"\.units\.{i}\.conv([12])\."),
            format!(".{}_${{1}}_conv.", i + 1),
        )
    }))
}

/// Renames reference names to burn paths: `….{i+1}_{j}_conv.…` → `….units.{i}.conv{j}.…`.
fn from_reference() -> KeyRemapper {
    remapper((0..MAX_RCU_UNITS).map(|i| {
        (
            format!(r"\.{}_([12])_conv\.", i + 1),
            format!(".units.{i}.conv${{1}}."),
        )
    }))
}

fn remapper(patterns: impl Iterator<Item = (String, String)>) -> KeyRemapper {
    KeyRemapper::from_pattern_iter(patterns).expect("the renaming patterns are valid regexes")
}

fn unreadable(path: &Path, reason: impl Display) -> ScoreNetError {
    ScoreNetError::Unreadable {
        path: PathBuf::from(path),
        reason: reason.to_string(),
    }
}

fn unwritable(path: &Path, reason: impl Display) -> ScoreNetError {
    ScoreNetError::Unwritable {
        path: PathBuf::from(path),
        reason: reason.to_string(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use burn::tensor::{Int, Tensor, TensorData};

    pub(crate) const MNIST_WEIGHTS: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/ncsnv2_mnist_ngf8_weights.safetensors"
    );

    pub(crate) fn mnist_config() -> NcsnV2Config {
        NcsnV2Config::new().with_ngf(8).with_num_levels(10)
    }

    #[test]
    fn the_stored_shape_is_read_from_the_header_and_its_problems_are_named() {
        let stored = stored_shape(Path::new(MNIST_WEIGHTS)).expect("a weight file");
        assert_eq!(
            stored,
            StoredShape {
                ngf: 8,
                channels: 1,
                num_levels: 10
            }
        );
        let tmp = tempfile::tempdir().unwrap();
        let junk = tmp.path().join("junk.safetensors");
        std::fs::write(&junk, b"this is not a weight file").unwrap();
        let err = stored_shape(&junk).unwrap_err();
        assert!(matches!(err, ScoreNetError::Unreadable { .. }), "{err}");
        assert!(err.to_string().contains("junk.safetensors"), "{err}");
        // A file with `begin_conv.weight` and no `sigmas`.
        let device = Device::flex();
        let partial = tmp.path().join("partial.safetensors");
        let begin: Tensor<4> = Tensor::zeros([8, 1, 3, 3], &device);
        let bytes = safetensors::serialize(
            [(
                "begin_conv.weight",
                safetensors::tensor::TensorView::new(
                    safetensors::Dtype::F32,
                    vec![8, 1, 3, 3],
                    begin.into_data().as_bytes(),
                )
                .unwrap(),
            )],
            None,
        )
        .unwrap();
        std::fs::write(&partial, bytes).unwrap();
        let err = stored_shape(&partial).unwrap_err();
        assert!(
            matches!(&err, ScoreNetError::MissingTensor { name, .. } if name == "sigmas"),
            "{err}"
        );
    }

    /// The network's output on a fixed input. The input is made on the host: the device's seeded generator is
    /// shared by the tests running beside this one, so two seeded draws could differ.
    pub(crate) fn outputs(model: &NcsnV2, device: &Device) -> TensorData {
        let values: Vec<f32> = (0..2 * 28 * 28)
            .map(|k| 0.5 + 0.5 * (0.37 * k as f32).sin())
            .collect();
        let x = Tensor::<4>::from_data(TensorData::new(values, [2, 1, 28, 28]), device);
        let levels = Tensor::<1, Int>::from_ints([1, 8], device);
        model.forward(x, levels).into_data()
    }

    fn tensor_names(path: &Path) -> Vec<String> {
        let mut names = SafetensorsStore::from_file(path)
            .keys()
            .expect("readable safetensors");
        names.sort();
        names
    }

    #[test]
    fn saved_names_are_the_reference_state_dict_names() {
        let device = Device::flex();
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("net.safetensors");
        let model = mnist_config().init(&device).expect("valid config");
        save_safetensors(&model, &path).expect("saved");
        assert_eq!(tensor_names(&path), tensor_names(Path::new(MNIST_WEIGHTS)));
    }

    #[test]
    fn safetensors_round_trip_keeps_the_outputs() {
        let device = Device::flex();
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("net.safetensors");
        let model = load_safetensors(&mnist_config(), MNIST_WEIGHTS, &device).expect("loaded");
        save_safetensors(&model, &path).expect("saved");
        let reloaded = load_safetensors(&mnist_config(), &path, &device).expect("reloaded");
        outputs(&reloaded, &device).assert_eq(&outputs(&model, &device), true);
    }

    /// `‖a − b‖ / ‖b‖`.
    pub(crate) fn relative_error(a: TensorData, b: TensorData) -> f32 {
        let a = a.try_to_vec::<f32>().expect("f32 data");
        let b = b.try_to_vec::<f32>().expect("f32 data");
        let diff: f32 = a.iter().zip(&b).map(|(x, y)| (x - y).powi(2)).sum();
        let norm: f32 = b.iter().map(|y| y * y).sum();
        (diff / norm).sqrt()
    }

    #[test]
    fn burnpack_round_trip_is_exact_in_f32_and_close_in_f16() {
        let device = Device::flex();
        let dir = tempfile::tempdir().expect("temp dir");
        let model = load_safetensors(&mnist_config(), MNIST_WEIGHTS, &device).expect("loaded");
        let expected = outputs(&model, &device);
        for (precision, tolerance) in [(Precision::F32, 0.0), (Precision::F16, 1e-2)] {
            let path = dir.path().join(format!("net-{precision:?}.bpk"));
            save_burnpack(&model, &path, precision).expect("saved");
            let reloaded = load_burnpack(&mnist_config(), &path, &device).expect("reloaded");
            let error = relative_error(outputs(&reloaded, &device), expected.clone());
            assert!(error <= tolerance, "{precision:?}: relative error {error}");
        }
    }

    #[test]
    fn a_missing_tensor_is_named() {
        let device = Device::flex();
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("partial.safetensors");
        let model = mnist_config().init(&device).expect("valid config");
        let mut store = SafetensorsStore::from_file(&path)
            .remap(to_reference())
            .skip_enum_variants(true)
            .with_predicate(|name, _| !name.starts_with("refine4.output_convs.units.2.conv1"));
        model.save_into(&mut store).expect("saved");

        match load_safetensors(&mnist_config(), &path, &device) {
            Err(ScoreNetError::MissingTensor { name, .. }) => {
                assert_eq!(name, "refine4.output_convs.3_1_conv.weight");
            }
            other => panic!("expected a missing tensor, got {other:?}"),
        }
    }

    #[test]
    fn a_wrong_shape_is_reported_with_both_shapes() {
        let device = Device::flex();
        let colour = mnist_config().with_channels(3).with_image_size(32);
        match load_safetensors(&colour, MNIST_WEIGHTS, &device) {
            Err(ScoreNetError::WrongShape {
                name,
                expected,
                found,
            }) => {
                assert!(
                    name == "begin_conv.weight" || name == "end_conv.weight",
                    "{name}"
                );
                assert_ne!(expected, found);
            }
            other => panic!("expected a wrong shape, got {other:?}"),
        }
    }

    #[test]
    fn a_shape_error_names_a_mean_pool_convolution_by_its_reference_name() {
        assert_eq!(
            reference_name("res2.0.conv2.Down.conv.weight"),
            "res2.0.conv2.conv.weight"
        );
        assert_eq!(
            reference_name("refine2.adapt_convs.1.units.1.conv2.weight"),
            "refine2.adapt_convs.1.2_2_conv.weight"
        );
    }

    #[test]
    fn a_truncated_file_is_unreadable() {
        let device = Device::flex();
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("truncated.safetensors");
        let bytes = std::fs::read(MNIST_WEIGHTS).expect("fixture");
        std::fs::write(&path, &bytes[..bytes.len() / 2]).expect("written");
        match load_safetensors(&mnist_config(), &path, &device) {
            Err(ScoreNetError::Unreadable { path: reported, .. }) => assert_eq!(reported, path),
            other => panic!("expected an unreadable file, got {other:?}"),
        }
    }

    #[test]
    fn a_missing_file_is_unreadable() {
        let device = Device::flex();
        let result = load_safetensors(&mnist_config(), "/nonexistent/net.safetensors", &device);
        assert!(matches!(result, Err(ScoreNetError::Unreadable { .. })));
    }
}
