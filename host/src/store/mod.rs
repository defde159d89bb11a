//! The metadata store: projects, packages, versions, package blobs, identities, execution
//! records, the audit log and the embedded backend's ciphertexts, behind one trait per
//! aggregate, with two engines:
//!
//! - [`sqlite`]: one file under the data directory, the zero-setup default;
//! - [`postgres`]: one database shared by any number of hosts (cluster mode).
//!
//! Each engine also carries the [change feed](ChangeFeed): what one host changes, every host
//! hears of, so serving tables and caches follow the database instead of a TTL. No module
//! outside this one names a database driver, and [`StoreError`] carries no driver type.

mod audit;
mod executions;
mod feed;
mod identity;
pub mod postgres;
pub mod sqlite;

pub use audit::{AuditFilter, AuditRow, AuditStore};
pub use executions::{
    CredentialLog, CredentialRefusal, CredentialUse, ExecutionFilter, ExecutionRow, ExecutionStore,
    OutboundHost, RefusalKind,
};
pub use feed::{Change, ChangeFeed, Feed, Health};
pub use identity::{
    Enrollment, GrantRow, IdentityStore, KeyOrigin, KeySlot, MemberRow, NewToken, PendingRow,
    RESERVED_USER_NAMES, Redemption, Revoked, Role, TokenOwner, TokenRow, UserRow,
};
pub use postgres::{PgOptions, SslMode};

/// How a write treats an existing secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// Create or replace (`set`).
    Upsert,
    /// Create only; `AlreadyExists` if present.
    Create,
    /// Replace only; `NotFound` if absent.
    Update,
}

/// A package version to record ([`ProjectStore::add_version`]). Its `Debug` gives the
/// component's size, not its bytes.
#[derive(Clone)]
pub struct NewVersion {
    /// The project (created when `create_project` and missing).
    pub project: String,
    /// The package (created if missing).
    pub package: String,
    /// The component's sha256 (its blob's key).
    pub sha256: String,
    /// The component's bytes.
    pub bytes: Arc<Vec<u8>>,
    /// The manifest, as JSON.
    pub manifest: String,
    /// Who deploys.
    pub by: String,
    /// Whether a missing project may be created (a platform admin's deploy).
    pub create_project: bool,
}

impl std::fmt::Debug for NewVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewVersion")
            .field("project", &self.project)
            .field("package", &self.package)
            .field("sha256", &self.sha256)
            .field("bytes", &self.bytes.len())
            .field("by", &self.by)
            .field("create_project", &self.create_project)
            .finish_non_exhaustive()
    }
}
use std::path::Path;
use std::sync::Arc;

/// A log directive capping the PostgreSQL driver at `info`: at debug it logs every
/// statement's parameters. Applied after `EDGEWARD_LOG`, so no filter can lift it.
pub const DRIVER_LOG_CAP: &str = "tokio_postgres=info";

/// Errors from the metadata store. Messages name what was asked for, never a driver's types.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The thing asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The thing to create exists already.
    #[error("{0}")]
    AlreadyExists(String),
    /// A name that is reserved.
    #[error("{0}")]
    Reserved(String),
    /// The change conflicts with the current state (a project that still has packages).
    #[error("{0}")]
    Conflict(String),
    /// The database cannot be reached (connection refused, lost, or the pool timed out).
    #[error("metadata store unavailable: {0}")]
    Unavailable(String),
    /// The database answered with an error.
    #[error("metadata store: {0}")]
    Backend(String),
    /// The blocking task running the query died.
    #[error("metadata store task failed: {0}")]
    Task(String),
}

/// A project.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProjectRow {
    /// Its name.
    pub name: String,
    /// Creation time, Unix milliseconds.
    pub created_at: i64,
    /// Who created it.
    pub created_by: String,
    /// Whether every member may read its project-scope secret values (off by default).
    pub members_read_secrets: bool,
}

/// A package and its current version.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PackageRow {
    /// Its project.
    pub project: String,
    /// Its name.
    pub name: String,
    /// The version that serves requests.
    pub current_version: Option<i64>,
    /// How many versions are kept.
    pub versions: i64,
    /// Creation time, Unix milliseconds.
    pub created_at: i64,
}

/// One uploaded version of a package.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VersionRow {
    /// Its project.
    pub project: String,
    /// Its package.
    pub package: String,
    /// Its number, from 1, never reused within a package.
    pub version: i64,
    /// The component's sha256, hex.
    pub sha256: String,
    /// The component's size in bytes.
    pub size: i64,
    /// The manifest, as normalised JSON.
    pub manifest: String,
    /// Upload time, Unix milliseconds.
    pub created_at: i64,
    /// Who uploaded it.
    pub created_by: String,
}

/// A stored ciphertext of the embedded secret backend.
#[derive(Debug, Clone)]
pub struct SecretRow {
    /// The secret's name.
    pub name: String,
    /// Its version.
    pub version: i64,
    /// The AEAD nonce.
    pub nonce: Vec<u8>,
    /// The AEAD ciphertext (with tag).
    pub ciphertext: Vec<u8>,
    /// Last write time, Unix milliseconds.
    pub updated_at: i64,
    /// Who wrote it last.
    pub updated_by: String,
    /// Its description.
    pub description: String,
    /// Its labels, as a JSON object of strings.
    pub labels: String,
}

/// One kept version of an embedded-backend secret.
#[derive(Debug, Clone)]
pub struct SecretVersionRow {
    /// Its number.
    pub version: i64,
    /// When it was written, Unix milliseconds.
    pub created_at: i64,
    /// Who wrote it.
    pub created_by: String,
}

/// The current time in Unix milliseconds.
pub fn now_ms() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(now.as_millis()).unwrap_or(i64::MAX)
}

/// A package's current version with the generation of the change that made it current.
#[derive(Debug, Clone)]
pub struct Current {
    /// The version.
    pub version: VersionRow,
    /// The id of the last change to the package; greater means newer, across all hosts.
    pub generation: i64,
}

/// What [`ProjectStore::add_version`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Committed {
    /// The new version number.
    pub version: i64,
    /// The id of the change (see [`Current::generation`]).
    pub generation: i64,
}

/// Projects, packages, versions and package blobs.
#[async_trait::async_trait]
pub trait ProjectStore: Send + Sync {
    /// Creates a project; `AlreadyExists` if it exists.
    async fn create_project(&self, name: String, by: String) -> Result<(), StoreError>;

    /// All projects, by name.
    async fn list_projects(&self) -> Result<Vec<ProjectRow>, StoreError>;

    /// Whether project `name` exists.
    async fn project_exists(&self, name: String) -> Result<bool, StoreError>;

    /// Deletes project `name` with its members, its users' grants to its packages and its
    /// execution records, in one transaction. `NotFound` if there is no such project;
    /// `Conflict` while it has packages (delete them first, each through
    /// [`ProjectStore::delete_package`], so servers stop serving them).
    async fn delete_project(&self, name: String) -> Result<(), StoreError>;

    /// Whether every member of project `name` may read its project-scope secret values
    /// (false for an absent project).
    async fn members_read_secrets(&self, name: String) -> Result<bool, StoreError>;

    /// Sets [`ProjectStore::members_read_secrets`]; `NotFound` for an absent project.
    async fn set_members_read_secrets(&self, name: String, on: bool) -> Result<(), StoreError>;

    /// Records a new version of `project/package` with its blob and makes it current, in one
    /// transaction that also decides the version number (concurrent calls from any number of
    /// hosts each get their own). Creates the project (when `create_project`) and the package
    /// if missing. Publishes a [`Change::Package`].
    async fn add_version(&self, version: NewVersion) -> Result<Committed, StoreError>;

    /// The packages of `project`.
    async fn list_packages(&self, project: String) -> Result<Vec<PackageRow>, StoreError>;

    /// The versions of `project/package`, oldest first; `NotFound` if there is no such package.
    async fn list_versions(
        &self,
        project: String,
        package: String,
    ) -> Result<(PackageRow, Vec<VersionRow>), StoreError>;

    /// One version with its blob.
    async fn version_with_blob(
        &self,
        project: String,
        package: String,
        version: i64,
    ) -> Result<(VersionRow, Vec<u8>), StoreError>;

    /// Points `project/package` at `version`; returns the change's generation and publishes a
    /// [`Change::Package`].
    async fn set_current(
        &self,
        project: String,
        package: String,
        version: i64,
    ) -> Result<i64, StoreError>;

    /// Deletes `project/package`, its versions, and blobs no other version uses; returns the
    /// change's generation (and publishes a [`Change::Package`]) and the sha256 of each blob
    /// deleted (whose compiled artifacts may go too).
    async fn delete_package(
        &self,
        project: String,
        package: String,
    ) -> Result<(i64, Vec<String>), StoreError>;

    /// Deletes the versions of `project/package` older than its newest `keep`, never the
    /// current one, and the blobs no version uses any more; the sha256 of each blob deleted
    /// (whose compiled artifacts may go too). Nothing serving changes, so no change is published.
    async fn prune_versions(
        &self,
        project: String,
        package: String,
        keep: u32,
    ) -> Result<Vec<String>, StoreError>;

    /// The current version of every package, for loading at start.
    async fn current_versions(&self) -> Result<Vec<Current>, StoreError>;

    /// The current version of one package, if it exists and has one.
    async fn current(
        &self,
        project: String,
        package: String,
    ) -> Result<Option<Current>, StoreError>;

    /// The bytes of blob `sha256`.
    async fn blob(&self, sha256: String) -> Result<Vec<u8>, StoreError>;

    /// The sha256 of every blob (every component some version uses).
    async fn blob_names(&self) -> Result<Vec<String>, StoreError>;
}

/// The embedded secret backend's ciphertexts and wrapped values.
#[async_trait::async_trait]
pub trait CipherStore: Send + Sync {
    /// Reads one embedded-backend ciphertext.
    async fn secret_get(
        &self,
        scope: &'static str,
        owner: String,
        name: String,
    ) -> Result<Option<SecretRow>, StoreError>;

    /// Lists the embedded-backend ciphertexts of one owner in one scope.
    async fn secret_list(
        &self,
        scope: &'static str,
        owner: String,
    ) -> Result<Vec<SecretRow>, StoreError>;

    /// Writes one embedded-backend ciphertext, bumping its version, and keeps it among the
    /// secret's last `keep` versions; returns the new version. `mode` is `None` for upsert,
    /// `Some(true)` for create-only, `Some(false)` for update-only.
    #[allow(clippy::too_many_arguments)]
    async fn secret_write(
        &self,
        scope: &'static str,
        owner: String,
        name: String,
        nonce: Vec<u8>,
        ciphertext: Vec<u8>,
        by: String,
        mode: WriteMode,
        keep: i64,
    ) -> Result<i64, StoreError>;

    /// Upserts many ciphertexts of one owner in one transaction: all or none.
    async fn secret_import(
        &self,
        scope: &'static str,
        owner: String,
        entries: Vec<(String, Vec<u8>, Vec<u8>)>,
        by: String,
        keep: i64,
    ) -> Result<(), StoreError>;

    /// The kept versions of one embedded-backend secret, oldest first (none if absent).
    async fn secret_versions(
        &self,
        scope: &'static str,
        owner: String,
        name: String,
    ) -> Result<Vec<SecretVersionRow>, StoreError>;

    /// One kept version's ciphertext (the row's description and labels are the secret's).
    async fn secret_get_version(
        &self,
        scope: &'static str,
        owner: String,
        name: String,
        version: i64,
    ) -> Result<Option<SecretRow>, StoreError>;

    /// Replaces one embedded-backend secret's description and labels (those given); whether
    /// it exists.
    async fn secret_annotate(
        &self,
        scope: &'static str,
        owner: String,
        name: String,
        description: Option<String>,
        labels: Option<String>,
    ) -> Result<bool, StoreError>;

    /// Stores a wrapped value under the hash of its token.
    async fn wrap_insert(
        &self,
        hash: String,
        name: String,
        nonce: Vec<u8>,
        ciphertext: Vec<u8>,
        expires_at: i64,
    ) -> Result<(), StoreError>;

    /// Removes and returns the wrapped value for `hash` if it has not expired: single use.
    async fn wrap_take(
        &self,
        hash: String,
    ) -> Result<Option<(String, Vec<u8>, Vec<u8>)>, StoreError>;

    /// Remembers a wrapping token Edgeward handed out (by hash), so that unwrap redeems only
    /// tokens it created.
    async fn issued_wrap_insert(&self, hash: String, expires_at: i64) -> Result<(), StoreError>;

    /// Forgets a wrapping token Edgeward handed out; whether it was known and unexpired.
    async fn issued_wrap_take(&self, hash: String) -> Result<bool, StoreError>;

    /// Deletes one embedded-backend secret; whether it existed.
    async fn secret_delete(
        &self,
        scope: &'static str,
        owner: String,
        name: String,
    ) -> Result<bool, StoreError>;
}

/// Everything a host needs of its metadata store.
pub trait Metadata:
    ProjectStore + CipherStore + IdentityStore + ExecutionStore + AuditStore + ChangeFeed + 'static
{
}

impl<T> Metadata for T where
    T: ProjectStore
        + CipherStore
        + IdentityStore
        + ExecutionStore
        + AuditStore
        + ChangeFeed
        + 'static
{
}

/// A handle to the metadata store; cheap to clone. Derefs to [`Metadata`], so every aggregate's
/// methods are called on it directly.
#[derive(Clone)]
pub struct Store(Arc<dyn Metadata>);

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("engine", &self.0.engine())
            .finish_non_exhaustive()
    }
}

impl std::ops::Deref for Store {
    type Target = dyn Metadata;
    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

impl Store {
    /// Wraps an engine.
    pub fn new(engine: impl Metadata) -> Store {
        Store(Arc::new(engine))
    }

    /// Opens (creating if needed) the SQLite file at `path` and migrates it.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Ok(Store::new(sqlite::SqliteStore::open(path)?))
    }

    /// Connects to the PostgreSQL database at `url` and migrates it.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        Store::connect_with(url, &PgOptions::default()).await
    }

    /// Connects to the PostgreSQL database at `url` as `options` say (CA, pool, timeout) and
    /// migrates it.
    pub async fn connect_with(url: &str, options: &PgOptions) -> Result<Store, StoreError> {
        Ok(Store::new(postgres::PgStore::connect(url, options).await?))
    }

    /// Checks a PostgreSQL store URL and its options (`sslmode`, the CA file, pool size,
    /// timeout) without connecting: what `edgeward serve` refuses at start.
    pub fn check_url(url: &str, options: &PgOptions) -> Result<(), String> {
        postgres::check(url, options)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// The engines are this module's business: no other module names a database driver.
    #[test]
    fn no_module_outside_the_store_names_a_database_driver() {
        fn walk(dir: &Path, found: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    if !path.ends_with("store") {
                        walk(&path, found);
                    }
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    for driver in ["rusqlite", "tokio_postgres", "deadpool"] {
                        if text.contains(driver) {
                            found.push(format!("{} names {driver}", path.display()));
                        }
                    }
                }
            }
        }
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut found = Vec::new();
        walk(&src, &mut found);
        assert!(found.is_empty(), "{found:?}");
        // And the walk does look: the store itself names its drivers.
        let store = std::fs::read_to_string(src.join("store/postgres/mod.rs")).unwrap();
        assert!(store.contains("tokio_postgres"));
    }

    /// The upgrade rule (docs/SCALING.md, "Upgrades"): migrations only add, so a host of the
    /// previous release keeps working against a database this one migrated. No SQL in the
    /// store, migrations or queries, drops, renames or retypes a table, column or index.
    #[test]
    fn no_sql_in_the_store_drops_renames_or_retypes() {
        fn walk(dir: &Path, found: &mut Vec<String>, read: &mut usize) {
            for entry in std::fs::read_dir(dir).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, found, read);
                } else if path.extension().is_some_and(|e| e == "rs" || e == "sql") {
                    *read += 1;
                    let text = std::fs::read_to_string(&path).unwrap().to_uppercase();
                    for words in [
                        "DROP TABLE",
                        "DROP COLUMN",
                        "DROP INDEX",
                        "RENAME ",
                        "ALTER COLUMN",
                        "TRUNCATE ",
                    ] {
                        // Not this test's own list.
                        if text.matches(words).count() > usize::from(path.ends_with("store/mod.rs"))
                        {
                            found.push(format!("{} says {words}", path.display()));
                        }
                    }
                }
            }
        }
        let store = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("src")
            .join("store");
        let (mut found, mut read) = (Vec::new(), 0);
        walk(&store, &mut found, &mut read);
        assert!(
            found.is_empty(),
            "{found:?}: a migration that takes away breaks the hosts of the previous release \
             (docs/SCALING.md, Upgrades); if it must, say so in the release notes and here"
        );
        assert!(read >= 4, "the walk read {read} files");
    }
}
