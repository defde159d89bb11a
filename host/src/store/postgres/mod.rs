//! The PostgreSQL metadata store, for clusters: any number of stateless hosts share one
//! database. Queries go through a pool (deadpool-postgres over tokio-postgres); the change
//! feed is a `changes` table announced with `LISTEN/NOTIFY`.
//!
//! What the SQLite engine decides under its one connection, this one decides in the database:
//! version numbers under a row lock on the package (`SELECT … FOR UPDATE`), and the order of
//! changes under a transaction-scoped advisory lock taken last, so change ids commit in
//! increasing order and a reader that has seen id N has seen every committed change before it.

mod audit;
mod ciphers;
mod connect;
mod executions;
mod feed;
mod identity;
mod projects;

pub use connect::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_POOL_SIZE, MAX_POOL_SIZE, PgOptions, SslMode};

/// Checks `url` and `options` without connecting.
pub(super) fn check(url: &str, options: &PgOptions) -> Result<(), String> {
    connect::target(url, options).map(|_| ())
}

use crate::store::*;
use deadpool_postgres::{GenericClient, Transaction};
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use feed::{FeedState, listen, record_change, record_package_change};
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
    include_str!("migrations/0001.sql"),
    include_str!("migrations/0002.sql"),
    include_str!("migrations/0003.sql"),
    include_str!("migrations/0004.sql"),
    include_str!("migrations/0005.sql"),
    include_str!("migrations/0006.sql"),
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

    /// Rows older than a page's cursor (start time, id) in `ORDER BY started_at DESC, id DESC`.
    fn before(&mut self, cursor: Option<(i64, String)>) -> &mut Self {
        if let Some((at, id)) = cursor {
            self.args.push(Box::new(at));
            self.args.push(Box::new(id));
            let n = self.args.len();
            self.sql
                .push_str(&format!(" AND (started_at, id) < (${}, ${n})", n - 1));
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
