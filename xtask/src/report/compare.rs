//! The pages of `cargo xtask compare`: each experiment's page (the experiment's report of the
//! head against the base, led by where their outputs differ, and with `--toggles lattice` where
//! the change is), and the summary a pull request shows ([`summary`]), which is also the index
//! of the run's folder.

use super::ChartRef;
use super::format::{format_value, percent_change, verdict_word};
use crate::analysis::compare::{Change, CompareAnalysis};
use crate::metrics::Metric;
use crate::plan::at_label;
use std::fmt::Write;

/// The hidden line a bot finds its pull-request comment by, the summary's first line.
pub const MARKER: &str = "<!-- smallmind-compare -->";

/// Rows of the summary's table, at most (the rest are in the folded details).
pub const SUMMARY_ROWS: usize = 15;

/// One experiment's page.
pub fn page(a: &CompareAnalysis, charts: &[ChartRef]) -> String {
    let mut md = super::render(&a.page, charts);
    if !a.divergences.is_empty() {
        // Lead with it, right under the title: a change of output is reviewed as a behaviour change.
        let title_end = md.find("\n\n").map_or(0, |i| i + 2);
        let mut lead = String::from("**Outputs differ.** ");
        outputs_differ(&mut lead, a);
        lead.push_str("\n\n");
        md.insert_str(title_end, &lead);
    }
    if let Some(ranked) = &a.contributions {
        let _ = writeln!(md, "## Where the change is: each optimization's contribution\n");
        let _ = writeln!(
            md,
            "Each optimization's contribution to decode throughput (all on, against all on but it) on the base and \
             on the head, from the same interleaved rounds; worst change first. A change whose interval lies below 1 \
             - {:.0}% is flagged.\n",
            a.tolerance * 100.0
        );
        let _ = writeln!(md, "| optimization | contribution in the base | in the head [95% CI] | change |");
        let _ = writeln!(md, "|---|---:|---|---|");
        for (s, fell) in ranked {
            let _ = writeln!(md, "| {} |", super::bisect::suspect_cells(s, *fell));
        }
        md.push('\n');
    }
    md
}

/// `the head's tokens differ from the base's: ...; review it as a behaviour change.`
fn outputs_differ(md: &mut String, a: &CompareAnalysis) {
    let places: Vec<String> =
        a.divergences.iter().map(|(point, d)| format!("{d}{}", at_label(point))).collect();
    let _ = write!(
        md,
        "{} generates other tokens than {}: {}. The run went on because `--allow-output-change` was given; a \
         change of output is a behaviour change, to be reviewed as one.",
        a.record.head.describe(),
        a.record.base.describe(),
        places.join("; ")
    );
}

/// How the summary renders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SummaryStyle {
    /// List every figure in the table, not only those beyond the noise.
    pub all: bool,
    /// Link each experiment's page and show its charts (the folder's own index); a pull-request
    /// comment cannot follow relative links, and names the folder instead.
    pub links: bool,
}

/// The short page a pull request shows for a compare run over `experiments` (each with the
/// file names of its charts): one verdict line, one table of at most [`SUMMARY_ROWS`] figures
/// (by default only those beyond the noise), the token gate, the machine and the command, and
/// every figure and chart folded in `<details>`. `folder` is the run's report folder.
pub fn summary(experiments: &[(CompareAnalysis, Vec<String>)], folder: &str, style: SummaryStyle) -> String {
    let mut md = format!("{MARKER}\n");
    let Some((first, _)) = experiments.first() else { return md };
    let record = first.record;
    let _ = writeln!(md, "### smallmind: {} against {}\n", record.head.describe(), record.base.describe());
    let _ = writeln!(md, "{}\n", verdict(experiments));
    let shown: Vec<(&str, &Change)> = experiments
        .iter()
        .flat_map(|(a, _)| a.changes.iter().map(move |c| (a.record.experiment.as_str(), c)))
        .filter(|(_, c)| style.all || c.changed())
        .collect();
    if shown.is_empty() {
        let floors: Vec<String> = experiments
            .iter()
            .map(|(a, _)| format!("`{}` ±{:.0}%", a.record.experiment, a.noise_floor * 100.0))
            .collect();
        let _ = writeln!(md, "No figure changed beyond the noise floor ({}).\n", floors.join(", "));
    } else {
        table(&mut md, shown.iter().take(SUMMARY_ROWS).copied());
        if shown.len() > SUMMARY_ROWS {
            let _ = writeln!(md, "{} more in the details below.\n", shown.len() - SUMMARY_ROWS);
        }
    }
    let _ = writeln!(md, "**Tokens.** {}\n", tokens(experiments));
    let env = &first.page.results.environment;
    let probe = first.page.machine.as_ref().map_or(String::new(), |m| format!("; {}", m.probe_line()));
    let hardware =
        if env.hardware.vendor.is_empty() { String::new() } else { format!("; {}", env.hardware.summary()) };
    let _ = writeln!(
        md,
        "**Machine.** {} ({} logical cores{hardware}){probe}.\n",
        env.cpu_model, env.logical_cores
    );
    // A busy machine blurs every figure: said here, not only on each experiment's page.
    for (a, _) in experiments {
        if let Some(m) = a.page.machine.as_ref().filter(|m| !m.contaminated.is_empty()) {
            let _ = writeln!(md, "`{}`: {}\n", a.record.experiment, super::sections::contamination_line(m));
        }
    }
    let _ = writeln!(md, "<details><summary>Every figure, the charts and how to reproduce</summary>\n");
    let all: Vec<(&str, &Change)> = experiments
        .iter()
        .flat_map(|(a, _)| a.changes.iter().map(move |c| (a.record.experiment.as_str(), c)))
        .collect();
    table(&mut md, all.into_iter());
    for (a, charts) in experiments {
        let name = &a.record.experiment;
        let _ = writeln!(md, "`{name}`: `{}`\n", a.page.results.command);
        if style.links {
            let _ = writeln!(md, "[The report]({name}/README.md)\n");
            for chart in charts {
                let _ = writeln!(md, "![{chart}]({name}/{chart})\n");
            }
        } else {
            let _ = writeln!(md, "The report and its {} chart(s): `{folder}/{name}/`\n", charts.len());
        }
    }
    md.push_str("</details>\n");
    md
}

/// The verdict line: outputs differ, regressed (with the worst figure), faster, or no change.
fn verdict(experiments: &[(CompareAnalysis, Vec<String>)]) -> String {
    let mut parts = Vec::new();
    let differ: Vec<&str> = experiments
        .iter()
        .filter(|(a, _)| !a.divergences.is_empty())
        .map(|(a, _)| a.record.experiment.as_str())
        .collect();
    if !differ.is_empty() {
        parts.push(format!("**Outputs differ** in `{}`: review as a behaviour change.", differ.join("`, `")));
    }
    // One tolerance is named once; differing tolerances are named beside each figure.
    let tolerances: Vec<f64> = experiments.iter().map(|(a, _)| a.tolerance).collect();
    let tolerance = tolerances.iter().copied().fold(f64::INFINITY, f64::min);
    let one_tolerance = tolerances.iter().all(|&t| t == tolerance);
    let regressions: Vec<String> = experiments
        .iter()
        .flat_map(|(a, _)| {
            a.regressions().map(move |c| {
                let mut line = format!("`{}` {}", a.record.experiment, figure(c));
                if !one_tolerance {
                    let _ = write!(line, " (tolerance {:.0}%)", a.tolerance * 100.0);
                }
                if let (Metric::DecodeTokS, Some(s)) = (c.metric, a.fallen()) {
                    let _ = write!(line, ", in `{}`'s contribution", s.toggle.name());
                }
                line
            })
        })
        .collect();
    let beyond = if one_tolerance {
        format!("the {:.0}% tolerance", tolerance * 100.0)
    } else {
        "their tolerance".into()
    };
    if !regressions.is_empty() {
        parts.push(format!("**Regressed** beyond {beyond}: {}.", regressions.join("; ")));
    } else {
        let better: Vec<String> = experiments
            .iter()
            .flat_map(|(a, _)| {
                a.changes
                    .iter()
                    .filter(|c| c.verdict == crate::stats::Verdict::Better)
                    .map(move |c| format!("`{}` {}", a.record.experiment, figure(c)))
            })
            .collect();
        let worse =
            experiments.iter().flat_map(|(a, _)| &a.changes).filter(|c| c.changed()).count() - better.len();
        parts.push(match (better.is_empty(), worse) {
            (true, 0) => "**No change** beyond the noise.".to_string(),
            (false, 0) => format!("**Faster**: {}.", better.join("; ")),
            (_, n) => format!(
                "**Within tolerance**: {n} figure(s) changed for the worse by less than {}{}.",
                if one_tolerance {
                    format!("{:.0}%", tolerance * 100.0)
                } else {
                    "their experiment's tolerance".into()
                },
                if better.is_empty() { String::new() } else { format!("; better: {}", better.join("; ")) }
            ),
        });
    }
    let (busy, runs) = experiments
        .iter()
        .filter_map(|(a, _)| a.page.machine.as_ref())
        .fold((0, 0), |(busy, runs), m| (busy + m.contaminated.len(), runs + m.runs));
    if busy > 0 {
        parts.push(format!(
            "**Busy machine**: {busy} of {runs} runs were flagged (below), so the intervals are wider than on a \
             quiet one."
        ));
    }
    parts.join(" ")
}

/// `decode_tok_s -12.0% [-14.1%, -10.2%]` (at a sweep point, named).
fn figure(c: &Change) -> String {
    if c.metric.is_exact() {
        return format!("{} {}{}", c.metric.name(), percent_change(1.0 / c.change.point), at_label(&c.point));
    }
    let interval = format!(" [{}, {}]", percent_change(c.change.low), percent_change(c.change.high));
    format!("{} {}{interval}{}", c.metric.name(), percent_change(c.change.point), at_label(&c.point))
}

fn table<'a>(md: &mut String, rows: impl Iterator<Item = (&'a str, &'a Change)>) {
    let _ = writeln!(md, "| experiment | metric | base | head | change [95% CI] | verdict |");
    let _ = writeln!(md, "|---|---|---:|---:|---|---|");
    for (experiment, c) in rows {
        let point = if c.point.is_empty() { String::new() } else { format!(" at {}", c.point) };
        let interval = if c.metric.is_exact() {
            // Counts: exact, no interval; the change of the head's count (the speedup is base / head).
            format!("{} (exact)", percent_change(1.0 / c.change.point))
        } else {
            format!(
                "{} [{}, {}]",
                percent_change(c.change.point),
                percent_change(c.change.low),
                percent_change(c.change.high)
            )
        };
        let _ = writeln!(
            md,
            "| `{experiment}` | {}{point} | {} | {} | {interval} | {}{} |",
            c.metric.name(),
            format_value(c.metric, c.base),
            format_value(c.metric, c.head),
            verdict_word(c.metric, c.verdict),
            if c.regressed { " **regressed**" } else { "" }
        );
    }
    md.push('\n');
}

/// The token gate's result over every experiment.
fn tokens(experiments: &[(CompareAnalysis, Vec<String>)]) -> String {
    let parts: Vec<String> = experiments
        .iter()
        .map(|(a, _)| {
            let r = a.page.results;
            if a.divergences.is_empty() {
                format!(
                    "`{}`: identical ({} variant(s) at {} point(s), {} tokens each)",
                    a.record.experiment,
                    r.points[0].variants.len(),
                    r.points.len(),
                    r.points[0].correctness.generated_tokens
                )
            } else {
                let mut line = format!("`{}`: **differ**: ", a.record.experiment);
                outputs_differ(&mut line, a);
                line
            }
        })
        .collect();
    parts.join("; ")
}
