//! GPT-2: token + position embedding, pre-norm blocks, final LayerNorm, LM head.
//!
//! This file owns the weights and the forward pass; it reads no optimization itself (the layers
//! and the generation loop do). Names follow the checkpoint (`wte`, `wpe`, `h.N.ln_1`, ...), so
//! loading maps one-to-one. Its shape is `config.rs`; the Hugging Face directory format is `hf.rs`.

pub mod config;
pub mod hf;

use crate::kernels::{self, matmul};
pub use crate::layers::KvSource;
use crate::layers::{CausalSelfAttention, Ctx, KvCache, LayerNorm, Linear, Mlp};
use crate::models::safetensors_io::TensorSpec;
use config::Gpt2Config;
use std::borrow::Cow;

/// A GPT-2 model's weights.
#[derive(Debug, Clone, PartialEq)]
pub struct Gpt2 {
    pub config: Gpt2Config,
    /// Token embedding, `(vocab_size, n_embd)`; also the LM head when tied.
    pub wte: Vec<f32>,
    /// Position embedding, `(n_ctx, n_embd)`.
    pub wpe: Vec<f32>,
    /// The transformer blocks, `n_layer` of them.
    pub h: Vec<Block>,
    /// Final LayerNorm.
    pub ln_f: LayerNorm,
    /// Separate LM head without bias, `(vocab_size, n_embd)`; `None` when tied to `wte`.
    pub lm_head: Option<Vec<f32>>,
}

/// One pre-norm transformer block.
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    pub ln_1: LayerNorm,
    pub attn: CausalSelfAttention,
    pub ln_2: LayerNorm,
    pub mlp: Mlp,
}

impl Gpt2 {
    /// Runs `tokens` at positions `start_pos..` and writes the logits of the last one into
    /// `logits` (`(vocab_size,)`): generation needs no others.
    pub fn forward(&self, ctx: &Ctx, tokens: &[u32], start_pos: usize, mut kv: KvSource, logits: &mut [f32]) {
        let c = self.config.n_embd;
        let n = tokens.len();
        assert!(n > 0 && start_pos + n <= self.config.n_ctx, "forward: positions beyond the context");
        kv.check_start(start_pos);

        // Token and position embeddings.
        let mut x = ctx.buf(n * c);
        {
            let _span = tracing::trace_span!("embedding").entered();
            kernels::embed(&self.wte, &self.wpe, c, tokens, start_pos, &mut x);
        }

        let mut normed = ctx.buf(n * c);
        let mut delta = ctx.buf(n * c);
        for (layer_idx, block) in self.h.iter().enumerate() {
            // Keys and values for this layer: the cache's rows, or scratch rows for this pass only.
            let mut layer_kv = kv.layer(ctx, layer_idx, n, c);
            let (k_rows, v_rows) = layer_kv.rows();
            // The last layer feeds only the logits of the last position: every row still gives
            // its key and value, but only the last row goes through the rest of the block.
            let n_out = if layer_idx + 1 == self.h.len() { 1 } else { n };
            let x_out = (n - n_out) * c..n * c;
            // x = x + attn(ln_1(x))
            block.ln_1.forward(&x, n, &mut normed);
            block.attn.forward(ctx, &normed, n, start_pos, k_rows, v_rows, &mut delta[..n_out * c], n_out);
            kernels::add_inplace(&mut x[x_out.clone()], &delta[..n_out * c]);
            // x = x + mlp(ln_2(x))
            block.ln_2.forward(&x[x_out.clone()], n_out, &mut normed);
            block.mlp.forward(ctx, &normed[..n_out * c], n_out, &mut delta[..n_out * c]);
            kernels::add_inplace(&mut x[x_out], &delta[..n_out * c]);
        }
        kv.finish(start_pos + n);

        // Final LayerNorm and the LM head, for the last position only.
        let last = &x[(n - 1) * c..];
        self.ln_f.forward(last, 1, &mut normed[..c]);
        let _span = tracing::trace_span!("lm_head").entered();
        let head = self.lm_head.as_deref().unwrap_or(&self.wte);
        matmul::matmul_transposed(&normed[..c], 1, c, head, self.config.vocab_size, logits, ctx.threads);
    }

    /// An empty KV cache sized for this model's whole context.
    pub fn new_kv_cache(&self) -> KvCache {
        KvCache::new(self.config.n_layer, self.config.n_ctx, self.config.n_embd)
    }

    /// Bytes of the weights as stored in memory (f32), counting a tied LM head once and, where
    /// the Conv1D weights are packed into panels (AVX-512), the zero columns that pad each one's
    /// last panel (none when `n_embd` and `n_inner` are multiples of 16, as in every preset).
    pub fn weight_bytes(&self) -> usize {
        let linears =
            self.h.iter().flat_map(|b| [&b.attn.c_attn, &b.attn.c_proj, &b.mlp.c_fc, &b.mlp.c_proj]);
        let padding: usize = linears.map(|l| l.stored_weight_len() - l.n_in * l.n_out).sum();
        self.config.parameter_count().saturating_add(padding).saturating_mul(size_of::<f32>())
    }
}

impl Gpt2 {
    /// Every tensor of a checkpoint of this shape, in checkpoint order. `lm_head.weight` is
    /// listed only when the head is not tied. The list has `12 * n_layer + 4` entries: loaders
    /// validate the config and check that the file can hold its parameters first.
    pub fn tensor_specs(config: &Gpt2Config) -> Vec<TensorSpec> {
        let (v, c, p, inner) = (config.vocab_size, config.n_embd, config.n_ctx, config.n_inner);
        // Saturating: a shape whose sizes overflow is refused by `validate`, never wrapped.
        let c3 = c.saturating_mul(3);
        let spec = |name: String, shape: &[usize]| TensorSpec { name, shape: shape.to_vec() };
        let mut specs = vec![spec("wte.weight".into(), &[v, c]), spec("wpe.weight".into(), &[p, c])];
        for i in 0..config.n_layer {
            let layer = [
                ("ln_1.weight", vec![c]),
                ("ln_1.bias", vec![c]),
                ("attn.c_attn.weight", vec![c, c3]),
                ("attn.c_attn.bias", vec![c3]),
                ("attn.c_proj.weight", vec![c, c]),
                ("attn.c_proj.bias", vec![c]),
                ("ln_2.weight", vec![c]),
                ("ln_2.bias", vec![c]),
                ("mlp.c_fc.weight", vec![c, inner]),
                ("mlp.c_fc.bias", vec![inner]),
                ("mlp.c_proj.weight", vec![inner, c]),
                ("mlp.c_proj.bias", vec![c]),
            ];
            specs.extend(layer.into_iter().map(|(name, shape)| spec(format!("h.{i}.{name}"), &shape)));
        }
        specs.push(spec("ln_f.weight".into(), &[c]));
        specs.push(spec("ln_f.bias".into(), &[c]));
        if !config.tie_word_embeddings {
            specs.push(spec("lm_head.weight".into(), &[v, c]));
        }
        specs
    }

    /// Builds a model from `take(spec)`, called once per [`Gpt2::tensor_specs`] entry in order,
    /// which must return exactly `spec.shape`'s element count (the loaders check shapes).
    pub fn from_tensors<E>(
        config: Gpt2Config,
        mut take: impl FnMut(&TensorSpec) -> Result<Vec<f32>, E>,
    ) -> Result<Gpt2, E> {
        let specs = Self::tensor_specs(&config);
        let mut tensors = specs.iter().map(|s| {
            take(s).inspect(|t| {
                let len = s.shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
                assert_eq!(Some(t.len()), len, "tensor {}: element count", s.name);
            })
        });
        let mut next = || tensors.next().expect("a spec per tensor");
        let (c, inner, eps) = (config.n_embd, config.n_inner, config.layer_norm_epsilon);
        let wte = next()?;
        let wpe = next()?;
        let mut h = Vec::with_capacity(config.n_layer);
        for layer_idx in 0..config.n_layer {
            let ln_1 = LayerNorm { weight: next()?, bias: next()?, eps };
            let c_attn = Linear::from_conv1d(next()?, next()?, c, 3 * c);
            let c_proj = Linear::from_conv1d(next()?, next()?, c, c);
            let ln_2 = LayerNorm { weight: next()?, bias: next()?, eps };
            let c_fc = Linear::from_conv1d(next()?, next()?, c, inner);
            let mlp_proj = Linear::from_conv1d(next()?, next()?, inner, c);
            h.push(Block {
                ln_1,
                attn: CausalSelfAttention {
                    c_attn,
                    c_proj,
                    n_head: config.n_head,
                    scale: config.attention_scale(layer_idx),
                },
                ln_2,
                mlp: Mlp { c_fc, c_proj: mlp_proj },
            });
        }
        let ln_f = LayerNorm { weight: next()?, bias: next()?, eps };
        let lm_head = if config.tie_word_embeddings { None } else { Some(next()?) };
        Ok(Gpt2 { config, wte, wpe, h, ln_f, lm_head })
    }

    /// Every tensor with its spec, in [`Gpt2::tensor_specs`] order and checkpoint layout (for
    /// export). The Conv1D weights, where held in panels, are unpacked into new buffers one
    /// block at a time, as the iterator reaches them.
    pub fn tensors(&self) -> impl Iterator<Item = (TensorSpec, Cow<'_, [f32]>)> {
        fn linear(l: &Linear) -> [Cow<'_, [f32]>; 2] {
            [l.conv1d_weight(), Cow::from(&l.bias[..])]
        }
        fn norm(n: &LayerNorm) -> [Cow<'_, [f32]>; 2] {
            [Cow::from(&n.weight[..]), Cow::from(&n.bias[..])]
        }
        let blocks = self.h.iter().flat_map(|b| {
            let (attn, mlp) = (&b.attn, &b.mlp);
            [
                norm(&b.ln_1),
                linear(&attn.c_attn),
                linear(&attn.c_proj),
                norm(&b.ln_2),
                linear(&mlp.c_fc),
                linear(&mlp.c_proj),
            ]
            .into_iter()
            .flatten()
        });
        let data = [Cow::from(&self.wte[..]), Cow::from(&self.wpe[..])]
            .into_iter()
            .chain(blocks)
            .chain([Cow::from(&self.ln_f.weight[..]), Cow::from(&self.ln_f.bias[..])])
            .chain(self.lm_head.as_deref().map(Cow::from));
        Self::tensor_specs(&self.config).into_iter().zip(data)
    }
}
