//! Tests of `changepoint`: seeded synthetic histories with known steps, and pure noise.
use super::*;
use rand::Rng;

/// `per` samples per commit around each of `means`, with Gaussian noise of relative standard
/// deviation `noise` (Box-Muller on seeded uniforms).
fn history(means: &[f64], per: usize, noise: f64, seed: u64) -> Vec<Vec<f64>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut gauss = move || {
        let (u, v): (f64, f64) = (1.0 - rng.random::<f64>(), rng.random());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    };
    means.iter().map(|&mean| (0..per).map(|_| mean * (1.0 + noise * gauss())).collect()).collect()
}

/// `commits` means of 100, times `factor` from each `(commit, factor)` on.
fn steps(commits: usize, steps: &[(usize, f64)]) -> Vec<f64> {
    let level = |c: usize| steps.iter().filter(|s| c >= s.0).map(|s| s.1).product::<f64>();
    (0..commits).map(|c| 100.0 * level(c)).collect()
}

fn indices(changes: &[ChangePoint]) -> Vec<usize> {
    changes.iter().map(|c| c.index).collect()
}

#[test]
fn the_scan_matches_the_statistic_computed_pair_by_pair() {
    let groups = history(&steps(4, &[(2, 1.1)]), 3, 0.02, 9);
    let segment = Segment::new(&groups, 0, 4);
    let values = &segment.values;
    let sum = |xs: &[f64], ys: &[f64]| -> f64 {
        xs.iter().flat_map(|x| ys.iter().map(move |y| (x - y).abs())).sum()
    };
    let naive = |values: &[f64], m: usize| {
        let (x, y) = values.split_at(m);
        let (mf, nf) = (m as f64, y.len() as f64);
        let q = 2.0 * sum(x, y) / (mf * nf) - sum(x, x) / (mf * (mf - 1.0)) - sum(y, y) / (nf * (nf - 1.0));
        mf * nf / (mf + nf) * q
    };
    // Every split (X = values[..m], Y = values[m..end]) at boundaries: the scan's best is the largest.
    let mut expected = Vec::new();
    for end in [6, 9, 12] {
        for m in [3, 6, 9].into_iter().filter(|&m| m < end) {
            expected.push(naive(&values[..end], m));
        }
    }
    let (q, cut) = segment.best_split(&(0..12).collect::<Vec<_>>()).unwrap();
    assert_eq!(cut, 2);
    let largest = expected.iter().copied().fold(f64::MIN, f64::max);
    assert!((q - largest).abs() < 1e-9, "{q} {expected:?}");
}

#[test]
fn a_change_that_comes_and_goes_is_found_at_both_ends() {
    // Fast, 4x slower, fast again: three commits of five samples.
    let d = detect(&history(&[100.0, 25.0, 100.0], 5, 0.02, 5), &Options::default());
    assert_eq!(indices(&d.changes), [1, 2], "{d:?}");
}

#[test]
fn a_single_step_is_found_where_it_is() {
    let d = detect(&history(&steps(12, &[(7, 1.1)]), 5, 0.02, 1), &Options::default());
    assert_eq!(indices(&d.changes), [7], "{d:?}");
    assert!((d.changes[0].relative - 0.10).abs() < 0.03 && d.changes[0].p_value <= 0.01, "{d:?}");
    assert!(d.below_floor.is_empty());
}

#[test]
fn two_steps_are_both_found() {
    let d = detect(&history(&steps(15, &[(5, 0.9), (10, 1.15)]), 5, 0.02, 2), &Options::default());
    assert_eq!(indices(&d.changes), [5, 10], "{d:?}");
    assert!(d.changes[0].relative < -0.07 && d.changes[1].relative > 0.12, "{d:?}");
}

#[test]
fn pure_noise_rarely_raises_a_change() {
    let options = Options { min_relative: 0.02, ..Options::default() };
    let (mut called, mut significant) = (0, 0);
    for seed in 0..100 {
        let d = detect(&history(&[100.0; 10], 5, 0.02, 1000 + seed), &options);
        called += usize::from(!d.changes.is_empty());
        significant += usize::from(!d.changes.is_empty() || !d.below_floor.is_empty());
    }
    assert!(called <= 5, "{called} of 100 A/A histories called a change ({significant} significant)");
}

#[test]
fn the_largest_history_finds_each_of_three_steps() {
    // 50 commits of 20 samples: the size the scan is budgeted for (40 ms here at opt-level 1).
    let groups = history(&steps(50, &[(12, 1.05), (30, 0.93), (41, 1.1)]), 20, 0.02, 77);
    assert_eq!(indices(&detect(&groups, &Options::default()).changes), [12, 30, 41]);
}

#[test]
fn the_answer_depends_on_the_input_alone() {
    let groups = history(&steps(12, &[(6, 1.08)]), 5, 0.02, 3);
    let options = Options::default();
    assert_eq!(detect(&groups, &options), detect(&groups, &options));
    let reseeded = detect(&groups, &Options { seed: 42, ..options });
    assert_eq!(indices(&reseeded.changes), indices(&detect(&groups, &options).changes));
    assert_eq!(indices(&reseeded.changes), [6]);
}

#[test]
fn a_change_within_the_floor_is_set_aside() {
    let groups = history(&steps(10, &[(5, 1.03)]), 5, 0.005, 4);
    let d = detect(&groups, &Options { min_relative: 0.05, ..Options::default() });
    assert!(d.changes.is_empty(), "{d:?}");
    assert_eq!(indices(&d.below_floor), [5]);
    assert!((d.below_floor[0].relative - 0.03).abs() < 0.01, "{d:?}");
}

#[test]
fn degenerate_histories_have_no_change() {
    let (none, options) = (Detection::default(), Options::default());
    assert_eq!(detect(&[], &options), none);
    assert_eq!(detect(&[vec![1.0, 2.0, 3.0]], &options), none);
    assert_eq!(detect(&vec![vec![5.0; 4]; 10], &options), none);
    let nan = vec![vec![f64::NAN, 5.0, f64::INFINITY], vec![f64::NAN], vec![5.0, 5.0], vec![], vec![5.0]];
    assert_eq!(detect(&nan, &options), none);
    assert_eq!(detect(&[vec![], vec![], vec![]], &options), none);
}

#[test]
fn indices_count_the_commits_without_samples() {
    let mut groups = history(&steps(12, &[(7, 1.1)]), 5, 0.02, 1);
    groups[7] = vec![f64::NAN];
    groups.insert(2, Vec::new());
    // The step now lies between input groups 7 and 9 (8 has no samples): it is called at 9.
    assert_eq!(indices(&detect(&groups, &Options::default()).changes), [9]);
}
