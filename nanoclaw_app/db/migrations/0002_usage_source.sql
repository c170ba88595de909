-- Usage rows copied from a session's outbound.db carry their source row id, so copying is idempotent.
ALTER TABLE usage ADD COLUMN source_id INTEGER;
CREATE UNIQUE INDEX usage_source ON usage (session_id, source_id) WHERE source_id IS NOT NULL;
