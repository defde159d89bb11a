//! A read cache in front of any backend, with a bound on how long a backend call may take.
//!
//! Entries are kept per (scope, owner, name), misses too, for a TTL (default 30 s), in a
//! bounded `moka` cache (past its size, the entries least likely to be read again go), and dropped
//! on every write made through Edgeward, on this host at once and on every other host sharing
//! the store through the change feed. A change made directly in the backend (a rotation in
//! Vault) is seen once the entry expires. Errors are never cached, and every backend call is
//! bounded by a timeout so a dead backend answers `unavailable` promptly.

use super::{
    BackendError, Owner, SecretBackend, SecretMeta, SecretValue, StoredSecret, VersionMeta,
    Wrapped, WriteMode,
};
use crate::names::SecretName;
use crate::store::{Change, Store};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The most secrets kept; past that, moka evicts the least likely to be read again (TinyLFU),
/// not everything.
const MAX_ENTRIES: u64 = 100_000;
/// The most owners whose name lists are kept.
const MAX_LISTS: u64 = 1_000;

/// The caches' hasher: foldhash, seeded at random per process (as hashbrown's default), not
/// std's SipHash: a guest's lookup hashes its key once per scope tried, and SipHash was a
/// third of a cache hit's instructions (BENCHMARKS.md, issue 30). The seed is not known to
/// tenants, so names cannot be chosen to collide.
type Hasher = foldhash::quality::RandomState;

/// A cached secret's key: whose, and which.
#[derive(Clone, PartialEq, Eq)]
struct Key {
    owner: Owner,
    name: SecretName,
}

impl std::hash::Hash for Key {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        KeyRef(&self.owner, &self.name).hash(state);
    }
}

/// A lookup's key, borrowed: a hit allocates nothing.
#[derive(Hash)]
struct KeyRef<'a>(&'a Owner, &'a SecretName);

impl moka::Equivalent<Key> for KeyRef<'_> {
    fn equivalent(&self, key: &Key) -> bool {
        *self.0 == key.owner && *self.1 == key.name
    }
}

/// The caching, time-bounded wrapper.
pub struct CachedBackend {
    inner: Arc<dyn SecretBackend>,
    ttl: Duration,
    timeout: Duration,
    /// Secrets (and misses) by owner and name, each for the TTL.
    entries: moka::sync::Cache<Key, Option<StoredSecret>, Hasher>,
    /// Each owner's names, for guests' `list`, for the TTL.
    names: moka::sync::Cache<Owner, Arc<Vec<SecretName>>, Hasher>,
    /// Bumped by every write: a read that started before a write and ends after it must not
    /// put the value it fetched (possibly the old one) back into the cache.
    generation: AtomicU64,
    /// Where writes are announced to the other hosts.
    feed: Option<Store>,
}

impl std::fmt::Debug for CachedBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedBackend")
            .field("ttl", &self.ttl)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl CachedBackend {
    /// Wraps `inner`; `ttl` zero turns caching off.
    pub fn new(inner: Arc<dyn SecretBackend>, ttl: Duration, timeout: Duration) -> CachedBackend {
        // A TTL of zero turns caching off; moka wants a positive one.
        let live = ttl.max(Duration::from_millis(1));
        CachedBackend {
            inner,
            ttl,
            timeout,
            entries: moka::sync::Cache::builder()
                .max_capacity(MAX_ENTRIES)
                .time_to_live(live)
                .build_with_hasher(Hasher::default()),
            names: moka::sync::Cache::builder()
                .max_capacity(MAX_LISTS)
                .time_to_live(live)
                .build_with_hasher(Hasher::default()),
            generation: AtomicU64::new(0),
            feed: None,
        }
    }

    /// Announces every write through `store`'s change feed, so other hosts drop their copy.
    pub fn with_feed(mut self, store: Store) -> CachedBackend {
        self.feed = Some(store);
        self
    }

    /// Drops what is cached of a secret changed on another host (`owner` is
    /// [`Owner::key`]).
    pub fn forget_change(&self, scope: &str, owner: &str, name: &str) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        match (Owner::from_key(scope, owner), SecretName::parse(name)) {
            (Some(owner), Ok(name)) => {
                self.entries.invalidate(&KeyRef(&owner, &name));
                self.names.invalidate(&owner);
            }
            // A change this host cannot place (a newer host's scope): drop everything.
            _ => self.clear(),
        }
    }

    /// Drops everything cached.
    pub fn clear(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.entries.invalidate_all();
        self.names.invalidate_all();
    }

    /// Whether the backend answers (a list of the platform's names, uncached), for
    /// `/v1/ready`.
    pub async fn ping(&self) -> Result<(), BackendError> {
        self.bounded("a list", self.inner.list_names(&Owner::Platform))
            .await
            .map(|_| ())
    }

    async fn announce(&self, owner: &Owner, names: impl Iterator<Item = &SecretName>) {
        let Some(store) = &self.feed else { return };
        for name in names {
            let change = Change::Secret {
                scope: owner.scope().as_str().to_string(),
                owner: owner.key(),
                name: name.to_string(),
            };
            if let Err(e) = store.publish(change).await {
                tracing::warn!(
                    error = %e,
                    "could not announce a secret write to the other hosts; they see it when \
                     their cached copy expires"
                );
                return;
            }
        }
    }

    async fn bounded<T>(
        &self,
        what: &str,
        fut: impl Future<Output = Result<T, BackendError>>,
    ) -> Result<T, BackendError> {
        let started = Instant::now();
        let result = tokio::time::timeout(self.timeout, fut)
            .await
            .unwrap_or_else(|_| {
                Err(BackendError::Unavailable(format!(
                    "the secret backend did not answer {what} within {} ms",
                    self.timeout.as_millis()
                )))
            });
        crate::metrics::BACKEND_SECONDS.record(started.elapsed().as_secs_f64());
        if matches!(
            result,
            Err(BackendError::Unavailable(_) | BackendError::Corrupt(_))
        ) {
            crate::metrics::BACKEND_ERRORS.increment(1);
        }
        result
    }

    fn forget(&self, owner: &Owner, name: &SecretName) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.entries.invalidate(&KeyRef(owner, name));
        self.names.invalidate(owner);
    }
}

#[async_trait::async_trait]
impl SecretBackend for CachedBackend {
    fn get_cached(&self, owner: &Owner, name: &SecretName) -> Option<Option<StoredSecret>> {
        if self.ttl.is_zero() {
            return None;
        }
        let hit = self.entries.get(&KeyRef(owner, name));
        if hit.is_some() {
            crate::metrics::CACHE_HITS.increment(1);
        }
        hit
    }

    async fn get(
        &self,
        owner: &Owner,
        name: &SecretName,
    ) -> Result<Option<StoredSecret>, BackendError> {
        if let Some(hit) = self.get_cached(owner, name) {
            return Ok(hit);
        }
        crate::metrics::CACHE_MISSES.increment(1);
        let generation = self.generation.load(Ordering::Acquire);
        let found = self.bounded("a read", self.inner.get(owner, name)).await?;
        if !self.ttl.is_zero() && self.generation.load(Ordering::Acquire) == generation {
            let key = Key {
                owner: owner.clone(),
                name: name.clone(),
            };
            self.entries.insert(key, found.clone());
            // A write that began while this was inserted: what was fetched may be the old
            // value, so it does not stay.
            if self.generation.load(Ordering::Acquire) != generation {
                self.entries.invalidate(&KeyRef(owner, name));
            }
        }
        Ok(found)
    }

    async fn get_fresh(
        &self,
        owner: &Owner,
        name: &SecretName,
    ) -> Result<Option<StoredSecret>, BackendError> {
        let generation = self.generation.load(Ordering::Acquire);
        let found = self.bounded("a read", self.inner.get(owner, name)).await?;
        // Dropped first (with the owner's cached names): what guests see next is fresh.
        self.entries.invalidate(&KeyRef(owner, name));
        self.names.invalidate(owner);
        if !self.ttl.is_zero() && self.generation.load(Ordering::Acquire) == generation {
            let key = Key {
                owner: owner.clone(),
                name: name.clone(),
            };
            self.entries.insert(key, found.clone());
            // A write that began meanwhile: what was fetched may be old, so it does not stay.
            if self.generation.load(Ordering::Acquire) != generation {
                self.entries.invalidate(&KeyRef(owner, name));
            }
        }
        Ok(found)
    }

    async fn list(&self, owner: &Owner) -> Result<Vec<SecretMeta>, BackendError> {
        self.bounded("a list", self.inner.list(owner)).await
    }

    async fn list_prefixed(
        &self,
        owner: &Owner,
        prefix: &str,
    ) -> Result<Vec<SecretMeta>, BackendError> {
        self.bounded("a list", self.inner.list_prefixed(owner, prefix))
            .await
    }

    fn list_cached(&self, owner: &Owner) -> Option<Vec<SecretName>> {
        if self.ttl.is_zero() {
            return None;
        }
        self.names.get(owner).map(|names| names.to_vec())
    }

    async fn list_names(&self, owner: &Owner) -> Result<Vec<SecretName>, BackendError> {
        if let Some(names) = self.list_cached(owner) {
            return Ok(names);
        }
        let generation = self.generation.load(Ordering::Acquire);
        let names = self.bounded("a list", self.inner.list_names(owner)).await?;
        if !self.ttl.is_zero() && self.generation.load(Ordering::Acquire) == generation {
            self.names.insert(owner.clone(), Arc::new(names.clone()));
            if self.generation.load(Ordering::Acquire) != generation {
                self.names.invalidate(owner);
            }
        }
        Ok(names)
    }

    async fn write(
        &self,
        owner: &Owner,
        name: &SecretName,
        value: &SecretValue,
        by: &str,
        mode: WriteMode,
    ) -> Result<u64, BackendError> {
        let result = self
            .bounded("a write", self.inner.write(owner, name, value, by, mode))
            .await;
        self.forget(owner, name);
        self.announce(owner, std::iter::once(name)).await;
        result
    }

    async fn delete(&self, owner: &Owner, name: &SecretName) -> Result<bool, BackendError> {
        let result = self
            .bounded("a delete", self.inner.delete(owner, name))
            .await;
        self.forget(owner, name);
        self.announce(owner, std::iter::once(name)).await;
        result
    }

    async fn versions(
        &self,
        owner: &Owner,
        name: &SecretName,
    ) -> Result<Option<Vec<VersionMeta>>, BackendError> {
        self.bounded("a versions read", self.inner.versions(owner, name))
            .await
    }

    async fn get_version(
        &self,
        owner: &Owner,
        name: &SecretName,
        version: u64,
    ) -> Result<Option<StoredSecret>, BackendError> {
        self.bounded("a read", self.inner.get_version(owner, name, version))
            .await
    }

    async fn annotate(
        &self,
        owner: &Owner,
        name: &SecretName,
        update: &super::AnnotationUpdate,
    ) -> Result<(), BackendError> {
        self.bounded("a metadata write", self.inner.annotate(owner, name, update))
            .await
    }

    async fn import(
        &self,
        owner: &Owner,
        entries: &[(SecretName, SecretValue)],
        by: &str,
    ) -> Result<(), BackendError> {
        // An import writes many entries: give it a timeout per entry.
        let budget = self
            .timeout
            .saturating_mul(u32::try_from(entries.len()).unwrap_or(1).max(1) * 3);
        let result = tokio::time::timeout(budget, self.inner.import(owner, entries, by))
            .await
            .unwrap_or_else(|_| {
                Err(BackendError::Unavailable(
                    "the secret backend did not finish the import in time".into(),
                ))
            });
        for (name, _) in entries {
            self.forget(owner, name);
        }
        self.announce(owner, entries.iter().map(|(name, _)| name))
            .await;
        result
    }

    async fn wrap(
        &self,
        owner: &Owner,
        name: &SecretName,
        ttl: Duration,
    ) -> Result<Option<Wrapped>, BackendError> {
        self.bounded("a wrap", self.inner.wrap(owner, name, ttl))
            .await
    }

    async fn wrap_value(
        &self,
        value: &SecretValue,
        ttl: Duration,
    ) -> Result<Wrapped, BackendError> {
        self.bounded("a wrap", self.inner.wrap_value(value, ttl))
            .await
    }

    async fn unwrap(&self, token: &str) -> Result<SecretValue, BackendError> {
        self.bounded("an unwrap", self.inner.unwrap(token)).await
    }
}
