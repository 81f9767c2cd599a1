//! The per-decision metrics, counted by each thread on its own and added up when scraped.
//!
//! A Prometheus counter or histogram of the metrics recorder is one set of atomics that
//! every worker thread writes on every decision, so the cache lines holding them travel
//! between the cores with each request: recording a decision's metrics cost about 6% of
//! `POST /v1/check`'s throughput. Here each thread counts into slots only it writes; a
//! scrape adds what every slot gained since the last one into the recorder's counters, and
//! renders the latency histogram from the slots.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// The latency histogram's name.
pub const LATENCY: &str = "tollgate_decision_seconds";

/// Upper bounds of the latency buckets, in nanoseconds (10 µs to 25 ms), then `+Inf`.
const BOUNDS_NS: [u64; 9] = [
    10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 5_000_000, 25_000_000,
];

/// A count written by one thread only, alone on its cache line. Its owner adds with a
/// plain load and store; any thread may read it.
#[repr(align(64))]
#[derive(Default)]
pub struct Slot(AtomicU64);

impl Slot {
    /// Adds `n`. Only the thread that owns the slot calls this.
    pub fn add(&self, n: u64) {
        let v = self.0.load(Ordering::Relaxed);
        self.0.store(v.wrapping_add(n), Ordering::Release);
    }

    fn get(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }
}

/// One thread's latency histogram.
#[derive(Default)]
pub struct Latency {
    /// Per bucket, not cumulative; the last is above every bound.
    buckets: [Slot; BOUNDS_NS.len() + 1],
    sum_ns: Slot,
}

impl Latency {
    /// Records one decision's latency. Only the owning thread calls this.
    pub fn record(&self, took: Duration) {
        let ns = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        let i = BOUNDS_NS
            .iter()
            .position(|&b| ns <= b)
            .unwrap_or(BOUNDS_NS.len());
        if let Some(bucket) = self.buckets.get(i) {
            bucket.add(1);
        }
        self.sum_ns.add(ns);
    }
}

/// A counter slot and the recorder's counter it feeds.
struct Fed {
    slot: Arc<Slot>,
    counter: metrics::Counter,
    sent: u64,
}

/// Every thread's slots, for the scrape.
#[derive(Default)]
pub struct Tallies {
    counters: Mutex<Vec<Fed>>,
    latencies: Mutex<Vec<Arc<Latency>>>,
}

/// The process's tallies: like the metrics recorder they feed, one for the process.
pub static TALLIES: Tallies = Tallies::new();

impl Tallies {
    const fn new() -> Self {
        Tallies {
            counters: Mutex::new(Vec::new()),
            latencies: Mutex::new(Vec::new()),
        }
    }

    /// A new slot of the calling thread that feeds `counter`.
    pub fn counter(&self, counter: metrics::Counter) -> Arc<Slot> {
        let slot = Arc::new(Slot::default());
        self.counters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Fed {
                slot: slot.clone(),
                counter,
                sent: 0,
            });
        slot
    }

    /// A new latency histogram of the calling thread.
    pub fn latency(&self) -> Arc<Latency> {
        let latency = Arc::new(Latency::default());
        self.latencies
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(latency.clone());
        latency
    }

    /// Adds what each counter slot gained since the last call to its recorder counter.
    pub fn publish(&self) {
        let mut counters = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        for fed in counters.iter_mut() {
            let now = fed.slot.get();
            fed.counter.increment(now.wrapping_sub(fed.sent));
            fed.sent = now;
        }
    }

    /// The latency histogram of every thread together, in the Prometheus text format.
    pub fn render_latency(&self) -> String {
        let mut buckets = [0u64; BOUNDS_NS.len() + 1];
        let mut sum_ns = 0u64;
        for l in self
            .latencies
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            for (total, b) in buckets.iter_mut().zip(&l.buckets) {
                *total = total.wrapping_add(b.get());
            }
            sum_ns = sum_ns.wrapping_add(l.sum_ns.get());
        }
        let mut out = format!("# TYPE {LATENCY} histogram\n");
        let mut below = 0u64;
        for (bound, n) in BOUNDS_NS.iter().zip(buckets) {
            below = below.wrapping_add(n);
            let le = *bound as f64 / 1e9;
            let _ = writeln!(out, "{LATENCY}_bucket{{le=\"{le}\"}} {below}");
        }
        let count = below.wrapping_add(buckets[BOUNDS_NS.len()]);
        let _ = writeln!(out, "{LATENCY}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "{LATENCY}_sum {}", sum_ns as f64 / 1e9);
        let _ = writeln!(out, "{LATENCY}_count {count}");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_of_every_thread_add_up_in_cumulative_buckets() {
        let tallies = Arc::new(Tallies::default());
        let threads: Vec<_> = [Duration::from_micros(5), Duration::from_millis(2)]
            .into_iter()
            .map(|took| {
                let tallies = tallies.clone();
                std::thread::spawn(move || {
                    let mine = tallies.latency();
                    for _ in 0..3 {
                        mine.record(took);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        tallies.latency().record(Duration::from_secs(1));
        let text = tallies.render_latency();
        for line in [
            "tollgate_decision_seconds_bucket{le=\"0.00001\"} 3\n",
            "tollgate_decision_seconds_bucket{le=\"0.001\"} 3\n",
            "tollgate_decision_seconds_bucket{le=\"0.005\"} 6\n",
            "tollgate_decision_seconds_bucket{le=\"0.025\"} 6\n",
            "tollgate_decision_seconds_bucket{le=\"+Inf\"} 7\n",
            "tollgate_decision_seconds_sum 1.006015\n",
            "tollgate_decision_seconds_count 7\n",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
    }

    #[test]
    fn a_scrape_adds_only_what_each_slot_gained_since_the_last() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            let tallies = Tallies::default();
            let a = tallies.counter(metrics::counter!("c_total"));
            let b = tallies.counter(metrics::counter!("c_total"));
            a.add(2);
            b.add(3);
            tallies.publish();
            a.add(1);
            tallies.publish();
            tallies.publish();
        });
        assert!(
            handle.render().contains("c_total 6\n"),
            "{}",
            handle.render()
        );
    }
}
