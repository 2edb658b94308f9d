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

/// The page, linking the chart `chart` (a file name beside it); `command` regenerates it.
pub fn page(h: &History, chart: &str, command: &str, store: &str) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# History: `{}`, {}\n", h.experiment, h.metric.name());
    let _ = writeln!(
        md,
        "Machine: {} (fingerprint `{}`). From the results store `{store}`, by `{command}`.\n",
        h.machine, h.fingerprint
    );
    for note in &h.notes {
        let _ = writeln!(md, "- Left out: {note}.");
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
    let _ = writeln!(md, "\n![{} per commit]({chart})\n", h.metric.name());
    for s in &h.series {
        table(&mut md, h, s);
    }
    md
}

fn changes(md: &mut String, h: &History, s: &Series) {
    let name = &s.subject.variant;
    let floor = format!("noise floor {:.1}%, from {}", s.min_relative * 100.0, s.floor_source);
    if s.commits.len() < 2 {
        let _ =
            writeln!(md, "- `{name}`: {} commit(s) measured; a change needs two or more.", s.commits.len());
        return;
    }
    if s.detection.changes.is_empty() {
        let _ = writeln!(md, "- `{name}`: no change point ({} commits; {floor}).", s.commits.len());
    }
    for c in &s.detection.changes {
        let (before, after) = (&s.commits[c.index - 1], &s.commits[c.index]);
        let _ = writeln!(
            md,
            "- `{name}`: {} between `{}` ({}) and `{}` ({}), p = {:.3}; {floor}. Confirm: `cargo xtask compare {} {} \
             --experiment {} --toggles lattice`",
            describe(h, c),
            short(&before.commit),
            before.subject,
            short(&after.commit),
            after.subject,
            c.p_value,
            short(&before.commit),
            short(&after.commit),
            h.experiment
        );
    }
    for c in &s.detection.below_floor {
        let _ = writeln!(
            md,
            "- `{name}`: {} at `{}`, significant (p = {:.3}) but within the noise floor ({:.1}%): not called.",
            describe(h, c),
            short(&s.commits[c.index].commit),
            c.p_value,
            s.min_relative * 100.0
        );
    }
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
            c.subject.replace('|', "\\|"),
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

/// One line per variant over the commits (oldest left): the median, a whisker over the 95%
/// interval, and a dashed vertical line at each change point.
pub fn chart(path: &Path, h: &History) -> Result<()> {
    fonts();
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    // Every series' commits, in the order of the longest (all come from one git order).
    let longest = h.series.iter().max_by_key(|s| s.commits.len());
    let commits: Vec<String> =
        longest.map_or(Vec::new(), |s| s.commits.iter().map(|c| short(&c.commit).to_string()).collect());
    let max = h.series.iter().flat_map(|s| s.commits.iter().map(|c| c.high)).fold(0.0f64, f64::max);
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("{}: {} per commit", h.experiment, h.metric.name()), (FONT, 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(categories(commits.len()), 0.0..(max * 1.15).max(1e-9))
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
    let at = |commit: &str| commits.iter().position(|c| c == short(commit)).unwrap_or(0) as i32;
    for (i, s) in h.series.iter().enumerate() {
        let c = color(i);
        let points: Vec<(i32, f64, f64, f64)> =
            s.commits.iter().map(|p| (at(&p.commit), p.low, p.median, p.high)).collect();
        chart
            .draw_series(LineSeries::new(
                points.iter().map(|p| (SegmentValue::CenterOf(p.0), p.2)),
                c.stroke_width(2),
            ))
            .map_err(err)?
            .label(s.subject.variant.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
        chart
            .draw_series(points.iter().map(|p| {
                ErrorBar::new_vertical(SegmentValue::CenterOf(p.0), p.1, p.2, p.3, c.stroke_width(2), 8)
            }))
            .map_err(err)?;
        for change in &s.detection.changes {
            let x = SegmentValue::Exact(at(&s.commits[change.index].commit));
            chart
                .draw_series(DashedLineSeries::new(
                    [(x.clone(), 0.0), (x, max * 1.1)],
                    6,
                    4,
                    c.stroke_width(1),
                ))
                .map_err(err)?;
        }
    }
    legend(&mut chart, SeriesLabelPosition::LowerRight)?;
    root.present().map_err(err)?;
    Ok(())
}
