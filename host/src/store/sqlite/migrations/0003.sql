-- Migration 3: the first schema.
CREATE INDEX executions_started ON executions (started_at);
