//! The history page (`reports/NAME/history.md`) and its chart: each variant's median per commit
//! with its 95% interval, the change points found, and the command that confirms each. Renders
//! an [`History`] already analysed; computes nothing.

use super::charts::{FONT, SIZE, axis_number, categories, category_label, color, err, fonts, legend};
use super::format::{format_value, short};
use crate::analysis::changepoint::ChangePoint;
use crate::analysis::history::{History, Series};
use anyhow::Result;
use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;
use std::fmt::Write;
use std::path::Path;

/// The page, linking each series' chart ([`chart_file`], beside it); `command` regenerates it.
pub fn page(h: &History, command: &str, store: &str) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# History: `{}`, {}\n", h.experiment, h.metric.name());
    let _ = writeln!(
        md,
        "Machine: {} (fingerprint `{}`). From the results store `{store}`, by `{command}`.\n",
        h.machine, h.fingerprint
    );
    for note in &h.notes {
        let _ = writeln!(md, "- {note}.");
    }
    if !h.notes.is_empty() {
        md.push('\n');
    }
    let _ = writeln!(md, "## Change points\n");
    let _ = writeln!(
        md,
        "E-divisive means (Matteson & James, 2014) over each series' samples, split only between commits, each \
         split kept when a seeded permutation test gives p ≤ 0.01 and the medians on its two sides differ by more \
         than the noise floor.\n"
    );
    for s in &h.series {
        changes(&mut md, h, s);
    }
    md.push('\n');
    for s in &h.series {
        table(&mut md, h, s);
    }
    md
}

fn changes(md: &mut String, h: &History, s: &Series) {
    let name = &s.subject.variant;
    let floor = format!("Noise floor {:.1}%, from {}.", s.min_relative * 100.0, s.floor_source);
    if s.commits.len() < 2 {
        let _ =
            writeln!(md, "- `{name}`: {} commit(s) measured; a change needs two or more.", s.commits.len());
        return;
    }
    if s.detection.changes.is_empty() {
        let _ = writeln!(md, "- `{name}`: no change point in {} commits. {floor}", s.commits.len());
    }
    for c in &s.detection.changes {
        let (before, after) = (&s.commits[c.index - 1], &s.commits[c.index]);
        let _ = writeln!(
            md,
            "- `{name}`: {} between `{}` ({}) and `{}` ({}), p = {:.3}. {floor} Confirm: `cargo xtask compare {} {} \
             --experiment {} --toggles lattice`",
            describe(h, c),
            short(&before.commit),
            subject_line(&before.subject),
            short(&after.commit),
            subject_line(&after.subject),
            c.p_value,
            short(&before.commit),
            short(&after.commit),
            h.experiment
        );
    }
    for c in &s.detection.below_floor {
        let _ = writeln!(
            md,
            "- `{name}`: {} at `{}`, significant (p = {:.3}) but within the noise floor of {:.1}%: not called.",
            describe(h, c),
            short(&s.commits[c.index].commit),
            c.p_value,
            s.min_relative * 100.0
        );
    }
}

/// A commit's subject for a table cell: at most 72 characters, `|` escaped.
fn subject_line(subject: &str) -> String {
    let mut line: String = subject.chars().take(72).collect();
    if subject.chars().count() > 72 {
        line.push('…');
    }
    line.replace('|', "\\|")
}

/// `fell 12.3% (1,234 → 1,082 tok/s)`.
fn describe(h: &History, c: &ChangePoint) -> String {
    let better = (c.relative > 0.0) == h.metric.higher_is_better();
    format!(
        "{} {:.1}% ({} → {}, {})",
        if c.relative > 0.0 { "rose" } else { "fell" },
        c.relative.abs() * 100.0,
        format_value(h.metric, c.before),
        format_value(h.metric, c.after),
        if better { "better" } else { "worse" }
    )
}

fn table(md: &mut String, h: &History, s: &Series) {
    let at = if s.subject.point.is_empty() { String::new() } else { format!(" at `{}`", s.subject.point) };
    let _ = writeln!(md, "## `{}`{at}\n", s.subject.variant);
    let _ =
        writeln!(md, "![`{}`: {} per commit]({})\n", s.subject.variant, h.metric.name(), chart_file(h, s));
    let _ = writeln!(
        md,
        "| commit | subject | sessions | runs | median | 95% interval | bandwidth | busy runs |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|");
    for c in &s.commits {
        let _ = writeln!(
            md,
            "| `{}` | {} | {} | {} | {} | [{}, {}] | {} | {} |",
            short(&c.commit),
            subject_line(&c.subject),
            c.sessions,
            c.samples.len(),
            format_value(h.metric, c.median),
            format_value(h.metric, c.low),
            format_value(h.metric, c.high),
            c.bandwidth_gb_s.map_or("?".into(), |b| format!("{b:.1} GB/s")),
            c.busy
        );
    }
    md.push('\n');
}

/// The chart file of a series: `history-decode_tok_s-cached.svg`.
pub fn chart_file(h: &History, s: &Series) -> String {
    format!("history-{}-{}.svg", h.metric.name(), s.subject.variant)
}

/// One series over its commits (oldest left): the median, a whisker over the 95% interval, and
/// a dashed vertical line at each change point. The axis spans the data, not zero: a history is
/// read for changes of a few percent.
pub fn chart(path: &Path, h: &History, s: &Series) -> Result<()> {
    fonts();
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let commits: Vec<String> = s.commits.iter().map(|c| short(&c.commit).to_string()).collect();
    let low = s.commits.iter().map(|c| c.low).fold(f64::INFINITY, f64::min);
    let high = s.commits.iter().map(|c| c.high).fold(0.0f64, f64::max);
    let (low, high) =
        if low.is_finite() { (low * 0.95, (high * 1.05).max(low * 0.95 + 1e-9)) } else { (0.0, 1.0) };
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("{} `{}`: {} per commit", h.experiment, s.subject.variant, h.metric.name()),
            (FONT, 20),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(categories(commits.len()), low..high)
        .map_err(err)?;
    let label = category_label(&commits);
    chart
        .configure_mesh()
        .disable_x_mesh()
        .y_desc(h.metric.name())
        .x_label_formatter(&label)
        .y_label_formatter(&axis_number)
        .label_style((FONT, 11))
        .draw()
        .map_err(err)?;
    let c = color(0);
    let at = |i: usize| SegmentValue::CenterOf(i as i32);
    chart
        .draw_series(LineSeries::new(
            s.commits.iter().enumerate().map(|(i, p)| (at(i), p.median)),
            c.stroke_width(2),
        ))
        .map_err(err)?
        .label("median, 95% interval")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
    chart
        .draw_series(
            s.commits
                .iter()
                .enumerate()
                .map(|(i, p)| ErrorBar::new_vertical(at(i), p.low, p.median, p.high, c.stroke_width(2), 8)),
        )
        .map_err(err)?;
    let mark = color(3);
    for (n, change) in s.detection.changes.iter().enumerate() {
        let x = SegmentValue::Exact(change.index as i32);
        let series = chart
            .draw_series(DashedLineSeries::new([(x.clone(), low), (x, high)], 6, 4, mark.stroke_width(1)))
            .map_err(err)?;
        if n == 0 {
            series
                .label("change point")
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], mark.stroke_width(1)));
        }
    }
    legend(&mut chart, SeriesLabelPosition::LowerRight)?;
    root.present().map_err(err)?;
    Ok(())
}
