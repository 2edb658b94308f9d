//! A counting global allocator: heap allocations and bytes, live bytes and their peak.
//!
//! This is the honest Rust analogue of SmallMind's GC figures (Gen0/Gen1 and Allocations/op).
//! The `smallmind` binary installs it as the global allocator over the system allocator (or over
//! `dhat::Alloc` in a `dhat-heap` build); the test binaries install it too. This module only
//! counts: it decides nothing and never allocates.
//!
//! # Performance
//! Every allocation pays three relaxed atomic read-modify-writes (count, bytes, live bytes) and
//! every free one, on counters that share no cache line with the engine's data; the peak is
//! read, and written only when it grows. `benches/measurement.rs` measures the cost per call. A decode
//! step with `tensor-pool` and `kv-cache` on makes no allocation at all, so that figure is the
//! whole overhead for the engine's fast path.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicU64, Ordering};

/// Wraps a global allocator `A`, counting what goes through it into process-wide counters.
#[derive(Debug)]
pub struct CountingAlloc<A> {
    inner: A,
}

impl<A> CountingAlloc<A> {
    /// Counts what `inner` allocates.
    pub const fn new(inner: A) -> Self {
        CountingAlloc { inner }
    }
}

/// The counters at one instant; differences of two snapshots measure what happened between them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AllocSnapshot {
    /// Allocations so far (`alloc`, `alloc_zeroed` and `realloc` each count one).
    pub count: u64,
    /// Bytes asked for so far (a `realloc` counts its new size).
    pub bytes: u64,
    /// Bytes live now.
    pub live_bytes: u64,
    /// The most bytes live at once since the last [`reset_peak`].
    pub peak_live_bytes: u64,
}

impl AllocSnapshot {
    /// Allocations between `earlier` and `self`.
    pub fn count_since(&self, earlier: &AllocSnapshot) -> u64 {
        self.count - earlier.count
    }

    /// Bytes allocated between `earlier` and `self`.
    pub fn bytes_since(&self, earlier: &AllocSnapshot) -> u64 {
        self.bytes - earlier.bytes
    }
}

/// The counters now.
pub fn snapshot() -> AllocSnapshot {
    AllocSnapshot {
        count: COUNTERS.count.load(Ordering::Relaxed),
        bytes: COUNTERS.bytes.load(Ordering::Relaxed),
        live_bytes: COUNTERS.live.load(Ordering::Relaxed),
        peak_live_bytes: COUNTERS.peak.load(Ordering::Relaxed),
    }
}

/// Starts a new peak measurement from the bytes live now.
pub fn reset_peak() {
    COUNTERS.peak.store(COUNTERS.live.load(Ordering::Relaxed), Ordering::Relaxed);
}

/// Whether a [`CountingAlloc`] is this process's global allocator (allocates one small box).
pub fn is_counting() -> bool {
    let before = COUNTERS.count.load(Ordering::Relaxed);
    drop(std::hint::black_box(Box::new(0u64)));
    COUNTERS.count.load(Ordering::Relaxed) > before
}

/// The process-wide counters, on their own cache line.
#[repr(align(128))]
struct Counters {
    count: AtomicU64,
    bytes: AtomicU64,
    live: AtomicU64,
    peak: AtomicU64,
}

static COUNTERS: Counters = Counters {
    count: AtomicU64::new(0),
    bytes: AtomicU64::new(0),
    live: AtomicU64::new(0),
    peak: AtomicU64::new(0),
};

fn record_alloc(size: usize) {
    let size = size as u64;
    COUNTERS.count.fetch_add(1, Ordering::Relaxed);
    COUNTERS.bytes.fetch_add(size, Ordering::Relaxed);
    let live = COUNTERS.live.fetch_add(size, Ordering::Relaxed) + size;
    // A plain load first: a new peak is rare, and `fetch_max` is a compare-and-swap loop.
    if live > COUNTERS.peak.load(Ordering::Relaxed) {
        COUNTERS.peak.fetch_max(live, Ordering::Relaxed);
    }
}

fn record_dealloc(size: usize) {
    COUNTERS.live.fetch_sub(size as u64, Ordering::Relaxed);
}

// Safety: every call is forwarded unchanged to `inner`, which upholds `GlobalAlloc`'s contract;
// we only update counters, and only for calls that succeeded.
unsafe impl<A: GlobalAlloc> GlobalAlloc for CountingAlloc<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // Safety: the caller upholds `alloc`'s contract, which we pass on unchanged.
        let ptr = unsafe { self.inner.alloc(layout) };
        if !ptr.is_null() {
            record_alloc(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // Safety: as for `alloc`.
        let ptr = unsafe { self.inner.alloc_zeroed(layout) };
        if !ptr.is_null() {
            record_alloc(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // Safety: `ptr` came from `inner` with this layout (every allocation goes through us).
        unsafe { self.inner.dealloc(ptr, layout) };
        record_dealloc(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // Safety: as for `dealloc`; the caller upholds `realloc`'s size contract.
        let new = unsafe { self.inner.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            record_dealloc(layout.size());
            record_alloc(new_size);
        }
        new
    }
}
