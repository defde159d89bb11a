//! The SQLite metadata store: one file under the data directory, one connection behind a
//! mutex, queries on blocking threads. The zero-setup default.
//!
//! Every multi-step change is one transaction, so a crash leaves the previous state. The schema
//! is versioned (`PRAGMA user_version`) and migrated forward on open.

mod audit;
mod executions;
mod identity;

use crate::store::*;
use rusqlite::{Connection, OptionalExtension, params};
use std::path::Path;
use std::sync::{Arc, Mutex};

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> StoreError {
        StoreError::Backend(format!("SQLite: {e}"))
    }
}

/// Schema migrations, applied in order; entry `i` brings the schema to version `i + 1`.
const MIGRATIONS: &[&str] = &[
    r#"
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
"#,
    r#"
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
"#,
    r#"
CREATE INDEX executions_started ON executions (started_at);
"#,
    // User secrets sealed from admins (docs/user-secrets.md), audit details, wrapping tokens
    // Edgeward issued (so unwrap redeems no token it did not create).
    r#"
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
"#,
    // The change feed (store/feed.rs): every package change gets the id of its `changes` row
    // as its generation.
    r#"
ALTER TABLE packages ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;
CREATE TABLE changes (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at      INTEGER NOT NULL,
    kind    TEXT NOT NULL,
    a       TEXT NOT NULL,
    b       TEXT NOT NULL,
    c       TEXT NOT NULL
);
"#,
    // What each execution was asked (`logs --follow` shows it).
    r#"
ALTER TABLE executions ADD COLUMN method TEXT NOT NULL DEFAULT '';
ALTER TABLE executions ADD COLUMN path TEXT NOT NULL DEFAULT '';
"#,
    // The credentials each execution's outbound requests carried, or were refused.
    r#"
ALTER TABLE executions ADD COLUMN credentials TEXT NOT NULL DEFAULT '{}';
"#,
    // Embedded secrets keep their last versions (the current one among them), a description
    // and labels.
    r#"
ALTER TABLE secrets ADD COLUMN description TEXT NOT NULL DEFAULT '';
ALTER TABLE secrets ADD COLUMN labels TEXT NOT NULL DEFAULT '{}';
CREATE TABLE secret_versions (
    scope       TEXT NOT NULL,
    owner       TEXT NOT NULL,
    name        TEXT NOT NULL,
    version     INTEGER NOT NULL,
    nonce       BLOB NOT NULL,
    ciphertext  BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    created_by  TEXT NOT NULL,
    PRIMARY KEY (scope, owner, name, version)
);
INSERT INTO secret_versions SELECT scope, owner, name, version, nonce, ciphertext, updated_at,
    updated_by FROM secrets;
"#,
    // Org secrets as EdgeSecrets has them: a project may let every member read its values.
    r#"
ALTER TABLE projects ADD COLUMN members_read_secrets INTEGER NOT NULL DEFAULT 0;
"#,
    // Consent bound to the code (docs/user-secrets.md): users' grants of package versions,
    // executions sealed for the user whose scope they opened, token lineage, and where and how
    // each enrollment code was redeemed.
    r#"
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
    version         INTEGER NOT NULL,
    sha256          TEXT NOT NULL,
    manifest_sha256 TEXT NOT NULL,
    names           TEXT NOT NULL,
    key_id          TEXT NOT NULL,
    mac             TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    UNIQUE (user_name, project, package, sha256, manifest_sha256)
);
"#,
];

/// Changes kept in the `changes` table; one host needs none of them, they only number
/// generations.
const CHANGES_KEPT: i64 = 1000;

/// The SQLite store.
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    feed: Feed,
}

impl SqliteStore {
    /// Opens (creating if needed) the SQLite file at `path` and migrates it.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let mut conn = Connection::open(path)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; \
             PRAGMA busy_timeout = 5000; PRAGMA secure_delete = ON;",
        )?;
        migrate(&mut conn)?;
        Ok(SqliteStore {
            conn: Arc::new(Mutex::new(conn)),
            feed: Feed::default(),
        })
    }

    /// Tells this host a package changed (committed, with its generation).
    fn announce_package(&self, project: String, package: String, generation: i64) {
        self.feed.send(Change::Package {
            project,
            package,
            generation,
        });
    }

    /// Runs `f` on the connection in a blocking task.
    async fn call<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<R, StoreError> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = conn
                .lock()
                .map_err(|_| StoreError::Task("connection lock poisoned".into()))?;
            f(&mut conn)
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
    }
}

#[async_trait::async_trait]
impl ProjectStore for SqliteStore {
    /// Creates a project; `AlreadyExists` if it exists.
    async fn create_project(&self, name: String, by: String) -> Result<(), StoreError> {
        self.call(move |c| {
            let n = c.execute(
                "INSERT INTO projects (name, created_at, created_by) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (name) DO NOTHING",
                params![name, now_ms(), by],
            )?;
            if n == 0 {
                return Err(StoreError::AlreadyExists(format!(
                    "project {name:?} already exists"
                )));
            }
            Ok(())
        })
        .await
    }

    /// All projects, by name.
    async fn list_projects(&self) -> Result<Vec<ProjectRow>, StoreError> {
        self.call(|c| {
            let mut st = c.prepare(
                "SELECT name, created_at, created_by, members_read_secrets FROM projects \
                 ORDER BY name",
            )?;
            let rows = st.query_map([], |r| {
                Ok(ProjectRow {
                    name: r.get(0)?,
                    created_at: r.get(1)?,
                    created_by: r.get(2)?,
                    members_read_secrets: r.get(3)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    /// Whether project `name` exists.
    async fn project_exists(&self, name: String) -> Result<bool, StoreError> {
        self.call(move |c| Ok(project_exists(c, &name)?)).await
    }

    async fn members_read_secrets(&self, name: String) -> Result<bool, StoreError> {
        self.call(move |c| {
            Ok(c.query_row(
                "SELECT members_read_secrets FROM projects WHERE name = ?1",
                [&name],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(false))
        })
        .await
    }

    async fn set_members_read_secrets(&self, name: String, on: bool) -> Result<(), StoreError> {
        self.call(move |c| {
            let n = c.execute(
                "UPDATE projects SET members_read_secrets = ?2 WHERE name = ?1",
                params![name, on],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("no project {name:?}")));
            }
            Ok(())
        })
        .await
    }

    /// Records a new version of `project/package` with its blob and makes it current, in one
    /// transaction. Creates the project (when `create_project`) and the package if missing.
    /// Returns the new version number.
    #[allow(clippy::too_many_arguments)]
    async fn add_version(
        &self,
        project: String,
        package: String,
        sha256: String,
        bytes: Arc<Vec<u8>>,
        manifest: String,
        by: String,
        create_project: bool,
    ) -> Result<Committed, StoreError> {
        let (p, k) = (project.clone(), package.clone());
        let committed = self
            .call(move |c| {
                let tx = c.transaction()?;
                let now = now_ms();
                if !project_exists(&tx, &project)? {
                    if !create_project {
                        return Err(StoreError::NotFound(format!("no project {project:?}")));
                    }
                    tx.execute(
                        "INSERT INTO projects (name, created_at, created_by) VALUES (?1, ?2, ?3)",
                        params![project, now, by],
                    )?;
                }
                tx.execute(
                    "INSERT INTO blobs (sha256, size, bytes) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (sha256) DO NOTHING",
                    params![sha256, bytes.len() as i64, bytes.as_slice()],
                )?;
                tx.execute(
                "INSERT INTO packages (project, name, current_version, next_version, created_at) \
                 VALUES (?1, ?2, NULL, 1, ?3) ON CONFLICT (project, name) DO NOTHING",
                params![project, package, now],
            )?;
                let version: i64 = tx.query_row(
                    "SELECT next_version FROM packages WHERE project = ?1 AND name = ?2",
                    params![project, package],
                    |r| r.get(0),
                )?;
                tx.execute(
                    "INSERT INTO versions (project, package, version, sha256, size, manifest, \
                 created_at, created_by) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![
                        project,
                        package,
                        version,
                        sha256,
                        bytes.len() as i64,
                        manifest,
                        now,
                        by
                    ],
                )?;
                let generation = record_change(&tx, "package", &project, &package)?;
                tx.execute(
                    "UPDATE packages SET current_version = ?3, next_version = ?3 + 1, \
                 generation = ?4 WHERE project = ?1 AND name = ?2",
                    params![project, package, version, generation],
                )?;
                crate::faults::point("upload.before_commit");
                tx.commit()?;
                Ok(Committed {
                    version,
                    generation,
                })
            })
            .await?;
        self.announce_package(p, k, committed.generation);
        Ok(committed)
    }

    /// The packages of `project`.
    async fn list_packages(&self, project: String) -> Result<Vec<PackageRow>, StoreError> {
        self.call(move |c| {
            let mut st = c.prepare(
                "SELECT p.project, p.name, p.current_version, \
                   (SELECT COUNT(*) FROM versions v WHERE v.project = p.project \
                      AND v.package = p.name), p.created_at \
                 FROM packages p WHERE p.project = ?1 ORDER BY p.name",
            )?;
            let rows = st.query_map([project], |r| {
                Ok(PackageRow {
                    project: r.get(0)?,
                    name: r.get(1)?,
                    current_version: r.get(2)?,
                    versions: r.get(3)?,
                    created_at: r.get(4)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    /// The versions of `project/package`, oldest first; `NotFound` if there is no such package.
    async fn list_versions(
        &self,
        project: String,
        package: String,
    ) -> Result<(PackageRow, Vec<VersionRow>), StoreError> {
        self.call(move |c| {
            let pkg = c
                .query_row(
                    "SELECT project, name, current_version, created_at FROM packages \
                     WHERE project = ?1 AND name = ?2",
                    params![project, package],
                    |r| {
                        Ok(PackageRow {
                            project: r.get(0)?,
                            name: r.get(1)?,
                            current_version: r.get(2)?,
                            versions: 0,
                            created_at: r.get(3)?,
                        })
                    },
                )
                .optional()?
                .ok_or_else(|| no_package(&project, &package))?;
            let mut st = c.prepare(&format!(
                "{VERSION_COLUMNS} WHERE project = ?1 AND package = ?2 ORDER BY version"
            ))?;
            let versions: Vec<VersionRow> = st
                .query_map(params![project, package], version_row)?
                .collect::<Result<_, _>>()?;
            Ok((
                PackageRow {
                    versions: versions.len() as i64,
                    ..pkg
                },
                versions,
            ))
        })
        .await
    }

    /// One version with its blob.
    async fn version_with_blob(
        &self,
        project: String,
        package: String,
        version: i64,
    ) -> Result<(VersionRow, Vec<u8>), StoreError> {
        self.call(move |c| {
            let row = c
                .query_row(
                    &format!(
                        "{VERSION_COLUMNS} WHERE project = ?1 AND package = ?2 AND version = ?3"
                    ),
                    params![project, package, version],
                    version_row,
                )
                .optional()?
                .ok_or_else(|| {
                    StoreError::NotFound(format!(
                        "package {project}/{package} has no version {version}"
                    ))
                })?;
            let bytes: Vec<u8> = c.query_row(
                "SELECT bytes FROM blobs WHERE sha256 = ?1",
                [&row.sha256],
                |r| r.get(0),
            )?;
            Ok((row, bytes))
        })
        .await
    }

    /// Points `project/package` at `version`.
    async fn set_current(
        &self,
        project: String,
        package: String,
        version: i64,
    ) -> Result<i64, StoreError> {
        let (p, k) = (project.clone(), package.clone());
        let generation = self
            .call(move |c| {
                let tx = c.transaction()?;
                let exists: bool = tx.query_row(
                    "SELECT EXISTS (SELECT 1 FROM versions WHERE project = ?1 AND package = ?2 \
                 AND version = ?3)",
                    params![project, package, version],
                    |r| r.get(0),
                )?;
                if !exists {
                    return Err(StoreError::NotFound(format!(
                        "package {project}/{package} has no version {version}"
                    )));
                }
                let generation = record_change(&tx, "package", &project, &package)?;
                tx.execute(
                    "UPDATE packages SET current_version = ?3, generation = ?4 \
                 WHERE project = ?1 AND name = ?2",
                    params![project, package, version, generation],
                )?;
                tx.commit()?;
                Ok(generation)
            })
            .await?;
        self.announce_package(p, k, generation);
        Ok(generation)
    }

    /// Deletes `project/package`, its versions, and blobs no other version uses.
    async fn delete_package(&self, project: String, package: String) -> Result<i64, StoreError> {
        let (p, k) = (project.clone(), package.clone());
        let generation = self
            .call(move |c| {
                let tx = c.transaction()?;
                let n = tx.execute(
                    "DELETE FROM packages WHERE project = ?1 AND name = ?2",
                    params![project, package],
                )?;
                if n == 0 {
                    return Err(no_package(&project, &package));
                }
                tx.execute(
                    "DELETE FROM blobs WHERE sha256 NOT IN (SELECT sha256 FROM versions)",
                    [],
                )?;
                let generation = record_change(&tx, "package", &project, &package)?;
                tx.commit()?;
                Ok(generation)
            })
            .await?;
        self.announce_package(p, k, generation);
        Ok(generation)
    }

    /// The current version of every package, for loading at start.
    async fn current_versions(&self) -> Result<Vec<Current>, StoreError> {
        self.call(|c| {
            let mut st = c.prepare(&format!("{CURRENT_COLUMNS} ORDER BY v.project, v.package"))?;
            let rows = st.query_map([], current_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn current(
        &self,
        project: String,
        package: String,
    ) -> Result<Option<Current>, StoreError> {
        self.call(move |c| {
            Ok(c.query_row(
                &format!("{CURRENT_COLUMNS} WHERE p.project = ?1 AND p.name = ?2"),
                params![project, package],
                current_row,
            )
            .optional()?)
        })
        .await
    }

    /// The bytes of blob `sha256`.
    async fn blob(&self, sha256: String) -> Result<Vec<u8>, StoreError> {
        self.call(move |c| {
            c.query_row(
                "SELECT bytes FROM blobs WHERE sha256 = ?1",
                [&sha256],
                |r| r.get(0),
            )
            .optional()?
            .ok_or_else(|| StoreError::NotFound(format!("no blob {sha256}")))
        })
        .await
    }
}

#[async_trait::async_trait]
impl CipherStore for SqliteStore {
    /// Reads one embedded-backend ciphertext.
    async fn secret_get(
        &self,
        scope: &'static str,
        owner: String,
        name: String,
    ) -> Result<Option<SecretRow>, StoreError> {
        self.call(move |c| {
            Ok(c.query_row(
                "SELECT name, version, nonce, ciphertext, updated_at, updated_by, description, \
                 labels FROM secrets WHERE scope = ?1 AND owner = ?2 AND name = ?3",
                params![scope, owner, name],
                secret_row,
            )
            .optional()?)
        })
        .await
    }

    /// Lists the embedded-backend ciphertexts of one owner in one scope.
    async fn secret_list(
        &self,
        scope: &'static str,
        owner: String,
    ) -> Result<Vec<SecretRow>, StoreError> {
        self.call(move |c| {
            let mut st = c.prepare(
                "SELECT name, version, nonce, ciphertext, updated_at, updated_by, description, \
                 labels FROM secrets WHERE scope = ?1 AND owner = ?2 ORDER BY name",
            )?;
            let rows = st.query_map(params![scope, owner], secret_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    /// Writes one embedded-backend ciphertext, bumping its version; returns the new version.
    /// `mode` is `None` for upsert, `Some(true)` for create-only, `Some(false)` for update-only.
    #[allow(clippy::too_many_arguments)]
    async fn secret_write(
        &self,
        scope: &'static str,
        owner: String,
        name: String,
        nonce: Vec<u8>,
        ciphertext: Vec<u8>,
        by: String,
        mode: Option<bool>,
        keep: i64,
    ) -> Result<i64, StoreError> {
        self.call(move |c| {
            let tx = c.transaction()?;
            let version =
                secret_write_in(&tx, scope, &owner, &name, &nonce, &ciphertext, &by, mode)?;
            keep_version(
                &tx,
                scope,
                &owner,
                &name,
                version,
                &nonce,
                &ciphertext,
                &by,
                keep,
            )?;
            tx.commit()?;
            Ok(version)
        })
        .await
    }

    /// Upserts many ciphertexts of one owner in one transaction: all or none.
    async fn secret_import(
        &self,
        scope: &'static str,
        owner: String,
        entries: Vec<(String, Vec<u8>, Vec<u8>)>,
        by: String,
        keep: i64,
    ) -> Result<(), StoreError> {
        self.call(move |c| {
            let tx = c.transaction()?;
            for (name, nonce, ciphertext) in &entries {
                let version =
                    secret_write_in(&tx, scope, &owner, name, nonce, ciphertext, &by, None)?;
                keep_version(
                    &tx, scope, &owner, name, version, nonce, ciphertext, &by, keep,
                )?;
                crate::faults::point("import.write");
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    /// Stores a wrapped value under the hash of its token.
    async fn wrap_insert(
        &self,
        hash: String,
        name: String,
        nonce: Vec<u8>,
        ciphertext: Vec<u8>,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        self.call(move |c| {
            c.execute(
                "INSERT INTO wraps (hash, name, nonce, ciphertext, expires_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![hash, name, nonce, ciphertext, expires_at],
            )?;
            // Expired wraps are useless; drop them whenever a new one is made.
            c.execute("DELETE FROM wraps WHERE expires_at <= ?1", [now_ms()])?;
            Ok(())
        })
        .await
    }

    /// Removes and returns the wrapped value for `hash` if it has not expired: single use.
    async fn wrap_take(
        &self,
        hash: String,
    ) -> Result<Option<(String, Vec<u8>, Vec<u8>)>, StoreError> {
        self.call(move |c| {
            let row: Option<(String, Vec<u8>, Vec<u8>, i64)> = c
                .query_row(
                    "DELETE FROM wraps WHERE hash = ?1 \
                     RETURNING name, nonce, ciphertext, expires_at",
                    [hash],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional()?;
            Ok(row
                .filter(|(_, _, _, expires_at)| *expires_at > now_ms())
                .map(|(name, nonce, ct, _)| (name, nonce, ct)))
        })
        .await
    }

    /// Remembers a wrapping token Edgeward handed out (by hash), so that unwrap redeems only
    /// tokens it created.
    async fn issued_wrap_insert(&self, hash: String, expires_at: i64) -> Result<(), StoreError> {
        self.call(move |c| {
            c.execute(
                "INSERT INTO issued_wraps (hash, expires_at) VALUES (?1, ?2) \
                 ON CONFLICT (hash) DO NOTHING",
                params![hash, expires_at],
            )?;
            c.execute(
                "DELETE FROM issued_wraps WHERE expires_at <= ?1",
                [now_ms()],
            )?;
            Ok(())
        })
        .await
    }

    /// Forgets a wrapping token Edgeward handed out; whether it was known and unexpired.
    async fn issued_wrap_take(&self, hash: String) -> Result<bool, StoreError> {
        self.call(move |c| {
            let at: Option<i64> = c
                .query_row(
                    "DELETE FROM issued_wraps WHERE hash = ?1 RETURNING expires_at",
                    [hash],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(at.is_some_and(|at| at > now_ms()))
        })
        .await
    }

    /// Deletes one embedded-backend secret; whether it existed.
    async fn secret_delete(
        &self,
        scope: &'static str,
        owner: String,
        name: String,
    ) -> Result<bool, StoreError> {
        self.call(move |c| {
            let tx = c.transaction()?;
            tx.execute(
                "DELETE FROM secret_versions WHERE scope = ?1 AND owner = ?2 AND name = ?3",
                params![scope, owner, name],
            )?;
            let found = tx.execute(
                "DELETE FROM secrets WHERE scope = ?1 AND owner = ?2 AND name = ?3",
                params![scope, owner, name],
            )? > 0;
            tx.commit()?;
            Ok(found)
        })
        .await
    }

    async fn secret_versions(
        &self,
        scope: &'static str,
        owner: String,
        name: String,
    ) -> Result<Vec<SecretVersionRow>, StoreError> {
        self.call(move |c| {
            let mut st = c.prepare(
                "SELECT version, created_at, created_by FROM secret_versions \
                 WHERE scope = ?1 AND owner = ?2 AND name = ?3 ORDER BY version",
            )?;
            let rows = st.query_map(params![scope, owner, name], |r| {
                Ok(SecretVersionRow {
                    version: r.get(0)?,
                    created_at: r.get(1)?,
                    created_by: r.get(2)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn secret_get_version(
        &self,
        scope: &'static str,
        owner: String,
        name: String,
        version: i64,
    ) -> Result<Option<SecretRow>, StoreError> {
        self.call(move |c| {
            Ok(c.query_row(
                "SELECT v.name, v.version, v.nonce, v.ciphertext, v.created_at, v.created_by, \
                 s.description, s.labels FROM secret_versions v JOIN secrets s \
                 ON s.scope = v.scope AND s.owner = v.owner AND s.name = v.name \
                 WHERE v.scope = ?1 AND v.owner = ?2 AND v.name = ?3 AND v.version = ?4",
                params![scope, owner, name, version],
                secret_row,
            )
            .optional()?)
        })
        .await
    }

    async fn secret_annotate(
        &self,
        scope: &'static str,
        owner: String,
        name: String,
        description: Option<String>,
        labels: Option<String>,
    ) -> Result<bool, StoreError> {
        self.call(move |c| {
            Ok(c.execute(
                "UPDATE secrets SET description = COALESCE(?4, description), \
                 labels = COALESCE(?5, labels) \
                 WHERE scope = ?1 AND owner = ?2 AND name = ?3",
                params![scope, owner, name, description, labels],
            )? > 0)
        })
        .await
    }
}

const VERSION_COLUMNS: &str = "SELECT project, package, version, sha256, size, manifest, \
                               created_at, created_by FROM versions";

fn version_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<VersionRow> {
    Ok(VersionRow {
        project: r.get(0)?,
        package: r.get(1)?,
        version: r.get(2)?,
        sha256: r.get(3)?,
        size: r.get(4)?,
        manifest: r.get(5)?,
        created_at: r.get(6)?,
        created_by: r.get(7)?,
    })
}

/// The current version of packages with their generation, from `versions v JOIN packages p`.
const CURRENT_COLUMNS: &str = "SELECT v.project, v.package, v.version, v.sha256, v.size, \
     v.manifest, v.created_at, v.created_by, p.generation FROM versions v JOIN packages p \
     ON p.project = v.project AND p.name = v.package AND p.current_version = v.version";

fn current_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Current> {
    Ok(Current {
        version: version_row(r)?,
        generation: r.get(8)?,
    })
}

/// Records a change in the `changes` table, whose id numbers it; drops old ones.
fn record_change(c: &Connection, kind: &str, a: &str, b: &str) -> Result<i64, StoreError> {
    let id: i64 = c.query_row(
        "INSERT INTO changes (at, kind, a, b, c) VALUES (?1, ?2, ?3, ?4, '') RETURNING id",
        params![now_ms(), kind, a, b],
        |r| r.get(0),
    )?;
    c.execute(
        "DELETE FROM changes WHERE id <= ?1",
        [id.saturating_sub(CHANGES_KEPT)],
    )?;
    Ok(id)
}

#[async_trait::async_trait]
impl ChangeFeed for SqliteStore {
    async fn publish(&self, change: Change) -> Result<(), StoreError> {
        self.feed.send(change);
        Ok(())
    }

    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Change> {
        self.feed.subscribe()
    }

    async fn health(&self) -> Health {
        let store = self
            .call(|c| Ok(c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?))
            .await
            .map(|_| ())
            .map_err(|e| e.to_string());
        Health {
            store,
            feed: Ok(()),
        }
    }

    fn engine(&self) -> &'static str {
        "sqlite"
    }
}

fn secret_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SecretRow> {
    Ok(SecretRow {
        name: r.get(0)?,
        version: r.get(1)?,
        nonce: r.get(2)?,
        ciphertext: r.get(3)?,
        updated_at: r.get(4)?,
        updated_by: r.get(5)?,
        description: r.get(6)?,
        labels: r.get(7)?,
    })
}

/// Keeps `version` of a secret among its versions and drops those older than its last
/// `keep`.
#[allow(clippy::too_many_arguments)]
fn keep_version(
    c: &Connection,
    scope: &str,
    owner: &str,
    name: &str,
    version: i64,
    nonce: &[u8],
    ciphertext: &[u8],
    by: &str,
    keep: i64,
) -> Result<(), StoreError> {
    c.execute(
        "INSERT OR REPLACE INTO secret_versions (scope, owner, name, version, nonce, \
         ciphertext, created_at, created_by) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![scope, owner, name, version, nonce, ciphertext, now_ms(), by],
    )?;
    c.execute(
        "DELETE FROM secret_versions WHERE scope = ?1 AND owner = ?2 AND name = ?3 \
         AND version <= ?4",
        params![scope, owner, name, version - keep.max(1)],
    )?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn secret_write_in(
    c: &Connection,
    scope: &str,
    owner: &str,
    name: &str,
    nonce: &[u8],
    ciphertext: &[u8],
    by: &str,
    mode: Option<bool>,
) -> Result<i64, StoreError> {
    let exists: bool = c.query_row(
        "SELECT EXISTS (SELECT 1 FROM secrets WHERE scope = ?1 AND owner = ?2 AND name = ?3)",
        params![scope, owner, name],
        |r| r.get(0),
    )?;
    match mode {
        Some(true) if exists => {
            return Err(StoreError::AlreadyExists(format!(
                "{scope} secret {name} already exists"
            )));
        }
        Some(false) if !exists => {
            return Err(StoreError::NotFound(format!("no {scope} secret {name}")));
        }
        _ => {}
    }
    Ok(c.query_row(
        "INSERT INTO secrets (scope, owner, name, version, nonce, ciphertext, updated_at, \
         updated_by) VALUES (?1, ?2, ?3, 1, ?4, ?5, ?6, ?7) \
         ON CONFLICT (scope, owner, name) DO UPDATE SET version = version + 1, \
         nonce = excluded.nonce, ciphertext = excluded.ciphertext, \
         updated_at = excluded.updated_at, updated_by = excluded.updated_by \
         RETURNING version",
        params![scope, owner, name, nonce, ciphertext, now_ms(), by],
        |r| r.get(0),
    )?)
}

fn no_package(project: &str, package: &str) -> StoreError {
    StoreError::NotFound(format!("no package {project}/{package}"))
}

pub(crate) fn project_exists(c: &Connection, name: &str) -> rusqlite::Result<bool> {
    c.query_row(
        "SELECT EXISTS (SELECT 1 FROM projects WHERE name = ?1)",
        [name],
        |r| r.get(0),
    )
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let current: usize = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.execute_batch(&format!("PRAGMA user_version = {}", i + 1))?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn versions_rollback_and_delete() {
        let tmp = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&tmp.path().join("db")).unwrap();
        let blob = Arc::new(vec![1u8, 2, 3]);
        let add = |sha: &str| {
            store.add_version(
                "acme".into(),
                "hello".into(),
                sha.into(),
                blob.clone(),
                "{}".into(),
                "admin".into(),
                true,
            )
        };
        assert_eq!(add("aa").await.unwrap().version, 1);
        assert_eq!(add("bb").await.unwrap().version, 2);
        let (pkg, versions) = store
            .list_versions("acme".into(), "hello".into())
            .await
            .unwrap();
        assert_eq!((pkg.current_version, versions.len()), (Some(2), 2));
        store
            .set_current("acme".into(), "hello".into(), 1)
            .await
            .unwrap();
        assert!(matches!(
            store.set_current("acme".into(), "hello".into(), 9).await,
            Err(StoreError::NotFound(_))
        ));
        let current = store.current_versions().await.unwrap();
        assert_eq!(current.len(), 1);
        assert_eq!(current[0].version.sha256, "aa");
        store
            .delete_package("acme".into(), "hello".into())
            .await
            .unwrap();
        assert!(store.blob("aa".into()).await.is_err(), "orphan blobs go");
        // Every migration ran, and execution records work.
        let version: usize = store
            .call(|c| Ok(c.query_row("PRAGMA user_version", [], |r| r.get(0))?))
            .await
            .unwrap();
        assert_eq!(version, MIGRATIONS.len());
        let row = ExecutionRow {
            method: "GET".into(),
            path: "/".into(),
            id: "e1".into(),
            project: "acme".into(),
            package: "hello".into(),
            version: 1,
            started_at: now_ms(),
            duration_us: 5,
            status: "ok".into(),
            http_status: Some(200),
            user: None,
            secrets: vec!["package:X".into()],
            credentials: Default::default(),
            stdout: b"out".to_vec(),
            stdout_truncated: false,
            stderr: Vec::new(),
            stderr_truncated: true,
            sealed_for: None,
            outbound: Vec::new(),
        };
        let mut old = row.clone();
        (old.id, old.started_at) = ("e0".into(), now_ms() - 120_000);
        store.insert_executions(vec![old, row]).await.unwrap();
        let dropped = store
            .prune_executions(
                vec![("acme".into(), "hello".into())],
                10,
                60_000,
                Vec::new(),
                u64::MAX,
            )
            .await
            .unwrap();
        assert_eq!(dropped, 1, "only the record past the age limit goes");
        assert!(
            store
                .execution("acme".into(), "e0".into())
                .await
                .unwrap()
                .is_none()
        );
        let got = store
            .execution("acme".into(), "e1".into())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (got.secrets, got.stdout, got.stderr_truncated),
            (vec!["package:X".to_string()], b"out".to_vec(), true)
        );
        // Reopening keeps the schema version and does not re-run migrations.
        drop(store);
        let store = SqliteStore::open(&tmp.path().join("db")).unwrap();
        assert_eq!(store.list_projects().await.unwrap().len(), 1);
    }
}
