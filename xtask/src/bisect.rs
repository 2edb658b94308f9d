//! `cargo xtask bisect NAME`: attributes the experiment's figures to each optimization by
//! running the lattice of toggle sets (all off, all on, each alone on, each alone off; `--full`:
//! all 16), interleaved and checked for identical output like any experiment. Writes
//! `reports/NAME/bisect.md` with a chart; with a stored bisect baseline, ranks the toggles whose
//! contribution fell (the suspects of a regression) and links their profiles before and after.
//!
//! A bisect baseline must fit: the toggle sets the ranking reads (all on, and all on but one)
//! with the same workload. One that does not stops `bisect` before it measures (exit 2) unless
//! `--save-baseline` replaces it, and the page then names what does not fit instead of ranking.

use crate::baseline::{self, Measured, Misfit, MisfitKind};
use crate::compare::{Speedup, paired_speedup};
use crate::experiment::{self, Paths};
use crate::results::{ExperimentResults, PointResults, pairs_between};
use crate::runner::{self, RunOptions};
use crate::spec::Metric;
use anyhow::{Context, Result};
use rand::{Rng, SeedableRng};
use smallmind::{Optimization, Optimizations};
use std::fmt::Write;
use std::path::Path;

/// The bisect baseline a run compared with, kept beside its page.
const BEFORE: &str = "bisect-before.json";

/// The metrics each optimization is credited with.
const METRICS: [Metric; 3] = [Metric::DecodeTokS, Metric::TtftMs, Metric::AllocCountPerOp];

/// The canonical name of a toggle set: `all-off`, `all-on`, or the toggles on joined by `+`.
pub fn config_name(opts: Optimizations) -> String {
    let on: Vec<&str> = Optimization::ALL.iter().filter(|&&o| opts.get(o)).map(|o| o.name()).collect();
    match on.len() {
        0 => "all-off".into(),
        n if n == Optimization::ALL.len() => "all-on".into(),
        _ => on.join("+"),
    }
}

/// The toggle sets to run: the lattice, or the whole factorial with `full`.
pub fn configs(full: bool) -> Vec<Optimizations> {
    if full {
        return Optimizations::every_combination().collect();
    }
    let mut configs = vec![Optimizations::none(), Optimizations::all()];
    for &t in &Optimization::ALL {
        configs.push(only(t));
        configs.push(without(t));
    }
    configs
}

fn only(t: Optimization) -> Optimizations {
    let mut o = Optimizations::none();
    o.set(t, true);
    o
}

fn without(t: Optimization) -> Optimizations {
    let mut o = Optimizations::all();
    o.set(t, false);
    o
}

/// One optimization's effect on one metric, both ways.
#[derive(Debug, Clone, PartialEq)]
pub struct Effect {
    pub toggle: Optimization,
    pub metric: Metric,
    /// Only this toggle on, against all off.
    pub added_alone: Option<Speedup>,
    /// All on, against all on but this toggle: what it contributes to the optimized engine.
    pub removed_alone: Option<Speedup>,
}

/// Every toggle's effects in a lattice run.
pub fn effects(p: &PointResults) -> Vec<Effect> {
    let speedup = |from: Optimizations, to: Optimizations, metric: Metric| {
        let (a, b) = (p.variant(&config_name(from))?, p.variant(&config_name(to))?);
        paired_speedup(&pairs_between(a, b, metric), metric.higher_is_better())
    };
    let mut out = Vec::new();
    for &toggle in &Optimization::ALL {
        for metric in METRICS {
            out.push(Effect {
                toggle,
                metric,
                added_alone: speedup(Optimizations::none(), only(toggle), metric),
                removed_alone: speedup(without(toggle), Optimizations::all(), metric),
            });
        }
    }
    out
}

/// A two-toggle interaction on decode throughput, from the full factorial: how many times larger
/// `a`'s speedup is with `b` on than with `b` off (averaged over the other toggles, in log space).
#[derive(Debug, Clone, PartialEq)]
pub struct Interaction {
    pub a: Optimization,
    pub b: Optimization,
    pub factor: Speedup,
}

/// Interactions, when every one of the 16 sets ran.
pub fn interactions(p: &PointResults) -> Vec<Interaction> {
    let metric = Metric::DecodeTokS;
    let rounds: Vec<usize> =
        p.variants.first().map(|v| v.runs.iter().map(|r| r.round).collect()).unwrap_or_default();
    let value = |opts: Optimizations, round: usize| -> Option<f64> {
        let v = p.variant(&config_name(opts))?;
        v.runs.iter().find(|r| r.round == round)?.value(metric).map(f64::ln)
    };
    let mut out = Vec::new();
    for (i, &a) in Optimization::ALL.iter().enumerate() {
        for &b in &Optimization::ALL[i + 1..] {
            // Per round: the interaction contrast averaged over the other two toggles' 4 settings.
            let per_round: Option<Vec<f64>> = rounds
                .iter()
                .map(|&round| {
                    let mut sum = 0.0;
                    let others: Vec<Optimization> =
                        Optimization::ALL.iter().copied().filter(|&t| t != a && t != b).collect();
                    for bits in 0..4u8 {
                        let mut base = Optimizations::none();
                        base.set(others[0], bits & 1 != 0);
                        base.set(others[1], bits & 2 != 0);
                        let at = |on_a: bool, on_b: bool| {
                            let mut o = base;
                            o.set(a, on_a);
                            o.set(b, on_b);
                            value(o, round)
                        };
                        sum += at(true, true)? - at(false, true)? - at(true, false)? + at(false, false)?;
                    }
                    Some(sum / 4.0)
                })
                .collect();
            let Some(per_round) = per_round.filter(|v| !v.is_empty()) else { return Vec::new() };
            out.push(Interaction { a, b, factor: mean_interval(&per_round) });
        }
    }
    out
}

/// exp of the mean of log contrasts, with a seeded bootstrap 95% interval.
fn mean_interval(xs: &[f64]) -> Speedup {
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x1a7);
    let mut means: Vec<f64> = (0..crate::compare::RESAMPLES)
        .map(|_| mean(&(0..xs.len()).map(|_| xs[rng.random_range(0..xs.len())]).collect::<Vec<_>>()))
        .collect();
    means.sort_by(f64::total_cmp);
    let q = |p: f64| smallmind::bench::stats::quantile_sorted(&means, p).exp();
    Speedup { point: mean(xs).exp(), low: q(0.025), high: q(0.975) }
}

/// A toggle whose contribution fell against the bisect baseline.
#[derive(Debug, Clone, PartialEq)]
pub struct Suspect {
    pub toggle: Optimization,
    pub before: f64,
    pub now: Speedup,
    /// now / before: below 1, the toggle buys less than it did.
    pub change: Speedup,
}

/// Toggles ranked by how much their decode contribution (`removed_alone`) fell, worst first.
pub fn suspects(now: &PointResults, before: &PointResults) -> Vec<Suspect> {
    let (now_effects, before_effects) = (effects(now), effects(before));
    let mut out: Vec<Suspect> = Optimization::ALL
        .iter()
        .filter_map(|&toggle| {
            let find = |e: &[Effect]| {
                e.iter()
                    .find(|x| x.toggle == toggle && x.metric == Metric::DecodeTokS)
                    .and_then(|x| x.removed_alone)
            };
            let (n, b) = (find(&now_effects)?, find(&before_effects)?);
            let change = Speedup { point: n.point / b.point, low: n.low / b.point, high: n.high / b.point };
            Some(Suspect { toggle, before: b.point, now: n, change })
        })
        .collect();
    out.sort_by(|x, y| x.change.point.total_cmp(&y.change.point));
    out
}

/// What a bisect baseline does not fit in a lattice run: any set both ran with another workload
/// or toggles, and any set the suspects are ranked from (all on, all on but one) missing on
/// either side. The other sets may differ (a `--full` run against a lattice baseline).
pub fn baseline_misfits(now: &[Measured], before: &[Measured]) -> Vec<Misfit> {
    let ranked: Vec<String> = std::iter::once(Optimizations::all())
        .chain(Optimization::ALL.iter().map(|&t| without(t)))
        .map(config_name)
        .collect();
    baseline::fit(now, before)
        .into_iter()
        .filter(|m| {
            let absent = matches!(
                m.kind,
                MisfitKind::NoBaseline | MisfitKind::Vanished | MisfitKind::NewPoint | MisfitKind::GonePoint
            );
            !absent || ranked.contains(&m.variant)
        })
        .collect()
}

/// Runs the lattice for experiment `name` and writes `reports/NAME/bisect.md`.
pub fn run(
    name: &str,
    options: &RunOptions,
    paths: &Paths,
    full: bool,
    save_baseline: bool,
) -> Result<String> {
    let experiment = experiment::load(name, paths)?;
    let named: Vec<(String, Optimizations)> =
        configs(full).into_iter().map(|o| (config_name(o), o)).collect();
    let mut lattice = experiment.derived(&named)?;
    lattice.profiles.flamegraph = !options.no_profiles;
    lattice.profiles.heap = experiment.profiles.heap && !options.no_profiles;
    lattice.profiles.seconds = 1.0;
    // The phase pass feeds no figure here; skipping it keeps the lattice affordable.
    lattice.measurement.phase_iterations = 0;
    let baseline_path = paths.baselines.join(format!("{name}.bisect.json"));
    if baseline_path.is_file() && !save_baseline {
        let stored = experiment::read_results(&baseline_path)?;
        let misfits = baseline_misfits(&baseline::planned(&lattice)?, &baseline::measured(&stored));
        if !misfits.is_empty() {
            return Err(crate::UsageError(baseline::misfit_line(
                &format!("the bisect baseline of `{name}` does not fit the experiment"),
                &misfits,
                &format!("cargo xtask bisect {name} --save-baseline{}", if full { " --full" } else { "" }),
            ))
            .into());
        }
    }
    let engine = runner::build_engine(lattice.profiles.heap, &options.engine_features)?;
    let scratch = runner::target_dir().join("xtask").join("bisect").join(name);
    let staging = paths.reports.join(format!(".{name}.bisect.staging"));
    if staging.exists() {
        std::fs::remove_dir_all(&staging)?;
    }
    let profile_dir = staging.join("bisect-profiles");
    let mut command = format!("cargo xtask bisect {name}");
    if full {
        command.push_str(" --full");
    }
    if let Some(n) = options.iterations {
        let _ = write!(command, " --iterations {n}");
    }
    let results = runner::run(name, &lattice, &engine, options, &scratch, &profile_dir, command);
    let mut results = results.inspect_err(|_| {
        let _ = std::fs::remove_dir_all(&staging);
    })?;
    let report_dir = paths.reports.join(name);
    std::fs::create_dir_all(&report_dir)?;
    // Profiles go beside the page (they are small: one flame graph per set).
    let final_profiles = report_dir.join("bisect-profiles");
    if profile_dir.is_dir() {
        if final_profiles.exists() {
            std::fs::remove_dir_all(&final_profiles)?;
        }
        std::fs::rename(&profile_dir, &final_profiles)?;
    }
    for record in &mut results.profiles {
        let file =
            Path::new(&record.path).file_name().context("profile file name")?.to_string_lossy().into_owned();
        record.path = format!("bisect-profiles/{file}");
        record.beside_report = true;
    }
    let _ = std::fs::remove_dir_all(&staging);
    let before = if baseline_path.is_file() { Some(experiment::read_results(&baseline_path)?) } else { None };
    // The baseline's flame graphs are copied beside the page, so that its "before" links keep
    // working after `--save-baseline` replaces the baseline.
    let before_profiles = report_dir.join("bisect-profiles-before");
    if before_profiles.exists() {
        std::fs::remove_dir_all(&before_profiles)?;
    }
    let kept = paths.baselines.join(format!("{name}.bisect-profiles"));
    if before.is_some() && kept.is_dir() {
        experiment::copy_dir(&kept, &before_profiles)?;
    }
    // So is the baseline itself: `cargo xtask report` re-renders the same comparison later.
    let before_results = report_dir.join(BEFORE);
    match &before {
        Some(b) => experiment::write_atomic(&before_results, &serde_json::to_vec(b)?)?,
        None if before_results.exists() => std::fs::remove_file(&before_results)?,
        None => {}
    }
    let page = render(&results, before.as_ref(), full);
    crate::charts::effects(
        &report_dir.join("bisect.svg"),
        &format!("What each optimization buys: {name}"),
        &effects(&results.points[0]),
    )?;
    experiment::write_atomic(&report_dir.join("bisect.md"), page.as_bytes())?;
    experiment::write_atomic(&report_dir.join("bisect.json"), &serde_json::to_vec(&results)?)?;
    if save_baseline {
        std::fs::create_dir_all(&paths.baselines)?;
        experiment::write_atomic(&baseline_path, &serde_json::to_vec(&results)?)?;
        if kept.exists() {
            std::fs::remove_dir_all(&kept)?;
        }
        if final_profiles.is_dir() {
            experiment::copy_dir(&final_profiles, &kept)?;
        }
        eprintln!("{name}: saved the bisect baseline {}", baseline_path.display());
    }
    experiment::write_atomic(&report_dir.join("bisect.json"), &serde_json::to_vec(&results)?)?;
    // Suspects come from the previous baseline; a first baseline is this run itself.
    let before = before.or_else(|| save_baseline.then(|| results.clone()));
    write_page(name, &results, before.as_ref(), &report_dir)
}

/// A bisect page's files, read and checked, ready to be re-rendered.
#[derive(Debug)]
pub struct Rerender {
    name: String,
    dir: std::path::PathBuf,
    results: ExperimentResults,
    before: Option<ExperimentResults>,
}

/// Re-renders `reports/NAME/bisect.md` and its chart from `bisect.json`, if there is one; then
/// gives what its baseline does not fit (empty when it fits, or there is none).
pub fn rerender(name: &str, paths: &Paths) -> Result<Option<Vec<Misfit>>> {
    read_for_rerender(name, paths)?.map(Rerender::write).transpose()
}

/// Reads `bisect.json` and the baseline it compared with, if there is a page; nothing is written.
pub fn read_for_rerender(name: &str, paths: &Paths) -> Result<Option<Rerender>> {
    let report_dir = paths.reports.join(name);
    let path = report_dir.join("bisect.json");
    if !path.is_file() {
        return Ok(None);
    }
    let results = experiment::read_results(&path)?;
    // The baseline the run compared with, if it kept one; else the stored one.
    let compared = report_dir.join(BEFORE);
    let baseline_path = paths.baselines.join(format!("{name}.bisect.json"));
    let before = if compared.is_file() {
        Some(experiment::read_results(&compared)?)
    } else if baseline_path.is_file() {
        Some(experiment::read_results(&baseline_path)?)
    } else {
        None
    };
    Ok(Some(Rerender { name: name.to_string(), dir: report_dir, results, before }))
}

impl Rerender {
    /// Writes the page and its chart; gives what the baseline does not fit.
    pub fn write(self) -> Result<Vec<Misfit>> {
        write_page(&self.name, &self.results, self.before.as_ref(), &self.dir)?;
        Ok(self
            .before
            .map(|b| baseline_misfits(&baseline::measured(&self.results), &baseline::measured(&b)))
            .unwrap_or_default())
    }
}

fn write_page(
    name: &str,
    results: &ExperimentResults,
    before: Option<&ExperimentResults>,
    dir: &Path,
) -> Result<String> {
    let full = results.points[0].variants.len() == 1 << Optimization::ALL.len();
    let page = render(results, before, full);
    let title = format!("What each optimization buys: {name}");
    crate::charts::effects(&dir.join("bisect.svg"), &title, &effects(&results.points[0]))?;
    experiment::write_atomic(&dir.join("bisect.md"), page.as_bytes())?;
    Ok(page)
}

/// The bisect page.
pub fn render(r: &ExperimentResults, before: Option<&ExperimentResults>, full: bool) -> String {
    let mut md = String::new();
    let p = &r.points[0];
    let nf = r.spec.thresholds.noise_floor;
    let w = &p.variants[0].workload;
    let env = &r.environment;
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
        crate::report::provenance(env, &r.finished, &r.command)
    );
    let _ = writeln!(
        md,
        "**Added alone**: only this optimization on, against all off. **Removed alone**: all on, against all on \
         but this one: what it contributes to the optimized engine. Speedups (above 1 is better) with 95% bootstrap \
         intervals over the rounds; `*` marks an interval clear of 1 ± {:.0}%.\n",
        nf * 100.0
    );
    let _ = writeln!(md, "![effects](bisect.svg)\n");
    let _ = writeln!(md, "| optimization | metric | added alone | removed alone |");
    let _ = writeln!(md, "|---|---|---|---|");
    let cell = |s: Option<Speedup>, exact: bool| match s {
        None => "n/a".to_string(),
        Some(s) if exact => format!("{}x", crate::report::two(s.point)),
        Some(s) => format!(
            "{}{}",
            crate::report::interval(&s),
            if s.low > 1.0 + nf || s.high < 1.0 - nf { " *" } else { "" }
        ),
    };
    for e in effects(p) {
        let _ = writeln!(
            md,
            "| `{}` | {} | {} | {} |",
            e.toggle.name(),
            e.metric.name(),
            cell(e.added_alone, e.metric.is_exact()),
            cell(e.removed_alone, e.metric.is_exact())
        );
    }
    md.push('\n');
    if full {
        let _ = writeln!(md, "## Interactions (decode_tok_s, full factorial)\n");
        let significant: Vec<Interaction> = interactions(p)
            .into_iter()
            .filter(|i| i.factor.low > 1.0 + nf || i.factor.high < 1.0 - nf)
            .collect();
        if significant.is_empty() {
            let _ = writeln!(
                md,
                "No pair of optimizations interacts beyond the noise floor: their effects multiply.\n"
            );
        }
        for i in significant {
            let _ = writeln!(
                md,
                "- `{}` buys {}x [{}, {}] as much with `{}` on as with it off.",
                i.a.name(),
                crate::report::two(i.factor.point),
                crate::report::two(i.factor.low),
                crate::report::two(i.factor.high),
                i.b.name()
            );
        }
        md.push('\n');
    }
    let _ = writeln!(md, "## Suspects against the bisect baseline\n");
    let is_this_run = before
        .is_some_and(|b| b.finished == r.finished && b.environment.git_commit == r.environment.git_commit);
    match before {
        Some(_) if is_this_run => {
            let _ = writeln!(
                md,
                "This run is the stored bisect baseline (`baselines/{}.bisect.json`, with its flame graphs in \
                 `baselines/{}.bisect-profiles/`): a later `cargo xtask bisect {}` ranks the optimizations whose \
                 contribution fell against it.\n",
                r.experiment, r.experiment, r.experiment
            );
        }
        None => {
            let _ = writeln!(
                md,
                "No bisect baseline is stored; `cargo xtask bisect {} --save-baseline` keeps this run as one. A later \
                 bisect then ranks the optimizations whose contribution fell.\n",
                r.experiment
            );
        }
        Some(b) if !baseline_misfits(&baseline::measured(r), &baseline::measured(b)).is_empty() => {
            let _ = writeln!(
                md,
                "The bisect baseline (commit `{}`, {}) does not fit this run, so no suspects are ranked (`cargo \
                 xtask bisect {} --save-baseline` stores one that fits):\n",
                crate::report::short(&b.environment.git_commit),
                b.finished,
                r.experiment
            );
            for misfit in baseline_misfits(&baseline::measured(r), &baseline::measured(b)) {
                let _ = writeln!(md, "- {misfit}");
            }
            md.push('\n');
        }
        Some(b) => {
            let _ = writeln!(
                md,
                "Baseline: commit `{}`, {}. Ranked by how much each optimization's contribution to decode throughput \
                 (removed alone) changed; a fall whose interval lies below 1 - {:.0}% is flagged.\n",
                crate::report::short(&b.environment.git_commit),
                b.finished,
                r.spec.thresholds.regression * 100.0
            );
            let machine = crate::machine::compare(r, b);
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
            for (rank, s) in suspects(p, &b.points[0]).iter().enumerate() {
                let fell = s.change.high < 1.0 - r.spec.thresholds.regression
                    && (machine.comparable || !machine.measured);
                let links = |prefix: &str| {
                    let profiled = if prefix.ends_with("before/") { &b.profiles } else { &r.profiles };
                    [config_name(Optimizations::all()), config_name(without(s.toggle))]
                        .iter()
                        .filter(|c| profiled.iter().any(|p| &p.variant == *c && p.kind == "flamegraph"))
                        .map(|c| format!("[{c}]({prefix}{c}.flamegraph.svg)"))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                let _ = writeln!(
                    md,
                    "| {} | `{}` | {}x | {}x [{}, {}] | {}x{} | {} | {} |",
                    rank + 1,
                    s.toggle.name(),
                    crate::report::two(s.before),
                    crate::report::two(s.now.point),
                    crate::report::two(s.now.low),
                    crate::report::two(s.now.high),
                    crate::report::two(s.change.point),
                    if fell { " **fell**" } else { "" },
                    links("bisect-profiles/"),
                    links("bisect-profiles-before/")
                );
            }
            md.push('\n');
        }
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{Correctness, RunRecord, VariantResults};
    use crate::spec::{SweepPoint, Workload};
    use smallmind::bench::results::{Iteration, PoolReport};

    /// A point where decode tok/s is 1000 x the product of each toggle's factor, with
    /// `fused-softmax` worth 1.5x only while `kv-cache` is off, and 1% wiggle per round.
    fn synthetic(sets: &[Optimizations]) -> PointResults {
        let factor = |o: Optimizations| {
            let mut f = 1.0;
            if o.tensor_pool {
                f *= 1.1
            }
            if o.batched_matmul {
                f *= 1.3
            }
            if o.kv_cache {
                f *= 20.0
            }
            if o.fused_softmax && !o.kv_cache {
                f *= 1.5
            }
            f
        };
        let workload = Workload {
            model: "tiny".into(),
            prompt: None,
            prompt_tokens: Some(8),
            max_new_tokens: 8,
            temperature: 0.0,
            top_k: 0,
            top_p: 1.0,
            seed: 0,
            threads: 1,
        };
        let variants = sets
            .iter()
            .enumerate()
            .map(|(v, &o)| VariantResults {
                name: config_name(o),
                reference: v == 0,
                optimizations: o,
                workload: workload.clone(),
                runs: (0..6)
                    .map(|round| {
                        let wiggle = 1.0 + 0.01 * (((round * 7 + v * 3) % 5) as f64 - 2.0) / 2.0;
                        let mut it: Iteration = serde_json::from_value(serde_json::json!({
                            "ttft_ms": 1.0, "encode_ms": 0.0, "prefill_ms": 1.0, "prefill_tok_s": 1.0,
                            "decode_tok_s": 1000.0 * factor(o) * wiggle, "end_to_end_tok_s": 1.0, "total_ms": 1.0,
                            "generated_tokens": 8, "inter_token_ms": [], "alloc_count": 10, "alloc_bytes": 10,
                            "prefill_alloc_count": 10, "prefill_alloc_bytes": 10, "decode_alloc_count": 0,
                            "decode_alloc_bytes": 0, "peak_heap_bytes": 1, "peak_heap_growth_bytes": 1,
                            "pool_rents": 0, "pool_hits": 0, "pool_misses": 0
                        }))
                        .unwrap();
                        it.decode_tok_s = Some(1000.0 * factor(o) * wiggle);
                        RunRecord {
                            round,
                            position: 0,
                            iterations: vec![it],
                            phases: None,
                            pool: PoolReport { rents_per_op: 0.0, hits_per_op: 0.0, misses_per_op: 0.0, hit_rate: None, session: Default::default() },
                            digest: String::new(),
                            machine: None,
                        }
                    })
                    .collect(),
            })
            .collect();
        PointResults {
            point: SweepPoint::default(),
            variants,
            correctness: Correctness {
                reference_digest: String::new(),
                generated_tokens: 8,
                digests: vec![],
            },
            stopped: None,
        }
    }

    #[test]
    fn the_lattice_credits_each_toggle_with_its_factor() {
        let p = synthetic(&configs(false));
        let e = effects(&p);
        let get =
            |t: Optimization| e.iter().find(|x| x.toggle == t && x.metric == Metric::DecodeTokS).unwrap();
        let near = |s: Option<Speedup>, x: f64| (s.unwrap().point - x).abs() < 0.03 * x;
        assert!(near(get(Optimization::BatchedMatmul).added_alone, 1.3));
        assert!(near(get(Optimization::BatchedMatmul).removed_alone, 1.3));
        assert!(near(get(Optimization::KvCache).added_alone, 20.0));
        // The fused softmax helps the plain engine, and buys nothing once the cache is on.
        assert!(near(get(Optimization::FusedSoftmax).added_alone, 1.5));
        assert!(near(get(Optimization::FusedSoftmax).removed_alone, 1.0));
    }

    #[test]
    fn the_factorial_finds_the_one_interaction() {
        let p = synthetic(&configs(true));
        let found: Vec<(Optimization, Optimization)> = interactions(&p)
            .into_iter()
            .filter(|i| i.factor.low > 1.02 || i.factor.high < 0.98)
            .map(|i| (i.a, i.b))
            .collect();
        assert_eq!(found, [(Optimization::FusedSoftmax, Optimization::KvCache)]);
        let i = interactions(&p)
            .into_iter()
            .find(|i| i.a == Optimization::FusedSoftmax && i.b == Optimization::KvCache)
            .unwrap();
        assert!((i.factor.point - 1.0 / 1.5).abs() < 0.03, "{i:?}");
    }

    #[test]
    fn suspects_rank_the_toggle_whose_contribution_fell() {
        let before = synthetic(&configs(false));
        let mut now = before.clone();
        // The fused softmax got slow: every set with it on is 30% slower.
        for v in &mut now.variants {
            if v.optimizations.fused_softmax {
                for r in &mut v.runs {
                    r.iterations[0].decode_tok_s = r.iterations[0].decode_tok_s.map(|x| x * 0.7);
                }
            }
        }
        let ranked = suspects(&now, &before);
        assert_eq!(ranked.len(), 4);
        assert_eq!(ranked[0].toggle, Optimization::FusedSoftmax, "{ranked:?}");
        assert!((ranked[0].change.point - 0.7).abs() < 0.03, "{ranked:?}");
        assert!(ranked[1..].iter().all(|s| (s.change.point - 1.0).abs() < 0.03), "{ranked:?}");
    }

    fn measured(p: &PointResults) -> Vec<Measured> {
        baseline::measured_at(p).collect()
    }

    #[test]
    fn a_bisect_baseline_fits_when_the_ranked_sets_match() {
        let lattice = measured(&synthetic(&configs(false)));
        let full = measured(&synthetic(&configs(true)));
        assert_eq!(baseline_misfits(&lattice, &lattice), []);
        // A --full run against a lattice baseline (or the other way): the ranked sets are in both.
        assert_eq!(baseline_misfits(&full, &lattice), []);
        assert_eq!(baseline_misfits(&lattice, &full), []);
    }

    #[test]
    fn a_bisect_baseline_of_another_workload_or_without_a_ranked_set_does_not_fit() {
        let now = synthetic(&configs(false));
        let mut other = now.clone();
        for v in &mut other.variants {
            v.workload.max_new_tokens = 64;
        }
        let misfits = baseline_misfits(&measured(&now), &measured(&other));
        assert_eq!(misfits.len(), now.variants.len(), "{misfits:?}");
        assert!(
            misfits
                .iter()
                .all(|m| matches!(&m.kind, MisfitKind::Workload(d) if d == &["max_new_tokens 64 -> 8"]))
        );
        let mut fewer = now.clone();
        fewer.variants.retain(|v| v.name != config_name(without(Optimization::KvCache)));
        let misfits = baseline_misfits(&measured(&now), &measured(&fewer));
        assert_eq!(misfits.len(), 1, "{misfits:?}");
        assert_eq!(
            misfits[0].to_string(),
            "`tensor-pool+batched-matmul+fused-softmax`: not in the baseline (a new or renamed variant)"
        );
    }
}
