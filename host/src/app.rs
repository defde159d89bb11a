//! The state both listeners share, and the task that keeps it in step with the store's change
//! feed. Every module that serves requests takes an `Arc<App>`; none of them needs the server.

use crate::datadir::DataDir;
use crate::packages::Packages;
use crate::runtime::Runtime;
use crate::secrets::SecretBackend;
use crate::secrets::cache::CachedBackend;
use crate::store::Store;
use std::sync::Arc;
use tokio::sync::watch;

/// The state shared by both listeners.
pub struct App {
    /// The engine and linker.
    pub runtime: Arc<Runtime>,
    /// The metadata store.
    pub store: Store,
    /// The data directory.
    pub data_dir: Arc<DataDir>,
    /// Where secrets are kept.
    pub backend: Arc<dyn SecretBackend>,
    /// Deployed packages and what serves.
    pub packages: Packages,
    /// The largest component accepted, bytes.
    pub max_upload_bytes: usize,
    /// The API's base URL (for unwrap links).
    pub api_url: String,
    /// Where execution records go.
    pub recorder: crate::executions::Recorder,
    /// The secret cache, which the change feed keeps current.
    pub cache: Arc<CachedBackend>,
    /// The rule new secret names follow.
    pub secret_names: crate::names::NameRule,
    /// Users' grants verified on this host, which the change feed keeps current.
    pub grants: crate::secrets::consent::Verified,
    /// Tokens found in the store, which the change feed keeps current.
    pub tokens: crate::auth::TokenCache,
}

impl App {
    /// The state a metrics scrape reports.
    pub fn metrics_snapshot(&self) -> crate::metrics::Snapshot {
        crate::metrics::Snapshot {
            slots: self.packages.slot_use(),
            record_queue: self.recorder.queued(),
            serving: self.packages.serving_count(),
        }
    }
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App").finish_non_exhaustive()
    }
}

/// Applies the change feed to this host: packages changed on any host serve (or stop) here,
/// secrets written through any host leave this host's cache. After an interruption (a lost
/// feed connection, or this task falling behind) everything is reloaded.
pub(crate) async fn follow_changes(
    app: Arc<App>,
    mut changes: tokio::sync::broadcast::Receiver<crate::store::Change>,
    mut shutdown: watch::Receiver<bool>,
) {
    use crate::store::Change;
    use tokio::sync::broadcast::error::RecvError;
    loop {
        let change = tokio::select! {
            change = changes.recv() => change,
            _ = shutdown.changed() => return,
        };
        match change {
            Ok(Change::Package {
                project,
                package,
                generation,
            }) => app.packages.refresh(&project, &package, generation).await,
            Ok(Change::Secret { scope, owner, name }) => {
                app.cache.forget_change(&scope, &owner, &name)
            }
            // Tokens and verified grants are cached (roles are read per request): a user's
            // change (a revocation, a grant) drops theirs.
            Ok(Change::Identity { user }) => {
                app.tokens.forget_user(&user);
                app.grants.forget_user(&user);
            }
            Ok(Change::Resync) | Err(RecvError::Lagged(_)) => {
                app.cache.clear();
                app.grants.clear();
                app.tokens.clear();
                if let Err(e) = app.packages.refresh_all().await {
                    tracing::error!(error = %e, "could not resynchronise packages with the store");
                }
            }
            Err(RecvError::Closed) => return,
        }
    }
}
