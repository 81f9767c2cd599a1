//! The request timeout, with a timer only for requests that wait.
//!
//! A decision on the memory store answers on its first poll. Arming a timer for it anyway
//! costs more than the decision: registering a tokio timer from a request wakes the
//! runtime's driver, a system call on every request. So the timer starts at the first poll
//! that does not finish — reading a slow body, waiting for Redis or the database — and the
//! limit counts from there.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use pin_project_lite::pin_project;
use tokio::time::Sleep;
use tower::{Layer, Service};

use super::problem::Problem;

/// Answers 408 (problem+json) when a request that had to wait is not done within `limit`.
#[derive(Debug, Clone, Copy)]
pub struct DeadlineLayer {
    limit: Duration,
}

impl DeadlineLayer {
    pub fn new(limit: Duration) -> Self {
        DeadlineLayer { limit }
    }
}

impl<S> Layer<S> for DeadlineLayer {
    type Service = Deadline<S>;

    fn layer(&self, inner: S) -> Deadline<S> {
        Deadline {
            inner,
            limit: self.limit,
        }
    }
}

/// See [`DeadlineLayer`].
#[derive(Debug, Clone)]
pub struct Deadline<S> {
    inner: S,
    limit: Duration,
}

impl<S, B> Service<Request<B>> for Deadline<S>
where
    S: Service<Request<B>, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = DeadlineFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        DeadlineFuture {
            inner: self.inner.call(req),
            sleep: None,
            limit: self.limit,
        }
    }
}

pin_project! {
    /// The response future of [`Deadline`].
    pub struct DeadlineFuture<F> {
        #[pin]
        inner: F,
        #[pin]
        sleep: Option<Sleep>,
        limit: Duration,
    }
}

impl<F, E> Future for DeadlineFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let Poll::Ready(res) = this.inner.poll(cx) {
            return Poll::Ready(res);
        }
        if this.sleep.is_none() {
            this.sleep.set(Some(tokio::time::sleep(*this.limit)));
        }
        match this.sleep.as_pin_mut().map(|s| s.poll(cx)) {
            Some(Poll::Ready(())) => Poll::Ready(Ok(Problem::new(
                StatusCode::REQUEST_TIMEOUT,
                "timeout",
                "Request timed out",
                Some(format!(
                    "the request took longer than {} ms",
                    this.limit.as_millis()
                )),
            )
            .into_response())),
            _ => Poll::Pending,
        }
    }
}
