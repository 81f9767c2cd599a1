//! Durations as written in policies: `500ms`, `10s`, `1m`, `1h30m`, `2 days`, or a bare
//! number of seconds.

use crate::time::{NANOS_PER_MILLI, NANOS_PER_SEC, Nanos};

/// Parses a duration; `None` when the text is not one or it overflows.
pub fn parse_duration(text: &str) -> Option<Nanos> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if let Ok(secs) = text.parse::<u64>() {
        return secs.checked_mul(NANOS_PER_SEC);
    }
    let mut total: Nanos = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        rest = rest[digits..].trim_start();
        let unit_len = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let unit = unit_nanos(&rest[..unit_len])?;
        rest = rest[unit_len..].trim_start();
        total = total.checked_add(n.checked_mul(unit)?)?;
    }
    Some(total)
}

fn unit_nanos(unit: &str) -> Option<Nanos> {
    Some(match unit {
        "ns" => 1,
        "us" | "µs" => 1_000,
        "ms" => NANOS_PER_MILLI,
        "s" | "sec" | "secs" | "second" | "seconds" => NANOS_PER_SEC,
        "m" | "min" | "mins" | "minute" | "minutes" => 60 * NANOS_PER_SEC,
        "h" | "hr" | "hour" | "hours" => 3_600 * NANOS_PER_SEC,
        "d" | "day" | "days" => 86_400 * NANOS_PER_SEC,
        "w" | "week" | "weeks" => 7 * 86_400 * NANOS_PER_SEC,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        let s = NANOS_PER_SEC;
        assert_eq!(parse_duration("1m"), Some(60 * s));
        assert_eq!(parse_duration("1h30m"), Some(5_400 * s));
        assert_eq!(parse_duration("2 days"), Some(172_800 * s));
        assert_eq!(parse_duration("500ms"), Some(s / 2));
        assert_eq!(parse_duration("15"), Some(15 * s));
        assert_eq!(parse_duration("1 mintue"), None);
        assert_eq!(parse_duration("m"), None);
        assert_eq!(parse_duration(""), None);
        assert_eq!(parse_duration("99999999999999999999s"), None);
        assert_eq!(parse_duration("9999999999w"), None);
    }
}
