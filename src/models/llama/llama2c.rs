//! llama2.c's checkpoint format, `model.bin`: the header, its validation, and the tensors in the
//! file's order, read and written. The model built from [`LlamaWeights`] is `llama/mod.rs` and
//! its shape [`LlamaConfig`] is `llama/config.rs`; this module owns only the format. (~390
//! lines of format and ~190 of the unit tests that pin it, at the bottom as everywhere.)
//!
//! The file: 7 little-endian `i32` (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size,
//! seq_len; a negative vocab_size means the classifier is stored separately), then `f32` arrays:
//! token embedding (vocab, dim); rms_att (layer, dim); wq (layer, dim, n_heads * head_size);
//! wk, wv (layer, dim, n_kv_heads * head_size); wo (layer, n_heads * head_size, dim); rms_ffn
//! (layer, dim); w1 (layer, hidden, dim); w2 (layer, dim, hidden); w3 (layer, hidden, dim);
//! rms_final (dim); two legacy RoPE tables of seq_len * head_size / 2 floats each (skipped on
//! read, written as the frequencies llama2.c's exporter wrote); the classifier (vocab, dim) when
//! not shared.
//!
//! The versioned format of llama2.c's `export.py --version N`: a 256-byte header (the magic
//! `0x616b3432`, "ak42" read as a little-endian `u32`; an `i32` version; the 7 ints above with a
//! positive vocab_size; a shared-classifier byte; zero padding). Version 1 (float32) is read and
//! written: the same arrays as the legacy file, in the order rms_att, rms_ffn, rms_final, token
//! embedding, wq, wk, wv, wo, w1, w2, w3, then the classifier when not shared, without RoPE
//! tables. Version 2 (int8 groups, "Q8_0") and any other version are refused by name or number.
//!
//! Every size read from a file is computed in checked arithmetic, and [`LlamaConfig::validate`]
//! refuses a shape whose run-time memory this machine cannot hold, before anything is allocated.

use super::config::{LLAMA2C_NORM_EPS, LLAMA2C_ROPE_THETA, LlamaConfig, is_legacy_rope_table};
use crate::error::{Error, IoContext, Result};
use crate::kernels::rope;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Every tensor of a llama2.c checkpoint, row-major as in the file (per-layer tensors stacked).
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaWeights {
    pub config: LlamaConfig,
    /// `(vocab_size, dim)`.
    pub token_embedding: Vec<f32>,
    /// `(n_layers, dim)`.
    pub rms_att: Vec<f32>,
    /// `(n_layers, n_heads * head_size, dim)`: per layer, one row per output, as llama2.c
    /// computes `W @ x` (so do all the projections below).
    pub wq: Vec<f32>,
    /// `(n_layers, n_kv_heads * head_size, dim)`.
    pub wk: Vec<f32>,
    /// `(n_layers, n_kv_heads * head_size, dim)`.
    pub wv: Vec<f32>,
    /// `(n_layers, dim, n_heads * head_size)`.
    pub wo: Vec<f32>,
    /// `(n_layers, dim)`.
    pub rms_ffn: Vec<f32>,
    /// `(n_layers, hidden_dim, dim)`.
    pub w1: Vec<f32>,
    /// `(n_layers, dim, hidden_dim)`.
    pub w2: Vec<f32>,
    /// `(n_layers, hidden_dim, dim)`.
    pub w3: Vec<f32>,
    /// `(dim,)`.
    pub rms_final: Vec<f32>,
    /// `(vocab_size, dim)`, or `None` when shared with the token embedding.
    pub classifier: Option<Vec<f32>>,
}

/// The legacy header's size in bytes.
const HEADER_BYTES: usize = 7 * 4;
/// The magic number that starts llama2.c's versioned checkpoints: "ak42" as a little-endian u32.
pub const LLAMA2C_MAGIC: u32 = 0x616b_3432;
/// The versioned header's size in bytes: magic, version, the 7 legacy ints, the
/// shared-classifier byte, zero padding.
const V1_HEADER_BYTES: usize = 256;
/// The version-1 (float32) tensor order: the norms first, no RoPE tables, then the classifier
/// when it is not shared.
const V1_ORDER: [&str; 11] =
    ["rms_att", "rms_ffn", "rms_final", "token_embedding", "wq", "wk", "wv", "wo", "w1", "w2", "w3"];

impl LlamaWeights {
    /// The weights of shape `c` from its tensors in the order Hugging Face and GGUF checkpoints
    /// list them (`next` gives each in turn): the embedding; per layer the attention norm, q, k,
    /// v, o, the FFN norm, w1 (gate), w3 (up), w2 (down); the final norm; the classifier unless
    /// shared. `qk` maps q's and k's rows to ours (adjacent pairs) with the head count of each.
    ///
    /// # Errors
    /// The first error `next` gives.
    pub fn gather(
        c: &LlamaConfig,
        next: &mut dyn FnMut() -> Result<Vec<f32>>,
        qk: &dyn Fn(Vec<f32>, usize) -> Vec<f32>,
    ) -> Result<LlamaWeights> {
        let mut w = LlamaWeights {
            token_embedding: next()?,
            rms_att: Vec::new(),
            wq: Vec::new(),
            wk: Vec::new(),
            wv: Vec::new(),
            wo: Vec::new(),
            rms_ffn: Vec::new(),
            w1: Vec::new(),
            w2: Vec::new(),
            w3: Vec::new(),
            rms_final: Vec::new(),
            classifier: None,
            config: c.clone(),
        };
        for _ in 0..c.n_layers {
            w.rms_att.extend(next()?);
            w.wq.extend(qk(next()?, c.n_heads));
            w.wk.extend(qk(next()?, c.n_kv_heads));
            w.wv.extend(next()?);
            w.wo.extend(next()?);
            w.rms_ffn.extend(next()?);
            w.w1.extend(next()?);
            w.w3.extend(next()?);
            w.w2.extend(next()?);
        }
        w.rms_final = next()?;
        if !c.shared_classifier {
            w.classifier = Some(next()?);
        }
        Ok(w)
    }

    /// Reads a llama2.c `.bin` checkpoint, legacy or version 1 (see [`LlamaWeights::parse`]).
    ///
    /// # Errors
    /// [`Error::Io`], or [`LlamaWeights::parse`]'s errors with the file's path.
    pub fn read(path: &Path) -> Result<LlamaWeights> {
        let bytes = std::fs::read(path).reading(path)?;
        Self::parse(&bytes).map_err(|e| match e {
            Error::Config(reason) => Error::Config(format!("{}: {reason}", path.display())),
            Error::NonFiniteWeight { name, index, value, .. } => {
                Error::NonFiniteWeight { path: path.to_path_buf(), name, index, value }
            }
            other => other,
        })
    }

    /// Parses the bytes of a llama2.c checkpoint: the legacy format (7 ints, then the tensors
    /// and RoPE tables) or, when the file starts with [`LLAMA2C_MAGIC`], the versioned format's
    /// version 1 (float32). Every size is computed in checked arithmetic and compared with the
    /// file's length before anything is allocated; the file must hold exactly what its header
    /// describes.
    ///
    /// # Errors
    /// [`Error::Config`] for a short, long or corrupt file, version 2 (int8 "Q8_0") or an
    /// unknown version; [`Error::NonFiniteWeight`] (with an empty path, which
    /// [`LlamaWeights::read`] fills in) for a NaN or infinite weight.
    pub fn parse(bytes: &[u8]) -> Result<LlamaWeights> {
        if bytes.get(..4) == Some(LLAMA2C_MAGIC.to_le_bytes().as_slice()) {
            Self::parse_versioned(bytes)
        } else {
            Self::parse_legacy(bytes)
        }
    }

    /// The legacy format: 7 ints, the tensors, the RoPE tables, the classifier if separate.
    fn parse_legacy(bytes: &[u8]) -> Result<LlamaWeights> {
        let header = bytes.get(..HEADER_BYTES).ok_or_else(|| {
            Error::Config(format!(
                "not a llama2.c checkpoint: {} bytes, the header alone is {HEADER_BYTES}",
                bytes.len()
            ))
        })?;
        let fields = read_header_ints(header);
        let vocab = fields[5];
        let config = config_from_header(&fields, vocab.unsigned_abs() as usize, vocab > 0)?;
        let sizes = config.tensor_sizes();
        Self::from_file_tensors(config, bytes, HEADER_BYTES, &sizes)
    }

    /// The versioned format (the magic is checked by the caller): version 1, or an error.
    fn parse_versioned(bytes: &[u8]) -> Result<LlamaWeights> {
        let header = bytes.get(..V1_HEADER_BYTES).ok_or_else(|| {
            Error::Config(format!(
                "truncated llama2.c checkpoint: it starts with the version magic \"ak42\", whose header is \
                 {V1_HEADER_BYTES} bytes; the file has {}",
                bytes.len()
            ))
        })?;
        let version = i32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        match version {
            1 => {}
            2 => {
                return Err(Error::Config(
                    "llama2.c checkpoint version 2 (int8 groups, \"Q8_0\") is not supported: export version 1 \
                     (float32) or the legacy format with llama2.c's export.py --version 1 or 0"
                        .into(),
                ));
            }
            other => {
                return Err(Error::Config(format!(
                    "unknown llama2.c checkpoint version {other}: this reader knows the legacy format (no magic) \
                     and version 1 (float32); version 2 (Q8_0) is refused"
                )));
            }
        }
        let fields = read_header_ints(&header[8..8 + HEADER_BYTES]);
        let shared = match header[8 + HEADER_BYTES] {
            0 => false,
            1 => true,
            flag => {
                return Err(Error::Config(format!(
                    "llama2.c version 1 header: the shared-classifier flag is {flag}, not 0 or 1"
                )));
            }
        };
        let vocab = usize::try_from(fields[5])
            .map_err(|_| Error::Config(format!("header field vocab_size is {}, not a size", fields[5])))?;
        let config = config_from_header(&fields, vocab, shared)?;
        let sizes = config.tensor_sizes();
        let size = |name: &str| sizes.iter().find(|(n, _)| *n == name).map_or(0, |(_, n)| *n);
        let order: Vec<(&'static str, usize)> = V1_ORDER
            .iter()
            .chain(if shared { None } else { Some(&"classifier") })
            .map(|&name| (name, size(name)))
            .collect();
        Self::from_file_tensors(config, bytes, V1_HEADER_BYTES, &order)
    }

    /// The weights of `config` from the f32 tensors `order` lists (name, floats), stored one
    /// after the other from byte `start` to the end of `bytes`; the legacy RoPE tables are read
    /// past, every other value must be finite.
    fn from_file_tensors(
        config: LlamaConfig,
        bytes: &[u8],
        start: usize,
        order: &[(&'static str, usize)],
    ) -> Result<LlamaWeights> {
        let floats = order.iter().try_fold(0usize, |total, (_, n)| total.checked_add(*n));
        let expected = floats.and_then(|n| n.checked_mul(4)).and_then(|n| n.checked_add(start));
        let Some(expected) = expected else {
            return Err(Error::Config(format!(
                "the tensor sizes of the header ({config:?}) overflow 64-bit sizes"
            )));
        };
        if bytes.len() < expected {
            return Err(Error::Config(format!(
                "truncated llama2.c checkpoint: the header ({config:?}) needs {expected} bytes, the file has {}",
                bytes.len()
            )));
        }
        if bytes.len() > expected {
            return Err(Error::Config(format!(
                "llama2.c checkpoint longer than its header says: the header ({config:?}) accounts for {expected} \
                 bytes, the file has {} (a different format, or a wrong shared-classifier field?)",
                bytes.len()
            )));
        }
        let mut tensors = HashMap::with_capacity(order.len());
        let mut at = start;
        for &(name, n) in order {
            // In bounds: the file holds exactly the sum of these sizes after `start`.
            let data = &bytes[at..at + n * 4];
            at += n * 4;
            if is_legacy_rope_table(name) {
                continue;
            }
            let values: Vec<f32> =
                data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
            if let Some(index) = values.iter().position(|v| !v.is_finite()) {
                let (name, value) = (name.to_string(), values[index]);
                return Err(Error::NonFiniteWeight { path: PathBuf::new(), name, index, value });
            }
            tensors.insert(name, values);
        }
        Self::from_tensors(config, |name, _| Ok(tensors.remove(name).unwrap_or_default()))
    }

    /// Weights of `config`'s shape from `take(name, len)`, called once per entry of
    /// [`LlamaConfig::tensor_sizes`] in file order; what it returns for the legacy RoPE tables is
    /// dropped.
    pub fn from_tensors<E>(
        config: LlamaConfig,
        mut take: impl FnMut(&'static str, usize) -> std::result::Result<Vec<f32>, E>,
    ) -> std::result::Result<LlamaWeights, E> {
        let sizes = config.tensor_sizes();
        let mut tensors = sizes.iter().map(|&(name, n)| take(name, n));
        let mut next = || tensors.next().expect("one tensor per size");
        let (token_embedding, rms_att, wq, wk, wv, wo) =
            (next()?, next()?, next()?, next()?, next()?, next()?);
        let (rms_ffn, w1, w2, w3, rms_final) = (next()?, next()?, next()?, next()?, next()?);
        let (_freq_real, _freq_imag) = (next()?, next()?);
        let classifier = if config.shared_classifier { None } else { Some(next()?) };
        Ok(LlamaWeights {
            config,
            token_embedding,
            rms_att,
            wq,
            wk,
            wv,
            wo,
            rms_ffn,
            w1,
            w2,
            w3,
            rms_final,
            classifier,
        })
    }

    /// The tensors before the legacy RoPE tables, in file order, by their
    /// [`LlamaConfig::tensor_sizes`] names (the classifier, last in the file, is apart).
    pub fn tensors(&self) -> [(&'static str, &[f32]); 11] {
        [
            ("token_embedding", &self.token_embedding),
            ("rms_att", &self.rms_att),
            ("wq", &self.wq),
            ("wk", &self.wk),
            ("wv", &self.wv),
            ("wo", &self.wo),
            ("rms_ffn", &self.rms_ffn),
            ("w1", &self.w1),
            ("w2", &self.w2),
            ("w3", &self.w3),
            ("rms_final", &self.rms_final),
        ]
    }

    /// The bytes of this checkpoint in llama2.c's legacy format, which has no field for the
    /// RMSNorm epsilon or the RoPE base: a model with other values than llama2.c's cannot be
    /// written.
    ///
    /// # Errors
    /// [`Error::Config`] for such a model, or a dimension beyond the header's `i32`.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let header = legacy_header(&self.config)?;
        let c = &self.config;
        let mut out = Vec::with_capacity(
            HEADER_BYTES + c.tensor_sizes().iter().map(|(_, n)| n.saturating_mul(4)).sum::<usize>(),
        );
        let tensors = self.tensors().map(|(_, t)| t);
        write_legacy(header, c, tensors, self.classifier.as_deref(), &mut out)
            .map_err(|e| Error::Config(format!("cannot hold the checkpoint in memory: {e}")))?;
        Ok(out)
    }

    /// The bytes of this checkpoint in llama2.c's versioned format, version 1 (float32):
    /// what llama2.c's `export.py --version 1` writes.
    ///
    /// # Errors
    /// As [`LlamaWeights::to_bytes`].
    pub fn to_v1_bytes(&self) -> Result<Vec<u8>> {
        let header = self.header_ints()?;
        let mut out = Vec::with_capacity(V1_HEADER_BYTES);
        out.extend_from_slice(&LLAMA2C_MAGIC.to_le_bytes());
        out.extend_from_slice(&1i32.to_le_bytes());
        for v in header {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.push(u8::from(self.config.shared_classifier));
        out.resize(V1_HEADER_BYTES, 0);
        let by_name: HashMap<&str, &[f32]> = self.tensors().into_iter().collect();
        let tensors = V1_ORDER.iter().map(|name| by_name[name]);
        for t in tensors.chain(self.classifier.as_deref()) {
            for v in t {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        Ok(out)
    }

    /// The 7 header ints (the vocabulary positive), after checking that llama2.c's format can
    /// hold this model: its RMSNorm epsilon and RoPE base are llama2.c's, every dimension fits
    /// an `i32`.
    fn header_ints(&self) -> Result<[i32; 7]> {
        header_ints(&self.config)
    }
}

/// The 7 header ints of `c` (vocab_size positive), or why llama2.c's format cannot hold it.
fn header_ints(c: &LlamaConfig) -> Result<[i32; 7]> {
    if c.norm_eps != LLAMA2C_NORM_EPS || c.rope_theta != LLAMA2C_ROPE_THETA {
        return Err(Error::Config(format!(
            "llama2.c's format fixes the RMSNorm epsilon at {LLAMA2C_NORM_EPS:e} and the RoPE base at \
             {LLAMA2C_ROPE_THETA}; this model has {:e} and {}: export it as a Hugging Face directory",
            c.norm_eps, c.rope_theta
        )));
    }
    let dims = [c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size, c.seq_len];
    let mut header = [0i32; 7];
    for (slot, (dim, name)) in header.iter_mut().zip(dims.into_iter().zip(HEADER_FIELDS)) {
        *slot = i32::try_from(dim).map_err(|_| {
            Error::Config(format!("{name} {dim} does not fit llama2.c's 32-bit header field"))
        })?;
    }
    Ok(header)
}

/// The legacy file's header for `c`: [`header_ints`], with vocab_size negated when the
/// classifier is stored apart.
///
/// # Errors
/// As [`LlamaWeights::to_bytes`].
pub fn legacy_header(c: &LlamaConfig) -> Result<[i32; 7]> {
    let mut header = header_ints(c)?;
    if !c.shared_classifier {
        header[5] = -header[5];
    }
    Ok(header)
}

/// Writes llama2.c's legacy file to `out`: `header` ([`legacy_header`]), then `tensors` (the
/// eleven arrays before the RoPE tables in file order, each given whole or as consecutive
/// slices, e.g. one per layer), the RoPE tables of `c`, and the classifier when not shared. What
/// is written is streamed, a slice at a time: the caller's `out` decides whether it is a file
/// or memory. The caller checks that the slices add up to [`LlamaConfig::tensor_sizes`].
///
/// # Errors
/// `out`'s I/O errors.
pub fn write_legacy<'a>(
    header: [i32; 7],
    c: &LlamaConfig,
    tensors: impl IntoIterator<Item = &'a [f32]>,
    classifier: Option<&[f32]>,
    out: &mut impl std::io::Write,
) -> std::io::Result<()> {
    for v in header {
        out.write_all(&v.to_le_bytes())?;
    }
    let mut buf = Vec::with_capacity(16 << 10);
    let mut put = |t: &[f32]| -> std::io::Result<()> {
        for chunk in t.chunks(4 << 10) {
            buf.clear();
            for v in chunk {
                buf.extend_from_slice(&v.to_le_bytes());
            }
            out.write_all(&buf)?;
        }
        Ok(())
    };
    for t in tensors {
        put(t)?;
    }
    let (real, imag) = legacy_rope_tables(c);
    put(&real)?;
    put(&imag)?;
    if let Some(t) = classifier {
        put(t)?;
    }
    Ok(())
}

/// The legacy header's fields, in order.
const HEADER_FIELDS: [&str; 7] =
    ["dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"];

/// The 7 little-endian `i32` of `header` (at least 28 bytes).
fn read_header_ints(header: &[u8]) -> [i32; 7] {
    std::array::from_fn(|i| {
        i32::from_le_bytes([header[4 * i], header[4 * i + 1], header[4 * i + 2], header[4 * i + 3]])
    })
}

/// The validated config of a header's 7 ints, with the vocabulary and sharing as the format
/// encodes them.
fn config_from_header(fields: &[i32; 7], vocab_size: usize, shared_classifier: bool) -> Result<LlamaConfig> {
    let size = |i: usize| -> Result<usize> {
        usize::try_from(fields[i]).map_err(|_| {
            Error::Config(format!("header field {} is {}, not a size", HEADER_FIELDS[i], fields[i]))
        })
    };
    let config = LlamaConfig {
        dim: size(0)?,
        hidden_dim: size(1)?,
        n_layers: size(2)?,
        n_heads: size(3)?,
        n_kv_heads: size(4)?,
        vocab_size,
        seq_len: size(6)?,
        shared_classifier,
        norm_eps: LLAMA2C_NORM_EPS,
        rope_theta: LLAMA2C_ROPE_THETA,
    };
    config.validate()?;
    Ok(config)
}

/// The cos/sin tables llama2.c's exporter wrote (unused by readers, kept for compatibility).
fn legacy_rope_tables(c: &LlamaConfig) -> (Vec<f32>, Vec<f32>) {
    let half = c.head_size() / 2;
    let angles =
        (0..c.seq_len).flat_map(|pos| (0..half).map(move |i| rope::angle(pos, i, c.head_size(), 10000.0)));
    angles.map(|a| (a.cos() as f32, a.sin() as f32)).unzip()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(shared: bool) -> LlamaConfig {
        LlamaConfig {
            dim: 8,
            hidden_dim: 12,
            n_layers: 2,
            n_heads: 4,
            n_kv_heads: 2,
            vocab_size: 10,
            seq_len: 6,
            shared_classifier: shared,
            norm_eps: LLAMA2C_NORM_EPS,
            rope_theta: LLAMA2C_ROPE_THETA,
        }
    }

    /// Weights whose every value says where it came from.
    fn weights(shared: bool) -> LlamaWeights {
        let c = config(shared);
        let sizes = c.tensor_sizes();
        let t = |i: usize| (0..sizes[i].1).map(|j| i as f32 * 1000.0 + j as f32).collect::<Vec<f32>>();
        LlamaWeights {
            token_embedding: t(0),
            rms_att: t(1),
            wq: t(2),
            wk: t(3),
            wv: t(4),
            wo: t(5),
            rms_ffn: t(6),
            w1: t(7),
            w2: t(8),
            w3: t(9),
            rms_final: t(10),
            classifier: (!shared).then(|| t(13)),
            config: c,
        }
    }

    #[test]
    fn checkpoints_round_trip_with_and_without_a_shared_classifier() {
        for shared in [true, false] {
            let w = weights(shared);
            let bytes = w.to_bytes().unwrap();
            let floats: usize = w.config.tensor_sizes().iter().map(|(_, n)| n).sum();
            assert_eq!(bytes.len(), HEADER_BYTES + floats * 4);
            // The sixth header field is the vocabulary, negative for a separate classifier.
            assert_eq!(i32::from_le_bytes(bytes[20..24].try_into().unwrap()), if shared { 10 } else { -10 });
            assert_eq!(LlamaWeights::parse(&bytes).unwrap(), w);
        }
    }

    #[test]
    fn bad_files_get_one_clear_error() {
        let bytes = weights(false).to_bytes().unwrap();
        let err = LlamaWeights::parse(&bytes[..bytes.len() - 4]).unwrap_err().to_string();
        assert!(err.contains("truncated llama2.c checkpoint") && err.contains("the file has"), "{err}");
        let err = LlamaWeights::parse(&bytes[..10]).unwrap_err().to_string();
        assert!(err.contains("not a llama2.c checkpoint"), "{err}");
        let mut bad = bytes.clone();
        bad[12..16].copy_from_slice(&3i32.to_le_bytes()); // n_heads 3 does not divide dim 8
        let err = LlamaWeights::parse(&bad).unwrap_err().to_string();
        assert!(err.contains("n_heads 3 does not divide dim 8"), "{err}");
        let mut bad = bytes;
        bad[16..20].copy_from_slice(&3i32.to_le_bytes()); // n_kv_heads 3 does not divide n_heads 4
        assert!(LlamaWeights::parse(&bad).unwrap_err().to_string().contains("n_kv_heads 3"));
    }

    /// The 64-byte legacy file of the bug report (`llama2c_overflow_header.py`): each field
    /// valid, the tensor sizes overflowing 64-bit arithmetic (their wrapped sum is 2 floats).
    fn overflow_header() -> Vec<u8> {
        let fields = [1 << 30, 2, 1 << 28, 1 << 29, 1 << 29, i32::MAX, 1];
        let mut bytes: Vec<u8> = fields.iter().flat_map(|v: &i32| v.to_le_bytes()).collect();
        bytes.resize(64, 0);
        bytes
    }

    #[test]
    fn sizes_that_overflow_are_refused_in_one_line() {
        let err = LlamaWeights::parse(&overflow_header()).unwrap_err().to_string();
        assert!(err.contains("wq") && err.contains("64-bit"), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        let c = LlamaConfig {
            dim: 1 << 30,
            n_layers: 1 << 28,
            n_heads: 1 << 29,
            n_kv_heads: 1 << 29,
            ..config(true)
        };
        assert_eq!(c.tensor_sizes()[2], ("wq", usize::MAX), "saturates, never wraps");
        assert_eq!(c.checked_parameter_count(), None);
    }

    #[test]
    fn a_context_no_machine_can_hold_is_refused_saying_what_it_needs() {
        // seq_len is backed by no tensor: 2^31 positions in 2^20 layers of 4-float keys and
        // values need 64 PiB of KV cache, more than any machine has.
        let c = LlamaConfig { seq_len: i32::MAX as usize, n_layers: 1 << 20, ..config(true) };
        let err = c.validate().unwrap_err().to_string();
        assert!(
            err.contains("needs") && err.contains("KV cache for 2147483647 positions: 64.0 PiB"),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
    }

    /// llama2.c's `export.py --version 1` layout, built by hand from the documented order.
    fn v1_by_hand(w: &LlamaWeights) -> Vec<u8> {
        let c = &w.config;
        let mut out = Vec::new();
        out.extend_from_slice(&0x616b_3432u32.to_le_bytes());
        out.extend_from_slice(&1i32.to_le_bytes());
        for v in [c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size, c.seq_len] {
            out.extend_from_slice(&(v as i32).to_le_bytes());
        }
        out.push(c.shared_classifier as u8);
        out.resize(256, 0);
        let order = [
            &w.rms_att,
            &w.rms_ffn,
            &w.rms_final,
            &w.token_embedding,
            &w.wq,
            &w.wk,
            &w.wv,
            &w.wo,
            &w.w1,
            &w.w2,
            &w.w3,
        ];
        for t in order.into_iter().chain(w.classifier.as_ref()) {
            out.extend(t.iter().flat_map(|v| v.to_le_bytes()));
        }
        out
    }

    #[test]
    fn version_1_files_give_the_weights_of_the_legacy_file() {
        for shared in [true, false] {
            let w = weights(shared);
            let v1 = v1_by_hand(&w);
            assert_eq!(w.to_v1_bytes().unwrap(), v1, "the writer follows llama2.c's layout");
            let legacy = LlamaWeights::parse(&w.to_bytes().unwrap()).unwrap();
            assert_eq!(LlamaWeights::parse(&v1).unwrap(), legacy);
            assert_eq!(legacy, w);
        }
    }

    #[test]
    fn other_versions_are_refused_by_name_or_number() {
        let mut v2 = weights(true).to_v1_bytes().unwrap();
        v2[4..8].copy_from_slice(&2i32.to_le_bytes());
        let err = LlamaWeights::parse(&v2).unwrap_err().to_string();
        assert!(err.contains("version 2") && err.contains("Q8_0") && !err.contains("divide"), "{err}");
        let mut v7 = v2.clone();
        v7[4..8].copy_from_slice(&7i32.to_le_bytes());
        let err = LlamaWeights::parse(&v7).unwrap_err().to_string();
        assert!(err.contains("unknown llama2.c checkpoint version 7"), "{err}");
        let err = LlamaWeights::parse(&v2[..100]).unwrap_err().to_string();
        assert!(err.contains("256 bytes") && err.contains("the file has 100"), "{err}");
        let mut flag = weights(true).to_v1_bytes().unwrap();
        flag[36] = 5;
        let err = LlamaWeights::parse(&flag).unwrap_err().to_string();
        assert!(err.contains("shared-classifier flag is 5"), "{err}");
        for e in [&v2, &v7, &flag] {
            assert_eq!(LlamaWeights::parse(e).unwrap_err().to_string().lines().count(), 1);
        }
    }

    #[test]
    fn non_finite_weights_and_extra_bytes_are_refused() {
        let w = weights(false);
        let mut bytes = w.to_bytes().unwrap();
        // wk, 3 floats in: after the header, the embedding (80), rms_att (16) and wq (128).
        let at = HEADER_BYTES + (80 + 16 + 128 + 3) * 4;
        bytes[at..at + 4].copy_from_slice(&f32::NAN.to_le_bytes());
        match LlamaWeights::parse(&bytes).unwrap_err() {
            Error::NonFiniteWeight { name, index, value, .. } => {
                assert_eq!((name.as_str(), index), ("wk", 3));
                assert!(value.is_nan());
            }
            other => panic!("{other}"),
        }
        let mut v1 = w.to_v1_bytes().unwrap();
        let last = v1.len() - 4;
        v1[last..].copy_from_slice(&f32::NEG_INFINITY.to_le_bytes());
        let err = LlamaWeights::parse(&v1).unwrap_err().to_string();
        assert!(err.contains("`classifier` holds -inf at index 79"), "{err}");
        let mut long = w.to_bytes().unwrap();
        long.extend_from_slice(&[0; 4]);
        let err = LlamaWeights::parse(&long).unwrap_err().to_string();
        assert!(err.contains("longer than its header says"), "{err}");
    }
}
