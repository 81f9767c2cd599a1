//! Concurrency leases as a door hands them out: a lease id naming the rule, the counter and
//! the lease, tagged so that only an instance holding the fleet's secret made it. A caller
//! returns it to end the lease early (`POST /v1/release`) or to renew it.

use std::num::NonZeroU64;

use subtle::ConstantTimeEq;
use thiserror::Error;

use crate::identity::{Fingerprints, hex};

/// One lease of a concurrency limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The rule's name.
    pub rule: String,
    /// The counter key.
    pub key: String,
    /// The store's lease number.
    pub id: NonZeroU64,
}

/// Why a lease id was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LeaseError {
    /// Not a lease id this fleet made.
    #[error("not a lease id issued by this Tollgate")]
    Invalid,
    /// Its rule is no longer a concurrency limit of the policy.
    #[error("the lease's rule {0:?} is no longer a concurrency limit")]
    UnknownRule(String),
    /// The store could not be reached.
    #[error("{0}")]
    Store(#[from] tollgate_core::StoreError),
}

const VERSION: &str = "l1";

impl Lease {
    /// The lease id handed to the caller.
    pub fn to_id(&self, tags: &Fingerprints) -> String {
        let body = format!(
            "{VERSION}.{:x}.{}.{}",
            self.id,
            hex(self.rule.as_bytes(), self.rule.len()),
            hex(self.key.as_bytes(), self.key.len())
        );
        let tag = tags.tag(&body);
        format!("{body}.{tag}")
    }

    /// The lease a lease id names, when its tag holds.
    pub fn from_id(id: &str, tags: &Fingerprints) -> Result<Lease, LeaseError> {
        let (body, tag) = id.rsplit_once('.').ok_or(LeaseError::Invalid)?;
        if !bool::from(tags.tag(body).as_bytes().ct_eq(tag.as_bytes())) {
            return Err(LeaseError::Invalid);
        }
        let mut parts = body.split('.');
        let (Some(VERSION), Some(n), Some(rule), Some(key), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(LeaseError::Invalid);
        };
        let id = u64::from_str_radix(n, 16)
            .ok()
            .and_then(NonZeroU64::new)
            .ok_or(LeaseError::Invalid)?;
        Ok(Lease {
            rule: unhex(rule).ok_or(LeaseError::Invalid)?,
            key: unhex(key).ok_or(LeaseError::Invalid)?,
            id,
        })
    }
}

fn unhex(s: &str) -> Option<String> {
    let digits: Option<Vec<u8>> = s
        .as_bytes()
        .chunks(2)
        .map(|pair| match pair {
            [hi, lo] => {
                let hi = char::from(*hi).to_digit(16)?;
                let lo = char::from(*lo).to_digit(16)?;
                u8::try_from(hi.checked_mul(16)?.checked_add(lo)?).ok()
            }
            _ => None,
        })
        .collect();
    String::from_utf8(digits?).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use tollgate_registry::KeySecret;

    use super::*;

    #[test]
    fn a_lease_id_round_trips_and_a_forged_one_is_refused() {
        let tags = Fingerprints::shared(KeySecret::new(vec![3u8; 32]).unwrap());
        let lease = Lease {
            rule: "exports".into(),
            key: "user:ä/1".into(),
            id: NonZeroU64::new(42).unwrap(),
        };
        let id = lease.to_id(&tags);
        assert_eq!(Lease::from_id(&id, &tags).unwrap(), lease);
        let other = Fingerprints::shared(KeySecret::new(vec![4u8; 32]).unwrap());
        assert_eq!(Lease::from_id(&id, &other), Err(LeaseError::Invalid));
        let forged = id.replacen("l1.2a", "l1.2b", 1);
        assert_eq!(Lease::from_id(&forged, &tags), Err(LeaseError::Invalid));
        assert_eq!(Lease::from_id("nonsense", &tags), Err(LeaseError::Invalid));
    }
}
