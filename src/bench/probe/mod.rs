//! The capability probe: what this machine can do now, measured in well under a second, at the
//! start and the end of every `smallmind bench` run. A CPU's name does not say it (two hosts of
//! one model string differed 3x in memory bandwidth here, SMALLMIND_FACTS.md's "different
//! machines" lesson), so the figures a decode is bound by are measured beside every timing:
//!
//! - **memory bandwidth**: a STREAM-style triad `a[i] = b[i] + s * c[i]` on one core, over three
//!   arrays each at least 4x the last-level cache (STREAM's rule), best of several passes,
//!   counting 12 bytes per element as STREAM does (write-allocate traffic not counted);
//! - **LLC bandwidth**: the same triad over arrays that fit together in half the last-level
//!   cache but not in L2;
//! - **FMA peak**: f32 fused multiply-adds per second of one core, twelve independent
//!   accumulators of the widest vectors this CPU runs (the kernels' own dispatch);
//! - **on the run's threads**, when it has several: both triads again with the arrays split
//!   across that many threads, timed from a common start to the last thread's end. What a
//!   second core adds to a memory-bound decode is bandwidth, and this is how much.
//!
//! `SMALLMIND_PROBE` replaces or scales the readings, for tests only (see [`PROBE_ENV`]).

use serde::{Deserialize, Serialize};

/// The measurement itself (the `engine` feature): the probe, its kernels and the
/// `SMALLMIND_PROBE` override. This module's types are what a results file holds.
#[cfg(feature = "engine")]
mod measure;
#[cfg(feature = "engine")]
pub use measure::Probe;

/// Test-only: `scale=F` multiplies every measured reading by F (`scale=0.33` stands for a
/// machine with a third of the bandwidth); `fixed=TRIAD,LLC,FMA` replaces them (GB/s, GB/s,
/// GFLOP/s) without measuring. A results file records that the readings were not measured.
pub const PROBE_ENV: &str = "SMALLMIND_PROBE";

/// One reading of the probe.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ProbeReading {
    /// STREAM triad over arrays far larger than the last-level cache, one core, GB/s (1e9 B/s).
    pub triad_gb_s: f64,
    /// The same triad over arrays resident in the last-level cache, one core, GB/s.
    pub llc_triad_gb_s: f64,
    /// f32 FMA throughput of one core, GFLOP/s (2 FLOP per FMA).
    pub fma_gflop_s: f64,
    /// Wall time the reading took, ms.
    pub took_ms: f64,
    /// Both triads again, split across the run's threads: what that many cores can stream
    /// together, the ceiling of a decode's speed-up from them. Absent for a one-thread run and
    /// in results written before 2026-12-01.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads: Option<ThreadsReading>,
}

/// The probe's triads on several threads at once, each thread a contiguous share of the arrays.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ThreadsReading {
    /// Threads the arrays were split across (the run's `--threads`).
    pub threads: usize,
    /// The memory triad on `threads` threads together, GB/s.
    pub triad_gb_s: f64,
    /// The LLC triad on `threads` threads together, GB/s.
    pub llc_triad_gb_s: f64,
}

/// The probe at the start and the end of a run, and how far they drifted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeReport {
    pub start: ProbeReading,
    pub end: ProbeReading,
    /// `measured`, or what `SMALLMIND_PROBE` made of the readings (`scale=0.33`, `fixed=...`).
    pub source: String,
    /// Bytes of each array of the memory triad.
    pub triad_array_bytes: usize,
    /// Bytes of each array of the LLC triad.
    pub llc_array_bytes: usize,
}

impl ProbeReport {
    /// The largest relative change of any reading from start to end (0.05 = 5%): how much the
    /// machine itself moved while the run was measured.
    pub fn drift(&self) -> f64 {
        let rel = |a: f64, b: f64| if a > 0.0 { (b - a).abs() / a } else { 0.0 };
        let (s, e) = (&self.start, &self.end);
        let threads = match (s.threads, e.threads) {
            (Some(s), Some(e)) => {
                rel(s.triad_gb_s, e.triad_gb_s).max(rel(s.llc_triad_gb_s, e.llc_triad_gb_s))
            }
            _ => 0.0,
        };
        rel(s.triad_gb_s, e.triad_gb_s)
            .max(rel(s.llc_triad_gb_s, e.llc_triad_gb_s))
            .max(rel(s.fma_gflop_s, e.fma_gflop_s))
            .max(threads)
    }

    /// The mean of the start and end memory bandwidth, GB/s: the roofline's denominator.
    pub fn triad_gb_s(&self) -> f64 {
        (self.start.triad_gb_s + self.end.triad_gb_s) / 2.0
    }

    /// The mean of the start and end LLC bandwidth, GB/s.
    pub fn llc_triad_gb_s(&self) -> f64 {
        (self.start.llc_triad_gb_s + self.end.llc_triad_gb_s) / 2.0
    }

    /// The mean of the start and end FMA peak, GFLOP/s.
    pub fn fma_gflop_s(&self) -> f64 {
        (self.start.fma_gflop_s + self.end.fma_gflop_s) / 2.0
    }

    /// The mean of the start and end triads on the run's threads, GB/s (memory, LLC), when
    /// both readings have them.
    pub fn threads_triad_gb_s(&self) -> Option<(f64, f64)> {
        let (s, e) = (self.start.threads?, self.end.threads?);
        Some(((s.triad_gb_s + e.triad_gb_s) / 2.0, (s.llc_triad_gb_s + e.llc_triad_gb_s) / 2.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drift_is_the_largest_relative_change() {
        let r = |t, l, f| ProbeReading {
            triad_gb_s: t,
            llc_triad_gb_s: l,
            fma_gflop_s: f,
            took_ms: 1.0,
            threads: None,
        };
        let report = ProbeReport {
            start: r(10.0, 100.0, 50.0),
            end: r(9.0, 101.0, 50.0),
            source: "measured".into(),
            triad_array_bytes: 0,
            llc_array_bytes: 0,
        };
        assert!((report.drift() - 0.1).abs() < 1e-12);
        assert!((report.triad_gb_s() - 9.5).abs() < 1e-12);
        assert_eq!(report.threads_triad_gb_s(), None);
        // The triads on several threads count too, once both readings have them.
        let t = |triad_gb_s| Some(ThreadsReading { threads: 2, triad_gb_s, llc_triad_gb_s: 150.0 });
        let report = ProbeReport {
            start: ProbeReading { threads: t(20.0), ..report.start },
            end: ProbeReading { threads: t(15.0), ..report.end },
            ..report
        };
        assert!((report.drift() - 0.25).abs() < 1e-12);
        assert_eq!(report.threads_triad_gb_s(), Some((17.5, 150.0)));
    }
}
