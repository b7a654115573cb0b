-- Issue 15: the durable notification outbox, with the same semantics as
-- migrations/sqlite/0007_outbox.sql.
CREATE TABLE notify_events (
    seq         BIGSERIAL PRIMARY KEY,
    key         TEXT COLLATE "C" NOT NULL UNIQUE,
    event       TEXT COLLATE "C" NOT NULL,
    system      TEXT COLLATE "C",
    payload     TEXT NOT NULL,
    created_at  TEXT COLLATE "C" NOT NULL
);

CREATE TABLE notify_sinks (
    sink   TEXT COLLATE "C" PRIMARY KEY,
    floor  BIGINT NOT NULL
);

CREATE TABLE notify_deliveries (
    seq               BIGINT NOT NULL REFERENCES notify_events (seq),
    sink              TEXT COLLATE "C" NOT NULL,
    delivery          TEXT COLLATE "C" NOT NULL,
    state             TEXT COLLATE "C" NOT NULL,
    attempts          BIGINT NOT NULL DEFAULT 0,
    next_at           TEXT COLLATE "C" NOT NULL,
    lease_until       TEXT COLLATE "C",
    first_attempt_at  TEXT COLLATE "C",
    last_error        TEXT,
    updated_at        TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (seq, sink)
);
CREATE INDEX notify_deliveries_due ON notify_deliveries (state, next_at);
