//! How a presented API key that no registry verifies is counted: by a fingerprint, an
//! HMAC of the key under a secret, so that the key itself never reaches a counter store.
//!
//! Instances sharing a store must count a key under one name, so their fingerprints must
//! come from one configured secret; a secret made up at start serves one process alone.

use std::hash::BuildHasher;

use tollgate_registry::KeySecret;

/// Separates fingerprints from the registry's stored key hashes under the same secret.
const DOMAIN: &str = "tollgate counter identity\0";

/// Separates tags (of lease ids) from fingerprints.
const TAG_DOMAIN: &str = "tollgate tag\0";

/// Makes the fingerprints of presented keys.
#[derive(Debug, Clone)]
pub struct Fingerprints {
    secret: KeySecret,
    configured: bool,
}

impl Fingerprints {
    /// Fingerprints under a configured secret: the same on every instance that has it.
    pub fn shared(secret: KeySecret) -> Self {
        Fingerprints {
            secret,
            configured: true,
        }
    }

    /// Fingerprints under a secret made up now: this process alone counts by them.
    pub fn local() -> Self {
        // std's hasher keys come from the system's randomness once per process.
        let state = std::hash::RandomState::new();
        let secret: Vec<u8> = (0u8..4)
            .flat_map(|i| state.hash_one(i).to_le_bytes())
            .collect();
        Fingerprints {
            secret: KeySecret::from_bytes(secret),
            configured: false,
        }
    }

    /// Whether the secret was configured (and so is shared by the instances that have it).
    pub fn is_shared(&self) -> bool {
        self.configured
    }

    /// A tag proving that `data` was written by an instance holding this secret: 16 hex
    /// digits of its HMAC.
    pub fn tag(&self, data: &str) -> String {
        let mut input = String::with_capacity(TAG_DOMAIN.len().saturating_add(data.len()));
        input.push_str(TAG_DOMAIN);
        input.push_str(data);
        hex(&self.secret.hash(&input), 8)
    }

    /// The fingerprint of `api_key`: `kfp_` and 24 hex digits.
    pub fn of(&self, api_key: &str) -> String {
        let mut input = String::with_capacity(DOMAIN.len().saturating_add(api_key.len()));
        input.push_str(DOMAIN);
        input.push_str(api_key);
        let mut out = String::with_capacity(28);
        out.push_str("kfp_");
        out.push_str(&hex(&self.secret.hash(&input), 12));
        out
    }
}

/// The first `n` bytes of `bytes` in hex.
pub(crate) fn hex(bytes: &[u8], n: usize) -> String {
    let mut out = String::with_capacity(n.saturating_mul(2));
    for b in bytes.iter().take(n) {
        for nibble in [b >> 4, b & 0xf] {
            out.extend(char::from_digit(u32::from(nibble), 16));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn one_secret_one_fingerprint_and_never_the_key() {
        let secret = || KeySecret::new(vec![7u8; 32]).unwrap();
        let a = Fingerprints::shared(secret());
        let b = Fingerprints::shared(secret());
        assert_eq!(a.of("tg_live_secret"), b.of("tg_live_secret"));
        assert_ne!(a.of("tg_live_secret"), a.of("tg_live_other"));
        assert!(!a.of("tg_live_secret").contains("secret"));
        assert_eq!(a.of("x").len(), 28);
        assert!(a.is_shared());
        let local = Fingerprints::local();
        assert!(!local.is_shared());
        assert_ne!(local.of("tg_live_secret"), a.of("tg_live_secret"));
    }
}
