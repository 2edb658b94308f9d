//! The bisect page, `reports/NAME/bisect.md`, rendered from a [`BisectAnalysis`].

use super::format::{interval, provenance, short, two};
use crate::analysis::bisect::{Against, BisectAnalysis, Suspect, config_name, without};
use crate::analysis::profile_diff::CpuDiff;
use crate::paths::report::{BISECT_CHART, BISECT_DIFFS, BISECT_PROFILES, BISECT_PROFILES_BEFORE};
use crate::results::ExperimentResults;
use crate::stats::Speedup;
use smallmind::Optimizations;
use std::fmt::Write;

/// The bisect page.
pub fn render(a: &BisectAnalysis) -> String {
    let mut md = String::new();
    let r = a.results;
    let p = &r.points[0];
    let nf = r.spec.thresholds.noise_floor;
    let w = &p.variants[0].workload;
    let _ = writeln!(md, "# `{}`: what each optimization buys\n", r.experiment);
    let _ = writeln!(
        md,
        "{} toggle sets of the experiment's reference workload (`{}`, {} new tokens, {} thread(s)), {} rounds, each \
         set its own process, interleaved; all generated the same {} tokens. {}\n",
        p.variants.len(),
        w.model,
        w.max_new_tokens,
        w.threads,
        r.rounds,
        p.correctness.generated_tokens,
        provenance(&r.environment, &r.finished, &r.command)
    );
    let _ = writeln!(
        md,
        "**Added alone**: only this optimization on, against all off. **Removed alone**: all on, against all on \
         but this one: what it contributes to the optimized engine. Speedups (above 1 is better) with 95% bootstrap \
         intervals over the rounds; `*` marks an interval clear of 1 ± {:.0}%.\n",
        nf * 100.0
    );
    let _ = writeln!(md, "![effects]({BISECT_CHART})\n");
    let _ = writeln!(md, "| optimization | metric | added alone | removed alone |");
    let _ = writeln!(md, "|---|---|---|---|");
    let cell = |s: Option<Speedup>, exact: bool, clear: bool| match s {
        None => "n/a".to_string(),
        Some(s) if exact => format!("{}x", two(s.point)),
        Some(s) => format!("{}{}", interval(&s), if clear { " *" } else { "" }),
    };
    for (e, [added_clear, removed_clear]) in &a.effects {
        let _ = writeln!(
            md,
            "| `{}` | {} | {} | {} |",
            e.toggle.name(),
            e.metric.name(),
            cell(e.added_alone, e.metric.is_exact(), *added_clear),
            cell(e.removed_alone, e.metric.is_exact(), *removed_clear)
        );
    }
    md.push('\n');
    if a.full {
        interactions(&mut md, a);
    }
    let _ = writeln!(md, "## Suspects against the bisect baseline\n");
    suspects(&mut md, a);
    md
}

fn interactions(md: &mut String, a: &BisectAnalysis) {
    let _ = writeln!(md, "## Interactions (decode_tok_s, full factorial)\n");
    if a.interactions.is_empty() {
        let _ = writeln!(
            md,
            "No pair of optimizations interacts beyond the noise floor: their effects multiply.\n"
        );
    }
    for i in &a.interactions {
        let _ = writeln!(
            md,
            "- `{}` buys {}x [{}, {}] as much with `{}` on as with it off.",
            i.a.name(),
            two(i.factor.point),
            two(i.factor.low),
            two(i.factor.high),
            i.b.name()
        );
    }
    md.push('\n');
}

fn suspects(md: &mut String, a: &BisectAnalysis) {
    let r = a.results;
    let name = &r.experiment;
    let (b, machine, ranked) = match &a.against {
        Against::ThisRun => {
            let _ = writeln!(
                md,
                "This run is the stored bisect baseline (`baselines/{name}.bisect.json`, with its flame graphs in \
                 `baselines/{name}.bisect-profiles/`): a later `cargo xtask bisect {name}` ranks the optimizations whose \
                 contribution fell against it.\n"
            );
            return;
        }
        Against::Nothing => {
            let _ = writeln!(
                md,
                "No bisect baseline is stored; `cargo xtask bisect {name} --save-baseline` keeps this run as one. A later \
                 bisect then ranks the optimizations whose contribution fell.\n"
            );
            return;
        }
        Against::Misfits { before: b, misfits } => {
            let _ = writeln!(
                md,
                "The bisect baseline (commit `{}`, {}) does not fit this run, so no suspects are ranked (`cargo \
                 xtask bisect {name} --save-baseline` stores one that fits):\n",
                short(&b.environment.git_commit),
                b.finished,
            );
            for misfit in misfits {
                let _ = writeln!(md, "- {misfit}");
            }
            md.push('\n');
            return;
        }
        Against::Ranked { before, machine, suspects } => (*before, machine, suspects),
    };
    let _ = writeln!(
        md,
        "Baseline: commit `{}`, {}. Ranked by how much each optimization's contribution to decode throughput \
         (removed alone) changed; a fall whose interval lies below 1 - {:.0}% is flagged.\n",
        short(&b.environment.git_commit),
        b.finished,
        r.spec.thresholds.regression * 100.0
    );
    if !machine.comparable && machine.measured {
        let _ = writeln!(
            md,
            "**Not the bisect baseline's machine** ({}): a contribution that changed may have changed with \
             the machine, so the ranking below is shown, not judged.\n",
            machine.reasons.join("; ")
        );
    }
    let _ = writeln!(
        md,
        "| rank | optimization | contribution before | now [95% CI] | change | profiles now | profiles before |"
    );
    let _ = writeln!(md, "|---|---|---:|---|---|---|---|");
    for (rank, (s, fell)) in ranked.iter().enumerate() {
        let sets = [config_name(Optimizations::all()), config_name(without(s.toggle))];
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} |",
            rank + 1,
            suspect_cells(s, *fell),
            flame_graph_links(r, &sets, BISECT_PROFILES),
            flame_graph_links(b, &sets, BISECT_PROFILES_BEFORE)
        );
    }
    md.push('\n');
    if let (Some(diff), Some((first, _))) = (&a.pair_diff, ranked.first()) {
        pair_diff(md, first.toggle.name(), diff);
    }
}

/// Where the first suspect acts now: its on/off pair's CPU profile diff, both ways.
fn pair_diff(md: &mut String, toggle: &str, diff: &CpuDiff) {
    use super::profile_diff::{link, stem};
    let stem = stem(diff);
    let _ = writeln!(
        md,
        "**Where `{toggle}` acts now** (`{}` against `{}` in this run, {} + {} CPU profiles; {}: red, more time per \
         op with it; blue, less · {}):\n",
        diff.candidate,
        diff.reference,
        diff.profiles[1],
        diff.profiles[0],
        link(diff, BISECT_DIFFS, &format!("{stem}.diff.svg"), "differential flame graph"),
        link(diff, BISECT_DIFFS, &format!("{stem}.reverse.diff.svg"), "reverse")
    );
    for (slower, what) in [(false, "less time with it"), (true, "more time with it")] {
        let names: Vec<String> = diff
            .changed_own(slower)
            .take(3)
            .map(|f| format!("`{}` {:+.3} ms/op", f.frame, f.own.ms_change()))
            .collect();
        let _ = writeln!(
            md,
            "- {what}: {}",
            if names.is_empty() {
                "no engine function beyond its interval".to_string()
            } else {
                names.join("; ")
            }
        );
    }
    md.push('\n');
}

/// A suspect's cells: optimization, contribution before, now with its interval, change (flagged
/// when it fell).
pub fn suspect_cells(s: &Suspect, fell: bool) -> String {
    format!(
        "`{}` | {}x | {}x [{}, {}] | {}x{}",
        s.toggle.name(),
        two(s.before),
        two(s.now.point),
        two(s.now.low),
        two(s.now.high),
        two(s.change.point),
        if fell { " **fell**" } else { "" }
    )
}

/// Links to the flame graphs `r` captured of the toggle sets `sets`, in folder `dir`.
fn flame_graph_links(r: &ExperimentResults, sets: &[String], dir: &str) -> String {
    sets.iter()
        .filter(|c| r.profiles.iter().any(|p| &p.variant == *c && p.kind == "flamegraph"))
        .map(|c| format!("[{c}]({dir}/{c}.flamegraph.svg)"))
        .collect::<Vec<_>>()
        .join(", ")
}
