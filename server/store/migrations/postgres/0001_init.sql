-- PostgreSQL schema: the same tables and semantics as migrations/sqlite/0001_init.sql, shared by
-- every server replica that points at the database. Text columns use the "C" collation so that
-- ORDER BY compares bytes, as SQLite does, whatever the database's default collation is.

-- The sequencer: one row holding the ledger size. Every ingest locks it (SELECT ... FOR UPDATE)
-- before it reads the ledger, so appends from all replicas are serialised in the database: leaf
-- indices stay dense and the tree never forks. Plain reads never wait for the lock.
CREATE TABLE ledger_head (
    id    BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (id),  -- exactly one row
    size  BIGINT  NOT NULL CHECK (size >= 0)            -- leaves in ledger_entries
);
INSERT INTO ledger_head (id, size) VALUES (TRUE, 0);

-- The ledger: one row per leaf, append-only. `entry` holds the exact bytes that were hashed
-- (JCS of the server entry wrapping the record), so proofs never depend on re-serialisation.
CREATE TABLE ledger_entries (
    idx          BIGINT          PRIMARY KEY CHECK (idx >= 0),  -- leaf index, 0-based, dense
    record_id    TEXT COLLATE "C" NOT NULL UNIQUE,  -- hex SHA-256 of the canonical record
    leaf_hash    BYTEA           NOT NULL CHECK (octet_length(leaf_hash) = 32),  -- SHA-256(0x00 || entry)
    entry        BYTEA           NOT NULL,          -- JCS({v,type,record,agent,received_at,prev})
    agent        TEXT COLLATE "C" NOT NULL,         -- authenticated principal that sent it
    received_at  TEXT COLLATE "C" NOT NULL,
    source_id    TEXT COLLATE "C" NOT NULL,
    locator      TEXT COLLATE "C" NOT NULL,
    system       TEXT COLLATE "C" NOT NULL,
    kind         TEXT COLLATE "C" NOT NULL,
    event        TEXT COLLATE "C" NOT NULL,
    sha256       TEXT COLLATE "C" NOT NULL,
    observed_at  TEXT COLLATE "C" NOT NULL,
    prev         BIGINT                             -- previous leaf for the same (source, locator)
);
CREATE INDEX ledger_entries_system ON ledger_entries (system, idx);
CREATE INDEX ledger_entries_locator ON ledger_entries (source_id, locator, idx);

-- Complete-subtree hashes: (level, idx) covers leaves [idx << level, (idx + 1) << level).
CREATE TABLE ledger_hashes (
    level INTEGER NOT NULL CHECK (level BETWEEN 0 AND 63),
    idx   BIGINT  NOT NULL CHECK (idx >= 0),
    hash  BYTEA   NOT NULL CHECK (octet_length(hash) = 32),
    PRIMARY KEY (level, idx)
);

-- Every signed checkpoint, so any earlier size can be proven consistent with a later one.
CREATE TABLE ledger_checkpoints (
    size        BIGINT           PRIMARY KEY CHECK (size >= 0),
    root        BYTEA            NOT NULL CHECK (octet_length(root) = 32),
    note        TEXT COLLATE "C" NOT NULL,
    created_at  TEXT COLLATE "C" NOT NULL
);

CREATE TABLE tokens (
    id          BIGINT           GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        TEXT COLLATE "C" NOT NULL,
    role        TEXT COLLATE "C" NOT NULL,
    token_hash  TEXT COLLATE "C" NOT NULL UNIQUE,  -- hex SHA-256 of the bearer token
    created_at  TEXT COLLATE "C" NOT NULL,
    expires_at  TEXT COLLATE "C",
    revoked_at  TEXT COLLATE "C"
);
CREATE INDEX tokens_name ON tokens (name);

-- Materialised assessment, replaced per system after each ingest and on a timer.
CREATE TABLE systems (
    id             TEXT COLLATE "C" PRIMARY KEY,
    assessed_at    TEXT COLLATE "C" NOT NULL,
    evidence       BIGINT           NOT NULL,
    fresh          BIGINT           NOT NULL,
    stale          BIGINT           NOT NULL,
    drifted        BIGINT           NOT NULL,
    missing        BIGINT           NOT NULL,
    not_applicable BIGINT           NOT NULL
);

CREATE TABLE control_status (
    system   TEXT COLLATE "C" NOT NULL,
    control  TEXT COLLATE "C" NOT NULL,
    status   TEXT COLLATE "C" NOT NULL,
    view     TEXT COLLATE "C" NOT NULL,  -- JSON ControlView
    PRIMARY KEY (system, control)
);

CREATE TABLE findings (
    system  TEXT COLLATE "C" NOT NULL,
    id      TEXT COLLATE "C" NOT NULL,
    kind    TEXT COLLATE "C" NOT NULL,
    since   TEXT COLLATE "C" NOT NULL,
    body    TEXT COLLATE "C" NOT NULL,   -- JSON Finding
    PRIMARY KEY (system, id)
);
CREATE INDEX findings_kind ON findings (kind);
