//! Deploying a package version: the whole orchestration behind an upload, without HTTP.
//!
//! The API's upload handler, the console (through that handler) and the CLI's local loops call
//! [`Packages::deploy`]: it merges deploy-time bindings and literals over the manifest, checks
//! that every binding resolves, checks a `secrets.json` whole, compiles, imports the secrets all
//! or nothing, records the version, and then tidies what the previous `secrets.json` set and
//! this one leaves out. Nothing is written before every check has passed.

use super::{PackageError, Packages, Uploaded};
use crate::code::ErrorCode;
use crate::manifest::Manifest;
use crate::names::{Name, NameRule, SecretName};
use crate::secrets::{
    AnnotationUpdate, BackendError, Owner, ResolveError, Resolver, SecretBackend, SecretValue,
};
use std::sync::Arc;

/// The label that marks a package secret set by a deploy's secrets.json, with the version
/// that deploy wrote: a later secrets.json that leaves the name out deletes it, unless it was
/// written since (through the API, say), which moves its version past the label.
pub const SEEDED_LABEL: &str = "edgeward.secrets-json";

/// One deploy: the component and what travels with it.
pub struct DeployRequest {
    /// The project (created by this deploy only when the deployer is a platform admin).
    pub project: Name,
    /// The package.
    pub package: Name,
    /// The component's bytes.
    pub component: Vec<u8>,
    /// The manifest (`edgeward.toml` or its JSON form; empty for the defaults); `None` keeps
    /// the current version's manifest and bindings (the defaults for a first version).
    pub manifest: Option<Vec<u8>>,
    /// Package secrets to set with this version (checked by the caller's rule on names).
    pub secrets: Option<Vec<(SecretName, SecretValue)>>,
    /// Deploy-time bindings, `ENV` → `NAME[#field]` (`deploy --secret ENV=NAME`).
    pub bindings: Vec<(String, String)>,
    /// Deploy-time literals, `KEY` → `VALUE` (`deploy --env KEY=VALUE`).
    pub env: Vec<(String, String)>,
    /// Who deploys.
    pub by: Deployer,
}

impl std::fmt::Debug for DeployRequest {
    // Secret values stay out of Debug output: names and sizes only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeployRequest")
            .field("project", &self.project)
            .field("package", &self.package)
            .field("component_bytes", &self.component.len())
            .field(
                "secrets",
                &self
                    .secrets
                    .as_ref()
                    .map(|s| s.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>()),
            )
            .field("by", &self.by.user)
            .finish_non_exhaustive()
    }
}

/// Who deploys, and whether they may create the project on the way.
#[derive(Debug, Clone)]
pub struct Deployer {
    /// The user, recorded on the version and the secrets it sets.
    pub user: String,
    /// Only a platform admin creates a project by deploying into it.
    pub platform_admin: bool,
}

/// What a deploy did.
#[derive(Debug)]
pub struct Deployment {
    /// The version now serving.
    pub uploaded: Uploaded,
    /// What `secrets.json` set, sorted.
    pub secrets_set: Vec<String>,
    /// What the previous `secrets.json` set and this one leaves out, now deleted.
    pub secrets_removed: Vec<String>,
    /// The version whose manifest (and bindings) this one kept, when none was sent.
    pub manifest_kept_from: Option<i64>,
}

/// Why a deploy was refused; nothing was written unless the message says so.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// The manifest, or a binding or literal merged into it, is invalid.
    #[error("{0}")]
    BadManifest(String),
    /// A deploy-time binding names a secret no scope holds, or a field its secret lacks.
    #[error("{0}")]
    UnresolvedBinding(String),
    /// A binding could not be checked (a malformed reference).
    #[error("{0}")]
    BadEntry(String),
    /// The project does not exist and the deployer may not create it.
    #[error("{0}")]
    NoProject(String),
    /// The secret backend could not be reached.
    #[error("{0}")]
    Unavailable(String),
    /// The package has no serving version to take the component from.
    #[error("{0}")]
    NoVersion(String),
    /// The serving version is not the one the change was made against.
    #[error("{0}")]
    Conflict(String),
    /// The component was refused, or the store failed.
    #[error(transparent)]
    Package(#[from] PackageError),
    /// The secret backend refused or failed.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

impl DeployError {
    /// The stable code of this refusal.
    pub fn code(&self) -> ErrorCode {
        match self {
            DeployError::BadManifest(_) => ErrorCode::BadManifest,
            DeployError::UnresolvedBinding(_) => ErrorCode::UnresolvedBinding,
            DeployError::BadEntry(_) => ErrorCode::BadEntry,
            DeployError::NoProject(_) | DeployError::NoVersion(_) => ErrorCode::NotFound,
            DeployError::Conflict(_) => ErrorCode::Conflict,
            DeployError::Unavailable(_) => ErrorCode::Unavailable,
            DeployError::Package(_) | DeployError::Backend(_) => ErrorCode::Internal,
        }
    }
}

impl Packages {
    /// Deploys `request` as the next version of its package. Secrets and bindings are checked
    /// against `backend`, new secret names against `names`.
    pub async fn deploy(
        &self,
        backend: &Arc<dyn SecretBackend>,
        names: &NameRule,
        request: DeployRequest,
    ) -> Result<Deployment, DeployError> {
        let DeployRequest {
            project,
            package,
            component,
            manifest,
            secrets: seeds,
            bindings,
            env,
            by,
        } = request;
        for (name, _) in seeds.iter().flatten() {
            names
                .parse_new(name.as_str())
                .map_err(|e| DeployError::BadEntry(e.0))?;
        }
        // No manifest: the current version's, bindings and all, so a redeploy of new code
        // loses nothing; clearing it is explicit (an empty manifest).
        let (manifest, manifest_kept_from) = match manifest {
            Some(text) => (Some(text), None),
            None => {
                let current = self
                    .store
                    .current(project.to_string(), package.to_string())
                    .await
                    .map_err(PackageError::from)?;
                match current {
                    Some(current) => (
                        Some(current.version.manifest.into_bytes()),
                        Some(current.version.version),
                    ),
                    None => (None, None),
                }
            }
        };
        let manifest = merged_manifest(manifest.as_deref(), &bindings, env)?;
        check_bindings(
            backend,
            (&project, &package),
            &manifest,
            &bindings,
            seeds.as_deref(),
        )
        .await?;
        let prepared = self.prepare(component).await?;
        let owner = Owner::Package(project.clone(), package.clone());
        // What the previous secrets.json set and nobody changed since.
        let mut previously_seeded = Vec::new();
        if let Some(seeds) = &seeds {
            let exists = self.store.project_exists(project.to_string()).await;
            let exists = exists.map_err(PackageError::from)?;
            if !exists && !by.platform_admin {
                return Err(DeployError::NoProject(format!("no project {project:?}")));
            }
            // A project made by this deploy has no secrets from an earlier one.
            if exists {
                previously_seeded = seeded_by_secrets_json(backend, &owner).await?;
            }
            backend.import(&owner, seeds, &by.user).await?;
        }
        // Only platform admins create projects, here as on POST /v1/projects.
        let uploaded = self
            .commit(
                project,
                package,
                prepared,
                manifest,
                &by.user,
                by.platform_admin,
            )
            .await?;
        tracing::info!(
            project = %uploaded.project, package = %uploaded.package, version = uploaded.version,
            sha256 = %uploaded.sha256, by = %by.user, "package version deployed"
        );
        let mut deployment = Deployment {
            uploaded,
            secrets_set: Vec::new(),
            secrets_removed: Vec::new(),
            manifest_kept_from,
        };
        if let Some(seeds) = &seeds {
            tidy_seeded(backend, &owner, seeds, previously_seeded, &mut deployment).await?;
        }
        Ok(deployment)
    }
}

impl Packages {
    /// The serving version's component, for a deploy that changes only the manifest (the
    /// console's settings page, `PUT …/manifest`): its number and bytes. With `expected`, the
    /// serving version must be that one, so a change made against a page that went stale is
    /// refused instead of undoing someone else's deploy.
    pub async fn serving_component(
        &self,
        project: &Name,
        package: &Name,
        expected: Option<i64>,
    ) -> Result<(i64, Vec<u8>), DeployError> {
        let current = self
            .store
            .current(project.to_string(), package.to_string())
            .await
            .map_err(PackageError::from)?
            .ok_or_else(|| {
                DeployError::NoVersion(format!(
                    "{project}/{package} has no serving version to take the component from; \
                     upload one"
                ))
            })?;
        let serving = current.version.version;
        if let Some(expected) = expected
            && expected != serving
        {
            return Err(DeployError::Conflict(format!(
                "{project}/{package} serves version {serving}, not {expected}: reload and \
                 make the change again"
            )));
        }
        let bytes = self
            .store
            .blob(current.version.sha256)
            .await
            .map_err(PackageError::from)?;
        Ok((serving, bytes))
    }
}

/// The manifest with deploy-time bindings and literals merged over its `[env]`, and checked.
fn merged_manifest(
    text: Option<&[u8]>,
    bindings: &[(String, String)],
    env: Vec<(String, String)>,
) -> Result<Manifest, DeployError> {
    let manifest = match text {
        Some(text) => Manifest::parse(text).map_err(|e| DeployError::BadManifest(e.0))?,
        None => Manifest::default(),
    };
    if bindings.is_empty() && env.is_empty() {
        return Ok(manifest);
    }
    let mut merged = manifest;
    for (k, v) in env {
        // Literals only: a reference here would bind a secret past the binding check.
        if v.starts_with("secret:") || v.starts_with("credential:") {
            return Err(DeployError::BadManifest(format!(
                "`env`: {k} is a reference ({}…); `env` takes literals, bind secrets with \
                 `bindings` (deploy --secret {k}=NAME)",
                v.split(':').next().unwrap_or_default()
            )));
        }
        merged.env.vars.insert(k, v);
    }
    for (k, v) in bindings {
        let v = v.strip_prefix("secret:").unwrap_or(v);
        merged.env.vars.insert(k.clone(), format!("secret:{v}"));
    }
    Manifest::parse(merged.to_json().as_bytes()).map_err(|e| DeployError::BadManifest(e.0))
}

/// A deploy-time binding must resolve now: a name no scope holds (nor the secrets.json beside
/// it), or a field its secret lacks, is refused here rather than failing every request.
async fn check_bindings(
    backend: &Arc<dyn SecretBackend>,
    (project, package): (&Name, &Name),
    manifest: &Manifest,
    bindings: &[(String, String)],
    seeds: Option<&[(SecretName, SecretValue)]>,
) -> Result<(), DeployError> {
    if bindings.is_empty() {
        return Ok(());
    }
    let resolver = Resolver::with_owners(
        backend.clone(),
        crate::secrets::owner_chain(project.clone(), package.clone()),
        manifest.secrets.clone().map(Arc::from),
        None,
    );
    let mut missing = Vec::new();
    for (var, reference) in bindings {
        let reference = reference.strip_prefix("secret:").unwrap_or(reference);
        let (name, field) = match reference.split_once('#') {
            Some((n, f)) => (n, Some(f)),
            None => (reference, None),
        };
        let seeded = seeds
            .into_iter()
            .flatten()
            .find(|(n, _)| n.as_str() == name);
        let value = match seeded {
            Some((_, value)) => Some(value.clone()),
            None => match resolver.get(name).await {
                Ok(found) => found.map(|(_, s)| s.value),
                Err(ResolveError::Unavailable(m)) => {
                    return Err(DeployError::Unavailable(format!(
                        "checking the binding {var}: {m}"
                    )));
                }
                Err(e) => return Err(DeployError::BadEntry(format!("{var}: {e}"))),
            },
        };
        match (value, field) {
            (None, _) => missing.push(format!("{var} ({name}: no scope holds it)")),
            (Some(v), Some(f)) if v.field(f).is_none() => {
                missing.push(format!("{var} ({name} has no field {f})"));
            }
            _ => {}
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    Err(DeployError::UnresolvedBinding(format!(
        "deploy-time bindings that cannot resolve: {}; set the secrets first, or send them \
         beside the component (--secrets)",
        missing.join(", ")
    )))
}

/// The package secrets the previous secrets.json set and nobody changed since: those that
/// carry the marker label at the version it names.
async fn seeded_by_secrets_json(
    backend: &Arc<dyn SecretBackend>,
    owner: &Owner,
) -> Result<Vec<SecretName>, DeployError> {
    Ok(backend
        .list(owner)
        .await?
        .into_iter()
        .filter(|m| m.annotations.labels.get(SEEDED_LABEL) == Some(&m.version.to_string()))
        .map(|m| m.name)
        .collect())
}

/// The new version serves: marks what this secrets.json set, and drops what the previous one
/// set that this one leaves out (a file that drops a name drops the secret). A failure here
/// is a notice, not an error: the version is deployed.
async fn tidy_seeded(
    backend: &Arc<dyn SecretBackend>,
    owner: &Owner,
    seeds: &[(SecretName, SecretValue)],
    previously_seeded: Vec<SecretName>,
    deployment: &mut Deployment,
) -> Result<(), DeployError> {
    let listed = backend.list(owner).await?;
    for (name, _) in seeds {
        let Some(meta) = listed.iter().find(|m| &m.name == name) else {
            continue;
        };
        let mut labels = meta.annotations.labels.clone();
        labels.insert(SEEDED_LABEL.to_string(), meta.version.to_string());
        let update = AnnotationUpdate {
            description: None,
            labels: Some(labels),
        };
        if let Err(e) = backend.annotate(owner, name, &update).await {
            tracing::warn!(secret = %name, error = %e, "could not mark a secret set by secrets.json");
        }
        deployment.secrets_set.push(name.to_string());
    }
    deployment.secrets_set.sort();
    for name in previously_seeded {
        if seeds.iter().any(|(n, _)| *n == name) {
            continue;
        }
        match backend.delete(owner, &name).await {
            Ok(_) => deployment.secrets_removed.push(name.to_string()),
            Err(e) => {
                tracing::warn!(secret = %name, error = %e, "could not delete a secret the new secrets.json drops");
                deployment.uploaded.notices.push(format!(
                    "the package secret {name} was set by the previous secrets.json and this \
                     one drops it, but deleting it failed; delete it with `edgeward secrets rm \
                     {name}`"
                ));
            }
        }
    }
    Ok(())
}
