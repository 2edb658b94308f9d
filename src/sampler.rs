//! Choosing the next token from logits: greedy, temperature, top-k, top-p, with a seeded RNG.

#[cfg(feature = "engine")]
use rand::{Rng, SeedableRng};

/// How to pick tokens. Temperature 0 (or `top_k` 1) is greedy.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SamplingParams {
    /// Divides the logits; 0 means greedy (argmax, lowest id on ties). Any finite value > 0
    /// samples correctly, down to the smallest subnormal (the distribution then collapses onto
    /// the maximum).
    pub temperature: f32,
    /// Keep only the `top_k` most likely tokens; 0 keeps all.
    pub top_k: usize,
    /// Keep the smallest set of most likely tokens whose probability reaches `top_p`; 1 keeps all.
    pub top_p: f32,
    /// Seed of the sampling RNG (ChaCha8).
    pub seed: u64,
}

impl SamplingParams {
    /// Greedy decoding.
    pub fn greedy() -> Self {
        SamplingParams { temperature: 0.0, top_k: 0, top_p: 1.0, seed: 0 }
    }

    /// Whether these parameters always pick the argmax.
    pub fn is_greedy(&self) -> bool {
        self.temperature == 0.0 || self.top_k == 1
    }

    /// Checks the ranges, with a message saying what is accepted.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.temperature.is_finite() && self.temperature >= 0.0) {
            return Err(format!("temperature must be a number >= 0 (0 is greedy), got {}", self.temperature));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(format!("top-p must be in (0, 1] (1 keeps every token), got {}", self.top_p));
        }
        Ok(())
    }
}

/// A sampler with its RNG and scratch space.
///
/// # Performance
/// The scratch vector is allocated once per generation; sampling a token allocates nothing.
#[cfg(feature = "engine")]
#[derive(Debug)]
pub struct Sampler {
    params: SamplingParams,
    rng: rand_chacha::ChaCha8Rng,
    candidates: Vec<(f32, u32)>,
}

#[cfg(feature = "engine")]
impl Sampler {
    /// A sampler for a vocabulary of `vocab_size` tokens.
    pub fn new(params: SamplingParams, vocab_size: usize) -> Self {
        let candidates = if params.is_greedy() { Vec::new() } else { Vec::with_capacity(vocab_size) };
        Sampler { params, rng: rand_chacha::ChaCha8Rng::seed_from_u64(params.seed), candidates }
    }

    /// The next token.
    pub fn sample(&mut self, logits: &[f32]) -> u32 {
        if self.params.is_greedy() {
            return argmax(logits);
        }
        let p = self.params;
        let c = &mut self.candidates;
        c.clear();
        // Raw logits: dividing by the temperature first overflows for a tiny temperature
        // (`logit / 1e-45` is inf, and inf - inf is NaN). Ranking needs no scaling (T > 0 keeps
        // the order); the weights are `exp((logit - max) / T)`, each at most 1.
        c.extend(logits.iter().enumerate().map(|(i, &l)| (l, i as u32)));
        let by_desc = |a: &(f32, u32), b: &(f32, u32)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
        if p.top_k > 0 && p.top_k < c.len() {
            c.select_nth_unstable_by(p.top_k - 1, by_desc);
            c.truncate(p.top_k);
        }
        c.sort_unstable_by(by_desc);
        let max = c[0].0;
        let mut total = 0.0f32;
        for cand in c.iter_mut() {
            cand.0 = ((cand.0 - max) / p.temperature).exp();
            total += cand.0;
        }
        if p.top_p < 1.0 {
            let mut cumulative = 0.0;
            let keep = c
                .iter()
                .position(|cand| {
                    cumulative += cand.0 / total;
                    cumulative >= p.top_p
                })
                .map_or(c.len(), |i| i + 1);
            c.truncate(keep);
            total = c.iter().map(|cand| cand.0).sum();
        }
        let mut r = self.rng.random::<f32>() * total;
        for &(weight, id) in c.iter() {
            if r < weight {
                return id;
            }
            r -= weight;
        }
        c[c.len() - 1].1
    }
}

/// The index of the largest logit (the lowest index on ties; NaN never wins).
#[cfg(feature = "engine")]
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &l) in logits.iter().enumerate() {
        if l > logits[best] {
            best = i;
        }
    }
    best as u32
}

#[cfg(all(test, feature = "engine"))]
mod tests {
    use super::*;

    #[test]
    fn greedy_takes_the_first_maximum() {
        assert_eq!(argmax(&[0.0, 3.0, 1.0, 3.0]), 1);
        let mut s = Sampler::new(SamplingParams::greedy(), 4);
        assert_eq!(s.sample(&[0.0, 1.0, 5.0, 2.0]), 2);
    }

    #[test]
    fn top_k_and_top_p_restrict_the_candidates() {
        let logits = [5.0, 4.9, 0.0, -1.0, 4.8];
        let params = SamplingParams { temperature: 1.0, top_k: 2, top_p: 1.0, seed: 7 };
        let mut s = Sampler::new(params, logits.len());
        let picks: Vec<u32> = (0..200).map(|_| s.sample(&logits)).collect();
        assert!(picks.iter().all(|&id| id == 0 || id == 1), "top-k 2 picked {picks:?}");
        assert!(picks.contains(&0) && picks.contains(&1));
        // top-p small enough keeps only the most likely token.
        let params = SamplingParams { temperature: 1.0, top_k: 0, top_p: 0.2, seed: 7 };
        let mut s = Sampler::new(params, logits.len());
        assert!((0..50).all(|_| s.sample(&logits) == 0));
    }

    #[test]
    fn a_tiny_temperature_samples_the_argmax() {
        // Regression: `logit / 1e-45` overflowed to inf, inf - inf gave NaN weights, and the
        // sampler fell through to its last candidate (the lowest logit).
        let logits = [0.5, 3.0, -2.0, 2.999, -7.0];
        for temperature in [1e-45, f32::MIN_POSITIVE, 1e-30, 1e-6] {
            for (top_k, top_p) in [(0, 1.0), (3, 1.0), (0, 0.5)] {
                let params = SamplingParams { temperature, top_k, top_p, seed: 1 };
                let mut s = Sampler::new(params, logits.len());
                let picks: Vec<u32> = (0..20).map(|_| s.sample(&logits)).collect();
                assert!(picks.iter().all(|&id| id == 1), "T={temperature:e} k={top_k} p={top_p}: {picks:?}");
            }
        }
        // A huge temperature is uniform-ish, never NaN: every id can come out.
        let params = SamplingParams { temperature: f32::MAX, top_k: 0, top_p: 1.0, seed: 2 };
        let mut s = Sampler::new(params, logits.len());
        let picks: Vec<u32> = (0..400).map(|_| s.sample(&logits)).collect();
        assert!((0..5).all(|id| picks.contains(&id)), "{picks:?}");
    }

    #[test]
    fn the_same_seed_samples_the_same_tokens() {
        let logits: Vec<f32> = (0..100).map(|i| (i as f32 * 0.37).sin()).collect();
        let params = SamplingParams { temperature: 0.8, top_k: 40, top_p: 0.9, seed: 3 };
        let run = || {
            let mut s = Sampler::new(params, logits.len());
            (0..20).map(|_| s.sample(&logits)).collect::<Vec<_>>()
        };
        assert_eq!(run(), run());
    }
}
