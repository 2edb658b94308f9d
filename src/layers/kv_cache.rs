//! Per-layer key and value caches for the `kv-cache` quick win, and [`KvSource`], which tells a
//! forward pass where its keys and values live.
//!
//! # Performance
//! Allocated once for the whole context when a session first needs it (never during decoding):
//! `2 * n_layer * n_ctx * kv_width` floats, where a row is every key/value head side by side
//! (`n_embd` for GPT-2: 75 MiB for the `gpt2` shape, 4 MiB for `tiny`; `n_kv_heads * head_size`
//! for Llama, rotated keys). Appending a token writes one row per layer, and attention reads a
//! head through a row stride.

/// Where attention keys and values come from in a forward pass.
#[derive(Debug)]
pub enum KvSource<'c> {
    /// Computed for every position of this call and dropped after each layer: the pass must
    /// start at position 0.
    Recompute,
    /// Stored in a cache holding positions `0..cache.len`; this call appends its own.
    Cached(&'c mut KvCache),
}

/// Keys and values of every layer for positions `0..len` (capacity `n_ctx` positions).
#[derive(Debug, Clone)]
pub struct KvCache {
    /// Per layer, `(n_ctx, kv_width)`.
    k: Vec<Vec<f32>>,
    /// Per layer, `(n_ctx, kv_width)`.
    v: Vec<Vec<f32>>,
    /// Positions stored (and valid) in every layer.
    pub len: usize,
}

impl KvCache {
    /// An empty cache for `n_layer` layers of `n_ctx` positions of width `kv_width`.
    pub fn new(n_layer: usize, n_ctx: usize, kv_width: usize) -> Self {
        KvCache {
            k: vec![vec![0.0; n_ctx * kv_width]; n_layer],
            v: vec![vec![0.0; n_ctx * kv_width]; n_layer],
            len: 0,
        }
    }

    /// The key and value rows of layer `layer_idx`, `(n_ctx, kv_width)` each.
    pub fn layer_mut(&mut self, layer_idx: usize) -> (&mut [f32], &mut [f32]) {
        (&mut self.k[layer_idx], &mut self.v[layer_idx])
    }
}
