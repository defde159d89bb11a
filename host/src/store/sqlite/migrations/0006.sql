-- Migration 6: What each execution was asked (`logs --follow` shows it).
ALTER TABLE executions ADD COLUMN method TEXT NOT NULL DEFAULT '';
ALTER TABLE executions ADD COLUMN path TEXT NOT NULL DEFAULT '';
