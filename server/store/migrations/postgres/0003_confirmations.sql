-- Confirmations, artifact confirmation times and source health: the same tables and semantics as
-- migrations/sqlite/0003_confirmations.sql.
CREATE TABLE confirmation_listings (
    digest  TEXT COLLATE "C" PRIMARY KEY,
    body    BYTEA NOT NULL
);

CREATE TABLE artifact_seen (
    source_id         TEXT COLLATE "C" NOT NULL,
    locator           TEXT COLLATE "C" NOT NULL,
    sha256            TEXT COLLATE "C" NOT NULL,
    confirmed_at      TEXT COLLATE "C" NOT NULL,
    confirmation_idx  BIGINT NOT NULL,
    PRIMARY KEY (source_id, locator)
);

CREATE TABLE source_health (
    agent              TEXT COLLATE "C" NOT NULL,
    source_id          TEXT COLLATE "C" NOT NULL,
    source_type        TEXT COLLATE "C" NOT NULL,
    interval_secs      BIGINT NOT NULL,
    last_poll_at       TEXT COLLATE "C",
    last_ok_at         TEXT COLLATE "C",
    last_error         TEXT,
    last_confirmed_at  TEXT COLLATE "C",
    listed             BIGINT NOT NULL DEFAULT 0,
    records            BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (agent, source_id)
);
