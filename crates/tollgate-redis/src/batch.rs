//! Coalescing: concurrent decisions on one connection go to Redis as one script call
//! (mode `m` of the decision script), so a burst of decisions costs Redis one script
//! invocation and the client one command instead of one each.
//!
//! One task sends batches: it takes every decision queued while the previous batch was in
//! flight (up to [`MAX_BATCH`]), so a lone decision goes at once and a crowd shares calls.

use redis::Value;
use tokio::sync::{mpsc, oneshot};

use crate::conn::Conn;
use crate::script::{DECIDE, REPLY_PER_CHECK};

/// Decisions per script call at most.
pub(crate) const MAX_BATCH: usize = 64;

/// One decision waiting for its batch.
pub(crate) struct Job {
    /// Its keys, two per check.
    pub names: Vec<String>,
    /// `a` or `p`.
    pub mode: &'static str,
    /// Its checks' fields, eleven per check.
    pub fields: Vec<String>,
    /// Where its answer goes: its integers (seven per check) and the instant.
    pub reply: oneshot::Sender<redis::RedisResult<(Vec<i64>, i64)>>,
}

/// Starts the sending task; decisions are queued on the returned sender.
pub(crate) fn start(conn: Conn) -> mpsc::Sender<Job> {
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
    let mut names = Vec::new();
    let mut args = vec![String::new(), "m".to_owned(), jobs.len().to_string()];
    for j in jobs.iter() {
        names.extend(j.names.iter().cloned());
        args.push(j.mode.to_owned());
        args.push((j.names.len() / 2).to_string());
        args.extend(j.fields.iter().cloned());
    }
    let result = conn.eval(&DECIDE, &names, &args).await;
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
                let n = (j.names.len() / 2).saturating_mul(REPLY_PER_CHECK);
                let end = at.saturating_add(n);
                let part = ints
                    .get(at..end)
                    .map(<[i64]>::to_vec)
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
