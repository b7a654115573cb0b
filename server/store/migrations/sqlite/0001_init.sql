-- The ledger: one row per leaf, append-only. `entry` holds the exact bytes that were hashed
-- (JCS of the server entry wrapping the record), so proofs never depend on re-serialisation.
CREATE TABLE ledger_entries (
    idx          INTEGER PRIMARY KEY,          -- leaf index, 0-based, dense
    record_id    TEXT    NOT NULL UNIQUE,      -- hex SHA-256 of the canonical record
    leaf_hash    BLOB    NOT NULL,             -- SHA-256(0x00 || entry)
    entry        BLOB    NOT NULL,             -- JCS({v,type,record,agent,received_at,prev})
    agent        TEXT    NOT NULL,             -- authenticated principal that sent it
    received_at  TEXT    NOT NULL,
    source_id    TEXT    NOT NULL,
    locator      TEXT    NOT NULL,
    system       TEXT    NOT NULL,
    kind         TEXT    NOT NULL,
    event        TEXT    NOT NULL,
    sha256       TEXT    NOT NULL,
    observed_at  TEXT    NOT NULL,
    prev         INTEGER                       -- previous leaf for the same (source, locator)
);
CREATE INDEX ledger_entries_system ON ledger_entries (system, idx);
CREATE INDEX ledger_entries_locator ON ledger_entries (source_id, locator, idx);

-- Complete-subtree hashes: (level, index) covers leaves [index << level, (index + 1) << level).
CREATE TABLE ledger_hashes (
    level INTEGER NOT NULL,
    idx   INTEGER NOT NULL,
    hash  BLOB    NOT NULL,
    PRIMARY KEY (level, idx)
) WITHOUT ROWID;

-- Every signed checkpoint, so any earlier size can be proven consistent with a later one.
CREATE TABLE ledger_checkpoints (
    size        INTEGER PRIMARY KEY,
    root        BLOB    NOT NULL,
    note        TEXT    NOT NULL,
    created_at  TEXT    NOT NULL
);

CREATE TABLE tokens (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL,
    role        TEXT    NOT NULL,
    token_hash  TEXT    NOT NULL UNIQUE,       -- hex SHA-256 of the bearer token
    created_at  TEXT    NOT NULL,
    expires_at  TEXT,
    revoked_at  TEXT
);

-- Materialised assessment, replaced per system after each ingest and on a timer.
CREATE TABLE systems (
    id            TEXT PRIMARY KEY,
    assessed_at   TEXT    NOT NULL,
    evidence      INTEGER NOT NULL,
    fresh         INTEGER NOT NULL,
    stale         INTEGER NOT NULL,
    drifted       INTEGER NOT NULL,
    missing       INTEGER NOT NULL,
    not_applicable INTEGER NOT NULL
);

CREATE TABLE control_status (
    system   TEXT NOT NULL,
    control  TEXT NOT NULL,
    status   TEXT NOT NULL,
    view     TEXT NOT NULL,                    -- JSON ControlView
    PRIMARY KEY (system, control)
);

CREATE TABLE findings (
    system  TEXT NOT NULL,
    id      TEXT NOT NULL,
    kind    TEXT NOT NULL,
    since   TEXT NOT NULL,
    body    TEXT NOT NULL,                     -- JSON Finding
    PRIMARY KEY (system, id)
);
CREATE INDEX findings_kind ON findings (kind);
