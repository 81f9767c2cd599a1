//! How an HTTP worker thread shares its core with the other threads on the machine.
//!
//! A worker under steady load never sleeps: there is always another request ready. On a
//! kernel that preempts a busy thread only at its tick (every 4 ms with `HZ=250`), a thread
//! waiting for the same core, such as the application beside a sidecar, or the load
//! generator in a bench, then waits for that tick, and so do the answers it has to read.
//! A worker therefore offers its core after every [`ANSWERS_PER_OFFER`] answers
//! (`sched_yield`): a thread waiting for it runs at once, and when none waits the offer is
//! one system call. On two cores shared with wrk it took a fifth to two fifths off the p99
//! at saturation for 0–6% of the throughput (docs/benchmarks.md). The gRPC door's workers
//! do not offer theirs: serving one connection per worker, as Envoy opens them, offering
//! made 10% fewer calls per second in the one comparison made (`bench/rls-load`), inside
//! that bench's noise but not shown to help.

use std::cell::Cell;

/// Answers a worker gives between two offers of its core: a few hundred microseconds of
/// work, well inside a 4 ms tick. Every 32 cost more throughput; every 128 or 256 left
/// more of the tail.
pub const ANSWERS_PER_OFFER: u32 = 64;

thread_local! {
    /// Answers this thread gave since it last offered its core.
    static SINCE_OFFER: Cell<u32> = const { Cell::new(0) };
}

/// Counts one answer of the calling worker, and offers the core when it is time.
pub fn answered() {
    if SINCE_OFFER.with(due) {
        std::thread::yield_now();
    }
}

/// Counts one answer in `since`; true once every [`ANSWERS_PER_OFFER`] answers.
fn due(since: &Cell<u32>) -> bool {
    let count = since.get().saturating_add(1);
    let due = count >= ANSWERS_PER_OFFER;
    since.set(if due { 0 } else { count });
    due
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_core_is_offered_once_every_so_many_answers() {
        let since = Cell::new(0);
        let offers: Vec<u32> = (1..=3 * ANSWERS_PER_OFFER)
            .filter(|_| due(&since))
            .collect();
        assert_eq!(
            offers,
            [
                ANSWERS_PER_OFFER,
                2 * ANSWERS_PER_OFFER,
                3 * ANSWERS_PER_OFFER
            ]
        );
        assert_eq!(since.get(), 0);
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
        assert_eq!(SINCE_OFFER.with(Cell::get), 0);
    }
}
