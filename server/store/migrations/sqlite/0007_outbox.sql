-- Issue 15: the durable notification outbox (see src/outbox.rs). Events are written in the
-- transaction of the assessment that produced them; deliveries, one per (event, sink), carry
-- the retry state. Times are RFC 3339 UTC text with milliseconds, so they compare as text.
CREATE TABLE notify_events (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    key         TEXT NOT NULL UNIQUE,           -- one row per occurrence, e.g. finding.opened:<id>:<since>
    event       TEXT NOT NULL,
    system      TEXT,
    payload     TEXT NOT NULL,                  -- JSON
    created_at  TEXT NOT NULL
);

-- Per sink, the newest event when the sink was first configured: it is told what happens after.
CREATE TABLE notify_sinks (
    sink   TEXT PRIMARY KEY,
    floor  INTEGER NOT NULL
);

CREATE TABLE notify_deliveries (
    seq               INTEGER NOT NULL REFERENCES notify_events (seq),
    sink              TEXT NOT NULL,
    delivery          TEXT NOT NULL,            -- X-Aims-Delivery: the same on every attempt
    state             TEXT NOT NULL,            -- pending | delivered | failed | dead | skipped
    attempts          INTEGER NOT NULL DEFAULT 0,
    next_at           TEXT NOT NULL,
    lease_until       TEXT,                     -- an attempt in progress (claimed) until then
    first_attempt_at  TEXT,
    last_error        TEXT,
    updated_at        TEXT NOT NULL,
    PRIMARY KEY (seq, sink)
);
CREATE INDEX notify_deliveries_due ON notify_deliveries (state, next_at);
