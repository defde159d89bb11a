-- Migration 5: Org secrets as EdgeSecrets has them: a project may let every member read its
-- values.
ALTER TABLE projects ADD COLUMN members_read_secrets BOOLEAN NOT NULL DEFAULT FALSE;
