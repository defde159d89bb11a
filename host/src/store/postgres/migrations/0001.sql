-- Migration 1: the first schema.
CREATE TABLE projects (
    name        TEXT PRIMARY KEY,
    created_at  BIGINT NOT NULL,
    created_by  TEXT NOT NULL
);
CREATE TABLE blobs (
    sha256      TEXT PRIMARY KEY,
    size        BIGINT NOT NULL,
    bytes       BYTEA NOT NULL
);
CREATE TABLE packages (
    project         TEXT NOT NULL REFERENCES projects(name) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    current_version BIGINT,
    next_version    BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    generation      BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (project, name)
);
CREATE TABLE versions (
    project     TEXT NOT NULL,
    package     TEXT NOT NULL,
    version     BIGINT NOT NULL,
    sha256      TEXT NOT NULL REFERENCES blobs(sha256),
    size        BIGINT NOT NULL,
    manifest    TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    created_by  TEXT NOT NULL,
    PRIMARY KEY (project, package, version),
    FOREIGN KEY (project, package) REFERENCES packages(project, name) ON DELETE CASCADE
);
CREATE TABLE wraps (
    hash        TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    nonce       BYTEA NOT NULL,
    ciphertext  BYTEA NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE TABLE issued_wraps (
    hash        TEXT PRIMARY KEY,
    expires_at  BIGINT NOT NULL
);
CREATE TABLE users (
    name            TEXT PRIMARY KEY,
    platform_admin  BOOLEAN NOT NULL,
    created_at      BIGINT NOT NULL,
    created_by      TEXT NOT NULL
);
CREATE TABLE tokens (
    id          TEXT PRIMARY KEY,
    hash        TEXT NOT NULL UNIQUE,
    user_name   TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    label       TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT,
    revoked_at  BIGINT,
    issued_by   TEXT
);
CREATE TABLE key_slots (
    token_id    TEXT PRIMARY KEY REFERENCES tokens(id) ON DELETE CASCADE,
    user_name   TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    key_id      TEXT NOT NULL,
    nonce       BYTEA NOT NULL,
    wrapped     BYTEA NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE TABLE enrollments (
    hash        TEXT PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    user_name   TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    created_by  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT,
    token_id    TEXT
);
CREATE TABLE members (
    project     TEXT NOT NULL REFERENCES projects(name) ON DELETE CASCADE,
    user_name   TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    role        TEXT NOT NULL CHECK (role IN ('viewer', 'developer', 'admin')),
    granted_at  BIGINT NOT NULL,
    granted_by  TEXT NOT NULL,
    PRIMARY KEY (project, user_name)
);
CREATE TABLE audit (
    id          BIGSERIAL PRIMARY KEY,
    at          BIGINT NOT NULL,
    actor       TEXT NOT NULL,
    token_id    TEXT,
    action      TEXT NOT NULL,
    target      TEXT NOT NULL,
    project     TEXT,
    scope       TEXT,
    remote      TEXT,
    status      INTEGER NOT NULL,
    outcome     TEXT NOT NULL,
    detail      TEXT
);
CREATE INDEX audit_at ON audit (at);
CREATE INDEX audit_project ON audit (project, at);
CREATE TABLE secrets (
    scope       TEXT NOT NULL,
    owner       TEXT NOT NULL,
    name        TEXT NOT NULL,
    version     BIGINT NOT NULL,
    nonce       BYTEA NOT NULL,
    ciphertext  BYTEA NOT NULL,
    updated_at  BIGINT NOT NULL,
    updated_by  TEXT NOT NULL,
    PRIMARY KEY (scope, owner, name)
);
CREATE TABLE executions (
    id                  TEXT PRIMARY KEY,
    project             TEXT NOT NULL,
    package             TEXT NOT NULL,
    version             BIGINT NOT NULL,
    started_at          BIGINT NOT NULL,
    duration_us         BIGINT NOT NULL,
    status              TEXT NOT NULL,
    http_status         INTEGER,
    user_name           TEXT,
    secrets             TEXT NOT NULL,
    stdout              BYTEA NOT NULL,
    stdout_truncated    BOOLEAN NOT NULL,
    stderr              BYTEA NOT NULL,
    stderr_truncated    BOOLEAN NOT NULL
);
CREATE INDEX executions_package ON executions (project, package, started_at);
CREATE INDEX executions_project ON executions (project, started_at);
CREATE INDEX executions_started ON executions (started_at);
CREATE TABLE changes (
    id      BIGSERIAL PRIMARY KEY,
    at      BIGINT NOT NULL,
    kind    TEXT NOT NULL,
    a       TEXT NOT NULL,
    b       TEXT NOT NULL,
    c       TEXT NOT NULL
);
CREATE INDEX changes_at ON changes (at);
