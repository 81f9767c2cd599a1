//! How often the machine itself takes a core away: one thread per core reads the clock in a
//! tight loop, and every gap between two reads longer than 50 µs is time the thread did not
//! run (an interrupt, another task, or on a virtual machine the host running something
//! else). No server can answer within a gap, so a p99 at a light, fixed rate is bounded
//! below by them. Built by `bench/http.sh` with plain `rustc`; no dependencies.
//!
//!   stalls SECONDS
use std::time::{Duration, Instant};

/// Gaps longer than these, in microseconds, are counted.
const BOUNDS_US: [u64; 3] = [50, 200, 1000];

#[derive(Default)]
struct Gaps {
    counts: [u64; BOUNDS_US.len()],
    lost: Duration,
    longest: Duration,
}

fn spin(span: Duration) -> Gaps {
    let mut gaps = Gaps::default();
    let began = Instant::now();
    let mut last = began;
    while last.duration_since(began) < span {
        let now = Instant::now();
        let gap = now.duration_since(last);
        last = now;
        let us = gap.as_micros() as u64;
        if us > BOUNDS_US[0] {
            gaps.lost += gap;
            gaps.longest = gaps.longest.max(gap);
            for (count, bound) in gaps.counts.iter_mut().zip(BOUNDS_US) {
                *count += u64::from(us > bound);
            }
        }
    }
    gaps
}

fn main() {
    let secs: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    let span = Duration::from_secs_f64(secs);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads: Vec<_> = (0..cores)
        .map(|_| std::thread::spawn(move || spin(span)))
        .collect();
    let mut total = Gaps::default();
    for t in threads {
        let g = t.join().expect("a spinning thread panicked");
        for (sum, c) in total.counts.iter_mut().zip(g.counts) {
            *sum += c;
        }
        total.lost += g.lost;
        total.longest = total.longest.max(g.longest);
    }
    let per_sec = |n: u64| n as f64 / secs / cores as f64;
    println!(
        "stalls: a thread spinning on each of {cores} cores for {secs} s lost its core, per core and second, \
         {:.0} times > 50 µs, {:.0} > 200 µs, {:.1} > 1 ms ({:.2}% of the time; longest {:.2} ms)",
        per_sec(total.counts[0]),
        per_sec(total.counts[1]),
        per_sec(total.counts[2]),
        total.lost.as_secs_f64() * 100.0 / secs / cores as f64,
        total.longest.as_secs_f64() * 1e3,
    );
}
