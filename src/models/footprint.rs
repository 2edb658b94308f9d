//! The checks both families' configs share: positive dimensions, sizes computed in checked
//! arithmetic, and a run-time footprint (weights, KV cache, RoPE table) this machine can hold.
//! It knows no model: each config lists its own parts.

use crate::error::{Error, Result};

/// An error naming the first of `fields` (name, value) that is zero.
pub(crate) fn require_positive(fields: &[(&str, usize)]) -> Result<()> {
    match fields.iter().find(|(_, value)| *value == 0) {
        Some((name, _)) => Err(Error::Config(format!("{name} must be positive"))),
        None => Ok(()),
    }
}

/// The product of `factors`, or `None` when it overflows `usize`.
pub(crate) fn product(factors: &[usize]) -> Option<usize> {
    factors.iter().try_fold(1usize, |acc, &f| acc.checked_mul(f))
}

/// The sum of the products of each of `terms`, or `None` when any of it overflows `usize`.
pub(crate) fn sum_of_products(terms: &[&[usize]]) -> Option<usize> {
    terms.iter().try_fold(0usize, |acc, t| acc.checked_add(product(t)?))
}

/// Bytes of memory this machine has, RAM plus swap (`MemTotal` + `SwapTotal` of
/// `/proc/meminfo`), read once; `None` where that file cannot be read.
pub fn machine_memory_bytes() -> Option<u64> {
    static MEMORY: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    *MEMORY.get_or_init(|| {
        let text = std::fs::read_to_string("/proc/meminfo").ok()?;
        let kib = |key: &str| -> Option<u64> {
            let line = text.lines().find(|l| l.starts_with(key))?;
            line[key.len()..].trim().trim_end_matches("kB").trim().parse().ok()
        };
        kib("MemTotal:")?.checked_add(kib("SwapTotal:").unwrap_or(0))?.checked_mul(1024)
    })
}

/// The memory a model may need when `/proc/meminfo` cannot be read: 16 TiB, beyond any machine
/// this engine runs on, so that only absurd shapes are refused there.
const MEMORY_WHEN_UNKNOWN: u64 = 1 << 44;

/// An error when the run-time allocations `parts` (name, bytes; `None` where the size overflows
/// `usize`) add up to more than this machine's memory ([`machine_memory_bytes`]), saying what the
/// shape would need.
pub(crate) fn require_footprint(parts: &[(&str, Option<usize>)]) -> Result<()> {
    match machine_memory_bytes() {
        Some(bytes) => require_footprint_within(parts, bytes, "this machine's memory (RAM + swap)"),
        None => require_footprint_within(parts, MEMORY_WHEN_UNKNOWN, "16 TiB (no /proc/meminfo to read)"),
    }
}

/// [`require_footprint`] against `budget` bytes, described as `budget_name` in the message.
pub(crate) fn require_footprint_within(
    parts: &[(&str, Option<usize>)],
    budget: u64,
    budget_name: &str,
) -> Result<()> {
    let mut total: u64 = 0;
    for (name, bytes) in parts {
        let bytes = bytes.and_then(|b| u64::try_from(b).ok()).and_then(|b| total.checked_add(b));
        total = bytes.ok_or_else(|| {
            Error::Config(format!(
                "the {name} of this shape would overflow 64-bit sizes: the dimensions are corrupt"
            ))
        })?;
    }
    if total > budget {
        let each: Vec<String> =
            parts.iter().map(|(name, b)| format!("{name}: {}", human_bytes(b.unwrap_or(0) as u64))).collect();
        return Err(Error::Config(format!(
            "this shape needs {} of memory to run ({}), more than {budget_name}, {}",
            human_bytes(total),
            each.join(", "),
            human_bytes(budget)
        )));
    }
    Ok(())
}

/// `bytes` in the largest binary unit that keeps a number of at least 1 (`1.5 GiB`).
pub(crate) fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}
