-- Work to be done once, written in the same transaction as what caused it (the outbox),
-- claimed by one worker at a time under a lease, retried with backoff, then dead-lettered.
CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    -- The same key is queued once: an effect enqueued again is not done twice.
    idempotency_key TEXT NOT NULL UNIQUE,
    -- queued, running, done, dead or discarded.
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    max_attempts BIGINT NOT NULL,
    run_at BIGINT NOT NULL,
    lease_until BIGINT,
    leased_by TEXT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX jobs_due ON jobs (state, run_at);

-- Named leases: the holder of `leader` runs the periodic work of the whole fleet.
CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- Admitted units per key, tier and quarter of an hour (`bucket`, ms): every time zone's
-- calendar periods start on a quarter hour, so any billing period sums whole buckets.
CREATE TABLE billing_usage (
    key_id TEXT NOT NULL,
    tier TEXT NOT NULL,
    bucket BIGINT NOT NULL,
    owner TEXT NOT NULL,
    requests BIGINT NOT NULL,
    units BIGINT NOT NULL,
    PRIMARY KEY (key_id, tier, bucket)
);
CREATE INDEX billing_usage_owner ON billing_usage (owner, bucket);
CREATE INDEX billing_usage_bucket ON billing_usage (bucket);

-- Closed billing periods: final, one per account, tier and period.
CREATE TABLE billing_records (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- `owner` or `key`: what `account` names.
    scope TEXT NOT NULL,
    account TEXT NOT NULL,
    owner TEXT NOT NULL,
    tier TEXT NOT NULL,
    period_start BIGINT NOT NULL,
    period_end BIGINT NOT NULL,
    currency TEXT NOT NULL,
    units BIGINT NOT NULL,
    included BIGINT NOT NULL,
    overage_units BIGINT NOT NULL,
    base_fee BIGINT NOT NULL,
    overage_amount BIGINT NOT NULL,
    amount BIGINT NOT NULL,
    closed_at BIGINT NOT NULL,
    UNIQUE (scope, account, tier, period_start)
);
CREATE INDEX billing_records_owner ON billing_records (owner, period_start);

-- Who a key owner is and how to reach them.
CREATE TABLE owners (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    email TEXT,
    webhook_url TEXT,
    webhook_secret TEXT,
    metadata TEXT NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Each alert's current state per subject (a key, an owner's period, a rule, the store).
CREATE TABLE alert_states (
    rule TEXT NOT NULL,
    subject TEXT NOT NULL,
    -- firing or resolved.
    state TEXT NOT NULL,
    since BIGINT NOT NULL,
    value DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (rule, subject)
);

-- Every time an alert fired or resolved.
CREATE TABLE alert_events (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at BIGINT NOT NULL,
    rule TEXT NOT NULL,
    subject TEXT NOT NULL,
    event TEXT NOT NULL,
    severity TEXT NOT NULL,
    value DOUBLE PRECISION NOT NULL,
    summary TEXT NOT NULL
);
CREATE INDEX alert_events_at ON alert_events (at);
