//! The change feed: deploys, rollbacks, package deletes, secret writes, token revocations and
//! membership changes, heard by every host that shares the store.
//!
//! On SQLite (one host) it is an in-process broadcast. On PostgreSQL each change is a row of
//! the `changes` table, written in the transaction that makes the change, and announced with
//! `NOTIFY`; each host reads the rows after the last one it saw, on a notification or on a
//! poll, so a lost connection loses nothing but time.

use super::StoreError;
use tokio::sync::broadcast;

/// How many changes a slow subscriber may fall behind before it is told to resynchronise.
const CAPACITY: usize = 4096;

/// One change, as every host hears it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A package was deployed, rolled back or deleted.
    Package {
        /// Its project.
        project: String,
        /// Its name.
        package: String,
        /// The change's id: a host serving an older generation reloads.
        generation: i64,
    },
    /// A secret was written or deleted through Edgeward.
    Secret {
        /// Its scope (`package`, `project`, `platform`, `user`).
        scope: String,
        /// Its owner's key within the scope (`""`, `p`, `p/pkg`, `user`).
        owner: String,
        /// Its name.
        name: String,
    },
    /// A user's tokens, key slots or memberships changed.
    Identity {
        /// The user.
        user: String,
    },
    /// The feed was interrupted or a subscriber fell behind: everything derived from the
    /// store must be reloaded.
    Resync,
}

impl Change {
    /// The change as a `changes` row: (kind, a, b, c).
    pub fn to_row(&self) -> (&'static str, &str, &str, &str) {
        match self {
            Change::Package {
                project, package, ..
            } => ("package", project, package, ""),
            Change::Secret { scope, owner, name } => ("secret", scope, owner, name),
            Change::Identity { user } => ("identity", user, "", ""),
            Change::Resync => ("resync", "", "", ""),
        }
    }

    /// The change a `changes` row `id` describes, if its kind is known.
    pub fn from_row(id: i64, kind: &str, a: String, b: String, c: String) -> Option<Change> {
        Some(match kind {
            "package" => Change::Package {
                project: a,
                package: b,
                generation: id,
            },
            "secret" => Change::Secret {
                scope: a,
                owner: b,
                name: c,
            },
            "identity" => Change::Identity { user: a },
            "resync" => Change::Resync,
            _ => return None,
        })
    }
}

/// The in-process side of the feed: what this host's subscribers receive.
#[derive(Debug, Clone)]
pub struct Feed(broadcast::Sender<Change>);

impl Default for Feed {
    fn default() -> Feed {
        Feed(broadcast::channel(CAPACITY).0)
    }
}

impl Feed {
    /// Hands `change` to this host's subscribers (none listening is fine).
    pub fn send(&self, change: Change) {
        let _ = self.0.send(change);
    }

    /// A new subscriber.
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.0.subscribe()
    }
}

/// Whether the store and its feed can be reached, for `/v1/ready`.
#[derive(Debug, Clone)]
pub struct Health {
    /// The database answered a query (or why not).
    pub store: Result<(), String>,
    /// The feed is connected and caught up (or why not).
    pub feed: Result<(), String>,
}

/// The change feed of a store.
#[async_trait::async_trait]
pub trait ChangeFeed: Send + Sync {
    /// Publishes a change made outside the store (a secret written to Vault) to every host,
    /// this one included.
    async fn publish(&self, change: Change) -> Result<(), StoreError>;

    /// Changes from now on, from every host.
    fn subscribe(&self) -> broadcast::Receiver<Change>;

    /// Whether the database answers and the feed is connected.
    async fn health(&self) -> Health;

    /// The engine's name: `sqlite` or `postgres`.
    fn engine(&self) -> &'static str;
}
