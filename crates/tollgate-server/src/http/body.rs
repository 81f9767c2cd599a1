//! Request bodies: JSON into its schema, YAML documents, and the problems a body that
//! cannot be read answers.

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use serde::Deserialize;
use serde_json::Value;

use super::problem::{FieldError, Problem};

/// Reads a request body of at most `limit` bytes (`server.max_body`): 413 above it,
/// whether announced or streamed, 400 when the body breaks off. A body that comes in one
/// frame is kept as it came, without a copy.
pub async fn read_limited(body: Body, limit: usize) -> Result<Bytes, Problem> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let e = e.into_inner();
        if e.is::<http_body_util::LengthLimitError>() {
            Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body-too-large",
                "The request body is too large",
                format!("the body is larger than the limit of {limit} bytes (server.max_body)"),
            )
        } else {
            Problem::new(
                StatusCode::BAD_REQUEST,
                "unreadable-body",
                "The request body could not be read",
                e.to_string(),
            )
        }
    })
}

/// Turns a body extraction failure into a problem (413 for an oversized body).
pub fn body_problem(rejection: BytesRejection) -> Problem {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body-too-large",
            "The request body is too large",
            rejection.body_text(),
        )
    } else {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "unreadable-body",
            "The request body could not be read",
            rejection.body_text(),
        )
    }
}

/// Parses a JSON body into its schema: 400 when it is not JSON, 422 naming the field
/// (`checks[2].subject.ip`) when it does not fit.
pub fn parse_json<'de, T: Deserialize<'de>>(body: &'de [u8]) -> Result<T, Problem> {
    // Tracking the path costs on every field; only a body that fails needs it, so that one
    // is parsed again to name where.
    match serde_json::from_slice(body) {
        // serde reads a struct from an array of its fields in order too: every body here
        // is an object, and `[null, null]` is not one.
        Ok(_) if !is_object(body) => Err(Problem::invalid(
            "the body is a JSON object of the route's fields".into(),
        )),
        Ok(value) => Ok(value),
        Err(_) => parse_json_with_path(body),
    }
}

/// Whether `body`, valid JSON, is an object.
fn is_object(body: &[u8]) -> bool {
    body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

#[cold]
fn parse_json_with_path<'de, T: Deserialize<'de>>(body: &'de [u8]) -> Result<T, Problem> {
    use serde_json::error::Category;
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            Category::Syntax | Category::Eof | Category::Io => {
                Problem::malformed(inner.to_string())
            }
            Category::Data => {
                let at = if path == "." { String::new() } else { path };
                let detail = if at.is_empty() {
                    inner.to_string()
                } else {
                    format!("{at}: {inner}")
                };
                Problem::invalid(detail).with_errors(vec![FieldError {
                    path: at,
                    message: inner.to_string(),
                }])
            }
        }
    })?;
    // Trailing text after the value is as malformed as a broken one.
    de.end().map_err(|e| Problem::malformed(e.to_string()))?;
    Ok(value)
}

/// A YAML (or JSON) body as a document; 400 when it is neither.
pub fn yaml_body(body: Result<Bytes, BytesRejection>) -> Result<Value, Problem> {
    let body = body.map_err(body_problem)?;
    let text = std::str::from_utf8(&body)
        .map_err(|_| Problem::malformed("the body is not UTF-8".into()))?;
    tollgate_core::policy::parse::parse_yaml(text).map_err(|e| Problem::malformed(e.to_string()))
}

/// The kinds of body a route reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reads {
    /// JSON only.
    Json,
    /// A document: YAML, or JSON (which is YAML too).
    Document,
}

/// Whether a request's declared body type is one the route reads: no type declared, JSON
/// (`application/json`, any `+json`) and, for documents, YAML or plain text. A body sent
/// as a form (`curl -d` without a type) is refused here rather than misread.
pub fn check_content_type(headers: &HeaderMap, reads: Reads) -> Result<(), Problem> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let essence = value
        .to_str()
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim();
    let is = |name: &str| essence.eq_ignore_ascii_case(name);
    let ends = |suffix: &str| {
        essence
            .len()
            .checked_sub(suffix.len())
            .and_then(|at| essence.get(at..))
            .is_some_and(|end| end.eq_ignore_ascii_case(suffix))
    };
    let json = is("application/json") || ends("+json");
    let document = [
        "application/yaml",
        "application/x-yaml",
        "text/yaml",
        "text/x-yaml",
        "text/plain",
    ]
    .into_iter()
    .any(is)
        || ends("+yaml");
    if json || (reads == Reads::Document && document) {
        return Ok(());
    }
    let wanted = match reads {
        Reads::Json => "application/json",
        Reads::Document => "application/yaml or application/json",
    };
    Err(Problem::unsupported_media_type(format!(
        "content-type {:?} is not read here: send {wanted}",
        value.to_str().unwrap_or("(not text)")
    )))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::collections::VecDeque;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use axum::body::{Body, HttpBody};
    use axum::http::HeaderValue;
    use axum::response::IntoResponse;
    use http_body_util::Full;

    use super::*;

    fn typed(value: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(value));
        h
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Two {
        a: Option<u32>,
        b: Option<String>,
    }

    /// Found by the contract tests: serde reads a struct from an array of its fields, so
    /// `[null, null]` was taken as `{}`.
    #[test]
    fn a_body_is_an_object_not_an_array_of_fields() {
        let p = parse_json::<Two>(b"[null, null]").unwrap_err();
        assert_eq!(p.status, 422);
        assert!(p.kind.ends_with("/invalid-request"));
        let p = parse_json::<Two>(b"[1, \"x\"]").unwrap_err();
        assert_eq!(p.status, 422);
        assert!(parse_json::<Two>(b" \n{\"a\": 1}").is_ok());
        assert_eq!(parse_json::<Two>(b"[1,").unwrap_err().status, 400);
    }

    #[test]
    fn declared_types_are_checked_against_what_the_route_reads() {
        assert!(check_content_type(&HeaderMap::new(), Reads::Json).is_ok());
        assert!(check_content_type(&typed("application/json; charset=utf-8"), Reads::Json).is_ok());
        assert!(check_content_type(&typed("application/merge-patch+json"), Reads::Json).is_ok());
        assert!(check_content_type(&typed("application/yaml"), Reads::Document).is_ok());
        assert!(check_content_type(&typed("Application/JSON"), Reads::Document).is_ok());
        for refused in ["application/x-www-form-urlencoded", "text/plain"] {
            let p = check_content_type(&typed(refused), Reads::Json).unwrap_err();
            assert_eq!(p.status, 415, "{refused}");
        }
        let p = check_content_type(&typed("image/png"), Reads::Document).unwrap_err();
        assert!(p.detail.unwrap().contains("application/yaml"));
    }

    /// A body that arrives in the given frames, with no length announced.
    struct Frames(VecDeque<Result<&'static [u8], &'static str>>);

    impl HttpBody for Frames {
        type Data = Bytes;
        type Error = std::io::Error;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
            Poll::Ready(self.0.pop_front().map(|f| {
                f.map(|d| http_body::Frame::data(Bytes::from_static(d)))
                    .map_err(std::io::Error::other)
            }))
        }
    }

    fn frames(parts: &[Result<&'static [u8], &'static str>]) -> Body {
        Body::new(Frames(parts.iter().copied().collect()))
    }

    fn status(r: Result<Bytes, Problem>) -> u16 {
        r.err().map_or(200, |p| p.into_response().status().as_u16())
    }

    #[tokio::test]
    async fn one_frame_is_kept_as_it_came() {
        let sent = Bytes::from_static(br#"{"subject":{}}"#);
        let got = read_limited(Body::new(Full::new(sent.clone())), 64)
            .await
            .unwrap();
        assert_eq!(got, sent);
        assert_eq!(got.as_ptr(), sent.as_ptr());
    }

    #[tokio::test]
    async fn frames_are_gathered_up_to_the_limit() {
        let got = read_limited(frames(&[Ok(b"ab"), Ok(b""), Ok(b"cd"), Ok(b"e")]), 5).await;
        assert_eq!(got.unwrap(), Bytes::from_static(b"abcde"));
        assert_eq!(read_limited(frames(&[]), 5).await.unwrap(), Bytes::new());
    }

    #[tokio::test]
    async fn a_body_above_the_limit_is_413_whether_announced_or_not() {
        let announced = Body::new(Full::new(Bytes::from_static(b"123456")));
        assert_eq!(status(read_limited(announced, 5).await), 413);
        let streamed = frames(&[Ok(b"123"), Ok(b"456"), Err("never read")]);
        assert_eq!(status(read_limited(streamed, 5).await), 413);
    }

    #[tokio::test]
    async fn a_broken_body_is_400() {
        assert_eq!(
            status(read_limited(frames(&[Ok(b"ab"), Err("reset")]), 64).await),
            400
        );
    }
}
