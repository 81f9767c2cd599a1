-- Dashboard sessions signed out before they expire: a session is a sealed cookie any
-- instance can open, so a sign-out is kept where every instance of the fleet reads it. A
-- row is of no use once its session has expired (ms), and is then deleted.
CREATE TABLE signed_out_sessions (
    session_id TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
);
CREATE INDEX signed_out_sessions_expiry ON signed_out_sessions (expires_at);
