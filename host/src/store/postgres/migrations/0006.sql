-- Migration 6: Consent bound to the code (docs/user-secrets.md): users' grants of package
-- versions, executions sealed for the user whose scope they opened, token lineage, and where and
-- how each enrollment code was redeemed.
ALTER TABLE tokens ADD COLUMN parent_id TEXT;
CREATE INDEX tokens_parent ON tokens (parent_id);
ALTER TABLE enrollments ADD COLUMN code_hint TEXT;
ALTER TABLE enrollments ADD COLUMN redeemed_from TEXT;
ALTER TABLE enrollments ADD COLUMN redeemed_client TEXT;
ALTER TABLE enrollments ADD COLUMN key_id TEXT;
ALTER TABLE executions ADD COLUMN sealed_for TEXT;
ALTER TABLE executions ADD COLUMN outbound TEXT NOT NULL DEFAULT '[]';
CREATE INDEX executions_sealed ON executions (sealed_for, started_at) WHERE sealed_for IS NOT NULL;
CREATE TABLE grants (
    id              TEXT PRIMARY KEY,
    user_name       TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    project         TEXT NOT NULL,
    package         TEXT NOT NULL,
    version         BIGINT NOT NULL,
    sha256          TEXT NOT NULL,
    manifest_sha256 TEXT NOT NULL,
    names           TEXT NOT NULL,
    key_id          TEXT NOT NULL,
    mac             TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    UNIQUE (user_name, project, package, sha256, manifest_sha256)
);
