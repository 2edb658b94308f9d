//! A metric's history over commits: for each variant of an experiment at one sweep point, the
//! store's samples on one machine, grouped by the commit of the engine that ran them, in git
//! order, with each commit's median and interval, and the change points of the series
//! ([`super::changepoint`]) beyond the experiment's A/A noise.
//!
//! What is left out is said ([`History::notes`]): other machines' runs (another fingerprint: a
//! series never mixes two), runs of uncommitted trees (no commit names their code), and commits
//! that are not ancestors of the history's head.

use super::changepoint::{self, Detection};
use crate::metrics::Metric;
use crate::plan::Measured;
use crate::stats::median_interval;
use crate::store::query::SampleRow;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// How many A/A standard deviations (of a figure's log between sessions) a change must exceed
/// to be called: 3, so that a floor from a 5-session calibration is not crossed by noise alone.
pub const NOISE_SIGMAS: f64 = 3.0;

/// What one series follows: a variant at a point, identified in the store by its toggles and
/// workload (so compare, bisect and check runs of the same thing count too).
#[derive(Debug, Clone, PartialEq)]
pub struct Subject {
    pub variant: String,
    pub point: String,
    /// `Optimizations`' display form.
    pub toggles: String,
    /// The workload as JSON, as the store holds it.
    pub workload: String,
}

impl Subject {
    /// The subject of a planned variant.
    pub fn of(m: &Measured) -> Subject {
        Subject {
            variant: m.variant.clone(),
            point: m.point.clone(),
            toggles: m.optimizations.to_string(),
            workload: serde_json::to_string(&m.workload).expect("a workload serialises"),
        }
    }

    fn matches(&self, r: &SampleRow) -> bool {
        r.toggles == self.toggles && r.workload == self.workload
    }
}

/// One commit of a series.
#[derive(Debug, Clone, PartialEq)]
pub struct CommitPoint {
    pub commit: String,
    /// Unix seconds (0: unknown) and the subject line.
    pub time: i64,
    pub subject: String,
    /// Sessions and processes that measured this commit.
    pub sessions: usize,
    pub samples: Vec<f64>,
    pub median: f64,
    /// Bootstrap 95% interval of the median.
    pub low: f64,
    pub high: f64,
    /// Median probe bandwidth of the processes, GB/s.
    pub bandwidth_gb_s: Option<f64>,
    /// Processes flagged as run on a busy machine.
    pub busy: usize,
}

/// One variant's series and its change points.
#[derive(Debug, Clone)]
pub struct Series {
    pub subject: Subject,
    pub commits: Vec<CommitPoint>,
    pub detection: Detection,
    /// The smallest relative change called (from the noise floor).
    pub min_relative: f64,
    /// Where the floor came from: `baselines/kv-cache.noise.json` or this series' own spread.
    pub floor_source: String,
}

/// A history page's content.
#[derive(Debug, Clone)]
pub struct History {
    pub experiment: String,
    pub metric: Metric,
    pub fingerprint: String,
    /// The machine's summary, as the store has it.
    pub machine: String,
    pub series: Vec<Series>,
    /// What was left out, one line each.
    pub notes: Vec<String>,
}

/// The A/A noise of a figure: the standard deviation of its log between sessions, and where it
/// was measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Noise {
    pub sigma: f64,
    pub source: String,
}

/// What a history is built from.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    pub experiment: &'a str,
    pub metric: Metric,
    /// The experiment's samples of `metric`, from the store.
    pub rows: &'a [SampleRow],
    pub subjects: &'a [Subject],
    /// Commits in git order, oldest first.
    pub order: &'a [String],
    /// The machine (default: the one with the most commits measured).
    pub fingerprint: Option<&'a str>,
}

/// Builds the history of `inputs`; `noise(subject, fingerprint)` gives a calibrated A/A noise
/// on that machine if there is one, `info(commit)` a commit's time and subject.
pub fn build(
    inputs: Inputs,
    noise: impl Fn(&Subject, &str) -> Option<Noise>,
    info: impl Fn(&str) -> (i64, String),
) -> History {
    let Inputs { experiment, metric, rows, subjects, order, fingerprint } = inputs;
    let mut notes = Vec::new();
    // Engines built with cargo features (test-only slowdowns, a fifth optimization) ran other
    // code than their commit's default build.
    let featured: BTreeSet<(i64, &str)> =
        rows.iter().filter(|r| !r.features.is_empty()).map(|r| (r.session, r.features.as_str())).collect();
    if !featured.is_empty() {
        let features: BTreeSet<&str> = featured.iter().map(|(_, f)| *f).collect();
        notes.push(format!(
            "{} session(s) of engines built with cargo features ({}) left out: they ran other code than their \
             commit's default build",
            featured.len(),
            features.into_iter().collect::<Vec<_>>().join("; ")
        ));
    }
    let rows: Vec<&SampleRow> = rows.iter().filter(|r| r.features.is_empty()).collect();
    let position: HashMap<&str, usize> = order.iter().enumerate().map(|(i, c)| (c.as_str(), i)).collect();
    let fingerprint = fingerprint.map_or_else(|| default_fingerprint(&rows, &position), str::to_string);
    let machine =
        rows.iter().find(|r| r.fingerprint == fingerprint).map_or(String::new(), |r| r.machine.clone());
    let others: BTreeSet<(&str, i64)> = rows
        .iter()
        .filter(|r| r.fingerprint != fingerprint)
        .map(|r| (r.fingerprint.as_str(), r.session))
        .collect();
    if !others.is_empty() {
        let machines: BTreeSet<&str> = others.iter().map(|(f, _)| *f).collect();
        notes.push(format!(
            "{} session(s) on {} other machine(s) left out (fingerprint {}; `--fingerprint F` shows one)",
            others.len(),
            machines.len(),
            machines.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    let mine: Vec<&SampleRow> = rows.iter().copied().filter(|r| r.fingerprint == fingerprint).collect();
    let dirty: BTreeSet<i64> = mine.iter().filter(|r| r.dirty).map(|r| r.session).collect();
    if !dirty.is_empty() {
        notes.push(format!(
            "runs of uncommitted trees in {} session(s) left out: no commit names the code they measured",
            dirty.len()
        ));
    }
    let stray: BTreeSet<&str> = mine
        .iter()
        .filter(|r| !r.dirty && !position.contains_key(r.commit.as_str()))
        .map(|r| r.commit.as_str())
        .collect();
    if !stray.is_empty() {
        notes.push(format!(
            "{} commit(s) off this history's first-parent line left out ({})",
            stray.len(),
            stray.iter().map(|c| c.chars().take(10).collect::<String>()).collect::<Vec<_>>().join(", ")
        ));
    }
    let unmatched: BTreeSet<i64> = {
        let matched: BTreeSet<i64> =
            mine.iter().filter(|r| subjects.iter().any(|s| s.matches(r))).map(|r| r.session).collect();
        mine.iter().map(|r| r.session).filter(|s| !matched.contains(s)).collect()
    };
    if !unmatched.is_empty() {
        notes.push(format!(
            "{} session(s) matched none of these variants by toggles and workload (the experiment file, its \
             point or the table of optimizations changed since they ran) and are left out",
            unmatched.len()
        ));
    }
    let series = subjects
        .iter()
        .map(|s| {
            let commits = commit_points(&mine, s, &position, order, &info);
            let (min_relative, floor_source) = floor(experiment, &commits, noise(s, &fingerprint));
            let groups: Vec<Vec<f64>> = commits.iter().map(|c| c.samples.clone()).collect();
            let options = changepoint::Options { min_relative, ..changepoint::Options::default() };
            let detection = changepoint::detect(&groups, &options);
            Series { subject: s.clone(), commits, detection, min_relative, floor_source }
        })
        .collect();
    History { experiment: experiment.to_string(), metric, fingerprint, machine, series, notes }
}

/// The machine with the most committed commits measured (the latest session's among equals).
fn default_fingerprint(rows: &[&SampleRow], position: &HashMap<&str, usize>) -> String {
    let mut commits: HashMap<&str, (BTreeSet<&str>, i64)> = HashMap::new();
    for r in rows.iter().filter(|r| !r.dirty && position.contains_key(r.commit.as_str())) {
        let entry = commits.entry(r.fingerprint.as_str()).or_default();
        entry.0.insert(r.commit.as_str());
        entry.1 = entry.1.max(r.session);
    }
    let latest = rows.iter().max_by_key(|r| r.session).map(|r| r.fingerprint.as_str());
    commits
        .into_iter()
        .max_by_key(|(_, (c, session))| (c.len(), *session))
        .map(|(f, _)| f)
        .or(latest)
        .unwrap_or_default()
        .to_string()
}

/// The commits of one subject's samples, in git order.
fn commit_points(
    rows: &[&SampleRow],
    subject: &Subject,
    position: &HashMap<&str, usize>,
    order: &[String],
    info: &impl Fn(&str) -> (i64, String),
) -> Vec<CommitPoint> {
    let mut by_commit: BTreeMap<usize, Vec<&SampleRow>> = BTreeMap::new();
    for r in rows.iter().filter(|r| !r.dirty && subject.matches(r)) {
        if let Some(&i) = position.get(r.commit.as_str()) {
            by_commit.entry(i).or_default().push(r);
        }
    }
    by_commit
        .into_iter()
        .filter_map(|(i, rs)| {
            let samples: Vec<f64> = rs.iter().map(|r| r.value).filter(|v| v.is_finite()).collect();
            let (median, low, high) = median_interval(&samples)?;
            let bandwidths: Vec<f64> = rs.iter().filter_map(|r| r.bandwidth_gb_s).collect();
            let (time, subject) = info(&order[i]);
            Some(CommitPoint {
                commit: order[i].clone(),
                time,
                subject,
                sessions: rs.iter().map(|r| r.session).collect::<BTreeSet<_>>().len(),
                samples,
                median,
                low,
                high,
                bandwidth_gb_s: (!bandwidths.is_empty()).then(|| crate::stats::median(&bandwidths)),
                busy: rs.iter().filter(|r| r.busy).count(),
            })
        })
        .collect()
}

/// The smallest relative change to call, from the calibrated A/A noise when there is one, else
/// from the spread of the series' own samples within each commit (which sees no
/// between-session noise, and so is said).
fn floor(experiment: &str, commits: &[CommitPoint], calibrated: Option<Noise>) -> (f64, String) {
    if let Some(n) = calibrated {
        return ((NOISE_SIGMAS * n.sigma).exp() - 1.0, n.source);
    }
    // Pooled standard deviation of the log within commits.
    let (mut sum, mut dof) = (0.0, 0usize);
    for c in commits.iter().filter(|c| c.samples.len() >= 2 && c.samples.iter().all(|&v| v > 0.0)) {
        let logs: Vec<f64> = c.samples.iter().map(|v| v.ln()).collect();
        let mean = logs.iter().sum::<f64>() / logs.len() as f64;
        sum += logs.iter().map(|l| (l - mean).powi(2)).sum::<f64>();
        dof += logs.len() - 1;
    }
    if dof == 0 {
        return (0.0, "none: no commit has two samples, so every significant change is called".into());
    }
    let sigma = (sum / dof as f64).sqrt();
    (
        (NOISE_SIGMAS * sigma).exp() - 1.0,
        format!(
            "the spread within each commit's samples: no calibration of this figure on this machine, which \
             `cargo xtask calibrate {experiment} --sessions 5 --save-baseline` measures between sessions"
        ),
    )
}
