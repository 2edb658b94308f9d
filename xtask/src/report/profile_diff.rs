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
use crate::paths::MAX_COMMITTED_BYTES;
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

/// Writes the diff files of `diff` into `dir`, from the profiles it was computed from; a file
/// over the 1 MB a committed file may have goes to `large` instead, recorded in
/// `diff.elsewhere` for the page to name.
pub fn draw(diff: &mut CpuDiff, profiles: &VariantProfiles, dir: &Path, large: &Path) -> Result<()> {
    let side = |name: &str| profiles.cpu.get(name).map(Vec::as_slice).unwrap_or_default();
    let files = render_files(diff, side(&diff.reference), side(&diff.candidate))?;
    std::fs::create_dir_all(dir).at(dir)?;
    for (file, bytes) in files {
        let path = if bytes.len() as u64 > MAX_COMMITTED_BYTES {
            std::fs::create_dir_all(large).at(large)?;
            let path = large.join(&file);
            let shown = path.strip_prefix(crate::project_root()).unwrap_or(&path).display().to_string();
            diff.elsewhere.insert(file, shown);
            path
        } else {
            dir.join(&file)
        };
        std::fs::write(&path, bytes).at(&path)?;
    }
    Ok(())
}

/// The diff files' names and bytes: the differential stacks, the flame graph and its reverse.
fn render_files(
    diff: &CpuDiff,
    reference: &[Folded],
    candidate: &[Folded],
) -> Result<Vec<(String, Vec<u8>)>> {
    let lines = differential_lines(reference, candidate, &diff.changed_frames());
    let stem = stem(diff);
    let mut files = vec![(
        format!("{stem}.diff.folded"),
        lines.iter().map(|l| format!("{l}\n")).collect::<String>().into_bytes(),
    )];
    let legend = format!(
        "red: more time per op in {} than in {} (slower there); blue: less. Coloured: the frames whose own time \
         changed beyond its 95% interval over {} + {} profiles",
        diff.candidate, diff.reference, diff.profiles[1], diff.profiles[0]
    );
    let graph = |lines: &[String], widths: &str, negate: bool, file: &str| -> Result<Vec<u8>> {
        let mut options = inferno::flamegraph::Options::default();
        options.title =
            format!("{} against {}: CPU time per op (widths: {widths})", diff.candidate, diff.reference);
        options.subtitle = Some(legend.clone());
        options.count_name = "x 0.1 us per op".into();
        options.negate_differentials = negate;
        let mut svg = Vec::new();
        inferno::flamegraph::from_lines(&mut options, lines.iter().map(String::as_str), &mut svg)
            .with_context(|| format!("cannot draw {file}"))?;
        Ok(svg)
    };
    let file = format!("{stem}.diff.svg");
    files.push((file.clone(), graph(&lines, &diff.candidate, false, &file)?));
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
    let file = format!("{stem}.reverse.diff.svg");
    files.push((file.clone(), graph(&reverse, &diff.reference, true, &file)?));
    Ok(files)
}

/// `[text](folder/file)`, or where the file went when it was too large to sit beside the page.
pub fn link(diff: &CpuDiff, folder: &str, file: &str, text: &str) -> String {
    match diff.elsewhere.get(file) {
        Some(path) => format!("{text}: `{path}` (over 1 MB, not committed)"),
        None => format!("[{text}]({folder}/{file})"),
    }
}

/// Under a comparison's table: for each timed metric that changed, the three engine functions
/// whose own time per op changed the same way most, with links to the diff files.
pub fn suspects(md: &mut String, c: &Comparison, diff: &CpuDiff) {
    let stem = stem(diff);
    let _ = writeln!(
        md,
        "**Where the time went** ({} + {} CPU profiles; {}: red, more time per op in `{}`; blue, less · {} · {}).\n",
        diff.profiles[0],
        diff.profiles[1],
        link(diff, DIFFS, &format!("{stem}.diff.svg"), "differential flame graph"),
        diff.candidate,
        link(diff, DIFFS, &format!("{stem}.reverse.diff.svg"), "reverse"),
        link(diff, DIFFS, &format!("{stem}.diff.folded"), "stacks")
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
    by_direction(md, &changed, ["worse", "better"], |slower| {
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
        if names.is_empty() {
            format!(
                "no engine function's own time {} beyond its interval",
                if slower { "grew" } else { "fell" }
            )
        } else {
            names.join("; ")
        }
    });
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
    by_direction(md, &changed, ["more", "fewer"], |more| {
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
        if sites.is_empty() { "no site's blocks per op moved that way".to_string() } else { sites.join("; ") }
    });
}

/// One bullet per direction in which some of `changed` moved (worse first): the metrics that
/// moved that way, the `words` for that direction, and what `explain(worse)` lists for it.
fn by_direction(md: &mut String, changed: &[&MetricRow], words: [&str; 2], explain: impl Fn(bool) -> String) {
    for worse in [true, false] {
        let metrics: Vec<&str> = changed
            .iter()
            .filter(|r| (r.verdict == Verdict::Worse) == worse)
            .map(|r| r.metric.name())
            .collect();
        if !metrics.is_empty() {
            let word = if worse { words[0] } else { words[1] };
            let _ = writeln!(md, "- {} {word}: {}", metrics.join(", "), explain(worse));
        }
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

    fn write(files: &[(String, Vec<u8>)], dir: &Path) {
        for (file, bytes) in files {
            std::fs::write(dir.join(file), bytes).unwrap();
        }
    }

    #[test]
    fn the_frame_that_grew_is_red_and_the_reverse_agrees() {
        let reference: Vec<Folded> = [100, 98, 102].iter().map(|&a| profile(a, 1.0)).collect();
        let candidate: Vec<Folded> = [300, 296, 304].iter().map(|&a| profile(a, 2.0)).collect();
        let diff = crate::analysis::profile_diff::diff(("slow", &reference), ("fast", &candidate));
        let dir = tempfile::tempdir().unwrap();
        write(&render_files(&diff, &reference, &candidate).unwrap(), dir.path());
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
        write(&render_files(&diff, &reference, &candidate).unwrap(), again.path());
        assert_eq!(std::fs::read_to_string(again.path().join("fast-vs-slow.cpu.diff.svg")).unwrap(), svg);
    }

    #[test]
    fn a_diff_file_over_a_megabyte_goes_under_target_and_the_page_says_where() {
        // 20,000 distinct stacks: the differential stacks alone are well over 1 MB.
        let text: String = (0..20_000)
            .map(|i| format!("main;smallmind::k{i:05};smallmind::leaf_{i:05}_of_a_long_name 3\n"))
            .collect();
        let set = vec![Folded::parse(&text, 1.0).unwrap(), Folded::parse(&text, 1.0).unwrap()];
        let profiles = VariantProfiles {
            cpu: [("a".to_string(), set.clone()), ("b".to_string(), set.clone())].into(),
            ..VariantProfiles::default()
        };
        let mut diff = crate::analysis::profile_diff::diff(("a", &set), ("b", &set));
        let (dir, large) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        draw(&mut diff, &profiles, dir.path(), large.path()).unwrap();
        let folded = "b-vs-a.cpu.diff.folded";
        assert!(large.path().join(folded).is_file() && !dir.path().join(folded).exists());
        assert!(diff.elsewhere.contains_key(folded), "{:?}", diff.elsewhere);
        assert!(link(&diff, DIFFS, folded, "stacks").contains("over 1 MB, not committed"));
        let svg = "b-vs-a.cpu.diff.svg";
        assert_eq!(
            dir.path().join(svg).is_file(),
            !diff.elsewhere.contains_key(svg),
            "{svg} is in one place"
        );
    }
}
