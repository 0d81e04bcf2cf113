-- The integration life cycle: an operator can pause an integration (its jobs wait) or
-- disable it (its webhook is unknown, its jobs never run; its tasks and ledger stay).
ALTER TABLE ordonis_integrations
    ADD COLUMN state TEXT NOT NULL DEFAULT 'active'
        CHECK (state IN ('active', 'paused', 'disabled'));
