//! Order statistics of raw samples: median, p10/p90, MAD. Nothing here knows what it measures.

/// Summary of one metric's samples.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Stat {
    /// Samples summarised.
    pub n: usize,
    pub median: f64,
    pub p10: f64,
    pub p90: f64,
    /// Median absolute deviation from the median (unscaled).
    pub mad: f64,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
}

impl Stat {
    /// The summary of `samples`, or `None` when there are none (NaNs are ignored).
    pub fn of(samples: &[f64]) -> Option<Stat> {
        let mut sorted: Vec<f64> = samples.iter().copied().filter(|x| !x.is_nan()).collect();
        if sorted.is_empty() {
            return None;
        }
        sorted.sort_by(f64::total_cmp);
        let median = quantile_sorted(&sorted, 0.5);
        let mut deviations: Vec<f64> = sorted.iter().map(|x| (x - median).abs()).collect();
        deviations.sort_by(f64::total_cmp);
        Some(Stat {
            n: sorted.len(),
            median,
            p10: quantile_sorted(&sorted, 0.1),
            p90: quantile_sorted(&sorted, 0.9),
            mad: quantile_sorted(&deviations, 0.5),
            min: sorted[0],
            max: sorted[sorted.len() - 1],
            mean: sorted.iter().sum::<f64>() / sorted.len() as f64,
        })
    }
}

/// The `q` quantile of ascending `sorted` samples, interpolating linearly between order
/// statistics (Hyndman & Fan type 7, the default of R and NumPy).
pub fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    assert!(!sorted.is_empty(), "quantile of no samples");
    let h = (sorted.len() - 1) as f64 * q.clamp(0.0, 1.0);
    let (lo, hi) = (h.floor() as usize, h.ceil() as usize);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_like_numpy() {
        let s = Stat::of(&[4.0, 1.0, 3.0, 2.0, 10.0]).unwrap();
        assert_eq!((s.n, s.median, s.min, s.max, s.mean), (5, 3.0, 1.0, 10.0, 4.0));
        // numpy.percentile([1, 2, 3, 4, 10], [10, 90]) == [1.4, 7.6]
        assert!((s.p10 - 1.4).abs() < 1e-12 && (s.p90 - 7.6).abs() < 1e-12, "{s:?}");
        // |x - 3| = [2, 1, 0, 1, 7] -> median 1
        assert_eq!(s.mad, 1.0);
    }

    #[test]
    fn empty_and_nan_samples() {
        assert_eq!(Stat::of(&[]), None);
        assert_eq!(Stat::of(&[f64::NAN]), None);
        assert_eq!(Stat::of(&[f64::NAN, 2.0]).unwrap().median, 2.0);
    }
}
