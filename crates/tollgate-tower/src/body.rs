//! The response body of a layered service: the inner service's body, holding the request's
//! concurrency leases until it ends or is dropped, or the body of a refusal.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use smallvec::SmallVec;
use tollgate_core::Store;
use tollgate_engine::Engine;

pin_project! {
    /// The body of a response from a [`Tollgate`](crate::Tollgate) service: the inner
    /// service's body `B`, or the body of a refusal (problem+json, or empty for gRPC).
    ///
    /// While an admitted request's body is being sent it holds the concurrency leases the
    /// request took; they are released when the body ends (its last frame, an error) or is
    /// dropped, as it is when the client goes away. Its data is `B`'s, so a proxy can send
    /// either kind on as one body type.
    pub struct TollgateBody<B> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<B> {
        Inner {
            // Before the body, so that it drops first: whoever learns that the body was
            // dropped finds the leases already released.
            leases: Option<Leases>,
            #[pin]
            body: B,
        },
        Refused {
            bytes: Option<Bytes>,
        },
    }
}

impl<B> TollgateBody<B> {
    /// The inner service's body, holding `leases` until it ends.
    pub(crate) fn inner(body: B, leases: Option<Leases>) -> Self {
        TollgateBody {
            kind: Kind::Inner { body, leases },
        }
    }

    /// The body of a refusal.
    pub(crate) fn refused(bytes: Bytes) -> Self {
        let bytes = (!bytes.is_empty()).then_some(bytes);
        TollgateBody {
            kind: Kind::Refused { bytes },
        }
    }

    /// Whether this is the body of a refusal the layer answered itself.
    pub fn is_refusal(&self) -> bool {
        matches!(self.kind, Kind::Refused { .. })
    }
}

impl<B> std::fmt::Debug for TollgateBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            Kind::Inner { leases, .. } => f
                .debug_struct("TollgateBody::Inner")
                .field("leases", &leases.as_ref().map_or(0, |l| l.ids.len()))
                .finish_non_exhaustive(),
            Kind::Refused { bytes } => f
                .debug_struct("TollgateBody::Refused")
                .field("len", &bytes.as_ref().map_or(0, Bytes::len))
                .finish(),
        }
    }
}

impl<B> Body for TollgateBody<B>
where
    B: Body,
    B::Data: From<Bytes>,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        match self.project().kind.project() {
            KindProj::Inner { mut body, leases } => {
                let polled = body.as_mut().poll_frame(cx);
                // Released as soon as the body is done, before the server writes its end,
                // so a client that has read the whole answer finds the lease free.
                let ended = match &polled {
                    Poll::Ready(None | Some(Err(_))) => true,
                    Poll::Ready(Some(Ok(_))) => body.is_end_stream(),
                    Poll::Pending => false,
                };
                if ended {
                    drop(leases.take());
                }
                polled
            }
            KindProj::Refused { bytes } => {
                Poll::Ready(bytes.take().map(|b| Ok(Frame::data(B::Data::from(b)))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Inner { body, .. } => body.is_end_stream(),
            Kind::Refused { bytes } => bytes.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Inner { body, .. } => body.size_hint(),
            Kind::Refused { bytes } => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
        }
    }
}

/// The concurrency leases of one admitted request, released when dropped.
pub(crate) struct Leases {
    engine: Arc<dyn EndLeases>,
    ids: SmallVec<[String; 1]>,
}

impl Leases {
    /// Holds `ids`, taken under `engine`; none when there are none.
    pub(crate) fn hold<S: Store + 'static>(
        engine: &Arc<Engine<S>>,
        ids: SmallVec<[String; 1]>,
    ) -> Option<Leases> {
        if ids.is_empty() {
            return None;
        }
        let engine: Arc<dyn EndLeases> = engine.clone();
        Some(Leases { engine, ids })
    }
}

impl Drop for Leases {
    fn drop(&mut self) {
        let ids = std::mem::take(&mut self.ids);
        self.engine.clone().end(ids);
    }
}

/// Ends leases without naming the store's type, so that the body's type does not carry it.
trait EndLeases: Send + Sync {
    fn end(self: Arc<Self>, ids: SmallVec<[String; 1]>);
}

impl<S: Store + 'static> EndLeases for Engine<S> {
    fn end(self: Arc<Self>, ids: SmallVec<[String; 1]>) {
        let mut release = Box::pin(async move {
            for id in &ids {
                if let Err(e) = self.release(id).await {
                    tracing::warn!(error = %e, "a concurrency lease could not be released; it ends at its lease_ttl");
                }
            }
        });
        // The memory store answers at once: releasing here, in the drop, frees the lease
        // before anyone can observe that the body has ended. A store that has to wait
        // finishes on the runtime.
        if release
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
            .is_ready()
        {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(release);
            }
            Err(_) => tracing::warn!(
                "concurrency leases dropped outside a tokio runtime; they end at their lease_ttl"
            ),
        }
    }
}
