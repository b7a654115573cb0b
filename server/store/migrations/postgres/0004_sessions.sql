-- Issue 18: the token `systems` scope and dashboard sessions, with the same semantics as
-- migrations/sqlite/0004_sessions.sql.
ALTER TABLE tokens ADD COLUMN systems TEXT;

CREATE TABLE sessions (
    id_hash     TEXT COLLATE "C" PRIMARY KEY,
    token_hash  TEXT COLLATE "C" NOT NULL,
    token_name  TEXT COLLATE "C" NOT NULL,
    role        TEXT COLLATE "C" NOT NULL,
    created_at  TEXT COLLATE "C" NOT NULL,
    expires_at  TEXT COLLATE "C" NOT NULL,
    revoked_at  TEXT COLLATE "C"
);
CREATE INDEX sessions_token_name ON sessions (token_name);
CREATE INDEX sessions_expires_at ON sessions (expires_at);
