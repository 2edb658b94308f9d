//! The machine during a run: the capability probe at its start and end ([`super::probe`]), what
//! else the machine was doing while the ops were measured (load, CPU steal, other processes' CPU
//! time, preemptions), and
//! the figures that travel between machines: the fraction of the memory roofline a decode
//! reached and the fraction of the FMA peak a prefill reached.
//!
//! Linux facts come from `/proc`; elsewhere they are absent and no flag is raised for them.

use super::probe::ProbeReport;
use serde::{Deserialize, Serialize};

/// The machine's side of one `smallmind bench` run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MachineReport {
    pub probe: ProbeReport,
    pub contamination: Contamination,
    pub roofline: Roofline,
}

/// What else ran while the ops were measured, and whether that is too much to trust the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contamination {
    /// The 1-minute load average when the run started.
    pub load_1m_at_start: Option<f64>,
    /// CPU time stolen by the hypervisor from this VM while the ops were measured, ms (all CPUs).
    pub steal_ms: Option<f64>,
    /// This process's involuntary context switches (preemptions) while the ops were measured,
    /// summed over its threads. Recorded, not judged: a run's own threads preempt each other
    /// (a two-thread decode counts 17-27 in 21 ms on a quiet 2-core machine).
    pub involuntary_context_switches: Option<u64>,
    /// CPU time that other processes of this machine used while the ops were measured, ms: the
    /// busy time of every CPU (`/proc/stat`, 10 ms ticks) less this process's own (the sum of
    /// its threads' `schedstat`, ns). What a busy flag is about: another job, not our threads.
    /// Absent in files written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other_cpu_ms: Option<f64>,
    /// The wall time the counters above cover, ms.
    pub measured_ms: f64,
    /// The probe's largest relative change from start to end.
    pub probe_drift: f64,
    /// Why this run counts as contaminated; empty when it does not.
    pub flags: Vec<String>,
}

/// The thresholds beyond which a run is flagged as contaminated.
pub mod thresholds {
    /// Load average above the logical cores: something else wanted the CPUs.
    pub const LOAD_OVER_CORES: f64 = 0.0;
    /// Steal time above this share of the measured wall time.
    pub const STEAL_SHARE: f64 = 0.02;
    /// Other processes' CPU time, as a share of the measured wall time (one core's worth is
    /// 1.0), beyond [`OTHER_CPU_ALLOWED_MS`].
    pub const OTHER_CPU_SHARE: f64 = 0.10;
    /// Other processes' CPU time any run may show: `/proc/stat` counts 10 ms ticks per CPU, so
    /// a short run's reading is off by a few ticks either way.
    pub const OTHER_CPU_ALLOWED_MS: f64 = 40.0;
    /// Probe drift from start to end (on a 2-core AMD EPYC Zen 4, family 25 model 17, one
    /// process's LLC triad moved up to 12% on a quiet machine: `docs/machine.md`).
    pub const PROBE_DRIFT: f64 = 0.25;
}

/// Counters read before the measured ops, to subtract at the end.
#[derive(Debug, Clone, Copy)]
pub struct Counters {
    steal_ticks: Option<u64>,
    involuntary: Option<u64>,
    busy_ticks: Option<u64>,
    own_cpu_ns: Option<u64>,
}

impl Counters {
    /// Now.
    pub fn read() -> Counters {
        let cpu = cpu_ticks();
        Counters {
            steal_ticks: cpu.map(|t| t.steal),
            involuntary: involuntary_context_switches(),
            busy_ticks: cpu.map(|t| t.busy),
            own_cpu_ns: own_cpu_ns(),
        }
    }
}

impl Contamination {
    /// The contamination of a run whose ops were measured between the counters `before` and
    /// `after`, over `measured_ms`, on `cores` logical cores. `after` must be read as the ops
    /// end: read later, the window would take in the end probe, whose threads on a run of
    /// several have exited by then and would count as other processes' CPU (a 2-core Intel
    /// Xeon flagged every two-thread run of the `threads` experiment so, ~250 ms each).
    pub fn measure(
        load_1m_at_start: Option<f64>,
        (before, after): (Counters, Counters),
        measured_ms: f64,
        probe_drift: f64,
        cores: usize,
    ) -> Contamination {
        // USER_HZ is 100 on every Linux this runs on: a tick is 10 ms.
        let steal_ms =
            before.steal_ticks.zip(after.steal_ticks).map(|(b, a)| a.saturating_sub(b) as f64 * 10.0);
        let involuntary = before.involuntary.zip(after.involuntary).map(|(b, a)| a.saturating_sub(b));
        let busy_ms = before.busy_ticks.zip(after.busy_ticks).map(|(b, a)| a.saturating_sub(b) as f64 * 10.0);
        let own_ms = before.own_cpu_ns.zip(after.own_cpu_ns).map(|(b, a)| a.saturating_sub(b) as f64 / 1e6);
        let mut c = Contamination {
            load_1m_at_start,
            steal_ms,
            involuntary_context_switches: involuntary,
            other_cpu_ms: busy_ms.zip(own_ms).map(|(busy, own)| (busy - own).max(0.0)),
            measured_ms,
            probe_drift,
            flags: Vec::new(),
        };
        c.flags = c.judge(cores);
        c
    }

    /// Whether something else took CPU time from the run while its ops were measured: other
    /// processes beyond [`thresholds::OTHER_CPU_SHARE`], or the hypervisor beyond
    /// [`thresholds::STEAL_SHARE`]. (The load at start and the probe's drift describe the
    /// machine around the run, not a competitor during it.) A harness re-measures such a round.
    pub fn competed(&self) -> bool {
        self.other_cpu_over().is_some() || self.steal_over().is_some()
    }

    fn other_cpu_over(&self) -> Option<f64> {
        self.other_cpu_ms.filter(|&other| {
            other > thresholds::OTHER_CPU_ALLOWED_MS + thresholds::OTHER_CPU_SHARE * self.measured_ms
        })
    }

    fn steal_over(&self) -> Option<f64> {
        self.steal_ms
            .filter(|&steal| self.measured_ms > 0.0 && steal > thresholds::STEAL_SHARE * self.measured_ms)
    }

    /// The flags these readings raise on a machine of `cores` logical cores.
    pub fn judge(&self, cores: usize) -> Vec<String> {
        let mut flags = Vec::new();
        if let Some(load) = self.load_1m_at_start
            && load > cores as f64 + thresholds::LOAD_OVER_CORES
        {
            flags.push(format!("load {load:.2} on {cores} core(s) at start"));
        }
        if let Some(steal) = self.steal_over() {
            flags.push(format!("{steal:.0} ms of CPU stolen in {:.0} ms measured", self.measured_ms));
        }
        if let Some(other) = self.other_cpu_over() {
            flags.push(format!(
                "other processes used {other:.0} ms of CPU in {:.0} ms measured",
                self.measured_ms
            ));
        }
        if self.probe_drift > thresholds::PROBE_DRIFT {
            flags.push(format!("the probe drifted {:.0}% from start to end", self.probe_drift * 100.0));
        }
        flags
    }
}

/// Figures normalised by what the machine can do, comparable across machines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Roofline {
    /// Weights and KV cache bytes one decode step reads, averaged over the decode positions.
    pub decode_bytes_per_token: f64,
    /// decode tok/s × bytes per token ÷ the bandwidth that serves them (1.0 = the roofline).
    pub decode_fraction_of_bandwidth: Option<f64>,
    /// Which bandwidth: `memory` (the probe's triad), or `LLC` when a token's bytes fit in half
    /// the last-level cache and stay there from one token to the next (the LLC triad); on
    /// several threads, that triad on the run's threads (`memory on 2 threads`), and one
    /// core's in results without that reading (before 2026-12-01).
    #[serde(default = "memory")]
    pub decode_bandwidth: String,
    /// Floating-point operations per prompt token of the prefill (2 per multiply-add; see
    /// `ModelRef::prefill_flop_per_token`).
    pub prefill_flop_per_token: f64,
    /// prefill tok/s × FLOP per token ÷ (the probe's FMA peak × threads).
    pub prefill_fraction_of_fma_peak: Option<f64>,
}

impl Roofline {
    /// The roofline of a model that reads `decode_bytes_per_token` per decode step and does
    /// `prefill_flop_per_token` per prompt token (the model's own figures at the workload's
    /// positions, `bench::passes` computes them), measured at `decode_tok_s` and `prefill_tok_s`
    /// on `threads` threads, on a machine whose last-level cache holds `llc_bytes`.
    pub fn of(
        decode_bytes_per_token: f64,
        prefill_flop_per_token: f64,
        decode_tok_s: Option<f64>,
        prefill_tok_s: f64,
        threads: usize,
        probe: &ProbeReport,
        llc_bytes: Option<u64>,
    ) -> Roofline {
        let in_llc = llc_bytes.is_some_and(|llc| decode_bytes_per_token <= llc as f64 / 2.0);
        let mut which = if in_llc { "LLC" } else { "memory" }.to_string();
        let mut bandwidth = if in_llc { probe.llc_triad_gb_s() } else { probe.triad_gb_s() } * 1e9;
        // Several threads stream from several cores: their triad is the ceiling.
        if let Some((memory, llc)) = probe.threads_triad_gb_s().filter(|_| threads > 1) {
            bandwidth = if in_llc { llc } else { memory } * 1e9;
            which = format!("{which} on {threads} threads");
        }
        let peak = probe.fma_gflop_s() * 1e9 * threads as f64;
        Roofline {
            decode_bytes_per_token,
            decode_fraction_of_bandwidth: decode_tok_s
                .filter(|_| bandwidth > 0.0)
                .map(|t| t * decode_bytes_per_token / bandwidth),
            decode_bandwidth: which,
            prefill_flop_per_token,
            prefill_fraction_of_fma_peak: (peak > 0.0).then(|| prefill_tok_s * prefill_flop_per_token / peak),
        }
    }
}

impl Roofline {
    /// Refuses a fraction no run can reach on this machine, naming the figure and its limit:
    /// beyond its measured noise (`drift`, the probe's largest change from start to end, plus
    /// 10% for the probe's own best-of-passes error), the prefill cannot exceed the FMA peak, and
    /// a decode that streams from memory cannot read faster than 4/3 of the memory triad (a triad
    /// moves 16 bytes per element with its write-allocate and counts 12, STREAM's convention, so
    /// a read-only stream can exceed it by that much). A decode whose bytes stay in the caches
    /// (the LLC, or the L2 of its threads, `l2_bytes` each) is not checked: reading a cache is
    /// faster than its triad by more than that (`tiny` decoded at 1.64x the LLC triad on a Zen
    /// 4), and no probe reads a cache without writing.
    ///
    /// # Errors
    /// The sentence naming the impossible figure (`bench` exits 1 with it, writing nothing).
    pub fn check_possible(&self, drift: f64, threads: usize, l2_bytes: Option<u64>) -> Result<(), String> {
        let slack = 1.0 + drift.max(0.0) + 0.10;
        if let Some(f) = self.prefill_fraction_of_fma_peak.filter(|&f| f > slack || f.is_nan()) {
            return Err(format!(
                "impossible figure: prefill_fraction_of_fma_peak is {f:.2}, the prefill ran at {:.0}% of the FMA \
                 peak the probe measured, beyond its noise (limit {slack:.2}): the prefill's time or its token \
                 count is wrong, and no results are written",
                f * 100.0
            ));
        }
        let in_l2 = l2_bytes.is_some_and(|l2| self.decode_bytes_per_token <= (l2 as f64) * threads as f64);
        let from_memory = self.decode_bandwidth.starts_with("memory") && !in_l2;
        let limit = slack * 4.0 / 3.0;
        if let Some(f) =
            self.decode_fraction_of_bandwidth.filter(|&f| from_memory && (f > limit || f.is_nan()))
        {
            return Err(format!(
                "impossible figure: decode_fraction_of_bandwidth is {f:.2} of the {} triad, beyond the 4/3 a \
                 read-only stream can reach over it and the probe's noise (limit {limit:.2}): the decode's time or \
                 its bytes per token is wrong, and no results are written",
                self.decode_bandwidth
            ));
        }
        Ok(())
    }
}

fn memory() -> String {
    "memory".into()
}

/// The 1-minute load average.
pub fn load_1m() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg").ok()?.split_whitespace().next()?.parse().ok()
}

/// Ticks of all CPUs from `/proc/stat`'s `cpu` line.
#[derive(Debug, Clone, Copy)]
struct CpuTicks {
    /// Stolen by the hypervisor (the eighth value).
    steal: u64,
    /// Running anything: user, nice, system, irq and softirq (values 1-3, 6 and 7).
    busy: u64,
}

fn cpu_ticks() -> Option<CpuTicks> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let values: Vec<u64> = stat
        .lines()
        .find(|l| l.starts_with("cpu "))?
        .split_whitespace()
        .skip(1)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    let at = |i: usize| values.get(i).copied();
    Some(CpuTicks { steal: at(7)?, busy: at(0)? + at(1)? + at(2)? + at(5)? + at(6)? })
}

/// CPU time of every thread of this process, ns (the first value of each thread's
/// `schedstat`).
fn own_cpu_ns() -> Option<u64> {
    let tasks = std::fs::read_dir("/proc/self/task").ok()?;
    let mut total = 0;
    for task in tasks.flatten() {
        // A thread may end between the listing and the read: it no longer counts.
        let Ok(text) = std::fs::read_to_string(task.path().join("schedstat")) else { continue };
        total += text.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(total)
}

/// Involuntary context switches of every thread of this process.
fn involuntary_context_switches() -> Option<u64> {
    let tasks = std::fs::read_dir("/proc/self/task").ok()?;
    let mut total = 0;
    for task in tasks.flatten() {
        // A thread may end between the listing and the read: it no longer counts.
        let Ok(status) = std::fs::read_to_string(task.path().join("status")) else { continue };
        let line = status.lines().find(|l| l.starts_with("nonvoluntary_ctxt_switches:"))?;
        total += line.split_whitespace().nth(1)?.parse::<u64>().ok()?;
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A decode on two threads is held to the triad on two threads, when the probe read one.
    #[test]
    fn the_roofline_of_several_threads_uses_their_triad() {
        use crate::bench::probe::{ProbeReading, ProbeReport, ThreadsReading};
        let reading = |threads| ProbeReading {
            triad_gb_s: 10.0,
            llc_triad_gb_s: 40.0,
            fma_gflop_s: 100.0,
            took_ms: 1.0,
            threads,
        };
        let probe = |threads| ProbeReport {
            start: reading(threads),
            end: reading(threads),
            source: "measured".into(),
            triad_array_bytes: 0,
            llc_array_bytes: 0,
        };
        let two = Some(ThreadsReading { threads: 2, triad_gb_s: 16.0, llc_triad_gb_s: 64.0 });
        // 100 MB per token at 128 tok/s: 12.8 GB/s, beyond one core's 10 but not two cores' 16.
        let of = |threads, p: &ProbeReport, llc| Roofline::of(1e8, 1e6, Some(128.0), 100.0, threads, p, llc);
        let roof = of(2, &probe(two), None);
        assert_eq!(
            (roof.decode_fraction_of_bandwidth, roof.decode_bandwidth.as_str()),
            (Some(0.8), "memory on 2 threads")
        );
        let roof = of(2, &probe(two), Some(1 << 30));
        assert_eq!(
            (roof.decode_fraction_of_bandwidth, roof.decode_bandwidth.as_str()),
            (Some(0.2), "LLC on 2 threads")
        );
        // Without the reading (older files, or a fixed probe), one core's triad, as before.
        let roof = of(2, &probe(None), None);
        assert_eq!(
            (roof.decode_fraction_of_bandwidth, roof.decode_bandwidth.as_str()),
            (Some(1.28), "memory")
        );
        let roof = of(1, &probe(two), None);
        assert_eq!(roof.decode_bandwidth, "memory");
    }

    #[test]
    fn flags_name_what_exceeded_its_threshold() {
        let clean = Contamination {
            load_1m_at_start: Some(1.2),
            steal_ms: Some(10.0),
            involuntary_context_switches: Some(20),
            other_cpu_ms: Some(60.0),
            measured_ms: 1000.0,
            probe_drift: 0.03,
            flags: Vec::new(),
        };
        assert!(clean.judge(2).is_empty());
        let busy = Contamination {
            load_1m_at_start: Some(3.5),
            steal_ms: Some(50.0),
            involuntary_context_switches: Some(500),
            other_cpu_ms: Some(900.0),
            probe_drift: 0.3,
            ..clean
        };
        let flags = busy.judge(2);
        assert_eq!(flags.len(), 4, "{flags:?}");
        assert_eq!(flags[0], "load 3.50 on 2 core(s) at start");
        assert!(flags[3].contains("drifted 30%"));
    }

    #[test]
    fn a_runs_own_threads_do_not_make_it_busy() {
        // A two-thread decode on a quiet 2-core machine: its threads preempt each other.
        let own = Contamination {
            load_1m_at_start: Some(0.32),
            steal_ms: Some(0.0),
            involuntary_context_switches: Some(27),
            other_cpu_ms: Some(10.0),
            measured_ms: 21.0,
            probe_drift: 0.02,
            flags: Vec::new(),
        };
        assert!(own.judge(2).is_empty() && !own.competed(), "{:?}", own.judge(2));
        let shared = Contamination { other_cpu_ms: Some(300.0), measured_ms: 1000.0, ..own.clone() };
        assert_eq!(shared.judge(2), ["other processes used 300 ms of CPU in 1000 ms measured"]);
        assert!(shared.competed());
        // A high load at start is said but is no competitor during the run.
        let loaded = Contamination { load_1m_at_start: Some(3.1), ..own };
        assert!(!loaded.judge(2).is_empty() && !loaded.competed());
    }

    /// Another process spinning while a run is measured is counted as other processes' CPU
    /// time (a busy machine can only add to it).
    #[test]
    fn another_process_spinning_is_counted() {
        if !cfg!(target_os = "linux") {
            return;
        }
        let before = Counters::read();
        let started = std::time::Instant::now();
        let status = std::process::Command::new("timeout")
            .args(["0.5", "sh", "-c", "while :; do :; done"])
            .status()
            .expect("timeout and sh run");
        assert_eq!(status.code(), Some(124), "timeout ends the loop");
        let measured_ms = started.elapsed().as_secs_f64() * 1e3;
        let c = Contamination::measure(None, (before, Counters::read()), measured_ms, 0.0, 2);
        let other = c.other_cpu_ms.expect("Linux has the counters");
        assert!(other >= 250.0, "a 500 ms spin counted as {other} ms of other processes' CPU");
        assert!(c.flags.iter().any(|f| f.starts_with("other processes used")), "{:?}", c.flags);
    }

    #[test]
    fn this_machine_reports_its_counters() {
        if cfg!(target_os = "linux") {
            assert!(
                load_1m().is_some()
                    && cpu_ticks().is_some()
                    && involuntary_context_switches().is_some()
                    && own_cpu_ns().is_some()
            );
        }
    }
}
