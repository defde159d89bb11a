-- Migration 5: The change feed (store/feed.rs): every package change gets the id of its `changes`
-- row as its generation.
ALTER TABLE packages ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;
CREATE TABLE changes (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at      INTEGER NOT NULL,
    kind    TEXT NOT NULL,
    a       TEXT NOT NULL,
    b       TEXT NOT NULL,
    c       TEXT NOT NULL
);
