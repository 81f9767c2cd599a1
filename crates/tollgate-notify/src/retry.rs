//! Which HTTP answers and transport failures are worth retrying.

use std::time::{Duration, SystemTime};

use http::StatusCode;
use http::header::{HeaderMap, RETRY_AFTER};

use crate::DeliveryError;

/// How much of a failed answer's body goes into the reason: enough to see the receiver's
/// message, not enough to flood a log.
const BODY_EXCERPT: usize = 200;

/// Classifies a non-success HTTP answer: 408, 429 and 5xx are retryable, the rest is not.
pub(crate) fn classify_status(
    channel: &str,
    status: StatusCode,
    headers: &HeaderMap,
    body: &str,
    now: SystemTime,
) -> DeliveryError {
    let excerpt: String = body.chars().take(BODY_EXCERPT).collect();
    let reason = if excerpt.trim().is_empty() {
        format!("{channel} answered {status}")
    } else {
        format!("{channel} answered {status}: {}", excerpt.trim())
    };
    let retryable = status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error();
    let retry_after = if retryable {
        headers
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, now))
    } else {
        None
    };
    DeliveryError {
        retryable,
        retry_after,
        reason,
    }
}

/// Parses `Retry-After` as delta-seconds or an HTTP-date (a date in the past means now).
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Classifies a transport failure: all are retryable but a failed TLS handshake, which
/// will not succeed by itself. The client's errors never carry the URL, which may hold a
/// secret (Slack's does).
pub(crate) fn classify_transport(
    channel: &str,
    err: &hyper_util::client::legacy::Error,
) -> DeliveryError {
    let what = if err.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    let reason = format!("{channel}: {what}: {}", chain(err));
    if is_tls(err) {
        DeliveryError::permanent(reason)
    } else {
        DeliveryError::transient(reason)
    }
}

/// Whether a rustls error is among the causes.
fn is_tls(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(err);
    while let Some(s) = source {
        if s.downcast_ref::<rustls::Error>().is_some() {
            return true;
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>()
            && io
                .get_ref()
                .is_some_and(|inner| inner.is::<rustls::Error>())
        {
            return true;
        }
        source = s.source();
    }
    false
}

/// An error and its sources, joined, since the client's own message hides the cause.
pub(crate) fn chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        // Many errors repeat their source in their own message.
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = httpdate::parse_http_date("Mon, 07 Dec 2026 10:00:00 GMT").unwrap();
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("Mon, 07 Dec 2026 10:00:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Mon, 07 Dec 2026 09:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn statuses() {
        let h = HeaderMap::new();
        let now = SystemTime::now();
        for (code, retry) in [
            (408, true),
            (429, true),
            (500, true),
            (503, true),
            (400, false),
            (404, false),
            (301, false),
        ] {
            let status = StatusCode::from_u16(code).unwrap();
            assert_eq!(
                classify_status("x", status, &h, "", now).retryable,
                retry,
                "{code}"
            );
        }
    }
}
