//! Pages rendered from an analysis: the experiment's report, `reports/NAME/README.md` (here and in
//! [`sections`]), the bisect page ([`bisect`]), the calibration page ([`calibration`]), and the
//! charts beside them ([`figures`] chooses them, [`charts`] draws them). Rendering computes
//! nothing: every figure comes from [`crate::analysis`]. Tested against a golden file, and every
//! committed report re-renders byte for byte.

pub mod bisect;
pub mod calibration;
pub mod charts;
pub mod compare;
pub mod figures;
pub mod format;
pub mod history;
pub mod profile_diff;
pub mod sections;

use crate::analysis::{Analysis, BaselineCell, BaselineState, Comparison};
use crate::plan::at;
use crate::stats::Verdict;
use format::*;
use std::fmt::Write;

/// A chart beside the report.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartRef {
    pub file: String,
    pub caption: String,
}

/// The report of an analysed experiment, with its charts.
pub fn render(a: &Analysis, charts: &[ChartRef]) -> String {
    let mut md = String::new();
    let r = a.results;
    let spec = &r.spec;
    let _ = writeln!(md, "# `{}`: {}\n", r.experiment, spec.description);
    let _ = writeln!(md, "**Verdict.** {}\n", headline(a));
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
    facts(&mut md, a);
    if let Some(notes) = &spec.notes {
        let _ = writeln!(md, "## Notes\n\n{}\n", notes.trim());
    }
    let _ = writeln!(md, "## Correctness\n");
    for p in &r.points {
        if !p.correctness.divergences.is_empty() {
            let _ = writeln!(
                md,
                "- {}**outputs differ** (allowed by `--allow-output-change`): {}. Every other variant generated the \
                 same {} token ids as the first of its revision, in the check and in every measured run.",
                if p.point.label.is_empty() { String::new() } else { format!("{}: ", p.point.label) },
                p.correctness.divergences.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "),
                p.correctness.generated_tokens
            );
            continue;
        }
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
    results(&mut md, a);
    sections::spread(&mut md, &a.summary);
    sections::roofline(&mut md, &a.summary);
    hypothesis(&mut md, a);
    if !charts.is_empty() {
        let _ = writeln!(md, "## Charts\n");
        for c in charts {
            let _ = writeln!(md, "**{}**\n\n![{}]({})\n", c.caption, c.caption, c.file);
        }
    }
    sections::phases(&mut md, &a.summary);
    sections::baseline(&mut md, a);
    sections::profiles(&mut md, a);
    method(&mut md, a);
    md
}

/// The table of where, when and how the run was made.
fn facts(md: &mut String, a: &Analysis) {
    let r = a.results;
    let env = &r.environment;
    let dirty = if env.git_dirty == "true" { " (uncommitted changes)" } else { "" };
    let _ = writeln!(md, "| | |\n|---|---|");
    let _ = writeln!(md, "| date | {} |", r.finished);
    match &r.compare {
        Some(c) => {
            let _ = writeln!(md, "| commits | base {}, head {} |", c.base.describe(), c.head.describe());
        }
        None => {
            let _ = writeln!(md, "| commit | `{}`{dirty} |", short(&env.git_commit));
        }
    }
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
    // Only a build with features names them (a test-only one changes what is measured).
    let features = if env.features.is_empty() {
        String::new()
    } else {
        format!(", features **{}**", env.features.join(", "))
    };
    let _ = writeln!(
        md,
        "| build | {}, profile `{}`, target-cpu {}{features} |",
        env.rustc, env.build_profile, env.target_cpu
    );
    if !env.hardware.vendor.is_empty() {
        let _ = writeln!(md, "| hardware | {} |", env.hardware.summary());
    }
    if let Some(m) = &a.machine {
        let _ = writeln!(
            md,
            "| probe | {}; at the start and end of each of {} processes |",
            m.probe_line(),
            m.runs
        );
        let _ = writeln!(md, "| machine activity | {} |", sections::contamination_line(m));
    }
    let m = &r.spec.measurement;
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
    let rerun: Vec<String> = r
        .points
        .iter()
        .flat_map(|p| {
            p.rerun.iter().map(move |round| format!("round {}{}", round + 1, crate::plan::at(&p.point)))
        })
        .collect();
    if !rerun.is_empty() {
        let _ = writeln!(
            md,
            "| measured again | {}: another process or the hypervisor took CPU time from a run, so the whole round \
             was measured once more and the second attempt kept |",
            rerun.join(", ")
        );
    }
    let _ = writeln!(md, "| reproduce | `{}` |\n", r.command);
}

/// One table per candidate and point, in the plan's terms.
fn results(md: &mut String, a: &Analysis) {
    let _ = writeln!(md, "## Results\n");
    let _ = writeln!(
        md,
        "Medians over runs; speedup = how many times better the candidate is (above 1 is better), with its 95% \
         bootstrap interval; verdicts need the whole interval beyond 1 ± {:.0}% (the noise floor). Allocations are \
         counted, not timed: they are compared exactly. `attention_ms` and `softmax_ms` come from each run's phase \
         pass (span timing included).\n",
        a.results.spec.thresholds.noise_floor * 100.0
    );
    let last = a.points.len().saturating_sub(1);
    for (i, p) in a.points.iter().enumerate() {
        for c in &p.comparisons {
            comparison_table(md, c, &at(&p.point.point));
            profile_diff::spans(md, c);
            if let Some(diff) = a.cpu_diff(&c.reference.name, &c.candidate.name).filter(|_| i == last) {
                profile_diff::suspects(md, c, diff);
            }
            if let Some(diff) = a.heap_diff(&c.reference.name, &c.candidate.name).filter(|_| i == last) {
                profile_diff::heap_suspects(md, c, diff, p.point.correctness.generated_tokens);
            }
        }
    }
}

fn comparison_table(md: &mut String, c: &Comparison, at: &str) {
    let (reference, candidate) = (c.reference, c.candidate);
    let _ = writeln!(md, "### `{}` against `{}`{at}\n", candidate.name, reference.name);
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
    for row in &c.rows {
        let detectable = match (row.verdict, row.detectable) {
            (Verdict::NoChange, Some(d)) => format!(" (nothing beyond ±{})", percent(d)),
            _ => String::new(),
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {}{detectable} | {} |",
            row.metric.name(),
            format_value(row.metric, row.reference),
            format_value(row.metric, row.candidate),
            row.speedup.map_or("n/a".into(), |s| format_speedup(row.metric, &s)),
            verdict_word(row.metric, row.verdict),
            baseline_cell(&row.vs_baseline)
        );
    }
    let hit_rate = |x: Option<f64>| x.map_or("no pool".into(), |x| format!("{:.1}%", x * 100.0));
    let [r, c] = c.pool_hit_rates;
    let _ = writeln!(md, "| pool hit rate | {} | {} | | | |\n", hit_rate(r), hit_rate(c));
}

fn baseline_cell(cell: &BaselineCell) -> String {
    match cell {
        BaselineCell::NoBaseline => "no baseline".into(),
        BaselineCell::DoesNotFit => "does not fit".into(),
        BaselineCell::NotCompared => "-".into(),
        BaselineCell::Speedup { before, now, regressed, judged } => format!(
            "{}x -> {}x{}",
            two(*before),
            two(*now),
            if *regressed {
                " **regressed**"
            } else if !judged {
                " (machine differs)"
            } else {
                ""
            }
        ),
    }
}

fn hypothesis(md: &mut String, a: &Analysis) {
    let Some(h) = &a.results.spec.hypothesis else { return };
    let _ = writeln!(md, "## The hypothesis against the measurement\n");
    for p in &a.points {
        for c in &p.comparisons {
            let Some(s) = c.hypothesis else { continue };
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
            let _ = writeln!(
                md,
                "- `{}` on `{}`{}: {line}",
                c.candidate.name,
                h.metric.name(),
                at(&p.point.point)
            );
        }
    }
    md.push('\n');
}

/// The headline: the candidate's decode, TTFT and allocation figures, what the rounds could
/// detect, the hypothesis, and the baseline's verdict.
fn headline(a: &Analysis) -> String {
    let Some(c) = a.headline() else { return "no candidate variant".into() };
    let last = a.points.last().expect("a point").point;
    let parts: Vec<String> = [
        crate::metrics::Metric::DecodeTokS,
        crate::metrics::Metric::TtftMs,
        crate::metrics::Metric::AllocBytesPerOp,
    ]
    .into_iter()
    .filter_map(|m| c.row(m))
    .filter_map(|row| {
        let s = row.speedup?;
        Some(format!(
            "{} {} ({})",
            row.metric.name(),
            format_speedup(row.metric, &s),
            verdict_word(row.metric, row.verdict)
        ))
    })
    .collect();
    let mut line = format!(
        "`{}` against `{}`{}: {}; {}.",
        c.candidate.name,
        c.reference.name,
        at(&last.point),
        parts.join(", "),
        if a.results.points.iter().any(|p| !p.correctness.divergences.is_empty()) {
            "**outputs differ**"
        } else {
            "identical tokens"
        }
    );
    let sizes: Vec<String> = [crate::metrics::Metric::DecodeTokS, crate::metrics::Metric::TtftMs]
        .into_iter()
        .filter_map(|m| {
            c.row(m).and_then(|row| row.detectable).map(|d| format!("{} ±{}", m.name(), percent(d)))
        })
        .collect();
    if !sizes.is_empty() {
        let _ = write!(line, " Smallest change these rounds detect (80% power): {}.", sizes.join(", "));
    }
    if let Some(h) = &a.results.spec.hypothesis
        && let Some(Some(s)) = c.hypothesis
    {
        let _ = write!(line, " Hypothesis ({}x): {}.", range(h.speedup), hypothesis_status(h.speedup, &s));
    }
    if let BaselineState::Checked(check) = &a.baseline
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

fn method(md: &mut String, a: &Analysis) {
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
        crate::stats::RESAMPLES,
        a.results.spec.thresholds.noise_floor * 100.0
    );
}
