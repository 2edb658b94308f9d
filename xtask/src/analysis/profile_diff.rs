//! Where the CPU time went: two sets of CPU profiles (collapsed stacks, several processes per
//! side) compared frame by frame. Each frame's share of a profile's samples, inclusive (stacks it
//! is on) and self (stacks it ends), is a proportion, so profiles of different lengths compare;
//! times a profile's CPU time per op it is milliseconds per op. A frame **changed** when the
//! seeded bootstrap 95% interval of its mean share difference (resampling each side's profiles)
//! excludes 0; with one profile on a side nothing is judged.
//!
//! A third measure names the engine's code: a stack's samples go to its innermost frame of the
//! engine (a function path under `smallmind::`), so that time in `expf`, `memcpy` or a `core`
//! iterator counts for the kernel that called it. The suspects of a changed metric are ranked
//! by it.
//!
//! Frames are matched by function path: pprof-rs demangles without the hash suffix, and a
//! `::h0123456789abcdef` suffix is stripped where one remains, so two builds of one revision, or
//! two revisions, match by name.

use crate::stats::{RESAMPLES, Speedup};
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet};

/// The profiles of each variant a report compares, by variant name: CPU profiles (collapsed
/// stacks) and heap profiles.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VariantProfiles {
    pub cpu: BTreeMap<String, Vec<Folded>>,
    pub heap: BTreeMap<String, super::heap_diff::HeapProfile>,
}

/// One CPU profile: its collapsed stacks and the profile run's CPU time per op.
#[derive(Debug, Clone, PartialEq)]
pub struct Folded {
    /// Root first; counts in samples.
    pub stacks: Vec<(Vec<String>, u64)>,
    pub total: u64,
    /// The profile run's wall time per op, in milliseconds (its samples cover that time).
    pub ms_per_op: f64,
}

impl Folded {
    /// Parses collapsed stacks (`frame;frame;...;leaf COUNT` per line; blank lines skipped).
    /// Errors name the line.
    pub fn parse(text: &str, ms_per_op: f64) -> Result<Folded, String> {
        let mut stacks = Vec::new();
        for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let (stack, count) =
                line.rsplit_once(' ').ok_or_else(|| format!("line {}: no sample count", i + 1))?;
            let count: u64 = count
                .trim()
                .parse()
                .map_err(|_| format!("line {}: `{count}` is not a sample count", i + 1))?;
            stacks.push((stack.split(';').map(function_path).collect(), count));
        }
        let total = stacks.iter().map(|(_, n)| n).sum();
        Ok(Folded { stacks, total, ms_per_op })
    }

    /// Each frame's share of the samples: (inclusive, self, own).
    fn shares(&self) -> BTreeMap<&str, [f64; 3]> {
        let mut out: BTreeMap<&str, [f64; 3]> = BTreeMap::new();
        if self.total == 0 {
            return out;
        }
        let total = self.total as f64;
        for (stack, count) in &self.stacks {
            let share = *count as f64 / total;
            let unique: BTreeSet<&str> = stack.iter().map(String::as_str).collect();
            for frame in unique {
                out.entry(frame).or_default()[0] += share;
            }
            if let Some(leaf) = stack.last() {
                out.entry(leaf).or_default()[1] += share;
            }
            if let Some(own) = innermost_engine_frame(stack) {
                out.entry(own).or_default()[2] += share;
            }
        }
        out
    }
}

/// The innermost frame of the engine's own code in `stack` (root first), if any.
pub fn innermost_engine_frame(stack: &[String]) -> Option<&str> {
    stack.iter().rev().find(|f| is_engine_frame(f)).map(String::as_str)
}

/// Whether a function path is the engine's: `smallmind::...` or `<smallmind::... as ...>::...`.
pub fn is_engine_frame(frame: &str) -> bool {
    frame.strip_prefix('<').unwrap_or(frame).starts_with("smallmind::")
}

/// The function path of a frame: without a trailing `::h` + 16 hex digits hash, control
/// characters written as `\u{1b}`.
pub fn function_path(frame: &str) -> String {
    let frame = frame.trim();
    let path = match frame.rsplit_once("::h") {
        Some((path, hash)) if hash.len() == 16 && hash.chars().all(|c| c.is_ascii_hexdigit()) => path,
        _ => frame,
    };
    // A control character (an ESC from a damaged or foreign profile) would make the flame
    // graph's SVG invalid XML and go raw into the report: it is written out visibly instead.
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if c.is_control() {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

/// One frame's share in both sets, and their difference.
#[derive(Debug, Clone, PartialEq)]
pub struct Share {
    /// Mean share over each side's profiles (0..1).
    pub reference: f64,
    pub candidate: f64,
    /// candidate − reference, in share (−1..1), with its bootstrap 95% interval (`point`, `low`,
    /// `high`); `None` with fewer than two profiles on a side.
    pub difference: Option<Speedup>,
    /// Mean milliseconds per op, reference then candidate.
    pub ms_per_op: [f64; 2],
}

impl Share {
    /// Whether the interval of the difference excludes 0.
    pub fn changed(&self) -> bool {
        self.difference.is_some_and(|d| d.low > 0.0 || d.high < 0.0)
    }

    /// Candidate minus reference, milliseconds per op.
    pub fn ms_change(&self) -> f64 {
        self.ms_per_op[1] - self.ms_per_op[0]
    }
}

/// One frame in both sets.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameChange {
    pub frame: String,
    /// Stacks the frame is on.
    pub inclusive: Share,
    /// Stacks it ends.
    pub self_time: Share,
    /// Stacks whose innermost engine frame it is (zero for frames outside the engine).
    pub own: Share,
}

/// Two sets of CPU profiles compared.
#[derive(Debug, Clone, PartialEq)]
pub struct CpuDiff {
    pub reference: String,
    pub candidate: String,
    /// Profiles on each side: reference, candidate.
    pub profiles: [usize; 2],
    /// Every frame with at least [`MIN_SHARE`] inclusive share on a side, those whose own time
    /// changed first, by the size of the change, then the rest by name.
    pub frames: Vec<FrameChange>,
    /// Diff files over the 1 MB a committed file may have, by file name: where they were
    /// written instead (under `target/`), set when they are drawn.
    pub elsewhere: BTreeMap<String, String>,
}

/// Frames below this inclusive share on both sides are left out: a few samples judge nothing.
pub const MIN_SHARE: f64 = 0.005;

impl CpuDiff {
    /// The engine's frames whose own time changed, in the direction `slower` (more time per op
    /// in the candidate) or not, largest change first: the suspects. Their share of the samples
    /// must have moved the same way: in a candidate much faster overall, a function whose time
    /// fell a little but whose share grew did not make it faster.
    pub fn changed_own(&self, slower: bool) -> impl Iterator<Item = &FrameChange> {
        self.frames.iter().filter(move |f| {
            f.own.changed()
                && (f.own.ms_change() > 0.0) == slower
                && f.own.difference.is_some_and(|d| (d.point > 0.0) == slower)
        })
    }

    /// The frames whose own time changed, either way.
    pub fn changed_frames(&self) -> BTreeSet<String> {
        self.frames.iter().filter(|f| f.own.changed()).map(|f| f.frame.clone()).collect()
    }
}

/// Compares `candidate`'s profiles with `reference`'s.
pub fn diff(reference: (&str, &[Folded]), candidate: (&str, &[Folded])) -> CpuDiff {
    let shares = |set: &[Folded]| -> Vec<(BTreeMap<String, [f64; 3]>, f64)> {
        set.iter()
            .map(|f| (f.shares().into_iter().map(|(k, v)| (k.to_string(), v)).collect(), f.ms_per_op))
            .collect()
    };
    let (r, c) = (shares(reference.1), shares(candidate.1));
    let mut names: BTreeSet<&String> = BTreeSet::new();
    for (profile, _) in r.iter().chain(&c) {
        names.extend(profile.keys());
    }
    let mut frames: Vec<FrameChange> = names
        .into_iter()
        .map(|name| {
            let pick = |set: &[(BTreeMap<String, [f64; 3]>, f64)], measure: usize| -> Vec<(f64, f64)> {
                set.iter()
                    .map(|(p, ms)| {
                        let share = p.get(name).map_or(0.0, |m| m[measure]);
                        (share, share * ms)
                    })
                    .collect()
            };
            FrameChange {
                frame: name.clone(),
                inclusive: share(&pick(&r, 0), &pick(&c, 0)),
                self_time: share(&pick(&r, 1), &pick(&c, 1)),
                own: share(&pick(&r, 2), &pick(&c, 2)),
            }
        })
        .filter(|f| f.inclusive.reference.max(f.inclusive.candidate) >= MIN_SHARE)
        .collect();
    frames.sort_by(|a, b| {
        b.own
            .changed()
            .cmp(&a.own.changed())
            .then(b.own.ms_change().abs().total_cmp(&a.own.ms_change().abs()))
            .then(a.frame.cmp(&b.frame))
    });
    CpuDiff {
        reference: reference.0.to_string(),
        candidate: candidate.0.to_string(),
        profiles: [reference.1.len(), candidate.1.len()],
        frames,
        elsewhere: BTreeMap::new(),
    }
}

/// The share of one frame on both sides, from its `(share, ms per op)` per profile.
fn share(reference: &[(f64, f64)], candidate: &[(f64, f64)]) -> Share {
    let mean = |v: &[(f64, f64)], k: usize| {
        if v.is_empty() {
            0.0
        } else {
            v.iter().map(|x| if k == 0 { x.0 } else { x.1 }).sum::<f64>() / v.len() as f64
        }
    };
    let (r, c) = (mean(reference, 0), mean(candidate, 0));
    let difference = (reference.len() >= 2 && candidate.len() >= 2).then(|| {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0xd1ff);
        let mut resample = |v: &[(f64, f64)]| {
            (0..v.len()).map(|_| v[rng.random_range(0..v.len())].0).sum::<f64>() / v.len() as f64
        };
        let mut diffs: Vec<f64> = (0..RESAMPLES).map(|_| resample(candidate) - resample(reference)).collect();
        diffs.sort_by(f64::total_cmp);
        let q = |p: f64| smallmind::bench::stats::quantile_sorted(&diffs, p);
        Speedup { point: c - r, low: q(0.025), high: q(0.975) }
    });
    Share { reference: r, candidate: c, difference, ms_per_op: [mean(reference, 1), mean(candidate, 1)] }
}

/// The differential collapsed stacks of the two sets (`stack BEFORE AFTER` per line, sorted, the
/// input of a differential flame graph): each side's mean time per op in units of 0.1 µs, so
/// that profiles of any length compare. Only the stacks whose innermost engine frame is among
/// the `changed` keep their difference; the others get the candidate's count on both sides, so
/// that only changed frames (and the frames above and below them) are coloured.
pub fn differential_lines(
    reference: &[Folded],
    candidate: &[Folded],
    changed: &BTreeSet<String>,
) -> Vec<String> {
    let per_op = |set: &[Folded]| -> BTreeMap<String, f64> {
        let mut out: BTreeMap<String, f64> = BTreeMap::new();
        for f in set.iter().filter(|f| f.total > 0) {
            for (stack, count) in &f.stacks {
                let units = *count as f64 / f.total as f64 * f.ms_per_op * 1e4 / set.len() as f64;
                *out.entry(stack.join(";")).or_default() += units;
            }
        }
        out
    };
    let (before, after) = (per_op(reference), per_op(candidate));
    let keys: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    keys.into_iter()
        .filter_map(|stack| {
            let a = after.get(stack).copied().unwrap_or(0.0).round() as u64;
            let frames: Vec<String> = stack.split(';').map(str::to_string).collect();
            let own = innermost_engine_frame(&frames).unwrap_or_default();
            let b = if changed.contains(own) {
                before.get(stack).copied().unwrap_or(0.0).round() as u64
            } else {
                a
            };
            (a > 0 || b > 0).then(|| format!("{stack} {b} {a}"))
        })
        .collect()
}

#[cfg(test)]
#[path = "profile_diff_tests.rs"]
mod tests;
