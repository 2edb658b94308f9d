//! Time per phase of the forward pass, from the engine's `tracing` spans, and the tracing-chrome
//! trace of the same spans.
//!
//! The engine opens a `trace`-level span around each phase (see [`PHASES`]) and one around each
//! whole forward pass ([`FORWARD`]). Until [`install`] runs, no subscriber exists and each span
//! costs one relaxed load of tracing's global level filter: that is how the measured iterations
//! run. [`install`] sets, once per process, a global subscriber that is off until switched to
//! one of two modes between operations: timing phases ([`PhaseTimer::start`]) or recording a
//! chrome trace ([`Trace::start`]). A global subscriber, not a scoped one, because with
//! `--threads` above 1 the engine's workers open spans too; a phase counts only the time of
//! the thread that runs the forward pass (a worker's share runs beside it).
//!
//! The names ([`PHASES`], [`FORWARD`], [`ATTENTION`]) are part of the results format and need
//! no engine; the subscriber is `subscriber.rs` (the `engine` feature, its chrome trace the
//! `profilers` feature). This module does not decide when phases are timed; `bench::run` does.

#[cfg(feature = "engine")]
mod subscriber;

#[cfg(feature = "profilers")]
pub use subscriber::Trace;
#[cfg(feature = "engine")]
pub use subscriber::{PhaseTimer, PhaseTotals, install, installed};

/// The phases the engine's spans name, in the order of a forward pass; sampling follows it.
/// GPT-2 normalises with `layernorm`, Llama with `rmsnorm` and rotates q and k in `rope`.
pub const PHASES: [&str; 12] = [
    "embedding",
    "layernorm",
    "rmsnorm",
    "qkv_projection",
    "rope",
    "attention_scores",
    "softmax",
    "attention_values",
    "output_projection",
    "mlp",
    "lm_head",
    "sampling",
];

/// The span around one whole forward pass (embedding to logits), the denominator of the shares.
pub const FORWARD: &str = "forward";

/// The phases SmallMind's plan calls "attention" (45% of the forward pass before, 15% after):
/// scores, softmax and the weighted sum of values; the projections are counted apart. With
/// several threads the heads are split between them and only the calling thread's heads are
/// timed: its wait for a slower worker falls in no phase (only in [`FORWARD`]), so the
/// attention share is then a lower bound.
pub const ATTENTION: [&str; 3] = ["attention_scores", "softmax", "attention_values"];
