-- Confirmations (DESIGN §12.1). A confirmation is one ledger entry per source (in
-- ledger_entries with event = 'confirmed', locator = system = kind = '', sha256 = the listing's
-- digest); the listing it names is kept here by that digest, once however often it repeats.
CREATE TABLE confirmation_listings (
    digest  TEXT PRIMARY KEY,                 -- hex SHA-256 of body
    body    BLOB NOT NULL                     -- JCS({"artifacts":[{locator,sha256}…],"v":1})
);

-- The newest confirmation of each artifact's current content: assessment takes it as the
-- artifact's observation time. Rows are replaced, never deleted; a row whose sha256 is not the
-- artifact's newest content no longer matches anything.
CREATE TABLE artifact_seen (
    source_id         TEXT    NOT NULL,
    locator           TEXT    NOT NULL,
    sha256            TEXT    NOT NULL,
    confirmed_at      TEXT    NOT NULL,
    confirmation_idx  INTEGER NOT NULL,      -- the confirmation's leaf
    PRIMARY KEY (source_id, locator)
);

-- What agents report about their polls (heartbeats; not in the ledger) and the newest
-- confirmation per source: GET /v1/sources.
CREATE TABLE source_health (
    agent              TEXT    NOT NULL,
    source_id          TEXT    NOT NULL,
    source_type        TEXT    NOT NULL,
    interval_secs      INTEGER NOT NULL,
    last_poll_at       TEXT,
    last_ok_at         TEXT,
    last_error         TEXT,
    last_confirmed_at  TEXT,
    listed             INTEGER NOT NULL DEFAULT 0,
    records            INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (agent, source_id)
);
