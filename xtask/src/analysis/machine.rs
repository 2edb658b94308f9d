//! The machine an experiment ran on, as its own runs measured it, and whether two experiments'
//! machines may be compared in absolute terms.
//!
//! Names are not enough (every machine of one cloud kind reports `AMD EPYC`, 2 cores and the
//! hostname `vm`, while a Zen 1 and a Zen 5 behind that name run this engine 3-4x apart), and
//! the kernel string changes with every image update while nothing that matters does. So two
//! runs are comparable when their hardware fingerprints and build settings match **and** each
//! capability probe (memory bandwidth, LLC bandwidth, FMA peak) agrees within a tolerance
//! derived from the probes' own noise. Runs recorded before fingerprints and probes existed
//! fall back to the old test of names, so that committed reports re-render unchanged.

use crate::results::ExperimentResults;
use smallmind::bench::env::{Environment, GENERIC_HOSTNAMES};
use smallmind::bench::probe::ProbeReading;

/// A probe's readings over every run of an experiment (start and end of each process).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ProbeSpread {
    pub median: f64,
    /// Relative noise: the larger of the readings' median absolute deviation over the median
    /// and the median start-to-end change of one process.
    pub noise: f64,
}

/// The probes of one experiment, and the runs the machine's activity contaminated.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MachineSummary {
    pub triad_gb_s: ProbeSpread,
    pub llc_triad_gb_s: ProbeSpread,
    pub fma_gflop_s: ProbeSpread,
    /// The memory triad on several threads, per thread count, from the runs on that many
    /// threads (empty when every run had one, and in files written before 2026-12-01).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub threads_triad_gb_s: Vec<(usize, ProbeSpread)>,
    /// Processes with probe readings.
    pub runs: usize,
    /// `(point, variant, round, flags)` of every run flagged as contaminated.
    pub contaminated: Vec<(String, String, usize, Vec<String>)>,
    /// Whether the readings were set by `SMALLMIND_PROBE` (tests) rather than measured.
    pub overridden: bool,
    /// Whether the runs recorded other processes' CPU time (the busy rule since it was
    /// recorded; before, preemptions were counted). Absent from files written before.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub other_cpu_known: bool,
}

/// The smallest tolerance on a probe's change, whatever its measured noise.
pub const MIN_PROBE_TOLERANCE: f64 = 0.05;
/// A probe's tolerance is this many times the two runs' noise added.
pub const NOISE_MULTIPLE: f64 = 2.0;

impl MachineSummary {
    /// The summary of `r`'s runs; `None` when no run recorded probe readings.
    pub fn of(r: &ExperimentResults) -> Option<MachineSummary> {
        let mut readings: Vec<(ProbeReading, ProbeReading)> = Vec::new();
        let mut contaminated = Vec::new();
        let (mut overridden, mut other_cpu_known) = (false, false);
        for point in &r.points {
            for variant in &point.variants {
                for run in &variant.runs {
                    let Some(m) = &run.machine else { continue };
                    readings.push((m.probe.start, m.probe.end));
                    overridden |= m.probe.source != "measured";
                    other_cpu_known |= m.contamination.other_cpu_ms.is_some();
                    if !m.contamination.flags.is_empty() {
                        contaminated.push((
                            point.point.label.clone(),
                            variant.name.clone(),
                            run.round,
                            m.contamination.flags.clone(),
                        ));
                    }
                }
            }
        }
        if readings.is_empty() {
            return None;
        }
        let spread = |readings: &[(ProbeReading, ProbeReading)], f: &dyn Fn(&ProbeReading) -> f64| {
            let all: Vec<f64> = readings.iter().flat_map(|(s, e)| [f(s), f(e)]).collect();
            let median = crate::stats::median(&all);
            let deviations: Vec<f64> = all.iter().map(|x| (x - median).abs()).collect();
            let drifts: Vec<f64> = readings
                .iter()
                .map(|(s, e)| if f(s) > 0.0 { (f(e) - f(s)).abs() / f(s) } else { 0.0 })
                .collect();
            let mad = if median > 0.0 { crate::stats::median(&deviations) / median } else { 0.0 };
            ProbeSpread { median, noise: mad.max(crate::stats::median(&drifts)) }
        };
        let mut thread_counts: Vec<usize> =
            readings.iter().filter_map(|(s, _)| s.threads.map(|t| t.threads)).collect();
        thread_counts.sort_unstable();
        thread_counts.dedup();
        let threads_triad_gb_s = thread_counts
            .into_iter()
            .map(|n| {
                let with = |r: &ProbeReading| r.threads.is_some_and(|t| t.threads == n);
                let these: Vec<_> = readings.iter().copied().filter(|(s, e)| with(s) && with(e)).collect();
                (n, spread(&these, &|r| r.threads.map_or(0.0, |t| t.triad_gb_s)))
            })
            .collect();
        Some(MachineSummary {
            triad_gb_s: spread(&readings, &|r| r.triad_gb_s),
            llc_triad_gb_s: spread(&readings, &|r| r.llc_triad_gb_s),
            fma_gflop_s: spread(&readings, &|r| r.fma_gflop_s),
            threads_triad_gb_s,
            runs: readings.len(),
            contaminated,
            overridden,
            other_cpu_known,
        })
    }

    /// `memory triad 21.2 GB/s (noise 3%), LLC triad 65.4 GB/s (2%), FMA 118 GFLOP/s (1%) per
    /// core`, then for runs on several threads `; memory triad on 2 threads 30.1 GB/s (noise
    /// 2%), 1.42x one core's` (the most a memory-bound decode can gain from them).
    pub fn probe_line(&self) -> String {
        let one = |name: &str, s: ProbeSpread, unit: &str| {
            format!("{name} {} {unit} (noise {:.0}%)", crate::report::format::two(s.median), s.noise * 100.0)
        };
        let threads: String = self
            .threads_triad_gb_s
            .iter()
            .map(|&(n, s)| {
                let ratio =
                    if self.triad_gb_s.median > 0.0 { s.median / self.triad_gb_s.median } else { f64::NAN };
                format!(
                    "; {}, {ratio:.2}x one core's",
                    one(&format!("memory triad on {n} threads"), s, "GB/s")
                )
            })
            .collect();
        format!(
            "{}, {}, {} per core{threads}{}",
            one("memory triad", self.triad_gb_s, "GB/s"),
            one("LLC triad", self.llc_triad_gb_s, "GB/s"),
            one("FMA", self.fma_gflop_s, "GFLOP/s"),
            if self.overridden { " (set by SMALLMIND_PROBE for a test, not measured)" } else { "" }
        )
    }
}

/// Whether absolute figures of two runs may be compared, and if not, one line per reason.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparability {
    pub comparable: bool,
    /// Why not, each a sentence ("memory bandwidth now 12.5 GB/s, baseline 38.2 GB/s").
    pub reasons: Vec<String>,
    /// Whether the decision used fingerprints and probes (false: the old test of names, for
    /// runs recorded before them).
    pub measured: bool,
}

/// Whether `now`'s machine is `before`'s, by fingerprint, build and probes (see the module's
/// documentation).
pub fn compare(now: &ExperimentResults, before: &ExperimentResults) -> Comparability {
    compare_machines(&Machine::of(now), &Machine::of(before))
}

/// A run's machine as its runs saw it: the environment of its first run and its probes.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Machine {
    pub environment: Environment,
    pub probes: Option<MachineSummary>,
}

impl Machine {
    /// The machine `r` ran on.
    pub fn of(r: &ExperimentResults) -> Machine {
        Machine { environment: r.environment.clone(), probes: MachineSummary::of(r) }
    }
}

/// Whether `now` is `before`, by fingerprint, build and probes (see the module's documentation).
pub fn compare_machines(now: &Machine, before: &Machine) -> Comparability {
    let (a, b) = (&now.environment, &before.environment);
    let fingerprinted = |e: &Environment| !e.hardware.vendor.is_empty();
    let (probes_now, probes_before) = (now.probes.clone(), before.probes.clone());
    match (fingerprinted(a) && probes_now.is_some(), fingerprinted(b) && probes_before.is_some()) {
        (false, false) => {
            let comparable = a.comparable_with(b);
            let reasons = if comparable { Vec::new() } else { vec!["different machine".to_string()] };
            return Comparability { comparable, reasons, measured: false };
        }
        (true, false) | (false, true) => {
            let which = if fingerprinted(b) && probes_before.is_some() { "this run" } else { "the baseline" };
            return Comparability {
                comparable: false,
                reasons: vec![format!(
                    "{which} has no hardware fingerprint or probe readings, so its machine cannot be matched"
                )],
                measured: true,
            };
        }
        (true, true) => {}
    }
    let mut reasons = fingerprint_differences(a, b);
    let (now_p, before_p) = (probes_now.expect("checked above"), probes_before.expect("checked above"));
    for (name, unit, n, p) in [
        ("memory bandwidth", "GB/s", now_p.triad_gb_s, before_p.triad_gb_s),
        ("LLC bandwidth", "GB/s", now_p.llc_triad_gb_s, before_p.llc_triad_gb_s),
        ("FMA peak", "GFLOP/s", now_p.fma_gflop_s, before_p.fma_gflop_s),
    ] {
        let tolerance = MIN_PROBE_TOLERANCE.max(NOISE_MULTIPLE * (n.noise + p.noise));
        if p.median > 0.0 && ((n.median / p.median) - 1.0).abs() > tolerance {
            reasons.push(format!(
                "{name} now {} {unit}, baseline {} {unit} (beyond ±{:.0}%, from their noise)",
                crate::report::format::two(n.median),
                crate::report::format::two(p.median),
                tolerance * 100.0
            ));
        }
    }
    Comparability { comparable: reasons.is_empty(), reasons, measured: true }
}

/// The fields of two fingerprints and builds that differ, one sentence each. The kernel string
/// is not identity (it changes with image updates), nor is a generic hostname.
fn fingerprint_differences(a: &Environment, b: &Environment) -> Vec<String> {
    let (h, g) = (&a.hardware, &b.hardware);
    let opt = |v: Option<u32>| v.map_or("?".to_string(), |v| v.to_string());
    let size = |v: Option<u64>| v.map_or("?".to_string(), |v| format!("{} KiB", v / 1024));
    let mut out = Vec::new();
    let mut differ = |what: &str, now: String, before: String| {
        if now != before {
            out.push(format!("{what} now {now}, baseline {before}"));
        }
    };
    differ("CPU vendor", h.vendor.clone(), g.vendor.clone());
    differ(
        "CPU family/model/stepping",
        format!("{}/{}/{}", opt(h.family), opt(h.model), opt(h.stepping)),
        format!("{}/{}/{}", opt(g.family), opt(g.model), opt(g.stepping)),
    );
    differ("microcode", h.microcode.clone(), g.microcode.clone());
    differ("CPU flags", h.flags.join(" "), g.flags.join(" "));
    differ(
        "caches (L1d, L2, L3)",
        format!("{}, {}, {}", size(h.l1d_bytes), size(h.l2_bytes), size(h.l3_bytes)),
        format!("{}, {}, {}", size(g.l1d_bytes), size(g.l2_bytes), size(g.l3_bytes)),
    );
    differ("NUMA nodes", format!("{:?}", h.numa_nodes), format!("{:?}", g.numa_nodes));
    differ("logical cores", a.logical_cores.to_string(), b.logical_cores.to_string());
    differ("compiler", a.rustc.clone(), b.rustc.clone());
    differ("build profile", a.build_profile.clone(), b.build_profile.clone());
    // A test-only feature changes the code under test (that is what a check is for), not the
    // machine.
    differ("features", a.machine_features().join(","), b.machine_features().join(","));
    differ("target-cpu", a.target_cpu.clone(), b.target_cpu.clone());
    differ("SIMD level", a.simd_level.clone(), b.simd_level.clone());
    let generic = |host: &str| GENERIC_HOSTNAMES.contains(&host);
    if !generic(&a.hostname) && !generic(&b.hostname) {
        differ("host", a.hostname.clone(), b.hostname.clone());
    }
    out
}
