-- Migration 9: Org secrets as EdgeSecrets has them: a project may let every member read its
-- values.
ALTER TABLE projects ADD COLUMN members_read_secrets INTEGER NOT NULL DEFAULT 0;
