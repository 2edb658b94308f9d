//! Per-layer key and value caches for the `kv-cache` quick win.
//!
//! # Performance
//! Allocated once for the whole context when a session first needs it (never during decoding):
//! `2 * n_layer * n_ctx * n_embd` floats (75 MiB for the `gpt2` shape, 4 MiB for `tiny`).
//! Rows are positions with every head's columns side by side, the layout the fused qkv
//! projection produces, so appending a token is two row copies per layer and attention reads a
//! head through a row stride.

/// Keys and values of every layer for positions `0..len` (capacity `n_ctx` positions).
#[derive(Debug, Clone)]
pub struct KvCache {
    /// Per layer, `(n_ctx, n_embd)`.
    k: Vec<Vec<f32>>,
    /// Per layer, `(n_ctx, n_embd)`.
    v: Vec<Vec<f32>>,
    /// Positions stored (and valid) in every layer.
    pub len: usize,
}

impl KvCache {
    /// An empty cache for `n_layer` layers of `n_ctx` positions of width `n_embd`.
    pub fn new(n_layer: usize, n_ctx: usize, n_embd: usize) -> Self {
        KvCache {
            k: vec![vec![0.0; n_ctx * n_embd]; n_layer],
            v: vec![vec![0.0; n_ctx * n_embd]; n_layer],
            len: 0,
        }
    }

    /// The key and value rows of layer `layer_idx`, `(n_ctx, n_embd)` each.
    pub fn layer_mut(&mut self, layer_idx: usize) -> (&mut [f32], &mut [f32]) {
        (&mut self.k[layer_idx], &mut self.v[layer_idx])
    }
}
