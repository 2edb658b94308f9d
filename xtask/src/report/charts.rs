//! SVG charts for reports, drawn with plotters. Text is measured with the bundled DejaVu Sans
//! (the `dejavu` crate), so no system font or package is needed. Each function draws one chart
//! from samples already extracted from a results file; none computes a comparison.

use anyhow::{Result, anyhow};
use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;
use plotters::style::FontStyle;
use smallmind::bench::stats::Stat;
use std::path::Path;
use std::sync::OnceLock;

pub(super) const FONT: &str = "sans-serif";
pub(super) const SIZE: (u32, u32) = (760, 420);

/// Registers the bundled font once per process.
pub(super) fn fonts() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular())
            .unwrap_or_else(|_| panic!("the bundled DejaVu font is valid"));
        plotters::style::register_font(FONT, FontStyle::Bold, dejavu::sans::bold())
            .unwrap_or_else(|_| panic!("the bundled DejaVu font is valid"));
    });
}

pub(super) fn err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("chart: {e}")
}

pub(super) fn color(i: usize) -> RGBColor {
    const COLORS: [RGBColor; 8] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
    ];
    COLORS[i % COLORS.len()]
}

/// One segment per category (`into_segmented` on `0..n` would make n + 1).
pub(super) fn categories(
    n: usize,
) -> plotters::coord::ranged1d::SegmentedCoord<plotters::coord::types::RangedCoordi32> {
    (0..(n.max(1) as i32 - 1)).into_segmented()
}

/// Axis numbers without noise: `25000`, `12.5`, `0.150`.
pub(super) fn axis_number(v: &f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

pub(super) fn category_label(names: &[String]) -> impl Fn(&SegmentValue<i32>) -> String + '_ {
    move |v| match v {
        SegmentValue::CenterOf(i) => names.get(*i as usize).cloned().unwrap_or_default(),
        _ => String::new(),
    }
}

/// One bar per variant at its median, a p10-p90 whisker, and a dot per run.
pub fn spread(path: &Path, title: &str, unit: &str, items: &[(String, Vec<f64>)]) -> Result<()> {
    fonts();
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let max = items.iter().flat_map(|(_, v)| v.iter().copied()).fold(0.0f64, f64::max);
    let names: Vec<String> = items.iter().map(|(n, _)| n.clone()).collect();
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FONT, 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(80)
        .build_cartesian_2d(categories(items.len()), 0.0..(max * 1.15).max(1e-9))
        .map_err(err)?;
    let label = category_label(&names);
    chart
        .configure_mesh()
        .disable_x_mesh()
        .y_desc(unit)
        .x_label_formatter(&label)
        .y_label_formatter(&axis_number)
        .label_style((FONT, 13))
        .draw()
        .map_err(err)?;
    for (i, (_, values)) in items.iter().enumerate() {
        let Some(s) = Stat::of(values) else { continue };
        let c = color(i);
        let x = i as i32;
        let mut bar = Rectangle::new(
            [(SegmentValue::Exact(x), 0.0), (SegmentValue::Exact(x + 1), s.median)],
            c.mix(0.35).filled(),
        );
        bar.set_margin(0, 0, 30, 30);
        chart.draw_series(std::iter::once(bar)).map_err(err)?;
        let whisker =
            ErrorBar::new_vertical(SegmentValue::CenterOf(x), s.p10, s.median, s.p90, c.stroke_width(2), 16);
        chart.draw_series(std::iter::once(whisker)).map_err(err)?;
        chart
            .draw_series(values.iter().map(|&v| Circle::new((SegmentValue::CenterOf(x), v), 3, c.filled())))
            .map_err(err)?;
    }
    root.present().map_err(err)?;
    Ok(())
}

/// One line per variant: the median latency of each token against its position.
pub fn latency_by_position(path: &Path, title: &str, items: &[(String, Vec<f64>)]) -> Result<()> {
    fonts();
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let longest = items.iter().map(|(_, v)| v.len()).max().unwrap_or(0).max(1);
    let max = items.iter().flat_map(|(_, v)| v.iter().copied()).fold(0.0f64, f64::max);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FONT, 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(2usize..longest + 1, 0.0..(max * 1.1).max(1e-9))
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("generated token (position)")
        .y_desc("ms since the previous token (median)")
        .y_label_formatter(&axis_number)
        .label_style((FONT, 13))
        .draw()
        .map_err(err)?;
    for (i, (name, values)) in items.iter().enumerate() {
        let c = color(i);
        // Entry k is the gap that ends at token k + 2 (token 1 ends the TTFT).
        chart
            .draw_series(LineSeries::new(
                values.iter().enumerate().map(|(k, &v)| (k + 2, v)),
                c.stroke_width(2),
            ))
            .map_err(err)?
            .label(name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
    }
    legend(&mut chart, SeriesLabelPosition::UpperRight)?;
    root.present().map_err(err)?;
    Ok(())
}

/// One stacked bar per variant: the median time per op of each phase.
pub fn phases_stacked(
    path: &Path,
    title: &str,
    phases: &[String],
    items: &[(String, Vec<f64>)],
) -> Result<()> {
    fonts();
    let root = SVGBackend::new(path, (SIZE.0, SIZE.1 + 40)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let (root, legend_area) = root.split_horizontally(SIZE.0 - 170);
    let max = items.iter().map(|(_, v)| v.iter().sum::<f64>()).fold(0.0f64, f64::max);
    let names: Vec<String> = items.iter().map(|(n, _)| n.clone()).collect();
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FONT, 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(80)
        .build_cartesian_2d(categories(items.len()), 0.0..(max * 1.05).max(1e-9))
        .map_err(err)?;
    let label = category_label(&names);
    chart
        .configure_mesh()
        .disable_x_mesh()
        .y_desc("ms per op")
        .x_label_formatter(&label)
        .y_label_formatter(&axis_number)
        .label_style((FONT, 13))
        .draw()
        .map_err(err)?;
    for (p, phase) in phases.iter().enumerate() {
        let c = color(p + 1);
        let bars: Vec<Rectangle<(SegmentValue<i32>, f64)>> = items
            .iter()
            .enumerate()
            .map(|(i, (_, values))| {
                let below: f64 = values[..p].iter().sum();
                let x = i as i32;
                let mut bar = Rectangle::new(
                    [(SegmentValue::Exact(x), below), (SegmentValue::Exact(x + 1), below + values[p])],
                    c.filled(),
                );
                bar.set_margin(0, 0, 40, 40);
                bar
            })
            .collect();
        chart.draw_series(bars).map_err(err)?;
        // The legend lists phases top-down in the order they stack bottom-up.
        let y = 40 + 22 * (phases.len() - 1 - p) as i32;
        legend_area.draw(&Rectangle::new([(8, y), (22, y + 14)], c.filled())).map_err(err)?;
        legend_area.draw(&Text::new(phase.clone(), (28, y), (FONT, 13))).map_err(err)?;
    }
    root.present().map_err(err)?;
    Ok(())
}

/// A metric against the sweep's points, one line per variant, with p10-p90 whiskers.
pub fn sweep(
    path: &Path,
    title: &str,
    unit: &str,
    points: &[String],
    items: &[(String, Vec<Vec<f64>>)],
) -> Result<()> {
    fonts();
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let max =
        items.iter().flat_map(|(_, per_point)| per_point.iter().flatten().copied()).fold(0.0f64, f64::max);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FONT, 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(categories(points.len()), 0.0..(max * 1.15).max(1e-9))
        .map_err(err)?;
    let label = category_label(points);
    chart
        .configure_mesh()
        .disable_x_mesh()
        .y_desc(unit)
        .x_label_formatter(&label)
        .y_label_formatter(&axis_number)
        .label_style((FONT, 12))
        .draw()
        .map_err(err)?;
    for (i, (name, per_point)) in items.iter().enumerate() {
        let c = color(i);
        let stats: Vec<(i32, Stat)> =
            per_point.iter().enumerate().filter_map(|(p, v)| Stat::of(v).map(|s| (p as i32, s))).collect();
        chart
            .draw_series(LineSeries::new(
                stats.iter().map(|(p, s)| (SegmentValue::CenterOf(*p), s.median)),
                c.stroke_width(2),
            ))
            .map_err(err)?
            .label(name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
        chart
            .draw_series(stats.iter().map(|(p, s)| {
                ErrorBar::new_vertical(
                    SegmentValue::CenterOf(*p),
                    s.p10,
                    s.median,
                    s.p90,
                    c.stroke_width(2),
                    10,
                )
            }))
            .map_err(err)?;
    }
    legend(&mut chart, SeriesLabelPosition::UpperRight)?;
    root.present().map_err(err)?;
    Ok(())
}

pub(super) fn legend<'a, DB: DrawingBackend + 'a, CT: plotters::coord::CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .label_font((FONT, 13))
        .draw()
        .map_err(err)?;
    Ok(())
}

/// Per optimization, its decode speedup added alone (to all off) and removed alone (from all
/// on), with 95% interval whiskers and a line at 1 (no effect).
pub fn effects(path: &Path, title: &str, effects: &[crate::analysis::bisect::Effect]) -> Result<()> {
    use crate::metrics::Metric;
    fonts();
    let rows: Vec<&crate::analysis::bisect::Effect> =
        effects.iter().filter(|e| e.metric == Metric::DecodeTokS).collect();
    let names: Vec<String> = rows.iter().map(|e| e.toggle.name().to_string()).collect();
    let points: Vec<f64> =
        rows.iter().flat_map(|e| [e.added_alone, e.removed_alone]).flatten().map(|s| s.point).collect();
    let max = points.iter().copied().fold(1.0f64, f64::max) * 1.3;
    let min = points.iter().copied().fold(1.0f64, f64::min) / 1.3;
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    // A log scale, bars from 1x: a 2x gain and a 2x loss look the same size.
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FONT, 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(80)
        .build_cartesian_2d(categories(rows.len()), (min..max).log_scale())
        .map_err(err)?;
    let label = category_label(&names);
    chart
        .configure_mesh()
        .disable_x_mesh()
        .y_desc("decode speedup (x, log scale)")
        .x_label_formatter(&label)
        .y_label_formatter(&axis_number)
        .label_style((FONT, 13))
        .draw()
        .map_err(err)?;
    for (k, (what, pick)) in
        [("added alone (vs all off)", 0usize), ("removed alone (vs all on)", 1usize)].into_iter().enumerate()
    {
        let c = color(k);
        let bars: Vec<Rectangle<(SegmentValue<i32>, f64)>> = rows
            .iter()
            .enumerate()
            .filter_map(|(i, e)| {
                let s = if pick == 0 { e.added_alone } else { e.removed_alone }?;
                let x = i as i32;
                let mut bar = Rectangle::new(
                    [(SegmentValue::Exact(x), 0.0), (SegmentValue::Exact(x + 1), s.point)],
                    c.mix(0.6).filled(),
                );
                // Two bars side by side in each category.
                if k == 0 {
                    bar.set_margin(0, 0, 20, 90)
                } else {
                    bar.set_margin(0, 0, 90, 20)
                };
                Some(bar)
            })
            .collect();
        chart
            .draw_series(bars)
            .map_err(err)?
            .label(what)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], c.mix(0.6).filled()));
    }
    // The intervals are in the table beside the chart; the line marks "no effect".
    chart
        .draw_series(LineSeries::new(
            [(SegmentValue::Exact(0), 1.0), (SegmentValue::Exact(rows.len() as i32), 1.0)],
            BLACK.stroke_width(1),
        ))
        .map_err(err)?;
    legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
    root.present().map_err(err)?;
    Ok(())
}
