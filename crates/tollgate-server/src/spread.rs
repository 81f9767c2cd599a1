//! One listener whose connections are spread over the worker threads, each new one to the
//! worker serving the fewest.
//!
//! Per-worker `SO_REUSEPORT` listeners leave the choice to a hash of the connection's
//! addresses. A proxy's few keep-alive connections, or Envoy's one HTTP/2 connection per
//! worker, can then all land on one thread while another idles; and with many
//! connections the busiest thread holds more than its share, and its queue is the p99.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};

/// One worker's share of the connections: for [`serve`](crate::http::serve::serve), and
/// a stream of connections for tonic. Created on the accepting runtime; used on the worker's.
pub struct Inbox {
    rx: mpsc::UnboundedReceiver<Handed>,
}

/// How many connections every door together may hold open (`server.max_connections`).
/// At the limit a door stops accepting: new connections wait in the listen queue until one
/// closes, as HAProxy's `maxconn` has them wait, rather than being refused, or failing to
/// be accepted once the process is out of file descriptors, which would also fail the
/// opening of files and of the store's connections.
#[derive(Clone)]
pub struct Capacity {
    permits: Arc<Semaphore>,
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
        self.max.saturating_sub(self.permits.available_permits())
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
    async fn place(&self, stopped: &mut watch::Receiver<bool>) -> Option<OwnedSemaphorePermit> {
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

/// A connection on its way from the acceptor to a worker.
struct Handed {
    stream: std::net::TcpStream,
    peer: SocketAddr,
    live: Live,
    place: OwnedSemaphorePermit,
}

/// Counts one connection of a worker for as long as it is open.
struct Live(Arc<AtomicUsize>);

impl Drop for Live {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Accepts on `listener`, on the calling runtime, until `stopped` turns true, and hands each
/// connection to the one of `workers` inboxes with the fewest open connections, leaving out
/// any inbox dropped by a worker that stopped. Accepts only while `capacity` has room.
/// Connections get `TCP_NODELAY`, as nginx's `tcp_nodelay` does by default: answers go out
/// when written.
pub fn spread(
    listener: TcpListener,
    workers: usize,
    capacity: Capacity,
    mut stopped: watch::Receiver<bool>,
) -> Vec<Inbox> {
    let mut outs = Vec::with_capacity(workers);
    let mut inboxes = Vec::with_capacity(workers);
    for _ in 0..workers {
        let (tx, rx) = mpsc::unbounded_channel();
        outs.push((tx, Arc::new(AtomicUsize::new(0))));
        inboxes.push(Inbox { rx });
    }
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = stopped.wait_for(|s| *s) => return,
            };
            let (stream, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    // Out of file descriptors, most likely: wait for some to close.
                    tracing::error!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            // Each door accepts before it waits for a place, so that no door holds one
            // while nothing is connecting: at the limit, one connection per door waits
            // accepted, the rest in the listen queue.
            let Some(mut place) = capacity.place(&mut stopped).await else {
                return;
            };
            if let Err(e) = stream.set_nodelay(true) {
                tracing::debug!(error = %e, "could not set TCP_NODELAY");
            }
            let mut stream = match stream.into_std() {
                Ok(stream) => stream,
                Err(e) => {
                    tracing::debug!(error = %e, "could not hand a connection over");
                    continue;
                }
            };
            loop {
                let Some(i) = (0..outs.len()).min_by_key(|&i| outs[i].1.load(Ordering::Relaxed))
                else {
                    // Every worker has stopped: closing the listener refuses what comes next.
                    return;
                };
                let (tx, live) = &outs[i];
                live.fetch_add(1, Ordering::Relaxed);
                let live = Live(live.clone());
                match tx.send(Handed {
                    stream,
                    peer,
                    live,
                    place,
                }) {
                    Ok(()) => break,
                    // That worker has stopped (its count fell back with the returned
                    // connection): it would take every connection from now on and serve
                    // none, so it is left out.
                    Err(mpsc::error::SendError(back)) => {
                        stream = back.stream;
                        place = back.place;
                        outs.swap_remove(i);
                    }
                }
            }
        }
    });
    inboxes
}

/// Errors of one connection, not of the listener: the next accept may well succeed.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

impl Inbox {
    /// The next connection, registered with the calling (worker's) runtime. Once the
    /// acceptor has stopped, never returns: the server's own shutdown ends the wait.
    pub async fn next(&mut self) -> (Conn, SocketAddr) {
        loop {
            let Some(handed) = self.rx.recv().await else {
                return std::future::pending().await;
            };
            if let Some(conn) = handed.register() {
                return conn;
            }
        }
    }
}

impl Handed {
    fn register(self) -> Option<(Conn, SocketAddr)> {
        match TcpStream::from_std(self.stream) {
            Ok(stream) => Some((
                Conn {
                    stream,
                    _live: self.live,
                    _place: self.place,
                },
                self.peer,
            )),
            Err(e) => {
                tracing::debug!(error = %e, "could not take a connection over");
                None
            }
        }
    }
}

impl futures_core::Stream for Inbox {
    type Item = io::Result<Conn>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            match self.rx.poll_recv(cx) {
                Poll::Ready(Some(handed)) => {
                    if let Some((conn, _)) = handed.register() {
                        return Poll::Ready(Some(Ok(conn)));
                    }
                }
                // As for axum: the end of the acceptor is not the end of the server.
                Poll::Ready(None) | Poll::Pending => return Poll::Pending,
            }
        }
    }
}

/// A connection that counts towards its worker's share while open.
pub struct Conn {
    stream: TcpStream,
    _live: Live,
    _place: OwnedSemaphorePermit,
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    /// A loopback listener spread over `workers` inboxes, and the switch that stops it.
    async fn start(workers: usize) -> (SocketAddr, watch::Sender<bool>, Vec<Inbox>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = watch::channel(false);
        (
            addr,
            stop,
            spread(listener, workers, Capacity::new(100), stopped),
        )
    }

    /// Waits, up to a deadline, for connections to `addr` to be refused.
    async fn assert_refused_soon(addr: SocketAddr) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(addr).await.is_ok() {
            assert!(tokio::time::Instant::now() < deadline, "still accepting");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn next(inbox: &mut Inbox) -> (Conn, SocketAddr) {
        tokio::time::timeout(Duration::from_secs(10), inbox.next())
            .await
            .expect("no connection was handed over")
    }

    #[tokio::test]
    async fn each_connection_goes_to_the_worker_serving_the_fewest() {
        let (addr, _stop, mut inboxes) = start(2).await;
        let mut clients = Vec::new();
        let mut served: [Vec<Conn>; 2] = Default::default();
        for worker in [0, 1, 0, 1] {
            let client = TcpStream::connect(addr).await.unwrap();
            let (conn, peer) = next(&mut inboxes[worker]).await;
            assert_eq!(peer, client.local_addr().unwrap());
            assert!(conn.stream.nodelay().unwrap());
            served[worker].push(conn);
            clients.push(client);
        }
        assert!(inboxes.iter().all(|i| i.rx.is_empty()));
        // A closed connection frees its place: worker 1 now serves one, worker 0 two.
        drop(served[1].pop());
        let _client = TcpStream::connect(addr).await.unwrap();
        next(&mut inboxes[1]).await;
        assert!(inboxes[0].rx.is_empty());
    }

    #[tokio::test]
    async fn a_stopped_worker_is_left_out() {
        let (addr, _stop, mut inboxes) = start(2).await;
        let mut live = inboxes.pop().unwrap();
        drop(inboxes);
        // Worker 0 serves nothing and would be chosen first; its inbox is gone.
        for _ in 0..3 {
            let client = TcpStream::connect(addr).await.unwrap();
            let (_conn, peer) = next(&mut live).await;
            assert_eq!(peer, client.local_addr().unwrap());
        }
        // With no worker left, the listener closes.
        drop(live);
        let _first = TcpStream::connect(addr).await;
        assert_refused_soon(addr).await;
    }

    #[tokio::test]
    async fn a_handed_connection_carries_bytes_both_ways() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (addr, _stop, mut inboxes) = start(1).await;
        let mut client = TcpStream::connect(addr).await.unwrap();
        let (mut conn, _) = next(&mut inboxes[0]).await;
        client.write_all(b"ping").await.unwrap();
        let mut got = [0; 4];
        conn.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"ping");
        conn.write_all(b"pong").await.unwrap();
        conn.shutdown().await.unwrap();
        let mut back = Vec::new();
        client.read_to_end(&mut back).await.unwrap();
        assert_eq!(back, b"pong");
    }

    #[tokio::test]
    async fn at_the_limit_connections_wait_until_one_closes() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (_stop, stopped) = watch::channel(false);
        let capacity = Capacity::new(2);
        let mut inboxes = spread(listener, 2, capacity.clone(), stopped);
        let mut clients = Vec::new();
        let mut served = Vec::new();
        for inbox in &mut inboxes {
            clients.push(TcpStream::connect(addr).await.unwrap());
            served.push(next(inbox).await);
        }
        assert_eq!((capacity.open(), capacity.max()), (2, 2));
        // The third is queued by the kernel, not accepted.
        let third = TcpStream::connect(addr).await.unwrap();
        let [a, b] = &mut inboxes[..] else {
            panic!("two inboxes")
        };
        let waited = tokio::time::timeout(Duration::from_millis(200), async {
            tokio::select! {
                _ = a.next() => {}
                _ = b.next() => {}
            }
        });
        assert!(
            waited.await.is_err(),
            "a connection beyond the limit was accepted"
        );
        // A closed connection makes room, on the worker it left.
        drop(served.remove(1));
        let (_conn, peer) = next(&mut inboxes[1]).await;
        assert_eq!(peer, third.local_addr().unwrap());
        assert_eq!(capacity.open(), 2);
    }

    #[cfg(unix)]
    #[test]
    fn the_limit_fits_the_open_files_allowed() {
        use rustix::process::{Resource, getrlimit};
        assert_eq!(fit_to_open_files(10), 10);
        let huge = usize::MAX / 2;
        let fitted = fit_to_open_files(huge);
        match getrlimit(Resource::Nofile).current {
            Some(soft) => assert_eq!(fitted as u64, soft - FILES_KEPT),
            None => assert_eq!(fitted, huge, "no limit on open files"),
        }
    }

    #[tokio::test]
    async fn a_stop_ends_the_wait_for_room() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = watch::channel(false);
        let mut inboxes = spread(listener, 1, Capacity::new(1), stopped);
        let _client = TcpStream::connect(addr).await.unwrap();
        let _conn = next(&mut inboxes[0]).await;
        stop.send(true).unwrap();
        assert_refused_soon(addr).await;
    }

    #[tokio::test]
    async fn stopping_closes_the_listener() {
        let (addr, stop, _inboxes) = start(2).await;
        stop.send(true).unwrap();
        assert_refused_soon(addr).await;
    }
}
