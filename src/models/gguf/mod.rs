//! GGUF, llama.cpp's model file: [`GgufFile`] holds a file's metadata (typed [`Value`]s, with
//! accessors that name the key and the type they wanted) and its tensor infos, over the file
//! mapped into memory; [`GgufFile::read_f32`] dequantizes one tensor to f32. Versions 2 and 3
//! (the same layout, little-endian) are read; `general.alignment` is honoured.
//!
//! This module knows the container, not any model: which keys and tensors make a Llama is
//! `models::llama::gguf`, and a tokenizer built from the `tokenizer.ggml.*` keys reads them
//! through the same accessors. `types.rs` names ggml's tensor types, `blocks.rs` lays out and
//! dequantizes the quantized ones, `read.rs` parses the header (every size in checked
//! arithmetic, every count checked against the bytes left before anything is allocated),
//! `write.rs` writes a file.
//!
//! Layout (gguf-py's `gguf_reader.py`, llama.cpp's `docs/gguf.md`): magic `GGUF`, version u32,
//! tensor count u64, metadata count u64; each metadata entry a key string (u64 length + UTF-8
//! bytes), a value type u32 and the value (arrays: element type u32, count u64, elements); each
//! tensor info a name, dimension count u32, dimensions u64 (innermost first), type u32, offset
//! u64; then padding to the alignment and the tensor data, each tensor at its offset from the
//! data's start, a multiple of the alignment.

pub mod blocks;
mod read;
pub mod types;
pub mod write;

pub use types::GgmlType;

use crate::error::{Error, IoContext, Result};
use std::path::{Path, PathBuf};

/// The alignment of tensor data when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: usize = 32;
/// The four bytes a GGUF file starts with.
pub const MAGIC: [u8; 4] = *b"GGUF";

/// A GGUF file: its metadata and tensor infos, parsed and checked, and its bytes, mapped.
#[derive(Debug)]
pub struct GgufFile {
    pub path: PathBuf,
    /// 2 or 3.
    pub version: u32,
    /// Of the tensor data, in bytes: `general.alignment` or [`DEFAULT_ALIGNMENT`].
    pub alignment: usize,
    /// Every metadata entry, in file order (keys are unique).
    pub metadata: Vec<(String, Value)>,
    /// Every tensor, in file order (names are unique), each checked to lie inside the file.
    pub tensors: Vec<TensorInfo>,
    /// Where the tensor data starts, in bytes from the start of the file.
    pub data_offset: usize,
    bytes: memmap2::Mmap,
}

/// One tensor's entry in the file.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    /// Dimensions innermost first, as ggml orders them: a Hugging Face `(n_out, n_in)` weight
    /// is `[n_in, n_out]` here.
    pub dims: Vec<usize>,
    pub ty: GgmlType,
    /// Where its bytes start, from the start of the file.
    pub offset: usize,
    /// The product of `dims`.
    pub n_elements: usize,
    /// Bytes in the file: whole blocks of `ty`.
    pub n_bytes: usize,
}

/// A metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    U64(u64),
    I64(i64),
    F32(f32),
    F64(f64),
    Bool(bool),
    String(String),
    Array(Array),
}

/// A metadata array: elements of one type.
#[derive(Debug, Clone, PartialEq)]
pub enum Array {
    U8(Vec<u8>),
    I8(Vec<i8>),
    U16(Vec<u16>),
    I16(Vec<i16>),
    U32(Vec<u32>),
    I32(Vec<i32>),
    U64(Vec<u64>),
    I64(Vec<i64>),
    F32(Vec<f32>),
    F64(Vec<f64>),
    Bool(Vec<bool>),
    String(Vec<String>),
    Array(Vec<Array>),
}

impl Value {
    /// The type's name in the GGUF spec (`uint32`, `string`, `array of string`).
    pub fn type_name(&self) -> String {
        match self {
            Value::U8(_) => "uint8".into(),
            Value::I8(_) => "int8".into(),
            Value::U16(_) => "uint16".into(),
            Value::I16(_) => "int16".into(),
            Value::U32(_) => "uint32".into(),
            Value::I32(_) => "int32".into(),
            Value::U64(_) => "uint64".into(),
            Value::I64(_) => "int64".into(),
            Value::F32(_) => "float32".into(),
            Value::F64(_) => "float64".into(),
            Value::Bool(_) => "bool".into(),
            Value::String(_) => "string".into(),
            Value::Array(a) => format!("array of {}", a.element_type_name()),
        }
    }

    /// An integer of any width, when it is one and not negative.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::U8(v) => Some(v.into()),
            Value::U16(v) => Some(v.into()),
            Value::U32(v) => Some(v.into()),
            Value::U64(v) => Some(v),
            Value::I8(v) => u64::try_from(v).ok(),
            Value::I16(v) => u64::try_from(v).ok(),
            Value::I32(v) => u64::try_from(v).ok(),
            Value::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// A float of either width.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::F32(v) => Some(v.into()),
            Value::F64(v) => Some(v),
            _ => None,
        }
    }

    /// The text of a string value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// A short rendering for messages and `info`: the value, or an array's type and length.
    pub fn summary(&self) -> String {
        match self {
            Value::String(s) if s.chars().count() > 60 => {
                format!("{:?}... ({} bytes)", s.chars().take(60).collect::<String>(), s.len())
            }
            Value::String(s) => format!("{s:?}"),
            Value::Array(a) => format!("[{} x {}]", a.len(), a.element_type_name()),
            Value::U8(v) => v.to_string(),
            Value::I8(v) => v.to_string(),
            Value::U16(v) => v.to_string(),
            Value::I16(v) => v.to_string(),
            Value::U32(v) => v.to_string(),
            Value::I32(v) => v.to_string(),
            Value::U64(v) => v.to_string(),
            Value::I64(v) => v.to_string(),
            Value::F32(v) => v.to_string(),
            Value::F64(v) => v.to_string(),
            Value::Bool(v) => v.to_string(),
        }
    }
}

impl Array {
    /// Elements.
    pub fn len(&self) -> usize {
        match self {
            Array::U8(v) => v.len(),
            Array::I8(v) => v.len(),
            Array::U16(v) => v.len(),
            Array::I16(v) => v.len(),
            Array::U32(v) => v.len(),
            Array::I32(v) => v.len(),
            Array::U64(v) => v.len(),
            Array::I64(v) => v.len(),
            Array::F32(v) => v.len(),
            Array::F64(v) => v.len(),
            Array::Bool(v) => v.len(),
            Array::String(v) => v.len(),
            Array::Array(v) => v.len(),
        }
    }

    /// Whether it has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The elements' type name (`string`, `int32`, `array`).
    pub fn element_type_name(&self) -> &'static str {
        match self {
            Array::U8(_) => "uint8",
            Array::I8(_) => "int8",
            Array::U16(_) => "uint16",
            Array::I16(_) => "int16",
            Array::U32(_) => "uint32",
            Array::I32(_) => "int32",
            Array::U64(_) => "uint64",
            Array::I64(_) => "int64",
            Array::F32(_) => "float32",
            Array::F64(_) => "float64",
            Array::Bool(_) => "bool",
            Array::String(_) => "string",
            Array::Array(_) => "array",
        }
    }
}

impl GgufFile {
    /// Maps and parses the file at `path`: the header, every metadata entry and every tensor
    /// info, each tensor checked to be of a known type, whole blocks, aligned, and inside the
    /// file. The tensor data is not read.
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be opened or mapped; [`Error::Gguf`] naming what is
    /// wrong and where (a bad magic or version, a string or array longer than the file, a
    /// duplicate key or tensor, a bad alignment, an unknown tensor type id, a tensor past the
    /// end of the file).
    pub fn open(path: &Path) -> Result<GgufFile> {
        let file = std::fs::File::open(path).reading(path)?;
        let len = file.metadata().reading(path)?.len();
        if len < read::HEADER_BYTES as u64 {
            return Err(Error::Gguf {
                path: path.to_path_buf(),
                reason: format!("{len} bytes, too short for a GGUF header ({} bytes)", read::HEADER_BYTES),
            });
        }
        // Safety: the map is read-only and private to this value. Another process truncating
        // or rewriting the file while it is mapped would change or fault these bytes; like
        // llama.cpp, we accept that for model files, which are not edited in place.
        let bytes = unsafe { memmap2::Mmap::map(&file) }.reading(path)?;
        let header = read::parse(&bytes, path)?;
        Ok(GgufFile {
            path: path.to_path_buf(),
            version: header.version,
            alignment: header.alignment,
            metadata: header.metadata,
            tensors: header.tensors,
            data_offset: header.data_offset,
            bytes,
        })
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    fn wrong_type(&self, key: &str, expected: &str, found: &Value) -> Error {
        Error::Gguf {
            path: self.path.clone(),
            reason: format!(
                "metadata `{key}` is {} {}, expected {expected}",
                found.type_name(),
                found.summary()
            ),
        }
    }

    /// `key` as a count or size: an integer of any width, not negative, that fits `usize`.
    ///
    /// # Errors
    /// [`Error::Gguf`] naming the key, when it holds anything else.
    pub fn usize(&self, key: &str) -> Result<Option<usize>> {
        self.get(key)
            .map(|v| {
                v.as_u64()
                    .and_then(|n| usize::try_from(n).ok())
                    .ok_or_else(|| self.wrong_type(key, "a non-negative integer", v))
            })
            .transpose()
    }

    /// `key` as a float (float32 or float64).
    ///
    /// # Errors
    /// [`Error::Gguf`] naming the key, when it holds anything else.
    pub fn f64(&self, key: &str) -> Result<Option<f64>> {
        self.get(key).map(|v| v.as_f64().ok_or_else(|| self.wrong_type(key, "a float", v))).transpose()
    }

    /// `key` as a string.
    ///
    /// # Errors
    /// [`Error::Gguf`] naming the key, when it holds anything else.
    pub fn str(&self, key: &str) -> Result<Option<&str>> {
        self.get(key).map(|v| v.as_str().ok_or_else(|| self.wrong_type(key, "a string", v))).transpose()
    }

    /// `key` as a bool.
    ///
    /// # Errors
    /// [`Error::Gguf`] naming the key, when it holds anything else.
    pub fn bool(&self, key: &str) -> Result<Option<bool>> {
        self.get(key)
            .map(|v| match v {
                Value::Bool(b) => Ok(*b),
                other => Err(self.wrong_type(key, "a bool", other)),
            })
            .transpose()
    }

    /// `key` as an array of strings (`tokenizer.ggml.tokens`, `tokenizer.ggml.merges`).
    ///
    /// # Errors
    /// [`Error::Gguf`] naming the key, when it holds anything else.
    pub fn strings(&self, key: &str) -> Result<Option<&[String]>> {
        self.get(key)
            .map(|v| match v {
                Value::Array(Array::String(s)) => Ok(&s[..]),
                other => Err(self.wrong_type(key, "an array of string", other)),
            })
            .transpose()
    }

    /// `key` as an array of int32 (`tokenizer.ggml.token_type`).
    ///
    /// # Errors
    /// [`Error::Gguf`] naming the key, when it holds anything else.
    pub fn i32s(&self, key: &str) -> Result<Option<&[i32]>> {
        self.get(key)
            .map(|v| match v {
                Value::Array(Array::I32(s)) => Ok(&s[..]),
                other => Err(self.wrong_type(key, "an array of int32", other)),
            })
            .transpose()
    }

    /// `key` as an array of float32 (`tokenizer.ggml.scores`).
    ///
    /// # Errors
    /// [`Error::Gguf`] naming the key, when it holds anything else.
    pub fn f32s(&self, key: &str) -> Result<Option<&[f32]>> {
        self.get(key)
            .map(|v| match v {
                Value::Array(Array::F32(s)) => Ok(&s[..]),
                other => Err(self.wrong_type(key, "an array of float32", other)),
            })
            .transpose()
    }

    /// The tensor named `name`.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// The bytes of `tensor` as the file stores them.
    pub fn tensor_bytes(&self, tensor: &TensorInfo) -> &[u8] {
        // `read::parse` checked that every tensor lies inside the file.
        &self.bytes[tensor.offset..tensor.offset + tensor.n_bytes]
    }

    /// `tensor` dequantized to f32, `(n_elements,)` in the file's order (innermost dimension
    /// fastest, so a ggml `[n_in, n_out]` weight comes out as `(n_out, n_in)` row-major).
    ///
    /// # Errors
    /// [`Error::GgufTensor`] when its type is not one smallmind reads (named, with the list of
    /// those it does); [`Error::NonFiniteWeight`] naming the first NaN or infinite value.
    pub fn read_f32(&self, tensor: &TensorInfo) -> Result<Vec<f32>> {
        require_supported(&self.path, tensor)?;
        let mut out = vec![0.0f32; tensor.n_elements];
        blocks::dequantize(tensor.ty, self.tensor_bytes(tensor), &mut out);
        if let Some(index) = out.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFiniteWeight {
                path: self.path.clone(),
                name: tensor.name.clone(),
                index,
                value: out[index],
            });
        }
        Ok(out)
    }
}

/// Refuses a tensor whose type smallmind does not read, by the type's name.
///
/// # Errors
/// [`Error::GgufTensor`] naming the type and the supported ones.
pub fn require_supported(path: &Path, tensor: &TensorInfo) -> Result<()> {
    if tensor.ty.is_supported() {
        return Ok(());
    }
    Err(Error::GgufTensor {
        path: path.to_path_buf(),
        name: tensor.name.clone(),
        reason: format!(
            "type {} is not supported; smallmind reads {} (requantize with llama.cpp's llama-quantize)",
            tensor.ty,
            types::supported_names()
        ),
    })
}
