//! Change points in a performance history: between which commits a metric moved, from several
//! samples per commit (the decode tokens/s of 3-10 processes each). Pure arithmetic on samples;
//! reading a history and showing its changes live elsewhere.
//!
//! The method is E-divisive means (Matteson & James, "A Nonparametric Approach for Multiple
//! Change Point Analysis of Multivariate Data", JASA 109(505), 2014) with exponent α = 1
//! (absolute differences), used hierarchically as in the paper, with these choices:
//! - **Changes lie between commits.** Splits are tried at commit boundaries only, one commit at
//!   least on each side; the samples of a commit are never divided.
//! - **The statistic.** In a segment of commits `[s, e)`, boundary `k` splits the samples into X
//!   (commits `s..k`, m samples) and Y (commits `k..e`, n samples):
//!   `Q(k) = mn/(m+n) · (2/(mn) Σ|x−y| − Σ_{i<j}|x_i−x_j| / C(m,2) − Σ_{i<j}|y_i−y_j| / C(n,2))`,
//!   a within-set term with fewer than two samples counting as 0. As in the paper, Y may also
//!   end before the segment does (at any later boundary), and Q is maximised over both: a
//!   change that comes and goes (fast, slow, fast) stands out.
//! - **Hierarchical, with a permutation test.** From one segment (every commit), the boundary
//!   with the largest Q over all current segments is tested as in the paper: the samples are
//!   shuffled within each segment (commit sizes kept) and the largest Q over all segments
//!   recomputed, R times; `p = (1 + #{permuted ≥ observed}) / (R + 1)`. A split with `p ≤ alpha`
//!   is accepted and the search goes on; the first that is not ends it. The shuffles come from a
//!   ChaCha8 seeded with [`Options::seed`]: the same input always gives the same answer.
//! - **A minimum magnitude (ours, not the paper's)**, set by the caller from the experiment's
//!   measured A/A noise. A change's size is the relative change of the medians of the pooled
//!   samples of its two neighbouring segments, compared in log terms (a fall to 0.9x is as
//!   large as a rise to 1/0.9x); while some change is smaller than
//!   [`Options::min_relative`], the smallest is set aside in [`Detection::below_floor`] (seen,
//!   but within the noise) and its two segments merged.
//! - **Degenerate input.** NaN and infinite samples are ignored; commits without samples are
//!   skipped, but indices refer to the input's commits. Fewer than two commits with samples, or
//!   samples all equal, have no change.
//!
//! # Performance
//! A scan of a segment's boundaries for one end costs O(N log N) for N samples: each sample's sum
//! of |differences| with those before it comes from a Fenwick tree over ranks, the other sums
//! from running totals; the scan runs once per end, so a segment of G commits costs
//! O(G N log N). A test is R scans of every segment, cut short once p cannot reach alpha.

use crate::stats::median;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

/// How [`detect`] decides.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    /// Permutations per test (R): a p-value is a multiple of 1 / (R + 1).
    pub permutations: usize,
    /// The significance level a split must reach (`p ≤ alpha`); not the paper's exponent α.
    pub alpha: f64,
    /// The smallest relative change of medians called a change (0.02: a rise by 2%, or a fall
    /// to 1/1.02x), from the experiment's A/A noise; 0 calls every significant change.
    pub min_relative: f64,
    /// The seed of the permutations' generator.
    pub seed: u64,
}

impl Default for Options {
    /// 499 permutations, alpha 0.01, no magnitude floor, a fixed seed.
    fn default() -> Self {
        Options { permutations: 499, alpha: 0.01, min_relative: 0.0, seed: 0xc4a7_9e5d }
    }
}

/// One change in the history.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChangePoint {
    /// The index of the first group after the change (the change lies between groups index-1
    /// and index; groups without samples in between belong to neither side).
    pub index: usize,
    /// The permutation test's p-value when the split was accepted.
    pub p_value: f64,
    /// Medians of the pooled samples of the segments before and after (between the neighbouring
    /// change points).
    pub before: f64,
    pub after: f64,
    /// after / before - 1 (±infinity when `before` is 0 and `after` is not).
    pub relative: f64,
}

/// The changes of a history.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Detection {
    /// The changes called, in index order.
    pub changes: Vec<ChangePoint>,
    /// Significant changes smaller than [`Options::min_relative`], in index order, each with its
    /// medians when it was set aside: below the noise floor.
    pub below_floor: Vec<ChangePoint>,
}

/// The change points of `groups` (the samples of each commit, in commit order).
pub fn detect(groups: &[Vec<f64>], options: &Options) -> Detection {
    let series = Series::new(groups);
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    // Accepted splits as (first kept group after, p-value), in order.
    let mut cuts: Vec<(usize, f64)> = Vec::new();
    loop {
        let segments = series.segments(&cuts);
        let Some((observed, cut)) = best(&segments, None) else { break };
        // NaN only from sums that overflow (samples near f64::MAX): nothing is called then.
        if observed.is_nan() || observed <= 0.0 {
            break;
        }
        let p = p_value(&segments, observed, options, &mut rng);
        if p > options.alpha || options.alpha.is_nan() {
            break;
        }
        cuts.insert(cuts.partition_point(|c| c.0 < cut), (cut, p));
    }
    series.apply_floor(cuts, options.min_relative)
}

/// The input's groups that have finite samples, each with its index in the input.
struct Series {
    index: Vec<usize>,
    groups: Vec<Vec<f64>>,
}

impl Series {
    fn new(groups: &[Vec<f64>]) -> Series {
        let finite = |g: &Vec<f64>| g.iter().copied().filter(|x| x.is_finite()).collect::<Vec<f64>>();
        let (index, groups) = groups.iter().map(finite).enumerate().filter(|(_, g)| !g.is_empty()).unzip();
        Series { index, groups }
    }

    /// The segments between `cuts` that have a boundary to try (two groups or more).
    fn segments(&self, cuts: &[(usize, f64)]) -> Vec<Segment> {
        let ends: Vec<usize> = cuts.iter().map(|c| c.0).chain([self.groups.len()]).collect();
        let starts = [0].into_iter().chain(cuts.iter().map(|c| c.0));
        starts.zip(ends).filter(|(s, e)| e - s >= 2).map(|(s, e)| Segment::new(&self.groups, s, e)).collect()
    }

    /// Each split of `cuts` described by its neighbouring segments' medians.
    fn describe(&self, cuts: &[(usize, f64)]) -> Vec<ChangePoint> {
        (0..cuts.len())
            .map(|j| {
                let (cut, p_value) = cuts[j];
                let start = if j == 0 { 0 } else { cuts[j - 1].0 };
                let end = cuts.get(j + 1).map_or(self.groups.len(), |c| c.0);
                let pooled = |s: usize, e: usize| median(&self.groups[s..e].concat());
                let (before, after) = (pooled(start, cut), pooled(cut, end));
                let relative = match (before == 0.0, after == 0.0) {
                    (false, _) => after / before - 1.0,
                    (true, true) => 0.0,
                    (true, false) => f64::INFINITY.copysign(after),
                };
                ChangePoint { index: self.index[cut], p_value, before, after, relative }
            })
            .collect()
    }

    /// Sets aside, smallest first, the changes below `min_relative` (by [`size`]), merging their
    /// segments.
    fn apply_floor(&self, mut cuts: Vec<(usize, f64)>, min_relative: f64) -> Detection {
        let mut below_floor: Vec<ChangePoint> = Vec::new();
        loop {
            let changes = self.describe(&cuts);
            let smallest = changes
                .iter()
                .enumerate()
                .filter(|(_, c)| size(c.relative) < size(min_relative))
                .min_by(|a, b| size(a.1.relative).total_cmp(&size(b.1.relative)));
            let Some((j, change)) = smallest else {
                below_floor.sort_by_key(|c| c.index);
                return Detection { changes, below_floor };
            };
            below_floor.push(*change);
            cuts.remove(j);
        }
    }
}

/// The samples of one segment, prepared for scans in any order.
struct Segment {
    /// The segment's first group (an index into [`Series::groups`]).
    start: usize,
    /// The samples, less their median (a history's values then sum without cancellation).
    values: Vec<f64>,
    /// Each sample's rank among `values` (ties broken by position), 0..N.
    ranks: Vec<usize>,
    /// The sample count before each boundary, increasing: boundary j lies before group
    /// `start + j + 1`.
    cuts: Vec<usize>,
}

impl Segment {
    fn new(groups: &[Vec<f64>], start: usize, end: usize) -> Segment {
        let raw = groups[start..end].concat();
        let centre = median(&raw);
        let values: Vec<f64> = raw.iter().map(|x| x - centre).collect();
        let n = values.len();
        let mut by_value: Vec<usize> = (0..n).collect();
        by_value.sort_by(|&a, &b| values[a].total_cmp(&values[b]).then(a.cmp(&b)));
        let mut ranks = vec![0; n];
        for (p, &i) in by_value.iter().enumerate() {
            ranks[i] = p;
        }
        let cuts = (start + 1..end).map(|k| groups[start..k].iter().map(Vec::len).sum()).collect();
        Segment { start, values, ranks, cuts }
    }

    /// The largest Q over the splits with the samples taken in `order` (a permutation of 0..N),
    /// and the first group after it. As in the paper, the split's end varies too: X is the
    /// samples before a boundary, Y those from it up to a later boundary or the segment's end (a
    /// change that comes and goes is found). The first split wins a tie.
    fn best_split(&self, order: &[usize]) -> Option<(f64, usize)> {
        let ends = self.cuts.iter().copied().skip(1).chain([self.values.len()]);
        let mut best = None::<(f64, usize)>;
        for end in ends {
            if let Some((q, cut)) = self.best_split_before(&order[..end])
                && best.is_none_or(|(b, _)| q > b)
            {
                best = Some((q, cut));
            }
        }
        best
    }

    /// [`Self::best_split`] with the end fixed at the end of `order` (a prefix of a permutation).
    fn best_split_before(&self, order: &[usize]) -> Option<(f64, usize)> {
        let n = order.len();
        let (rows, within) = self.rows(order);
        let mut tree =
            Fenwick { count: vec![0; self.values.len() + 1], sum: vec![0.0; self.values.len() + 1] };
        let (mut within_x, mut rows_x, mut sum) = (0.0, 0.0, 0.0);
        let (mut next, mut best) = (0, None::<(f64, usize)>);
        for (t, &i) in order.iter().enumerate() {
            let (z, rank) = (self.values[i], self.ranks[i]);
            let (count_below, sum_below) = tree.below(rank);
            let count_above = (t - count_below) as f64;
            within_x += (count_below as f64 * z - sum_below) + ((sum - sum_below) - count_above * z);
            rows_x += rows[t];
            sum += z;
            tree.add(rank, z);
            if t + 1 < n && self.cuts.get(next) == Some(&(t + 1)) {
                // Each row of X counts its pairs within X twice and its pairs across once.
                let q = energy(t + 1, n - t - 1, within_x, rows_x - 2.0 * within_x, within);
                if best.is_none_or(|(b, _)| q > b) {
                    best = Some((q, self.start + next + 1));
                }
                next += 1;
            }
        }
        best
    }

    /// For the samples `order` (by position in it), each one's sum of |differences| with the
    /// others, and the sum over all pairs.
    fn rows(&self, order: &[usize]) -> (Vec<f64>, f64) {
        let n = order.len();
        let mut by_value: Vec<usize> = (0..n).collect();
        by_value.sort_by_key(|&p| self.ranks[order[p]]);
        let mut rows = vec![0.0; n];
        let (total, mut below) = (order.iter().map(|&i| self.values[i]).sum::<f64>(), 0.0);
        for (k, &p) in by_value.iter().enumerate() {
            let z = self.values[order[p]];
            // The k samples below z, then the n - k - 1 above it.
            rows[p] = (k as f64 * z - below) + ((total - below - z) - (n - k - 1) as f64 * z);
            below += z;
        }
        let within = rows.iter().sum::<f64>() / 2.0;
        (rows, within)
    }
}

/// A change's size in log terms, `|ln(1 + relative)|`: a fall and a rise by the same factor
/// (0.9x and 1/0.9x) are the same size.
fn size(relative: f64) -> f64 {
    (1.0 + relative).ln().abs()
}

/// Q of a split into m and n samples, from the sums of |differences| within the first part,
/// across the parts and within the whole.
fn energy(m: usize, n: usize, within_x: f64, across: f64, within: f64) -> f64 {
    let within_y = within - within_x - across;
    let mean_within = |sum: f64, k: f64| if k < 2.0 { 0.0 } else { sum / (k * (k - 1.0) / 2.0) };
    let (m, n) = (m as f64, n as f64);
    m * n / (m + n) * (2.0 * across / (m * n) - mean_within(within_x, m) - mean_within(within_y, n))
}

/// The largest Q over every segment's boundaries and the first group after it; with `rng`,
/// each segment's samples are shuffled first.
fn best(segments: &[Segment], mut rng: Option<&mut ChaCha8Rng>) -> Option<(f64, usize)> {
    let mut best: Option<(f64, usize)> = None;
    for segment in segments {
        let mut order: Vec<usize> = (0..segment.values.len()).collect();
        if let Some(rng) = rng.as_deref_mut() {
            order.shuffle(rng);
        }
        if let Some((q, cut)) = segment.best_split(&order)
            && best.is_none_or(|(b, _)| q > b)
        {
            best = Some((q, cut));
        }
    }
    best
}

/// The permutation test's p-value for `observed`, or a lower bound above `alpha` once the
/// permutations left cannot bring it down to `alpha`.
fn p_value(segments: &[Segment], observed: f64, options: &Options, rng: &mut ChaCha8Rng) -> f64 {
    let r = options.permutations as f64;
    // Orders that tie with the observed one may differ from it by rounding only.
    let tolerance = 1e-12 * observed.abs();
    let mut exceed = 0.0;
    for _ in 0..options.permutations {
        if best(segments, Some(&mut *rng)).is_some_and(|(q, _)| q + tolerance >= observed) {
            exceed += 1.0;
            if (1.0 + exceed) / (r + 1.0) > options.alpha {
                break;
            }
        }
    }
    (1.0 + exceed) / (r + 1.0)
}

/// Counts and sums of the samples added so far, by rank (a Fenwick tree).
struct Fenwick {
    count: Vec<usize>,
    sum: Vec<f64>,
}

impl Fenwick {
    fn add(&mut self, rank: usize, z: f64) {
        let mut i = rank + 1;
        while i < self.count.len() {
            self.count[i] += 1;
            self.sum[i] += z;
            i += i & i.wrapping_neg();
        }
    }

    /// The count and sum of the samples added with a rank below `rank`.
    fn below(&self, rank: usize) -> (usize, f64) {
        let (mut i, mut count, mut sum) = (rank, 0, 0.0);
        while i > 0 {
            count += self.count[i];
            sum += self.sum[i];
            i &= i - 1;
        }
        (count, sum)
    }
}

#[cfg(test)]
#[path = "changepoint_tests.rs"]
mod tests;
