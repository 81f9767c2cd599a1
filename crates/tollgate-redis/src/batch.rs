//! Coalescing: concurrent decisions on one connection go to Redis as one script call
//! (mode `m` of the decision script), so a burst of decisions costs Redis one script
//! invocation and the client one command instead of one each.
//!
//! One task sends batches: it takes every decision queued while the previous batch was in
//! flight (up to [`MAX_BATCH`]), so a lone decision goes at once and a crowd shares calls.
//!
//! There is one such task, on a connection of its own, per tokio runtime that decides
//! ([`Batchers`]): a server running a runtime per core then decides on each core without
//! handing every decision to the one thread that holds the connection and waking it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use redis::Value;
use smallvec::SmallVec;
use tokio::runtime::{Handle, Id};
use tokio::sync::{mpsc, oneshot};

use crate::conn::{Conn, Topology};
use crate::script::{self, CheckCall, DECIDE, REPLY_PER_CHECK};

/// Decisions per script call at most.
pub(crate) const MAX_BATCH: usize = 64;

/// A decision's answer: seven integers per check.
pub(crate) type Ints = SmallVec<[i64; REPLY_PER_CHECK]>;

/// One decision waiting for its batch.
pub(crate) struct Job {
    /// Its checks.
    pub checks: SmallVec<[CheckCall; 1]>,
    /// `a` or `p`.
    pub mode: &'static str,
    /// Where its answer goes: its integers and the instant.
    pub reply: oneshot::Sender<redis::RedisResult<(Ints, i64)>>,
}

/// The sending tasks, one per runtime, each started by the first decision made on its
/// runtime.
pub(crate) struct Batchers {
    topology: Topology,
    timeout: Duration,
    queues: ArcSwap<Vec<(Id, mpsc::Sender<Job>)>>,
    starting: Mutex<()>,
}

impl Batchers {
    /// Sending tasks on connections to `topology`, each with `timeout`.
    pub(crate) fn new(topology: Topology, timeout: Duration) -> Self {
        Batchers {
            topology,
            timeout,
            queues: ArcSwap::from_pointee(Vec::new()),
            starting: Mutex::new(()),
        }
    }

    /// The queue of the current runtime's task, started if there is none yet.
    pub(crate) fn queue(&self) -> redis::RedisResult<mpsc::Sender<Job>> {
        let here = Handle::try_current()
            .map_err(|_| {
                redis::RedisError::from((
                    redis::ErrorKind::Client,
                    "a Redis decision made outside a tokio runtime",
                ))
            })?
            .id();
        let find = |queues: &[(Id, mpsc::Sender<Job>)]| {
            queues
                .iter()
                .find(|(id, _)| *id == here)
                .map(|(_, q)| q.clone())
        };
        if let Some(q) = find(&self.queues.load()) {
            return Ok(q);
        }
        // Poisoned only by a panic between the lines below, which leave nothing half done.
        let _one = self.starting.lock().unwrap_or_else(|e| e.into_inner());
        let queues = self.queues.load_full();
        if let Some(q) = find(&queues) {
            return Ok(q);
        }
        let q = start(Conn::open(&self.topology, self.timeout)?);
        let mut grown = Vec::clone(&queues);
        // A runtime that has ended leaves a queue whose task is gone with it.
        grown.retain(|(_, q)| !q.is_closed());
        grown.push((here, q.clone()));
        self.queues.store(Arc::new(grown));
        Ok(q)
    }
}

/// Starts the sending task on the current runtime; decisions are queued on the returned
/// sender.
fn start(conn: Conn) -> mpsc::Sender<Job> {
    let (tx, mut rx) = mpsc::channel::<Job>(MAX_BATCH * 16);
    tokio::spawn(async move {
        let mut jobs: Vec<Job> = Vec::with_capacity(MAX_BATCH);
        while let Some(first) = rx.recv().await {
            jobs.push(first);
            while jobs.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(j) => jobs.push(j),
                    Err(_) => break,
                }
            }
            send(&conn, &mut jobs).await;
        }
    });
    tx
}

/// Sends `jobs` as one call and hands each its part of the answer.
async fn send(conn: &Conn, jobs: &mut Vec<Job>) {
    let n = jobs.iter().map(|j| j.checks.len()).sum();
    let mut cmd = script::eval_keys(n, jobs.iter().flat_map(|j| &j.checks));
    cmd.arg("").arg("m").arg(jobs.len());
    for j in jobs.iter() {
        cmd.arg(j.mode).arg(j.checks.len());
        script::push_fields(&mut cmd, &j.checks);
    }
    let result = conn.evalsha(&DECIDE, &cmd).await;
    let ints: redis::RedisResult<Vec<i64>> = result.and_then(|v| match v {
        Value::Array(items) => items
            .into_iter()
            .map(|i| match i {
                Value::Int(n) => Ok(n),
                _ => Err(unexpected()),
            })
            .collect(),
        _ => Err(unexpected()),
    });
    match ints {
        Ok(ints) => {
            let now = ints.last().copied().unwrap_or(0);
            let mut at = 0usize;
            for j in jobs.drain(..) {
                let n = j.checks.len().saturating_mul(REPLY_PER_CHECK);
                let end = at.saturating_add(n);
                let part = ints
                    .get(at..end)
                    .map(Ints::from_slice)
                    .ok_or_else(unexpected);
                at = end;
                let _ = j.reply.send(part.map(|p| (p, now)));
            }
        }
        Err(e) => {
            for j in jobs.drain(..) {
                let _ = j.reply.send(Err(e.clone()));
            }
        }
    }
}

fn unexpected() -> redis::RedisError {
    redis::RedisError::from((
        redis::ErrorKind::UnexpectedReturnType,
        "unexpected batch reply",
    ))
}
