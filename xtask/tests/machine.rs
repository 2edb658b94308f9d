//! The machine is part of the measurement (issue 17): absolute figures are compared with a
//! baseline only on the baseline's machine, by fingerprint and probes, not by names; on another
//! machine every difference may be the machine's and nothing is judged; contaminated runs and
//! roofline fractions show in the report; `SMALLMIND_PROBE` fixes the probes for tests.

use smallmind::bench::env::Hardware;
use smallmind::bench::machine::{Contamination, MachineReport, Roofline};
use smallmind::bench::probe::{ProbeReading, ProbeReport, ThreadsReading};
use std::path::Path;
use std::process::{Command, Output};
use xtask::analysis::baseline::{self, NoiseUse};
use xtask::analysis::machine::{self, MachineSummary};
use xtask::analysis::noise::NoiseFloors;
use xtask::analysis::{Analysis, BaselineState};
use xtask::metrics::Metric;
use xtask::report;
use xtask::results::ExperimentResults;

/// A Zen 5 of this cloud kind, as its fingerprint reads.
fn zen5() -> Hardware {
    Hardware {
        vendor: "AuthenticAMD".into(),
        family: Some(26),
        model: Some(2),
        stepping: Some(0),
        microcode: "0xb002116".into(),
        flags: ["avx2", "fma", "avx512f", "avx512vl", "hypervisor"].map(String::from).to_vec(),
        l1d_bytes: Some(48 << 10),
        l2_bytes: Some(1 << 20),
        l3_bytes: Some(32 << 20),
        numa_nodes: Some(1),
        virtual_machine: true,
    }
}

fn reading(triad: f64, scale: f64) -> ProbeReading {
    ProbeReading {
        triad_gb_s: triad * scale,
        llc_triad_gb_s: 70.0 * scale,
        fma_gflop_s: 110.0 * scale,
        took_ms: 300.0,
        threads: None,
    }
}

/// The committed smoke run (real samples), given `hardware` and probe readings of `triad` GB/s
/// (with a 1% start-to-end wobble); `busy` runs are flagged as contaminated.
fn run_on(hardware: Hardware, triad: f64, busy: usize) -> ExperimentResults {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../reports/smoke/results.json");
    let mut r = xtask::results::read(&path).unwrap();
    r.environment.hardware = hardware;
    let mut n = 0;
    for point in &mut r.points {
        for variant in &mut point.variants {
            for run in &mut variant.runs {
                let flags =
                    if n < busy { vec!["load 3.10 on 2 core(s) at start".to_string()] } else { Vec::new() };
                n += 1;
                run.machine = Some(MachineReport {
                    probe: ProbeReport {
                        start: reading(triad, 1.0),
                        end: reading(triad, 1.01),
                        source: "measured".into(),
                        triad_array_bytes: 128 << 20,
                        llc_array_bytes: 5 << 20,
                    },
                    contamination: Contamination {
                        load_1m_at_start: Some(1.0),
                        steal_ms: Some(0.0),
                        involuntary_context_switches: Some(3),
                        other_cpu_ms: Some(0.0),
                        measured_ms: 20.0,
                        probe_drift: 0.01,
                        flags,
                    },
                    roofline: Roofline {
                        decode_bytes_per_token: 3.3e6,
                        decode_fraction_of_bandwidth: Some(0.42),
                        decode_bandwidth: "LLC".into(),
                        prefill_flop_per_token: 1.5e6,
                        prefill_fraction_of_fma_peak: Some(0.25),
                    },
                });
            }
        }
    }
    r
}

/// The same run, earlier (a baseline that is this very run is reported as such, not compared).
fn earlier(mut r: ExperimentResults) -> ExperimentResults {
    r.finished = "2026-01-01T00:00:00Z".into();
    r
}

/// `all-on` decodes `factor` times as fast as recorded.
fn faster_candidate(mut r: ExperimentResults, factor: f64) -> ExperimentResults {
    for run in &mut r.points[0].variants[1].runs {
        for it in &mut run.iterations {
            it.decode_tok_s = it.decode_tok_s.map(|d| d * factor);
        }
    }
    r
}

#[test]
fn the_same_machine_by_fingerprint_and_probes_is_compared_and_judged() {
    let before = earlier(run_on(zen5(), 38.0, 0));
    let mut now = run_on(zen5(), 37.0, 0);
    // A new kernel image and another generic hostname change nothing that matters.
    now.environment.kernel = "6.19.1-other".into();
    now.environment.hostname = "localhost".into();
    let m = machine::compare(&now, &before);
    assert!(m.comparable && m.measured, "{:?}", m.reasons);
    let check = baseline::check(&now, &before, 0.1);
    assert!(check.judged && check.comparable);
    assert!(
        check.rows.iter().any(|r| !r.is_speedup && r.metric == Metric::DecodeTokS),
        "absolute figures compared"
    );
    // Halving the candidate's speed is then a regression, as it should be.
    let slower = faster_candidate(run_on(zen5(), 37.0, 0), 0.5);
    assert!(baseline::check(&slower, &before, 0.1).regressions().count() > 0);
}

/// The Zen 1 against the Zen 5 baseline: a third of the bandwidth. Absolute figures are not
/// compared, the line says which probe differs and by how much, and the candidate's changed
/// speedup is shown but never called improved or regressed.
#[test]
fn a_third_of_the_bandwidth_is_another_machine_and_nothing_is_judged() {
    let before = earlier(run_on(zen5(), 38.2, 0));
    let now = faster_candidate(run_on(zen5(), 12.5, 0), 2.0);
    let m = machine::compare(&now, &before);
    assert!(!m.comparable);
    assert_eq!(m.reasons.len(), 1, "{:?}", m.reasons);
    assert!(
        m.reasons[0].starts_with("memory bandwidth now 12.6 GB/s, baseline 38.4 GB/s"),
        "{:?}",
        m.reasons
    );
    let check = baseline::check(&now, &before, 0.1);
    assert!(!check.judged && check.regressions().count() == 0);
    assert!(check.rows.iter().all(|r| r.is_speedup || r.metric.is_exact()), "no absolute timing compared");
    let speedup = check.rows.iter().find(|r| r.is_speedup && r.metric == Metric::DecodeTokS).unwrap();
    assert!(speedup.change.point > 1.5, "the changed speedup is shown");
    let md = report::render(&Analysis::new(&now, BaselineState::Checked(check)), &[]);
    assert!(
        md.contains("**Not the baseline's machine**") && md.contains("- memory bandwidth now 12.6 GB/s"),
        "{md}"
    );
    assert!(md.contains("not judged (machine differs)") && !md.contains("| improved |"), "{md}");
    assert!(md.contains("(machine differs)"), "the results table's baseline column says so too");
}

#[test]
fn fingerprints_that_differ_are_named() {
    let before = earlier(run_on(zen5(), 38.0, 0));
    let mut zen1 = zen5();
    zen1.family = Some(23);
    zen1.model = Some(1);
    zen1.flags.retain(|f| !f.starts_with("avx512"));
    let now = run_on(zen1, 38.0, 0);
    let m = machine::compare(&now, &before);
    assert!(!m.comparable);
    assert!(
        m.reasons.contains(&"CPU family/model/stepping now 23/1/0, baseline 26/2/0".to_string()),
        "{:?}",
        m.reasons
    );
    assert!(m.reasons.iter().any(|r| r.starts_with("CPU flags now avx2 fma hypervisor")), "{:?}", m.reasons);
    // Two real hostnames that differ are two machines; a generic one is no identity.
    let mut named = run_on(zen5(), 38.0, 0);
    named.environment.hostname = "build-7".into();
    let mut named_before = earlier(run_on(zen5(), 38.0, 0));
    named_before.environment.hostname = "build-3".into();
    assert_eq!(machine::compare(&named, &named_before).reasons, ["host now build-7, baseline build-3"]);
}

/// A baseline recorded before fingerprints and probes cannot be matched by them: not compared,
/// and said so; two such old runs keep the old test of names (committed reports re-render).
#[test]
fn a_baseline_without_a_fingerprint_is_not_matched_by_name() {
    // A run as files recorded it before fingerprints and probes.
    let unfingerprinted = || {
        let mut r = run_on(Hardware::default(), 38.0, 0);
        r.points
            .iter_mut()
            .flat_map(|p| &mut p.variants)
            .flat_map(|v| &mut v.runs)
            .for_each(|run| run.machine = None);
        r
    };
    let old = earlier(unfingerprinted());
    let m = machine::compare(&run_on(zen5(), 38.0, 0), &old);
    assert!(!m.comparable && m.measured);
    assert_eq!(
        m.reasons,
        ["the baseline has no hardware fingerprint or probe readings, so its machine cannot be matched"]
    );
    let legacy = machine::compare(&unfingerprinted(), &old);
    assert!(legacy.comparable && !legacy.measured);
}

#[test]
fn the_report_shows_the_probe_contaminated_runs_and_roofline_fractions() {
    let r = run_on(zen5(), 38.0, 2);
    let runs: usize = r.points.iter().flat_map(|p| &p.variants).map(|v| v.runs.len()).sum();
    let summary = MachineSummary::of(&r).unwrap();
    assert_eq!((summary.runs, summary.contaminated.len()), (runs, 2));
    assert!((summary.triad_gb_s.median - 38.19).abs() < 0.1);
    let md = report::render(&Analysis::new(&r, BaselineState::Missing), &[]);
    assert!(
        md.contains(
            "| hardware | AuthenticAMD family 26 model 2 stepping 0, L1d 48 KiB, L2 1024 KiB, L3 32768 KiB"
        ),
        "{md}"
    );
    assert!(md.contains("| probe | memory triad 38.2 GB/s (noise 1%)"), "{md}");
    let busy = format!("**2 of {runs} runs ran while the machine was busy**: `all-off` round 1: load 3.10");
    assert!(md.contains(&busy), "{md}");
    assert!(md.contains("### Roofline") && md.contains("| 42% of LLC | 1.5 MFLOP | 25% |"), "{md}");
}

/// Runs on two threads carry the probe's triad on two threads, and the report says what that
/// is against one core's: the ceiling of a memory-bound decode's gain from the second core.
#[test]
fn the_report_names_the_triad_on_the_runs_threads_against_one_cores() {
    let mut r = run_on(zen5(), 20.0, 0);
    let two = |triad_gb_s| Some(ThreadsReading { threads: 2, triad_gb_s, llc_triad_gb_s: 90.0 });
    for run in r.points.iter_mut().flat_map(|p| &mut p.variants).flat_map(|v| &mut v.runs) {
        let probe = &mut run.machine.as_mut().unwrap().probe;
        (probe.start.threads, probe.end.threads) = (two(30.0), two(30.3));
    }
    let summary = MachineSummary::of(&r).unwrap();
    assert_eq!(summary.threads_triad_gb_s.len(), 1, "{summary:?}");
    let line = summary.probe_line();
    assert!(line.ends_with("; memory triad on 2 threads 30.1 GB/s (noise 1%), 1.50x one core's"), "{line}");
    // Runs on one thread, or recorded before the reading existed, add nothing to the line.
    let one = MachineSummary::of(&run_on(zen5(), 20.0, 0)).unwrap();
    assert!(one.threads_triad_gb_s.is_empty() && one.probe_line().ends_with("per core"), "{one:?}");
}

fn xtask(args: &[&str], probe: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .env("SMALLMIND_PROBE", probe)
        .output()
        .expect("xtask runs")
}

/// End to end with fixed probes (`SMALLMIND_PROBE`, test-only): a baseline stored at 38 GB/s,
/// then `check` at a third of that says which probe differs, judges nothing and exits 0; at the
/// same readings the absolute figures are compared.
#[test]
fn check_on_a_machine_whose_probe_differs_says_so_and_judges_nothing() {
    let root = tempfile::tempdir().unwrap();
    let experiments = root.path().join("experiments");
    std::fs::create_dir_all(&experiments).unwrap();
    std::fs::write(experiments.join("probe.toml"), include_str!("../test_data/two_variants.toml")).unwrap();
    let dirs: Vec<String> = ["experiments", "reports", "baselines"]
        .iter()
        .flat_map(|d| [format!("--{d}-dir"), root.path().join(d).display().to_string()])
        .chain(["--store".to_string(), root.path().join("store.sqlite").display().to_string()])
        .collect();
    let args = |task: &'static str| -> Vec<&str> {
        [task, "probe", "--quick", "--no-profiles"]
            .into_iter()
            .chain(dirs.iter().map(String::as_str))
            .collect()
    };
    let out = xtask(&args("baseline"), "fixed=38.2,70,110");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let stored = xtask::results::read(&root.path().join("baselines/probe.json")).unwrap();
    assert!(MachineSummary::of(&stored).unwrap().overridden);

    let out = xtask(&args("check"), "fixed=12.5,70,110");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        stdout.contains(
            "machine: memory bandwidth now 12.5 GB/s, baseline 38.2 GB/s (beyond ±5%, from their noise): \
             absolute figures not compared"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("nothing judged") && !stdout.contains("REGRESSED"), "{stdout}");
    assert!(stdout.contains("NOT JUDGED cached vs recompute decode_tok_s speedup"), "{stdout}");

    let out = xtask(&args("check"), "fixed=38.2,70,110");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(!stdout.contains("machine:") && !stdout.contains("NOT JUDGED"), "{stdout}");
    assert!(stdout.contains(" cached decode_tok_s:"), "absolute figures are compared: {stdout}");
}

/// Every variant's decode `factor` times as fast as recorded (a slowdown of the whole engine,
/// which speedups between variants do not see).
fn decode_scaled(r: ExperimentResults, factor: f64) -> ExperimentResults {
    let rounds = r.points[0].variants.iter().map(|v| v.runs.len()).max().unwrap_or(0);
    decode_scaled_by_round(r, &vec![factor; rounds])
}

/// Noise floors between sessions set the cuts: a 10% slowdown of the whole engine is caught
/// where the tolerance rule (the whole interval beyond 10%) cannot catch it, an unchanged run is
/// not flagged, and floors measured on another machine are not used, and that is said.
#[test]
fn calibrated_noise_floors_set_the_cuts_on_their_machine_only() {
    let sessions: Vec<ExperimentResults> =
        [1.0, 1.01, 0.99, 1.005, 0.995].iter().map(|&f| decode_scaled(run_on(zen5(), 38.0, 0), f)).collect();
    let floors = NoiseFloors::from_sessions(&sessions).unwrap();
    let decode = floors.figures.iter().find(|f| !f.is_speedup && f.metric == Metric::DecodeTokS).unwrap();
    assert!((decode.sigma - 0.0079).abs() < 0.0005, "{decode:?}");
    let cut = floors.cut(decode, 0.1);
    assert!((cut - 0.0513).abs() < 0.001, "half the tolerance: {cut}");
    let before = earlier(run_on(zen5(), 38.0, 0));

    let same = baseline::check_against(&run_on(zen5(), 38.0, 0), &before, 0.1, Some(&floors));
    assert!(matches!(same.noise, NoiseUse::Used { sessions: 5, .. }), "{:?}", same.noise);
    assert_eq!(same.regressions().count(), 0);

    let slower = decode_scaled(run_on(zen5(), 38.0, 0), 0.9);
    let check = baseline::check_against(&slower, &before, 0.1, Some(&floors));
    let regressed: Vec<_> = check.regressions().collect();
    assert!(
        !regressed.is_empty() && regressed.iter().all(|r| !r.is_speedup && r.metric == Metric::DecodeTokS)
    );
    assert!(regressed.iter().all(|r| r.cut.is_some_and(|c| (c - 0.0513).abs() < 0.001)), "{regressed:?}");
    let md = report::render(&Analysis::new(&slower, BaselineState::Checked(check)), &[]);
    assert!(
        md.contains("judged by the cuts of the noise floors") && md.contains("**regressed** (cut 5.1%)"),
        "{md}"
    );
    assert_eq!(
        baseline::check(&slower, &before, 0.1).regressions().count(),
        0,
        "the tolerance rule misses it"
    );

    let elsewhere = baseline::check_against(&run_on(zen5(), 12.5, 0), &before, 0.1, Some(&floors));
    let NoiseUse::Ignored(reason) = &elsewhere.noise else { panic!("{:?}", elsewhere.noise) };
    assert!(
        reason.starts_with("they were measured on another machine (memory bandwidth now 12.6 GB/s"),
        "{reason}"
    );
}

/// Every variant's decode in round i `factors[i]` times as fast as recorded.
fn decode_scaled_by_round(mut r: ExperimentResults, factors: &[f64]) -> ExperimentResults {
    for variant in &mut r.points[0].variants {
        for (run, factor) in variant.runs.iter_mut().zip(factors) {
            for it in &mut run.iterations {
                it.decode_tok_s = it.decode_tok_s.map(|d| d * factor);
            }
        }
    }
    r
}

/// A calibrated cut judges more than a point estimate: a fall whose own interval reaches no
/// change is not a regression, and a regression over a check's two runs must be seen in each
/// run alone (the false alarms of 20 unchanged checks at 91209bf came from both).
#[test]
fn a_regression_beyond_its_cut_must_clear_its_interval_and_be_seen_in_each_run() {
    let sessions: Vec<ExperimentResults> =
        [1.0, 1.01, 0.99, 1.005, 0.995].iter().map(|&f| decode_scaled(run_on(zen5(), 38.0, 0), f)).collect();
    let floors = NoiseFloors::from_sessions(&sessions).unwrap();
    let before = earlier(run_on(zen5(), 38.0, 0));
    let judge = |r: &ExperimentResults| baseline::check_against(r, &before, 0.1, Some(&floors));

    // Two rounds 15% slower, one 2% faster: the median fell beyond the 5.1% cut, the interval
    // reaches past 1.
    let one_round_fine = judge(&decode_scaled_by_round(run_on(zen5(), 38.0, 0), &[0.85, 0.85, 1.02]));
    let decode = |c: &baseline::BaselineCheck| {
        c.rows.iter().find(|r| r.subject == "all-on" && r.metric == Metric::DecodeTokS).cloned().unwrap()
    };
    let row = decode(&one_round_fine);
    assert!(row.change.point < 0.94 && row.change.high >= 1.0 && !row.regressed, "{row:?}");
    assert!(baseline::cut_regressed(&xtask::stats::Speedup { point: 0.85, low: 0.8, high: 0.9 }, 0.051));

    // Slower in the first run only: the pooled rows that fell are not confirmed.
    let slower = decode_scaled(run_on(zen5(), 38.0, 0), 0.9);
    let unchanged = run_on(zen5(), 38.0, 0);
    let mut pooled = judge(&slower);
    let fell = pooled.regressions().next().cloned().expect("a 10% slowdown is beyond the cut");
    let find = |c: &baseline::BaselineCheck| c.rows.iter().find(|r| r.same_figure(&fell)).cloned().unwrap();
    pooled.confirm(&[&judge(&slower), &judge(&unchanged)]);
    assert_eq!(pooled.regressions().count(), 0);
    assert!(find(&pooled).unconfirmed, "{:?}", find(&pooled));

    // Slower in both: it stands.
    let mut twice = judge(&slower);
    twice.confirm(&[&judge(&slower), &judge(&slower)]);
    assert!(find(&twice).regressed && !find(&twice).unconfirmed);
}
