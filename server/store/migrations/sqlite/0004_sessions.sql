-- Issue 18. The AI systems an agent token may write (M4): a JSON array of system IDs, NULL for
-- any system.
ALTER TABLE tokens ADD COLUMN systems TEXT;

-- Dashboard sessions (M8). A browser exchanges a read-capable token at /login (or /?token=) for
-- a random session id; the cookie holds only that id and this table only its SHA-256. Every
-- lookup joins the token's current row, so revoking or expiring the token ends its sessions at
-- once; `revoked_at` records that `aims-server token revoke` ended them as well.
CREATE TABLE sessions (
    id_hash     TEXT PRIMARY KEY,                 -- hex SHA-256 of the session id
    token_hash  TEXT NOT NULL,                    -- tokens.token_hash it was exchanged for
    token_name  TEXT NOT NULL,
    role        TEXT NOT NULL,                    -- the token's role at sign-in
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    revoked_at  TEXT
);
CREATE INDEX sessions_token_name ON sessions (token_name);
CREATE INDEX sessions_expires_at ON sessions (expires_at);
