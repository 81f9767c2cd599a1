//! The API key format: `tg_<env>_<22 base62 characters of 128 random bits><6 of checksum>`.
//!
//! The fixed `tg_` prefix lets secret scanners match leaked keys; the checksum (CRC-32 of
//! everything before it) refuses a mistyped key before any lookup; only an HMAC-SHA-256 of
//! the whole key under the server's secret is stored.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::RegistryError;

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const BODY: usize = 22;
const CHECK: usize = 6;
/// What follows the environment: the random body and the checksum.
const TAIL: usize = BODY + CHECK;
const CRC32: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// The keyed hash a key is stored and looked up by.
pub type KeyHash = [u8; 32];

/// The server secret keys are hashed under (`TOLLGATE_KEY_SECRET`).
#[derive(Clone)]
pub struct KeySecret(Vec<u8>);

impl std::fmt::Debug for KeySecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeySecret(…)")
    }
}

impl KeySecret {
    /// A secret of at least 32 bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self, RegistryError> {
        let bytes = bytes.into();
        if bytes.len() < 32 {
            return Err(RegistryError::Invalid(
                "the key secret must be at least 32 bytes".into(),
            ));
        }
        Ok(KeySecret(bytes))
    }

    /// A secret of any length, for secrets that are not configured but made up by the
    /// process (whose length is its own to choose).
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        KeySecret(bytes)
    }

    /// The stored form of `key`.
    pub fn hash(&self, key: &str) -> KeyHash {
        // HMAC takes a key of any length; this cannot fail.
        let mut mac = match <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0) {
            Ok(m) => m,
            Err(_) => return [0; 32],
        };
        mac.update(key.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// Whether `key` hashes to `stored`, compared in constant time.
    pub fn matches(&self, key: &str, stored: &[u8]) -> bool {
        self.hash(key).ct_eq(stored).into()
    }
}

/// Whether `env` may name keys: 1 to 8 lower-case letters or digits.
pub fn valid_env(env: &str) -> bool {
    (1..=8).contains(&env.len())
        && env
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

fn base62(mut n: u128, width: usize, out: &mut String) {
    let mut digits = vec![b'0'; width];
    for d in digits.iter_mut().rev() {
        #[allow(
            clippy::indexing_slicing,
            reason = "n % 62 is below 62, the alphabet's length"
        )]
        let digit = ALPHABET[(n % 62) as usize];
        *d = digit;
        n /= 62;
    }
    out.extend(digits.into_iter().map(char::from));
}

fn checksum(text: &str) -> String {
    let mut s = String::with_capacity(CHECK);
    base62(u128::from(CRC32.checksum(text.as_bytes())), CHECK, &mut s);
    s
}

/// A new key for `env`, from 128 bits of the operating system's randomness.
pub fn generate(env: &str) -> Result<String, RegistryError> {
    if !valid_env(env) {
        return Err(RegistryError::Invalid(format!(
            "{env:?} is not a key environment (1 to 8 lower-case letters or digits)"
        )));
    }
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|e| RegistryError::Invalid(format!("no randomness from the system: {e}")))?;
    let mut key = format!("tg_{env}_");
    base62(u128::from_le_bytes(bytes), BODY, &mut key);
    let sum = checksum(&key);
    key.push_str(&sum);
    Ok(key)
}

/// Checks a presented key's shape and checksum, without any lookup.
pub fn well_formed(key: &str) -> bool {
    let Some(rest) = key.strip_prefix("tg_") else {
        return false;
    };
    let Some((env, tail)) = rest.split_once('_') else {
        return false;
    };
    if !valid_env(env) || tail.len() != TAIL || !tail.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return false;
    }
    // The tail is ASCII and ends the key, so the checksum is its last CHECK bytes.
    let at = key.len().saturating_sub(CHECK);
    key.split_at_checked(at)
        .is_some_and(|(head, sum)| checksum(head) == sum)
}

/// What may be shown of a key: its environment and first four random characters.
pub fn display_prefix(key: &str) -> String {
    let cut = key.len().saturating_sub(TAIL).saturating_add(4);
    key.get(..cut).unwrap_or(key).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_well_formed_and_typos_are_caught() {
        let key = generate("live").unwrap();
        assert!(key.starts_with("tg_live_"));
        assert_eq!(key.len(), "tg_live_".len() + BODY + CHECK);
        assert!(well_formed(&key));
        // Every single-character change is refused by the checksum.
        for i in "tg_live_".len()..key.len() {
            let mut bytes = key.clone().into_bytes();
            bytes[i] = if bytes[i] == b'a' { b'b' } else { b'a' };
            let typo = String::from_utf8(bytes).unwrap();
            assert!(!well_formed(&typo), "{typo}");
        }
        assert!(!well_formed("tg_live_short"));
        assert!(!well_formed("sk_live_0000000000000000000000000000"));
        assert_ne!(generate("live").unwrap(), key);
        assert_eq!(display_prefix(&key), key[..12]);
    }

    #[test]
    fn hashes_depend_on_the_secret() {
        let a = KeySecret::new(vec![1; 32]).unwrap();
        let b = KeySecret::new(vec![2; 32]).unwrap();
        let key = generate("test").unwrap();
        assert!(a.matches(&key, &a.hash(&key)));
        assert!(!b.matches(&key, &a.hash(&key)));
        assert!(KeySecret::new(vec![1; 8]).is_err());
        assert!(generate("Live!").is_err());
    }
}
