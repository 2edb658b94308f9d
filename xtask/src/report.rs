//! The markdown report, `reports/NAME/README.md`, rendered from a results file (and the baseline
//! check) alone: a pure function, tested against a golden file. Charts are drawn separately
//! (`charts.rs`); this module only names them.

use crate::baseline::BaselineCheck;
use crate::compare::{Speedup, Verdict, median, paired_speedup};
use crate::results::{ExperimentResults, PointResults, VariantResults};
use crate::spec::{Metric, at, at_label};
use std::fmt::Write;

/// A chart beside the report.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartRef {
    pub file: String,
    pub caption: String,
}

/// What the baseline section says.
#[derive(Debug, Clone, PartialEq)]
pub enum BaselineState {
    Missing,
    Checked(BaselineCheck),
}

/// The report for `r`.
pub fn render(r: &ExperimentResults, baseline: &BaselineState, charts: &[ChartRef]) -> String {
    let mut md = String::new();
    let spec = &r.spec;
    let env = &r.environment;
    let nf = spec.thresholds.noise_floor;
    let last = r.points.last().expect("an experiment has at least one point");
    let _ = writeln!(md, "# `{}`: {}\n", r.experiment, spec.description);
    let _ = writeln!(md, "**Verdict.** {}\n", headline(r, last, baseline));
    if let Some(h) = &spec.hypothesis {
        let _ = writeln!(
            md,
            "**Hypothesis.** \"{}\" (expected {} of {}x on `{}`).\n",
            h.claim,
            if h.metric.higher_is_better() { "a speedup" } else { "an improvement" },
            range(h.speedup),
            h.metric.name()
        );
    }
    let dirty = if env.git_dirty == "true" { " (uncommitted changes)" } else { "" };
    let _ = writeln!(md, "| | |\n|---|---|");
    let _ = writeln!(md, "| date | {} |", r.finished);
    let _ = writeln!(md, "| commit | `{}`{dirty} |", short(&env.git_commit));
    let _ = writeln!(
        md,
        "| machine | {}, {} logical cores, {} GiB, {}, kernel {}, kernels use {} |",
        env.cpu_model,
        env.logical_cores,
        env.memory_total_bytes.map_or("?".into(), |b| format!("{:.0}", b as f64 / (1u64 << 30) as f64)),
        env.os,
        env.kernel,
        env.simd_level
    );
    let _ = writeln!(
        md,
        "| build | {}, profile `{}`, target-cpu {} |",
        env.rustc, env.build_profile, env.target_cpu
    );
    let machine = crate::machine::MachineSummary::of(r);
    if !env.hardware.vendor.is_empty() {
        let _ = writeln!(md, "| hardware | {} |", env.hardware.summary());
    }
    if let Some(m) = &machine {
        let _ = writeln!(
            md,
            "| probe | {}; at the start and end of each of {} processes |",
            m.probe_line(),
            m.runs
        );
        let _ = writeln!(md, "| machine activity | {} |", contamination_line(m));
    }
    let m = &spec.measurement;
    let _ = writeln!(
        md,
        "| runs | {} rounds per point; each round runs every variant once as its own process, in alternating order; \
         per process {} warm-up op(s), then {} measured op(s) |",
        r.rounds, m.warmup, m.ops_per_run
    );
    let stops: Vec<String> = r
        .points
        .iter()
        .filter_map(|p| {
            p.stopped.as_ref().map(|why| {
                if p.point.label.is_empty() { why.clone() } else { format!("{}: {why}", p.point.label) }
            })
        })
        .collect();
    if !stops.is_empty() {
        let _ = writeln!(
            md,
            "| rounds | adaptive, {} to {}: {} |",
            m.min_rounds(),
            m.iterations,
            stops.join("; ")
        );
    }
    let _ = writeln!(md, "| reproduce | `{}` |\n", r.command);

    if let Some(notes) = &spec.notes {
        let _ = writeln!(md, "## Notes\n\n{}\n", notes.trim());
    }

    // Correctness.
    let _ = writeln!(md, "## Correctness\n");
    for p in &r.points {
        let _ = writeln!(
            md,
            "- {}all {} variants generated the same {} token ids as the reference `{}` (`{}`), in the check and in every measured run.",
            if p.point.label.is_empty() { String::new() } else { format!("{}: ", p.point.label) },
            p.variants.len(),
            p.correctness.generated_tokens,
            p.reference().name,
            short_digest(&p.correctness.reference_digest)
        );
    }
    md.push('\n');

    // Tables in the plan's terms.
    let _ = writeln!(md, "## Results\n");
    let _ = writeln!(
        md,
        "Medians over runs; speedup = how many times better the candidate is (above 1 is better), with its 95% \
         bootstrap interval; verdicts need the whole interval beyond 1 ± {:.0}% (the noise floor). Allocations are \
         counted, not timed: they are compared exactly. `attention_ms` and `softmax_ms` come from each run's phase \
         pass (span timing included).\n",
        nf * 100.0
    );
    for p in &r.points {
        let reference = p.reference();
        for candidate in p.variants.iter().filter(|v| !v.reference) {
            let _ = writeln!(md, "### `{}` against `{}`{}\n", candidate.name, reference.name, at(&p.point));
            let _ = writeln!(
                md,
                "`{}`: {}  \n`{}`: {}\n",
                reference.name, reference.optimizations, candidate.name, candidate.optimizations
            );
            let _ = writeln!(
                md,
                "| metric | `{}` | `{}` | speedup [95% CI] | verdict | vs baseline |",
                reference.name, candidate.name
            );
            let _ = writeln!(md, "|---|---:|---:|---|---|---|");
            for metric in Metric::ALL {
                let (rv, cv) = (reference.values(metric), candidate.values(metric));
                if rv.is_empty() || cv.is_empty() {
                    continue;
                }
                let (speedup, verdict) = comparison(p, candidate, metric, nf);
                let detectable = match verdict {
                    Verdict::NoChange => detectable(p, candidate, metric)
                        .map_or(String::new(), |d| format!(" (nothing beyond ±{})", percent(d))),
                    _ => String::new(),
                };
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {}{detectable} | {} |",
                    metric.name(),
                    format_value(metric, median(&rv)),
                    format_value(metric, median(&cv)),
                    speedup.map_or("n/a".into(), |s| format_speedup(metric, &s)),
                    verdict_word(metric, verdict),
                    baseline_cell(baseline, &p.point.label, candidate, reference, metric)
                );
            }
            let _ =
                writeln!(md, "| pool hit rate | {} | {} | | | |\n", hit_rate(reference), hit_rate(candidate));
        }
    }

    spread_section(&mut md, r);
    roofline_section(&mut md, r);

    if let Some(h) = &spec.hypothesis {
        let _ = writeln!(md, "## The hypothesis against the measurement\n");
        for p in &r.points {
            for candidate in p
                .variants
                .iter()
                .filter(|v| !v.reference && h.candidate.as_ref().is_none_or(|c| c == &v.name))
            {
                let s = paired_speedup(&p.pairs(candidate, h.metric), h.metric.higher_is_better());
                let line = match s {
                    Some(s) => format!(
                        "expected {}x, measured {}x [{}, {}]: {}",
                        range(h.speedup),
                        two(s.point),
                        two(s.low),
                        two(s.high),
                        hypothesis_status(h.speedup, &s)
                    ),
                    None => "not measurable".to_string(),
                };
                let _ =
                    writeln!(md, "- `{}` on `{}`{}: {line}", candidate.name, h.metric.name(), at(&p.point));
            }
        }
        md.push('\n');
    }

    if !charts.is_empty() {
        let _ = writeln!(md, "## Charts\n");
        for c in charts {
            let _ = writeln!(md, "**{}**\n\n![{}]({})\n", c.caption, c.caption, c.file);
        }
    }

    phase_section(&mut md, last);
    baseline_section(&mut md, r, baseline);
    profile_section(&mut md, r);

    let _ = writeln!(md, "## Method\n");
    let _ = writeln!(
        md,
        "Each variant runs as its own `smallmind bench` process from one release build, so a slow or crashed run \
         cannot leak into another and every run starts cold. Rounds interleave the variants (A B, then B A, ...) so \
         that drift in the machine's speed (other tenants, thermal state) falls on all variants alike. Before any \
         timing counts, every variant must generate exactly the reference's token ids. A run's value is the median of \
         its measured ops; per metric the table gives the median over runs. A speedup's interval comes from resampling \
         the rounds with replacement {} times (seeded, so the report is reproducible from `results.json`) and taking \
         the 2.5th and 97.5th percentiles of the ratio of medians. \"No significant change\" means the interval \
         reaches into 1 ± {:.0}%. Profiles come from separate runs after the measurements, never from measured ones. \
         `results.json` beside this file holds every raw sample.",
        crate::compare::RESAMPLES,
        nf * 100.0
    );
    md
}

/// Speedup and verdict of `candidate` over the point's reference on `metric`.
pub fn comparison(
    p: &PointResults,
    candidate: &VariantResults,
    metric: Metric,
    nf: f64,
) -> (Option<Speedup>, Verdict) {
    if metric.is_exact() {
        let (rv, cv) = (p.reference().values(metric), candidate.values(metric));
        if rv.is_empty() || cv.is_empty() {
            return (None, Verdict::NoChange);
        }
        let (r, c) = (median(&rv), median(&cv));
        let x = if r == c { 1.0 } else { r / c };
        // Allocation counts and bytes are compared exactly; the peak heap also holds buffers the
        // bench itself sizes from its arguments (a few hundred bytes), so within 1% it is the same.
        let same = r == c || (metric == Metric::PeakHeapBytes && (x - 1.0).abs() < 0.01);
        let verdict = if same {
            Verdict::Same
        } else if c < r {
            Verdict::Better
        } else {
            Verdict::Worse
        };
        return (Some(Speedup { point: x, low: x, high: x }), verdict);
    }
    match paired_speedup(&p.pairs(candidate, metric), metric.higher_is_better()) {
        Some(s) => (Some(s), s.verdict(nf)),
        None => (None, Verdict::NoChange),
    }
}

fn headline(r: &ExperimentResults, last: &PointResults, baseline: &BaselineState) -> String {
    let nf = r.spec.thresholds.noise_floor;
    let wanted = r.spec.hypothesis.as_ref().and_then(|h| h.candidate.clone());
    let Some(candidate) =
        last.variants.iter().find(|v| !v.reference && wanted.as_ref().is_none_or(|w| w == &v.name))
    else {
        return "no candidate variant".into();
    };
    let mut parts = Vec::new();
    for metric in [Metric::DecodeTokS, Metric::TtftMs, Metric::AllocBytesPerOp] {
        if let (Some(s), v) = comparison(last, candidate, metric, nf) {
            parts.push(format!(
                "{} {} ({})",
                metric.name(),
                format_speedup(metric, &s),
                verdict_word(metric, v)
            ));
        }
    }
    let mut line = format!(
        "`{}` against `{}`{}: {}; identical tokens.",
        candidate.name,
        last.reference().name,
        at(&last.point),
        parts.join(", ")
    );
    let sizes: Vec<String> = [Metric::DecodeTokS, Metric::TtftMs]
        .into_iter()
        .filter_map(|m| detectable(last, candidate, m).map(|d| format!("{} ±{}", m.name(), percent(d))))
        .collect();
    if !sizes.is_empty() {
        let _ = write!(line, " Smallest change these rounds detect (80% power): {}.", sizes.join(", "));
    }
    if let Some(h) = &r.spec.hypothesis
        && let Some(s) = paired_speedup(&last.pairs(candidate, h.metric), h.metric.higher_is_better())
    {
        let _ = write!(line, " Hypothesis ({}x): {}.", range(h.speedup), hypothesis_status(h.speedup, &s));
    }
    if let BaselineState::Checked(check) = baseline
        && !check.same_run
    {
        let n = check.regressions().count();
        let _ = write!(
            line,
            " Baseline: {}.",
            if !check.misfits.is_empty() {
                format!("**does not fit** ({} not compared)", check.misfits.len())
            } else if !check.judged {
                "not judged: another machine (see Baseline)".to_string()
            } else if n == 0 {
                "no regression".to_string()
            } else {
                format!("**{n} regression(s)**")
            }
        );
    }
    line
}

/// `no run flagged`, or `3 of 20 runs ran while the machine was busy: ...` (the first few).
fn contamination_line(m: &crate::machine::MachineSummary) -> String {
    if m.contaminated.is_empty() {
        return format!("no run flagged (load, CPU steal, preemptions, probe drift) in {} runs", m.runs);
    }
    let shown: Vec<String> = m
        .contaminated
        .iter()
        .take(3)
        .map(|(point, variant, round, flags)| {
            format!("`{variant}`{} round {}: {}", at_label(point), round + 1, flags.join(", "))
        })
        .collect();
    format!(
        "**{} of {} runs ran while the machine was busy**: {}{}",
        m.contaminated.len(),
        m.runs,
        shown.join("; "),
        if m.contaminated.len() > 3 { "; ..." } else { "" }
    )
}

/// Decode's fraction of the memory roofline and prefill's of the FMA peak, per point and
/// variant: figures that travel between machines (absent for runs without probe readings).
fn roofline_section(md: &mut String, r: &ExperimentResults) {
    let rows: Vec<String> = r
        .points
        .iter()
        .flat_map(|p| p.variants.iter().map(move |v| (p, v)))
        .filter_map(|(p, v)| {
            let roofs: Vec<_> =
                v.runs.iter().filter_map(|run| run.machine.as_ref().map(|m| &m.roofline)).collect();
            let first = roofs.first()?;
            let fractions = |f: fn(&smallmind::bench::machine::Roofline) -> Option<f64>| {
                let xs: Vec<f64> = roofs.iter().filter_map(|r| f(r)).collect();
                if xs.is_empty() { "n/a".to_string() } else { format!("{:.0}%", median(&xs) * 100.0) }
            };
            Some(format!(
                "| {} | `{}` | {} | {:.1} MB | {} of {} | {:.1} MFLOP | {} |",
                if p.point.label.is_empty() { "-" } else { &p.point.label },
                v.name,
                format_value(Metric::DecodeTokS, median(&v.values(Metric::DecodeTokS))),
                first.decode_bytes_per_token / 1e6,
                fractions(|r| r.decode_fraction_of_bandwidth),
                first.decode_bandwidth,
                first.prefill_flop_per_token / 1e6,
                fractions(|r| r.prefill_fraction_of_fma_peak),
            ))
        })
        .collect();
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "### Roofline
"
    );
    let _ = writeln!(
        md,
        "Decode: bytes of weights and KV cache read per token × tok/s ÷ the probe's bandwidth (one core's \
         triad): memory's, or the LLC's when a token's bytes fit in half the last-level cache. Prefill: FLOP per prompt token × prefill tok/s ÷ (the probe's FMA peak × threads). Medians over \
         runs, each with its own probe readings; unlike tok/s, these compare across machines.\n"
    );
    let _ = writeln!(
        md,
        "| point | variant | decode tok/s | bytes/token | of bandwidth roofline | prefill FLOP/token | of FMA peak |"
    );
    let _ = writeln!(md, "|---|---|---:|---:|---:|---:|---:|");
    for row in rows {
        let _ = writeln!(md, "{row}");
    }
    md.push('\n');
}

/// Per point, variant and timed metric: median, p10, p90 and MAD over runs.
fn spread_section(md: &mut String, r: &ExperimentResults) {
    let _ = writeln!(md, "### Spread over runs\n");
    let _ = writeln!(md, "| point | variant | metric | median | p10 | p90 | MAD |");
    let _ = writeln!(md, "|---|---|---|---:|---:|---:|---:|");
    for p in &r.points {
        for v in &p.variants {
            for metric in [Metric::DecodeTokS, Metric::TtftMs] {
                let Some(s) = smallmind::bench::stats::Stat::of(&v.values(metric)) else { continue };
                let f = |x: f64| format_value(metric, x);
                let _ = writeln!(
                    md,
                    "| {} | `{}` | {} | {} | {} | {} | {} |",
                    if p.point.label.is_empty() { "-" } else { &p.point.label },
                    v.name,
                    metric.name(),
                    f(s.median),
                    f(s.p10),
                    f(s.p90),
                    f(s.mad)
                );
            }
        }
    }
    md.push('\n');
}

fn phase_section(md: &mut String, p: &PointResults) {
    // Phases are matched by name: every run of the engine reports the same ones, a damaged
    // results file need not.
    let names: Vec<String> = match p.variants.iter().flat_map(|v| &v.runs).find_map(|r| r.phases.as_ref()) {
        Some(first) => first.phases.iter().map(|ph| ph.name.clone()).collect(),
        None => return,
    };
    let with_phases: Vec<(&VariantResults, Vec<Option<f64>>)> = p
        .variants
        .iter()
        .filter_map(|v| {
            let reports: Vec<_> = v.runs.iter().filter_map(|r| r.phases.as_ref()).collect();
            reports.first()?;
            let medians = names
                .iter()
                .map(|name| {
                    let xs: Vec<f64> = reports
                        .iter()
                        .filter_map(|r| r.phases.iter().find(|ph| &ph.name == name).map(|ph| ph.ms_per_op))
                        .collect();
                    (!xs.is_empty()).then(|| median(&xs))
                })
                .collect();
            Some((v, medians))
        })
        .collect();
    let _ = writeln!(md, "## Time per phase{}\n", at(&p.point));
    let _ = writeln!(
        md,
        "From the engine's spans, in a pass of its own after each run's measured ops (timing spans costs time, so \
         these shares are indicative; the table above is not affected). Milliseconds per op, median over runs.\n"
    );
    let header: Vec<String> = with_phases.iter().map(|(v, _)| format!("`{}`", v.name)).collect();
    let _ = writeln!(md, "| phase | {} |", header.join(" | "));
    let _ = writeln!(md, "|---|{}", "---:|".repeat(header.len()));
    for (i, name) in names.iter().enumerate() {
        let cells: Vec<String> =
            with_phases.iter().map(|(_, m)| m[i].map_or("-".into(), |x| format!("{x:.3}"))).collect();
        let _ = writeln!(md, "| {name} | {} |", cells.join(" | "));
    }
    let shares: Vec<String> = with_phases
        .iter()
        .map(|(v, _)| {
            let xs: Vec<f64> = v
                .runs
                .iter()
                .filter_map(|r| r.phases.as_ref().map(|ph| ph.attention_share_of_forward))
                .collect();
            format!("{:.1}%", median(&xs) * 100.0)
        })
        .collect();
    let _ = writeln!(
        md,
        "| **attention share of forward** (scores + softmax + attention·V) | {} |\n",
        shares.join(" | ")
    );
}

fn baseline_section(md: &mut String, r: &ExperimentResults, baseline: &BaselineState) {
    let _ = writeln!(md, "## Against the baseline\n");
    let check = match baseline {
        BaselineState::Missing => {
            let _ = writeln!(
                md,
                "No baseline is stored for `{name}`. To keep this run as the baseline every later report is compared \
                 with, run `cargo xtask baseline {name}` (or add `--save-baseline`).\n",
                name = r.experiment
            );
            return;
        }
        BaselineState::Checked(check) => check,
    };
    if check.same_run {
        let _ = writeln!(
            md,
            "This run is the stored baseline (`baselines/{}.json`): later runs are compared with it.\n",
            r.experiment
        );
        return;
    }
    let _ = writeln!(
        md,
        "Baseline: commit `{}`, {}. Tolerance: {:.0}%; a figure regressed when its whole 95% interval is worse than \
         that (allocations: when the count grew by more than that).\n",
        short(&check.baseline_commit),
        check.baseline_date,
        r.spec.thresholds.regression * 100.0
    );
    if !check.comparable && check.judged {
        let _ = writeln!(
            md,
            "Different machine: absolute figures not compared (speedups and allocation counts are).\n"
        );
    }
    if !check.judged {
        let _ = writeln!(md, "**Not the baseline's machine**: absolute figures not compared.\n");
        for reason in &check.machine_reasons {
            let _ = writeln!(md, "- {reason}");
        }
        let _ = writeln!(
            md,
            "\nEvery difference below may be the machine's (speedups and allocations depend on it too): none is \
             judged improved or regressed. Store a baseline on this machine to judge: `cargo xtask baseline {}`.\n",
            r.experiment
        );
    }
    if !check.misfits.is_empty() {
        let _ = writeln!(
            md,
            "**The baseline does not fit this run**, so this comparison is not a pass. Not compared (`cargo xtask \
             baseline {}` stores a baseline that fits):\n",
            r.experiment
        );
        for misfit in &check.misfits {
            let _ = writeln!(md, "- {misfit}");
        }
        md.push('\n');
        if check.rows.is_empty() {
            return;
        }
    }
    let _ = writeln!(md, "| point | subject | metric | baseline | now | change [95% CI] | status |");
    let _ = writeln!(md, "|---|---|---|---:|---:|---|---|");
    for row in &check.rows {
        let (before, now) = if row.is_speedup {
            (format!("{}x", two(row.before)), format!("{}x", two(row.now)))
        } else {
            (format_value(row.metric, row.before), format_value(row.metric, row.now))
        };
        let status = if !check.judged {
            "not judged (machine differs)"
        } else if row.regressed {
            "**regressed**"
        } else if row.change.low > 1.0 {
            "improved"
        } else {
            "ok"
        };
        let _ = writeln!(
            md,
            "| {} | {} | {}{} | {before} | {now} | {}x [{}, {}] | {status} |",
            if row.point.is_empty() { "-" } else { &row.point },
            row.subject,
            row.metric.name(),
            if row.is_speedup { " speedup" } else { "" },
            two(row.change.point),
            two(row.change.low),
            two(row.change.high)
        );
    }
    md.push('\n');
}

fn profile_section(md: &mut String, r: &ExperimentResults) {
    if r.profiles.is_empty() {
        return;
    }
    let point = r.points.last().map(|p| at(&p.point)).unwrap_or_default();
    let _ = writeln!(md, "## Profiles{point}\n");
    let _ =
        writeln!(md, "Captured in runs of their own, after the measurements (never the measured runs).\n");
    let _ = writeln!(md, "| variant | profile | file | size |");
    let _ = writeln!(md, "|---|---|---|---:|");
    for p in &r.profiles {
        let file = if p.beside_report {
            format!("[{}]({})", p.path, p.path)
        } else {
            format!("`{}` (over 1 MB: kept out of the repository; re-run to make it)", p.path)
        };
        let _ =
            writeln!(md, "| `{}` | {} | {file} | {:.0} KiB |", p.variant, p.kind, p.bytes as f64 / 1024.0);
    }
    let _ = writeln!(
        md,
        "\nHow to open them: a flame graph (`.svg`) in any web browser (click to zoom, Ctrl-F to search); `.pb` with \
         `go tool pprof -http=:8080 FILE.pb`; a trace (`.trace.json`) at https://ui.perfetto.dev or `chrome://tracing`; \
         a heap profile (`.heap.json`) in DHAT's viewer, https://nnethercote.github.io/dh_view/dh_view.html.\n"
    );
}

fn baseline_cell(
    baseline: &BaselineState,
    point: &str,
    candidate: &VariantResults,
    reference: &VariantResults,
    metric: Metric,
) -> String {
    let subject = format!("{} vs {}", candidate.name, reference.name);
    match baseline {
        BaselineState::Missing => "no baseline".into(),
        BaselineState::Checked(check) => check
            .rows
            .iter()
            .find(|row| {
                row.point == point && row.subject == subject && row.metric == metric && row.is_speedup
            })
            .map_or_else(
                || {
                    let unfit = check.misfits.iter().any(|m| {
                        m.point == point && (m.variant == candidate.name || m.variant == reference.name)
                    });
                    let compared = [Metric::DecodeTokS, Metric::TtftMs].contains(&metric);
                    if unfit && compared { "does not fit".into() } else { "-".into() }
                },
                |row| {
                    format!(
                        "{}x -> {}x{}",
                        two(row.before),
                        two(row.now),
                        if row.regressed {
                            " **regressed**"
                        } else if !check.judged {
                            " (machine differs)"
                        } else {
                            ""
                        }
                    )
                },
            ),
    }
}

fn hit_rate(v: &VariantResults) -> String {
    let rates: Vec<f64> = v.runs.iter().filter_map(|r| r.pool.hit_rate).collect();
    if rates.is_empty() { "no pool".into() } else { format!("{:.1}%", median(&rates) * 100.0) }
}

fn hypothesis_status(expected: [f64; 2], s: &Speedup) -> &'static str {
    if s.point < expected[0] {
        "falls short"
    } else if s.point > expected[1] {
        "exceeds the claim"
    } else {
        "holds"
    }
}

/// `1.5-2` or `3`.
fn range(r: [f64; 2]) -> String {
    if r[0] == r[1] { two(r[0]) } else { format!("{}-{}", two(r[0]), two(r[1])) }
}

/// Two significant decimals, trailing zeros dropped: `3.1`, `0.98`, `12`.
pub fn two(x: f64) -> String {
    if !x.is_finite() {
        return "inf".into();
    }
    let s = if x.abs() >= 10.0 { format!("{x:.1}") } else { format!("{x:.2}") };
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn format_speedup(metric: Metric, s: &Speedup) -> String {
    if metric.is_exact() { format!("{}x", two(s.point)) } else { interval(s) }
}

/// `3.1x [2.9, 3.3]`.
pub fn interval(s: &Speedup) -> String {
    format!("{}x [{}, {}]", two(s.point), two(s.low), two(s.high))
}

/// The smallest change of `metric` between `candidate` and the reference that the paired rounds
/// at `p` detect at 80% power (see [`crate::compare::detectable_change`]); `None` for exact
/// metrics and fewer than two rounds.
fn detectable(p: &PointResults, candidate: &VariantResults, metric: Metric) -> Option<f64> {
    (!metric.is_exact()).then(|| crate::compare::detectable_change(&p.pairs(candidate, metric))).flatten()
}

/// `1.2%` or `15%`.
fn percent(fraction: f64) -> String {
    let p = fraction * 100.0;
    if p < 10.0 { format!("{p:.1}%") } else { format!("{p:.0}%") }
}

fn verdict_word(metric: Metric, v: Verdict) -> &'static str {
    match (v, metric.is_exact()) {
        (Verdict::Better, false) => "faster",
        (Verdict::Worse, false) => "slower",
        (Verdict::Better, true) => "fewer",
        (Verdict::Worse, true) => "more",
        (Verdict::Same, _) => "same",
        (Verdict::NoChange, _) => "no significant change",
    }
}

/// A metric's value with its unit.
pub fn format_value(metric: Metric, v: f64) -> String {
    match metric {
        Metric::TtftMs | Metric::SoftmaxMs | Metric::AttentionMs => format!("{v:.3} ms"),
        Metric::DecodeTokS | Metric::EndToEndTokS | Metric::PrefillTokS => format!("{} tok/s", thousands(v)),
        Metric::AllocCountPerOp => thousands(v),
        Metric::AllocBytesPerOp | Metric::PeakHeapBytes => bytes(v),
    }
}

fn thousands(v: f64) -> String {
    let n = v.round() as i64;
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    if n < 0 { format!("-{out}") } else { out }
}

fn bytes(v: f64) -> String {
    if v >= 1024.0 * 1024.0 {
        format!("{:.2} MiB", v / (1024.0 * 1024.0))
    } else if v >= 1024.0 {
        format!("{:.1} KiB", v / 1024.0)
    } else {
        format!("{v:.0} B")
    }
}

/// "CPU (N logical cores), commit `abc`, finished. Reproduce: `command`." for the pages that
/// name where and how they were measured in one sentence.
pub fn provenance(env: &smallmind::bench::env::Environment, finished: &str, command: &str) -> String {
    format!(
        "{} ({} logical cores), commit `{}`, {finished}. Reproduce: `{command}`.",
        env.cpu_model,
        env.logical_cores,
        short(&env.git_commit)
    )
}

/// The first 10 characters of a commit hash.
pub fn short(commit: &str) -> &str {
    commit.char_indices().nth(10).map_or(commit, |(end, _)| &commit[..end])
}

fn short_digest(d: &str) -> String {
    d.chars().take(7 + 12).collect::<String>() + "…"
}
