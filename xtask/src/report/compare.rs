//! The section `compare --toggles lattice` adds to its report: where the change is.

use super::format::two;
use crate::analysis::bisect::Suspect;
use std::fmt::Write;

/// Each optimization's contribution to decode throughput in the base and in the head, worst
/// change first (`ranked`), a fall beyond `tolerance` flagged.
pub fn contributions(md: &mut String, ranked: &[Suspect], tolerance: f64) {
    let _ = writeln!(md, "## Where the change is: each optimization's contribution\n");
    let _ = writeln!(
        md,
        "Each optimization's contribution to decode throughput (all on, against all on but it) on the base and on \
         the head, from the same interleaved rounds; worst change first. A change whose interval lies below 1 - \
         {:.0}% is flagged.\n",
        tolerance * 100.0
    );
    let _ = writeln!(md, "| optimization | contribution in the base | in the head [95% CI] | change |");
    let _ = writeln!(md, "|---|---:|---|---|");
    for s in ranked {
        let _ = writeln!(
            md,
            "| `{}` | {}x | {}x [{}, {}] | {}x{} |",
            s.toggle.name(),
            two(s.before),
            two(s.now.point),
            two(s.now.low),
            two(s.now.high),
            two(s.change.point),
            if s.change.high < 1.0 - tolerance { " **fell**" } else { "" }
        );
    }
    md.push('\n');
}
