//! Request ids: made for a request that brings none, without a system call each.
//!
//! A process-wide random prefix and a counter per thread, so that ids are unique in the
//! process and, with 64 random bits, across the instances of a fleet in practice.

use std::cell::Cell;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::{HeaderValue, Request};
use tower_http::request_id::{MakeRequestId, RequestId};

thread_local! {
    /// This thread's prefix (the process's, with the thread's number folded in) and its
    /// next count.
    static NEXT: Cell<(u64, u64)> = Cell::new((prefix(), 0));
}

/// The process's random prefix, made distinct for each thread that asks.
fn prefix() -> u64 {
    static THREADS: AtomicU64 = AtomicU64::new(0);
    let random = RandomState::new().hash_one(std::process::id());
    random ^ THREADS.fetch_add(1, Ordering::Relaxed).rotate_left(48)
}

/// A new request id: 32 hex digits.
pub fn next() -> HeaderValue {
    let (prefix, n) = NEXT.with(|next| {
        let (prefix, n) = next.get();
        next.set((prefix, n.wrapping_add(1)));
        (prefix, n)
    });
    let text = format!("{prefix:016x}{n:016x}");
    // Hex digits are always a valid header value.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("-"))
}

/// Makes ids for tower-http's request-id layer.
#[derive(Debug, Clone, Copy, Default)]
pub struct MakeId;

impl MakeRequestId for MakeId {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        Some(RequestId::new(next()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_differ_within_a_thread_and_between_threads() {
        let here: Vec<HeaderValue> = (0..3).map(|_| next()).collect();
        let there = std::thread::spawn(next).join().unwrap();
        assert_ne!(here[0], here[1]);
        assert_ne!(here[1], here[2]);
        assert!(!here.contains(&there));
        assert!(here.iter().all(|id| id.len() == 32));
    }
}
