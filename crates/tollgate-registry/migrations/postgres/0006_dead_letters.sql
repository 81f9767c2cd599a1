-- Requests the reverse proxy could not deliver, kept to be listed, replayed or discarded.
-- Credentials and cookies are never among `headers` (a JSON list of [name, value] pairs).
CREATE TABLE dead_letters (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at BIGINT NOT NULL,
    route TEXT NOT NULL,
    upstream TEXT NOT NULL,
    method TEXT NOT NULL,
    url TEXT NOT NULL,
    headers TEXT NOT NULL,
    body BYTEA NOT NULL,
    -- The body was longer than the route's limit and is kept cut: it cannot be replayed.
    body_truncated BOOLEAN NOT NULL,
    tries BIGINT NOT NULL,
    last_failure TEXT NOT NULL,
    replays BIGINT NOT NULL DEFAULT 0,
    replayed_at BIGINT
);
CREATE INDEX dead_letters_route ON dead_letters (route, id);
