-- Migration 4: Embedded secrets keep their last versions (the current one among them), a
-- description and labels.
ALTER TABLE secrets ADD COLUMN description TEXT NOT NULL DEFAULT '';
ALTER TABLE secrets ADD COLUMN labels TEXT NOT NULL DEFAULT '{}';
CREATE TABLE secret_versions (
    scope       TEXT NOT NULL,
    owner       TEXT NOT NULL,
    name        TEXT NOT NULL,
    version     BIGINT NOT NULL,
    nonce       BYTEA NOT NULL,
    ciphertext  BYTEA NOT NULL,
    created_at  BIGINT NOT NULL,
    created_by  TEXT NOT NULL,
    PRIMARY KEY (scope, owner, name, version)
);
INSERT INTO secret_versions SELECT scope, owner, name, version, nonce, ciphertext, updated_at,
    updated_by FROM secrets;
