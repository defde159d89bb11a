-- Migration 3: The credentials each execution's outbound requests carried, or were refused.
ALTER TABLE executions ADD COLUMN credentials TEXT NOT NULL DEFAULT '{}';
