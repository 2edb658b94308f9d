//! Parsing a GGUF header: magic, version, metadata and tensor infos, every read bounds-checked
//! and every size computed in checked arithmetic. A count (of entries, of array elements) is
//! checked against the bytes left in the file before anything is allocated for it, so a small
//! crafted file cannot make the reader allocate in proportion to what it claims.

use super::{Array, DEFAULT_ALIGNMENT, GgmlType, MAGIC, TensorInfo, Value};
use crate::error::{Error, Result};
use std::collections::HashSet;
use std::path::Path;

/// Magic, version, tensor count, metadata count.
pub(super) const HEADER_BYTES: usize = 4 + 4 + 8 + 8;
/// The fewest bytes a metadata entry takes: an empty key, its type, a one-byte value.
const MIN_ENTRY_BYTES: usize = 8 + 4 + 1;
/// The fewest bytes a tensor info takes: an empty name, one dimension, type, offset.
const MIN_TENSOR_INFO_BYTES: usize = 8 + 4 + 8 + 4 + 8;
/// ggml's `GGML_MAX_DIMS`.
const MAX_DIMS: usize = 4;
/// Arrays of arrays nest at most this deep (the format allows it; no model uses more than one
/// level, and a crafted file must not recurse without bound).
const MAX_ARRAY_DEPTH: usize = 4;

/// What [`parse`] found.
pub(super) struct Header {
    pub version: u32,
    pub alignment: usize,
    pub metadata: Vec<(String, Value)>,
    pub tensors: Vec<TensorInfo>,
    pub data_offset: usize,
}

/// Parses the header of the GGUF file `bytes` (read from `path`, for messages).
pub(super) fn parse(bytes: &[u8], path: &Path) -> Result<Header> {
    let mut r = Reader { bytes, pos: 0, path };
    let magic = r.take(4, "the magic")?;
    if magic != MAGIC {
        return Err(r.error(format!("starts with {:?}, expected \"GGUF\"", String::from_utf8_lossy(magic))));
    }
    let version = r.u32("the version")?;
    match version {
        2 | 3 => {}
        1 => return Err(r.error("version 1 (32-bit counts, before August 2023) is not supported; convert the model again with a current llama.cpp".into())),
        v if v.swap_bytes() == 2 || v.swap_bytes() == 3 => {
            return Err(r.error(format!("version {} in big-endian byte order: only little-endian files are read", v.swap_bytes())));
        }
        v => return Err(r.error(format!("version {v}; smallmind reads versions 2 and 3"))),
    }
    let n_tensors = r.count("tensor count", MIN_TENSOR_INFO_BYTES)?;
    let n_metadata = r.count("metadata count", MIN_ENTRY_BYTES)?;

    let mut metadata = Vec::with_capacity(n_metadata);
    let mut keys = HashSet::new();
    for _ in 0..n_metadata {
        let at = r.pos;
        let key = r.string("a metadata key")?;
        let ty = r.u32("a metadata type")?;
        let value = r.value(ty, &key, 0)?;
        if !keys.insert(key.clone()) {
            return Err(Error::Gguf {
                path: path.to_path_buf(),
                reason: format!("metadata key `{key}` appears twice (the second at byte {at})"),
            });
        }
        metadata.push((key, value));
    }
    let alignment = match metadata.iter().find(|(k, _)| k == "general.alignment") {
        None => DEFAULT_ALIGNMENT,
        Some((_, v)) => match v.as_u64().and_then(|a| usize::try_from(a).ok()) {
            Some(a) if a.is_power_of_two() => a,
            _ => {
                return Err(r.error(format!(
                    "general.alignment is {} {}, expected a power of two",
                    v.type_name(),
                    v.summary()
                )));
            }
        },
    };

    let mut infos = Vec::with_capacity(n_tensors);
    let mut names = HashSet::new();
    for _ in 0..n_tensors {
        let name = r.string("a tensor name")?;
        let n_dims = r.u32("a tensor's dimension count")? as usize;
        if n_dims == 0 || n_dims > MAX_DIMS {
            return Err(r.error(format!("tensor `{name}` has {n_dims} dimensions, expected 1 to {MAX_DIMS}")));
        }
        let mut dims = Vec::with_capacity(n_dims);
        for _ in 0..n_dims {
            let dim = r.u64("a tensor dimension")?;
            match usize::try_from(dim) {
                Ok(d) if d > 0 => dims.push(d),
                _ => return Err(r.error(format!("tensor `{name}` has a dimension of {dim}"))),
            }
        }
        let type_id = r.u32("a tensor type")?;
        let offset = r.u64("a tensor offset")?;
        let ty = GgmlType::from_id(type_id).ok_or_else(|| {
            r.error(format!(
                "tensor `{name}` has type id {type_id}, which no ggml type this reader knows has"
            ))
        })?;
        if !names.insert(name.clone()) {
            return Err(r.error(format!("tensor `{name}` appears twice")));
        }
        infos.push((name, dims, ty, offset));
    }

    // The data starts at the next multiple of the alignment.
    let data_offset = r
        .pos
        .checked_next_multiple_of(alignment)
        .ok_or_else(|| r.error("the data offset overflows".into()))?;
    if !infos.is_empty() && data_offset > bytes.len() {
        return Err(r.error(format!(
            "the tensor data would start at byte {data_offset}, past the end of the file ({} bytes)",
            bytes.len()
        )));
    }
    let data_len = bytes.len().saturating_sub(data_offset);
    let mut tensors = Vec::with_capacity(infos.len());
    for (name, dims, ty, offset) in infos {
        let n_elements = dims.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
        let Some(n_elements) = n_elements else {
            return Err(
                r.error(format!("tensor `{name}` of shape {dims:?} has more elements than 64 bits count"))
            );
        };
        if !dims[0].is_multiple_of(ty.block_elements()) {
            return Err(r.error(format!(
                "tensor `{name}` of type {ty} has rows of {} elements, not a multiple of its block of {}",
                dims[0],
                ty.block_elements()
            )));
        }
        let n_bytes = ty
            .bytes_for(n_elements)
            .ok_or_else(|| r.error(format!("tensor `{name}`'s size in bytes overflows")))?;
        if offset % alignment as u64 != 0 {
            return Err(r.error(format!(
                "tensor `{name}` is at offset {offset}, not a multiple of the alignment {alignment}"
            )));
        }
        let end = offset.checked_add(n_bytes as u64);
        if end.is_none_or(|end| end > data_len as u64) {
            return Err(r.error(format!(
                "tensor `{name}` ({ty}, {dims:?}, {n_bytes} bytes at offset {offset}) ends past the end of the data, \
                 which has {data_len} bytes (truncated file?)"
            )));
        }
        // In range: `offset + n_bytes <= data_len` and `data_offset + data_len == bytes.len()`.
        let offset = data_offset + offset as usize;
        tensors.push(TensorInfo { name, dims, ty, offset, n_elements, n_bytes });
    }
    Ok(Header { version, alignment, metadata, tensors, data_offset })
}

/// A cursor over the file's bytes that names what it was reading when they ran out.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    path: &'a Path,
}

impl<'a> Reader<'a> {
    fn error(&self, reason: String) -> Error {
        Error::Gguf { path: self.path.to_path_buf(), reason }
    }

    fn left(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        if n > self.left() {
            return Err(self.error(format!(
                "{what} at byte {} needs {n} bytes, but the file ends at byte {} (truncated?)",
                self.pos,
                self.bytes.len()
            )));
        }
        let out = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        Ok(self.take(N, what)?.try_into().expect("N bytes"))
    }

    fn u32(&mut self, what: &str) -> Result<u32> {
        self.array(what).map(u32::from_le_bytes)
    }

    fn u64(&mut self, what: &str) -> Result<u64> {
        self.array(what).map(u64::from_le_bytes)
    }

    /// A u64 count of things of at least `min_bytes` each, refused when the rest of the file
    /// cannot hold that many.
    fn count(&mut self, what: &str, min_bytes: usize) -> Result<usize> {
        let at = self.pos;
        let n = self.u64(what)?;
        let room = self.left() / min_bytes;
        match usize::try_from(n) {
            Ok(n) if n <= room => Ok(n),
            _ => Err(self.error(format!(
                "the {what} at byte {at} is {n}, but the {} bytes left hold at most {room} (of {min_bytes} bytes or more each)",
                self.left()
            ))),
        }
    }

    fn string(&mut self, what: &str) -> Result<String> {
        let at = self.pos;
        let len = self.u64(what)?;
        let left = self.left();
        let len = match usize::try_from(len) {
            Ok(len) if len <= left => len,
            _ => {
                return Err(self.error(format!(
                    "{what} at byte {at} is {len} bytes long, but only {left} bytes are left in the file"
                )));
            }
        };
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec())
            .map_err(|e| self.error(format!("{what} at byte {at} is not UTF-8: {e}")))
    }

    /// A value of type id `ty` (of the entry `key`, for messages), arrays nested `depth` deep.
    fn value(&mut self, ty: u32, key: &str, depth: usize) -> Result<Value> {
        Ok(match ty {
            0 => Value::U8(u8::from_le_bytes(self.array(key)?)),
            1 => Value::I8(i8::from_le_bytes(self.array(key)?)),
            2 => Value::U16(u16::from_le_bytes(self.array(key)?)),
            3 => Value::I16(i16::from_le_bytes(self.array(key)?)),
            4 => Value::U32(u32::from_le_bytes(self.array(key)?)),
            5 => Value::I32(i32::from_le_bytes(self.array(key)?)),
            6 => Value::F32(f32::from_le_bytes(self.array(key)?)),
            7 => Value::Bool(self.bool(key)?),
            8 => Value::String(self.string(&format!("the string value of `{key}`"))?),
            9 => Value::Array(self.array_value(key, depth)?),
            10 => Value::U64(u64::from_le_bytes(self.array(key)?)),
            11 => Value::I64(i64::from_le_bytes(self.array(key)?)),
            12 => Value::F64(f64::from_le_bytes(self.array(key)?)),
            other => {
                return Err(self
                    .error(format!("metadata `{key}` has value type {other}, which GGUF does not define")));
            }
        })
    }

    fn bool(&mut self, key: &str) -> Result<bool> {
        match self.array::<1>(key)?[0] {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(self.error(format!("metadata `{key}` holds {other} for a bool, expected 0 or 1"))),
        }
    }

    fn array_value(&mut self, key: &str, depth: usize) -> Result<Array> {
        if depth >= MAX_ARRAY_DEPTH {
            return Err(self.error(format!("metadata `{key}` nests arrays more than {MAX_ARRAY_DEPTH} deep")));
        }
        let ty = self.u32(key)?;
        let min_bytes = match ty {
            0 | 1 | 7 => 1,
            2 | 3 => 2,
            4..=6 => 4,
            8 | 10..=12 => 8,
            9 => 4 + 8,
            other => {
                return Err(self.error(format!(
                    "metadata `{key}` is an array of type {other}, which GGUF does not define"
                )));
            }
        };
        let n = self.count(&format!("length of the array `{key}`"), min_bytes)?;
        macro_rules! plain {
            ($variant:ident, $t:ty) => {{
                let raw = self.take(n * size_of::<$t>(), key)?;
                Array::$variant(
                    raw.chunks_exact(size_of::<$t>())
                        .map(|b| <$t>::from_le_bytes(b.try_into().expect("sized")))
                        .collect(),
                )
            }};
        }
        Ok(match ty {
            0 => plain!(U8, u8),
            1 => plain!(I8, i8),
            2 => plain!(U16, u16),
            3 => plain!(I16, i16),
            4 => plain!(U32, u32),
            5 => plain!(I32, i32),
            6 => plain!(F32, f32),
            10 => plain!(U64, u64),
            11 => plain!(I64, i64),
            12 => plain!(F64, f64),
            7 => Array::Bool((0..n).map(|_| self.bool(key)).collect::<Result<_>>()?),
            8 => {
                let what = format!("an element of `{key}`");
                let mut out = Vec::with_capacity(n);
                for _ in 0..n {
                    out.push(self.string(&what)?);
                }
                Array::String(out)
            }
            _ => {
                let mut out = Vec::with_capacity(n);
                for _ in 0..n {
                    out.push(self.array_value(key, depth + 1)?);
                }
                Array::Array(out)
            }
        })
    }
}
