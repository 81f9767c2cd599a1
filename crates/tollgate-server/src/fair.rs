//! How an HTTP worker thread shares its core with the other threads on the machine.
//!
//! A worker under steady load never sleeps: there is always another request ready. On a
//! kernel that preempts a busy thread only at its tick (every 4 ms with `HZ=250`), a thread
//! waiting for the same core, such as the application beside a sidecar, or the load
//! generator in a bench, then waits for that tick, and so do the answers it has to read.
//! A worker therefore offers its core after every [`ANSWERS_PER_OFFER`] answers
//! (`sched_yield`), between two rounds of its tasks: a thread waiting for it runs at once,
//! and when none waits the offer is one system call. On two cores shared with wrk it took
//! a third to a half off the p99 at saturation on an Intel machine, and four fifths off
//! `/v1/authorize`'s (two ticks, 7.4–7.9 ms, down to 1.5–1.9) on an AMD one, for the same
//! throughput (docs/benchmarks.md).
//!
//! The gRPC door's workers do not offer theirs. Under `bench/rls-load`, with its 64 callers
//! on one connection or on 16, the offer between rounds left the p99 as it was (no call
//! waited out a tick there) and gave up to 8% fewer calls per second.

use std::cell::Cell;

/// Answers a worker gives between two offers of its core: a few hundred microseconds of
/// work, well inside a 4 ms tick. Offering every 32 cost more throughput, every 128 or 256
/// left more of the tail.
pub const ANSWERS_PER_OFFER: u32 = 64;

thread_local! {
    /// Answers this thread gave since it last offered its core.
    static SINCE_OFFER: Cell<u32> = const { Cell::new(0) };
}

/// Counts one answer of the calling worker.
pub fn answered() {
    SINCE_OFFER.with(|n| n.set(n.get().saturating_add(1)));
}

/// Offers the core if the worker gave [`ANSWERS_PER_OFFER`] answers since it last did.
/// Called by the worker's runtime each time it has run every task that was ready and
/// is about to look for more (tokio's `on_thread_park`), so that no answer waits while
/// another thread runs: offering from inside a request's poll held one answer in 64 and
/// raised the p99 at 20,000 requests/s.
pub fn between_rounds() {
    if SINCE_OFFER.with(offer_due) {
        std::thread::yield_now();
    }
}

/// True, and the count restarted, once `since` has reached [`ANSWERS_PER_OFFER`].
fn offer_due(since: &Cell<u32>) -> bool {
    let due = since.get() >= ANSWERS_PER_OFFER;
    if due {
        since.set(0);
    }
    due
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_core_is_offered_once_enough_answers_were_given() {
        for _ in 1..ANSWERS_PER_OFFER {
            answered();
        }
        between_rounds();
        assert_eq!(SINCE_OFFER.with(Cell::get), ANSWERS_PER_OFFER - 1);
        answered();
        answered();
        // The answers given past the mark do not carry over: one offer per round at most.
        assert!(SINCE_OFFER.with(offer_due));
        assert_eq!(SINCE_OFFER.with(Cell::get), 0);
        assert!(!SINCE_OFFER.with(offer_due));
    }

    #[test]
    fn each_thread_counts_its_own_answers() {
        for _ in 1..ANSWERS_PER_OFFER {
            answered();
        }
        std::thread::spawn(|| {
            answered();
            assert_eq!(SINCE_OFFER.with(Cell::get), 1);
        })
        .join()
        .unwrap();
        assert_eq!(SINCE_OFFER.with(Cell::get), ANSWERS_PER_OFFER - 1);
        answered();
        between_rounds();
        assert_eq!(SINCE_OFFER.with(Cell::get), 0);
    }
}
