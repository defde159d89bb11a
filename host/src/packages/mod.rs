//! Packages: accepting uploads, keeping versions, and the table of what serves.
//!
//! An upload is checked and compiled before anything is written; then its precompiled
//! artifact goes to disk (atomically) and its version to the store (one transaction); only
//! then does the in-memory table point at it. A crash at any step leaves the previous version
//! serving. Writes to one installation's packages are serialised so the table always matches
//! the store's current pointers.

pub mod deploy;

use crate::datadir::DataDir;
use crate::manifest::Manifest;
use crate::names::Name;
use crate::runtime::{Deployed, Rejection, Runtime};
use crate::store::{Current, Store, StoreError, VersionRow};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use wasmtime::component::Component;

/// Where precompiled artifacts live under the data directory.
pub const ARTIFACTS_DIR: &str = "artifacts";
/// How old an artifact nothing can load must be before [`Packages::sweep_artifacts`] removes it.
pub const SWEEP_AFTER: std::time::Duration = std::time::Duration::from_secs(600);
/// The same when a package's deletion arrives from the change feed: the host is running, so
/// only an upload of its own in flight (its artifact written a moment before its version
/// commits) can own a file no stored component names.
pub const SWEEP_ON_DELETION_AFTER: std::time::Duration = std::time::Duration::from_secs(60);

/// Why a package operation failed.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    /// The upload was refused; nothing changed.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// The store said no (not found, already exists) or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Anything else (I/O, a compile that failed for a stored version).
    #[error("{0:#}")]
    Internal(anyhow::Error),
}

/// The outcome of an accepted upload.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Uploaded {
    /// The project.
    pub project: String,
    /// The package.
    pub package: String,
    /// The new version number, now current.
    pub version: i64,
    /// The component's sha256.
    pub sha256: String,
    /// Its size in bytes.
    pub size: usize,
    /// The limits it runs with.
    pub limits: crate::runtime::EffectiveLimits,
    /// What the caller should know: limits asked above the platform's maxima.
    pub notices: Vec<String>,
}

/// An upload that passed every check and compiled, not yet recorded.
pub struct Prepared {
    sha256: String,
    bytes: Arc<Vec<u8>>,
    pre: crate::runtime::state::HostStateProxyPre,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("sha256", &self.sha256)
            .finish_non_exhaustive()
    }
}

/// The packages of the installation and the versions that serve.
pub struct Packages {
    runtime: Arc<Runtime>,
    store: Store,
    data_dir: Arc<DataDir>,
    /// project → package → what serves (two levels, so a request looks up by `&str` without
    /// allocating a key), with the generation of the change that made it current: a change
    /// heard late (from this host or another) never replaces a newer one.
    serving: RwLock<HashMap<String, HashMap<String, Serving>>>,
    /// Serialises reloads driven by the change feed, so two reloads of one package cannot
    /// interleave their reads and writes.
    refresh_lock: tokio::sync::Mutex<()>,
    /// The components whose code [`Packages::release_idle_code`] gave back, with the second
    /// of their last use then: released again only after another use.
    released: std::sync::Mutex<HashMap<String, u32>>,
}

struct Serving {
    generation: i64,
    deployed: Arc<Deployed>,
}

impl std::fmt::Debug for Packages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Packages").finish_non_exhaustive()
    }
}

impl Packages {
    /// A table over `store`, empty until [`Packages::load_all`].
    pub fn new(runtime: Arc<Runtime>, store: Store, data_dir: Arc<DataDir>) -> Packages {
        Packages {
            runtime,
            store,
            data_dir,
            serving: RwLock::default(),
            refresh_lock: tokio::sync::Mutex::new(()),
            released: std::sync::Mutex::default(),
        }
    }

    /// Gives back the code pages of every component no serving version has used for more than
    /// `idle` (whole seconds): their artifacts' mapped pages, which the page cache keeps; the
    /// next request maps what it touches again. With thousands of packages on a host most are
    /// idle at any moment, and one request had left each one's whole code resident. Returns
    /// how many components were released.
    pub fn release_idle_code(&self, idle: std::time::Duration) -> usize {
        let now = crate::runtime::process_seconds(std::time::Instant::now());
        let idle = u32::try_from(idle.as_secs()).unwrap_or(u32::MAX);
        // sha256 → (last use of any version serving it, its component)
        let mut last: HashMap<String, (u32, Component)> = HashMap::new();
        {
            let Ok(map) = self.serving.read() else {
                return 0;
            };
            for serving in map.values().flat_map(HashMap::values) {
                let d = &serving.deployed;
                let used = d.last_use.second();
                match last.get_mut(&d.sha256) {
                    Some((at, _)) => *at = (*at).max(used),
                    None => {
                        let component = d.pre.instance_pre().component().clone();
                        last.insert(d.sha256.clone(), (used, component));
                    }
                }
            }
        }
        let Ok(mut released) = self.released.lock() else {
            return 0;
        };
        released.retain(|sha, _| last.contains_key(sha));
        let mut to_release = Vec::new();
        for (sha, (used, component)) in last {
            if now.saturating_sub(used) > idle && released.get(&sha) != Some(&used) {
                released.insert(sha, used);
                to_release.push(component);
            }
        }
        drop(released);
        crate::runtime::release_idle_code(&to_release)
    }

    /// The version serving `project/package`, if any.
    pub fn serving(&self, project: &str, package: &str) -> Option<Arc<Deployed>> {
        let map = self.serving.read().ok()?;
        map.get(project)?.get(package).map(|s| s.deployed.clone())
    }

    /// Rebuilds what serves with the runtime's current limits (after a reload), keeping each
    /// version and its compiled component. Requests in flight finish under the old limits.
    /// Returns the notices of limits asked above the new maxima.
    pub fn reapply_limits(&self) -> Vec<String> {
        let Ok(mut map) = self.serving.write() else {
            return Vec::new();
        };
        let mut notices = Vec::new();
        for packages in map.values_mut() {
            for serving in packages.values_mut() {
                let d = &serving.deployed;
                let rebuilt = self.runtime.deployed(
                    d.project.clone(),
                    d.package.clone(),
                    d.version,
                    d.sha256.clone(),
                    d.pre.clone(),
                    (*d.manifest).clone(),
                );
                let rebuilt = Deployed {
                    last_use: d.last_use.clone(),
                    ..rebuilt
                };
                for n in rebuilt.limits().1 {
                    notices.push(format!("{}/{}: {n}", d.project, d.package));
                }
                serving.deployed = Arc::new(rebuilt);
            }
        }
        notices
    }

    /// Each serving package (`project/package`) with its instance slots and how many are
    /// busy, for the metrics.
    pub fn slot_use(&self) -> Vec<(String, u32, u32)> {
        let Ok(map) = self.serving.read() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (project, packages) in map.iter() {
            for (package, serving) in packages {
                let d = &serving.deployed;
                let free = d.slots.free();
                out.push((
                    format!("{project}/{package}"),
                    d.concurrency,
                    d.concurrency.saturating_sub(free),
                ));
            }
        }
        out
    }

    /// The serving versions (`project/package vN`) that bind `name` in a scope they resolve
    /// through `owner`: an env binding (`secret:`, `secret:NAME#FIELD`, `[env.expand]`,
    /// `credential:`) or a declared credential. Deleting it would break their every request.
    pub fn bound_by(
        &self,
        owner: &crate::secrets::Owner,
        name: &crate::names::SecretName,
    ) -> Vec<String> {
        use crate::manifest::EnvBinding as B;
        let Ok(map) = self.serving.read() else {
            return Vec::new();
        };
        let mut out: Vec<String> = map
            .values()
            .flat_map(HashMap::values)
            .map(|s| &s.deployed)
            .filter(|d| d.owners.contains(owner))
            .filter(|d| {
                let env = d.env.iter().any(|(_, b)| match b {
                    B::Secret(n) | B::SecretField(n, _) | B::Expand(n) | B::Credential(n) => {
                        n == name
                    }
                    B::Literal(_) => false,
                });
                env || d
                    .manifest
                    .outbound
                    .credentials
                    .iter()
                    .any(|c| c.secret == name.as_str())
            })
            .map(|d| format!("{}/{} v{}", d.project, d.package, d.version))
            .collect();
        out.sort();
        out
    }

    /// How many packages are serving.
    pub fn serving_count(&self) -> usize {
        self.serving
            .read()
            .map(|m| m.values().map(HashMap::len).sum())
            .unwrap_or(0)
    }

    /// Loads the current version of every package, from precompiled artifacts where they
    /// exist. A version that cannot load is reported and skipped; the rest still serve.
    pub async fn load_all(&self) -> Result<usize, PackageError> {
        let rows = self.store.current_versions().await?;
        Ok(self.load_many(rows).await)
    }

    /// Serves each of `rows` (unless a newer generation serves already), loading each distinct
    /// component once, several at a time (artifacts are mapped and linked on the blocking
    /// pool): a restart with thousands of packages costs one load per component, and the
    /// cores share it. How many serve now.
    async fn load_many(&self, rows: Vec<Current>) -> usize {
        use futures::StreamExt as _;
        let mut wanted: Vec<&str> = rows
            .iter()
            .filter(|c| {
                self.generation(&c.version.project, &c.version.package) < Some(c.generation)
            })
            .map(|c| c.version.sha256.as_str())
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        let parallel = std::thread::available_parallelism().map_or(2, |n| n.get() * 2);
        let loads: Vec<_> = wanted
            .into_iter()
            .map(|sha| self.component_of(sha))
            .collect();
        let components: HashMap<&str, Result<_, PackageError>> = futures::stream::iter(loads)
            .buffer_unordered(parallel)
            .collect()
            .await;
        let mut serving = 0;
        for current in &rows {
            let row = &current.version;
            if self.generation(&row.project, &row.package) >= Some(current.generation) {
                serving += 1;
                continue;
            }
            let loaded = match components.get(row.sha256.as_str()) {
                Some(Ok(pre)) => self.deployed_from(row, pre.clone()),
                Some(Err(e)) => Err(PackageError::Internal(anyhow::anyhow!("{e}"))),
                None => self.load_version(row).await,
            };
            match loaded {
                Ok(deployed) => {
                    self.set_serving(deployed, current.generation);
                    serving += 1;
                }
                Err(e) => tracing::error!(
                    project = %row.project, package = %row.package, version = row.version,
                    error = %e, "could not load package version; it will not serve"
                ),
            }
        }
        serving
    }

    /// Serves `current` unless a newer generation serves already; whether it serves now.
    async fn load_current(&self, current: Current) -> bool {
        if self.generation(&current.version.project, &current.version.package)
            >= Some(current.generation)
        {
            return true;
        }
        let row = &current.version;
        match self.load_version(row).await {
            Ok(deployed) => {
                self.set_serving(deployed, current.generation);
                true
            }
            Err(e) => {
                tracing::error!(
                    project = %row.project, package = %row.package, version = row.version,
                    error = %e, "could not load package version; it will not serve"
                );
                false
            }
        }
    }

    fn generation(&self, project: &str, package: &str) -> Option<i64> {
        let map = self.serving.read().ok()?;
        map.get(project)?.get(package).map(|s| s.generation)
    }

    /// Makes `deployed` serve, unless what serves came from a newer change.
    fn set_serving(&self, deployed: Deployed, generation: i64) {
        if let Ok(mut map) = self.serving.write() {
            let packages = map.entry(deployed.project.to_string()).or_default();
            match packages.get(deployed.package.as_str()) {
                Some(s) if s.generation >= generation => {}
                _ => {
                    packages.insert(
                        deployed.package.to_string(),
                        Serving {
                            generation,
                            deployed: Arc::new(deployed),
                        },
                    );
                }
            }
        }
    }

    /// Stops serving `project/package` if what serves is older than `generation`.
    fn unserve(&self, project: &str, package: &str, generation: i64) {
        if let Ok(mut map) = self.serving.write()
            && let Some(packages) = map.get_mut(project)
        {
            if packages
                .get(package)
                .is_some_and(|s| s.generation < generation)
            {
                packages.remove(package);
            }
            if packages.is_empty() {
                map.remove(project);
            }
        }
    }

    /// Follows a change to `project/package` made on any host: serves what the store says
    /// is current, or nothing if the package is gone.
    pub async fn refresh(&self, project: &str, package: &str, generation: i64) {
        if self.generation(project, package) >= Some(generation) {
            return;
        }
        let _guard = self.refresh_lock.lock().await;
        match self
            .store
            .current(project.to_string(), package.to_string())
            .await
        {
            Ok(Some(current)) => {
                self.load_current(current).await;
            }
            Ok(None) => {
                self.unserve(project, package, generation);
                // Deleted, maybe on another host: this host's artifacts of the components no
                // version uses any more go now, not at its next start.
                match self.sweep_artifacts(SWEEP_ON_DELETION_AFTER).await {
                    Ok(0) => {}
                    Ok(removed) => tracing::info!(
                        %project, %package, removed,
                        "removed the artifacts of a deleted package's components"
                    ),
                    Err(e) => tracing::warn!(error = %e, "could not sweep the artifacts"),
                }
            }
            Err(e) => tracing::error!(
                %project, %package, error = %e,
                "could not read a package change; it is applied at the next resynchronisation"
            ),
        }
    }

    /// Reloads everything from the store (after the change feed was interrupted): new and
    /// changed packages serve, deleted ones stop.
    pub async fn refresh_all(&self) -> Result<(), PackageError> {
        let _guard = self.refresh_lock.lock().await;
        let rows = self.store.current_versions().await?;
        let live: std::collections::HashSet<(String, String)> = rows
            .iter()
            .map(|c| (c.version.project.clone(), c.version.package.clone()))
            .collect();
        self.load_many(rows).await;
        if let Ok(mut map) = self.serving.write() {
            for (project, packages) in map.iter_mut() {
                packages.retain(|package, _| live.contains(&(project.clone(), package.clone())));
            }
            map.retain(|_, packages| !packages.is_empty());
        }
        Ok(())
    }

    fn artifact_name(&self, sha256: &str) -> String {
        format!("{ARTIFACTS_DIR}/{sha256}{}", self.artifact_suffix())
    }

    /// What follows the sha256 in the name of an artifact this engine compiled (its
    /// compatibility key: another engine's artifacts are named otherwise and never loaded).
    fn artifact_suffix(&self) -> String {
        format!("-{}.cwasm", self.runtime.compat_key())
    }

    /// A pre-instantiated component already serving with this sha256, shared rather than
    /// compiled or loaded again (a component deployed under many names is in memory once).
    fn shared_pre(&self, sha256: &str) -> Option<crate::runtime::state::HostStateProxyPre> {
        let map = self.serving.read().ok()?;
        map.values()
            .flat_map(HashMap::values)
            .find(|s| s.deployed.sha256 == sha256)
            .map(|s| s.deployed.pre.clone())
    }

    /// The component of `sha256` from its precompiled artifact, if there is a loadable one.
    /// The file is opened through the data directory's capability and mapped from that open
    /// file (through `/proc/self/fd` on Linux), never looked up by a path of its own.
    async fn load_artifact(&self, sha256: &str) -> Option<Component> {
        let artifact = self.artifact_name(sha256);
        let file = match self.data_dir.open_file(&artifact) {
            Ok(Some(file)) => file,
            Ok(None) => return None,
            Err(e) => {
                tracing::warn!(%artifact, error = %e, "cannot open artifact; recompiling");
                return None;
            }
        };
        #[cfg(target_os = "linux")]
        let path = {
            use std::os::fd::AsRawFd;
            std::path::PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()))
        };
        #[cfg(not(target_os = "linux"))]
        let path = self.data_dir.path().join(&artifact);
        let rt = self.runtime.clone();
        let loaded = blocking(move || {
            let component = rt.deserialize_file(&path);
            drop(file);
            component
        })
        .await;
        match loaded {
            Ok(component) => Some(component),
            Err(e) => {
                tracing::warn!(%artifact, error = %e, "stale artifact; recompiling");
                None
            }
        }
    }

    /// The component of a version that was accepted once: shared with a serving version,
    /// loaded from its artifact, or (artifact missing or stale) compiled from the stored blob.
    async fn load_version(&self, row: &VersionRow) -> Result<Deployed, PackageError> {
        let pre = self.component(&row.sha256).await?;
        self.deployed_from(row, pre)
    }

    /// The served form of `row` over its pre-instantiated component.
    fn deployed_from(
        &self,
        row: &VersionRow,
        pre: crate::runtime::state::HostStateProxyPre,
    ) -> Result<Deployed, PackageError> {
        let project = Name::parse("project", &row.project)
            .map_err(|e| PackageError::Internal(anyhow::anyhow!(e)))?;
        let package = Name::parse("package", &row.package)
            .map_err(|e| PackageError::Internal(anyhow::anyhow!(e)))?;
        let manifest = Manifest::parse(row.manifest.as_bytes())
            .map_err(|e| PackageError::Internal(anyhow::anyhow!(e)))?;
        Ok(self.runtime.deployed(
            project,
            package,
            row.version,
            row.sha256.clone(),
            pre,
            manifest,
        ))
    }

    /// [`Packages::component`], paired with its sha256.
    async fn component_of<'a>(
        &self,
        sha256: &'a str,
    ) -> (
        &'a str,
        Result<crate::runtime::state::HostStateProxyPre, PackageError>,
    ) {
        (sha256, self.component(sha256).await)
    }

    /// The pre-instantiated component `sha256` of a version accepted once: shared with a
    /// serving version, loaded from its artifact, or (artifact missing or stale) compiled from
    /// the stored blob.
    async fn component(
        &self,
        sha256: &str,
    ) -> Result<crate::runtime::state::HostStateProxyPre, PackageError> {
        if let Some(pre) = self.shared_pre(sha256) {
            return Ok(pre);
        }
        let component = match self.load_artifact(sha256).await {
            Some(c) => c,
            None => {
                tracing::info!(%sha256, "no usable artifact; compiling the stored component");
                let blob = self.store.blob(sha256.to_string()).await?;
                let (component, _) = self.compile(blob).await?;
                self.through_artifact(sha256, component).await?
            }
        };
        let rt = self.runtime.clone();
        let prepared = blocking(move || Ok(rt.prepare(&component)))
            .await
            .map_err(PackageError::Internal)?;
        Ok(prepared?)
    }

    async fn compile(
        &self,
        bytes: Vec<u8>,
    ) -> Result<(Component, crate::runtime::state::HostStateProxyPre), PackageError> {
        let rt = self.runtime.clone();
        tokio::task::spawn_blocking(move || rt.compile(&bytes))
            .await
            .map_err(|e| PackageError::Internal(e.into()))?
            .map_err(PackageError::Rejected)
    }

    /// Writes `component`'s artifact and returns the component mapped from it, so that every
    /// version serves from its artifact as after a restart: compiled code is anonymous memory
    /// held as long as the version serves, an artifact's pages are the page cache's, given back
    /// when the component is idle (`release_idle_code`). `component` itself if the file cannot
    /// be loaded back.
    async fn through_artifact(
        &self,
        sha256: &str,
        component: Component,
    ) -> Result<Component, PackageError> {
        self.write_artifact(sha256, &component).await?;
        Ok(match self.load_artifact(sha256).await {
            Some(loaded) => loaded,
            None => component,
        })
    }

    async fn write_artifact(
        &self,
        sha256: &str,
        component: &Component,
    ) -> Result<(), PackageError> {
        let name = self.artifact_name(sha256);
        if self.data_dir.exists(&name) {
            return Ok(());
        }
        let bytes = self
            .runtime
            .serialize(component)
            .map_err(PackageError::Internal)?;
        let dd = self.data_dir.clone();
        blocking(move || {
            dd.ensure_dir(ARTIFACTS_DIR)?;
            dd.write_atomic(&name, &bytes, 0o600)?;
            Ok(())
        })
        .await
        .map_err(PackageError::Internal)
    }

    /// Checks and compiles an upload and caches its artifact; nothing is recorded yet.
    pub async fn prepare(&self, bytes: Vec<u8>) -> Result<Prepared, PackageError> {
        let sha256 = hex::encode(Sha256::digest(&bytes));
        let bytes = Arc::new(bytes);
        // The same bytes were checked and compiled when first accepted: reuse that work.
        if let Some(pre) = self.shared_pre(&sha256) {
            return Ok(Prepared { sha256, bytes, pre });
        }
        if let Some(component) = self.load_artifact(&sha256).await {
            let pre = self.runtime.prepare(&component)?;
            return Ok(Prepared { sha256, bytes, pre });
        }
        tracing::debug!(bytes = bytes.len(), %sha256, "compiling an upload");
        let rt = self.runtime.clone();
        let to_compile = bytes.clone();
        let (component, _) = tokio::task::spawn_blocking(move || rt.compile(&to_compile))
            .await
            .map_err(|e| PackageError::Internal(e.into()))??;
        let served = self.through_artifact(&sha256, component).await?;
        // The artifact is on disk and no version refers to it yet.
        crate::faults::point("upload.after_artifact");
        let pre = self.runtime.prepare(&served)?;
        Ok(Prepared { sha256, bytes, pre })
    }

    /// Records a prepared upload as the new current version of `project/package`.
    pub async fn commit(
        &self,
        project: Name,
        package: Name,
        prepared: Prepared,
        manifest: Manifest,
        by: &str,
        create_project: bool,
    ) -> Result<Uploaded, PackageError> {
        let Prepared { sha256, bytes, pre } = prepared;
        let size = bytes.len();
        let committed = self
            .store
            .add_version(crate::store::NewVersion {
                project: project.to_string(),
                package: package.to_string(),
                sha256: sha256.clone(),
                bytes,
                manifest: manifest.to_json(),
                by: by.to_string(),
                create_project,
            })
            .await?;
        let version = committed.version;
        // Committed and current in the store; not serving, the client not answered.
        crate::faults::point("upload.after_commit");
        let deployed = self.runtime.deployed(
            project.clone(),
            package.clone(),
            version,
            sha256.clone(),
            pre,
            manifest,
        );
        let (limits, notices) = deployed.limits();
        self.set_serving(deployed, committed.generation);
        Ok(Uploaded {
            project: project.to_string(),
            package: package.to_string(),
            version,
            sha256,
            size,
            limits,
            notices,
        })
    }

    /// Makes `version` (or, if `None`, the newest version older than the current one) current.
    pub async fn rollback(
        &self,
        project: &Name,
        package: &Name,
        version: Option<i64>,
    ) -> Result<i64, PackageError> {
        let (pkg, versions) = self
            .store
            .list_versions(project.to_string(), package.to_string())
            .await?;
        let target = match version {
            Some(v) => v,
            None => {
                let current = pkg.current_version.unwrap_or(i64::MAX);
                versions
                    .iter()
                    .rev()
                    .map(|v| v.version)
                    .find(|v| *v < current)
                    .ok_or_else(|| {
                        StoreError::NotFound(format!(
                            "package {project}/{package} has no version older than {current} \
                             to roll back to"
                        ))
                    })?
            }
        };
        let row = versions
            .into_iter()
            .find(|v| v.version == target)
            .ok_or_else(|| {
                StoreError::NotFound(format!(
                    "package {project}/{package} has no version {target}"
                ))
            })?;
        let deployed = self.load_version(&row).await?;
        let generation = self
            .store
            .set_current(project.to_string(), package.to_string(), target)
            .await?;
        self.set_serving(deployed, generation);
        Ok(target)
    }

    /// Deletes a package and all its versions; it stops serving at once.
    pub async fn delete(&self, project: &Name, package: &Name) -> Result<(), PackageError> {
        let (generation, gone) = self
            .store
            .delete_package(project.to_string(), package.to_string())
            .await?;
        self.unserve(project.as_str(), package.as_str(), generation);
        self.remove_artifacts(&gone).await
    }

    /// Removes the artifacts in `artifacts/` that nothing can load any more: those of
    /// components no version uses (deleted on another host of a cluster, or before a crash),
    /// and those compiled by another engine (an earlier Edgeward or wasmtime; their names carry
    /// its compatibility key). Only files older than `min_age` ([`SWEEP_AFTER`] at start): an
    /// upload writes its artifact before its version is committed. How many went.
    pub async fn sweep_artifacts(
        &self,
        min_age: std::time::Duration,
    ) -> Result<usize, PackageError> {
        let known: std::collections::HashSet<String> =
            self.store.blob_names().await?.into_iter().collect();
        let suffix = self.artifact_suffix();
        let dir = self.data_dir.path().join(ARTIFACTS_DIR);
        let dd = self.data_dir.clone();
        blocking(move || {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                return Ok(0);
            };
            let mut removed = 0;
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if !name.ends_with(".cwasm") {
                    continue;
                }
                let loadable = name
                    .strip_suffix(&suffix)
                    .is_some_and(|sha| known.contains(sha));
                let old = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age >= min_age);
                if !loadable && old {
                    match dd.remove(&format!("{ARTIFACTS_DIR}/{name}")) {
                        Ok(()) => removed += 1,
                        Err(e) => {
                            tracing::warn!(error = %e, %name, "a stale artifact was not removed")
                        }
                    }
                }
            }
            Ok(removed)
        })
        .await
        .map_err(PackageError::Internal)
    }

    /// Removes this host's compiled artifacts of the components `gone` (deleted from the
    /// store: no version uses them). A file that cannot be removed is left, and said in the log.
    async fn remove_artifacts(&self, gone: &[String]) -> Result<(), PackageError> {
        let names: Vec<String> = gone.iter().map(|sha| self.artifact_name(sha)).collect();
        let dd = self.data_dir.clone();
        blocking(move || {
            for name in names {
                if let Err(e) = dd.remove(&name) {
                    tracing::warn!(error = %e, %name, "an artifact of a deleted component was not removed");
                }
            }
            Ok(())
        })
        .await
        .map_err(PackageError::Internal)
    }
}

impl Packages {
    /// Deletes the versions of `project/package` older than its newest `keep` (never the
    /// current one), the components no version uses any more, and their compiled artifacts;
    /// how many components went. `edgeward dev` keeps a few versions, not one per save.
    pub async fn prune(
        &self,
        project: &Name,
        package: &Name,
        keep: u32,
    ) -> Result<usize, PackageError> {
        let gone = self
            .store
            .prune_versions(project.to_string(), package.to_string(), keep)
            .await?;
        self.remove_artifacts(&gone).await?;
        Ok(gone.len())
    }
}

async fn blocking<R: Send + 'static>(
    f: impl FnOnce() -> anyhow::Result<R> + Send + 'static,
) -> anyhow::Result<R> {
    tokio::task::spawn_blocking(f).await?
}
