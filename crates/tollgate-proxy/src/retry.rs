//! What is retried, how long a retry waits, and what the upstream says about waiting.

use std::time::{Duration, SystemTime};

use http::{HeaderMap, Method, StatusCode};

use crate::config::RetryConfig;

/// Whether `method` may be sent twice without changing the outcome (RFC 9110 §9.2.2).
pub fn idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

/// Whether a response with `status` is worth another try under `config`.
pub fn retryable(config: &RetryConfig, status: StatusCode) -> bool {
    config.statuses.contains(&status)
}

/// The wait before retry number `retry` (1 for the first): drawn at random below a ceiling
/// that starts at `config.backoff` and doubles up to `config.max_backoff` (full jitter, so
/// clients that failed together do not come back together).
pub fn backoff(config: &RetryConfig, retry: u32) -> Duration {
    let doublings = retry.saturating_sub(1).min(20);
    let ceiling = config
        .backoff
        .saturating_mul(1u32.checked_shl(doublings).unwrap_or(u32::MAX))
        .min(config.max_backoff);
    let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(fastrand::u64(0..=nanos))
}

/// How long the upstream asks to wait before it is sent this request again, from
/// `Retry-After` (seconds or an HTTP date), else, on a 429, the reset its rate-limit
/// headers announce (`RateLimit: …;t=N`, `RateLimit-Reset`, `X-RateLimit-Reset`; a reset
/// larger than a year of seconds is read as a Unix time).
pub fn upstream_wait(status: StatusCode, headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(v) = text("retry-after") {
        if let Ok(secs) = v.parse::<u64>() {
            return Some(Duration::from_secs(secs));
        }
        if let Ok(at) = httpdate::parse_http_date(v) {
            return Some(at.duration_since(now).unwrap_or_default());
        }
    }
    if status != StatusCode::TOO_MANY_REQUESTS {
        return None;
    }
    let reset = text("ratelimit")
        .and_then(|v| {
            v.split(';')
                .filter_map(|p| p.trim().strip_prefix("t="))
                .find_map(|t| t.trim().parse::<u64>().ok())
        })
        .or_else(|| text("ratelimit-reset").and_then(|v| v.parse().ok()))
        .or_else(|| text("x-ratelimit-reset").and_then(|v| v.parse().ok()))?;
    const YEAR: u64 = 365 * 24 * 3600;
    if reset > YEAR {
        let at = SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(reset))?;
        Some(at.duration_since(now).unwrap_or_default())
    } else {
        Some(Duration::from_secs(reset))
    }
}

/// The remaining quota the upstream reports, from `RateLimit: …;r=N`, `RateLimit-Remaining`
/// or `X-RateLimit-Remaining`.
pub fn upstream_remaining(headers: &HeaderMap) -> Option<u64> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    text("ratelimit")
        .and_then(|v| {
            v.split(';')
                .filter_map(|p| p.trim().strip_prefix("r="))
                .find_map(|r| r.trim().parse().ok())
        })
        .or_else(|| text("ratelimit-remaining").and_then(|v| v.parse().ok()))
        .or_else(|| text("x-ratelimit-remaining").and_then(|v| v.parse().ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn backoff_stays_below_a_doubling_ceiling() {
        let config = RetryConfig {
            backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(35),
            ..RetryConfig::default()
        };
        for _ in 0..200 {
            assert!(backoff(&config, 1) <= Duration::from_millis(10));
            assert!(backoff(&config, 2) <= Duration::from_millis(20));
            assert!(backoff(&config, 9) <= Duration::from_millis(35));
        }
        let waits: Vec<_> = (0..50).map(|_| backoff(&config, 3)).collect();
        assert!(waits.iter().any(|w| *w != waits[0]), "jittered");
    }

    #[test]
    fn the_upstream_says_how_long_to_wait() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let s429 = StatusCode::TOO_MANY_REQUESTS;
        assert_eq!(
            upstream_wait(s429, &headers(&[("retry-after", "3")]), now),
            Some(Duration::from_secs(3))
        );
        let date = httpdate::fmt_http_date(now + Duration::from_secs(7));
        assert_eq!(
            upstream_wait(
                StatusCode::SERVICE_UNAVAILABLE,
                &headers(&[("retry-after", &date)]),
                now
            ),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            upstream_wait(
                s429,
                &headers(&[("ratelimit", "\"default\";r=0;t=12")]),
                now
            ),
            Some(Duration::from_secs(12))
        );
        assert_eq!(
            upstream_wait(s429, &headers(&[("x-ratelimit-reset", "1800000005")]), now),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            upstream_wait(
                StatusCode::BAD_GATEWAY,
                &headers(&[("x-ratelimit-reset", "5")]),
                now
            ),
            None,
            "a reset says nothing about a 502"
        );
    }

    #[test]
    fn the_upstream_says_what_remains() {
        assert_eq!(
            upstream_remaining(&headers(&[("ratelimit", "\"q\";r=42;t=1")])),
            Some(42)
        );
        assert_eq!(
            upstream_remaining(&headers(&[("x-ratelimit-remaining", "7")])),
            Some(7)
        );
        assert_eq!(upstream_remaining(&HeaderMap::new()), None);
    }
}
