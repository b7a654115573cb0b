-- Issue 14: uploaded evidence bytes by SHA-256 (src/blobs.rs). SQLite deployments keep them as
-- files beside the database instead.
CREATE TABLE blobs (
    sha256  TEXT COLLATE "C" PRIMARY KEY,
    size    BIGINT NOT NULL,
    bytes   BYTEA NOT NULL
);
