//! A llama2.c checkpoint and its `tokenizer.bin` as a GGUF F32 file, so that llama.cpp runs the
//! very weights smallmind and candle run.
//!
//! Layout (GGUF version 3, little-endian): magic, version, tensor count, metadata count, the
//! metadata key-value pairs, one info per tensor (name, dims innermost first, type, offset), then
//! the tensor data, each tensor aligned to 32 bytes. Keys and tensor names are llama.cpp's for
//! its `llama` architecture (`src/llama-arch.cpp`). llama2.c stores every matrix row-major as
//! `[out][in]`, which is GGUF's `ne = [in, out]`: the bytes are copied as they are. llama2.c's
//! RoPE rotates adjacent pairs, which is the rotation llama.cpp's `llama` architecture applies,
//! so Q and K need no permutation (Hugging Face checkpoints do; these are not).

use anyhow::{Context, Result, bail, ensure};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

/// llama2.c's header: seven i32s (a negative vocab size means the classifier is stored apart).
#[derive(Debug, Clone, Copy)]
pub struct Header {
    pub dim: usize,
    pub hidden_dim: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub vocab_size: usize,
    pub seq_len: usize,
    pub shared_classifier: bool,
}

impl Header {
    pub fn parse(bytes: &[u8]) -> Result<Header> {
        ensure!(bytes.len() >= 28, "shorter than llama2.c's 28-byte header");
        let field = |i: usize| i32::from_le_bytes(bytes[i * 4..i * 4 + 4].try_into().unwrap());
        let positive = |i: usize, name: &str| -> Result<usize> {
            let v = field(i).unsigned_abs() as usize;
            ensure!(v > 0, "llama2.c header field {name} is 0: not a llama2.c checkpoint");
            Ok(v)
        };
        let header = Header {
            dim: positive(0, "dim")?,
            hidden_dim: positive(1, "hidden_dim")?,
            n_layers: positive(2, "n_layers")?,
            n_heads: positive(3, "n_heads")?,
            n_kv_heads: positive(4, "n_kv_heads")?,
            vocab_size: positive(5, "vocab_size")?,
            seq_len: positive(6, "seq_len")?,
            shared_classifier: field(5) > 0,
        };
        ensure!(header.dim.is_multiple_of(header.n_heads), "dim is not a multiple of n_heads");
        Ok(header)
    }

    pub fn head_dim(&self) -> usize {
        self.dim / self.n_heads
    }

    fn kv_dim(&self) -> usize {
        self.n_kv_heads * self.head_dim()
    }
}

/// One tensor: its GGUF name, dims (innermost first) and where its f32s start in the checkpoint.
struct Tensor {
    name: String,
    dims: Vec<usize>,
    offset: usize,
}

impl Tensor {
    fn bytes(&self) -> usize {
        self.dims.iter().product::<usize>() * 4
    }
}

/// The checkpoint's tensors in llama2.c's order, each kind stored for all layers together.
fn tensors(h: &Header) -> (Vec<Tensor>, usize) {
    let (d, f, l, kv) = (h.dim, h.hidden_dim, h.n_layers, h.kv_dim());
    let mut out = Vec::new();
    let mut at = 28;
    let mut kind = |out: &mut Vec<Tensor>, name: &str, dims: &[usize], layered: bool| {
        for layer in 0..if layered { l } else { 1 } {
            let name = if layered { format!("blk.{layer}.{name}.weight") } else { format!("{name}.weight") };
            out.push(Tensor { name, dims: dims.to_vec(), offset: at });
            at += dims.iter().product::<usize>() * 4;
        }
    };
    kind(&mut out, "token_embd", &[d, h.vocab_size], false);
    kind(&mut out, "attn_norm", &[d], true);
    kind(&mut out, "attn_q", &[d, d], true);
    kind(&mut out, "attn_k", &[d, kv], true);
    kind(&mut out, "attn_v", &[d, kv], true);
    kind(&mut out, "attn_output", &[d, d], true);
    kind(&mut out, "ffn_norm", &[d], true);
    kind(&mut out, "ffn_gate", &[d, f], true);
    kind(&mut out, "ffn_down", &[f, d], true);
    kind(&mut out, "ffn_up", &[d, f], true);
    kind(&mut out, "output_norm", &[d], false);
    // llama2.c's precomputed RoPE tables (seq_len x head_dim/2, twice): skipped.
    let rope_tables = h.seq_len * h.head_dim() * 4;
    let after_tables = at + rope_tables;
    if !h.shared_classifier {
        out.push(Tensor { name: "output.weight".into(), dims: vec![d, h.vocab_size], offset: after_tables });
        return (out, after_tables + d * h.vocab_size * 4);
    }
    (out, after_tables)
}

/// llama2.c's `tokenizer.bin`: max token length, then per token its score, length and bytes.
pub fn read_tokenizer(bytes: &[u8], vocab_size: usize) -> Result<Vec<(f32, Vec<u8>)>> {
    let mut at = 4;
    let mut take = |n: usize| -> Result<&[u8]> {
        let s = bytes.get(at..at + n).context("tokenizer.bin ends early")?;
        at += n;
        Ok(s)
    };
    let mut tokens = Vec::with_capacity(vocab_size);
    for _ in 0..vocab_size {
        let score = f32::from_le_bytes(take(4)?.try_into().unwrap());
        let len = i32::from_le_bytes(take(4)?.try_into().unwrap());
        ensure!(len >= 0, "tokenizer.bin has a negative token length");
        tokens.push((score, take(len as usize)?.to_vec()));
    }
    Ok(tokens)
}

/// GGUF's token types (llama.cpp's `llama_token_type`).
fn token_type(id: usize, text: &[u8]) -> i32 {
    let is_byte = text.len() == 6 && text.starts_with(b"<0x") && text.ends_with(b">");
    match id {
        0 => 2,
        1 | 2 => 3,
        _ if is_byte => 6,
        _ => 1,
    }
}

struct Meta<W: Write>(W, u64);

impl<W: Write> Meta<W> {
    fn string(&mut self, s: &[u8]) -> Result<()> {
        self.0.write_all(&(s.len() as u64).to_le_bytes())?;
        Ok(self.0.write_all(s)?)
    }
    fn key(&mut self, key: &str, value_type: u32) -> Result<()> {
        self.1 += 1;
        self.string(key.as_bytes())?;
        Ok(self.0.write_all(&value_type.to_le_bytes())?)
    }
    fn u32(&mut self, key: &str, v: usize) -> Result<()> {
        self.key(key, 4)?;
        Ok(self.0.write_all(&u32::try_from(v)?.to_le_bytes())?)
    }
    fn f32(&mut self, key: &str, v: f32) -> Result<()> {
        self.key(key, 6)?;
        Ok(self.0.write_all(&v.to_le_bytes())?)
    }
    fn str(&mut self, key: &str, v: &str) -> Result<()> {
        self.key(key, 8)?;
        self.string(v.as_bytes())
    }
    fn array(&mut self, key: &str, elem_type: u32, n: usize) -> Result<()> {
        self.key(key, 9)?;
        self.0.write_all(&elem_type.to_le_bytes())?;
        Ok(self.0.write_all(&(n as u64).to_le_bytes())?)
    }
}

/// Writes `out` (through a temporary name, renamed at the end) from `checkpoint` and `tokenizer`.
pub fn convert(checkpoint: &Path, tokenizer: &Path, out: &Path) -> Result<Header> {
    let model = std::fs::read(checkpoint).with_context(|| format!("cannot read {}", checkpoint.display()))?;
    let header = Header::parse(&model).with_context(|| format!("{}", checkpoint.display()))?;
    let tok_bytes =
        std::fs::read(tokenizer).with_context(|| format!("cannot read {}", tokenizer.display()))?;
    let vocab =
        read_tokenizer(&tok_bytes, header.vocab_size).with_context(|| format!("{}", tokenizer.display()))?;
    let (tensors, end) = tensors(&header);
    if model.len() != end {
        bail!("{}: {} bytes, but its header describes {end}", checkpoint.display(), model.len());
    }
    let mut meta = Meta(Vec::new(), 0);
    let h = header;
    meta.str("general.architecture", "llama")?;
    meta.str("general.name", &checkpoint.file_stem().unwrap_or_default().to_string_lossy())?;
    meta.u32("general.file_type", 0)?;
    meta.u32("llama.vocab_size", h.vocab_size)?;
    meta.u32("llama.context_length", h.seq_len)?;
    meta.u32("llama.embedding_length", h.dim)?;
    meta.u32("llama.block_count", h.n_layers)?;
    meta.u32("llama.feed_forward_length", h.hidden_dim)?;
    meta.u32("llama.rope.dimension_count", h.head_dim())?;
    meta.u32("llama.attention.head_count", h.n_heads)?;
    meta.u32("llama.attention.head_count_kv", h.n_kv_heads)?;
    meta.f32("llama.attention.layer_norm_rms_epsilon", 1e-5)?;
    meta.f32("llama.rope.freq_base", 10000.0)?;
    meta.str("tokenizer.ggml.model", "llama")?;
    meta.array("tokenizer.ggml.tokens", 8, vocab.len())?;
    vocab.iter().try_for_each(|(_, text)| meta.string(text))?;
    meta.array("tokenizer.ggml.scores", 6, vocab.len())?;
    vocab.iter().try_for_each(|(score, _)| meta.0.write_all(&score.to_le_bytes()))?;
    meta.array("tokenizer.ggml.token_type", 5, vocab.len())?;
    for (id, (_, text)) in vocab.iter().enumerate() {
        meta.0.write_all(&token_type(id, text).to_le_bytes())?;
    }
    meta.u32("tokenizer.ggml.bos_token_id", 1)?;
    meta.u32("tokenizer.ggml.eos_token_id", 2)?;
    meta.u32("tokenizer.ggml.unknown_token_id", 0)?;

    let tmp = out.with_extension("gguf.tmp");
    let mut w =
        BufWriter::new(File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?);
    w.write_all(b"GGUF")?;
    w.write_all(&3u32.to_le_bytes())?;
    w.write_all(&(tensors.len() as u64).to_le_bytes())?;
    w.write_all(&meta.1.to_le_bytes())?;
    w.write_all(&meta.0)?;
    let mut written = 24 + meta.0.len();
    let mut data_offset = 0usize;
    for t in &tensors {
        let mut info = Meta(Vec::new(), 0);
        info.string(t.name.as_bytes())?;
        info.0.write_all(&(t.dims.len() as u32).to_le_bytes())?;
        t.dims.iter().try_for_each(|&d| info.0.write_all(&(d as u64).to_le_bytes()))?;
        info.0.write_all(&0u32.to_le_bytes())?; // GGML_TYPE_F32
        info.0.write_all(&(data_offset as u64).to_le_bytes())?;
        w.write_all(&info.0)?;
        written += info.0.len();
        data_offset = (data_offset + t.bytes()).next_multiple_of(32);
    }
    let pad = |w: &mut BufWriter<File>, written: &mut usize| -> Result<()> {
        let to = written.next_multiple_of(32);
        w.write_all(&vec![0u8; to - *written])?;
        *written = to;
        Ok(())
    };
    pad(&mut w, &mut written)?;
    for t in &tensors {
        w.write_all(&model[t.offset..t.offset + t.bytes()])?;
        written += t.bytes();
        pad(&mut w, &mut written)?;
    }
    w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    std::fs::rename(&tmp, out)
        .with_context(|| format!("cannot rename {} to {}", tmp.display(), out.display()))?;
    Ok(header)
}
