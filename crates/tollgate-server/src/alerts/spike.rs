//! Denial spikes: each key's denials per minute against its usual rate, an exponentially
//! weighted mean of its past minutes.

use std::collections::HashMap;
use std::time::Duration;

/// Below this a key's mean is forgotten: it has been quiet for many half-lives.
const FORGET_BELOW: f64 = 0.01;

/// The per-key means of one spike rule.
#[derive(Debug, Clone)]
pub struct Baselines {
    /// The weight of the newest minute: `1 - 2^(-1 min / half_life)`.
    alpha: f64,
    means: HashMap<String, f64>,
}

/// A key whose last minute spiked.
#[derive(Debug, Clone, PartialEq)]
pub struct Spike {
    /// The key.
    pub key: String,
    /// Its denials in the minute.
    pub count: u64,
    /// Its mean before that minute.
    pub baseline: f64,
}

impl Baselines {
    /// Means that halve their memory of a minute every `half_life`.
    pub fn new(half_life: Duration) -> Self {
        let minutes = half_life.as_secs_f64() / 60.0;
        Baselines {
            alpha: 1.0 - 0.5_f64.powf(1.0 / minutes.max(1.0)),
            means: HashMap::new(),
        }
    }

    /// Takes one whole minute's denials per key (keys absent denied nothing), gives the
    /// keys whose count reaches `at_least` and exceeds `factor` times their mean, then
    /// folds the minute into the means.
    pub fn observe(&mut self, counts: &[(String, u64)], factor: f64, at_least: u64) -> Vec<Spike> {
        let mut spikes = Vec::new();
        let mut seen: HashMap<&str, u64> = counts.iter().map(|(k, c)| (k.as_str(), *c)).collect();
        for (key, mean) in &mut self.means {
            let count = seen.remove(key.as_str()).unwrap_or(0);
            if count >= at_least && count as f64 > factor * *mean {
                spikes.push(Spike {
                    key: key.clone(),
                    count,
                    baseline: *mean,
                });
            }
            *mean += self.alpha * (count as f64 - *mean);
        }
        for (key, count) in seen {
            // A key never seen before has a mean of nothing: any count that reaches the
            // threshold is a spike.
            if count >= at_least {
                spikes.push(Spike {
                    key: key.to_owned(),
                    count,
                    baseline: 0.0,
                });
            }
            self.means.insert(key.to_owned(), self.alpha * count as f64);
        }
        self.means.retain(|_, m| *m >= FORGET_BELOW);
        spikes.sort_by(|a, b| a.key.cmp(&b.key));
        spikes
    }
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn minute(key: &str, n: u64) -> Vec<(String, u64)> {
        vec![(key.to_owned(), n)]
    }

    #[test]
    fn a_steady_rate_is_no_spike_and_a_jump_is() {
        let mut b = Baselines::new(Duration::from_secs(600));
        // Under the threshold a new key is no spike.
        assert!(b.observe(&minute("k", 10), 5.0, 20).is_empty());
        for _ in 0..60 {
            assert!(b.observe(&minute("k", 10), 5.0, 20).is_empty());
        }
        let spikes = b.observe(&minute("k", 200), 5.0, 20);
        assert_eq!(spikes.len(), 1);
        assert_eq!(spikes[0].count, 200);
        assert!((spikes[0].baseline - 10.0).abs() < 1.0, "{spikes:?}");
        // At the threshold it is, against nothing.
        let mut new = Baselines::new(Duration::from_secs(600));
        assert_eq!(new.observe(&minute("n", 20), 5.0, 20).len(), 1);
    }

    #[test]
    fn a_long_attack_becomes_the_baseline_and_quiet_keys_are_forgotten() {
        let mut b = Baselines::new(Duration::from_secs(60));
        assert_eq!(b.observe(&minute("k", 100), 2.0, 10).len(), 1);
        // With a one-minute half-life the mean follows within a few minutes.
        let mut fired = 0;
        for _ in 0..10 {
            fired += b.observe(&minute("k", 100), 2.0, 10).len();
        }
        assert!(fired <= 1, "fired {fired} times");
        for _ in 0..30 {
            b.observe(&[], 2.0, 10);
        }
        assert!(b.means.is_empty());
    }
}
