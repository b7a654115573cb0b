-- Token scope: an agent token may be bound to one agent ID and a list of source IDs (JSON
-- array). NULL means unrestricted, which is what every token made before this migration is.
ALTER TABLE tokens ADD COLUMN agent_id TEXT;
ALTER TABLE tokens ADD COLUMN sources TEXT;
