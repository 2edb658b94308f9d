//! How figures read on a page: units, significant digits, intervals, verdict words.

use crate::metrics::Metric;
use crate::stats::{Speedup, Verdict};

pub fn hypothesis_status(expected: [f64; 2], s: &Speedup) -> &'static str {
    if s.point < expected[0] {
        "falls short"
    } else if s.point > expected[1] {
        "exceeds the claim"
    } else {
        "holds"
    }
}

/// `1.5-2` or `3`.
pub fn range(r: [f64; 2]) -> String {
    if r[0] == r[1] { two(r[0]) } else { format!("{}-{}", two(r[0]), two(r[1])) }
}

/// Two significant decimals, trailing zeros dropped: `3.1`, `0.98`, `12`.
pub fn two(x: f64) -> String {
    if !x.is_finite() {
        return "inf".into();
    }
    let s = if x.abs() >= 10.0 { format!("{x:.1}") } else { format!("{x:.2}") };
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

pub fn format_speedup(metric: Metric, s: &Speedup) -> String {
    if metric.is_exact() { format!("{}x", two(s.point)) } else { interval(s) }
}

/// `3.1x [2.9, 3.3]`.
pub fn interval(s: &Speedup) -> String {
    format!("{}x [{}, {}]", two(s.point), two(s.low), two(s.high))
}

/// `1.2%` or `15%`.
pub fn percent(fraction: f64) -> String {
    let p = fraction * 100.0;
    if p < 10.0 { format!("{p:.1}%") } else { format!("{p:.0}%") }
}

pub fn verdict_word(metric: Metric, v: Verdict) -> &'static str {
    match (v, metric.is_exact()) {
        (Verdict::Better, false) => "faster",
        (Verdict::Worse, false) => "slower",
        (Verdict::Better, true) => "fewer",
        (Verdict::Worse, true) => "more",
        (Verdict::Same, _) => "same",
        (Verdict::NoChange, _) => "no significant change",
    }
}

/// A metric's value with its unit.
pub fn format_value(metric: Metric, v: f64) -> String {
    match metric {
        Metric::TtftMs | Metric::SoftmaxMs | Metric::AttentionMs => format!("{v:.3} ms"),
        Metric::DecodeTokS | Metric::EndToEndTokS | Metric::PrefillTokS => format!("{} tok/s", thousands(v)),
        Metric::AllocCountPerOp => thousands(v),
        Metric::AllocBytesPerOp | Metric::PeakHeapBytes => bytes(v),
    }
}

fn thousands(v: f64) -> String {
    let n = v.round() as i64;
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    if n < 0 { format!("-{out}") } else { out }
}

fn bytes(v: f64) -> String {
    if v >= 1024.0 * 1024.0 {
        format!("{:.2} MiB", v / (1024.0 * 1024.0))
    } else if v >= 1024.0 {
        format!("{:.1} KiB", v / 1024.0)
    } else {
        format!("{v:.0} B")
    }
}

/// "CPU (N logical cores), commit `abc`, finished. Reproduce: `command`." for the pages that
/// name where and how they were measured in one sentence.
pub fn provenance(env: &smallmind::bench::env::Environment, finished: &str, command: &str) -> String {
    format!(
        "{} ({} logical cores), commit `{}`, {finished}. Reproduce: `{command}`.",
        env.cpu_model,
        env.logical_cores,
        short(&env.git_commit)
    )
}

/// The first 10 characters of a commit hash.
pub fn short(commit: &str) -> &str {
    commit.char_indices().nth(10).map_or(commit, |(end, _)| &commit[..end])
}

pub fn short_digest(d: &str) -> String {
    d.chars().take(7 + 12).collect::<String>() + "…"
}

/// `-7.2%` or `+3.0%`.
pub fn percent_change(x: f64) -> String {
    format!("{:+.1}%", (x - 1.0) * 100.0)
}
