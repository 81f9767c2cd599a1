//! The pooled client of an upstream, one per thread.
//!
//! hyper's pooled client drives each upstream connection on a task of the runtime that
//! opened it, and hands requests to that task through a channel. The server runs each door
//! on a single-threaded runtime per core (`workers` in the server), so one shared pool lets
//! a worker pick a connection whose task lives on another worker's thread, and every such
//! request wakes that thread and waits for it. A pool per thread keeps a request, its
//! connection and the connection's task on one thread; `bench/proxy.sh` measures what
//! that earns (docs/benchmarks.md). The cost is a connection pool per worker instead of
//! one.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::ProxyBody;

/// The client every try of an upstream goes through: pooled, HTTP/1.1 and HTTP/2 (by ALPN
/// on `https`, or from the first byte on `h2c` origins), plain or TLS.
pub type HttpClient = Client<Connector, ProxyBody>;

/// How connections to an upstream are opened.
pub type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// Distinguishes upstreams in the threads' maps.
static NEXT_ID: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static CLIENTS: RefCell<HashMap<usize, HttpClient>> = RefCell::new(HashMap::new());
}

/// Makes an upstream's clients, one per thread that asks.
#[derive(Debug)]
pub struct Clients {
    id: usize,
    connector: Connector,
    prior_knowledge: bool,
}

impl Clients {
    /// Clients that open connections with `connector`; with `prior_knowledge`, they speak
    /// HTTP/2 from a connection's first byte, as `h2c` origins expect.
    pub fn new(connector: Connector, prior_knowledge: bool) -> Self {
        Clients {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            connector,
            prior_knowledge,
        }
    }

    /// This thread's client.
    pub fn get(&self) -> HttpClient {
        CLIENTS.with(|clients| {
            clients
                .borrow_mut()
                .entry(self.id)
                .or_insert_with(|| {
                    Client::builder(TokioExecutor::new())
                        .pool_idle_timeout(Duration::from_secs(60))
                        .http2_only(self.prior_knowledge)
                        .build(self.connector.clone())
                })
                .clone()
        })
    }
}
