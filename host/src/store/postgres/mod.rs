//! The PostgreSQL metadata store, for clusters: any number of stateless hosts share one
//! database. Queries go through a pool (deadpool-postgres over tokio-postgres); the change
//! feed is a `changes` table announced with `LISTEN/NOTIFY`.
//!
//! What the SQLite engine decides under its one connection, this one decides in the database:
//! version numbers under a row lock on the package (`SELECT … FOR UPDATE`), and the order of
//! changes under a transaction-scoped advisory lock taken last, so change ids commit in
//! increasing order and a reader that has seen id N has seen every committed change before it.

mod audit;
mod connect;
mod executions;
mod identity;

pub use connect::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_POOL_SIZE, MAX_POOL_SIZE, PgOptions, SslMode};

/// Checks `url` and `options` without connecting.
pub(super) fn check(url: &str, options: &PgOptions) -> Result<(), String> {
    connect::target(url, options).map(|_| ())
}

use crate::store::*;
use deadpool_postgres::{GenericClient, Transaction};
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;
use tokio_postgres::Row;
use tokio_postgres_rustls::MakeRustlsConnect;

/// The `NOTIFY` channel of the change feed.
const CHANNEL: &str = "edgeward_changes";
/// The advisory lock that orders change ids by commit.
const FEED_LOCK: i64 = 0x6564_6765_7761_7264; // "edgeward"
/// The advisory lock held while migrating, so hosts starting together migrate once.
const MIGRATE_LOCK: i64 = 0x6564_6765_6d69_6772;
/// With the listening connection up, the table is read this often anyway (a safety net; a
/// notification is what makes a change seen within a second).
const POLL_CONNECTED: Duration = Duration::from_secs(10);
/// Changes older than this are dropped; a host away longer resynchronises in full anyway.
const CHANGES_KEPT_MS: i64 = 3_600_000;

/// Schema migrations, applied in order; entry `i` brings the schema to version `i + 1`. The
/// same tables as SQLite's, in PostgreSQL's types.
const MIGRATIONS: &[&str] = &[
    r#"
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
    version     BIGINT NOT NULL,
    nonce       BYTEA NOT NULL,
    ciphertext  BYTEA NOT NULL,
    created_at  BIGINT NOT NULL,
    created_by  TEXT NOT NULL,
    PRIMARY KEY (scope, owner, name, version)
);
INSERT INTO secret_versions SELECT scope, owner, name, version, nonce, ciphertext, updated_at,
    updated_by FROM secrets;
"#,
    // Org secrets as EdgeSecrets has them: a project may let every member read its values.
    r#"
ALTER TABLE projects ADD COLUMN members_read_secrets BOOLEAN NOT NULL DEFAULT FALSE;
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
    version         BIGINT NOT NULL,
    sha256          TEXT NOT NULL,
    manifest_sha256 TEXT NOT NULL,
    names           TEXT NOT NULL,
    key_id          TEXT NOT NULL,
    mac             TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    UNIQUE (user_name, project, package, sha256, manifest_sha256)
);
"#,
];

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> StoreError {
        // Only the SQLSTATE and the primary message: a DETAIL line can quote a key's value.
        match e.as_db_error() {
            Some(db) => {
                StoreError::Backend(format!("PostgreSQL {}: {}", db.code().code(), db.message()))
            }
            None if e.is_closed() => {
                StoreError::Unavailable("the connection to PostgreSQL was lost".into())
            }
            None => {
                // "error connecting to server" says nothing without its cause ("Connection
                // refused", "password authentication failed"); neither quotes the URL.
                let cause = std::error::Error::source(&e)
                    .map(|s| format!(": {}", first_line(&s)))
                    .unwrap_or_default();
                StoreError::Unavailable(format!("PostgreSQL: {}{cause}", first_line(&e)))
            }
        }
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> StoreError {
        match e {
            deadpool_postgres::PoolError::Backend(e) => e.into(),
            deadpool_postgres::PoolError::Timeout(_) => {
                StoreError::Unavailable("no PostgreSQL connection within the timeout".into())
            }
            other => StoreError::Unavailable(format!("PostgreSQL pool: {other}")),
        }
    }
}

/// A `WHERE` clause built from optional filters, numbering its own parameters.
#[derive(Default)]
struct Filters {
    sql: String,
    args: Vec<Box<dyn tokio_postgres::types::ToSql + Sync + Send>>,
}

impl Filters {
    /// Appends `clause` with `$` standing for `value`'s parameter, if there is a value.
    fn and<T>(&mut self, clause: &str, value: Option<T>) -> &mut Self
    where
        T: tokio_postgres::types::ToSql + Sync + Send + 'static,
    {
        if let Some(value) = value {
            self.args.push(Box::new(value));
            self.sql
                .push_str(&clause.replace('$', &format!("${}", self.args.len())));
        }
        self
    }

    /// The parameters, as a query takes them.
    fn params(&self) -> Vec<&(dyn tokio_postgres::types::ToSql + Sync)> {
        self.args
            .iter()
            .map(|a| a.as_ref() as &(dyn tokio_postgres::types::ToSql + Sync))
            .collect()
    }
}

fn first_line(e: &dyn std::fmt::Display) -> String {
    e.to_string().lines().next().unwrap_or_default().to_string()
}

/// Opens connections on one runtime (the server's), whichever runtime asks for one. A
/// connection's socket is driven by the task that owns it: opened from a data-plane worker or
/// the (low-priority) record writer, every query on it, from anywhere, would wait for that
/// thread.
struct OnRuntime(tokio::runtime::Handle, MakeRustlsConnect);

impl deadpool_postgres::Connect for OnRuntime {
    fn connect(
        &self,
        config: &tokio_postgres::Config,
    ) -> futures::future::BoxFuture<
        '_,
        Result<(tokio_postgres::Client, tokio::task::JoinHandle<()>), tokio_postgres::Error>,
    > {
        let (config, handle, tls) = (config.clone(), self.0.clone(), self.1.clone());
        Box::pin(async move {
            let opened = handle.clone().spawn(async move {
                let (client, connection) = config.connect(tls).await?;
                let driver = handle.spawn(async move {
                    if let Err(e) = connection.await {
                        tracing::debug!(error = %e, "a PostgreSQL connection closed");
                    }
                });
                Ok((client, driver))
            });
            match opened.await {
                Ok(result) => result,
                // The server's runtime is shutting down: no connection can be driven.
                Err(_) => std::future::pending().await,
            }
        })
    }
}

/// What the listener task shares with the store.
#[derive(Debug, Default)]
struct FeedState {
    connected: AtomicBool,
    /// The id of the last change read.
    last: AtomicI64,
}

/// The PostgreSQL store.
pub struct PgStore {
    pool: Pool,
    feed: Feed,
    state: Arc<FeedState>,
}

impl PgStore {
    /// Connects to `url` (`postgres://user:password@host:port/database?sslmode=…`) as
    /// `options` say, migrates the schema and starts listening for changes.
    pub async fn connect(url: &str, options: &PgOptions) -> Result<PgStore, StoreError> {
        let connect::Target { config, tls, mode } =
            connect::target(url, options).map_err(StoreError::Unavailable)?;
        let manager = Manager::from_connect(
            config.clone(),
            OnRuntime(tokio::runtime::Handle::current(), tls.clone()),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.pool_size)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(options.connect_timeout.max(Duration::from_secs(5))))
            .create_timeout(Some(options.connect_timeout))
            .recycle_timeout(Some(Duration::from_secs(5)))
            .build()
            .map_err(|e| StoreError::Unavailable(format!("PostgreSQL pool: {e}")))?;
        let mut client = pool
            .get()
            .await
            .map_err(|e| connect::explain(mode, e.into()))?;
        migrate(&mut client).await?;
        let last: i64 = client
            .query_one("SELECT COALESCE(MAX(id), 0) FROM changes", &[])
            .await?
            .get(0);
        drop(client);
        let state = Arc::new(FeedState::default());
        state.last.store(last, Ordering::Release);
        let feed = Feed::default();
        tokio::spawn(listen(
            config,
            tls,
            pool.clone(),
            feed.clone(),
            state.clone(),
        ));
        Ok(PgStore { pool, feed, state })
    }

    async fn client(&self) -> Result<Object, StoreError> {
        Ok(self.pool.get().await?)
    }
}

async fn migrate(client: &mut Object) -> Result<(), StoreError> {
    client
        .batch_execute(&format!(
            "SELECT pg_advisory_lock({MIGRATE_LOCK}); \
             CREATE TABLE IF NOT EXISTS edgeward_schema (version BIGINT NOT NULL); \
             INSERT INTO edgeward_schema (version) SELECT 0 \
               WHERE NOT EXISTS (SELECT 1 FROM edgeward_schema);"
        ))
        .await?;
    let result = async {
        let current: i64 = client
            .query_one("SELECT version FROM edgeward_schema", &[])
            .await?
            .get(0);
        for (i, sql) in MIGRATIONS
            .iter()
            .enumerate()
            .skip(usize::try_from(current).unwrap_or(0))
        {
            let tx = client.transaction().await?;
            tx.batch_execute(sql).await?;
            tx.execute(
                "UPDATE edgeward_schema SET version = $1",
                &[&(i as i64 + 1)],
            )
            .await?;
            tx.commit().await?;
        }
        Ok::<_, StoreError>(())
    }
    .await;
    client
        .batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATE_LOCK})"))
        .await?;
    result
}

/// Records a change in the transaction that makes it, after everything else it locks, and
/// announces it at commit; returns its id.
async fn record_change(tx: &Transaction<'_>, change: &Change) -> Result<i64, StoreError> {
    let (kind, a, b, c) = change.to_row();
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&FEED_LOCK])
        .await?;
    let id: i64 = tx
        .query_one(
            "INSERT INTO changes (at, kind, a, b, c) VALUES ($1, $2, $3, $4, $5) RETURNING id",
            &[&now_ms(), &kind, &a, &b, &c],
        )
        .await?
        .get(0);
    tx.execute("SELECT pg_notify($1, '')", &[&CHANNEL]).await?;
    Ok(id)
}

/// Records a change to `project/package` (see [`record_change`]); its id is the generation.
async fn record_package_change(
    tx: &Transaction<'_>,
    project: &str,
    package: &str,
) -> Result<i64, StoreError> {
    let change = Change::Package {
        project: project.to_string(),
        package: package.to_string(),
        generation: 0,
    };
    record_change(tx, &change).await
}

/// The listener: one connection of its own that `LISTEN`s, reads new changes on each
/// notification (and every [`POLL_CONNECTED`]), and reconnects with backoff when it drops,
/// telling subscribers to resynchronise since it cannot know what it missed.
async fn listen(
    config: tokio_postgres::Config,
    tls: MakeRustlsConnect,
    pool: Pool,
    feed: Feed,
    state: Arc<FeedState>,
) {
    let mut backoff = Duration::from_millis(100);
    let mut was_connected = true;
    loop {
        match listen_once(&config, &tls, &pool, &feed, &state, &mut was_connected).await {
            Ok(()) => return,
            Err(e) => {
                if state.connected.swap(false, Ordering::AcqRel) {
                    tracing::warn!(error = %e, "change feed lost; reconnecting");
                    // It was up: the first attempts come quickly again.
                    backoff = Duration::from_millis(100);
                }
                was_connected = false;
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

async fn listen_once(
    config: &tokio_postgres::Config,
    tls: &MakeRustlsConnect,
    pool: &Pool,
    feed: &Feed,
    state: &FeedState,
    was_connected: &mut bool,
) -> Result<(), StoreError> {
    use futures::StreamExt;
    let (client, mut connection) = config.connect(tls.clone()).await?;
    let (wake_tx, mut wake) = tokio::sync::mpsc::unbounded_channel::<()>();
    let driver = tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(tokio_postgres::AsyncMessage::Notification(_)) => {
                    let _ = wake_tx.send(());
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
    });
    let result = async {
        client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
        if !*was_connected {
            // What happened while we were away is unknown: everything is reloaded.
            tracing::info!("change feed reconnected; resynchronising");
            feed.send(Change::Resync);
            *was_connected = true;
        }
        state.connected.store(true, Ordering::Release);
        let mut last_prune = std::time::Instant::now();
        loop {
            read_changes(&client, feed, state).await?;
            if last_prune.elapsed() > POLL_CONNECTED * 6 {
                last_prune = std::time::Instant::now();
                if let Ok(c) = pool.get().await {
                    let _ = c
                        .execute(
                            "DELETE FROM changes WHERE at < $1",
                            &[&now_ms().saturating_sub(CHANGES_KEPT_MS)],
                        )
                        .await;
                }
            }
            tokio::select! {
                woke = wake.recv() => {
                    if woke.is_none() {
                        return Err(StoreError::Unavailable("the listening connection closed".into()));
                    }
                    // Coalesce a burst of notifications into one read.
                    while wake.try_recv().is_ok() {}
                }
                _ = tokio::time::sleep(POLL_CONNECTED) => {}
            }
        }
    }
    .await;
    driver.abort();
    result
}

async fn read_changes(
    client: &tokio_postgres::Client,
    feed: &Feed,
    state: &FeedState,
) -> Result<(), StoreError> {
    let last = state.last.load(Ordering::Acquire);
    let rows = client
        .query(
            "SELECT id, kind, a, b, c FROM changes WHERE id > $1 ORDER BY id",
            &[&last],
        )
        .await?;
    for row in rows {
        let id: i64 = row.get(0);
        if let Some(change) = Change::from_row(id, row.get(1), row.get(2), row.get(3), row.get(4)) {
            feed.send(change);
        }
        state.last.store(id, Ordering::Release);
    }
    Ok(())
}

#[async_trait::async_trait]
impl ChangeFeed for PgStore {
    async fn publish(&self, change: Change) -> Result<(), StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        record_change(&tx, &change).await?;
        tx.commit().await?;
        Ok(())
    }

    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Change> {
        self.feed.subscribe()
    }

    async fn health(&self) -> Health {
        let store = tokio::time::timeout(Duration::from_secs(2), async {
            self.client().await?.query_one("SELECT 1", &[]).await?;
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap_or_else(|_| Err(StoreError::Unavailable("PostgreSQL did not answer".into())))
        .map_err(|e| e.to_string());
        let feed = if self.state.connected.load(Ordering::Acquire) {
            Ok(())
        } else {
            Err("the change feed is not connected".to_string())
        };
        Health { store, feed }
    }

    fn engine(&self) -> &'static str {
        "postgres"
    }
}

const VERSION_COLUMNS: &str = "SELECT project, package, version, sha256, size, manifest, \
                               created_at, created_by FROM versions";

fn version_row(r: &Row) -> VersionRow {
    VersionRow {
        project: r.get(0),
        package: r.get(1),
        version: r.get(2),
        sha256: r.get(3),
        size: r.get(4),
        manifest: r.get(5),
        created_at: r.get(6),
        created_by: r.get(7),
    }
}

const CURRENT_COLUMNS: &str = "SELECT v.project, v.package, v.version, v.sha256, v.size, \
     v.manifest, v.created_at, v.created_by, p.generation FROM versions v JOIN packages p \
     ON p.project = v.project AND p.name = v.package AND p.current_version = v.version";

fn current_row(r: &Row) -> Current {
    Current {
        version: version_row(r),
        generation: r.get(8),
    }
}

fn no_package(project: &str, package: &str) -> StoreError {
    StoreError::NotFound(format!("no package {project}/{package}"))
}

fn no_version(project: &str, package: &str, version: i64) -> StoreError {
    StoreError::NotFound(format!(
        "package {project}/{package} has no version {version}"
    ))
}

async fn project_exists(c: &impl GenericClient, name: &str) -> Result<bool, StoreError> {
    Ok(c.query_one(
        "SELECT EXISTS (SELECT 1 FROM projects WHERE name = $1)",
        &[&name],
    )
    .await?
    .get(0))
}

#[async_trait::async_trait]
impl ProjectStore for PgStore {
    async fn create_project(&self, name: String, by: String) -> Result<(), StoreError> {
        let n = self
            .client()
            .await?
            .execute(
                "INSERT INTO projects (name, created_at, created_by) VALUES ($1, $2, $3) \
                 ON CONFLICT (name) DO NOTHING",
                &[&name, &now_ms(), &by],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::AlreadyExists(format!(
                "project {name:?} already exists"
            )));
        }
        Ok(())
    }

    async fn list_projects(&self) -> Result<Vec<ProjectRow>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT name, created_at, created_by, members_read_secrets FROM projects \
                 ORDER BY name",
                &[],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| ProjectRow {
                name: r.get(0),
                created_at: r.get(1),
                created_by: r.get(2),
                members_read_secrets: r.get(3),
            })
            .collect())
    }

    async fn members_read_secrets(&self, name: String) -> Result<bool, StoreError> {
        Ok(self
            .client()
            .await?
            .query_opt(
                "SELECT members_read_secrets FROM projects WHERE name = $1",
                &[&name],
            )
            .await?
            .is_some_and(|r| r.get(0)))
    }

    async fn set_members_read_secrets(&self, name: String, on: bool) -> Result<(), StoreError> {
        let n = self
            .client()
            .await?
            .execute(
                "UPDATE projects SET members_read_secrets = $2 WHERE name = $1",
                &[&name, &on],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("no project {name:?}")));
        }
        Ok(())
    }

    async fn project_exists(&self, name: String) -> Result<bool, StoreError> {
        project_exists(&self.client().await?, &name).await
    }

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
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let now = now_ms();
        if !project_exists(&tx, &project).await? {
            if !create_project {
                return Err(StoreError::NotFound(format!("no project {project:?}")));
            }
            tx.execute(
                "INSERT INTO projects (name, created_at, created_by) VALUES ($1, $2, $3) \
                 ON CONFLICT (name) DO NOTHING",
                &[&project, &now, &by],
            )
            .await?;
        }
        let size = bytes.len() as i64;
        tx.execute(
            "INSERT INTO blobs (sha256, size, bytes) VALUES ($1, $2, $3) \
             ON CONFLICT (sha256) DO NOTHING",
            &[&sha256, &size, &bytes.as_slice()],
        )
        .await?;
        tx.execute(
            "INSERT INTO packages (project, name, current_version, next_version, created_at) \
             VALUES ($1, $2, NULL, 1, $3) ON CONFLICT (project, name) DO NOTHING",
            &[&project, &package, &now],
        )
        .await?;
        // The row lock makes a concurrent deploy of the same package, from any host, wait
        // for this one and then read the number after ours.
        let version: i64 = tx
            .query_one(
                "SELECT next_version FROM packages WHERE project = $1 AND name = $2 FOR UPDATE",
                &[&project, &package],
            )
            .await?
            .get(0);
        tx.execute(
            "INSERT INTO versions (project, package, version, sha256, size, manifest, \
             created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                &project, &package, &version, &sha256, &size, &manifest, &now, &by,
            ],
        )
        .await?;
        let generation = record_package_change(&tx, &project, &package).await?;
        tx.execute(
            "UPDATE packages SET current_version = $3::BIGINT, next_version = $3::BIGINT + 1, \
             generation = $4 \
             WHERE project = $1 AND name = $2",
            &[&project, &package, &version, &generation],
        )
        .await?;
        crate::faults::point("upload.before_commit");
        tx.commit().await?;
        Ok(Committed {
            version,
            generation,
        })
    }

    async fn list_packages(&self, project: String) -> Result<Vec<PackageRow>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT p.project, p.name, p.current_version, \
                   (SELECT COUNT(*) FROM versions v WHERE v.project = p.project \
                      AND v.package = p.name), p.created_at \
                 FROM packages p WHERE p.project = $1 ORDER BY p.name",
                &[&project],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| PackageRow {
                project: r.get(0),
                name: r.get(1),
                current_version: r.get(2),
                versions: r.get(3),
                created_at: r.get(4),
            })
            .collect())
    }

    async fn list_versions(
        &self,
        project: String,
        package: String,
    ) -> Result<(PackageRow, Vec<VersionRow>), StoreError> {
        let c = self.client().await?;
        let pkg = c
            .query_opt(
                "SELECT project, name, current_version, created_at FROM packages \
                 WHERE project = $1 AND name = $2",
                &[&project, &package],
            )
            .await?
            .ok_or_else(|| no_package(&project, &package))?;
        let versions: Vec<VersionRow> = c
            .query(
                &format!("{VERSION_COLUMNS} WHERE project = $1 AND package = $2 ORDER BY version"),
                &[&project, &package],
            )
            .await?
            .iter()
            .map(version_row)
            .collect();
        Ok((
            PackageRow {
                project: pkg.get(0),
                name: pkg.get(1),
                current_version: pkg.get(2),
                versions: versions.len() as i64,
                created_at: pkg.get(3),
            },
            versions,
        ))
    }

    async fn version_with_blob(
        &self,
        project: String,
        package: String,
        version: i64,
    ) -> Result<(VersionRow, Vec<u8>), StoreError> {
        let c = self.client().await?;
        let row = c
            .query_opt(
                &format!("{VERSION_COLUMNS} WHERE project = $1 AND package = $2 AND version = $3"),
                &[&project, &package, &version],
            )
            .await?
            .map(|r| version_row(&r))
            .ok_or_else(|| no_version(&project, &package, version))?;
        let bytes: Vec<u8> = c
            .query_one("SELECT bytes FROM blobs WHERE sha256 = $1", &[&row.sha256])
            .await?
            .get(0);
        Ok((row, bytes))
    }

    async fn set_current(
        &self,
        project: String,
        package: String,
        version: i64,
    ) -> Result<i64, StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let exists: bool = tx
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM versions WHERE project = $1 AND package = $2 \
                 AND version = $3)",
                &[&project, &package, &version],
            )
            .await?
            .get(0);
        if !exists {
            return Err(no_version(&project, &package, version));
        }
        let generation = record_package_change(&tx, &project, &package).await?;
        tx.execute(
            "UPDATE packages SET current_version = $3, generation = $4 \
             WHERE project = $1 AND name = $2",
            &[&project, &package, &version, &generation],
        )
        .await?;
        tx.commit().await?;
        Ok(generation)
    }

    async fn delete_package(&self, project: String, package: String) -> Result<i64, StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let n = tx
            .execute(
                "DELETE FROM packages WHERE project = $1 AND name = $2",
                &[&project, &package],
            )
            .await?;
        if n == 0 {
            return Err(no_package(&project, &package));
        }
        tx.execute(
            "DELETE FROM blobs b WHERE NOT EXISTS \
             (SELECT 1 FROM versions v WHERE v.sha256 = b.sha256)",
            &[],
        )
        .await?;
        let generation = record_package_change(&tx, &project, &package).await?;
        tx.commit().await?;
        Ok(generation)
    }

    async fn current_versions(&self) -> Result<Vec<Current>, StoreError> {
        Ok(self
            .client()
            .await?
            .query(
                &format!("{CURRENT_COLUMNS} ORDER BY v.project, v.package"),
                &[],
            )
            .await?
            .iter()
            .map(current_row)
            .collect())
    }

    async fn current(
        &self,
        project: String,
        package: String,
    ) -> Result<Option<Current>, StoreError> {
        Ok(self
            .client()
            .await?
            .query_opt(
                &format!("{CURRENT_COLUMNS} WHERE p.project = $1 AND p.name = $2"),
                &[&project, &package],
            )
            .await?
            .map(|r| current_row(&r)))
    }

    async fn blob(&self, sha256: String) -> Result<Vec<u8>, StoreError> {
        self.client()
            .await?
            .query_opt("SELECT bytes FROM blobs WHERE sha256 = $1", &[&sha256])
            .await?
            .map(|r| r.get(0))
            .ok_or_else(|| StoreError::NotFound(format!("no blob {sha256}")))
    }
}

const SECRET_COLUMNS: &str = "SELECT name, version, nonce, ciphertext, updated_at, updated_by, \
     description, labels FROM secrets";

fn secret_row(r: &Row) -> SecretRow {
    SecretRow {
        name: r.get(0),
        version: r.get(1),
        nonce: r.get(2),
        ciphertext: r.get(3),
        updated_at: r.get(4),
        updated_by: r.get(5),
        description: r.get(6),
        labels: r.get(7),
    }
}

/// Keeps `version` of a secret among its versions and drops those older than its last
/// `keep`.
#[allow(clippy::too_many_arguments)]
async fn keep_version(
    tx: &Transaction<'_>,
    scope: &str,
    owner: &str,
    name: &str,
    version: i64,
    nonce: &[u8],
    ciphertext: &[u8],
    by: &str,
    keep: i64,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO secret_versions (scope, owner, name, version, nonce, ciphertext, \
         created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (scope, owner, name, version) DO UPDATE SET nonce = excluded.nonce, \
         ciphertext = excluded.ciphertext, created_at = excluded.created_at, \
         created_by = excluded.created_by",
        &[
            &scope,
            &owner,
            &name,
            &version,
            &nonce,
            &ciphertext,
            &now_ms(),
            &by,
        ],
    )
    .await?;
    tx.execute(
        "DELETE FROM secret_versions WHERE scope = $1 AND owner = $2 AND name = $3 \
         AND version <= $4",
        &[&scope, &owner, &name, &(version - keep.max(1))],
    )
    .await?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn secret_write_in(
    tx: &Transaction<'_>,
    scope: &str,
    owner: &str,
    name: &str,
    nonce: &[u8],
    ciphertext: &[u8],
    by: &str,
    mode: Option<bool>,
) -> Result<i64, StoreError> {
    match mode {
        Some(true) => {
            let n = tx
                .execute(
                    "INSERT INTO secrets (scope, owner, name, version, nonce, ciphertext, \
                     updated_at, updated_by) VALUES ($1, $2, $3, 1, $4, $5, $6, $7) \
                     ON CONFLICT (scope, owner, name) DO NOTHING",
                    &[&scope, &owner, &name, &nonce, &ciphertext, &now_ms(), &by],
                )
                .await?;
            if n == 0 {
                return Err(StoreError::AlreadyExists(format!(
                    "{scope} secret {name} already exists"
                )));
            }
            Ok(1)
        }
        Some(false) => tx
            .query_opt(
                "UPDATE secrets SET version = version + 1, nonce = $4, ciphertext = $5, \
                 updated_at = $6, updated_by = $7 \
                 WHERE scope = $1 AND owner = $2 AND name = $3 RETURNING version",
                &[&scope, &owner, &name, &nonce, &ciphertext, &now_ms(), &by],
            )
            .await?
            .map(|r| r.get(0))
            .ok_or_else(|| StoreError::NotFound(format!("no {scope} secret {name}"))),
        None => Ok(tx
            .query_one(
                "INSERT INTO secrets (scope, owner, name, version, nonce, ciphertext, \
                 updated_at, updated_by) VALUES ($1, $2, $3, 1, $4, $5, $6, $7) \
                 ON CONFLICT (scope, owner, name) DO UPDATE SET \
                 version = secrets.version + 1, nonce = excluded.nonce, \
                 ciphertext = excluded.ciphertext, updated_at = excluded.updated_at, \
                 updated_by = excluded.updated_by RETURNING version",
                &[&scope, &owner, &name, &nonce, &ciphertext, &now_ms(), &by],
            )
            .await?
            .get(0)),
    }
}

#[async_trait::async_trait]
impl CipherStore for PgStore {
    async fn secret_get(
        &self,
        scope: &'static str,
        owner: String,
        name: String,
    ) -> Result<Option<SecretRow>, StoreError> {
        Ok(self
            .client()
            .await?
            .query_opt(
                &format!("{SECRET_COLUMNS} WHERE scope = $1 AND owner = $2 AND name = $3"),
                &[&scope, &owner, &name],
            )
            .await?
            .map(|r| secret_row(&r)))
    }

    async fn secret_list(
        &self,
        scope: &'static str,
        owner: String,
    ) -> Result<Vec<SecretRow>, StoreError> {
        Ok(self
            .client()
            .await?
            .query(
                &format!("{SECRET_COLUMNS} WHERE scope = $1 AND owner = $2 ORDER BY name"),
                &[&scope, &owner],
            )
            .await?
            .iter()
            .map(secret_row)
            .collect())
    }

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
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let version =
            secret_write_in(&tx, scope, &owner, &name, &nonce, &ciphertext, &by, mode).await?;
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
        )
        .await?;
        tx.commit().await?;
        Ok(version)
    }

    async fn secret_import(
        &self,
        scope: &'static str,
        owner: String,
        entries: Vec<(String, Vec<u8>, Vec<u8>)>,
        by: String,
        keep: i64,
    ) -> Result<(), StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        for (name, nonce, ciphertext) in &entries {
            let version =
                secret_write_in(&tx, scope, &owner, name, nonce, ciphertext, &by, None).await?;
            keep_version(
                &tx, scope, &owner, name, version, nonce, ciphertext, &by, keep,
            )
            .await?;
            crate::faults::point("import.write");
        }
        tx.commit().await?;
        Ok(())
    }

    async fn wrap_insert(
        &self,
        hash: String,
        name: String,
        nonce: Vec<u8>,
        ciphertext: Vec<u8>,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let c = self.client().await?;
        c.execute(
            "INSERT INTO wraps (hash, name, nonce, ciphertext, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
            &[&hash, &name, &nonce, &ciphertext, &expires_at],
        )
        .await?;
        c.execute("DELETE FROM wraps WHERE expires_at <= $1", &[&now_ms()])
            .await?;
        Ok(())
    }

    async fn wrap_take(
        &self,
        hash: String,
    ) -> Result<Option<(String, Vec<u8>, Vec<u8>)>, StoreError> {
        let row = self
            .client()
            .await?
            .query_opt(
                "DELETE FROM wraps WHERE hash = $1 RETURNING name, nonce, ciphertext, expires_at",
                &[&hash],
            )
            .await?;
        Ok(row
            .filter(|r| r.get::<_, i64>(3) > now_ms())
            .map(|r| (r.get(0), r.get(1), r.get(2))))
    }

    async fn issued_wrap_insert(&self, hash: String, expires_at: i64) -> Result<(), StoreError> {
        let c = self.client().await?;
        c.execute(
            "INSERT INTO issued_wraps (hash, expires_at) VALUES ($1, $2) \
             ON CONFLICT (hash) DO NOTHING",
            &[&hash, &expires_at],
        )
        .await?;
        c.execute(
            "DELETE FROM issued_wraps WHERE expires_at <= $1",
            &[&now_ms()],
        )
        .await?;
        Ok(())
    }

    async fn issued_wrap_take(&self, hash: String) -> Result<bool, StoreError> {
        let at: Option<i64> = self
            .client()
            .await?
            .query_opt(
                "DELETE FROM issued_wraps WHERE hash = $1 RETURNING expires_at",
                &[&hash],
            )
            .await?
            .map(|r| r.get(0));
        Ok(at.is_some_and(|at| at > now_ms()))
    }

    async fn secret_delete(
        &self,
        scope: &'static str,
        owner: String,
        name: String,
    ) -> Result<bool, StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        tx.execute(
            "DELETE FROM secret_versions WHERE scope = $1 AND owner = $2 AND name = $3",
            &[&scope, &owner, &name],
        )
        .await?;
        let found = tx
            .execute(
                "DELETE FROM secrets WHERE scope = $1 AND owner = $2 AND name = $3",
                &[&scope, &owner, &name],
            )
            .await?
            > 0;
        tx.commit().await?;
        Ok(found)
    }

    async fn secret_versions(
        &self,
        scope: &'static str,
        owner: String,
        name: String,
    ) -> Result<Vec<SecretVersionRow>, StoreError> {
        Ok(self
            .client()
            .await?
            .query(
                "SELECT version, created_at, created_by FROM secret_versions \
                 WHERE scope = $1 AND owner = $2 AND name = $3 ORDER BY version",
                &[&scope, &owner, &name],
            )
            .await?
            .iter()
            .map(|r| SecretVersionRow {
                version: r.get(0),
                created_at: r.get(1),
                created_by: r.get(2),
            })
            .collect())
    }

    async fn secret_get_version(
        &self,
        scope: &'static str,
        owner: String,
        name: String,
        version: i64,
    ) -> Result<Option<SecretRow>, StoreError> {
        Ok(self
            .client()
            .await?
            .query_opt(
                "SELECT v.name, v.version, v.nonce, v.ciphertext, v.created_at, v.created_by, \
                 s.description, s.labels FROM secret_versions v JOIN secrets s \
                 ON s.scope = v.scope AND s.owner = v.owner AND s.name = v.name \
                 WHERE v.scope = $1 AND v.owner = $2 AND v.name = $3 AND v.version = $4",
                &[&scope, &owner, &name, &version],
            )
            .await?
            .map(|r| secret_row(&r)))
    }

    async fn secret_annotate(
        &self,
        scope: &'static str,
        owner: String,
        name: String,
        description: Option<String>,
        labels: Option<String>,
    ) -> Result<bool, StoreError> {
        Ok(self
            .client()
            .await?
            .execute(
                "UPDATE secrets SET description = COALESCE($4, description), \
                 labels = COALESCE($5, labels) \
                 WHERE scope = $1 AND owner = $2 AND name = $3",
                &[&scope, &owner, &name, &description, &labels],
            )
            .await?
            > 0)
    }
}
