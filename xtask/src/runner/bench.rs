//! One `smallmind bench` process: a [`BenchCall`] names everything it is given, and
//! [`BenchCall::run`] spawns it and reads the results file it writes.

use crate::error::{Error, PathContext};
use crate::plan::Workload;
use anyhow::{Context, Result, bail};
use smallmind::Optimizations;
use smallmind::bench::results::BenchResults;
use std::path::Path;
use std::process::Command;

/// Everything one `smallmind bench` process is given.
#[derive(Debug, Clone)]
pub struct BenchCall<'a> {
    pub workload: &'a Workload,
    pub optimizations: Optimizations,
    /// Ops run and discarded before measuring.
    pub warmup: usize,
    /// Measured ops.
    pub iterations: usize,
    /// Ops timed phase by phase after the measured ones.
    pub phase_iterations: usize,
    /// Whether the process reads the machine's capability probe at its start and end.
    pub probe: bool,
    /// Profile flags (`--flamegraph FILE`, ...).
    pub profile_flags: Vec<String>,
}

impl<'a> BenchCall<'a> {
    /// A process that checks correctness only: one op, no warm-up, no phases, no probe.
    pub fn check(workload: &'a Workload, optimizations: Optimizations) -> BenchCall<'a> {
        BenchCall {
            workload,
            optimizations,
            warmup: 0,
            iterations: 1,
            phase_iterations: 0,
            probe: false,
            profile_flags: Vec::new(),
        }
    }

    /// Runs `binary` with this call, its results file at `out` (removed once read).
    ///
    /// A process that fails is [`Error::Untestable`] (this engine cannot run the workload),
    /// except NaN or infinite logits: those are this engine's wrong output, and `check` exits 1
    /// for them, as for tokens that differ.
    pub fn run(&self, binary: &Path, out: &Path) -> Result<BenchResults> {
        let mut cmd = Command::new(binary);
        cmd.arg("bench")
            .args(self.workload.bench_flags())
            .args(["--opt", &self.optimizations.to_string()])
            .args(["--warmup", &self.warmup.to_string()])
            .args(["--iterations", &self.iterations.to_string()])
            .args(["--phase-iterations", &self.phase_iterations.to_string()])
            .args(&self.profile_flags);
        if !self.probe {
            cmd.arg("--no-probe");
        }
        cmd.arg("--out").arg(out).env_remove("SMALLMIND_OPT");
        let output =
            cmd.output().map_err(|e| Error::Untestable(format!("cannot run {}: {e}", binary.display())))?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let last = stderr.lines().rev().find(|l| l.starts_with("error")).unwrap_or(stderr.trim());
            if last.contains(smallmind::Error::NON_FINITE_LOGITS) {
                bail!("WRONG OUTPUT: smallmind bench failed ({}): {last}", output.status);
            }
            return Err(
                Error::Untestable(format!("smallmind bench failed ({}): {last}", output.status)).into()
            );
        }
        let text = std::fs::read(out).at(out)?;
        let results: BenchResults = serde_json::from_slice(&text)
            .with_context(|| format!("{}: not a bench results file", out.display()))?;
        let _ = std::fs::remove_file(out);
        Ok(results)
    }
}
