//! The report's sections after the comparisons: spread, roofline, time per phase, the baseline
//! and the profiles. Each renders part of an [`Analysis`].

use super::format::{format_value, percent, short, two};
use crate::analysis::baseline::{BaselineCheck, NoiseUse};
use crate::analysis::machine::MachineSummary;
use crate::analysis::summary::Summary;
use crate::analysis::{Analysis, BaselineState};
use crate::metrics::Metric;
use crate::plan::{at, at_label};
use std::fmt::Write;

/// `no run flagged`, or `3 of 20 runs ran while the machine was busy: ...` (the first few).
pub fn contamination_line(m: &MachineSummary) -> String {
    if m.contaminated.is_empty() {
        let rules = if m.other_cpu_known {
            "load, CPU steal, other processes' CPU time, probe drift"
        } else {
            "load, CPU steal, preemptions, probe drift"
        };
        return format!("no run flagged ({rules}) in {} runs", m.runs);
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

fn point_cell(label: &str) -> &str {
    if label.is_empty() { "-" } else { label }
}

/// Decode's fraction of the memory roofline and prefill's of the FMA peak, per point and
/// variant: figures that travel between machines (absent for runs without probe readings).
pub fn roofline(md: &mut String, s: &Summary) {
    if s.roofline.is_empty() {
        return;
    }
    let _ = writeln!(md, "### Roofline\n");
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
    let fraction = |x: Option<f64>| x.map_or("n/a".to_string(), |x| format!("{:.0}%", x * 100.0));
    for row in &s.roofline {
        let _ = writeln!(
            md,
            "| {} | `{}` | {} | {:.1} MB | {} of {} | {:.1} MFLOP | {} |",
            point_cell(&row.point),
            row.variant,
            row.decode_tok_s.map_or("n/a (no decode)".to_string(), |x| format_value(Metric::DecodeTokS, x)),
            row.decode_bytes_per_token / 1e6,
            fraction(row.decode_fraction),
            row.decode_bandwidth,
            row.prefill_flop_per_token / 1e6,
            fraction(row.prefill_fraction),
        );
    }
    md.push('\n');
}

/// Per point, variant and timed metric: median, p10, p90 and MAD over runs.
pub fn spread(md: &mut String, s: &Summary) {
    let _ = writeln!(md, "### Spread over runs\n");
    let _ = writeln!(md, "| point | variant | metric | median | p10 | p90 | MAD |");
    let _ = writeln!(md, "|---|---|---|---:|---:|---:|---:|");
    for row in &s.spread {
        let f = |x: f64| format_value(row.metric, x);
        let _ = writeln!(
            md,
            "| {} | `{}` | {} | {} | {} | {} | {} |",
            point_cell(&row.point),
            row.variant,
            row.metric.name(),
            f(row.stat.median),
            f(row.stat.p10),
            f(row.stat.p90),
            f(row.stat.mad)
        );
    }
    md.push('\n');
}

/// The last point's time per phase, from the engine's spans.
pub fn phases(md: &mut String, s: &Summary) {
    let Some(table) = &s.phases else { return };
    let _ = writeln!(md, "## Time per phase{}\n", at(&table.point));
    let _ = writeln!(
        md,
        "From the engine's spans, in a pass of its own after each run's measured ops (timing spans costs time, so \
         these shares are indicative; the table above is not affected). Milliseconds per op, median over runs.\n"
    );
    let header: Vec<String> = table.variants.iter().map(|(v, _, _)| format!("`{v}`")).collect();
    let _ = writeln!(md, "| phase | {} |", header.join(" | "));
    let _ = writeln!(md, "|---|{}", "---:|".repeat(header.len()));
    for (i, name) in table.names.iter().enumerate() {
        let cells: Vec<String> =
            table.variants.iter().map(|(_, m, _)| m[i].map_or("-".into(), |x| format!("{x:.3}"))).collect();
        let _ = writeln!(md, "| {name} | {} |", cells.join(" | "));
    }
    let shares: Vec<String> =
        table.variants.iter().map(|(_, _, share)| format!("{:.1}%", share * 100.0)).collect();
    let _ = writeln!(
        md,
        "| **attention share of forward** (scores + softmax + attention·V) | {} |\n",
        shares.join(" | ")
    );
}

/// The run against the stored baseline: every figure compared, and whether it was judged.
pub fn baseline(md: &mut String, a: &Analysis) {
    let r = a.results;
    let check = match &a.baseline {
        BaselineState::NotApplicable => return,
        BaselineState::Missing => {
            let _ = writeln!(md, "## Against the baseline\n");
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
    let _ = writeln!(md, "## Against the baseline\n");
    if check.same_run {
        let _ = writeln!(
            md,
            "This run is the stored baseline (`baselines/{}.json`): later runs are compared with it.\n",
            r.experiment
        );
        return;
    }
    let rule = if matches!(check.noise, NoiseUse::Used { .. }) {
        "a timed figure with a noise floor regressed when it fell beyond its cut (below), any other when its whole \
         95% interval is worse than that"
    } else {
        "a figure regressed when its whole 95% interval is worse than that"
    };
    let _ = writeln!(
        md,
        "Baseline: commit `{}`, {}. Tolerance: {:.0}%; {rule} (allocations: when the count grew by more than that).\n",
        short(&check.baseline_commit),
        check.baseline_date,
        r.spec.thresholds.regression * 100.0
    );
    noise_paragraph(md, check, &r.experiment);
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
    baseline_rows(md, check, &r.experiment);
}

/// Which rule judged the timed figures: the calibrated noise floors, or the tolerance.
fn noise_paragraph(md: &mut String, check: &BaselineCheck, experiment: &str) {
    match &check.noise {
        NoiseUse::Absent => {}
        NoiseUse::Used { commit, finished, sessions, rounds_per_session, plan_unrecorded, uncalibrated } => {
            let _ = write!(
                md,
                "Timed figures are judged by the cuts of the noise floors calibrated on this machine (commit `{}`, \
                 {finished}, {sessions} sessions of {rounds_per_session} rounds; `baselines/{}.noise.json`): each cut \
                 lies at the quantile of its figure's noise between two sessions that shares a 5% false-alarm rate \
                 among the calibrated figures, or halfway to the tolerance if that is farther; the status gives each \
                 cut.",
                short(commit),
                experiment
            );
            if *uncalibrated > 0 {
                let _ = write!(
                    md,
                    " {uncalibrated} timed figure(s) have no floor of their own: the tolerance rule."
                );
            }
            if *plan_unrecorded {
                let _ = write!(
                    md,
                    " The file does not record the plan it was measured on, so whether it still fits cannot be \
                     checked (`cargo xtask calibrate {experiment} --sessions 5 --save-baseline` records it)."
                );
            }
            md.push_str("\n\n");
        }
        NoiseUse::Ignored(reason) => {
            let _ = writeln!(
                md,
                "The calibrated noise floors (`baselines/{}.noise.json`) are not used: {reason}; the tolerance rule \
                 applies.\n",
                experiment
            );
        }
    }
}

/// Every figure compared with the baseline, with its status.
fn baseline_rows(md: &mut String, check: &BaselineCheck, experiment: &str) {
    let _ = writeln!(md, "| point | subject | metric | baseline | now | change [95% CI] | status |");
    let _ = writeln!(md, "|---|---|---|---:|---:|---|---|");
    for row in &check.rows {
        let (before, now) = if row.is_speedup {
            (format!("{}x", two(row.before)), format!("{}x", two(row.now)))
        } else {
            (format_value(row.metric, row.before), format_value(row.metric, row.now))
        };
        let status = if !check.judged {
            "not judged (machine differs)".to_string()
        } else if row.regressed {
            "**regressed**".to_string()
        } else if row.unconfirmed {
            "ok: beyond the cut over both runs, not in each alone".to_string()
        } else if let Some(parts) = row.parts.filter(|_| row.fell_by_its_reference()) {
            format!(
                "ok: the reference is {}x faster, the candidate {}x",
                two(parts.reference.point),
                two(parts.candidate.point)
            )
        } else if row.improved_beyond {
            format!("improved beyond tolerance: the baseline is stale (`cargo xtask baseline {experiment}`)")
        } else if row.change.low > 1.0 {
            "improved".to_string()
        } else {
            "ok".to_string()
        };
        let status = match row.cut {
            Some(cut) if check.judged => format!("{status} (cut {})", percent(cut)),
            _ => status,
        };
        let _ = writeln!(
            md,
            "| {} | {} | {}{} | {before} | {now} | {}x [{}, {}] | {status} |",
            point_cell(&row.point),
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

/// The profiles captured for each variant, with how to open them.
pub fn profiles(md: &mut String, a: &Analysis) {
    let r = a.results;
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
