//! The layer's own answers, in the server's forms: the rate-limit headers of a decision,
//! refusals as RFC 9457 problem+json (the `type`, title and status forward-auth gives), and
//! for gRPC callers the matching status in trailers-only form.

use bytes::Bytes;
use http::header::{CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode};
use serde::Serialize;
use tollgate_core::Headers;
use tollgate_engine::door::{PROBLEM_TYPE_BASE, Refusal};

const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
const X_RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
const X_RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
const X_RATELIMIT_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");
const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
const GRPC_MESSAGE: HeaderName = HeaderName::from_static("grpc-message");

/// The header of a decision's header `name`: a constant for the ones a decision has, so
/// answers do not parse their names.
fn decision_header(name: &str) -> Option<HeaderName> {
    Some(match name {
        "ratelimit" => RATELIMIT,
        "ratelimit-policy" => RATELIMIT_POLICY,
        "retry-after" => RETRY_AFTER,
        "x-ratelimit-limit" => X_RATELIMIT_LIMIT,
        "x-ratelimit-remaining" => X_RATELIMIT_REMAINING,
        "x-ratelimit-reset" => X_RATELIMIT_RESET,
        other => return HeaderName::from_bytes(other.as_bytes()).ok(),
    })
}

/// Sets a decision's rate-limit headers, moving the values in rather than copying them.
pub(crate) fn set_headers(map: &mut HeaderMap, headers: Headers) {
    map.reserve(headers.0.len());
    for (name, value) in headers.0 {
        if let (Some(name), Ok(v)) = (
            decision_header(name),
            HeaderValue::from_maybe_shared(Bytes::from(value)),
        ) {
            map.insert(name, v);
        }
    }
}

/// Whether the request is a gRPC call, answered with a gRPC status rather than a problem.
pub(crate) fn is_grpc(h: &HeaderMap) -> bool {
    h.get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'a str>,
}

/// The answer to a refused request, with the decision's `headers`.
pub(crate) fn refusal(refusal: &Refusal, headers: Headers, grpc: bool) -> Response<Bytes> {
    let mut res = if grpc {
        grpc_status(refusal)
    } else {
        problem(refusal)
    };
    set_headers(res.headers_mut(), headers);
    res
}

/// 400 (`INVALID_ARGUMENT` for gRPC): an attribute the request carries is not one a subject
/// takes (too long, control characters, not an address).
pub(crate) fn invalid_subject(detail: String, grpc: bool) -> Response<Bytes> {
    let refusal = Refusal {
        status: 400,
        slug: "invalid-subject",
        title: "A request attribute is invalid",
        detail: Some(detail),
    };
    if grpc {
        grpc_status(&refusal)
    } else {
        problem(&refusal)
    }
}

fn problem(r: &Refusal) -> Response<Bytes> {
    let mut kind = String::with_capacity(PROBLEM_TYPE_BASE.len().saturating_add(r.slug.len()));
    kind.push_str(PROBLEM_TYPE_BASE);
    kind.push_str(r.slug);
    let body = Problem {
        kind,
        title: r.title,
        status: r.status,
        detail: r.detail.as_deref(),
    };
    // A struct of strings and a number always serialises.
    let body = serde_json::to_vec(&body).unwrap_or_default();
    let mut res = Response::new(Bytes::from(body));
    *res.status_mut() = StatusCode::from_u16(r.status).unwrap_or(StatusCode::TOO_MANY_REQUESTS);
    res.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    res
}

/// The gRPC status answering HTTP status `status`, by the mapping gRPC documents between
/// the two.
fn grpc_code(status: u16) -> &'static str {
    match status {
        400 => "3",  // INVALID_ARGUMENT
        401 => "16", // UNAUTHENTICATED
        403 => "7",  // PERMISSION_DENIED
        503 => "14", // UNAVAILABLE
        _ => "8",    // RESOURCE_EXHAUSTED
    }
}

/// A trailers-only gRPC answer: HTTP 200, the status and message in the headers, no body.
fn grpc_status(r: &Refusal) -> Response<Bytes> {
    let mut message = String::from(r.title);
    if let Some(detail) = &r.detail {
        message.push_str(": ");
        message.push_str(detail);
    }
    let mut res = Response::new(Bytes::new());
    let h = res.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    h.insert(GRPC_STATUS, HeaderValue::from_static(grpc_code(r.status)));
    if let Ok(v) = HeaderValue::from_str(&percent_encode(&message)) {
        h.insert(GRPC_MESSAGE, v);
    }
    res
}

/// `grpc-message` is percent-encoded: every byte outside printable ASCII, and `%` itself.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push('%');
            for nibble in [b >> 4, b & 0xf] {
                out.extend(char::from_digit(u32::from(nibble), 16).map(|c| c.to_ascii_uppercase()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_messages_are_percent_encoded() {
        assert_eq!(percent_encode("limit \"a\" 100%"), "limit \"a\" 100%25");
        assert_eq!(percent_encode("é\n"), "%C3%A9%0A");
    }
}
