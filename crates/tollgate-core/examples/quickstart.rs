//! A policy of two rules deciding five requests on the memory store, printing each
//! decision and its headers.
//!
//! Run with `cargo run -p tollgate-core --example quickstart`.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use tollgate_core::time::{Clock, SystemClock};
use tollgate_core::{Limiter, MemoryStore, Mode, Policy, Subject};

const POLICY: &str = r#"
rules:
  - name: per-user
    match: { user: "*" }
    key: "user:{user}"
    algorithm: gcra
    limit: 3
    period: 1m
  - name: login
    match: { method: POST, path: /login }
    key: "ip:{ip}"
    algorithm: sliding_log
    limit: 2
    period: 1m
"#;

/// The memory store answers at once, so one poll completes a decision.
fn now_or_never<F: Future>(f: F) -> Option<F::Output> {
    match pin!(f).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => Some(v),
        Poll::Pending => None,
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let limiter = Limiter::new(MemoryStore::default(), Policy::from_yaml(POLICY)?);
    let subject = Subject::new()
        .with("user", "42")?
        .with("ip", "203.0.113.7")?
        .with("method", "post")?
        .with("path", "/api/../login")?;
    for n in 1..=5 {
        let policy = limiter.policy();
        let decision =
            now_or_never(limiter.decide(&policy, &subject, 1, SystemClock.now(), Mode::Consume))
                .ok_or("the memory store always answers at once")?;
        println!(
            "request {n}: {} {}",
            if decision.allowed {
                "allowed"
            } else {
                "denied"
            },
            decision.code.as_str()
        );
        for (name, value) in decision.headers().iter() {
            println!("    {name}: {value}");
        }
    }
    Ok(())
}
