//! `edgeward dev`: the project on this machine, with no server, token or login.
//!
//! Builds the project (its `edgeward.toml`), starts an embedded server in this process on a data
//! directory of its own (`.edgeward-dev/` beside the file), deploys through the same
//! [`Packages::deploy`](crate::packages::Packages::deploy) as an upload, with the file's
//! manifest and `dev-secrets.json` as the package's secrets, prints the URL and then one line
//! per request (as `logs --follow`: status, time, output). On every saved change under the
//! project directory it builds and deploys again; a failed build or deploy is printed and the
//! last good version keeps serving. Ctrl-C stops it cleanly.

use super::client::{ClientError, err};
use super::project::Project;
use crate::code::ErrorCode;
use crate::names::Name;
use crate::packages::deploy::{DeployRequest, Deployer};
use crate::runtime::compile_cache::CompileCache;
use crate::server::Server;
use clap::Args;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The file of local secrets `dev` gives the function (package scope).
pub const DEV_SECRETS: &str = "dev-secrets.json";
/// The data directory `dev` keeps beside the project file.
pub const DEV_DATA_DIR: &str = ".edgeward-dev";
/// How long after the last change in a burst (an editor's save, a `git checkout`) a rebuild
/// starts.
const SETTLE: Duration = Duration::from_millis(150);
/// Cranelift's incremental cache, in the data directory: a restart of `dev` compiles what it
/// compiled before from the cache too.
const COMPILE_CACHE: &str = "compile-cache";
/// The compile cache's bound, in memory and on disk (a Python component's functions take
/// ~60 MB, a JavaScript one's ~40 MB).
const COMPILE_CACHE_BYTES: u64 = 256 << 20;
/// Versions `dev` keeps of the package (older ones, their components and artifacts go after
/// each deploy): a Python save is a 19 MB component and a 46 MB artifact, and an afternoon of
/// saves would otherwise fill the disk.
const KEEP_VERSIONS: u32 = 5;

/// `edgeward dev`'s flags.
#[derive(Debug, Args)]
pub struct DevArgs {
    /// The project file (default `./edgeward.toml`).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub project_file: Option<PathBuf>,
    /// Where functions are served (port 0 picks a free one; the URL is printed).
    #[arg(long, default_value = "127.0.0.1:8787")]
    pub listen: SocketAddr,
    /// Compile every function of every build, none from the compile cache (to compare).
    #[arg(long)]
    pub no_compile_cache: bool,
}

/// Paths whose changes are the build's own output or tools' state, not sources.
fn is_source(path: &Path, dir: &Path) -> bool {
    let Ok(relative) = path.strip_prefix(dir) else {
        return false;
    };
    let skipped = relative.components().any(|c| {
        matches!(
            c.as_os_str().to_str(),
            Some("target" | DEV_DATA_DIR | "node_modules" | "__pycache__" | ".git")
        )
    });
    let output = path
        .extension()
        .is_some_and(|e| ["wasm", "pyc", "swp", "tmp", "log"].iter().any(|x| e == *x))
        || path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with('~') || n.starts_with(".#"));
    !skipped && !output
}

/// Runs `edgeward dev` until Ctrl-C.
pub async fn run(args: DevArgs) -> Result<(), ClientError> {
    let project = Project::load(args.project_file.as_deref())?;
    let target = project.target()?.to_string();
    let (project_name, package_name) = names(&target)?;
    let dir = std::fs::canonicalize(&project.dir)
        .map_err(|e| err(ErrorCode::Io, format!("{}: {e}", project.dir.display())))?;

    let cache = (!args.no_compile_cache).then(|| compile_cache(&dir));
    let server = start_server(&dir, args.listen, cache.clone()).await?;
    let url = format!(
        "http://{}/{project_name}/{package_name}/",
        server.listen_addr()
    );
    let api = format!("http://{}", server.api_addr());
    eprintln!(
        "edgeward dev: {target} from {}; data in {DEV_DATA_DIR}/, API {api}",
        dir.display()
    );

    let dev = Dev {
        project,
        dir: dir.clone(),
        project_name,
        package_name,
        app: server.app().clone(),
        cache,
    };
    let mut follower: Option<tokio::task::JoinHandle<()>> = None;
    // Requests are printed from here on, even those made before the log stream is open.
    let started_ms = crate::store::now_ms();
    let round = |deployed: bool, follower: &mut Option<tokio::task::JoinHandle<()>>| {
        if deployed && follower.is_none() {
            // One line per request, from the first version on (the package exists now).
            let token = std::fs::read_to_string(dir.join(DEV_DATA_DIR).join("admin.token"))
                .unwrap_or_default();
            let conn = super::ConnArgs {
                api: Some(api.clone()),
                token: Some(token.trim().to_string()),
                profile: None,
                data_dir: dir.join(DEV_DATA_DIR),
            };
            let target = target.clone();
            *follower = Some(tokio::spawn(async move {
                if let Ok(client) = super::client::Client::from_args(&conn)
                    && let Err(e) =
                        super::logs::logs(&client, &target, true, None, 0, Some(started_ms)).await
                {
                    eprintln!("edgeward dev: request log stopped: {e}");
                }
            }));
        }
    };
    let shutdown = crate::server::wait_for_shutdown_signal();
    tokio::pin!(shutdown);
    let first = tokio::select! {
        _ = &mut shutdown => {
            eprintln!("edgeward dev: stopping");
            server.shutdown().await;
            return Ok(());
        }
        deployed = dev.build_and_deploy() => deployed,
    };
    // Watching before saying "serving": a save made as soon as the URL shows is seen.
    let (watcher, mut rx) = watch(&dir)?;
    if first {
        println!("serving {url}");
    }
    round(first, &mut follower);
    eprintln!("watching {} for changes; Ctrl-C stops", dir.display());

    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            changed = rx.recv() => {
                let Some(first_path) = changed else { break };
                // Let the burst settle, then build once for all of it.
                while let Ok(Some(_)) = tokio::time::timeout(SETTLE, rx.recv()).await {}
                let shown = first_path.strip_prefix(&dir).unwrap_or(&first_path).display().to_string();
                eprintln!("changed: {shown}");
                let deployed = tokio::select! {
                    _ = &mut shutdown => break,
                    deployed = dev.build_and_deploy() => deployed,
                };
                if deployed && follower.is_none() {
                    println!("serving {url}");
                }
                round(deployed, &mut follower);
                // What the build itself touched is not a change to build again for.
                while rx.try_recv().is_ok() {}
            }
        }
    }
    drop(watcher);
    if let Some(follower) = follower {
        follower.abort();
    }
    eprintln!("edgeward dev: stopping");
    server.shutdown().await;
    eprintln!("stopped");
    Ok(())
}

/// The project and package of a `project/package` target, checked.
fn names(target: &str) -> Result<(Name, Name), ClientError> {
    let (project, package) = super::split_target(target)?;
    let bad = |e: crate::names::BadName| err(ErrorCode::BadManifest, e.0);
    Ok((
        Name::parse("project", project).map_err(bad)?,
        Name::parse("package", package).map_err(bad)?,
    ))
}

/// Watches `dir` for changes to sources (not what a build writes); the paths changed.
fn watch(
    dir: &std::path::Path,
) -> Result<
    (
        notify::RecommendedWatcher,
        tokio::sync::mpsc::UnboundedReceiver<PathBuf>,
    ),
    ClientError,
> {
    let dir = dir.to_path_buf();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<PathBuf>();
    let watched = dir.clone();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if matches!(event.kind, notify::EventKind::Access(_)) {
            return;
        }
        for path in event.paths {
            if is_source(&path, &watched) {
                let _ = tx.send(path);
            }
        }
    })
    .map_err(|e| {
        err(
            ErrorCode::Io,
            format!("cannot watch {}: {e}", dir.display()),
        )
    })?;
    notify::Watcher::watch(&mut watcher, &dir, notify::RecursiveMode::Recursive).map_err(|e| {
        err(
            ErrorCode::Io,
            format!("cannot watch {}: {e}", dir.display()),
        )
    })?;
    Ok((watcher, rx))
}

/// The compile cache kept in the project's `.edgeward-dev/` (loaded now if there is one).
fn compile_cache(dir: &Path) -> Arc<CompileCache> {
    let data = dir.join(DEV_DATA_DIR);
    // (The server makes the directory too; made here first, as it would, to hold the file.)
    let _ =
        std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
            .create(&data);
    Arc::new(CompileCache::with_file(
        data.join(COMPILE_CACHE),
        COMPILE_CACHE_BYTES,
    ))
}

/// The embedded server: its data in the project's `.edgeward-dev/`, its data plane on `listen`,
/// its API on a free loopback port, components compiled fast rather than well and functions
/// compiled before taken from `cache` (if there is one).
async fn start_server(
    dir: &std::path::Path,
    listen: SocketAddr,
    cache: Option<Arc<CompileCache>>,
) -> Result<Server, ClientError> {
    let mut config = crate::config::ServeConfig::with_data_dir(dir.join(DEV_DATA_DIR));
    config.listen = listen;
    config.api_listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.drain_timeout = Duration::from_secs(2);
    // Every save is a new component: compile it fast rather than well.
    config.runtime.quick_compile = true;
    // ... and most of its functions are those of the last one (the same interpreter, relinked).
    config.runtime.compile_cache = cache;
    Server::start(config)
        .await
        .map_err(|e| err(ErrorCode::Unavailable, format!("{e:#}")))
}

/// What a round of building and deploying needs.
struct Dev {
    project: Project,
    dir: PathBuf,
    project_name: Name,
    package_name: Name,
    app: Arc<crate::app::App>,
    cache: Option<Arc<CompileCache>>,
}

impl Dev {
    /// Builds and deploys; says what happened. `false` when either failed (the previous
    /// version, if any, keeps serving).
    async fn build_and_deploy(&self) -> bool {
        let started = Instant::now();
        if let Err(e) = self.project.run_build().await {
            eprintln!("error: {e}\n(still serving the last good version; save to retry)");
            return false;
        }
        let built = started.elapsed();
        let before = self.cache.as_ref().map(|c| c.stats());
        match self.deploy().await {
            Ok(version) => {
                let reused = match (&self.cache, before) {
                    (Some(cache), Some(before)) => {
                        let compiled = cache.stats().since(before);
                        if compiled.misses > 0 {
                            // Kept for the next run of `dev`, off the path to serving.
                            let cache = cache.clone();
                            tokio::task::spawn_blocking(move || {
                                if let Err(e) = cache.save() {
                                    tracing::debug!(error = %e, "compile cache not saved");
                                }
                            });
                        }
                        if compiled.hits + compiled.misses == 0 {
                            "nothing to compile".to_string()
                        } else {
                            format!(
                                "{} of {} functions from the compile cache",
                                compiled.hits,
                                compiled.hits + compiled.misses
                            )
                        }
                    }
                    _ => "compile cache off".to_string(),
                };
                eprintln!(
                    "deployed version {version} (built in {:.1} s, deployed in {:.1} s; {reused})",
                    built.as_secs_f64(),
                    (started.elapsed() - built).as_secs_f64()
                );
                true
            }
            Err(e) => {
                eprintln!("error: {e}\n(still serving the last good version; save to retry)");
                false
            }
        }
    }

    async fn deploy(&self) -> Result<i64, ClientError> {
        let path = self.project.component()?;
        let component = tokio::fs::read(path)
            .await
            .map_err(|e| err(ErrorCode::Io, format!("{}: {e}", path.display())))?;
        let secrets_path = self.dir.join(DEV_SECRETS);
        let secrets = match tokio::fs::read(&secrets_path).await {
            Ok(text) => {
                let json: serde_json::Value = serde_json::from_slice(&text).map_err(|e| {
                    err(
                        ErrorCode::BadEntry,
                        format!("{DEV_SECRETS} is not valid JSON: {e}"),
                    )
                })?;
                let parsed = crate::api::secrets::parse_secrets_json(&json)
                    .map_err(|e| err(e.code, format!("{DEV_SECRETS}: {}", e.message)))?;
                Some(parsed)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(err(
                    ErrorCode::Io,
                    format!("{}: {e}", secrets_path.display()),
                ));
            }
        };
        let request = DeployRequest {
            project: self.project_name.clone(),
            package: self.package_name.clone(),
            component,
            manifest: Some(self.project.manifest.clone()),
            secrets,
            bindings: Vec::new(),
            env: Vec::new(),
            by: Deployer {
                user: "admin".into(),
                platform_admin: true,
            },
        };
        let deployment = self
            .app
            .packages
            .deploy(&self.app.backend, &self.app.secret_names, request)
            .await
            .map_err(|e| err(e.code(), e.to_string()))?;
        for notice in &deployment.uploaded.notices {
            eprintln!("note: {notice}");
        }
        if let Err(e) = self
            .app
            .packages
            .prune(&self.project_name, &self.package_name, KEEP_VERSIONS)
            .await
        {
            eprintln!("note: older versions not pruned: {e}");
        }
        Ok(deployment.uploaded.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_output_and_tool_state_are_not_sources() {
        let dir = Path::new("/p");
        for source in [
            "/p/app.py",
            "/p/src/lib.rs",
            "/p/edgeward.toml",
            "/p/dev-secrets.json",
        ] {
            assert!(is_source(Path::new(source), dir), "{source}");
        }
        for not in [
            "/p/app.wasm",
            "/p/target/debug/x.rs",
            "/p/.edgeward-dev/edgeward.db",
            "/p/node_modules/a/b.js",
            "/p/__pycache__/app.cpython-312.pyc",
            "/p/.git/index",
            "/p/app.py~",
            "/elsewhere/app.py",
        ] {
            assert!(!is_source(Path::new(not), dir), "{not}");
        }
    }
}
