//! A pool of `f32` buffers in power-of-two size classes: the `tensor-pool` quick win.
//!
//! This module owns the pool and its statistics; whether a forward pass uses it at all is
//! decided in one place, [`crate::layers::Ctx::buf`].
//!
//! # Performance
//! A forward pass needs the same dozen intermediate shapes every time. Renting from a free list
//! is a `Vec::pop` (no system allocator call, no page faults on first touch of fresh memory);
//! returning is a `Vec::push` on drop of the guard. Once the free lists have grown to the
//! largest number of buffers live at once, a decode step performs no heap allocation at all.
//! Size classes waste at most half of a buffer and let a buffer serve every length up to its
//! class size (the attention scores grow by one column per decoded token).
//!
//! The pool is single-threaded by design (`RefCell`): one generation owns one pool.

use std::cell::{Cell, RefCell};
use std::ops::{Deref, DerefMut};

/// The smallest class, in elements.
const MIN_CLASS_LEN: usize = 16;

/// What the pool has done since it was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PoolStats {
    /// Buffers handed out.
    pub rents: u64,
    /// Buffers given back (equal to `rents` whenever no guard is alive).
    pub returns: u64,
    /// Rents served from a free list.
    pub hits: u64,
    /// Rents that had to allocate.
    pub misses: u64,
    /// Bytes owned by the pool now, free or rented.
    pub bytes_held: u64,
    /// The most bytes the pool has ever owned.
    pub high_water_bytes: u64,
}

/// Free lists of buffers by size class (class `c` holds buffers of `MIN_CLASS_LEN << c` floats).
#[derive(Debug, Default)]
pub struct TensorPool {
    free: RefCell<Vec<Vec<Vec<f32>>>>,
    stats: Cell<PoolStats>,
}

/// A rented buffer of exactly the asked length; goes back to its pool when dropped.
#[derive(Debug)]
pub struct Pooled<'p> {
    buf: Vec<f32>,
    len: usize,
    pool: &'p TensorPool,
}

impl TensorPool {
    /// An empty pool.
    pub fn new() -> Self {
        Self::default()
    }

    /// A buffer of `len` floats. Its contents are unspecified: callers overwrite it entirely.
    /// (Debug builds fill it with NaN so that a read before a write shows up in tests.)
    pub fn rent(&self, len: usize) -> Pooled<'_> {
        let class = class_of(len);
        let mut stats = self.stats.get();
        stats.rents += 1;
        let reused = self.free.borrow_mut().get_mut(class).and_then(Vec::pop);
        let buf = match reused {
            Some(buf) => {
                stats.hits += 1;
                buf
            }
            None => {
                stats.misses += 1;
                let class_len = MIN_CLASS_LEN << class;
                stats.bytes_held += (class_len * size_of::<f32>()) as u64;
                stats.high_water_bytes = stats.high_water_bytes.max(stats.bytes_held);
                vec![0.0; class_len]
            }
        };
        self.stats.set(stats);
        let mut pooled = Pooled { buf, len, pool: self };
        if cfg!(debug_assertions) {
            pooled.fill(f32::NAN);
        }
        pooled
    }

    /// Statistics so far.
    pub fn stats(&self) -> PoolStats {
        self.stats.get()
    }

    /// Frees every pooled buffer (rented ones are unaffected and still come back).
    pub fn clear(&self) {
        let mut free = self.free.borrow_mut();
        let freed: usize = free.iter().flatten().map(|b| b.len() * size_of::<f32>()).sum();
        free.clear();
        let mut stats = self.stats.get();
        stats.bytes_held -= freed as u64;
        self.stats.set(stats);
    }

    fn give_back(&self, buf: Vec<f32>) {
        let class = class_of(buf.len());
        let mut free = self.free.borrow_mut();
        if free.len() <= class {
            free.resize_with(class + 1, Vec::new);
        }
        free[class].push(buf);
        let mut stats = self.stats.get();
        stats.returns += 1;
        self.stats.set(stats);
    }
}

/// The size class of a buffer of `len` floats.
fn class_of(len: usize) -> usize {
    (len.max(MIN_CLASS_LEN).next_power_of_two() / MIN_CLASS_LEN).trailing_zeros() as usize
}

impl Deref for Pooled<'_> {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        &self.buf[..self.len]
    }
}

impl DerefMut for Pooled<'_> {
    fn deref_mut(&mut self) -> &mut [f32] {
        &mut self.buf[..self.len]
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        self.pool.give_back(std::mem::take(&mut self.buf));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_classes_are_powers_of_two() {
        assert_eq!(class_of(0), 0);
        assert_eq!(class_of(16), 0);
        assert_eq!(class_of(17), 1);
        assert_eq!(class_of(32), 1);
        assert_eq!(class_of(33), 2);
        assert_eq!(class_of(MIN_CLASS_LEN << 10), 10);
    }

    #[test]
    fn rents_are_returned_and_reused() {
        let pool = TensorPool::new();
        {
            let a = pool.rent(100);
            let b = pool.rent(100);
            assert_eq!((a.len(), b.len()), (100, 100));
        }
        let s = pool.stats();
        assert_eq!((s.rents, s.returns, s.hits, s.misses), (2, 2, 0, 2));
        assert_eq!(s.bytes_held, 2 * 128 * 4);
        {
            let _c = pool.rent(120); // same class as 100: a hit
            let _d = pool.rent(20);
        }
        let s = pool.stats();
        assert_eq!((s.rents, s.returns, s.hits, s.misses), (4, 4, 1, 3));
        assert_eq!(s.high_water_bytes, (2 * 128 + 32) * 4);
        pool.clear();
        assert_eq!(pool.stats().bytes_held, 0);
    }
}
