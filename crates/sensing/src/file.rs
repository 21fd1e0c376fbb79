//! Measurement files: safetensors with tensors `y`, `lower`, `upper` ([B, M], f32) and `delta` ([B]), and the
//! settings ([`MeasurementInfo`]) as JSON in the metadata, with a format version. Written atomically.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::error::{Result, SensingError};
use crate::measurements::{MeasurementInfo, MeasurementSet};

/// The format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
const FORMAT_KEY: &str = "format";
const FORMAT_NAME: &str = "qcs-measurements";
const VERSION_KEY: &str = "version";
const INFO_KEY: &str = "info";

fn corrupt(path: &Path, reason: impl Into<String>) -> SensingError {
    SensingError::CorruptFile {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn io_error(path: &Path, source: std::io::Error) -> SensingError {
    SensingError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Serialises a measurement set to bytes (after validating it).
pub fn to_bytes(set: &MeasurementSet) -> Result<Vec<u8>> {
    set.validate()?;
    let (b, m) = (set.batch(), set.measurements());
    let buffers = [
        ("y", f32_bytes(&set.y), vec![b, m]),
        ("lower", f32_bytes(&set.lower), vec![b, m]),
        ("upper", f32_bytes(&set.upper), vec![b, m]),
        ("delta", f32_bytes(&set.delta), vec![b]),
    ];
    let views = buffers
        .iter()
        .map(|(name, bytes, shape)| {
            TensorView::new(Dtype::F32, shape.clone(), bytes)
                .map(|v| (name.to_string(), v))
                .map_err(|e| SensingError::InvalidSetting(format!("tensor {name}: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    let info = serde_json::to_string(&set.info)
        .map_err(|e| SensingError::InvalidSetting(format!("serialising settings: {e}")))?;
    let metadata = HashMap::from([
        (FORMAT_KEY.to_string(), FORMAT_NAME.to_string()),
        (VERSION_KEY.to_string(), FORMAT_VERSION.to_string()),
        (INFO_KEY.to_string(), info),
    ]);
    safetensors::serialize(views, Some(metadata))
        .map_err(|e| SensingError::InvalidSetting(format!("serialising measurements: {e}")))
}

/// Writes a measurement file atomically: a temporary file in the same folder, then a rename.
pub fn save(set: &MeasurementSet, path: &Path) -> Result<()> {
    let bytes = to_bytes(set)?;
    write_atomically(path, &bytes)
}

/// Writes `bytes` to `path` through a temporary sibling file and a rename, so `path` is never half-written.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| corrupt(path, "the path names no file"))?
        .to_string_lossy();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = std::fs::File::create(&tmp)
        .and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        })
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(io_error(path, e));
    }
    Ok(())
}

/// The name in serde's "unknown variant `name`" message, if that is what the message says.
fn unknown_variant(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown variant `")?;
    rest.split('`').next().map(str::to_string)
}

/// Reads and validates a measurement file.
pub fn load(path: &Path) -> Result<MeasurementSet> {
    let bytes = std::fs::read(path).map_err(|e| io_error(path, e))?;
    from_bytes(&bytes, path)
}

/// Parses and validates measurement-file bytes; `path` only names the source in errors.
pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<MeasurementSet> {
    let (_, header) =
        SafeTensors::read_metadata(bytes).map_err(|e| corrupt(path, e.to_string()))?;
    let meta = header
        .metadata()
        .as_ref()
        .ok_or_else(|| corrupt(path, "no metadata: not a qcs measurement file"))?;
    if meta.get(FORMAT_KEY).map(String::as_str) != Some(FORMAT_NAME) {
        return Err(corrupt(
            path,
            "metadata does not say format = qcs-measurements",
        ));
    }
    let version = meta
        .get(VERSION_KEY)
        .ok_or_else(|| corrupt(path, "no format version"))?;
    if version.parse::<u32>().ok() != Some(FORMAT_VERSION) {
        return Err(SensingError::UnsupportedVersion {
            path: path.to_path_buf(),
            found: version.clone(),
            supported: FORMAT_VERSION,
        });
    }
    let info: MeasurementInfo = serde_json::from_str(
        meta.get(INFO_KEY)
            .ok_or_else(|| corrupt(path, "no settings (info) in the metadata"))?,
    )
    .map_err(|e| match unknown_variant(&e.to_string()) {
        Some(name) => SensingError::UnknownFamily(name),
        None => corrupt(path, format!("settings: {e}")),
    })?;
    let tensors = SafeTensors::deserialize(bytes).map_err(|e| corrupt(path, e.to_string()))?;
    let (b, m) = (info.names.len(), info.operator.measurements);
    let read = |name: &str, shape: &[usize]| -> Result<Vec<f32>> {
        let view = tensors
            .tensor(name)
            .map_err(|_| corrupt(path, format!("missing tensor `{name}`")))?;
        if view.dtype() != Dtype::F32 {
            return Err(corrupt(
                path,
                format!("tensor `{name}` is {:?}, expected F32", view.dtype()),
            ));
        }
        if view.shape() != shape {
            return Err(SensingError::ShapeMismatch {
                what: format!("{}: tensor `{name}`", path.display()),
                expected: shape.to_vec(),
                found: view.shape().to_vec(),
            });
        }
        Ok(view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    };
    let set = MeasurementSet {
        y: read("y", &[b, m])?,
        lower: read("lower", &[b, m])?,
        upper: read("upper", &[b, m])?,
        delta: read("delta", &[b])?,
        info,
    };
    set.validate().map_err(|e| match e {
        SensingError::NonFinite { what, index } => SensingError::NonFinite {
            what: format!("{}: {what}", path.display()),
            index,
        },
        other => other,
    })?;
    Ok(set)
}
