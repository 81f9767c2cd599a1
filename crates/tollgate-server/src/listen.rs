//! Accepting connections within one budget for every door (`server.max_connections`).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

/// How many connections every door together may hold open (`server.max_connections`).
/// At the limit a door stops accepting: new connections wait in the listen queue until one
/// closes, as HAProxy's `maxconn` has them wait, rather than being refused, or failing to
/// be accepted once the process is out of file descriptors, which would also fail the
/// opening of files and of the store's connections.
#[derive(Clone)]
pub struct Capacity {
    permits: Arc<Semaphore>,
    /// Connections accepted and not yet closed (a place waiting for a connection to accept
    /// is not one).
    live: Arc<AtomicUsize>,
    max: usize,
    /// When the limit was last reported, so that a server held at the limit logs it once a
    /// minute rather than once per connection.
    reported: Arc<std::sync::Mutex<Option<std::time::Instant>>>,
}

/// How often a server held at its connection limit says so.
const REPORT_EVERY: Duration = Duration::from_secs(60);

impl Capacity {
    /// Room for `max` open connections.
    pub fn new(max: usize) -> Self {
        let max = max.clamp(1, Semaphore::MAX_PERMITS);
        Capacity {
            permits: Arc::new(Semaphore::new(max)),
            live: Arc::default(),
            max,
            reported: Arc::default(),
        }
    }

    /// The most connections open at once.
    pub fn max(&self) -> usize {
        self.max
    }

    /// The connections open now.
    pub fn open(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }

    /// Says that the limit is reached, unless it said so in the last [`REPORT_EVERY`].
    fn report_full(&self) {
        let mut reported = self
            .reported
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if reported.is_none_or(|at| at.elapsed() >= REPORT_EVERY) {
            *reported = Some(std::time::Instant::now());
            tracing::warn!(
                max_connections = self.max,
                "connection limit reached: new connections wait until one closes"
            );
        }
    }

    /// A place for one more connection, waiting for one to close when all are taken;
    /// `None` once `stopped` turns true.
    pub async fn place(&self, stopped: &mut watch::Receiver<bool>) -> Option<OwnedSemaphorePermit> {
        if let Ok(permit) = self.permits.clone().try_acquire_owned() {
            return Some(permit);
        }
        self.report_full();
        tokio::select! {
            permit = self.permits.clone().acquire_owned() => permit.ok(),
            _ = stopped.wait_for(|s| *s) => None,
        }
    }
}

/// Open files kept beside the connections: the configuration, the database's and the
/// store's connections, logs.
#[cfg(unix)]
const FILES_KEPT: u64 = 256;

/// `max_connections`, lowered with a warning when the process may not open that many
/// files; first raising its soft limit on open files towards the hard one when that is
/// what it takes (as Go's runtime does at start). Without it, a server at the limit would
/// fail to accept with `EMFILE`, and to open anything else.
pub fn fit_to_open_files(max_connections: usize) -> usize {
    #[cfg(unix)]
    {
        use rustix::process::{Resource, getrlimit, setrlimit};
        let wanted = u64::try_from(max_connections)
            .unwrap_or(u64::MAX)
            .saturating_add(FILES_KEPT);
        let mut limit = getrlimit(Resource::Nofile);
        if limit.current.is_some_and(|soft| soft < wanted) {
            limit.current = Some(limit.maximum.map_or(wanted, |hard| hard.min(wanted)));
            if let Err(e) = setrlimit(Resource::Nofile, limit) {
                tracing::debug!(error = %e, "could not raise the limit on open files");
            }
        }
        if let Some(soft) = getrlimit(Resource::Nofile).current {
            let fits = usize::try_from(soft.saturating_sub(FILES_KEPT))
                .unwrap_or(usize::MAX)
                .max(1);
            if fits < max_connections {
                tracing::warn!(
                    "server.max_connections {max_connections} lowered to {fits}: the process may open {soft} files (ulimit -n); raise that limit to keep it"
                );
                return fits;
            }
        }
    }
    max_connections
}

/// An accepted connection, holding its place in the budget while open.
pub struct Conn {
    stream: TcpStream,
    _place: Place,
}

/// A connection's place in the budget, given back when it closes.
struct Place {
    _permit: OwnedSemaphorePermit,
    live: Arc<AtomicUsize>,
}

impl Drop for Place {
    fn drop(&mut self) {
        self.live.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The next connection of `listener` once the budget has room for it; `None` once
/// `stopped` turns true. A connection that fails before it is accepted is skipped, and an
/// error of the listener itself (out of file descriptors) is waited out briefly rather
/// than spun on.
pub async fn accept(
    listener: &TcpListener,
    capacity: &Capacity,
    stopped: &mut watch::Receiver<bool>,
) -> Option<(Conn, SocketAddr)> {
    loop {
        // Room is waited for before accepting, so that at the limit new connections wait in
        // the listen queue; it is taken only once a connection is there, so that a door
        // waiting to accept holds no place another door's connection could have.
        drop(capacity.place(stopped).await?);
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopped.wait_for(|s| *s) => return None,
        };
        match accepted {
            Ok((stream, peer)) => {
                let place = capacity.place(stopped).await?;
                // Decisions are small answers: sent at once, not held for more.
                let _ = stream.set_nodelay(true);
                capacity.live.fetch_add(1, Ordering::Relaxed);
                let place = Place {
                    _permit: place,
                    live: capacity.live.clone(),
                };
                return Some((
                    Conn {
                        stream,
                        _place: place,
                    },
                    peer,
                ));
            }
            Err(e) if is_connection_error(&e) => {}
            Err(e) => {
                tracing::warn!(error = %e, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// The connections of `listener` as a stream, for tonic, until `stopped` turns true.
pub fn incoming(
    listener: TcpListener,
    capacity: Capacity,
    stopped: watch::Receiver<bool>,
) -> impl futures_core::Stream<Item = io::Result<Conn>> {
    futures_util::stream::unfold(
        (listener, capacity, stopped),
        |(listener, capacity, mut stopped)| async move {
            let (conn, _) = accept(&listener, &capacity, &mut stopped).await?;
            Some((Ok(conn), (listener, capacity, stopped)))
        },
    )
}

/// Errors of one connection that ended before it was accepted, not of the listener.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

impl tonic::transport::server::Connected for Conn {
    type ConnectInfo = tonic::transport::server::TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        tonic::transport::server::TcpConnectInfo {
            local_addr: self.stream.local_addr().ok(),
            remote_addr: self.stream.peer_addr().ok(),
        }
    }
}
