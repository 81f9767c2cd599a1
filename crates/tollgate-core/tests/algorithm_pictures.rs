//! The pictures in `docs/concepts/algorithms.md` are what the algorithms do today: each is
//! drawn again from a run of the core and compared with the committed file.

#[path = "../examples/algorithm_pictures/draw.rs"]
mod draw;

use std::path::Path;

/// The command that writes the pictures.
const REGENERATE: &str = "cargo run -p tollgate-core --example algorithm_pictures";

#[test]
fn the_committed_pictures_are_drawn_from_the_code() {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join(draw::FOLDER);
    let pictures = draw::pictures().unwrap();
    assert_eq!(pictures.len(), 7);
    for (file, svg) in pictures {
        let committed = std::fs::read_to_string(folder.join(&file)).unwrap_or_default();
        assert!(
            committed == svg,
            "docs/concepts/img/{file} is stale: run  {}",
            REGENERATE
        );
    }
}

#[test]
fn the_pattern_tells_the_algorithms_apart() {
    let admitted = |rule: &str| draw::run(rule).unwrap();
    let gcra = admitted("algorithm: gcra, limit: 10, period: 10s, burst: 5");
    // The first burst: a bucket of limit + burst lets 15 through at once, a window 10.
    assert!(gcra[..15].iter().all(|a| *a));
    let fixed = admitted("algorithm: fixed_window, limit: 10, period: 10s");
    assert_eq!(fixed[..15].iter().filter(|a| **a).count(), 10);
    // The quota's hour turns 30 s in: nothing is admitted before it once 30 are spent,
    // and the second burst is admitted whole.
    let quota = admitted("algorithm: quota, limit: 30, period: hour");
    let arrivals = draw::arrivals();
    let before: usize = arrivals
        .iter()
        .zip(&quota)
        .filter(|(ms, a)| **ms < 30_000 && **a)
        .count();
    assert_eq!(before, 30);
    assert!(quota[45..65].iter().all(|a| *a));
}
