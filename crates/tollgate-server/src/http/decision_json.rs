//! The JSON form of a decision, as `POST /v1/check` answers it.
//!
//! Written here rather than derived with serde (`#[derive(Serialize)]` and
//! `serde_json::to_vec`), which it replaces: every answer carries one, and a derived writer
//! escapes each field name and appends every piece separately. The same-run figure that
//! keeps it is in docs/benchmarks.md ("What the hand-made pieces earn"). Field names are
//! literals; values are escaped as JSON requires.

use tollgate_core::time::{NANOS_PER_MILLI, ceil_millis};
use tollgate_core::{Decision, Headers};

/// `d` as JSON: `allowed`, `code`, `retry_after_ms`, `limits` (each with `name`, `key`,
/// `limit`, `remaining`, `reset_ms`, `window_ms`, `exceeded`, `shadow`, `degraded`) and
/// `headers`, the rate-limit headers of the answer. A decision that took concurrency
/// leases names them (`leases`, one per limit whose outcome holds a lease, in order): the
/// first as `lease_id`, and each on its limit.
pub fn to_vec(d: &Decision<'_>, headers: &Headers, leases: &[String]) -> Vec<u8> {
    // Sized for a decision with a limit or two, so writing it does not grow the buffer.
    let mut out = Vec::with_capacity(d.limits.len().saturating_mul(192).saturating_add(512));
    write(d, headers, leases, &mut out);
    out
}

fn write(d: &Decision<'_>, headers: &Headers, leases: &[String], out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"allowed\":");
    push_bool(out, d.allowed);
    out.extend_from_slice(b",\"code\":");
    push_plain(out, d.code.as_str());
    out.extend_from_slice(b",\"retry_after_ms\":");
    push_opt(out, d.retry_after().map(ceil_millis));
    if let Some(first) = leases.first() {
        out.extend_from_slice(b",\"lease_id\":");
        push_str(out, first);
    }
    let mut leases = leases.iter();
    out.extend_from_slice(b",\"limits\":[");
    for (i, l) in d.limits.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"name\":");
        push_str(out, &l.rule.name);
        out.extend_from_slice(b",\"key\":");
        push_str(out, &l.key);
        out.extend_from_slice(b",\"limit\":");
        push_u64(out, l.outcome.limit);
        out.extend_from_slice(b",\"remaining\":");
        push_u64(out, l.outcome.remaining);
        out.extend_from_slice(b",\"reset_ms\":");
        push_u64(out, ceil_millis(l.outcome.reset));
        out.extend_from_slice(b",\"window_ms\":");
        push_opt(out, l.rule.limit.window(d.now).map(|w| w / NANOS_PER_MILLI));
        out.extend_from_slice(b",\"exceeded\":");
        push_bool(out, l.exceeded());
        out.extend_from_slice(b",\"shadow\":");
        push_bool(out, l.shadow());
        // Answered by the rule's fail policy because the store could not answer.
        out.extend_from_slice(b",\"degraded\":");
        push_bool(out, l.degraded);
        if l.outcome.lease.is_some()
            && let Some(id) = leases.next()
        {
            out.extend_from_slice(b",\"lease_id\":");
            push_str(out, id);
        }
        out.push(b'}');
    }
    out.extend_from_slice(b"],\"headers\":{");
    for (i, (name, value)) in headers.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_plain(out, name);
        out.push(b':');
        push_str(out, value);
    }
    out.extend_from_slice(b"}}");
}

fn push_bool(out: &mut Vec<u8>, b: bool) {
    out.extend_from_slice(if b { b"true" } else { b"false" });
}

fn push_u64(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

fn push_opt(out: &mut Vec<u8>, n: Option<u64>) {
    match n {
        Some(n) => push_u64(out, n),
        None => out.extend_from_slice(b"null"),
    }
}

fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// Whether any byte of `bytes` needs escaping, tested eight bytes at a time: the values
/// here are short, too short for the compiler's vector loops.
fn any_needs_escape(bytes: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    // The high bit of a byte of the result is set where `w`'s byte is below `n` (n ≤ 0x80);
    // a borrow can only set bits above a byte that truly is, so "any" is exact.
    let below = |w: u64, n: u8| w.wrapping_sub(ONES * u64::from(n)) & !w & HIGHS;
    let test = |w: Option<&[u8; 8]>| {
        let w = w.map_or(0, |w| u64::from_le_bytes(*w));
        below(w, 0x20) | below(w ^ (ONES * 0x22), 1) | below(w ^ (ONES * 0x5c), 1)
    };
    let Some(last) = bytes.last_chunk::<8>() else {
        return bytes.iter().any(|&b| needs_escape(b));
    };
    // Whole words, then the last eight bytes, overlapping what the words covered.
    let mut hits = test(Some(last));
    for chunk in bytes.chunks_exact(8) {
        hits |= test(chunk.first_chunk::<8>());
    }
    hits != 0
}

/// Appends `s`, one of our own names (a code, a header name) that has nothing to escape,
/// as a JSON string.
fn push_plain(out: &mut Vec<u8>, s: &'static str) {
    debug_assert!(!any_needs_escape(s.as_bytes()));
    out.push(b'"');
    out.extend_from_slice(s.as_bytes());
    out.push(b'"');
}

/// Appends `s` as a JSON string.
fn push_str(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len().saturating_add(2));
    out.push(b'"');
    if any_needs_escape(bytes) {
        let mut rest = bytes;
        while let Some(i) = rest.iter().position(|&b| needs_escape(b)) {
            let (plain, from_escape) = rest.split_at(i);
            out.extend_from_slice(plain);
            let Some((&b, after)) = from_escape.split_first() else {
                break;
            };
            push_escape(out, b);
            rest = after;
        }
        out.extend_from_slice(rest);
    } else {
        out.extend_from_slice(bytes);
    }
    out.push(b'"');
}

fn push_escape(out: &mut Vec<u8>, b: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let hex = |nibble: u8| HEX.get(usize::from(nibble & 0xf)).copied().unwrap_or(b'0');
    match b {
        b'"' => out.extend_from_slice(b"\\\""),
        b'\\' => out.extend_from_slice(b"\\\\"),
        b'\n' => out.extend_from_slice(b"\\n"),
        b'\r' => out.extend_from_slice(b"\\r"),
        b'\t' => out.extend_from_slice(b"\\t"),
        _ => out.extend_from_slice(&[b'\\', b'u', b'0', b'0', hex(b >> 4), hex(b)]),
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    use proptest::prelude::*;
    use serde_json::{Value, json};
    use tollgate_core::time::NANOS_PER_SEC;
    use tollgate_core::{Limiter, MemoryStore, Mode, Policy, Subject};

    use super::*;

    fn ready<F: Future>(f: F) -> F::Output {
        match pin!(f).poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(v) => v,
            Poll::Pending => unreachable!("the memory store answers at once"),
        }
    }

    fn json_of(d: &Decision<'_>) -> Value {
        serde_json::from_slice(&to_vec(d, &d.headers(), &[])).unwrap()
    }

    #[test]
    fn a_decision_reads_back_with_every_field() {
        let policy = Policy::from_yaml(
            r#"
rules:
  - { name: per-user, match: { user: "*" }, key: "user:{user}", limit: 2, period: 1m }
  - { name: shadowed, match: { user: "*" }, key: "s:{user}", limit: 1, period: 1h, shadow: true }
"#,
        )
        .unwrap();
        let limiter = Limiter::new(MemoryStore::default(), policy);
        let policy = limiter.policy();
        let mut who = Subject::new();
        // A key with a quote, a backslash and a non-ASCII letter (subjects hold no control
        // characters; the escaping of those is checked below).
        who.set("user", "a\"b\\c é").unwrap();
        let now = 1_000 * NANOS_PER_SEC;
        let decide = || ready(limiter.decide(&policy, &who, 1, now, Mode::Consume));
        decide();
        let d = decide();
        assert_eq!(
            json_of(&d),
            json!({
                "allowed": true,
                "code": "OK",
                "retry_after_ms": null,
                "limits": [
                    {"name": "per-user", "key": "user:a\"b\\c é", "limit": 2,
                     "remaining": 0, "reset_ms": 60_000, "window_ms": 60_000,
                     "exceeded": false, "shadow": false, "degraded": false},
                    {"name": "shadowed", "key": "s:a\"b\\c é", "limit": 1,
                     "remaining": 0, "reset_ms": 3_600_000, "window_ms": 3_600_000,
                     "exceeded": true, "shadow": true, "degraded": false},
                ],
                "headers": {
                    "ratelimit-policy": "\"per-user\";q=2;w=60",
                    "ratelimit": "\"per-user\";r=0;t=60",
                    "x-ratelimit-limit": "2",
                    "x-ratelimit-remaining": "0",
                    "x-ratelimit-reset": "60",
                },
            })
        );
        let denied = json_of(&decide());
        assert_eq!(denied["allowed"], false);
        assert_eq!(denied["code"], "RATE_LIMITED");
        assert_eq!(denied["retry_after_ms"], 30_000);
        assert_eq!(denied["headers"]["retry-after"], "30");
    }

    fn reads_back(s: &str) -> Result<(), TestCaseError> {
        let mut out = Vec::new();
        push_str(&mut out, s);
        prop_assert_eq!(serde_json::from_slice::<String>(&out).unwrap(), s);
        Ok(())
    }

    proptest! {
        #[test]
        fn any_string_reads_back_as_itself(s in any::<String>()) {
            reads_back(&s)?;
        }

        /// ASCII with quotes, backslashes and control characters in every position of the
        /// eight-byte words.
        #[test]
        fn any_ascii_reads_back_as_itself(s in "[\\x00-\\x7f]{0,40}") {
            prop_assert_eq!(any_needs_escape(s.as_bytes()), s.bytes().any(needs_escape));
            reads_back(&s)?;
        }
    }
}
