//! Dashboard sessions signed out before they expire.
//!
//! A session is a sealed cookie that any instance sharing the secret opens, so a sign-out
//! must reach every instance: it is kept in the registry when there is one, and each
//! instance remembers what it read for a moment, so a dashboard's calls do not each cost a
//! query. A session whose state cannot be read is refused: a sign-out never gives way to a
//! database that does not answer.

use std::time::Duration;

use tollgate_registry::Registry;

/// How long an instance believes a session it checked is not signed out: the longest a
/// sign-out on another instance takes to hold here.
pub const RECHECK: Duration = Duration::from_secs(2);

/// Sign-outs, by session id.
pub struct SignOuts {
    registry: Option<Registry>,
    /// Signed out, until the session would have expired anyway.
    out: moka::future::Cache<String, ()>,
    /// Checked within [`RECHECK`] and not signed out.
    live: moka::future::Cache<String, ()>,
}

impl SignOuts {
    /// Sign-outs kept in `registry`, or on this instance alone without one.
    pub fn new(registry: Option<Registry>) -> Self {
        SignOuts {
            registry,
            out: moka::future::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(7 * 86_400))
                .build(),
            live: moka::future::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(RECHECK)
                .build(),
        }
    }

    /// Signs session `id` out; it would have expired at `expires` (ms). Refused on this
    /// instance at once, and on every instance once the registry has it.
    pub async fn sign_out(&self, id: &str, expires: i64, now: i64) {
        self.out.insert(id.to_owned(), ()).await;
        self.live.invalidate(id).await;
        if let Some(registry) = &self.registry
            && let Err(e) = registry.sign_out_session(id, expires, now).await
        {
            tracing::warn!(error = %e, "a dashboard sign-out holds on this instance only: the registry did not take it");
        }
    }

    /// Whether session `id` may no longer be used: signed out, or its state unreadable.
    pub async fn refused(&self, id: &str) -> bool {
        if self.out.contains_key(id) {
            return true;
        }
        if self.live.contains_key(id) {
            return false;
        }
        let Some(registry) = &self.registry else {
            return false;
        };
        match registry.session_signed_out(id).await {
            Ok(true) => {
                self.out.insert(id.to_owned(), ()).await;
                true
            }
            Ok(false) => {
                self.live.insert(id.to_owned(), ()).await;
                false
            }
            Err(e) => {
                tracing::warn!(error = %e, "a dashboard session was refused: whether it was signed out could not be read");
                true
            }
        }
    }
}
