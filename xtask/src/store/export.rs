//! The store's samples written out: CSV and JSON (one row per sample, every identifying column),
//! and Bencher's metric format (BMF JSON) for one session, for a team that pushes results from many
//! CI runners to a self-hosted Bencher server instead of a server of our own.
//!
//! BMF, as documented at <https://bencher.dev/docs/reference/bencher-metric-format/>: an object
//! whose keys are benchmark names, each an object whose keys are measure slugs, each an object with
//! a number `value` and optional `lower_value` and `upper_value`. Bencher creates a measure it does
//! not know by its slug (at most 64 characters).

use super::query::SampleRow;
use crate::stats::median_interval;
use std::collections::BTreeMap;
use std::fmt::Write;

/// The columns of the CSV export, in order.
pub const CSV_COLUMNS: &[&str] = &[
    "session",
    "task",
    "experiment",
    "finished",
    "fingerprint",
    "machine",
    "features",
    "commit",
    "dirty",
    "point",
    "variant",
    "reference",
    "toggles",
    "workload",
    "digest",
    "round",
    "position",
    "bandwidth_gb_s",
    "busy",
    "metric",
    "pass",
    "value",
];

/// RFC 4180 CSV with a header line.
pub fn csv(rows: &[SampleRow]) -> String {
    let mut out = CSV_COLUMNS.join(",") + "\n";
    for r in rows {
        let fields = [
            r.session.to_string(),
            r.task.clone(),
            r.experiment.clone(),
            r.finished.clone(),
            r.fingerprint.clone(),
            r.machine.clone(),
            r.features.clone(),
            r.commit.clone(),
            r.dirty.to_string(),
            r.point.clone(),
            r.variant.clone(),
            r.reference.to_string(),
            r.toggles.clone(),
            r.workload.clone(),
            r.digest.clone(),
            r.round.to_string(),
            r.position.to_string(),
            r.bandwidth_gb_s.map_or(String::new(), |b| b.to_string()),
            r.busy.to_string(),
            r.metric.clone(),
            r.pass.clone(),
            r.value.to_string(),
        ];
        let quoted: Vec<String> = fields.iter().map(|f| quote(f)).collect();
        let _ = writeln!(out, "{}", quoted.join(","));
    }
    out
}

/// A field quoted when it holds a comma, a quote or a line break (quotes doubled).
fn quote(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

/// A JSON array of the rows.
pub fn json(rows: &[SampleRow]) -> String {
    serde_json::to_string_pretty(rows).expect("rows serialise") + "\n"
}

/// The benchmark name of a variant at a point: `kv-cache/cached@max_new_tokens=512`.
pub fn benchmark_name(experiment: &str, variant: &str, point: &str) -> String {
    if point.is_empty() {
        format!("{experiment}/{variant}")
    } else {
        format!("{experiment}/{variant}@{point}")
    }
}

/// A metric's measure slug: `decode_tok_s` -> `decode-tok-s`.
pub fn measure_slug(metric: &str) -> String {
    metric.replace('_', "-")
}

/// BMF JSON of `rows` (one session's): per variant and point, each metric's median over the
/// processes with its bootstrap 95% interval as the lower and upper values.
pub fn bmf(rows: &[SampleRow]) -> String {
    let mut groups: BTreeMap<String, BTreeMap<String, Vec<f64>>> = BTreeMap::new();
    for r in rows {
        groups
            .entry(benchmark_name(&r.experiment, &r.variant, &r.point))
            .or_default()
            .entry(measure_slug(&r.metric))
            .or_default()
            .push(r.value);
    }
    let doc: serde_json::Map<String, serde_json::Value> = groups
        .into_iter()
        .map(|(benchmark, measures)| {
            let measures: serde_json::Map<String, serde_json::Value> = measures
                .into_iter()
                .filter_map(|(slug, values)| {
                    let (value, low, high) = median_interval(&values)?;
                    Some((
                        slug,
                        serde_json::json!({ "value": value, "lower_value": low, "upper_value": high }),
                    ))
                })
                .collect();
            (benchmark, serde_json::Value::Object(measures))
        })
        .collect();
    serde_json::to_string_pretty(&doc).expect("BMF serialises") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(variant: &str, metric: &str, value: f64) -> SampleRow {
        SampleRow {
            session: 1,
            task: "experiment".into(),
            experiment: "kv-cache".into(),
            finished: "2026-11-30T00:00:00Z".into(),
            fingerprint: "00ff".into(),
            machine: "AMD EPYC (AuthenticAMD family 25)".into(),
            features: String::new(),
            commit: "abc".into(),
            dirty: false,
            point: "max_new_tokens=32".into(),
            variant: variant.into(),
            reference: variant == "recompute",
            toggles: "kv-cache=on,tensor-pool=off".into(),
            workload: "{\"preset\":\"small\"}".into(),
            digest: "sha256:00".into(),
            round: 0,
            position: 0,
            bandwidth_gb_s: Some(21.5),
            busy: false,
            metric: metric.into(),
            pass: "timed".into(),
            value,
        }
    }

    /// BMF's documented shape: benchmark -> measure slug -> {value (number, required),
    /// lower_value, upper_value (numbers, optional)}, and nothing else.
    #[test]
    fn bmf_has_the_documented_shape() {
        let rows = vec![
            row("cached", "decode_tok_s", 100.0),
            row("cached", "decode_tok_s", 110.0),
            row("cached", "decode_tok_s", 90.0),
            row("cached", "ttft_ms", 2.0),
            row("recompute", "decode_tok_s", 10.0),
        ];
        let doc: serde_json::Value = serde_json::from_str(&bmf(&rows)).unwrap();
        let benchmarks = doc.as_object().unwrap();
        assert_eq!(
            benchmarks.keys().collect::<Vec<_>>(),
            ["kv-cache/cached@max_new_tokens=32", "kv-cache/recompute@max_new_tokens=32"]
        );
        for measures in benchmarks.values() {
            for (slug, metric) in measures.as_object().unwrap() {
                assert!(slug.len() <= 64 && !slug.contains('_'), "{slug}");
                let m = metric.as_object().unwrap();
                assert!(m.keys().all(|k| ["value", "lower_value", "upper_value"].contains(&k.as_str())));
                let value = m["value"].as_f64().expect("value is a number");
                let (low, high) = (m["lower_value"].as_f64().unwrap(), m["upper_value"].as_f64().unwrap());
                assert!(low <= value && value <= high, "{low} <= {value} <= {high}");
            }
        }
        assert_eq!(doc["kv-cache/cached@max_new_tokens=32"]["decode-tok-s"]["value"], 100.0);
        assert_eq!(doc["kv-cache/cached@max_new_tokens=32"]["ttft-ms"]["value"], 2.0);
    }

    #[test]
    fn csv_quotes_what_needs_quoting_and_has_one_field_per_column() {
        let text = csv(&[row("cached", "decode_tok_s", 100.5)]);
        let mut lines = text.lines();
        assert_eq!(lines.next().unwrap(), CSV_COLUMNS.join(","));
        let line = lines.next().unwrap();
        assert!(line.contains("\"kv-cache=on,tensor-pool=off\""), "{line}");
        assert!(line.contains("\"{\"\"preset\"\":\"\"small\"\"}\""), "{line}");
        assert!(line.ends_with(",decode_tok_s,timed,100.5"), "{line}");
        assert_eq!(lines.next(), None);
    }
}
