-- A key's own limits, overriding its tier's (a JSON object: limit name -> fields).
ALTER TABLE keys ADD COLUMN overrides TEXT NOT NULL DEFAULT '{}';

-- One row per decision made with a key; pruned after `database.retention.events`.
CREATE TABLE usage_events (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at BIGINT NOT NULL,
    key_id TEXT NOT NULL,
    owner TEXT NOT NULL,
    tier TEXT NOT NULL,
    allowed BOOLEAN NOT NULL,
    code TEXT NOT NULL,
    cost BIGINT NOT NULL
);
CREATE INDEX usage_events_key_at ON usage_events (key_id, at);
CREATE INDEX usage_events_at ON usage_events (at);

-- Decisions per key and minute, hour or day (`bucket`: the period's start, ms).
CREATE TABLE usage_rollups (
    key_id TEXT NOT NULL,
    granularity TEXT NOT NULL,
    bucket BIGINT NOT NULL,
    requests BIGINT NOT NULL,
    allowed BIGINT NOT NULL,
    denied BIGINT NOT NULL,
    units BIGINT NOT NULL,
    PRIMARY KEY (key_id, granularity, bucket)
);
CREATE INDEX usage_rollups_bucket ON usage_rollups (granularity, bucket);

-- Every denial: the rule, the key (when one was verified), a subject summary without secrets.
CREATE TABLE violations (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at BIGINT NOT NULL,
    key_id TEXT,
    rule TEXT NOT NULL,
    code TEXT NOT NULL,
    subject TEXT NOT NULL
);
CREATE INDEX violations_key_at ON violations (key_id, at);
CREATE INDEX violations_at ON violations (at);

-- Every change made through the admin API.
CREATE TABLE audit (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    role TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    source TEXT NOT NULL,
    status BIGINT NOT NULL
);
CREATE INDEX audit_at ON audit (at);
