//! The decision core of Tollgate: rate-limit algorithms, subjects, policies, the
//! [`Store`] trait with its in-memory implementation, and decisions with their headers.
//!
//! A request becomes a [`Subject`]; the [`Policy`] plans the [`Check`]s that apply to it;
//! a [`Store`] applies them as a unit at an instant the caller passes in; the result is a
//! [`Decision`] that renders the IETF `RateLimit` headers.
//!
//! ```
//! use tollgate_core::{Code, Limiter, MemoryStore, Mode, Policy, Subject};
//! use tollgate_core::time::NANOS_PER_SEC;
//!
//! let policy = Policy::from_yaml(r#"
//! rules:
//!   - name: per-user
//!     key: "user:{user}"
//!     algorithm: fixed_window
//!     limit: 2
//!     period: 1m
//! "#).unwrap();
//! let limiter = Limiter::new(MemoryStore::default(), policy);
//! let alice = Subject::new().with("user", "alice").unwrap();
//! let now = 1_767_571_200 * NANOS_PER_SEC; // 2026-01-05T00:00:00Z
//!
//! // The memory store answers at once; any executor (or one poll) drives it.
//! let decide = |at| {
//!     let policy = limiter.policy();
//!     let fut = limiter.decide(&policy, &alice, 1, at, Mode::Consume);
//!     let mut fut = std::pin::pin!(fut);
//!     let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
//!     match fut.as_mut().poll(&mut cx) {
//!         std::task::Poll::Ready(d) => (d.allowed, d.code, d.headers().get("ratelimit").map(String::from)),
//!         std::task::Poll::Pending => unreachable!(),
//!     }
//! };
//! assert_eq!(decide(now), (true, Code::Ok, Some(r#""per-user";r=1;t=60"#.into())));
//! assert_eq!(decide(now).0, true);
//! let (allowed, code, _) = decide(now + 10 * NANOS_PER_SEC);
//! assert!(!allowed);
//! assert_eq!(code, Code::RateLimited);
//! ```
#![deny(unsafe_code)]

pub mod algorithm;
pub mod conformance;
pub mod decision;
pub mod limiter;
pub mod outcome;
pub mod policy;
pub mod store;
pub mod subject;
pub mod time;

pub use decision::{Code, Decision, Headers, LimitStatus};
pub use limiter::{Limiter, Mode};
pub use outcome::Outcome;
pub use policy::Policy;
pub use store::{Check, MemoryStore, MemoryStoreConfig, Store, StoreError};
pub use subject::Subject;
