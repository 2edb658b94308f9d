//! Which charts a report has, and their captions: drawn with [`super::charts`] from the series
//! in [`crate::analysis::summary`], into the folder being published.

use super::ChartRef;
use super::charts;
use crate::analysis::summary::{latency_series, phase_series, spread_series, sweep_series};
use crate::metrics::Metric;
use crate::paths::report::{
    ALLOCATIONS_CHART, LATENCY_CHART, PHASES_CHART, THROUGHPUT_CHART, TTFT_CHART, sweep_chart,
};
use crate::plan::at;
use crate::results::ExperimentResults;
use anyhow::Result;
use std::path::Path;

/// Draws every chart of `r`'s report into `dir`; gives them in the order the report shows them.
pub fn draw(r: &ExperimentResults, dir: &Path) -> Result<Vec<ChartRef>> {
    let mut charts = Vec::new();
    let last = r.points.last().expect("at least one point");
    let where_ = at(&last.point);
    let mut add = |file: &str, caption: String| charts.push(ChartRef { file: file.into(), caption });
    charts::spread(
        &dir.join(THROUGHPUT_CHART),
        &format!("Decode throughput{where_}"),
        "tok/s",
        &spread_series(last, Metric::DecodeTokS),
    )?;
    add(
        THROUGHPUT_CHART,
        format!("Decode throughput per variant{where_}: median bar, p10-p90 whisker, one dot per run"),
    );
    charts::spread(
        &dir.join(TTFT_CHART),
        &format!("Time to first token{where_}"),
        "ms",
        &spread_series(last, Metric::TtftMs),
    )?;
    add(TTFT_CHART, format!("Time to first token per variant{where_}"));
    charts::latency_by_position(
        &dir.join(LATENCY_CHART),
        &format!("Latency per token{where_}"),
        &latency_series(last),
    )?;
    add(
        LATENCY_CHART,
        format!("Latency of each generated token against its position{where_} (median over runs)"),
    );
    if let Some((names, items)) = phase_series(last) {
        charts::phases_stacked(&dir.join(PHASES_CHART), &format!("Time per phase{where_}"), &names, &items)?;
        add(PHASES_CHART, format!("Time per phase per op{where_}, from the spans (median over runs)"));
    }
    charts::spread(
        &dir.join(ALLOCATIONS_CHART),
        &format!("Heap allocations per op{where_}"),
        "allocations",
        &spread_series(last, Metric::AllocCountPerOp),
    )?;
    add(
        ALLOCATIONS_CHART,
        format!("Heap allocations per op{where_} (counted: every run gives the same number)"),
    );
    if r.points.len() > 1 {
        let labels: Vec<String> = r.points.iter().map(|p| p.point.label.clone()).collect();
        for (metric, unit) in [(Metric::DecodeTokS, "tok/s"), (Metric::TtftMs, "ms")] {
            let file = sweep_chart(metric.name());
            charts::sweep(
                &dir.join(&file),
                &format!("{} across the sweep", metric.name()),
                unit,
                &labels,
                &sweep_series(r, metric),
            )?;
            add(
                &file,
                format!(
                    "`{}` at each point of the sweep, one line per variant (median, p10-p90)",
                    metric.name()
                ),
            );
        }
    }
    Ok(charts)
}
