//! Connections: one multiplexed connection per node, pipelining every concurrent call, for
//! a single node, a Sentinel-managed primary or a Cluster.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
use redis::{AsyncConnectionConfig, IntoConnectionInfo, RedisError, RedisResult, Value};
use tokio::sync::Mutex;

/// Where Redis is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Topology {
    /// One server (`redis://`, `rediss://` for TLS; `redis://user:password@host` for ACLs).
    Single {
        /// Its URL.
        url: String,
    },
    /// A primary found through Sentinels, followed across failovers.
    Sentinel {
        /// The Sentinels' URLs; the first one's user and password are also used for the
        /// primary.
        urls: Vec<String>,
        /// The monitored primary's name.
        master: String,
    },
    /// A Cluster, found from seed nodes; MOVED and ASK are followed and the slot map is
    /// refreshed by the client.
    Cluster {
        /// Seed node URLs.
        urls: Vec<String>,
    },
}

/// A connection of any topology. Cloning is cheap and shares the connection.
#[derive(Clone)]
pub(crate) enum Conn {
    Single(ConnectionManager),
    Sentinel(Arc<Followed>),
    Cluster(Arc<LazyCluster>),
}

/// A Cluster connection made on first use, so the store starts with the Cluster down.
/// A Cluster connection made on first use, so the store starts with the Cluster down, and
/// made again when calls keep failing: under concurrent load the client can stay on a
/// failed primary's slot map, while a fresh connection reads the Cluster's current one.
pub(crate) struct LazyCluster {
    client: redis::cluster::ClusterClient,
    conn: ArcSwapOption<(ClusterConnection, Instant)>,
    connecting: Mutex<()>,
}

/// A connection younger than this is not replaced, so failures during a failover do not
/// make it again and again.
const CLUSTER_RECONNECT_AFTER: Duration = Duration::from_secs(1);

impl LazyCluster {
    async fn get(&self) -> RedisResult<ClusterConnection> {
        if let Some(c) = self.conn.load_full() {
            return Ok(c.0.clone());
        }
        let _guard = self.connecting.lock().await;
        if let Some(c) = self.conn.load_full() {
            return Ok(c.0.clone());
        }
        let conn = self.client.get_async_connection().await?;
        self.conn
            .store(Some(Arc::new((conn.clone(), Instant::now()))));
        Ok(conn)
    }

    /// Passes `result` on; a connection-level error on a connection older than
    /// [`CLUSTER_RECONNECT_AFTER`] drops it so the next call connects afresh.
    fn noted<T>(&self, result: RedisResult<T>) -> RedisResult<T> {
        if let Err(e) = &result
            && moved_on(e)
            && self
                .conn
                .load()
                .as_ref()
                .is_some_and(|c| c.1.elapsed() >= CLUSTER_RECONNECT_AFTER)
        {
            self.conn.store(None);
        }
        result
    }
}

/// A Sentinel-managed primary. The client library resolves the primary once per
/// connection, so on a connection error the primary is looked up again.
pub(crate) struct Followed {
    client: Mutex<SentinelClient>,
    conn: ArcSwapOption<MultiplexedConnection>,
    config: AsyncConnectionConfig,
}

impl Conn {
    pub(crate) fn open(topology: &Topology, timeout: Duration) -> RedisResult<Conn> {
        match topology {
            Topology::Single { url } => {
                let client = redis::Client::open(url.as_str())?;
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(timeout))
                    .set_response_timeout(Some(timeout))
                    .set_number_of_retries(1)
                    .set_max_delay(Duration::from_millis(200));
                // Lazy: the store starts (and answers by its fail policies) with Redis down.
                let manager = ConnectionManager::new_lazy_with_config(client, config)?;
                Ok(Conn::Single(manager))
            }
            Topology::Sentinel { urls, master } => {
                let first = urls
                    .first()
                    .ok_or_else(|| invalid("sentinel mode needs at least one url"))?
                    .as_str()
                    .into_connection_info()?;
                let node = SentinelNodeConnectionInfo::default()
                    .set_redis_connection_info(first.redis_settings().clone());
                let client = SentinelClient::build(
                    urls.iter().map(String::as_str).collect(),
                    master.as_str(),
                    Some(node),
                    SentinelServerType::Master,
                )?;
                let config = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(timeout))
                    .set_response_timeout(Some(timeout));
                Ok(Conn::Sentinel(Arc::new(Followed {
                    client: Mutex::new(client),
                    conn: ArcSwapOption::empty(),
                    config,
                })))
            }
            Topology::Cluster { urls } => {
                #[allow(
                    clippy::arithmetic_side_effects,
                    reason = "a duration divided by a non-zero constant cannot overflow"
                )]
                let (connect, respond) = (timeout / 3, timeout / 2);
                let client = ClusterClientBuilder::new(urls.iter().map(String::as_str))
                    .connection_timeout(connect)
                    .response_timeout(respond)
                    .retries(1)
                    .build()?;
                Ok(Conn::Cluster(Arc::new(LazyCluster {
                    client,
                    conn: ArcSwapOption::empty(),
                    connecting: Mutex::new(()),
                })))
            }
        }
    }

    /// Runs `script` with `keys` and `args`.
    pub(crate) async fn eval(
        &self,
        script: &redis::Script,
        keys: &[String],
        args: &[String],
    ) -> RedisResult<Value> {
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(script.get_hash())
            .arg(keys.len())
            .arg(keys)
            .arg(args);
        self.evalsha(script, &cmd).await
    }

    /// Runs `cmd`, an `EVALSHA` of `script`, loading the script first where the server
    /// does not have it yet (a new server, or one whose scripts were flushed).
    pub(crate) async fn evalsha(
        &self,
        script: &redis::Script,
        cmd: &redis::Cmd,
    ) -> RedisResult<Value> {
        match self {
            Conn::Single(c) => evalsha_on(&mut c.clone(), script, cmd).await,
            Conn::Cluster(c) => c.noted(evalsha_on(&mut c.get().await?, script, cmd).await),
            Conn::Sentinel(f) => {
                let mut conn = f.get().await?;
                f.noted(evalsha_on(&mut conn, script, cmd).await)
            }
        }
    }

    /// Runs a pipeline whose keys share one slot.
    pub(crate) async fn pipe(&self, pipe: &redis::Pipeline) -> RedisResult<Vec<Value>> {
        match self {
            Conn::Single(c) => pipe.query_async(&mut c.clone()).await,
            Conn::Cluster(c) => c.noted(pipe.query_async(&mut c.get().await?).await),
            Conn::Sentinel(f) => {
                let mut conn = f.get().await?;
                f.noted(pipe.query_async(&mut conn).await)
            }
        }
    }

    /// Runs one plain command.
    pub(crate) async fn query(&self, cmd: &redis::Cmd) -> RedisResult<Value> {
        match self {
            Conn::Single(c) => cmd.query_async(&mut c.clone()).await,
            Conn::Cluster(c) => c.noted(cmd.query_async(&mut c.get().await?).await),
            Conn::Sentinel(f) => {
                let mut conn = f.get().await?;
                f.noted(cmd.query_async(&mut conn).await)
            }
        }
    }
}

impl Followed {
    /// Passes `result` on; an error saying the primary may have moved drops the connection
    /// so the next call asks the Sentinels again.
    fn noted<T>(&self, result: RedisResult<T>) -> RedisResult<T> {
        if let Err(e) = &result
            && moved_on(e)
        {
            self.conn.store(None);
        }
        result
    }

    async fn get(&self) -> RedisResult<MultiplexedConnection> {
        if let Some(c) = self.conn.load_full() {
            return Ok((*c).clone());
        }
        let mut client = self.client.lock().await;
        // Another caller may have reconnected while this one waited.
        if let Some(c) = self.conn.load_full() {
            return Ok((*c).clone());
        }
        let conn = client
            .get_async_connection_with_config(&self.config)
            .await?;
        self.conn.store(Some(Arc::new(conn.clone())));
        Ok(conn)
    }
}

/// [`Conn::evalsha`] on one connection.
async fn evalsha_on(
    conn: &mut impl redis::aio::ConnectionLike,
    script: &redis::Script,
    cmd: &redis::Cmd,
) -> RedisResult<Value> {
    match cmd.query_async(conn).await {
        Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
            script.load_async(conn).await?;
            cmd.query_async(conn).await
        }
        other => other,
    }
}

/// Whether an error means the primary may have moved: the connection broke, or the node
/// became a replica.
fn moved_on(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || e.code() == Some("READONLY")
}

fn invalid(msg: &'static str) -> RedisError {
    RedisError::from((redis::ErrorKind::InvalidClientConfig, msg))
}
