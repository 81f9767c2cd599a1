//! Dead letters: the requests a route could not deliver, handed off the request path to a
//! writer through a bounded queue, with their secrets left out.
//!
//! The proxy keeps no records itself: whoever serves it (the server, into the records
//! database) takes the letters from the queue's other end. A full queue drops the letter
//! and counts it, so that a slow database never holds an answer back.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderName, header};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use metrics::Counter;
use tokio::sync::mpsc;

use crate::BoxError;

/// One request that was not delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The route it came in by (its host, when it has one, and its path prefix).
    pub route: String,
    /// The upstream pool it was meant for.
    pub upstream: String,
    /// Its method.
    pub method: String,
    /// The URL the client asked for.
    pub url: String,
    /// Its headers as they were forwarded, without credentials and cookies.
    pub headers: Vec<(String, String)>,
    /// Its body, up to the route's `body_limit`.
    pub body: Bytes,
    /// Whether the body was longer than the limit and is kept cut.
    pub body_truncated: bool,
    /// How the last try failed.
    pub last_failure: String,
    /// Tries made.
    pub tries: u32,
    /// When it was given up (ms since the Unix epoch).
    pub at: i64,
}

/// Headers never kept: the client's credentials, whatever route strips more.
const SECRET_HEADERS: [HeaderName; 4] = [
    header::AUTHORIZATION,
    header::COOKIE,
    header::PROXY_AUTHORIZATION,
    HeaderName::from_static("x-api-key"),
];

/// `headers` as a letter keeps them: without [`SECRET_HEADERS`] nor `more`.
pub fn kept_headers(headers: &HeaderMap, more: &[HeaderName]) -> Vec<(String, String)> {
    headers
        .iter()
        .filter(|(name, _)| !SECRET_HEADERS.contains(name) && !more.contains(name))
        .filter_map(|(name, value)| {
            Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect()
}

/// Where the proxy posts its dead letters.
#[derive(Debug, Clone)]
pub struct Sink {
    tx: mpsc::Sender<DeadLetter>,
    dropped: Counter,
    queued: Counter,
}

impl Sink {
    /// A sink with room for `capacity` letters not yet written, and the receiving end.
    pub fn new(capacity: usize) -> (Self, mpsc::Receiver<DeadLetter>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (
            Sink {
                tx,
                dropped: metrics::counter!("tollgate_proxy_dead_letters_dropped_total"),
                queued: metrics::counter!("tollgate_proxy_dead_letters_total"),
            },
            rx,
        )
    }

    /// Queues `letter` without waiting; when the queue is full (or its writer is gone) it
    /// is dropped and counted, not logged: under overload a line per request would be a
    /// flood of its own.
    pub fn post(&self, letter: DeadLetter) {
        match self.tx.try_send(letter) {
            Ok(()) => self.queued.increment(1),
            Err(_) => self.dropped.increment(1),
        }
    }
}

/// A request body read ahead up to a limit.
pub(crate) enum Prefix<B> {
    /// The whole body, no longer than the limit.
    Whole(Bytes),
    /// The first bytes read, past the limit, and the rest still to come.
    Cut(Bytes, Pin<Box<B>>),
}

/// Reads `body` until it ends or more than `limit` bytes have come.
pub(crate) async fn read_prefix<B>(body: B, limit: usize) -> Result<Prefix<B>, BoxError>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let mut body = Box::pin(body);
    let mut buf = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(Into::into)?;
        if let Ok(data) = frame.into_data() {
            buf.extend_from_slice(&data);
            if buf.len() > limit {
                return Ok(Prefix::Cut(buf.freeze(), body));
            }
        }
    }
    Ok(Prefix::Whole(buf.freeze()))
}

/// A body read ahead, then the rest of it.
pub(crate) struct Chained<B> {
    pub(crate) head: Option<Bytes>,
    pub(crate) rest: Pin<Box<B>>,
}

impl<B> Body for Chained<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Some(head) = self.head.take() {
            return Poll::Ready(Some(Ok(Frame::data(head))));
        }
        self.rest
            .as_mut()
            .poll_frame(cx)
            .map(|f| f.map(|f| f.map_err(Into::into)))
    }

    fn is_end_stream(&self) -> bool {
        self.head.is_none() && self.rest.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let head = self.head.as_ref().map_or(0, |h| h.len() as u64);
        let rest = self.rest.size_hint();
        let mut hint = SizeHint::new();
        hint.set_lower(rest.lower().saturating_add(head));
        if let Some(upper) = rest.upper() {
            hint.set_upper(upper.saturating_add(head));
        }
        hint
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, Full};

    #[test]
    fn credentials_and_stripped_headers_are_not_kept() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("authorization", "Bearer s"),
            ("cookie", "a=b"),
            ("x-api-key", "k"),
            ("x-internal", "i"),
            ("content-type", "text/plain"),
        ] {
            h.insert(HeaderName::from_static(k), v.parse().unwrap());
        }
        let kept = kept_headers(&h, &[HeaderName::from_static("x-internal")]);
        assert_eq!(kept, vec![("content-type".into(), "text/plain".into())]);
    }

    #[tokio::test]
    async fn a_body_past_the_limit_is_cut_and_still_sent_whole() {
        let body = Full::new(Bytes::from_static(b"0123456789"));
        let (head, rest) = match read_prefix(body, 4).await.unwrap() {
            Prefix::Cut(head, rest) => (head, rest),
            Prefix::Whole(b) => (b, Box::pin(Full::new(Bytes::from_static(b"not cut")))),
        };
        assert_eq!(&head[..], b"0123456789");
        let all = Chained {
            head: Some(head),
            rest,
        };
        assert_eq!(&all.collect().await.unwrap().to_bytes()[..], b"0123456789");
        let small = Full::new(Bytes::from_static(b"abc"));
        assert!(matches!(read_prefix(small, 4).await, Ok(Prefix::Whole(b)) if &b[..] == b"abc"));
    }
}
