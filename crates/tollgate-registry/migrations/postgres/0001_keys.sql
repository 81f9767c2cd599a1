-- API keys: only a keyed hash of the secret is kept, with a short prefix for display.
CREATE TABLE keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    owner TEXT NOT NULL,
    tier TEXT NOT NULL,
    prefix TEXT NOT NULL,
    hash BYTEA NOT NULL UNIQUE,
    -- A rotated key's previous secret, valid until `previous_until` (ms since the epoch).
    previous_hash BYTEA UNIQUE,
    previous_until BIGINT,
    enabled BOOLEAN NOT NULL DEFAULT TRUE,
    revoked_at BIGINT,
    expires_at BIGINT,
    metadata TEXT NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX keys_owner ON keys (owner);
CREATE INDEX keys_tier ON keys (tier);
