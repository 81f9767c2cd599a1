//! Durations in settings: read within a range, and written as people write them.

use std::time::Duration;

use serde_json::{Map, Value};
use tollgate_core::policy::parse::{Errors, get_duration, join};

/// The duration `field` of `m` at `at`, when within `range` (both ends included); `default`
/// when absent, or after an error naming the range.
pub fn within(
    m: &Map<String, Value>,
    field: &str,
    at: &str,
    range: (Duration, Duration),
    default: Duration,
    errs: &mut Errors,
) -> Duration {
    match get_duration(m, field, at, errs).map(Duration::from_nanos) {
        None => default,
        Some(d) if d < range.0 || d > range.1 => {
            errs.push(
                &join(at, field),
                format!("must be between {} and {}", human(range.0), human(range.1)),
            );
            default
        }
        Some(d) => d,
    }
}

/// `d` in its largest whole unit: `30d`, `2h`, `1m`, `90s`, `500ms`.
pub fn human(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 || !ms.is_multiple_of(1_000) {
        return format!("{ms}ms");
    }
    let s = d.as_secs();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
        if s.is_multiple_of(size) {
            return format!("{}{unit}", s.checked_div(size).unwrap_or(0));
        }
    }
    format!("{s}s")
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use tollgate_core::policy::parse::parse_yaml;

    use super::*;

    #[test]
    fn durations_read_as_written() {
        assert_eq!(human(Duration::from_secs(60)), "1m");
        assert_eq!(human(Duration::from_secs(90)), "90s");
        assert_eq!(human(Duration::from_secs(7_200)), "2h");
        assert_eq!(human(Duration::from_secs(30 * 86_400)), "30d");
        assert_eq!(human(Duration::from_millis(100)), "100ms");
    }

    #[test]
    fn a_duration_out_of_range_is_named_with_the_range() {
        let doc = parse_yaml("{ a: 5s, b: 1h }").unwrap();
        let m = doc.as_object().unwrap();
        let range = (Duration::from_secs(1), Duration::from_secs(600));
        let mut errs = Errors::default();
        let fallback = Duration::from_secs(15);
        assert_eq!(
            within(m, "a", "x", range, fallback, &mut errs),
            Duration::from_secs(5)
        );
        assert_eq!(within(m, "b", "x", range, fallback, &mut errs), fallback);
        assert_eq!(within(m, "c", "x", range, fallback, &mut errs), fallback);
        let errs = errs.finish(()).unwrap_err();
        assert_eq!(errs.0.len(), 1);
        assert_eq!(errs.0[0].path, "x.b");
        assert_eq!(errs.0[0].message, "must be between 1s and 10m");
    }
}
