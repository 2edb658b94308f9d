//! The profile diffs beside a report (`diffs/`): for each comparison with CPU profiles on both
//! sides, a differential flame graph drawn by inferno (widths: the candidate's time per op; red:
//! more time per op in the candidate, blue: less; only frames whose own time changed are
//! coloured), the reverse one (widths: the reference's), and their differential collapsed
//! stacks; and the report's lines that name, under each metric that changed, the frames that
//! changed in the same direction.

use super::format::{format_value, two};
use crate::analysis::heap_diff::HeapDiff;
use crate::analysis::profile_diff::{CpuDiff, Folded, VariantProfiles, differential_lines};
use crate::analysis::span_diff::SpanChange;
use crate::analysis::{Comparison, MetricRow};
use crate::error::PathContext;
use crate::metrics::Metric;
use crate::stats::Verdict;
use anyhow::{Context, Result};
use std::fmt::Write;
use std::path::Path;

/// The folder of the diff files in a report.
pub const DIFFS: &str = "diffs";

/// The base name of a comparison's diff files: `CANDIDATE-vs-REFERENCE.cpu`.
pub fn stem(diff: &CpuDiff) -> String {
    format!("{}-vs-{}.cpu", diff.candidate, diff.reference)
}

/// Writes the diff files of `diff` into `dir`, from the profiles it was computed from.
pub fn draw(diff: &CpuDiff, profiles: &VariantProfiles, dir: &Path) -> Result<()> {
    let side = |name: &str| profiles.cpu.get(name).map(Vec::as_slice).unwrap_or_default();
    draw_from(diff, side(&diff.reference), side(&diff.candidate), dir)
}

fn draw_from(diff: &CpuDiff, reference: &[Folded], candidate: &[Folded], dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).at(dir)?;
    let lines = differential_lines(reference, candidate, &diff.changed_frames());
    let stem = stem(diff);
    let folded = dir.join(format!("{stem}.diff.folded"));
    std::fs::write(&folded, lines.iter().map(|l| format!("{l}\n")).collect::<String>()).at(&folded)?;
    let legend = format!(
        "red: more time per op in {} than in {} (slower there); blue: less. Coloured: the frames whose own time \
         changed beyond its 95% interval over {} + {} profiles",
        diff.candidate, diff.reference, diff.profiles[1], diff.profiles[0]
    );
    let graph = |lines: &[String], widths: &str, negate: bool, file: &str| -> Result<()> {
        let mut options = inferno::flamegraph::Options::default();
        options.title =
            format!("{} against {}: CPU time per op (widths: {widths})", diff.candidate, diff.reference);
        options.subtitle = Some(legend.clone());
        options.count_name = "x 0.1 us per op".into();
        options.negate_differentials = negate;
        let mut svg = Vec::new();
        inferno::flamegraph::from_lines(&mut options, lines.iter().map(String::as_str), &mut svg)
            .with_context(|| format!("cannot draw {file}"))?;
        let path = dir.join(file);
        std::fs::write(&path, svg).at(&path)?;
        Ok(())
    };
    graph(&lines, &diff.candidate, false, &format!("{stem}.diff.svg"))?;
    // The reverse: the reference's widths, the same colours (its counts first, then negated).
    let mut reverse: Vec<String> = lines
        .iter()
        .filter_map(|l| {
            let (rest, after) = l.rsplit_once(' ')?;
            let (stack, before) = rest.rsplit_once(' ')?;
            Some(format!("{stack} {after} {before}"))
        })
        .collect();
    reverse.sort();
    graph(&reverse, &diff.reference, true, &format!("{stem}.reverse.diff.svg"))
}

/// Under a comparison's table: for each timed metric that changed, the three engine functions
/// whose own time per op changed the same way most, with links to the diff files.
pub fn suspects(md: &mut String, c: &Comparison, diff: &CpuDiff) {
    let stem = stem(diff);
    let _ = writeln!(
        md,
        "**Where the time went** ({} + {} CPU profiles; [differential flame graph]({DIFFS}/{stem}.diff.svg): red, more \
         time per op in `{}`; blue, less · [reverse]({DIFFS}/{stem}.reverse.diff.svg) · [stacks]({DIFFS}/{stem}.diff.folded)).\n",
        diff.profiles[0], diff.profiles[1], diff.candidate
    );
    if diff.profiles.iter().any(|&n| n < 2) {
        let _ =
            writeln!(md, "One profile on a side: no frame is judged (`[profiles] repeats` of 2 or more).\n");
        return;
    }
    let changed: Vec<&MetricRow> = c
        .rows
        .iter()
        .filter(|r| !r.metric.is_exact() && matches!(r.verdict, Verdict::Better | Verdict::Worse))
        .collect();
    if changed.is_empty() {
        let n = diff.changed_frames().len();
        let _ = writeln!(
            md,
            "No timed metric changed beyond the noise floor; {n} engine function(s) changed their own time per op \
             (the flame graph colours them).\n"
        );
        return;
    }
    // Metrics that moved the same way share one list: the profile covers whole ops.
    for slower in [true, false] {
        let metrics: Vec<&str> = changed
            .iter()
            .filter(|r| (r.verdict == Verdict::Worse) == slower)
            .map(|r| r.metric.name())
            .collect();
        if metrics.is_empty() {
            continue;
        }
        let names: Vec<String> = diff
            .changed_own(slower)
            .take(3)
            .map(|f| {
                let d = f.own.difference.expect("changed frames have an interval");
                format!(
                    "`{}` {:+.3} ms/op (share of samples {}% → {}%, {:+.1} points [{:+.1}, {:+.1}])",
                    f.frame,
                    f.own.ms_change(),
                    two(f.own.reference * 100.0),
                    two(f.own.candidate * 100.0),
                    d.point * 100.0,
                    d.low * 100.0,
                    d.high * 100.0
                )
            })
            .collect();
        let _ = writeln!(
            md,
            "- {} {}: {}",
            metrics.join(", "),
            if slower { "worse" } else { "better" },
            if names.is_empty() {
                format!(
                    "no engine function's own time {} beyond its interval",
                    if slower { "grew" } else { "fell" }
                )
            } else {
                names.join("; ")
            }
        );
    }
    md.push('\n');
}

/// Under a comparison's table: for each allocation count that changed, the three allocation
/// sites (innermost engine functions) whose blocks per op changed the same way most.
pub fn heap_suspects(md: &mut String, c: &Comparison, diff: &HeapDiff, tokens: usize) {
    let _ = writeln!(
        md,
        "**Where the allocations went** (the dhat heap profiles of `{}` and `{}`, listed under Profiles; counts are \
         exact).\n",
        diff.candidate, diff.reference
    );
    let changed: Vec<&MetricRow> = c
        .rows
        .iter()
        .filter(|r| {
            matches!(r.metric, Metric::AllocCountPerOp | Metric::AllocBytesPerOp)
                && matches!(r.verdict, Verdict::Better | Verdict::Worse)
        })
        .collect();
    if changed.is_empty() {
        let _ = writeln!(
            md,
            "No allocation count changed; {} allocation site(s) differ (their blocks or bytes per op).\n",
            diff.changed.len()
        );
        return;
    }
    let per_token = |x: f64| if tokens > 0 { two(x / tokens as f64) } else { "?".into() };
    for more in [true, false] {
        let metrics: Vec<&str> = changed
            .iter()
            .filter(|r| (r.verdict == Verdict::Worse) == more)
            .map(|r| r.metric.name())
            .collect();
        if metrics.is_empty() {
            continue;
        }
        let sites: Vec<String> = diff
            .blocks_changed(more)
            .into_iter()
            .take(3)
            .map(|s| {
                format!(
                    "`{}` {} → {} blocks per op ({} → {} per token; {} → {} per op; live at the peak {} → {})",
                    s.site,
                    two(s.blocks[0]),
                    two(s.blocks[1]),
                    per_token(s.blocks[0]),
                    per_token(s.blocks[1]),
                    format_value(Metric::AllocBytesPerOp, s.bytes[0]),
                    format_value(Metric::AllocBytesPerOp, s.bytes[1]),
                    format_value(Metric::PeakHeapBytes, s.peak_bytes[0] as f64),
                    format_value(Metric::PeakHeapBytes, s.peak_bytes[1] as f64)
                )
            })
            .collect();
        let _ = writeln!(
            md,
            "- {} {}: {}",
            metrics.join(", "),
            if more { "more" } else { "fewer" },
            if sites.is_empty() {
                "no site's blocks per op moved that way".to_string()
            } else {
                sites.join("; ")
            }
        );
    }
    md.push('\n');
}

/// Under a comparison's table: the phases (engine spans) whose time changed beyond the noise
/// floor, paired over the rounds' phase passes, slowest change first.
pub fn spans(md: &mut String, c: &Comparison) {
    if c.spans.is_empty() {
        return;
    }
    let mut changed: Vec<&SpanChange> = c.spans.iter().filter(|s| s.verdict != Verdict::NoChange).collect();
    if changed.is_empty() {
        let _ = writeln!(
            md,
            "**Phases.** None of the {} phases the spans time changed beyond the noise floor.\n",
            c.spans.len()
        );
        return;
    }
    changed.sort_by(|a, b| a.speedup.point.total_cmp(&b.speedup.point));
    let parts: Vec<String> = changed
        .iter()
        .map(|s| {
            format!(
                "`{}` {} → {} ms per token, {}x [{}, {}] ({})",
                s.name,
                three(s.ms_per_token[0]),
                three(s.ms_per_token[1]),
                two(s.speedup.point),
                two(s.speedup.low),
                two(s.speedup.high),
                if s.verdict == Verdict::Better { "faster" } else { "slower" }
            )
        })
        .collect();
    let _ = writeln!(
        md,
        "**Phases that changed** (span timing in each run's phase pass, paired over rounds; slowest first): {}.\n",
        parts.join("; ")
    );
}

/// Three significant decimals for small times.
fn three(x: f64) -> String {
    if x >= 1.0 { format!("{x:.2}") } else { format!("{x:.4}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(a: u64, ms: f64) -> Folded {
        Folded::parse(&format!("main;smallmind::a {a}\nmain;smallmind::b 100\n"), ms).unwrap()
    }

    /// The rect after a frame's title in inferno's SVG: its fill's red and blue.
    fn fill(svg: &str, frame: &str) -> (u8, u8) {
        let at = svg.find(&format!("<title>{frame} (")).unwrap_or_else(|| panic!("{frame} drawn"));
        let rgb = &svg[at..];
        let rgb = &rgb[rgb.find("fill=\"rgb(").unwrap() + 10..];
        let parts: Vec<u8> = rgb[..rgb.find(')').unwrap()].split(',').map(|x| x.parse().unwrap()).collect();
        (parts[0], parts[2])
    }

    #[test]
    fn the_frame_that_grew_is_red_and_the_reverse_agrees() {
        let reference: Vec<Folded> = [100, 98, 102].iter().map(|&a| profile(a, 1.0)).collect();
        let candidate: Vec<Folded> = [300, 296, 304].iter().map(|&a| profile(a, 2.0)).collect();
        let diff = crate::analysis::profile_diff::diff(("slow", &reference), ("fast", &candidate));
        let dir = tempfile::tempdir().unwrap();
        draw_from(&diff, &reference, &candidate, dir.path()).unwrap();
        let read = |f: &str| std::fs::read_to_string(dir.path().join(f)).unwrap();
        let (svg, reverse) = (read("fast-vs-slow.cpu.diff.svg"), read("fast-vs-slow.cpu.reverse.diff.svg"));
        // `a` takes more time per op in the candidate: red in both graphs (more red than blue).
        let (r, b) = fill(&svg, "smallmind::a");
        assert!(r > b, "red: {r} {b}");
        let (r, b) = fill(&reverse, "smallmind::a");
        assert!(r > b, "the reverse keeps the colours: {r} {b}");
        assert!(svg.contains("red: more time per op in fast than in slow"));
        // Drawn twice, the same bytes (committed diffs re-render byte for byte).
        let again = tempfile::tempdir().unwrap();
        draw_from(&diff, &reference, &candidate, again.path()).unwrap();
        assert_eq!(std::fs::read_to_string(again.path().join("fast-vs-slow.cpu.diff.svg")).unwrap(), svg);
    }
}
