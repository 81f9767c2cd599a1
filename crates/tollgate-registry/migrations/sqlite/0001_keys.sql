-- API keys: only a keyed hash of the secret is kept, with a short prefix for display.
CREATE TABLE keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    owner TEXT NOT NULL,
    tier TEXT NOT NULL,
    prefix TEXT NOT NULL,
    hash BLOB NOT NULL UNIQUE,
    -- A rotated key's previous secret, valid until `previous_until` (ms since the epoch).
    previous_hash BLOB UNIQUE,
    previous_until INTEGER,
    enabled INTEGER NOT NULL DEFAULT 1,
    revoked_at INTEGER,
    expires_at INTEGER,
    metadata TEXT NOT NULL DEFAULT '{}',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX keys_owner ON keys (owner);
CREATE INDEX keys_tier ON keys (tier);
