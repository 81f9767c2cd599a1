//! Serving one worker's connections: hyper driven directly, each connection with its own
//! service.
//!
//! `axum::serve` did the same through an adapter that cloned the service for every request
//! and wrapped its call in a `Oneshot` (hyper calls a service by shared reference, tower by
//! exclusive one). A connection owns its service here and borrows it mutably per request;
//! and HTTP/1 answers go out in one flat write. HTTP/2 (prior knowledge) is served as before.

use std::cell::RefCell;
use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker, ready};
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulConnection;
use pin_project_lite::pin_project;
use tokio::sync::{Notify, watch};
use tower::Service as _;

use super::{Routes, Served};
use crate::spread::Inbox;

/// Serves the connections `inbox` hands over until `stopped` turns true, then lets those
/// open finish what they are serving (each closes after its answer in flight) and returns
/// when all have closed. A connection that starts no request for `idle_timeout` while
/// none is in flight (idle, or sending a head too slowly) is closed.
pub async fn serve(
    mut inbox: Inbox,
    routes: Routes,
    idle_timeout: Duration,
    mut stopped: watch::Receiver<bool>,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // The answer of a decision is a few hundred bytes: copied behind its head, it leaves in
    // one plain write.
    builder.http1().writev(false);
    let open = Arc::new(Open::default());
    loop {
        let (conn, peer) = tokio::select! {
            biased;
            _ = stopped.wait_for(|s| *s) => break,
            next = inbox.next() => next,
        };
        let served = routes.for_peer(peer);
        let activity = Arc::new(Activity::default());
        let service = PerConnection {
            spare: served.clone(),
            served: RefCell::new(served),
            activity: activity.clone(),
        };
        let connection = builder
            .serve_connection(TokioIo::new(conn), service)
            .into_owned();
        let member = Open::join(&open);
        tokio::spawn(watched(connection, activity, idle_timeout, member));
    }
    drop(inbox);
    open.stop();
    open.closed().await;
}

/// Serves `connection` until it ends, or until it has started no request for
/// `idle_timeout` with none in flight; shuts it down gracefully when its worker stops.
///
/// hyper's own header read timeout does this for HTTP/1, but arms a timer for every
/// request: 1,500 instructions more per decision (5%). Here each connection has one timer,
/// which looks at the connection's activity four times per timeout, so a quiet connection
/// is closed between one and one and a quarter timeouts after its last answer. The timer
/// and the stop are each a flag to read on the connection's every poll, where a `select!`
/// over a sleep and hyper's `GracefulShutdown` (a watch channel) had cost about 700
/// instructions per request.
async fn watched<C>(
    connection: C,
    activity: Arc<Activity>,
    idle_timeout: Duration,
    mut member: Member,
) where
    C: GracefulConnection,
    C::Error: std::fmt::Display,
{
    let mut connection = pin!(connection);
    let period = (idle_timeout / 4).max(Duration::from_millis(1));
    let mut timer = pin!(tokio::time::sleep(period));
    // Whether the timer is registered to wake this task since it was last set.
    let mut armed = false;
    let mut closing = false;
    let mut seen = activity.started.load(Ordering::Relaxed);
    let mut quiet = 0u8;
    std::future::poll_fn(|cx| {
        if !closing && member.stopping(cx) {
            closing = true;
            connection.as_mut().graceful_shutdown();
        }
        if let Poll::Ready(ended) = connection.as_mut().poll(cx) {
            if let Err(e) = ended {
                tracing::trace!(error = %e, "connection ended with an error");
            }
            return Poll::Ready(());
        }
        while !armed || timer.is_elapsed() {
            // Outside the task's budget: a sleep refused for budget would stay
            // unregistered, and the connection never be looked at again.
            let fired = pin!(tokio::task::unconstrained(std::future::poll_fn(|cx| {
                timer.as_mut().poll(cx)
            })))
            .poll(cx)
            .is_ready();
            if !fired {
                armed = true;
                break;
            }
            let started = activity.started.load(Ordering::Relaxed);
            if started != seen || started != activity.finished.load(Ordering::Relaxed) {
                seen = started;
                quiet = 0;
            } else {
                quiet += 1;
                if quiet >= 4 {
                    tracing::debug!("closing a connection idle for {idle_timeout:?}");
                    return Poll::Ready(());
                }
            }
            timer.as_mut().reset(tokio::time::Instant::now() + period);
            armed = false;
        }
        Poll::Pending
    })
    .await
}

/// The connections one worker serves, told at once when it stops. Only that worker's
/// thread touches it; the lock and the atomic are there because a spawned task must be
/// `Send`, and are never contended.
#[derive(Default)]
struct Open {
    stopping: AtomicBool,
    members: Mutex<Members>,
    all_closed: Notify,
}

#[derive(Default)]
struct Members {
    next: u64,
    /// Each open connection's waker, once it has been polled.
    wakers: HashMap<u64, Option<Waker>>,
}

impl Open {
    fn members(&self) -> MutexGuard<'_, Members> {
        self.members.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts a new connection in, until its [`Member`] is dropped.
    fn join(open: &Arc<Open>) -> Member {
        let mut members = open.members();
        let id = members.next;
        members.next += 1;
        members.wakers.insert(id, None);
        Member {
            open: open.clone(),
            id,
            waker: None,
        }
    }

    /// Tells every connection to finish.
    fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
        for waker in self.members().wakers.values().flatten() {
            waker.wake_by_ref();
        }
    }

    /// Returns when every connection has closed.
    async fn closed(&self) {
        // A close after the look and before the wait leaves a permit, so none is missed.
        while !self.members().wakers.is_empty() {
            self.all_closed.notified().await;
        }
    }
}

/// One connection's place in its worker's [`Open`].
struct Member {
    open: Arc<Open>,
    id: u64,
    /// The waker registered, to register again only when the task's changes.
    waker: Option<Waker>,
}

impl Member {
    /// Whether the worker is stopping; the connection's task is woken when it starts to.
    fn stopping(&mut self, cx: &Context<'_>) -> bool {
        if !self.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            let waker = cx.waker().clone();
            self.open
                .members()
                .wakers
                .insert(self.id, Some(waker.clone()));
            self.waker = Some(waker);
        }
        // Registered before the look: a stop after it wakes the task.
        self.open.stopping.load(Ordering::Acquire)
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        let mut members = self.open.members();
        members.wakers.remove(&self.id);
        if members.wakers.is_empty() && self.open.stopping.load(Ordering::Acquire) {
            self.open.all_closed.notify_one();
        }
    }
}

/// How many requests a connection has started and finished. Written only by the
/// connection's own worker thread.
#[derive(Default)]
struct Activity {
    started: AtomicU64,
    finished: AtomicU64,
}

pin_project! {
    /// A request's answer, counted as finished when it is ready, and sent no sooner than
    /// the connection's fourth turn on its worker.
    ///
    /// Each poll of a request's future is one turn of its connection; between two turns,
    /// the worker serves the other connections already waiting. Answered at its first
    /// turn, as a decision needing no body could be, a connection whose client is quick
    /// came back and was served again and again while slower ones waited. At saturation on
    /// two Xeon cores shared with the load generator, the p99 of `/v1/authorize` was
    /// 6.7–7.9 ms answered at once, 1.9–3.3 ms at the third turn and 1.4–2.5 ms at the
    /// fourth, for the same throughput; `/v1/check`, which spends a turn waiting for its
    /// body anyway, lost 1% to the fourth. On a kernel that switches threads only at its
    /// 4 ms tick, no turn shortened that tail; offering the core every 64 answers did
    /// (on AMD 7.4–7.9 ms down to 1.5–1.9 ms, [`crate::fair`]). Before, each worker looked at
    /// its sockets after every task (tokio's `event_interval(1)`) for the same end, at a
    /// system call per request.
    struct Counted<F: Future> {
        #[pin]
        inner: F,
        activity: Arc<Activity>,
        turns: u8,
        ready: Option<F::Output>,
    }
}

/// The turn at which an answer may leave, counting from 1.
const ANSWER_TURN: u8 = 4;

impl<F: Future> Future for Counted<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let mut this = self.project();
        *this.turns = this.turns.saturating_add(1);
        if this.ready.is_none() {
            *this.ready = Some(ready!(this.inner.as_mut().poll(cx)));
        }
        if *this.turns < ANSWER_TURN {
            // To the back of the worker's queue, behind the connections already waiting.
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let Some(out) = this.ready.take() else {
            // Polled again after its answer, which a future's caller must not do.
            return Poll::Pending;
        };
        this.activity.finished.fetch_add(1, Ordering::Relaxed);
        crate::fair::answered();
        Poll::Ready(out)
    }
}

/// One connection's service. hyper calls it by shared reference, one request at a time
/// for HTTP/1 and from the connection's own task for HTTP/2, so the borrow never clashes;
/// were it ever to, the call goes to a clone of the spare.
struct PerConnection {
    served: RefCell<Served>,
    spare: Served,
    activity: Arc<Activity>,
}

impl hyper::service::Service<Request<Incoming>> for PerConnection {
    type Response = axum::response::Response;
    type Error = Infallible;
    type Future = Counted<<Served as tower::Service<Request<Body>>>::Future>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let req = req.map(Body::new);
        // Every layer of `Served` is always ready (none holds back capacity), so `call`
        // needs no `poll_ready` first.
        self.activity.started.fetch_add(1, Ordering::Relaxed);
        let inner = match self.served.try_borrow_mut() {
            Ok(mut served) => served.call(req),
            Err(_) => self.spare.clone().call(req),
        };
        Counted {
            inner,
            activity: self.activity.clone(),
            turns: 0,
            ready: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::task::{Wake, Waker};

    use super::*;

    /// Counts its wakes.
    #[derive(Default)]
    struct Wakes(AtomicUsize);

    impl Wake for Wakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    impl Wakes {
        /// A waker, and the count of its wakes.
        fn waker() -> (Arc<Wakes>, Waker) {
            let wakes = Arc::new(Wakes::default());
            (wakes.clone(), Waker::from(wakes))
        }

        fn count(&self) -> usize {
            self.0.load(Ordering::Relaxed)
        }
    }

    fn counted<F: Future>(inner: F, activity: &Arc<Activity>) -> Pin<Box<Counted<F>>> {
        Box::pin(Counted {
            inner,
            activity: activity.clone(),
            turns: 0,
            ready: None,
        })
    }

    #[test]
    fn an_answer_ready_at_once_leaves_at_its_fourth_turn() {
        let (wakes, waker) = Wakes::waker();
        let mut cx = Context::from_waker(&waker);
        let activity = Arc::new(Activity::default());
        let mut answer = counted(std::future::ready(7), &activity);
        for turn in 1..ANSWER_TURN {
            assert!(answer.as_mut().poll(&mut cx).is_pending(), "turn {turn}");
            // Each turn it gives up queues it again, so it is never left behind.
            assert_eq!(wakes.count(), usize::from(turn));
            assert_eq!(activity.finished.load(Ordering::Relaxed), 0);
        }
        assert_eq!(answer.as_mut().poll(&mut cx), Poll::Ready(7));
        assert_eq!(activity.finished.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn turns_spent_waiting_for_the_body_count() {
        let (wakes, waker) = Wakes::waker();
        let mut cx = Context::from_waker(&waker);
        let activity = Arc::new(Activity::default());
        // Pending at its first poll (as a handler waiting for its body), ready after.
        let mut polled = 0;
        let inner = std::future::poll_fn(move |_| {
            polled += 1;
            if polled == 1 {
                Poll::Pending
            } else {
                Poll::Ready("answer")
            }
        });
        let mut answer = counted(inner, &activity);
        assert!(answer.as_mut().poll(&mut cx).is_pending());
        // The handler's own wake is its business; Counted added none.
        assert_eq!(wakes.count(), 0);
        // Ready at the second turn; the turns left it gives up itself.
        for turn in 2..ANSWER_TURN {
            assert!(answer.as_mut().poll(&mut cx).is_pending(), "turn {turn}");
            assert_eq!(wakes.count(), usize::from(turn - 1));
        }
        assert_eq!(answer.as_mut().poll(&mut cx), Poll::Ready("answer"));
        assert_eq!(activity.finished.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_stop_wakes_every_connection_and_closed_waits_for_the_last() {
        let (wakes, waker) = Wakes::waker();
        let cx = Context::from_waker(&waker);
        let open = Arc::new(Open::default());
        let mut polled = Open::join(&open);
        // Never polled: it sees the stop at its first poll, and still counts as open.
        let unpolled = Open::join(&open);
        assert!(!polled.stopping(&cx));
        // Polled again with the same waker: nothing more to register.
        assert!(!polled.stopping(&cx));
        open.stop();
        assert_eq!(wakes.count(), 1);
        assert!(polled.stopping(&cx));

        let mut closed = pin!(open.closed());
        assert!(poll_once(&mut closed).is_pending());
        drop(polled);
        assert!(poll_once(&mut closed).is_pending());
        drop(unpolled);
        assert!(poll_once(&mut closed).is_ready());
    }

    fn poll_once<F: Future>(f: &mut Pin<&mut F>) -> Poll<F::Output> {
        f.as_mut().poll(&mut Context::from_waker(Waker::noop()))
    }
}
