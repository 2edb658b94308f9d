//! Per-layer key and value caches for the `kv-cache` quick win, and [`KvSource`], which tells a
//! forward pass where its keys and values live.
//!
//! # Performance
//! Allocated once for the whole context when a session first needs it (never during decoding):
//! `2 * n_layer * n_ctx * kv_width` floats, where a row is every key/value head side by side
//! (`n_embd` for GPT-2: 75 MiB for the `gpt2` shape, 4 MiB for `tiny`; `n_kv_heads * head_size`
//! for Llama, rotated keys). Appending a token writes one row per layer, and attention reads a
//! head through a row stride.

use super::{Buf, Ctx};

/// Where attention keys and values come from in a forward pass.
#[derive(Debug)]
pub enum KvSource<'c> {
    /// Computed for every position of this call and dropped after each layer: the pass must
    /// start at position 0.
    Recompute,
    /// Stored in a cache holding positions `0..cache.len`; this call appends its own.
    Cached(&'c mut KvCache),
}

impl KvSource<'_> {
    /// Checks that a pass over positions `start_pos..` fits this source: a cache must hold
    /// exactly the earlier positions, and recomputing starts at position 0.
    pub fn check_start(&self, start_pos: usize) {
        match self {
            KvSource::Cached(cache) => assert_eq!(
                cache.len, start_pos,
                "forward: cache holds {} positions, start is {start_pos}",
                cache.len
            ),
            KvSource::Recompute => assert_eq!(start_pos, 0, "forward: recomputing needs the whole sequence"),
        }
    }

    /// Layer `layer_idx`'s key and value rows for a pass of `n_rows` positions of `width`
    /// floats: the cache's, or scratch rows from `ctx` that live as long as the returned value.
    pub fn layer<'s, 'p>(
        &'s mut self,
        ctx: &Ctx<'p>,
        layer_idx: usize,
        n_rows: usize,
        width: usize,
    ) -> LayerKv<'s, 'p> {
        match self {
            KvSource::Cached(cache) => {
                let (k, v) = cache.layer_mut(layer_idx);
                LayerKv::Cached(k, v)
            }
            KvSource::Recompute => LayerKv::Scratch(ctx.buf(n_rows * width), ctx.buf(n_rows * width)),
        }
    }

    /// Ends a pass that ran positions up to `end`: the cache now holds them.
    pub fn finish(self, end: usize) {
        if let KvSource::Cached(cache) = self {
            cache.len = end;
        }
    }
}

/// One layer's key and value rows, from [`KvSource::layer`].
#[derive(Debug)]
pub enum LayerKv<'s, 'p> {
    /// The cache's rows for every position of the context.
    Cached(&'s mut [f32], &'s mut [f32]),
    /// Rows for this pass only.
    Scratch(Buf<'p>, Buf<'p>),
}

impl LayerKv<'_, '_> {
    /// The key rows and the value rows.
    pub fn rows(&mut self) -> (&mut [f32], &mut [f32]) {
        match self {
            LayerKv::Cached(k, v) => (k, v),
            LayerKv::Scratch(k, v) => (k, v),
        }
    }
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
        // One zeroed allocation per layer: the allocator maps zero pages lazily, so a position is
        // paid for when it is written. (`vec![vec![0.0; n]; n_layer]` clones the first, copying
        // every page: stories110m's 75 MB cache was written in full before its first token.)
        let zeroed = || (0..n_layer).map(|_| vec![0.0; n_ctx * kv_width]).collect();
        KvCache { k: zeroed(), v: zeroed(), len: 0 }
    }

    /// The key and value rows of layer `layer_idx`, `(n_ctx, kv_width)` each.
    pub fn layer_mut(&mut self, layer_idx: usize) -> (&mut [f32], &mut [f32]) {
        (&mut self.k[layer_idx], &mut self.v[layer_idx])
    }
}
