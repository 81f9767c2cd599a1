//! What the Redis behind a store does when its memory fills: its `maxmemory` and
//! `maxmemory-policy`, and a warning when that would switch limiting off under a flood of
//! new keys.
//!
//! Every counter Tollgate writes carries its `PX` expiry, so idle counters leave by
//! themselves; a flood of one-time keys still makes counters faster than they expire. With
//! no `maxmemory` Redis grows until the system kills it; with `noeviction` and a
//! `maxmemory` it refuses every write once full, and each decision falls back to its
//! rule's `on_store_error`. docs/redis.md says what to set instead.

use redis::{ErrorKind, ServerErrorKind, Value};
use thiserror::Error;

/// A Redis server's memory settings, as `CONFIG GET` reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryPolicy {
    /// `maxmemory` in bytes; 0 is no limit.
    pub maxmemory: u64,
    /// `maxmemory-policy`, e.g. `noeviction` or `volatile-lfu`.
    pub policy: String,
}

/// Why a Redis's memory settings put limiting at risk under a flood of new keys.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MemoryWarning {
    /// No `maxmemory` (Redis's default, with `noeviction`): Redis grows without bound
    /// until the system kills it, whatever its policy.
    #[error(
        "redis has no maxmemory (maxmemory-policy {policy}): a flood of new keys grows it \
         without bound; set maxmemory and maxmemory-policy volatile-lfu"
    )]
    Unbounded {
        /// The configured `maxmemory-policy`.
        policy: String,
    },
    /// `noeviction` under a `maxmemory`: once full, Redis refuses every new counter, and
    /// decisions fall back to their rules' `on_store_error`.
    #[error(
        "redis refuses writes once it holds maxmemory ({maxmemory} bytes) \
         (maxmemory-policy noeviction): new keys would then be decided by on_store_error; \
         set maxmemory-policy volatile-lfu"
    )]
    RefusesWhenFull {
        /// The configured `maxmemory`, in bytes.
        maxmemory: u64,
    },
}

impl MemoryPolicy {
    /// The warning these settings call for, if any: no `maxmemory`, or `noeviction`.
    /// Every other policy under a `maxmemory` evicts counters (which all carry an expiry),
    /// `volatile-lfu` and `allkeys-lfu` keeping those in use best (see docs/redis.md).
    pub fn warning(&self) -> Option<MemoryWarning> {
        match (self.maxmemory, self.policy.as_str()) {
            (0, policy) => Some(MemoryWarning::Unbounded {
                policy: policy.to_owned(),
            }),
            (maxmemory, "noeviction") => Some(MemoryWarning::RefusesWhenFull { maxmemory }),
            _ => None,
        }
    }

    /// [`from_config`](Self::from_config), or, for an answer gathered from several nodes
    /// (a Cluster's), the node whose settings warn, else the first.
    pub(crate) fn from_answer(value: &Value) -> Option<MemoryPolicy> {
        if let Some(p) = Self::from_config(value) {
            return Some(p);
        }
        let nested: Vec<MemoryPolicy> = match value {
            Value::Map(entries) => entries
                .iter()
                .filter_map(|(_, v)| Self::from_config(v))
                .collect(),
            Value::Array(items) => items.iter().filter_map(Self::from_config).collect(),
            _ => Vec::new(),
        };
        let first = nested.first().cloned();
        nested.into_iter().find(|p| p.warning().is_some()).or(first)
    }

    /// Reads the answer of `CONFIG GET maxmemory*`: name and value pairs, as an array
    /// (RESP2) or a map (RESP3). `None` when either setting is missing.
    pub(crate) fn from_config(value: &Value) -> Option<MemoryPolicy> {
        let pairs: Vec<(String, String)> = match value {
            Value::Map(entries) => entries
                .iter()
                .filter_map(|(k, v)| Some((text(k)?, text(v)?)))
                .collect(),
            Value::Array(items) => items
                .chunks_exact(2)
                .filter_map(|kv| match kv {
                    [k, v] => Some((text(k)?, text(v)?)),
                    _ => None,
                })
                .collect(),
            _ => return None,
        };
        let get = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        Some(MemoryPolicy {
            maxmemory: get("maxmemory")?.parse().ok()?,
            policy: get("maxmemory-policy")?.to_ascii_lowercase(),
        })
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

/// Whether `e` says the server will not run `CONFIG` for us (renamed or disabled, denied
/// by an ACL, or a managed service that hides it), rather than that it is unreachable.
pub(crate) fn config_refused(e: &redis::RedisError) -> bool {
    matches!(
        e.kind(),
        ErrorKind::Server(ServerErrorKind::ResponseError | ServerErrorKind::NoPerm)
            | ErrorKind::Extension
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn reads_both_answer_shapes_and_warns_only_on_noeviction() {
        let resp2 = Value::Array(vec![
            bulk("maxmemory"),
            bulk("0"),
            bulk("maxmemory-policy"),
            bulk("noeviction"),
        ]);
        let p = MemoryPolicy::from_config(&resp2).unwrap();
        assert_eq!(
            p.warning(),
            Some(MemoryWarning::Unbounded {
                policy: "noeviction".into()
            })
        );
        let resp3 = Value::Map(vec![
            (bulk("maxmemory-policy"), bulk("noeviction")),
            (bulk("maxmemory"), bulk("1048576")),
        ]);
        let p = MemoryPolicy::from_config(&resp3).unwrap();
        assert_eq!(
            p.warning(),
            Some(MemoryWarning::RefusesWhenFull { maxmemory: 1 << 20 })
        );
        let lfu = Value::Array(vec![
            bulk("maxmemory"),
            bulk("2097152"),
            bulk("maxmemory-policy"),
            bulk("volatile-lfu"),
        ]);
        assert_eq!(MemoryPolicy::from_config(&lfu).unwrap().warning(), None);
        assert_eq!(MemoryPolicy::from_config(&Value::Array(vec![])), None);
        // A Cluster's answer, one per node: the node that warns is the one reported.
        let nodes = Value::Map(vec![(bulk("a:1"), lfu), (bulk("b:2"), resp2)]);
        let p = MemoryPolicy::from_answer(&nodes).unwrap();
        assert_eq!(p.maxmemory, 0);
    }
}
