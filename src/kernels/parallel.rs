//! The worker pool: [`WorkerPool`] runs one job over `n` chunks on this thread and
//! `threads - 1` persistent workers; [`Threads`] is what a kernel is told it may use.
//!
//! It owns every fork-join of the engine: the one-row products (`vec_mat`, `vec_mat_transposed`,
//! `panel::matmul`, dozens per decode token), the column blocks of prefill's products and
//! attention's heads. `gemm` itself always runs single-threaded.

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle, Thread};
use std::time::{Duration, Instant};

/// How long an idle worker spins on the generation counter before it parks.
///
/// Measured on a 2-core AMD EPYC Zen 4, family 25 model 17 (`smallmind bench --threads 2`, the gap
/// from the end of one dispatch to the start of the next, over llama-tiny, stories15m and
/// `small`): most gaps are under 4 us (a norm, a residual add), a second cluster lies at 8-64 us
/// (the work between products that the caller does alone: RoPE, attention, sampling), and
/// 0.02% (llama-tiny), 0.14% (stories15m) and 0.7% (`small`) exceed 64 us. A dispatch to a
/// parked worker took 4-44 us (the futex wake, in two runs), so a worker spins past all but
/// those gaps, and parks when the session is idle. 100 us was chosen
/// from those gaps, not swept.
pub const SPIN: Duration = Duration::from_micros(100);

/// The name of every worker thread starts with this (`smallmind-worker-1`, ...): profiles and
/// traces show it.
pub const WORKER_THREAD_PREFIX: &str = "smallmind-worker-";

/// The most threads a pool may run, the calling one included. Beyond the cores, threads only
/// wait for each other; tens of thousands exhaust the process's memory mappings (each thread
/// maps its stack, a signal stack and their guard pages, against `vm.max_map_count`, 65530 by
/// default), and a thread that cannot map its signal stack aborts the whole process while
/// starting, where no error can be returned (`--threads 40000` did, in half the runs).
pub const MAX_THREADS: usize = 256;

thread_local! {
    /// Set by a worker thread before it runs any job (see [`on_worker_thread`]).
    static IS_WORKER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether the calling thread is one of a [`WorkerPool`]'s workers: the phase timer leaves
/// their spans out, which the calling thread's own spans already cover. Set by the pool on
/// each worker as it starts, so a thread of another pool given a similar name is not taken
/// for one.
pub fn on_worker_thread() -> bool {
    IS_WORKER.with(|w| w.get())
}

/// The threads a kernel may use.
#[derive(Debug, Clone, Copy)]
pub enum Threads<'a> {
    /// This thread only: no pool, no synchronisation.
    One,
    /// This thread and the pool's workers.
    Pool(&'a WorkerPool),
}

impl Threads<'_> {
    /// How many threads that is, the calling one included.
    pub fn count(self) -> usize {
        match self {
            Threads::One => 1,
            Threads::Pool(pool) => pool.threads(),
        }
    }

    /// `f(i, chunk)` for each `chunk_len`-long chunk of `out` (the last may be shorter), in
    /// order on this thread, or spread over the pool's threads.
    pub fn for_each_chunk_mut<T: Send>(
        self,
        out: &mut [T],
        chunk_len: usize,
        f: impl Fn(usize, &mut [T]) + Sync,
    ) {
        assert!(chunk_len > 0, "for_each_chunk_mut: empty chunks");
        let pool = match self {
            Threads::Pool(pool) if out.len() > chunk_len => pool,
            _ => return out.chunks_mut(chunk_len).enumerate().for_each(|(i, c)| f(i, c)),
        };
        let (len, base) = (out.len(), SyncPtr(out.as_mut_ptr()));
        pool.run(len.div_ceil(chunk_len), &|i| {
            let start = i * chunk_len;
            let end = len.min(start + chunk_len);
            // Safety: `run` calls each `i` below `len.div_ceil(chunk_len)` exactly once, so the
            // ranges `start..end` are disjoint and within `out`, which is borrowed mutably for
            // the whole call: no two threads ever hold overlapping slices.
            f(i, unsafe { std::slice::from_raw_parts_mut(base.get().add(start), end - start) });
        });
    }

    /// `f(cols)` for at most `self.count()` consecutive ranges covering `0..n` (each a multiple
    /// of `align` long but the last; non-empty unless `n` is 0, which gives one call with
    /// `0..0`), one per thread: the static split of a product's columns, so that each thread
    /// reads its own weights.
    pub fn for_each_column_block(self, n: usize, align: usize, f: impl Fn(std::ops::Range<usize>) + Sync) {
        let width = n.div_ceil(self.count()).next_multiple_of(align.max(1));
        let block = |i: usize| (i * width).min(n)..((i + 1) * width).min(n);
        match self {
            Threads::Pool(pool) if width < n => pool.run(n.div_ceil(width), &|i| f(block(i))),
            _ => f(0..n),
        }
    }
}

/// A pointer into a buffer whose disjoint parts go to different threads.
pub(crate) struct SyncPtr<T>(pub(crate) *mut T);

impl<T> SyncPtr<T> {
    /// The pointer (a method, so closures capture the whole `Sync` wrapper, not its field).
    pub(crate) fn get(&self) -> *mut T {
        self.0
    }
}

// Safety: every user hands each thread a disjoint part of a buffer of `T: Send` values, borrowed
// mutably for the whole dispatch (`for_each_chunk_mut`; the column blocks of `matmul`; the head
// columns of `layers::attention::attend`).
unsafe impl<T: Send> Sync for SyncPtr<T> {}

/// `threads - 1` persistent workers that, with the calling thread, run a job's chunks.
///
/// # Performance
/// rayon wakes sleeping workers for every job, and a one-row product on stories15m's shapes
/// takes a few microseconds, so that wake-up was a large part of every product at two threads.
/// Here a dispatch is one atomic store (and an unpark only for workers that have parked): idle
/// workers spin for [`SPIN`] on a generation counter, as OpenMP's do between parallel regions,
/// then park so that an idle session does not compete with them. Chunks are
/// dealt statically (thread `t` of `T` runs chunks `t`, `t + T`, ...; the caller is thread 0), as
/// OpenMP's static schedule does: the same thread reads the same weights every token, from its
/// own L2 (chunks claimed from a shared counter ran a 288x768 product 0.53x as fast as one
/// thread: the halves moved between cores' caches; dealt statically, 1.98x). A dispatch
/// allocates nothing; an empty one costs ~0.16 us. Against rayon's fork-join per product, a
/// second core gives llama-tiny 1.26x, stories15m 1.86x and `small` 1.62x at decode instead of
/// 0.99x, 1.36x and 1.42x, on a 2-core AMD EPYC Zen 4 (the command and figures:
/// `docs/speed.md#two-threads`; what was tried and not kept: `docs/decisions.md`).
#[derive(Debug)]
pub struct WorkerPool {
    shared: Arc<Shared>,
    workers: Vec<Thread>,
    handles: Vec<JoinHandle<()>>,
    /// Held by the one dispatch in flight: a dispatch from a job (or from another thread)
    /// meanwhile runs its chunks inline instead.
    busy: AtomicBool,
    /// More threads than cores: waiting threads yield the core instead of spinning on it.
    oversubscribed: bool,
}

#[derive(Debug)]
struct Shared {
    /// The dispatch's generation (high 32 bits) and its chunk count (low 32 bits): one word, so a
    /// worker reads the count of the dispatch whose generation it saw.
    state: AtomicU64,
    /// Points at the caller's `&dyn Fn(usize)` for the dispatch in flight.
    job: AtomicPtr<Job<'static>>,
    /// Chunks of the dispatch in flight that have finished (or panicked).
    done: AtomicUsize,
    /// Workers parked or about to park.
    sleeping: AtomicUsize,
    shutdown: AtomicBool,
    /// Whether a chunk of the dispatch in flight panicked; the first payload is in `panic`.
    panicked: AtomicBool,
    panic: Mutex<Option<Box<dyn Any + Send>>>,
}

type Job<'a> = &'a (dyn Fn(usize) + Sync + 'a);

const LOW_MASK: u64 = (1 << 32) - 1;

impl WorkerPool {
    /// A pool of `threads` threads: this one and `threads - 1` workers started now.
    pub fn new(threads: usize) -> std::io::Result<Self> {
        assert!(threads >= 1, "WorkerPool: threads must be at least 1");
        if threads > MAX_THREADS {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("a pool runs at most {MAX_THREADS} threads"),
            ));
        }
        let shared = Arc::new(Shared {
            state: AtomicU64::new(0),
            job: AtomicPtr::new(std::ptr::null_mut()),
            done: AtomicUsize::new(0),
            sleeping: AtomicUsize::new(0),
            shutdown: AtomicBool::new(false),
            panicked: AtomicBool::new(false),
            panic: Mutex::new(None),
        });
        let cores = thread::available_parallelism().map_or(1, |n| n.get());
        let oversubscribed = threads > cores;
        let mut pool = WorkerPool {
            shared,
            workers: Vec::new(),
            handles: Vec::new(),
            busy: AtomicBool::new(false),
            oversubscribed,
        };
        for i in 1..threads {
            let shared = Arc::clone(&pool.shared);
            // On an error, dropping `pool` stops and joins the workers started so far.
            let handle =
                thread::Builder::new().name(format!("{WORKER_THREAD_PREFIX}{i}")).spawn(move || {
                    IS_WORKER.with(|w| w.set(true));
                    worker_loop(&shared, i, threads, oversubscribed)
                })?;
            pool.workers.push(handle.thread().clone());
            pool.handles.push(handle);
        }
        Ok(pool)
    }

    /// Threads this pool runs a job on, the calling one included.
    pub fn threads(&self) -> usize {
        self.workers.len() + 1
    }

    /// Runs `job(i)` for every `i` in `0..n_chunks`, each exactly once, on this thread and the
    /// workers (thread `t` of `T` runs `t`, `t + T`, ...), and returns when all have finished.
    /// A panic in any chunk is resumed here once every chunk has finished. A dispatch made
    /// while another is in flight (from inside a job, or from another thread) runs inline.
    pub fn run(&self, n_chunks: usize, job: &(dyn Fn(usize) + Sync)) {
        assert!(n_chunks as u64 <= LOW_MASK, "WorkerPool::run: too many chunks");
        if n_chunks <= 1
            || self.workers.is_empty()
            || self.busy.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed).is_err()
        {
            (0..n_chunks).for_each(job);
            return;
        }
        let shared = &*self.shared;
        let job_ref: Job<'_> = job;
        // `job_ref` stays on this stack frame until every chunk has finished (below).
        shared.job.store(&job_ref as *const Job<'_> as *mut Job<'static>, Ordering::Relaxed);
        shared.done.store(0, Ordering::Relaxed);
        let generation = (shared.state.load(Ordering::Relaxed) >> 32).wrapping_add(1) & LOW_MASK;
        shared.state.store(generation << 32 | n_chunks as u64, Ordering::SeqCst);
        if shared.sleeping.load(Ordering::SeqCst) > 0 {
            self.workers.iter().for_each(Thread::unpark);
        }
        for chunk in (0..n_chunks).step_by(self.threads()) {
            run_chunk(shared, job, chunk);
        }
        wait_for(self.oversubscribed, || shared.done.load(Ordering::Acquire) >= n_chunks);
        self.busy.store(false, Ordering::Release);
        if shared.panicked.swap(false, Ordering::Acquire) {
            let payload = shared.panic.lock().unwrap_or_else(|e| e.into_inner()).take();
            panic::resume_unwind(payload.unwrap_or_else(|| Box::new("a WorkerPool job panicked")));
        }
    }
}

impl Drop for WorkerPool {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        self.workers.iter().for_each(Thread::unpark);
        for handle in self.handles.drain(..) {
            // A worker never panics (jobs run under `catch_unwind`); nothing to report if it did.
            let _ = handle.join();
        }
    }
}

/// Runs one chunk, keeping a panic for the dispatching thread, and counts it finished.
fn run_chunk(shared: &Shared, job: Job<'_>, chunk: usize) {
    if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| job(chunk))) {
        shared.panic.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert(payload);
        shared.panicked.store(true, Ordering::Release);
    }
    shared.done.fetch_add(1, Ordering::Release);
}

/// Spins until `finished()`, yielding the core after a while, or from the start when
/// `oversubscribed` (a worker may then be descheduled, waiting for this very core).
fn wait_for(oversubscribed: bool, finished: impl Fn() -> bool) {
    let mut spins = 0u32;
    while !finished() {
        if !oversubscribed && spins < 1 << 12 {
            spins += 1;
            std::hint::spin_loop();
        } else {
            thread::yield_now();
        }
    }
}

/// Worker `index` of a pool of `threads`: runs chunks `index`, `index + threads`, ... of each
/// dispatch. When `oversubscribed`, it yields the core between polls instead of spinning: a
/// spinning worker there held a core another thread of the same dispatch was waiting for
/// (stories15m at 3 threads on 2 cores fell from 212 to 94 tok/s, llama-tiny from 14205 to 266).
fn worker_loop(shared: &Shared, index: usize, threads: usize, oversubscribed: bool) {
    let mut seen = 0u64;
    loop {
        // Wait for a generation other than `seen`: spin for `SPIN`, then park.
        let spin_until = Instant::now() + SPIN;
        let mut polls = 0u32;
        let state = loop {
            if shared.shutdown.load(Ordering::Acquire) {
                return;
            }
            let state = shared.state.load(Ordering::Acquire);
            if state >> 32 != seen {
                break state;
            }
            polls = polls.wrapping_add(1);
            if !polls.is_multiple_of(64) || Instant::now() < spin_until {
                if oversubscribed {
                    thread::yield_now();
                } else {
                    std::hint::spin_loop();
                }
                continue;
            }
            // Announce the sleep, then look again: a dispatch either sees `sleeping` and
            // unparks this thread, or published its generation before this look (SeqCst on
            // both sides), so no wake-up is lost. Spurious wake-ups just loop.
            shared.sleeping.fetch_add(1, Ordering::SeqCst);
            if shared.state.load(Ordering::SeqCst) >> 32 == seen && !shared.shutdown.load(Ordering::SeqCst) {
                thread::park();
            }
            shared.sleeping.fetch_sub(1, Ordering::SeqCst);
        };
        seen = state >> 32;
        let n_chunks = (state & LOW_MASK) as usize;
        for chunk in (index..n_chunks).step_by(threads) {
            // Safety: this thread has a chunk of the dispatch whose state it read (Acquire),
            // unfinished until `run_chunk` counts it, so the `run` that published that state is
            // still waiting for it and the `Job` it stored on its stack frame before publishing
            // is alive; the Release store of the state made that store visible here.
            let job: Job<'_> = unsafe { *shared.job.load(Ordering::Relaxed) };
            run_chunk(shared, job, chunk);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    fn counts(n: usize) -> Vec<AtomicU32> {
        (0..n).map(|_| AtomicU32::new(0)).collect()
    }

    #[test]
    fn every_chunk_runs_exactly_once_across_many_dispatches() {
        for threads in [1, 2, 3, 5] {
            let pool = WorkerPool::new(threads).unwrap();
            assert_eq!(pool.threads(), threads);
            for n in [0, 1, 2, 3, 7, 64, 1000] {
                for _ in 0..50 {
                    let seen = counts(n);
                    pool.run(n, &|i| {
                        seen[i].fetch_add(1, Ordering::Relaxed);
                    });
                    assert!(
                        seen.iter().all(|c| c.load(Ordering::Relaxed) == 1),
                        "{threads} threads, {n} chunks"
                    );
                }
            }
        }
    }

    #[test]
    fn dispatches_after_the_workers_parked_still_run_every_chunk() {
        let pool = WorkerPool::new(3).unwrap();
        for _ in 0..3 {
            thread::sleep(SPIN * 20);
            let seen = counts(9);
            pool.run(9, &|i| {
                seen[i].fetch_add(1, Ordering::Relaxed);
            });
            assert!(seen.iter().all(|c| c.load(Ordering::Relaxed) == 1));
        }
    }

    /// The pool's workers know they are workers; the calling thread, and another thread that
    /// merely has a worker's name, do not.
    #[test]
    fn workers_and_only_workers_are_on_a_worker_thread() {
        let pool = WorkerPool::new(3).unwrap();
        let seen = Mutex::new(Vec::new());
        for _ in 0..20 {
            pool.run(3, &|_| {
                let name = thread::current().name().map(str::to_string);
                seen.lock().unwrap().push((on_worker_thread(), name));
            });
        }
        let seen = seen.into_inner().unwrap();
        // Chunk i runs on worker i (chunk 0 on the caller): 40 of the 60 on workers.
        assert_eq!(seen.iter().filter(|(worker, _)| *worker).count(), 40);
        for (worker, name) in &seen {
            let named = name.as_deref().is_some_and(|n| n.starts_with(WORKER_THREAD_PREFIX));
            assert_eq!(*worker, named, "{name:?}");
        }
        assert!(!on_worker_thread());
        let impostor =
            thread::Builder::new().name(format!("{WORKER_THREAD_PREFIX}9")).spawn(on_worker_thread);
        assert!(!impostor.unwrap().join().unwrap());
    }

    #[test]
    fn a_dispatch_from_inside_a_job_runs_inline() {
        let pool = WorkerPool::new(2).unwrap();
        let seen = counts(4 * 5);
        pool.run(4, &|i| {
            pool.run(5, &|j| {
                seen[i * 5 + j].fetch_add(1, Ordering::Relaxed);
            });
        });
        assert!(seen.iter().all(|c| c.load(Ordering::Relaxed) == 1));
    }

    #[test]
    fn dispatches_from_two_threads_at_once_each_run_every_chunk() {
        let pool = WorkerPool::new(2).unwrap();
        thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    for _ in 0..200 {
                        let seen = counts(6);
                        pool.run(6, &|i| {
                            seen[i].fetch_add(1, Ordering::Relaxed);
                        });
                        assert!(seen.iter().all(|c| c.load(Ordering::Relaxed) == 1));
                    }
                });
            }
        });
    }

    #[test]
    fn a_panicking_chunk_is_resumed_on_the_caller_and_the_pool_still_works() {
        let pool = WorkerPool::new(3).unwrap();
        for bad in [0, 1, 5] {
            let finished = AtomicU32::new(0);
            let result = panic::catch_unwind(AssertUnwindSafe(|| {
                pool.run(6, &|i| {
                    if i == bad {
                        panic!("chunk {i} fails");
                    }
                    finished.fetch_add(1, Ordering::Relaxed);
                })
            }));
            let payload = result.expect_err("the panic reaches the caller");
            assert_eq!(
                payload.downcast_ref::<String>().map(String::as_str),
                Some(format!("chunk {bad} fails").as_str())
            );
            assert_eq!(finished.load(Ordering::Relaxed), 5, "the other chunks all ran");
            let seen = counts(6);
            pool.run(6, &|i| {
                seen[i].fetch_add(1, Ordering::Relaxed);
            });
            assert!(seen.iter().all(|c| c.load(Ordering::Relaxed) == 1));
        }
    }

    #[test]
    fn drop_joins_the_workers() {
        let pool = WorkerPool::new(4).unwrap();
        pool.run(8, &|_| {});
        let handles: Vec<_> = pool.workers.iter().map(|t| t.id()).collect();
        assert_eq!(handles.len(), 3);
        let shared = Arc::clone(&pool.shared);
        drop(pool);
        // Every worker held a reference to `shared`; joined workers have dropped theirs.
        assert_eq!(Arc::strong_count(&shared), 1);
    }

    #[test]
    fn chunks_mut_hands_out_disjoint_chunks_in_order() {
        let pool = WorkerPool::new(3).unwrap();
        for threads in [Threads::One, Threads::Pool(&pool)] {
            for (len, chunk_len) in [(0, 4), (1, 4), (10, 3), (12, 4), (100, 7)] {
                let mut out = vec![usize::MAX; len];
                threads.for_each_chunk_mut(&mut out, chunk_len, |i, chunk| {
                    for (j, o) in chunk.iter_mut().enumerate() {
                        *o = i * chunk_len + j;
                    }
                });
                assert_eq!(
                    out,
                    (0..len).collect::<Vec<_>>(),
                    "{} threads, {len} by {chunk_len}",
                    threads.count()
                );
            }
        }
    }
}
