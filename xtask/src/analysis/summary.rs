//! Descriptive figures of a run, per variant: spread over runs, roofline fractions, time per
//! phase, and the series the charts draw. Medians and quantiles only; no comparison.

use crate::metrics::Metric;
use crate::plan::SweepPoint;
use crate::results::{ExperimentResults, PointResults, VariantResults};
use crate::stats::median;
use smallmind::bench::stats::Stat;

/// A variant's name and one value per category.
pub type Series = (String, Vec<f64>);

/// Every descriptive figure of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Per point, variant and timed metric (decode tok/s, TTFT), in that order.
    pub spread: Vec<SpreadRow>,
    /// Per point and variant with probe readings.
    pub roofline: Vec<RooflineRow>,
    /// The last point's phase table, when its runs had a phase pass.
    pub phases: Option<PhaseTable>,
}

/// Median, p10, p90 and MAD of one metric over a variant's runs.
#[derive(Debug, Clone, PartialEq)]
pub struct SpreadRow {
    pub point: String,
    pub variant: String,
    pub metric: Metric,
    pub stat: Stat,
}

/// Decode's fraction of the bandwidth roofline and prefill's of the FMA peak (medians over runs,
/// each with its own probe readings).
#[derive(Debug, Clone, PartialEq)]
pub struct RooflineRow {
    pub point: String,
    pub variant: String,
    /// `None` when no run decoded (one new token per op: a prefill experiment).
    pub decode_tok_s: Option<f64>,
    pub decode_bytes_per_token: f64,
    pub decode_fraction: Option<f64>,
    /// `memory` or `LLC`: which bandwidth bounds decode.
    pub decode_bandwidth: String,
    pub prefill_flop_per_token: f64,
    pub prefill_fraction: Option<f64>,
}

/// Milliseconds per op in each phase, median over runs, per variant with a phase pass.
#[derive(Debug, Clone, PartialEq)]
pub struct PhaseTable {
    pub point: SweepPoint,
    pub names: Vec<String>,
    /// Variant name, its median per phase (`None`: no run reported the phase), and its median
    /// attention share of the forward pass.
    pub variants: Vec<(String, Vec<Option<f64>>, f64)>,
}

impl Summary {
    /// The figures of `r`.
    pub fn of(r: &ExperimentResults) -> Summary {
        let spread = r
            .points
            .iter()
            .flat_map(|p| p.variants.iter().map(move |v| (p, v)))
            .flat_map(|(p, v)| {
                [Metric::DecodeTokS, Metric::TtftMs].into_iter().filter_map(move |metric| {
                    Some(SpreadRow {
                        point: p.point.label.clone(),
                        variant: v.name.clone(),
                        metric,
                        stat: Stat::of(&v.values(metric))?,
                    })
                })
            })
            .collect();
        let roofline = r
            .points
            .iter()
            .flat_map(|p| p.variants.iter().map(move |v| (p, v)))
            .filter_map(|(p, v)| roofline(p, v))
            .collect();
        Summary { spread, roofline, phases: r.points.last().and_then(phases) }
    }
}

fn roofline(p: &PointResults, v: &VariantResults) -> Option<RooflineRow> {
    let roofs: Vec<_> = v.runs.iter().filter_map(|run| run.machine.as_ref().map(|m| &m.roofline)).collect();
    let first = roofs.first()?;
    let fraction = |f: fn(&smallmind::bench::machine::Roofline) -> Option<f64>| {
        let xs: Vec<f64> = roofs.iter().filter_map(|r| f(r)).collect();
        (!xs.is_empty()).then(|| median(&xs))
    };
    Some(RooflineRow {
        point: p.point.label.clone(),
        variant: v.name.clone(),
        decode_tok_s: Some(v.values(Metric::DecodeTokS)).filter(|xs| !xs.is_empty()).map(|xs| median(&xs)),
        decode_bytes_per_token: first.decode_bytes_per_token,
        decode_fraction: fraction(|r| r.decode_fraction_of_bandwidth),
        decode_bandwidth: first.decode_bandwidth.to_string(),
        prefill_flop_per_token: first.prefill_flop_per_token,
        prefill_fraction: fraction(|r| r.prefill_fraction_of_fma_peak),
    })
}

/// Phases are matched by name: every run of the engine reports the same ones, a damaged results
/// file need not.
fn phases(p: &PointResults) -> Option<PhaseTable> {
    let first = p.variants.iter().flat_map(|v| &v.runs).find_map(|r| r.phases.as_ref())?;
    let names: Vec<String> = first.phases.iter().map(|ph| ph.name.clone()).collect();
    let variants = p
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
            let shares: Vec<f64> = reports.iter().map(|ph| ph.attention_share_of_forward).collect();
            Some((v.name.clone(), medians, median(&shares)))
        })
        .collect();
    Some(PhaseTable { point: p.point.clone(), names, variants })
}

/// Each variant's values of `metric` at `p`.
pub fn spread_series(p: &PointResults, metric: Metric) -> Vec<(String, Vec<f64>)> {
    p.variants.iter().map(|v| (v.name.clone(), v.values(metric))).collect()
}

/// Each variant's median inter-token latency at each position, over every measured op of every
/// run.
pub fn latency_series(p: &PointResults) -> Vec<(String, Vec<f64>)> {
    p.variants.iter().map(|v| (v.name.clone(), latency_by_position(v))).collect()
}

fn latency_by_position(v: &VariantResults) -> Vec<f64> {
    let ops: Vec<&Vec<f64>> =
        v.runs.iter().flat_map(|r| r.iterations.iter().map(|i| &i.inter_token_ms)).collect();
    let longest = ops.iter().map(|o| o.len()).max().unwrap_or(0);
    (0..longest).map(|k| median(&ops.iter().filter_map(|o| o.get(k).copied()).collect::<Vec<_>>())).collect()
}

/// Phase names (sampling excluded: it is outside the forward pass) and each variant's medians,
/// for the stacked chart.
pub fn phase_series(p: &PointResults) -> Option<(Vec<String>, Vec<Series>)> {
    let first = p.variants.iter().flat_map(|v| &v.runs).find_map(|r| r.phases.as_ref())?;
    let names: Vec<String> =
        first.phases.iter().map(|ph| ph.name.clone()).filter(|n| n != "sampling").collect();
    let items = p
        .variants
        .iter()
        .map(|v| {
            let medians = names
                .iter()
                .map(|name| {
                    let xs: Vec<f64> = v
                        .runs
                        .iter()
                        .filter_map(|r| r.phases.as_ref())
                        .filter_map(|ph| ph.phases.iter().find(|x| &x.name == name).map(|x| x.ms_per_op))
                        .collect();
                    if xs.is_empty() { 0.0 } else { median(&xs) }
                })
                .collect();
            (v.name.clone(), medians)
        })
        .collect();
    Some((names, items))
}

/// Each variant (by the first point's) with its values of `metric` at every point.
pub fn sweep_series(r: &ExperimentResults, metric: Metric) -> Vec<(String, Vec<Vec<f64>>)> {
    r.points[0]
        .variants
        .iter()
        .map(|v| {
            let per_point = r
                .points
                .iter()
                .map(|p| p.variant(&v.name).map(|x| x.values(metric)).unwrap_or_default())
                .collect();
            (v.name.clone(), per_point)
        })
        .collect()
}
