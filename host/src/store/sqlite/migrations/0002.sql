-- Migration 2: the first schema.
CREATE TABLE executions (
    id                  TEXT PRIMARY KEY,
    project             TEXT NOT NULL,
    package             TEXT NOT NULL,
    version             INTEGER NOT NULL,
    started_at          INTEGER NOT NULL,
    duration_us         INTEGER NOT NULL,
    status              TEXT NOT NULL,
    http_status         INTEGER,
    user_name           TEXT,
    secrets             TEXT NOT NULL,
    stdout              BLOB NOT NULL,
    stdout_truncated    INTEGER NOT NULL,
    stderr              BLOB NOT NULL,
    stderr_truncated    INTEGER NOT NULL
);
CREATE INDEX executions_package ON executions (project, package, started_at);
CREATE INDEX executions_project ON executions (project, started_at);
