-- Migration 1: the first schema.
CREATE TABLE projects (
    name        TEXT PRIMARY KEY,
    created_at  INTEGER NOT NULL,
    created_by  TEXT NOT NULL
);
CREATE TABLE blobs (
    sha256      TEXT PRIMARY KEY,
    size        INTEGER NOT NULL,
    bytes       BLOB NOT NULL
);
CREATE TABLE packages (
    project         TEXT NOT NULL REFERENCES projects(name) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    current_version INTEGER,
    next_version    INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (project, name)
);
CREATE TABLE versions (
    project     TEXT NOT NULL,
    package     TEXT NOT NULL,
    version     INTEGER NOT NULL,
    sha256      TEXT NOT NULL REFERENCES blobs(sha256),
    size        INTEGER NOT NULL,
    manifest    TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    created_by  TEXT NOT NULL,
    PRIMARY KEY (project, package, version),
    FOREIGN KEY (project, package) REFERENCES packages(project, name) ON DELETE CASCADE
);
CREATE TABLE wraps (
    hash        TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    nonce       BLOB NOT NULL,
    ciphertext  BLOB NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE TABLE users (
    name            TEXT PRIMARY KEY,
    platform_admin  INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    created_by      TEXT NOT NULL
);
CREATE TABLE tokens (
    id          TEXT PRIMARY KEY,
    hash        TEXT NOT NULL UNIQUE,
    user_name   TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    label       TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER,
    revoked_at  INTEGER
);
CREATE TABLE members (
    project     TEXT NOT NULL REFERENCES projects(name) ON DELETE CASCADE,
    user_name   TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    role        TEXT NOT NULL CHECK (role IN ('viewer', 'developer', 'admin')),
    granted_at  INTEGER NOT NULL,
    granted_by  TEXT NOT NULL,
    PRIMARY KEY (project, user_name)
);
CREATE TABLE audit (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          INTEGER NOT NULL,
    actor       TEXT NOT NULL,
    token_id    TEXT,
    action      TEXT NOT NULL,
    target      TEXT NOT NULL,
    project     TEXT,
    scope       TEXT,
    remote      TEXT,
    status      INTEGER NOT NULL,
    outcome     TEXT NOT NULL
);
CREATE INDEX audit_at ON audit (at);
CREATE INDEX audit_project ON audit (project, at);
CREATE TABLE secrets (
    scope       TEXT NOT NULL,
    owner       TEXT NOT NULL,
    name        TEXT NOT NULL,
    version     INTEGER NOT NULL,
    nonce       BLOB NOT NULL,
    ciphertext  BLOB NOT NULL,
    updated_at  INTEGER NOT NULL,
    updated_by  TEXT NOT NULL,
    PRIMARY KEY (scope, owner, name)
);
