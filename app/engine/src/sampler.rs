//! Choosing the next token from logits: greedy, or seeded temperature + top-p.

use rand::{RngExt as _, SeedableRng as _};
use rand_chacha::ChaCha8Rng;

/// How the next token is chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sampling {
    /// The highest logit (the first one on ties, as `torch.argmax`).
    Greedy,
    /// Temperature scaling, then nucleus (top-p) sampling from a seeded generator.
    TopP {
        /// Logits are divided by this (> 0).
        temperature: f32,
        /// Smallest set of tokens whose probability reaches this mass (0 < p <= 1).
        top_p: f32,
        /// Seed of the random generator (ChaCha8: same seed, same tokens, everywhere).
        seed: u64,
    },
}

/// A sampler with its random state.
/// Also the random state of speculative sampled decoding, kept from turn to turn
/// ([`crate::speculative::TurnSampler`]).
#[derive(Debug, Clone)]
pub struct Sampler {
    sampling: Sampling,
    pub(crate) rng: ChaCha8Rng,
}

impl Sampler {
    /// A sampler for `sampling`.
    pub fn new(sampling: Sampling) -> Self {
        let seed = match sampling {
            Sampling::Greedy => 0,
            Sampling::TopP { seed, .. } => seed,
        };
        Self {
            sampling,
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// The sampling it was made for.
    pub fn sampling(&self) -> Sampling {
        self.sampling
    }

    /// Picks a token id from one row of logits.
    pub fn sample(&mut self, logits: &[f32]) -> u32 {
        match self.sampling {
            Sampling::Greedy => argmax(logits),
            Sampling::TopP {
                temperature, top_p, ..
            } => {
                let probs = top_p_distribution(logits, temperature, top_p);
                let draw: f64 = self.rng.random();
                let mut acc = 0.0;
                for &(id, p) in &probs {
                    acc += p;
                    if draw < acc {
                        return id;
                    }
                }
                // Rounding left a sliver above the last cumulative sum.
                probs.last().map_or_else(|| argmax(logits), |&(id, _)| id)
            }
        }
    }
}

/// Index of the largest logit; the first one on ties; NaNs never win.
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0usize;
    let mut best_value = f32::NEG_INFINITY;
    for (i, &v) in logits.iter().enumerate() {
        if v > best_value {
            best = i;
            best_value = v;
        }
    }
    best as u32
}

/// The `k` largest logits as (id, logit), largest first (stable for ties).
pub fn top_k(logits: &[f32], k: usize) -> Vec<(u32, f32)> {
    let mut ids: Vec<u32> = (0..logits.len() as u32).collect();
    ids.sort_by(|&a, &b| {
        logits[b as usize]
            .total_cmp(&logits[a as usize])
            .then(a.cmp(&b))
    });
    ids.truncate(k);
    ids.into_iter()
        .map(|id| (id, logits[id as usize]))
        .collect()
}

/// The nucleus: (id, probability) of the smallest most-likely set reaching `top_p`,
/// renormalised, most likely first.
fn top_p_distribution(logits: &[f32], temperature: f32, top_p: f32) -> Vec<(u32, f64)> {
    let t = f64::from(temperature.max(1e-6));
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut probs: Vec<(u32, f64)> = logits
        .iter()
        .enumerate()
        .map(|(i, &l)| (i as u32, (f64::from(l - max) / t).exp()))
        .collect();
    let total: f64 = probs.iter().map(|&(_, p)| p).sum();
    probs.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut kept = 0;
    let mut mass = 0.0;
    for &(_, p) in &probs {
        kept += 1;
        mass += p / total;
        if mass >= f64::from(top_p) {
            break;
        }
    }
    probs.truncate(kept.max(1));
    let kept_total: f64 = probs.iter().map(|&(_, p)| p).sum();
    for entry in &mut probs {
        entry.1 /= kept_total;
    }
    probs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_takes_first_of_ties_and_ignores_nan() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0, 2.0]), 1);
        assert_eq!(argmax(&[f32::NAN, 0.5, f32::NAN]), 1);
    }

    #[test]
    fn top_k_orders_by_logit() {
        assert_eq!(top_k(&[0.1, 0.9, 0.5], 2), vec![(1, 0.9), (2, 0.5)]);
    }

    #[test]
    fn tiny_top_p_is_greedy() {
        let logits = [0.0, 5.0, 1.0, 4.9];
        let mut s = Sampler::new(Sampling::TopP {
            temperature: 1.0,
            top_p: 0.01,
            seed: 7,
        });
        assert!((0..50).all(|_| s.sample(&logits) == 1));
    }

    #[test]
    fn same_seed_same_tokens_and_only_nucleus_tokens() {
        let logits: Vec<f32> = (0..50).map(|i| (i % 7) as f32 * 0.3).collect();
        let sampling = Sampling::TopP {
            temperature: 0.8,
            top_p: 0.5,
            seed: 42,
        };
        let a: Vec<u32> = {
            let mut s = Sampler::new(sampling);
            (0..100).map(|_| s.sample(&logits)).collect()
        };
        let mut s = Sampler::new(sampling);
        let b: Vec<u32> = (0..100).map(|_| s.sample(&logits)).collect();
        assert_eq!(a, b);
        let nucleus: Vec<u32> = top_p_distribution(&logits, 0.8, 0.5)
            .iter()
            .map(|&(id, _)| id)
            .collect();
        assert!(a.iter().all(|id| nucleus.contains(id)));
        // The nucleus holds several tokens, and sampling visits more than one.
        assert!(a.iter().any(|&id| id != a[0]));
    }
}
