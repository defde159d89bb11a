//! A read cache in front of any backend, with a bound on how long a backend call may take.
//!
//! Entries are kept per (scope, owner, name), misses too, for a TTL (default 30 s), in a
//! bounded `moka` cache (past its size, the entries least likely to be read again go), and dropped
//! on every write made through Edgeward, on this host at once and on every other host sharing
//! the store through the change feed. A change made directly in the backend (a rotation in
//! Vault) is seen once the entry expires. Errors are never cached, and every backend call is
//! bounded by a timeout so a dead backend answers `unavailable` promptly.
//!
//! A guest's cached lookup is read from a small per-thread front before moka (whose `get`
//! records the read for its eviction policy and reads the clock: ~1,000 instructions of a
//! lookup's ~2,000; BENCHMARKS.md, issue 30). A front holds only copies of moka's entries,
//! each expiring when the entry it copied does (its fetch time plus the TTL). Everything that
//! drops entries (a write, a delete, another host's change, a fresh read, a clear) drops them
//! from moka first and then empties every front, and a front is locked while it copies from
//! moka, so no copy outlives the entry's drop. An entry moka evicts for room may still be
//! served from a front until its TTL: the same value, within the same TTL, that moka would
//! have served had it kept it.

use super::{
    BackendError, Owner, SecretBackend, SecretMeta, SecretValue, StoredSecret, VersionMeta,
    Wrapped, WriteMode,
};
use crate::names::SecretName;
use crate::store::{Change, Store};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The most secrets kept; past that, moka evicts the least likely to be read again (TinyLFU),
/// not everything.
const MAX_ENTRIES: u64 = 100_000;
/// The most owners whose name lists are kept.
const MAX_LISTS: u64 = 1_000;
/// How many fronts; threads take one each in turn (two threads may share one, under its lock).
const FRONTS: usize = 16;
/// The most entries one front holds; past that it starts again, empty.
const FRONT_MAX: usize = 1_024;

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
        KeyRef(&self.owner, self.name.as_str()).hash(state);
    }
}

/// A lookup's key, borrowed: a hit allocates nothing.
#[derive(Hash)]
struct KeyRef<'a>(&'a Owner, &'a str);

impl moka::Equivalent<Key> for KeyRef<'_> {
    fn equivalent(&self, key: &Key) -> bool {
        *self.0 == key.owner && self.1 == key.name.as_str()
    }
}

/// A cached answer (found or absent) and when it was read from the backend: it is good until
/// then plus the TTL, in moka and in any front that copied it.
type Entry = (Option<StoredSecret>, Instant);

/// One front: copies of moka's entries, good while `generation` is the cache's
/// `front_generation`.
#[derive(Default)]
struct Front {
    generation: u64,
    entries: hashbrown::HashMap<Key, Entry, Hasher>,
}

/// This thread's front, by index (taken in turn on first use).
fn front_slot() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local!(static SLOT: usize = NEXT.fetch_add(1, Ordering::Relaxed) % FRONTS);
    SLOT.with(|slot| *slot)
}

/// The caching, time-bounded wrapper.
pub struct CachedBackend {
    inner: Arc<dyn SecretBackend>,
    ttl: Duration,
    timeout: Duration,
    /// Secrets (and misses) by owner and name, each for the TTL.
    entries: moka::sync::Cache<Key, Entry, Hasher>,
    /// Per-thread copies of `entries` (see the module's notes).
    fronts: Box<[Mutex<Front>]>,
    /// Bumped after anything is dropped from `entries`, before the fronts are emptied: a
    /// front's copy is good only while this is what it was before the copy was read.
    front_generation: AtomicU64,
    /// Each owner's names, for guests' `list`, for the TTL.
    names: moka::sync::Cache<Owner, Arc<Vec<SecretName>>, Hasher>,
    /// Bumped by every write: a read that started before a write and ends after it must not
    /// put the value it fetched (possibly the old one) back into the cache.
    generation: AtomicU64,
    /// Held to fill `entries` and `names` (checking `generation` first) and to drop from them
    /// (bumping it): a fill that checked before a write cannot land after the write's drop, so
    /// no lookup that starts after a write returns sees an older value, even for a moment.
    fill: Mutex<()>,
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
            fronts: (0..FRONTS).map(|_| Mutex::default()).collect(),
            front_generation: AtomicU64::new(0),
            generation: AtomicU64::new(0),
            fill: Mutex::new(()),
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
        match (Owner::from_key(scope, owner), SecretName::parse(name)) {
            (Some(owner), Ok(name)) => self.forget(&owner, &name),
            // A change this host cannot place (a newer host's scope): drop everything.
            _ => self.clear(),
        }
    }

    /// Drops everything cached.
    pub fn clear(&self) {
        {
            let _fill = self.fill.lock().unwrap_or_else(|e| e.into_inner());
            self.generation.fetch_add(1, Ordering::AcqRel);
            self.entries.invalidate_all();
            self.names.invalidate_all();
        }
        self.empty_fronts();
    }

    /// Drops `name` of `owner` (and the owner's list of names), refusing every fill that
    /// began before, then empties every front.
    fn forget(&self, owner: &Owner, name: &SecretName) {
        {
            let _fill = self.fill.lock().unwrap_or_else(|e| e.into_inner());
            self.generation.fetch_add(1, Ordering::AcqRel);
            self.entries.invalidate(&KeyRef(owner, name.as_str()));
            self.names.invalidate(owner);
        }
        self.empty_fronts();
    }

    /// Empties every front, after whatever was dropped from moka: a copy made before this is
    /// gone (a front is locked while it copies from moka), and one made after reads moka as it
    /// now is.
    fn empty_fronts(&self) {
        let generation = self.front_generation.fetch_add(1, Ordering::AcqRel) + 1;
        for front in &self.fronts {
            let mut front = front.lock().unwrap_or_else(|e| e.into_inner());
            front.generation = generation;
            front.entries.clear();
        }
    }

    /// Keeps what the backend answered for `name` of `owner` (fetched at `at`), unless a
    /// write began since `generation` was read: what was fetched may then be the old value.
    /// Whether it kept it.
    fn keep(
        &self,
        owner: &Owner,
        name: &SecretName,
        found: &Option<StoredSecret>,
        at: Instant,
        generation: u64,
    ) -> bool {
        let _fill = self.fill.lock().unwrap_or_else(|e| e.into_inner());
        if self.ttl.is_zero() || self.generation.load(Ordering::Acquire) != generation {
            return false;
        }
        let key = Key {
            owner: owner.clone(),
            name: name.clone(),
        };
        self.entries.insert(key, (found.clone(), at));
        true
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
}

#[async_trait::async_trait]
impl SecretBackend for CachedBackend {
    fn get_cached(&self, owner: &Owner, name: &str) -> Option<Option<StoredSecret>> {
        if self.ttl.is_zero() {
            return None;
        }
        let key = KeyRef(owner, name);
        // Read before moka is: a copy made under it is refused if anything was dropped since.
        let generation = self.front_generation.load(Ordering::Acquire);
        let now = Instant::now();
        let mut front = self.fronts[front_slot()]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if front.generation == generation {
            if let Some((found, at)) = front.entries.get(&key)
                && now < *at + self.ttl
            {
                crate::metrics::CACHE_HITS.increment(1);
                return Some(found.clone());
            }
        } else if front.generation < generation {
            // Emptied by `empty_fronts`, or about to be: this thread starts the new one.
            front.generation = generation;
            front.entries.clear();
        }
        let (found, at) = self.entries.get(&key)?;
        crate::metrics::CACHE_HITS.increment(1);
        if front.generation == generation && now < at + self.ttl {
            if front.entries.len() >= FRONT_MAX {
                front.entries.clear();
            }
            // The found secret's name is the key's (shared, not copied); a miss parses it.
            let kept = match &found {
                Some(secret) if secret.name.as_str() == name => Ok(secret.name.clone()),
                _ => SecretName::parse(name),
            };
            if let Ok(name) = kept {
                let key = Key {
                    owner: owner.clone(),
                    name,
                };
                front.entries.insert(key, (found.clone(), at));
            }
        }
        Some(found)
    }

    async fn get(
        &self,
        owner: &Owner,
        name: &SecretName,
    ) -> Result<Option<StoredSecret>, BackendError> {
        if let Some(hit) = self.get_cached(owner, name.as_str()) {
            return Ok(hit);
        }
        crate::metrics::CACHE_MISSES.increment(1);
        let generation = self.generation.load(Ordering::Acquire);
        let at = Instant::now();
        let found = self.bounded("a read", self.inner.get(owner, name)).await?;
        let _ = self.keep(owner, name, &found, at, generation);
        Ok(found)
    }

    async fn get_fresh(
        &self,
        owner: &Owner,
        name: &SecretName,
    ) -> Result<Option<StoredSecret>, BackendError> {
        let generation = self.generation.load(Ordering::Acquire);
        let at = Instant::now();
        let found = self.bounded("a read", self.inner.get(owner, name)).await?;
        // What guests see next is what was just read (and the owner's names are read again),
        // unless a write came meanwhile: then nothing stays.
        if !self.keep(owner, name, &found, at, generation) {
            // A write came meanwhile (it dropped the entry already) or nothing is cached.
            self.entries.invalidate(&KeyRef(owner, name.as_str()));
        }
        self.names.invalidate(owner);
        self.empty_fronts();
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
        let _fill = self.fill.lock().unwrap_or_else(|e| e.into_inner());
        if !self.ttl.is_zero() && self.generation.load(Ordering::Acquire) == generation {
            self.names.insert(owner.clone(), Arc::new(names.clone()));
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
