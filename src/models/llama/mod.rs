//! Llama (as llama2.c runs it): token embedding, pre-norm blocks of grouped-query attention with
//! rotary position embedding and a SwiGLU feed-forward, final RMSNorm, classifier.
//!
//! This file owns the model's weights, their conversion from and to llama2.c's tensor layout,
//! and the forward pass; it reads no optimization itself (the layers and the generation loop
//! do). Its shape is `config.rs`; the checkpoint formats are `llama2c.rs` (llama2.c's `.bin`)
//! and `hf.rs` (Hugging Face directories).

pub mod config;
pub mod gguf;
pub mod hf;
pub mod llama2c;

use crate::error::{Error, Result};
use crate::kernels::{self, matmul, rope::RopeTable};
use crate::layers::{
    Ctx, GroupedQueryAttention, KvCache, KvSource, RmsNorm, SwiGlu, TransposedLinear, Weights, aligned,
};
use config::LlamaConfig;
use llama2c::LlamaWeights;

/// A Llama model's weights, ready to run.
#[derive(Debug, Clone, PartialEq)]
pub struct Llama {
    pub config: LlamaConfig,
    /// Token embedding, `(vocab_size, dim)`; also the classifier when shared (so aligned).
    pub token_embedding: Weights,
    /// The transformer blocks, `n_layers` of them.
    pub layers: Vec<LlamaBlock>,
    /// Final RMSNorm, `(dim,)`.
    pub rms_final: RmsNorm,
    /// Separate classifier, `(vocab_size, dim)`; `None` when shared with the embedding.
    pub classifier: Option<Weights>,
    /// Cosines and sines of every RoPE angle, `(seq_len, head_size / 2)` each.
    rope: RopeTable,
}

/// One pre-norm Llama block.
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaBlock {
    /// RMSNorm before attention, `(dim,)`.
    pub rms_att: RmsNorm,
    pub attn: GroupedQueryAttention,
    /// RMSNorm before the feed-forward block, `(dim,)`.
    pub rms_ffn: RmsNorm,
    pub ffn: SwiGlu,
}

impl Llama {
    /// Runs `tokens` at positions `start_pos..` and writes the logits of the last one into
    /// `logits` (`(vocab_size,)`).
    pub fn forward(&self, ctx: &Ctx, tokens: &[u32], start_pos: usize, mut kv: KvSource, logits: &mut [f32]) {
        let (dim, kv_dim) = (self.config.dim, self.config.kv_dim());
        let n = tokens.len();
        assert!(n > 0 && start_pos + n <= self.config.seq_len, "forward: positions beyond the context");
        kv.check_start(start_pos);

        // Token embedding; positions enter through RoPE, inside attention.
        let mut x = ctx.buf(n * dim);
        {
            let _span = tracing::trace_span!("embedding").entered();
            kernels::embed_tokens(&self.token_embedding, dim, tokens, &mut x);
        }

        let mut normed = ctx.buf(n * dim);
        let mut delta = ctx.buf(n * dim);
        for (layer_idx, layer) in self.layers.iter().enumerate() {
            // Rotated keys and values: the cache's rows, or scratch rows for this pass only.
            let mut layer_kv = kv.layer(ctx, layer_idx, n, kv_dim);
            let (k_rows, v_rows) = layer_kv.rows();
            // The last layer feeds only the last position's logits (as in GPT-2's forward).
            let n_out = if layer_idx + 1 == self.layers.len() { 1 } else { n };
            let x_out = (n - n_out) * dim..n * dim;
            // x = x + attention(rmsnorm(x))
            layer.rms_att.forward(&x, n, &mut normed);
            let out = &mut delta[..n_out * dim];
            layer.attn.forward(ctx, &self.rope, &normed, n, start_pos, k_rows, v_rows, out, n_out);
            kernels::add_inplace(&mut x[x_out.clone()], &delta[..n_out * dim]);
            // x = x + ffn(rmsnorm(x))
            layer.rms_ffn.forward(&x[x_out.clone()], n_out, &mut normed);
            layer.ffn.forward(ctx, &normed[..n_out * dim], n_out, &mut delta[..n_out * dim]);
            kernels::add_inplace(&mut x[x_out], &delta[..n_out * dim]);
        }
        kv.finish(start_pos + n);

        // Final RMSNorm and the classifier, for the last position only.
        self.rms_final.forward(&x[(n - 1) * dim..], 1, &mut normed[..dim]);
        let _span = tracing::trace_span!("lm_head").entered();
        let classifier = self.classifier.as_deref().unwrap_or(&self.token_embedding);
        matmul::matmul_transposed(
            &normed[..dim],
            1,
            dim,
            classifier,
            self.config.vocab_size,
            logits,
            ctx.threads,
        );
    }

    /// An empty KV cache for the whole context: `n_kv_heads * head_size` floats per position.
    pub fn new_kv_cache(&self) -> KvCache {
        KvCache::new(self.config.n_layers, self.config.seq_len, self.config.kv_dim())
    }

    /// Parameters, counting a shared classifier once: the checkpoint's tensors without the
    /// legacy RoPE tables.
    pub fn parameter_count(&self) -> usize {
        // Validated at construction, so the count fits; saturating keeps a mutated config honest.
        self.config.checked_parameter_count().unwrap_or(usize::MAX)
    }

    /// Bytes of the weights as stored in memory (f32).
    pub fn weight_bytes(&self) -> usize {
        self.parameter_count().saturating_mul(size_of::<f32>())
    }

    /// The model from llama2.c's tensors (whose per-layer tensors are stacked), checking the
    /// shape once.
    pub fn from_weights(w: LlamaWeights) -> Result<Llama> {
        let c = w.config.clone();
        c.validate()?;
        let sizes = c.tensor_sizes();
        let classifier = w.classifier.as_deref().filter(|_| !c.shared_classifier).map(|t| ("classifier", t));
        for (name, t) in w.tensors().into_iter().chain(classifier) {
            let want = sizes.iter().find(|(n, _)| *n == name).map_or(0, |(_, n)| *n);
            if t.len() != want {
                return Err(Error::Config(format!(
                    "tensor {name} has {} values, the shape needs {want}",
                    t.len()
                )));
            }
        }
        if !c.shared_classifier && w.classifier.is_none() {
            return Err(Error::Config(
                "the config says the classifier is separate, but there is none".into(),
            ));
        }
        let (d, kv, hidden) = (c.dim, c.kv_dim(), c.hidden_dim);
        let layer = |stacked: &[f32], i: usize, n: usize| stacked[i * n..(i + 1) * n].to_vec();
        let linear = |stacked: &[f32], i: usize, n_out: usize, n_in: usize| TransposedLinear {
            weight: aligned(&stacked[i * n_out * n_in..(i + 1) * n_out * n_in]),
            n_in,
            n_out,
        };
        let norm = |weight: Vec<f32>| RmsNorm { weight, eps: c.norm_eps };
        let layers = (0..c.n_layers)
            .map(|i| LlamaBlock {
                rms_att: norm(layer(&w.rms_att, i, d)),
                attn: GroupedQueryAttention {
                    wq: linear(&w.wq, i, d, d),
                    wk: linear(&w.wk, i, kv, d),
                    wv: linear(&w.wv, i, kv, d),
                    wo: linear(&w.wo, i, d, d),
                    n_heads: c.n_heads,
                    n_kv_heads: c.n_kv_heads,
                },
                rms_ffn: norm(layer(&w.rms_ffn, i, d)),
                ffn: SwiGlu {
                    w1: linear(&w.w1, i, hidden, d),
                    w2: linear(&w.w2, i, d, hidden),
                    w3: linear(&w.w3, i, hidden, d),
                },
            })
            .collect();
        let rope = RopeTable::new(c.seq_len, c.head_size(), c.rope_theta);
        Ok(Llama {
            token_embedding: aligned(&w.token_embedding),
            layers,
            rms_final: norm(w.rms_final),
            classifier: if c.shared_classifier { None } else { w.classifier.as_deref().map(aligned) },
            rope,
            config: c,
        })
    }

    /// The model's tensors in llama2.c's layout (a copy of every weight).
    pub fn to_weights(&self) -> LlamaWeights {
        let [rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3] =
            PER_LAYER.map(|f| self.layers.iter().flat_map(|l| f(l).to_vec()).collect::<Vec<f32>>());
        LlamaWeights {
            config: self.config.clone(),
            token_embedding: self.token_embedding.to_vec(),
            rms_att,
            wq,
            wk,
            wv,
            wo,
            rms_ffn,
            w1,
            w2,
            w3,
            rms_final: self.rms_final.weight.clone(),
            classifier: self.classifier.as_deref().map(<[f32]>::to_vec),
        }
    }

    /// Writes the model as a llama2.c legacy checkpoint to `out`, streamed from the weights as
    /// they are (no copy: exporting stories110m holds 16 KiB beyond the model, not the 438 MB
    /// file twice over).
    ///
    /// # Errors
    /// [`Error::Config`] for a model llama2.c's header cannot describe
    /// ([`llama2c::legacy_header`]); [`Error::Write`] naming `path` for `out`'s I/O errors.
    pub fn write_llama2c(&self, out: &mut impl std::io::Write, path: &std::path::Path) -> Result<()> {
        use crate::error::IoContext;
        let header = llama2c::legacy_header(&self.config)?;
        let layers = PER_LAYER.into_iter().flat_map(|f| self.layers.iter().map(f));
        let tensors =
            std::iter::once(&self.token_embedding[..]).chain(layers).chain([&self.rms_final.weight[..]]);
        llama2c::write_legacy(header, &self.config, tensors, self.classifier.as_deref(), out).writing(path)
    }
}

/// The per-layer tensors in llama2.c's file order (rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3):
/// the file stacks each over the layers.
const PER_LAYER: [fn(&LlamaBlock) -> &[f32]; 9] = [
    |l| &l.rms_att.weight,
    |l| &l.attn.wq.weight,
    |l| &l.attn.wk.weight,
    |l| &l.attn.wv.weight,
    |l| &l.attn.wo.weight,
    |l| &l.rms_ffn.weight,
    |l| &l.ffn.w1.weight,
    |l| &l.ffn.w2.weight,
    |l| &l.ffn.w3.weight,
];
