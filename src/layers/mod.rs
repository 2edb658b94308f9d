//! Layers: linear maps, LayerNorm and RMSNorm, causal self-attention (GPT-2's and Llama's
//! grouped-query attention with RoPE, sharing one attention core), the MLP and SwiGLU, and the
//! KV cache, composed of kernels.
//!
//! Layers hold the optimization dispatch: each toggle that concerns a layer is read in exactly
//! one method here, which picks between two whole kernels. Layers allocate their intermediates
//! through [`Ctx::buf`], the one place `tensor-pool` is read.

pub mod attention;
pub mod kv_cache;
pub mod linear;
pub mod mlp;

use crate::kernels::parallel::Threads;
use crate::optimizations::Optimizations;
use crate::pool::{Pooled, TensorPool};
use std::ops::{Deref, DerefMut};

pub use attention::{CausalSelfAttention, GroupedQueryAttention};
pub use kv_cache::{KvCache, KvSource};
pub use linear::{LayerNorm, Linear, RmsNorm, TransposedLinear, Weights, aligned};
pub use mlp::{Mlp, SwiGlu};

/// What a forward pass runs with: the optimizations, the pool it may rent from, its threads.
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    /// Which optimizations are on.
    pub opts: Optimizations,
    /// The buffer pool used when `tensor-pool` is on.
    pub pool: &'a TensorPool,
    /// Threads for the matrix products: [`Threads::One`] runs without any pool.
    pub threads: Threads<'a>,
}

/// An intermediate buffer: freshly allocated, or rented from the pool.
#[derive(Debug)]
pub enum Buf<'a> {
    /// A new zeroed allocation, freed when dropped (`tensor-pool` off).
    Fresh(Vec<f32>),
    /// A pooled buffer, returned when dropped (`tensor-pool` on).
    Pooled(Pooled<'a>),
}

impl<'a> Ctx<'a> {
    /// A buffer of `len` floats for an intermediate. **The one place `tensor-pool` is read.**
    /// Its contents are unspecified: every caller overwrites it before reading.
    pub fn buf(&self, len: usize) -> Buf<'a> {
        if self.opts.tensor_pool { Buf::Pooled(self.pool.rent(len)) } else { Buf::Fresh(vec![0.0; len]) }
    }
}

impl Deref for Buf<'_> {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        match self {
            Buf::Fresh(v) => v,
            Buf::Pooled(p) => p,
        }
    }
}

impl DerefMut for Buf<'_> {
    fn deref_mut(&mut self) -> &mut [f32] {
        match self {
            Buf::Fresh(v) => v,
            Buf::Pooled(p) => p,
        }
    }
}
