-- Issue 16 (`/sources` links to the evidence each source produced): a source's newest records
-- without scanning the ledger.
CREATE INDEX ledger_entries_source ON ledger_entries (source_id, idx);
