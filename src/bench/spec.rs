//! What one measurement is: [`BenchSpec`] (the workload, the optimizations, how many ops in
//! each pass), [`ProfileSettings`], and where the profiles go ([`ProfileOutputs`]). It runs
//! nothing: the passes are `passes.rs`.

use super::results::PromptSpec;
use crate::error::{Error, Result};
use crate::generate::GenerateParams;
use crate::optimizations::Optimizations;
use std::io::Write;
use std::path::Path;

/// Everything that defines a measurement except where its profiles go.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchSpec {
    /// The model as named on the command line (recorded, not loaded here).
    pub model_name: String,
    pub prompt: PromptSpec,
    pub params: GenerateParams,
    pub threads: usize,
    pub opts: Optimizations,
    pub warmup: usize,
    pub iterations: usize,
    /// Operations in the phase pass (0: no phase pass).
    pub phase_iterations: usize,
    /// Read the capability probe at the start and the end ([`super::probe`]), and the machine's
    /// contamination counters around the measured ops ([`super::machine`]).
    pub probe: bool,
    pub profile: ProfileSettings,
}

/// How long profile passes run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProfileSettings {
    /// Operations in each profile pass (the CPU pass may run more, see `cpu_seconds`).
    pub iterations: usize,
    /// The CPU profile repeats operations until this much time has passed: at ~250 samples a
    /// second, a short operation would otherwise leave the flame graph nearly empty.
    pub cpu_seconds: f64,
    /// Sampling rate asked of the CPU profiler (it tops out near 250 Hz on Linux).
    pub frequency_hz: i32,
}

impl Default for ProfileSettings {
    fn default() -> Self {
        ProfileSettings { iterations: 1, cpu_seconds: 3.0, frequency_hz: 250 }
    }
}

/// A profile's destination and the name the results file records for it.
#[derive(Debug)]
pub struct Dest<W> {
    pub shown_as: String,
    pub sink: W,
}

/// Where the profiles asked for go; `None` skips that pass.
#[derive(Default)]
pub struct ProfileOutputs<'a> {
    /// dhat writes its JSON to this path (needs the `dhat-heap` feature).
    pub heap: Option<Dest<&'a Path>>,
    pub flamegraph: Option<Dest<&'a mut dyn Write>>,
    pub pprof: Option<Dest<&'a mut dyn Write>>,
    /// The CPU profile's stacks, collapsed: one `thread;root;...;leaf COUNT` line per stack, the
    /// format flame graph tools read (and the workbench diffs).
    pub folded: Option<Dest<&'a mut dyn Write>>,
    pub trace: Option<Dest<Box<dyn Write + Send>>>,
}

impl std::fmt::Debug for ProfileOutputs<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = |d: Option<&String>| d.cloned();
        f.debug_struct("ProfileOutputs")
            .field("heap", &name(self.heap.as_ref().map(|d| &d.shown_as)))
            .field("flamegraph", &name(self.flamegraph.as_ref().map(|d| &d.shown_as)))
            .field("pprof", &name(self.pprof.as_ref().map(|d| &d.shown_as)))
            .field("folded", &name(self.folded.as_ref().map(|d| &d.shown_as)))
            .field("trace", &name(self.trace.as_ref().map(|d| &d.shown_as)))
            .finish()
    }
}

/// Whether this build can write heap profiles (the `dhat-heap` feature).
pub const HEAP_PROFILING: bool = cfg!(feature = "dhat-heap");

impl BenchSpec {
    /// Rejects a spec that cannot be measured, saying which value to change.
    pub fn validate(&self) -> Result<()> {
        let bad = |msg: &str| Err(Error::Input(msg.to_string()));
        if self.iterations == 0 {
            return bad("--iterations must be at least 1");
        }
        if self.params.max_new_tokens == 0 {
            return bad("--max-new-tokens must be at least 1");
        }
        if self.threads == 0 {
            return bad("--threads must be at least 1");
        }
        if let PromptSpec::Synthetic { tokens: 0, .. } = self.prompt {
            return bad("--prompt-tokens must be at least 1");
        }
        if self.profile.iterations == 0 {
            return bad("--profile-iterations must be at least 1");
        }
        if !(self.profile.cpu_seconds >= 0.0 && self.profile.cpu_seconds.is_finite()) {
            return bad("--profile-seconds must be a finite number of seconds, at least 0");
        }
        if !(1..=1000).contains(&self.profile.frequency_hz) {
            return bad("--profile-hz must be between 1 and 1000 (Linux delivers at most ~250)");
        }
        self.params.sampling.validate().map_err(Error::Input)
    }
}
