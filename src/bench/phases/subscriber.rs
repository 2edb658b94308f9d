//! The global `tracing` subscriber behind [`super`]: off, timing phases ([`PhaseTimer`]), or
//! handing spans to the chrome trace ([`Trace`], with the `profilers` feature only).

use super::{FORWARD, PHASES};
use std::cell::RefCell;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};
use tracing::level_filters::LevelFilter;
use tracing::subscriber::{Interest, Subscriber};
use tracing::{Dispatch, Metadata, span};
#[cfg(feature = "profilers")]
use {std::io::Write, std::sync::mpsc, tracing_subscriber::layer::SubscriberExt};

/// Installs the global subscriber if it is not installed yet. Fails if another global
/// subscriber was set first (by the embedding program).
pub fn install() -> Result<(), String> {
    let mut result = Ok(());
    INSTALLED.get_or_init(|| {
        let (chrome, guard) = chrome_layer();
        if let Err(e) = tracing::subscriber::set_global_default(Switch { chrome }) {
            result = Err(format!("cannot install the tracing subscriber: {e}"));
        }
        Mutex::new(guard)
    });
    result
}

/// Whether [`install`] has run in this process (spans then cost a mode check even when off).
pub fn installed() -> bool {
    INSTALLED.get().is_some()
}

/// Sums the time spent in each phase while it runs; one at a time per process.
#[derive(Debug)]
pub struct PhaseTimer {
    _private: (),
}

/// Time per phase over some number of operations.
#[derive(Debug, Clone, PartialEq)]
pub struct PhaseTotals {
    /// Inclusive time in each of [`PHASES`], in that order.
    pub phases: [Duration; PHASES.len()],
    /// Time inside [`FORWARD`] spans.
    pub forward: Duration,
}

impl PhaseTimer {
    /// Zeroes the totals and starts timing spans. Call [`install`] first.
    pub fn start() -> PhaseTimer {
        for total in &TOTALS_NS {
            total.store(0, Ordering::Relaxed);
        }
        MODE.store(PHASE_MODE, Ordering::SeqCst);
        PhaseTimer { _private: () }
    }

    /// Stops timing and returns the totals since [`PhaseTimer::start`].
    pub fn finish(self) -> PhaseTotals {
        MODE.store(OFF_MODE, Ordering::SeqCst);
        let ns = |i: usize| Duration::from_nanos(TOTALS_NS[i].load(Ordering::Relaxed));
        PhaseTotals { phases: std::array::from_fn(ns), forward: ns(PHASES.len()) }
    }
}

/// The chrome trace's layer, idle (writing to a sink) until a [`Trace`] starts.
#[cfg(feature = "profilers")]
fn chrome_layer() -> (Dispatch, ChromeGuard) {
    let (chrome, guard) = tracing_chrome::ChromeLayerBuilder::new()
        .writer(std::io::sink())
        .include_args(false)
        .include_locations(false)
        .build();
    (Dispatch::new(tracing_subscriber::registry().with(chrome)), guard)
}

/// Without the `profilers` feature there is no chrome trace: a subscriber that takes nothing.
#[cfg(not(feature = "profilers"))]
fn chrome_layer() -> (Dispatch, ChromeGuard) {
    (Dispatch::none(), ())
}

/// What flushes the chrome trace (nothing without the `profilers` feature).
#[cfg(feature = "profilers")]
type ChromeGuard = tracing_chrome::FlushGuard;
#[cfg(not(feature = "profilers"))]
type ChromeGuard = ();

/// A chrome trace being recorded into a writer.
#[cfg(feature = "profilers")]
#[derive(Debug)]
pub struct Trace {
    done: mpsc::Receiver<()>,
}

#[cfg(feature = "profilers")]
impl Trace {
    /// Starts recording the engine's spans into `writer`. Call [`install`] first.
    pub fn start(writer: Box<dyn Write + Send>) -> Trace {
        let (tx, done) = mpsc::channel();
        with_guard(|guard| guard.start_new(Some(Box::new(NotifyOnDrop { inner: writer, done: tx }))));
        MODE.store(TRACE_MODE, Ordering::SeqCst);
        Trace { done }
    }

    /// Stops recording, and returns once the trace is complete and its writer dropped.
    pub fn finish(self) -> Result<(), String> {
        MODE.store(OFF_MODE, Ordering::SeqCst);
        with_guard(|guard| guard.start_new(Some(Box::new(std::io::sink()))));
        self.done
            .recv_timeout(Duration::from_secs(60))
            .map_err(|_| "the chrome trace writer did not finish within 60 s".to_string())
    }
}

static INSTALLED: OnceLock<Mutex<ChromeGuard>> = OnceLock::new();
/// What the global subscriber does with spans now; switched only between operations, when no
/// engine span is open.
static MODE: AtomicU8 = AtomicU8::new(OFF_MODE);
const OFF_MODE: u8 = 0;
const PHASE_MODE: u8 = 1;
const TRACE_MODE: u8 = 2;
/// Nanoseconds per phase, then the forward pass.
static TOTALS_NS: [AtomicU64; PHASES.len() + 1] = [const { AtomicU64::new(0) }; PHASES.len() + 1];

thread_local! {
    /// Spans entered on this thread and not yet exited: (phase index, entry time).
    static OPEN: RefCell<Vec<(usize, Instant)>> = RefCell::new(Vec::with_capacity(16));
    /// Whether this thread is one of a `WorkerPool`'s workers (read once: a thread does not
    /// become one after it starts).
    static ON_WORKER: bool = crate::kernels::parallel::on_worker_thread();
}

#[cfg(feature = "profilers")]
fn with_guard(f: impl FnOnce(&ChromeGuard)) {
    let guard = INSTALLED.get().expect("phases::install runs before a trace starts");
    f(&guard.lock().unwrap_or_else(|poisoned| poisoned.into_inner()));
}

/// The index of a span's name in [`PHASES`], or `PHASES.len()` for [`FORWARD`].
fn phase_index(name: &str) -> Option<usize> {
    if name == FORWARD {
        return Some(PHASES.len());
    }
    PHASES.iter().position(|&p| p == name)
}

/// The global subscriber: ignores every span, times the engine's phases, or hands spans to the
/// chrome trace's own registry, as [`MODE`] says.
///
/// # Performance
/// Timing a phase costs two clock reads and a push and pop on a thread-local stack: the span's
/// id is its phase index, so no span registry, no lookup and no allocation is involved. A
/// registry-based layer measured ~1.5x slower decode on `tiny` (which opens ~150 spans per
/// token); this costs a fraction of that (see [`PhaseReport::overhead_ratio`] in each results
/// file). Spans nest and are exited in LIFO order on each thread (entered guards), so the stack
/// pairs them.
///
/// [`PhaseReport::overhead_ratio`]: crate::bench::results::PhaseReport::overhead_ratio
struct Switch {
    chrome: Dispatch,
}

fn engine_span(meta: &Metadata<'_>) -> bool {
    meta.target().starts_with("smallmind")
}

impl Subscriber for Switch {
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        let _ = self.chrome.register_callsite(meta);
        if engine_span(meta) { Interest::sometimes() } else { Interest::never() }
    }

    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        match MODE.load(Ordering::Relaxed) {
            PHASE_MODE => meta.is_span() && phase_index(meta.name()).is_some(),
            TRACE_MODE => self.chrome.enabled(meta),
            _ => false,
        }
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(LevelFilter::TRACE)
    }

    fn new_span(&self, attrs: &span::Attributes<'_>) -> span::Id {
        match MODE.load(Ordering::Relaxed) {
            TRACE_MODE => self.chrome.new_span(attrs),
            // `enabled` let only phase spans through; ids start at 1.
            _ => span::Id::from_u64(phase_index(attrs.metadata().name()).unwrap_or(PHASES.len()) as u64 + 1),
        }
    }

    fn record(&self, span: &span::Id, values: &span::Record<'_>) {
        if MODE.load(Ordering::Relaxed) == TRACE_MODE {
            self.chrome.record(span, values);
        }
    }

    fn record_follows_from(&self, span: &span::Id, follows: &span::Id) {
        if MODE.load(Ordering::Relaxed) == TRACE_MODE {
            self.chrome.record_follows_from(span, follows);
        }
    }

    fn event(&self, event: &tracing::Event<'_>) {
        if MODE.load(Ordering::Relaxed) == TRACE_MODE {
            self.chrome.event(event);
        }
    }

    fn enter(&self, span: &span::Id) {
        match MODE.load(Ordering::Relaxed) {
            TRACE_MODE => self.chrome.enter(span),
            _ => {
                let index = span.into_u64() as usize - 1;
                OPEN.with(|open| open.borrow_mut().push((index, Instant::now())));
            }
        }
    }

    fn exit(&self, span: &span::Id) {
        match MODE.load(Ordering::Relaxed) {
            TRACE_MODE => self.chrome.exit(span),
            _ => {
                let now = Instant::now();
                let closed = OPEN.with(|open| open.borrow_mut().pop());
                // A pool worker's span runs beside the calling thread's own share of the same
                // phase (attention's heads): only the calling thread's time counts.
                if let Some((index, entered)) = closed.filter(|_| !ON_WORKER.with(|w| *w)) {
                    TOTALS_NS[index].fetch_add((now - entered).as_nanos() as u64, Ordering::Relaxed);
                }
            }
        }
    }

    fn clone_span(&self, span: &span::Id) -> span::Id {
        match MODE.load(Ordering::Relaxed) {
            TRACE_MODE => self.chrome.clone_span(span),
            _ => span.clone(),
        }
    }

    fn try_close(&self, span: span::Id) -> bool {
        match MODE.load(Ordering::Relaxed) {
            TRACE_MODE => self.chrome.try_close(span),
            _ => false,
        }
    }
}

/// Passes writes through and signals when dropped: tracing-chrome drops the old writer once the
/// trace in it is complete.
#[cfg(feature = "profilers")]
struct NotifyOnDrop {
    inner: Box<dyn Write + Send>,
    done: mpsc::Sender<()>,
}

#[cfg(feature = "profilers")]
impl Write for NotifyOnDrop {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.inner.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(feature = "profilers")]
impl Drop for NotifyOnDrop {
    fn drop(&mut self) {
        let _ = self.inner.flush();
        let _ = self.done.send(());
    }
}
