//! llama2.c's checkpoint format, `model.bin`: the header, its validation, and the tensors in the
//! file's order, read and written. The model built from [`LlamaWeights`] is `llama.rs`; this
//! module owns only the format (and [`LlamaConfig`], the shape both share).
//!
//! The file: 7 little-endian `i32` (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size,
//! seq_len; a negative vocab_size means the classifier is stored separately), then `f32` arrays:
//! token embedding (vocab, dim); rms_att (layer, dim); wq (layer, dim, n_heads * head_size);
//! wk, wv (layer, dim, n_kv_heads * head_size); wo (layer, n_heads * head_size, dim); rms_ffn
//! (layer, dim); w1 (layer, hidden, dim); w2 (layer, dim, hidden); w3 (layer, hidden, dim);
//! rms_final (dim); two legacy RoPE tables of seq_len * head_size / 2 floats each (skipped on
//! read, written as the frequencies llama2.c's exporter wrote); the classifier (vocab, dim) when
//! not shared.

use crate::error::{Error, Result};
use crate::kernels::rope;
use std::path::Path;

/// The shape of a Llama model, as llama2.c's header gives it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LlamaConfig {
    /// Width of the residual stream.
    pub dim: usize,
    /// Width of the SwiGLU hidden layer.
    pub hidden_dim: usize,
    pub n_layers: usize,
    /// Query heads; divides `dim`.
    pub n_heads: usize,
    /// Key/value heads (grouped-query attention); divides `n_heads`.
    pub n_kv_heads: usize,
    pub vocab_size: usize,
    /// Context length.
    pub seq_len: usize,
    /// Whether the classifier is the token embedding.
    pub shared_classifier: bool,
    /// RMSNorm epsilon (llama2.c: 1e-5).
    pub norm_eps: f32,
    /// RoPE base (llama2.c: 10000).
    pub rope_theta: f32,
}

/// The RMSNorm epsilon llama2.c's format implies.
pub const LLAMA2C_NORM_EPS: f32 = 1e-5;
/// The RoPE base llama2.c's format implies.
pub const LLAMA2C_ROPE_THETA: f32 = 10000.0;

impl LlamaConfig {
    /// Checks the invariants the forward pass relies on.
    pub fn validate(&self) -> Result<()> {
        let fields = [
            ("dim", self.dim),
            ("hidden_dim", self.hidden_dim),
            ("n_layers", self.n_layers),
            ("n_heads", self.n_heads),
            ("n_kv_heads", self.n_kv_heads),
            ("vocab_size", self.vocab_size),
            ("seq_len", self.seq_len),
        ];
        super::config::require_positive(&fields)?;
        if !self.dim.is_multiple_of(self.n_heads) {
            return Err(Error::Config(format!("n_heads {} does not divide dim {}", self.n_heads, self.dim)));
        }
        if !self.n_heads.is_multiple_of(self.n_kv_heads) {
            return Err(Error::Config(format!(
                "n_kv_heads {} does not divide n_heads {}",
                self.n_kv_heads, self.n_heads
            )));
        }
        if !self.head_size().is_multiple_of(2) {
            return Err(Error::Config(format!("head size {} must be even for RoPE", self.head_size())));
        }
        if self.vocab_size > i32::MAX as usize {
            return Err(Error::Config("vocab_size does not fit in 32-bit token ids".into()));
        }
        if !(self.norm_eps.is_finite() && self.norm_eps > 0.0) {
            return Err(Error::Config("the RMSNorm epsilon must be a positive number".into()));
        }
        if !(self.rope_theta.is_finite() && self.rope_theta > 1.0) {
            return Err(Error::Config("rope_theta must be a number above 1".into()));
        }
        Ok(())
    }

    /// `dim / n_heads`.
    pub fn head_size(&self) -> usize {
        self.dim / self.n_heads
    }

    /// `n_kv_heads * head_size`: the width of a key or value row.
    pub fn kv_dim(&self) -> usize {
        self.n_kv_heads * self.head_size()
    }

    /// The tensors in file order: name and number of floats (the RoPE tables included).
    pub fn tensor_sizes(&self) -> Vec<(&'static str, usize)> {
        let (d, h, l, v) = (self.dim, self.hidden_dim, self.n_layers, self.vocab_size);
        let rope = self.seq_len * self.head_size() / 2;
        let mut sizes = vec![
            ("token_embedding", v * d),
            ("rms_att", l * d),
            ("wq", l * d * d),
            ("wk", l * d * self.kv_dim()),
            ("wv", l * d * self.kv_dim()),
            ("wo", l * d * d),
            ("rms_ffn", l * d),
            ("w1", l * h * d),
            ("w2", l * d * h),
            ("w3", l * h * d),
            ("rms_final", d),
            ("freq_cis_real", rope),
            ("freq_cis_imag", rope),
        ];
        if !self.shared_classifier {
            sizes.push(("classifier", v * d));
        }
        sizes
    }
}

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

/// The header's size in bytes.
const HEADER_BYTES: usize = 7 * 4;

impl LlamaWeights {
    /// Reads a llama2.c `.bin` checkpoint.
    pub fn read(path: &Path) -> Result<LlamaWeights> {
        let bytes = std::fs::read(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
        Self::parse(&bytes).map_err(|e| match e {
            Error::Config(reason) => Error::Config(format!("{}: {reason}", path.display())),
            other => other,
        })
    }

    /// Parses the bytes of a llama2.c checkpoint.
    pub fn parse(bytes: &[u8]) -> Result<LlamaWeights> {
        let header = bytes.get(..HEADER_BYTES).ok_or_else(|| {
            Error::Config(format!(
                "not a llama2.c checkpoint: {} bytes, the header alone is {HEADER_BYTES}",
                bytes.len()
            ))
        })?;
        let field = |i: usize| i32::from_le_bytes(header[i * 4..i * 4 + 4].try_into().expect("4 bytes"));
        let positive = |i: usize, name: &str| -> Result<usize> {
            usize::try_from(field(i))
                .map_err(|_| Error::Config(format!("header field {name} is {}, not a size", field(i))))
        };
        let vocab = field(5);
        let config = LlamaConfig {
            dim: positive(0, "dim")?,
            hidden_dim: positive(1, "hidden_dim")?,
            n_layers: positive(2, "n_layers")?,
            n_heads: positive(3, "n_heads")?,
            n_kv_heads: positive(4, "n_kv_heads")?,
            vocab_size: vocab.unsigned_abs() as usize,
            seq_len: positive(6, "seq_len")?,
            shared_classifier: vocab > 0,
            norm_eps: LLAMA2C_NORM_EPS,
            rope_theta: LLAMA2C_ROPE_THETA,
        };
        config.validate()?;
        let sizes = config.tensor_sizes();
        let floats: usize = sizes.iter().map(|(_, n)| n).sum();
        let expected = HEADER_BYTES + floats * 4;
        if bytes.len() < expected {
            return Err(Error::Config(format!(
                "truncated llama2.c checkpoint: the header ({config:?}) needs {expected} bytes, the file has {}",
                bytes.len()
            )));
        }
        let mut at = HEADER_BYTES;
        Self::from_tensors(config, |_, n| {
            let t: Vec<f32> = bytes[at..at + n * 4]
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
                .collect();
            at += n * 4;
            Ok(t)
        })
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

    /// The bytes of this checkpoint in llama2.c's format, which has no field for the RMSNorm
    /// epsilon or the RoPE base: a model with other values than llama2.c's cannot be written.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let c = &self.config;
        if c.norm_eps != LLAMA2C_NORM_EPS || c.rope_theta != LLAMA2C_ROPE_THETA {
            return Err(Error::Config(format!(
                "llama2.c's format fixes the RMSNorm epsilon at {LLAMA2C_NORM_EPS:e} and the RoPE base at \
                 {LLAMA2C_ROPE_THETA}; this model has {:e} and {}: export it as a Hugging Face directory",
                c.norm_eps, c.rope_theta
            )));
        }
        let vocab = if c.shared_classifier { c.vocab_size as i32 } else { -(c.vocab_size as i32) };
        let header = [
            c.dim as i32,
            c.hidden_dim as i32,
            c.n_layers as i32,
            c.n_heads as i32,
            c.n_kv_heads as i32,
            vocab,
            c.seq_len as i32,
        ];
        let mut out =
            Vec::with_capacity(HEADER_BYTES + c.tensor_sizes().iter().map(|(_, n)| n * 4).sum::<usize>());
        for v in header {
            out.extend_from_slice(&v.to_le_bytes());
        }
        let (real, imag) = legacy_rope_tables(c);
        let tensors = self.tensors().map(|(_, t)| t).into_iter().chain([&real[..], &imag[..]]);
        for t in tensors.chain(self.classifier.as_deref()) {
            for v in t {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        Ok(out)
    }
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
}
