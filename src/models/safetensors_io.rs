//! Safetensors I/O shared by both families: [`TensorSpec`], reading one tensor as checked f32
//! ([`read_tensor`], [`decode_f32`]), encoding tensors in F32/F16/BF16 ([`encode_safetensors`]),
//! and the file helpers every format uses ([`read`], [`write_atomic`]). It knows no model:
//! which tensors a model has is its family's `hf.rs`.

use crate::error::{Error, IoContext, Result};
use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

/// The weights file in a model directory.
pub const WEIGHTS_FILE: &str = "model.safetensors";

/// The name and shape of one checkpoint tensor (as the file names it, without a `transformer.` prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorSpec {
    pub name: String,
    pub shape: Vec<usize>,
}

/// `dir/model.safetensors`, or an error saying why a directory has none (a sharded checkpoint).
pub(crate) fn weights_path(dir: &Path) -> Result<std::path::PathBuf> {
    let path = dir.join(WEIGHTS_FILE);
    if !path.exists() && dir.join("model.safetensors.index.json").is_file() {
        return Err(Error::Input(format!(
            "{}: a sharded checkpoint (model.safetensors.index.json) is not supported: save it as one \
             model.safetensors (transformers: save_pretrained(..., max_shard_size=\"100GB\"))",
            dir.display()
        )));
    }
    Ok(path)
}

/// Whether a stored tensor holds exactly `values` (as f32).
pub(crate) fn same_values(view: &TensorView, values: &[f32]) -> bool {
    decode_f32(view.dtype(), view.data()).is_some_and(|v| v == values)
}

/// Little-endian F32, F16 or BF16 bytes as f32 values; `None` for another dtype.
pub(crate) fn decode_f32(dtype: Dtype, data: &[u8]) -> Option<Vec<f32>> {
    Some(match dtype {
        Dtype::F32 => data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
        Dtype::F16 => data.chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
        Dtype::BF16 => {
            data.chunks_exact(2).map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect()
        }
        _ => return None,
    })
}

/// The warning line for the tensors of `path` that were not read, if any.
pub(crate) fn unread_tensors_warning(path: &Path, mut names: Vec<String>) -> Option<String> {
    if names.is_empty() {
        return None;
    }
    names.sort();
    let shown = names.iter().take(6).map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ");
    let more = if names.len() > 6 { format!(" and {} more", names.len() - 6) } else { String::new() };
    Some(format!(
        "{}: smallmind did not read {} tensor(s) of this file: {shown}{more}",
        path.display(),
        names.len()
    ))
}

/// The bytes of a safetensors file holding `tensors` in `dtype` (F16, BF16, else F32), to be
/// written at `path` (named in errors). Each tensor is taken from the iterator, checked and
/// encoded before the next, so a tensor made for the export (GPT-2's unpacked weights) is
/// dropped before the next one is made.
///
/// # Errors
/// [`Error::Input`] naming the first tensor, index and value that `dtype` cannot hold: F16's
/// largest finite value is 65504, and a larger one would silently become infinity (and the
/// exported model's logits NaN).
pub(crate) fn encode_safetensors<T: AsRef<[f32]>>(
    tensors: impl IntoIterator<Item = (TensorSpec, T)>,
    dtype: Dtype,
    path: &Path,
) -> Result<Vec<u8>> {
    // A finite weight must stay finite: f16 tops out at 65504, bf16 just below f32's maximum.
    // (the test, the dtype's name, its largest value, what to use instead)
    type Limit = (fn(f32) -> bool, &'static str, String, &'static str);
    let overflows: Option<Limit> = match dtype {
        Dtype::F16 => {
            Some((|v| half::f16::from_f32(v).is_infinite(), "f16", half::f16::MAX.to_string(), "bf16 or f32"))
        }
        Dtype::BF16 => Some((
            |v| half::bf16::from_f32(v).is_infinite(),
            "bf16",
            format!("{:e}", f32::from(half::bf16::MAX)),
            "f32",
        )),
        _ => None,
    };
    let mut encoded: Vec<(TensorSpec, Vec<u8>)> = Vec::new();
    for (spec, data) in tensors {
        let data = data.as_ref();
        if let Some((overflows, name, max, instead)) = &overflows
            && let Some((index, value)) =
                data.iter().enumerate().find(|(_, v)| v.is_finite() && overflows(**v))
        {
            return Err(Error::Input(format!(
                "cannot export {} as {name}: tensor `{}` holds {value} at index {index}, beyond {name}'s largest \
                 finite value ({max}); export as {instead}",
                path.display(),
                spec.name,
            )));
        }
        let bytes = match dtype {
            Dtype::F16 => data.iter().flat_map(|&v| half::f16::from_f32(v).to_le_bytes()).collect(),
            Dtype::BF16 => data.iter().flat_map(|&v| half::bf16::from_f32(v).to_le_bytes()).collect(),
            _ => data.iter().flat_map(|&v| v.to_le_bytes()).collect(),
        };
        encoded.push((spec, bytes));
    }
    let dtype = if matches!(dtype, Dtype::F16 | Dtype::BF16) { dtype } else { Dtype::F32 };
    let views = encoded
        .iter()
        .map(|(spec, b)| {
            let view = TensorView::new(dtype, spec.shape.clone(), b).expect("sizes match by construction");
            (spec.name.clone(), view)
        })
        .collect::<Vec<_>>();
    let metadata = HashMap::from([("format".to_string(), "pt".to_string())]);
    safetensors::serialize(views, Some(metadata))
        .map_err(|e| Error::Safetensors { path: path.to_path_buf(), reason: e.to_string() })
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |w| w.write_all(bytes).writing(path))
}

/// [`write_atomic`], with the contents streamed by `write` into a buffered temporary file
/// beside `path`, renamed over it only when `write` and the flush succeed (else removed).
///
/// # Errors
/// `write`'s error, or [`Error::Write`] naming `path`.
pub fn write_atomic_with(
    path: &Path,
    write: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> Result<()>,
) -> Result<()> {
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{file_name}.tmp{}", std::process::id()));
    let written = std::fs::File::create(&tmp).writing(path).and_then(|file| {
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
        write(&mut out)?;
        let file = out.into_inner().map_err(|e| e.into_error()).writing(path)?;
        file.sync_all().and_then(|()| std::fs::rename(&tmp, path)).writing(path)
    });
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// The bytes of the input file `path`.
pub(crate) fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).reading(path)
}

/// One tensor as f32, found under its name or `transformer.` + its name, with its shape checked
/// and every value finite.
///
/// # Errors
/// [`Error::MissingTensor`], [`Error::ShapeMismatch`], [`Error::UnsupportedDtype`], or
/// [`Error::NonFiniteWeight`] naming the tensor as the file does, the first bad value and its
/// index.
pub(crate) fn read_tensor(st: &SafeTensors, path: &Path, spec: &TensorSpec) -> Result<Vec<f32>> {
    let prefixed = format!("transformer.{}", spec.name);
    if st.tensor(&spec.name).is_ok() && st.tensor(&prefixed).is_ok() {
        // transformers reads `transformer.X` into GPT2LMHeadModel; another tool may read `X`.
        return Err(Error::Input(format!(
            "{}: both `{}` and `{prefixed}` are stored, with no rule for which one a loader reads; keep one",
            path.display(),
            spec.name
        )));
    }
    let (name, view) = match st.tensor(&spec.name) {
        Ok(view) => (&spec.name, view),
        Err(_) => match st.tensor(&prefixed) {
            Ok(view) => (&prefixed, view),
            Err(_) => return Err(Error::MissingTensor { path: path.to_path_buf(), name: spec.name.clone() }),
        },
    };
    if view.shape() != spec.shape.as_slice() {
        return Err(Error::ShapeMismatch {
            path: path.to_path_buf(),
            name: spec.name.clone(),
            expected: spec.shape.clone(),
            found: view.shape().to_vec(),
        });
    }
    let values = decode_f32(view.dtype(), view.data()).ok_or_else(|| Error::UnsupportedDtype {
        path: path.to_path_buf(),
        name: spec.name.clone(),
        found: format!("{:?}", view.dtype()),
    })?;
    if let Some(index) = values.iter().position(|v| !v.is_finite()) {
        let value = values[index];
        return Err(Error::NonFiniteWeight { path: path.to_path_buf(), name: name.clone(), index, value });
    }
    Ok(values)
}

/// The fewest bytes a safetensors file holding `parameters` values can have: two per value
/// (F16 and BF16, the smallest dtypes we read).
const MIN_BYTES_PER_PARAMETER: usize = 2;

/// An error when a weights file of `file_len` bytes at `path` is too small to hold the
/// `parameters` values its config asks for (`None`: a count that overflows), checked before the
/// tensor list of the config's shape is built, so a small file with a huge config allocates
/// nothing in proportion to the config.
pub(crate) fn require_room_for(path: &Path, file_len: usize, parameters: Option<usize>) -> Result<()> {
    let needed = parameters.and_then(|n| n.checked_mul(MIN_BYTES_PER_PARAMETER));
    match needed {
        Some(needed) if needed <= file_len => Ok(()),
        _ => Err(Error::Safetensors {
            path: path.to_path_buf(),
            reason: format!(
                "config.json's shape has {} parameters, at least {} bytes in F16, and the file has {file_len} bytes: \
                 the config does not describe these weights",
                parameters.map_or("more than 2^64".to_string(), |n| n.to_string()),
                needed.map_or("more than 2^64".to_string(), |n| n.to_string()),
            ),
        }),
    }
}
