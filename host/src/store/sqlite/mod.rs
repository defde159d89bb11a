//! The SQLite metadata store: one file under the data directory, one connection behind a
//! mutex, queries on blocking threads. The zero-setup default.
//!
//! Every multi-step change is one transaction, so a crash leaves the previous state. The schema
//! is versioned (`PRAGMA user_version`) and migrated forward on open.

mod audit;
mod ciphers;
mod executions;
mod identity;
mod projects;

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
    include_str!("migrations/0001.sql"),
    include_str!("migrations/0002.sql"),
    include_str!("migrations/0003.sql"),
    include_str!("migrations/0004.sql"),
    include_str!("migrations/0005.sql"),
    include_str!("migrations/0006.sql"),
    include_str!("migrations/0007.sql"),
    include_str!("migrations/0008.sql"),
    include_str!("migrations/0009.sql"),
    include_str!("migrations/0010.sql"),
];

/// Changes kept in the `changes` table; one host needs none of them, they only number
/// generations.
const CHANGES_KEPT: i64 = 1000;

/// The SQLite store.
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    /// A second, read-only connection for the guests' secret reads (cache misses): under WAL
    /// it reads the last commit while `conn` is busy, so a miss does not wait behind a batch
    /// of execution records or their retention (a stall of ~0.6 s measured under a flood;
    /// BENCHMARKS.md, issue 30).
    reader: Arc<Mutex<Connection>>,
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
        let reader = Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        reader.execute_batch("PRAGMA busy_timeout = 5000; PRAGMA query_only = ON;")?;
        Ok(SqliteStore {
            conn: Arc::new(Mutex::new(conn)),
            reader: Arc::new(Mutex::new(reader)),
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
        Self::on(self.conn.clone(), f).await
    }

    /// Runs the read `f` on the read-only connection in a blocking task.
    async fn read<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<R, StoreError> + Send + 'static,
    {
        Self::on(self.reader.clone(), f).await
    }

    async fn on<R, F>(conn: Arc<Mutex<Connection>>, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<R, StoreError> + Send + 'static,
    {
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

    /// A guest's secret read (a cache miss) is answered from the last commit while the
    /// writing connection is busy (a batch of records, their retention), not after it.
    #[tokio::test]
    async fn a_secret_read_does_not_wait_behind_the_writer() {
        use crate::store::CipherStore;
        let tmp = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&tmp.path().join("db")).unwrap();
        let v = store
            .secret_write(
                "platform",
                String::new(),
                "KEY".into(),
                vec![1; 12],
                vec![2; 32],
                "admin".into(),
                crate::store::WriteMode::Upsert,
                10,
            )
            .await
            .unwrap();
        // The writer is held for 3 s, as by a long write transaction.
        let conn = store.conn.clone();
        let (held_tx, held_rx) = std::sync::mpsc::channel();
        let holder = std::thread::spawn(move || {
            let _busy = conn.lock().unwrap();
            held_tx.send(()).unwrap();
            std::thread::sleep(std::time::Duration::from_secs(3));
        });
        held_rx.recv().unwrap();
        let read = tokio::time::timeout(
            std::time::Duration::from_secs(1),
            store.secret_get("platform", String::new(), "KEY".into()),
        )
        .await
        .expect("the read waited for the writer")
        .unwrap()
        .expect("the committed secret");
        assert_eq!((read.version, read.ciphertext), (v, vec![2; 32]));
        holder.join().unwrap();
    }

    #[tokio::test]
    async fn versions_rollback_and_delete() {
        let tmp = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&tmp.path().join("db")).unwrap();
        let blob = Arc::new(vec![1u8, 2, 3]);
        let add = |sha: &str| {
            store.add_version(NewVersion {
                project: "acme".into(),
                package: "hello".into(),
                sha256: sha.into(),
                bytes: blob.clone(),
                manifest: "{}".into(),
                by: "admin".into(),
                create_project: true,
            })
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
