-- Controls excluded by a system's statement of applicability (DESIGN §12.3); the statements
-- themselves are ledger records of source type `manual`.
ALTER TABLE systems ADD COLUMN excluded_controls BIGINT NOT NULL DEFAULT 0;
