//! Measurement of one variant: one workload, one set of optimizations, one results file.
//!
//! [`run`] takes the figures in passes, in this order, so that no pass perturbs an earlier one:
//! 1. **warm-up** iterations, discarded (they fill the tensor pool and allocate the KV cache);
//! 2. **measured** iterations: wall-clock times per token and the counting allocator's figures.
//!    No tracing subscriber exists yet, so spans cost one relaxed load each, and no profiler runs;
//! 3. a **phase** pass: the same operation with the engine's spans timed ([`phases`]);
//! 4. each **profile** asked for, in its own pass: dhat heap profile, pprof CPU profile, chrome
//!    trace (the trace last: it leaves a subscriber installed).
//!
//! One operation ("op", as SmallMind's Allocations/op) is one generate call, prompt encoding
//! included. One [`Session`] serves every pass, as one engine served SmallMind's iterations.
//! The passes are `passes.rs`, the arithmetic `summary.rs`, the profiler adapters
//! `profilers.rs`, the spec `spec.rs`; the CLI owns files and flags. The results format
//! (`results`, `env`, `machine`, `probe`, `stats`, `phases`' names) is what the workbench reads.

#[cfg(feature = "engine")]
pub mod alloc;
pub mod env;
pub mod machine;
#[cfg(feature = "engine")]
mod passes;
pub mod phases;
pub mod probe;
#[cfg(feature = "profilers")]
mod profilers;
pub mod results;
#[cfg(feature = "engine")]
mod spec;
pub mod stats;
#[cfg(feature = "engine")]
mod summary;

#[cfg(feature = "engine")]
pub use passes::run;
#[cfg(feature = "engine")]
pub use spec::{BenchSpec, Dest, HEAP_PROFILING, ProfileOutputs, ProfileSettings};
#[cfg(feature = "engine")]
pub use summary::digest;
