-- Issue 16 (auditor workspace, "check a file"): find the records whose content has a given
-- SHA-256 without scanning the ledger. Confirmations share the column (their listing digest) and
-- are filtered out by `event`.
CREATE INDEX ledger_entries_sha256 ON ledger_entries (sha256, idx);
