-- Migration 4: User secrets sealed from admins (docs/user-secrets.md), audit details, wrapping
-- tokens Edgeward issued (so unwrap redeems no token it did not create).
ALTER TABLE tokens ADD COLUMN issued_by TEXT;
CREATE TABLE key_slots (
    token_id    TEXT PRIMARY KEY REFERENCES tokens(id) ON DELETE CASCADE,
    user_name   TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    key_id      TEXT NOT NULL,
    nonce       BLOB NOT NULL,
    wrapped     BLOB NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE TABLE enrollments (
    hash        TEXT PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    user_name   TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    created_by  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER,
    token_id    TEXT
);
ALTER TABLE audit ADD COLUMN detail TEXT;
CREATE TABLE issued_wraps (
    hash        TEXT PRIMARY KEY,
    expires_at  INTEGER NOT NULL
);
