//! Upstream credentials: several per upstream, the request getting the one with the most
//! quota left as the upstream last reported it; one answered 429 rests until the reset
//! the upstream gave.

use std::time::{Duration, Instant};

use http::{HeaderName, HeaderValue};
use parking_lot::Mutex;

use crate::config::KeyPoolConfig;

/// How long a credential rests after a 429 that named no reset.
const DEFAULT_REST: Duration = Duration::from_secs(1);

#[derive(Debug)]
struct Key {
    value: HeaderValue,
    /// What the upstream last reported left; unknown reads as plenty.
    remaining: u64,
    resting_until: Option<Instant>,
}

/// The credentials of one upstream.
#[derive(Debug)]
pub struct KeyPool {
    header: HeaderName,
    keys: Mutex<Vec<Key>>,
}

impl KeyPool {
    /// The pool `config` describes.
    pub fn new(config: &KeyPoolConfig) -> Self {
        let keys = config
            .values
            .iter()
            .filter_map(|v| HeaderValue::from_str(&format!("{}{v}", config.prefix)).ok())
            .map(|mut value| {
                value.set_sensitive(true);
                Key {
                    value,
                    remaining: u64::MAX,
                    resting_until: None,
                }
            })
            .collect();
        KeyPool {
            header: config.header.clone(),
            keys: Mutex::new(keys),
        }
    }

    /// The header the credentials go in.
    pub fn header(&self) -> &HeaderName {
        &self.header
    }

    /// The credential to use at `now`, with its index; or, when every one rests, when the
    /// first wakes.
    pub fn choose(&self, now: Instant) -> Result<(usize, HeaderValue), Instant> {
        let keys = self.keys.lock();
        let awake = keys
            .iter()
            .enumerate()
            .filter(|(_, k)| k.resting_until.is_none_or(|t| t <= now))
            .max_by_key(|(i, k)| (k.remaining, std::cmp::Reverse(*i)));
        match awake {
            Some((i, k)) => Ok((i, k.value.clone())),
            None => Err(keys
                .iter()
                .filter_map(|k| k.resting_until)
                .min()
                .unwrap_or(now)),
        }
    }

    /// Records what the upstream said of credential `index`: the quota it has left, and
    /// for a 429 how long it must rest.
    pub fn observe(
        &self,
        index: usize,
        remaining: Option<u64>,
        rest: Option<Duration>,
        now: Instant,
    ) {
        let mut keys = self.keys.lock();
        if let Some(k) = keys.get_mut(index) {
            if let Some(r) = remaining {
                k.remaining = r;
            }
            if let Some(rest) = rest {
                k.resting_until = Some(now.checked_add(rest).unwrap_or(now));
            }
        }
    }

    /// Marks credential `index` as refused (429): it rests for `rest`, or briefly when the
    /// upstream named no reset.
    pub fn refused(&self, index: usize, rest: Option<Duration>, now: Instant) {
        self.observe(index, Some(0), Some(rest.unwrap_or(DEFAULT_REST)), now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool() -> KeyPool {
        KeyPool::new(&KeyPoolConfig {
            header: http::header::AUTHORIZATION,
            prefix: "Bearer ".into(),
            values: vec!["a".into(), "b".into(), "c".into()],
        })
    }

    #[test]
    fn the_key_with_most_left_goes_and_a_refused_one_rests() {
        let (p, t0) = (pool(), Instant::now());
        assert_eq!(p.choose(t0).unwrap().1, "Bearer a");
        p.observe(0, Some(5), None, t0);
        p.observe(1, Some(50), None, t0);
        p.observe(2, Some(20), None, t0);
        assert_eq!(p.choose(t0).unwrap().0, 1);
        p.refused(1, Some(Duration::from_secs(10)), t0);
        assert_eq!(p.choose(t0).unwrap().0, 2);
        p.refused(2, None, t0);
        p.refused(0, Some(Duration::from_secs(3)), t0);
        assert_eq!(p.choose(t0).unwrap_err(), t0 + Duration::from_secs(1));
        assert_eq!(p.choose(t0 + Duration::from_secs(1)).unwrap().0, 2);
        assert!(p.choose(t0 + Duration::from_secs(11)).is_ok());
    }
}
