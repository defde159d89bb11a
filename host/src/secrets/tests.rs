use super::embedded::EmbeddedBackend;
use super::*;
use crate::store::Store;

fn name(s: &str) -> Name {
    Name::parse("test", s).unwrap()
}

fn sname(s: &str) -> SecretName {
    SecretName::parse(s).unwrap()
}

async fn backend(dir: &std::path::Path) -> Arc<dyn SecretBackend> {
    let store = Store::open(&dir.join("db")).unwrap();
    Arc::new(EmbeddedBackend::new(store, &[7u8; 32]))
}

fn resolver(b: &Arc<dyn SecretBackend>, allow: Option<&[&str]>, user: Option<&str>) -> Resolver {
    resolver_with_key(b, allow, user, None)
}

fn resolver_with_key(
    b: &Arc<dyn SecretBackend>,
    allow: Option<&[&str]>,
    user: Option<&str>,
    key: Option<Arc<userkey::UserKey>>,
) -> Resolver {
    resolver_declaring(b, allow, user, key, &["TOKEN", "team/*"])
}

fn resolver_declaring(
    b: &Arc<dyn SecretBackend>,
    allow: Option<&[&str]>,
    user: Option<&str>,
    key: Option<Arc<userkey::UserKey>>,
    declared: &[&str],
) -> Resolver {
    Resolver::new(
        b.clone(),
        name("acme"),
        name("api"),
        allow.map(|a| a.iter().map(|s| s.to_string()).collect()),
        user.map(|u| UserContext {
            name: u.to_string(),
            key,
            declared: Arc::new(crate::manifest::UserSecrets::new(
                declared.iter().map(|d| d.to_string()).collect(),
            )),
        }),
    )
}

async fn put(b: &Arc<dyn SecretBackend>, owner: Owner, n: &str, v: &str) {
    super::put(
        &**b,
        &owner,
        &sname(n),
        &SecretValue::text(v.into()),
        "test",
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn resolution_order_with_a_name_in_one_two_and_three_scopes() {
    let tmp = tempfile::tempdir().unwrap();
    let b = backend(tmp.path()).await;
    let pkg = Owner::Package(name("acme"), name("api"));
    let proj = Owner::Project(name("acme"));
    put(&b, Owner::Platform, "ONE", "platform-1").await;
    put(&b, Owner::Platform, "TWO", "platform-2").await;
    put(&b, proj.clone(), "TWO", "project-2").await;
    put(&b, Owner::Platform, "THREE", "platform-3").await;
    put(&b, proj.clone(), "THREE", "project-3").await;
    put(&b, pkg.clone(), "THREE", "package-3").await;
    // Another project's and package's secrets are never reached.
    put(&b, Owner::Project(name("other")), "OTHER", "x").await;
    put(
        &b,
        Owner::Package(name("acme"), name("web")),
        "SIBLING",
        "x",
    )
    .await;

    let r = resolver(&b, None, None);
    for (n, scope, value) in [
        ("ONE", Scope::Platform, "platform-1"),
        ("TWO", Scope::Project, "project-2"),
        ("THREE", Scope::Package, "package-3"),
    ] {
        let (got_scope, secret) = r.get(n).await.unwrap().unwrap();
        assert_eq!((got_scope, secret.value.expose()), (scope, value), "{n}");
    }
    assert!(r.get("OTHER").await.unwrap().is_none());
    assert!(r.get("SIBLING").await.unwrap().is_none());
    assert!(r.get("MISSING").await.unwrap().is_none());
    // get-from reads one scope only.
    let s = r.get_from(Scope::Platform, "THREE").await.unwrap().unwrap();
    assert_eq!(s.value.expose(), "platform-3");
    assert!(r.get_from(Scope::Package, "ONE").await.unwrap().is_none());
    // list gives names and scopes, never values.
    let listed = r.list().await.unwrap();
    assert_eq!(listed.len(), 6);
    assert!(!format!("{listed:?}").contains("platform-1"));
}

#[tokio::test]
async fn user_scope_needs_a_user_and_an_explicit_scope() {
    let tmp = tempfile::tempdir().unwrap();
    let b = backend(tmp.path()).await;
    // User values are stored sealed under the user's data key.
    let key = Arc::new(userkey::UserKey::generate());
    let sealed = key.seal("alice", "TOKEN", &SecretValue::text("alice-secret".into()));
    put(&b, Owner::User("alice".into()), "TOKEN", sealed.expose()).await;
    let anonymous = resolver(&b, None, None);
    assert!(matches!(
        anonymous.get_from(Scope::User, "TOKEN").await,
        Err(ResolveError::Denied(_))
    ));
    let alice = resolver_with_key(&b, None, Some("alice"), Some(key.clone()));
    assert!(
        alice.get("TOKEN").await.unwrap().is_none(),
        "never implicit"
    );
    let s = alice.get_from(Scope::User, "TOKEN").await.unwrap().unwrap();
    assert_eq!(s.value.expose(), "alice-secret");
    // Her token, but without a key slot (an admin issued it): denied, and no value.
    let keyless = resolver(&b, None, Some("alice"));
    match keyless.get_from(Scope::User, "TOKEN").await {
        Err(ResolveError::Denied(m)) => assert!(!m.contains("alice-secret")),
        other => panic!("{other:?}"),
    }
    // Another key of hers (a later enrollment): denied.
    let other = resolver_with_key(
        &b,
        None,
        Some("alice"),
        Some(Arc::new(userkey::UserKey::generate())),
    );
    assert!(matches!(
        other.get_from(Scope::User, "TOKEN").await,
        Err(ResolveError::Denied(_))
    ));
    let bob = resolver_with_key(&b, None, Some("bob"), Some(key.clone()));
    assert!(bob.get_from(Scope::User, "TOKEN").await.unwrap().is_none());
    // Her key, but a version that does not declare the name, or declares nothing: denied,
    // whatever the key opens, and list shows nothing of her scope.
    for declared in [&[][..], &["OTHER", "TOKEN/*"][..]] {
        let r = resolver_declaring(&b, None, Some("alice"), Some(key.clone()), declared);
        match r.get_from(Scope::User, "TOKEN").await {
            Err(ResolveError::Denied(m)) => assert!(m.contains("user-secrets"), "{m}"),
            other => panic!("{declared:?}: {other:?}"),
        }
        assert!(
            !r.list()
                .await
                .unwrap()
                .iter()
                .any(|(scope, _)| *scope == Scope::User)
        );
    }
    // Declared as a folder.
    let in_folder = key.seal("alice", "team/db", &SecretValue::text("t".into()));
    put(
        &b,
        Owner::User("alice".into()),
        "team/db",
        in_folder.expose(),
    )
    .await;
    let s = alice
        .get_from(Scope::User, "team/db")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.value.expose(), "t");
    let listed = alice.list().await.unwrap();
    assert!(
        listed
            .iter()
            .any(|(sc, n)| *sc == Scope::User && n.as_str() == "team/db")
    );
}

#[tokio::test]
async fn allowlist_and_bad_names() {
    let tmp = tempfile::tempdir().unwrap();
    let b = backend(tmp.path()).await;
    put(&b, Owner::Platform, "ALLOWED", "a").await;
    put(&b, Owner::Platform, "HIDDEN", "h").await;
    let r = resolver(&b, Some(&["ALLOWED"]), None);
    assert!(r.get("ALLOWED").await.unwrap().is_some());
    assert!(matches!(
        r.get("HIDDEN").await,
        Err(ResolveError::Denied(_))
    ));
    assert_eq!(r.list().await.unwrap().len(), 1);
    let long = "A".repeat(10 * 1024);
    for bad in ["", "../platform/X", "/X", "team//X", long.as_str()] {
        assert!(
            matches!(r.get(bad).await, Err(ResolveError::InvalidName(_))),
            "{bad:.20}"
        );
    }
    // A folder name that spells another owner's place is a name in this owner's own folders:
    // it never reaches the other's secret.
    put(&b, Owner::Project(name("other")), "X", "others").await;
    assert!(matches!(
        r.get("projects/other/shared/X").await,
        Err(ResolveError::Denied(_))
    ));
    let open = resolver(&b, None, None);
    assert!(open.get("projects/other/shared/X").await.unwrap().is_none());
    assert!(open.get("X").await.unwrap().is_none());
}

#[tokio::test]
async fn values_are_encrypted_at_rest_and_bound_to_their_place() {
    let tmp = tempfile::tempdir().unwrap();
    let b = backend(tmp.path()).await;
    let marker = "plaintext-marker-5d1f0c";
    put(&b, Owner::Platform, "MARK", marker).await;
    let obj = SecretValue::object(r#"{"host":"db","password":"pw-marker-77"}"#.into());
    super::put(&*b, &Owner::Platform, &sname("DB"), &obj, "t")
        .await
        .unwrap();
    let got = b
        .get(&Owner::Platform, &sname("DB"))
        .await
        .unwrap()
        .unwrap();
    assert!(got.value.is_object());
    assert!(
        !format!("{got:?}").contains("pw-marker-77"),
        "Debug hides values"
    );
    // A version bump on rewrite.
    put(&b, Owner::Platform, "MARK", marker).await;
    assert_eq!(
        b.get(&Owner::Platform, &sname("MARK"))
            .await
            .unwrap()
            .unwrap()
            .version,
        2
    );
    let mut raw = Vec::new();
    for entry in std::fs::read_dir(tmp.path()).unwrap() {
        raw.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    let raw = String::from_utf8_lossy(&raw);
    assert!(!raw.contains(marker) && !raw.contains("pw-marker-77"));
    // A different key cannot read it: the error says so without the value.
    let other = EmbeddedBackend::new(Store::open(&tmp.path().join("db")).unwrap(), &[8u8; 32]);
    let err = other
        .get(&Owner::Platform, &sname("MARK"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("does not decrypt"));
}

/// The embedded backend with a gate on `get`: the first gated read fetches its value, says so,
/// and waits to be released before returning it.
struct GatedReads {
    inner: Arc<dyn SecretBackend>,
    armed: std::sync::atomic::AtomicBool,
    /// Reads that reached the backend.
    reads: std::sync::atomic::AtomicUsize,
    lists: std::sync::atomic::AtomicUsize,
    fetched: tokio::sync::Notify,
    release: tokio::sync::Notify,
}

#[async_trait::async_trait]
impl SecretBackend for GatedReads {
    async fn get(
        &self,
        owner: &Owner,
        name: &SecretName,
    ) -> Result<Option<StoredSecret>, BackendError> {
        self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let found = self.inner.get(owner, name).await;
        if self.armed.swap(false, std::sync::atomic::Ordering::SeqCst) {
            self.fetched.notify_one();
            self.release.notified().await;
        }
        found
    }
    async fn list(&self, owner: &Owner) -> Result<Vec<SecretMeta>, BackendError> {
        self.lists.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.list(owner).await
    }
    async fn write(
        &self,
        owner: &Owner,
        name: &SecretName,
        value: &SecretValue,
        by: &str,
        mode: WriteMode,
    ) -> Result<u64, BackendError> {
        self.inner.write(owner, name, value, by, mode).await
    }
    async fn delete(&self, owner: &Owner, name: &SecretName) -> Result<bool, BackendError> {
        self.inner.delete(owner, name).await
    }
    async fn versions(
        &self,
        owner: &Owner,
        name: &SecretName,
    ) -> Result<Option<Vec<super::VersionMeta>>, BackendError> {
        self.inner.versions(owner, name).await
    }
    async fn get_version(
        &self,
        owner: &Owner,
        name: &SecretName,
        version: u64,
    ) -> Result<Option<StoredSecret>, BackendError> {
        self.inner.get_version(owner, name, version).await
    }
    async fn annotate(
        &self,
        owner: &Owner,
        name: &SecretName,
        update: &super::AnnotationUpdate,
    ) -> Result<(), BackendError> {
        self.inner.annotate(owner, name, update).await
    }
    async fn import(
        &self,
        owner: &Owner,
        entries: &[(SecretName, SecretValue)],
        by: &str,
    ) -> Result<(), BackendError> {
        self.inner.import(owner, entries, by).await
    }
    async fn wrap(
        &self,
        owner: &Owner,
        name: &SecretName,
        ttl: std::time::Duration,
    ) -> Result<Option<Wrapped>, BackendError> {
        self.inner.wrap(owner, name, ttl).await
    }
    async fn wrap_value(
        &self,
        value: &SecretValue,
        ttl: std::time::Duration,
    ) -> Result<Wrapped, BackendError> {
        self.inner.wrap_value(value, ttl).await
    }
    async fn unwrap(&self, token: &str) -> Result<SecretValue, BackendError> {
        self.inner.unwrap(token).await
    }
}

/// A [`GatedReads`] over the embedded store, and a cache in front of it keeping entries `ttl` s.
async fn gated_cache(dir: &std::path::Path, ttl: u64) -> (Arc<GatedReads>, Arc<dyn SecretBackend>) {
    let gated = Arc::new(GatedReads {
        inner: backend(dir).await,
        armed: false.into(),
        reads: 0.into(),
        lists: 0.into(),
        fetched: tokio::sync::Notify::new(),
        release: tokio::sync::Notify::new(),
    });
    let cache: Arc<dyn SecretBackend> = Arc::new(super::cache::CachedBackend::new(
        gated.clone(),
        std::time::Duration::from_secs(ttl),
        std::time::Duration::from_secs(5),
    ));
    (gated, cache)
}

#[tokio::test]
async fn cached_resolution_remembers_misses_and_forgets_on_write() {
    let dir = tempfile::tempdir().unwrap();
    let (gated, cache) = gated_cache(dir.path(), 3600).await;
    let reads = || gated.reads.swap(0, std::sync::atomic::Ordering::SeqCst);
    put(&cache, Owner::Platform, "SHARED", "platform").await;
    let r = resolver(&cache, None, None);
    let scope_of = |found: Option<(Scope, StoredSecret)>| {
        found.map(|(scope, s)| (scope, s.value.expose().to_string()))
    };

    // First resolution: package and project miss, platform hits; three backend reads.
    let want = Some((Scope::Platform, "platform".to_string()));
    assert_eq!(scope_of(r.get("SHARED").await.unwrap()), want);
    assert_eq!(reads(), 3);
    // Again: all three answers (two of them misses) come from the cache.
    assert_eq!(scope_of(r.get("SHARED").await.unwrap()), want);
    assert_eq!(reads(), 0);

    // A write through the cache to package scope is seen at once, by the next lookup.
    put(
        &cache,
        Owner::Package(name("acme"), name("api")),
        "SHARED",
        "pkg",
    )
    .await;
    let want = Some((Scope::Package, "pkg".to_string()));
    assert_eq!(scope_of(r.get("SHARED").await.unwrap()), want);
    assert_eq!(reads(), 1, "only the forgotten entry is read again");

    // With a TTL of zero nothing is cached: every lookup reaches the backend.
    let (gated, uncached) = gated_cache(dir.path(), 0).await;
    let r = resolver(&uncached, None, None);
    for _ in 0..2 {
        assert!(r.get("SHARED").await.unwrap().is_some());
    }
    assert_eq!(gated.reads.load(std::sync::atomic::Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_read_racing_a_write_does_not_cache_the_old_value() {
    let dir = tempfile::tempdir().unwrap();
    let (gated, cache) = gated_cache(dir.path(), 3600).await;
    let owner = Owner::Platform;
    put(&cache, owner.clone(), "ROTATED", "old").await;

    // A read fetches "old" and is held before it returns (and before it fills the cache).
    gated.armed.store(true, std::sync::atomic::Ordering::SeqCst);
    let reader = {
        let (cache, owner) = (cache.clone(), owner.clone());
        tokio::spawn(async move { cache.get(&owner, &sname("ROTATED")).await })
    };
    gated.fetched.notified().await;
    // Meanwhile the secret is rotated through Edgeward.
    put(&cache, owner.clone(), "ROTATED", "new").await;
    gated.release.notify_one();
    let raced = reader.await.unwrap().unwrap().unwrap();
    assert_eq!(
        raced.value.expose(),
        "old",
        "the racing read returns what it fetched"
    );

    // Every later read sees the rotation: the racing read did not cache "old".
    let after = cache.get(&owner, &sname("ROTATED")).await.unwrap().unwrap();
    assert_eq!(after.value.expose(), "new");
}

#[test]
fn an_execution_records_each_name_and_value_once_and_a_rotated_value_too() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db")).unwrap();
    let b: Arc<dyn SecretBackend> = Arc::new(EmbeddedBackend::new(store, &[7u8; 32]));
    let mut ctx = super::guest::SecretsCtx::new(resolver(&b, None, None));
    let secret = |v: &str| StoredSecret {
        name: sname("TOKEN"),
        value: SecretValue::text(v.into()),
        version: 1,
    };
    for _ in 0..1000 {
        ctx.note_bound(Scope::Package, &secret("first"));
    }
    ctx.note_bound(Scope::Package, &secret("rotated"));
    assert_eq!(ctx.resolved(), &["package:TOKEN".to_string()]);
    let values: Vec<&str> = ctx.revealed().iter().map(|v| v.expose()).collect();
    assert_eq!(values, ["first", "rotated"], "both values are masked");
}

#[tokio::test]
async fn a_guest_list_costs_one_backend_call_per_scope_then_none_while_cached() {
    let dir = tempfile::tempdir().unwrap();
    let (gated, cache) = gated_cache(dir.path(), 3600).await;
    let lists = || gated.lists.swap(0, std::sync::atomic::Ordering::SeqCst);
    let pkg = Owner::Package(name("acme"), name("api"));
    for i in 0..20 {
        put(&cache, pkg.clone(), &format!("N{i}"), "v").await;
    }
    let r = resolver(&cache, None, None);
    assert_eq!(r.list().await.unwrap().len(), 20);
    assert_eq!(lists(), 3, "one per scope, whatever the number of names");
    assert_eq!(resolver(&cache, None, None).list().await.unwrap().len(), 20);
    assert_eq!(lists(), 0, "cached");
    // A write through Edgeward drops that owner's listing only.
    put(&cache, pkg.clone(), "NEW", "v").await;
    assert_eq!(resolver(&cache, None, None).list().await.unwrap().len(), 21);
    assert_eq!(lists(), 1);
}

#[tokio::test]
async fn one_execution_may_make_only_so_many_backend_calls() {
    let dir = tempfile::tempdir().unwrap();
    let (gated, cache) = gated_cache(dir.path(), 3600).await;
    let r = resolver(&cache, None, None);
    // Distinct names miss the cache: each is a backend call (three scopes each).
    let mut failed_at = None;
    for i in 0..200 {
        match r.get(&format!("MISSING{i}")).await {
            Ok(None) => {}
            Err(ResolveError::Unavailable(m)) => {
                assert!(m.contains("secret lookups"), "{m}");
                failed_at = Some(i);
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    let reads = gated.reads.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        failed_at.is_some() && reads <= MAX_BACKEND_CALLS as usize,
        "{reads}"
    );
    // Cached answers stay free: the names already looked up still resolve.
    assert!(r.get("MISSING0").await.unwrap().is_none());
    // Another execution has its own budget.
    assert!(
        resolver(&cache, None, None)
            .get("OTHER")
            .await
            .unwrap()
            .is_none()
    );
}

/// Reads `name` of `owner` through `cache` on `threads` threads of their own (each with its own
/// runtime, as the data-plane workers), twice each so each thread's front holds it; the value
/// each saw last.
fn read_on_threads(
    cache: &Arc<super::cache::CachedBackend>,
    owner: &Owner,
    name: &str,
    threads: usize,
) -> Vec<Option<String>> {
    std::thread::scope(|s| {
        let readers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    let mut seen = None;
                    for _ in 0..2 {
                        seen = rt
                            .block_on(cache.get(owner, &sname(name)))
                            .unwrap()
                            .map(|s| s.value.expose().to_string());
                    }
                    seen
                })
            })
            .collect();
        readers.into_iter().map(|r| r.join().unwrap()).collect()
    })
}

/// The per-thread fronts never outlive what they copied: a write, a delete, a change
/// announced by another host, a fresh read past the cache and the TTL each reach every
/// thread's next lookup.
#[tokio::test]
async fn no_thread_keeps_a_cached_value_past_its_write_or_its_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let inner = backend(dir.path()).await;
    let ttl = std::time::Duration::from_millis(300);
    let cache = Arc::new(super::cache::CachedBackend::new(
        inner.clone(),
        ttl,
        std::time::Duration::from_secs(5),
    ));
    let dyn_cache: Arc<dyn SecretBackend> = cache.clone();
    let owner = Owner::Package(name("acme"), name("api"));
    let seen = |v: &str| vec![Some(v.to_string()); 4];

    put(&dyn_cache, owner.clone(), "KEY", "one").await;
    assert_eq!(read_on_threads(&cache, &owner, "KEY", 4), seen("one"));
    // A write through the cache.
    put(&dyn_cache, owner.clone(), "KEY", "two").await;
    assert_eq!(read_on_threads(&cache, &owner, "KEY", 4), seen("two"));
    // A delete.
    assert!(dyn_cache.delete(&owner, &sname("KEY")).await.unwrap());
    assert_eq!(read_on_threads(&cache, &owner, "KEY", 4), vec![None; 4]);
    // A write made on another host (straight to the store here), announced to this one.
    put(&inner, owner.clone(), "KEY", "three").await;
    assert_eq!(
        read_on_threads(&cache, &owner, "KEY", 4),
        vec![None; 4],
        "cached miss"
    );
    cache.forget_change("package", &owner.key(), "KEY");
    assert_eq!(read_on_threads(&cache, &owner, "KEY", 4), seen("three"));
    // A change made in the backend alone: an API read past the cache brings it to every thread.
    put(&inner, owner.clone(), "KEY", "four").await;
    assert_eq!(read_on_threads(&cache, &owner, "KEY", 4), seen("three"));
    let fresh = dyn_cache.get_fresh(&owner, &sname("KEY")).await.unwrap();
    assert_eq!(fresh.unwrap().value.expose(), "four");
    assert_eq!(read_on_threads(&cache, &owner, "KEY", 4), seen("four"));
    // And unannounced, once the TTL has passed since it was fetched.
    put(&inner, owner.clone(), "KEY", "five").await;
    assert_eq!(read_on_threads(&cache, &owner, "KEY", 4), seen("four"));
    std::thread::sleep(ttl + std::time::Duration::from_millis(50));
    assert_eq!(read_on_threads(&cache, &owner, "KEY", 4), seen("five"));
    // Cleared (what a backend switch does).
    put(&inner, owner.clone(), "KEY", "six").await;
    cache.clear();
    assert_eq!(read_on_threads(&cache, &owner, "KEY", 4), seen("six"));
}

/// Readers on other threads racing a writer: once a write has returned, no lookup that starts
/// after it sees an older value, however the fronts were filled meanwhile.
#[test]
fn a_lookup_after_a_write_returns_never_sees_an_older_value() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let inner = rt.block_on(backend(dir.path()));
    let cache = Arc::new(super::cache::CachedBackend::new(
        inner,
        std::time::Duration::from_secs(3600),
        std::time::Duration::from_secs(5),
    ));
    let dyn_cache: Arc<dyn SecretBackend> = cache.clone();
    let owner = Owner::Platform;
    rt.block_on(put(&dyn_cache, owner.clone(), "ROT", "0"));
    let written = AtomicU64::new(0);
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                let mut reads = 0u64;
                while !done.load(Ordering::Acquire) || reads < 100 {
                    let floor = written.load(Ordering::Acquire);
                    let found = rt.block_on(cache.get(&owner, &sname("ROT"))).unwrap();
                    let value: u64 = found.unwrap().value.expose().parse().unwrap();
                    assert!(value >= floor, "read {value} after {floor} was written");
                    reads += 1;
                }
            });
        }
        for n in 1..=500u64 {
            rt.block_on(put(&dyn_cache, owner.clone(), "ROT", &n.to_string()));
            written.store(n, Ordering::Release);
        }
        done.store(true, Ordering::Release);
    });
}
