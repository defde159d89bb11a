//! Secrets written from a function (WIT `set` and `delete`).
//!
//! A function writes only where two things agree: its manifest grants the scope
//! (`write-secrets = ["package"]`), and the user whose token triggered the execution may write
//! that scope through the API (a developer package scope, a project admin project scope, a
//! platform admin platform scope, a user their own user scope, sealed under their key). No
//! token, no write. User scope also needs the name among the manifest's `user-secrets` and the
//! user's grant of the version; an execution that opened user scope writes nowhere else (no copy
//! of a user's value into a scope others read). Names and values pass the API's checks and
//! limits; every attempt, refused or not, is audited as that user, naming the package, version
//! and execution.

use super::policy::Right;
use super::{BackendError, Owner, Resolver, Scope, SecretValue, WriteMode};
use crate::names::{Name, NameRule, SecretName};
use crate::store::{Role, Store};
use std::sync::Arc;

/// Why a write was refused; maps one-to-one onto the WIT `write-error` variant. Never carries a
/// value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// The name breaks the rule.
    #[error("{0}")]
    InvalidName(String),
    /// The value is not one the API would take.
    #[error("{0}")]
    InvalidValue(String),
    /// Over the size limit.
    #[error("{0}")]
    TooLarge(String),
    /// Not granted, no user, or the user may not.
    #[error("{0}")]
    Denied(String),
    /// The backend could not answer.
    #[error("{0}")]
    Unavailable(String),
}

impl WriteError {
    /// The HTTP status and outcome the audit record gets, as an API call refused the same way.
    /// The status the API would answer this with, for the audit record.
    fn status(&self) -> u16 {
        match self {
            WriteError::Denied(_) => 403,
            WriteError::InvalidName(_) | WriteError::InvalidValue(_) => 400,
            WriteError::TooLarge(_) => 413,
            WriteError::Unavailable(_) => 503,
        }
    }
}

/// Who triggered the execution, and what its package may write: fixed by the host per request.
pub struct Writer {
    store: Store,
    /// The triggering user.
    user: String,
    /// Their token's public id, for the audit record.
    token_id: String,
    platform_admin: bool,
    /// Their data key, when the version declares user secrets and the user granted it
    /// (user-scope writes are sealed under it). An execution holding it opened the user's
    /// scope, and writes nowhere else.
    key: Option<Arc<super::userkey::UserKey>>,
    project: Name,
    package: Name,
    version: i64,
    execution: String,
    /// The scopes the manifest grants.
    grants: Vec<Scope>,
    /// The manifest says `write-secrets-as = "package"`: writes to the package's own scope
    /// act as the package ([`super::policy::PACKAGE_WRITES`]).
    as_package: bool,
    /// No caller token: only what the package may write as itself.
    anonymous: bool,
    names: NameRule,
    /// Writes attempted so far, refused ones included.
    attempts: std::sync::atomic::AtomicU32,
}

/// The most writes (and deletes) one execution may attempt, refused ones included: each is an
/// audit record, and a guest looping on a refused write must not fill the audit log.
pub const MAX_WRITES: u32 = 64;

/// Audit records of function writes kept per second, per user and package.
pub const AUDITED_PER_SECOND: u32 = 20;

/// The limit on audit records of function writes, per (user, project, package).
static FUNCTION_WRITES: crate::audit::Limit<(String, String, String)> =
    crate::audit::Limit::new(AUDITED_PER_SECOND);

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("user", &self.user)
            .field("grants", &self.grants)
            .finish_non_exhaustive()
    }
}

/// What a write does.
enum Op<'a> {
    Set(&'a SecretValue),
    Delete,
}

/// The request that triggered an execution, as far as writes need it.
pub struct Triggered<'a> {
    /// The user the token belongs to.
    pub user: &'a str,
    /// The token's public id.
    pub token_id: &'a str,
    /// Whether the user is a platform admin.
    pub platform_admin: bool,
    /// The user's data key, where the user granted this version.
    pub key: Option<Arc<super::userkey::UserKey>>,
    /// The execution id.
    pub execution: &'a str,
}

impl Writer {
    /// The writer for one execution of `project/package` `version`, triggered by `by`.
    pub fn new(
        store: Store,
        by: Triggered<'_>,
        (project, package, version): (Name, Name, i64),
        grants: Vec<Scope>,
        names: NameRule,
    ) -> Writer {
        Writer {
            store,
            user: by.user.to_string(),
            token_id: by.token_id.to_string(),
            platform_admin: by.platform_admin,
            key: by.key,
            project,
            package,
            version,
            execution: by.execution.to_string(),
            grants,
            as_package: false,
            anonymous: false,
            names,
            attempts: std::sync::atomic::AtomicU32::new(0),
        }
    }

    /// Lets writes to the package's own scope act as the package (`write-secrets-as =
    /// "package"`).
    pub fn acting_as_package(mut self, yes: bool) -> Writer {
        self.as_package = yes;
        self
    }

    /// The writer of an execution triggered without a token, for a package whose manifest
    /// says `write-secrets-as = "package"`: it writes its own package scope as itself, and
    /// nothing else.
    pub fn package_only(
        store: Store,
        execution: &str,
        (project, package, version): (Name, Name, i64),
        grants: Vec<Scope>,
        names: NameRule,
    ) -> Writer {
        let user = format!("package:{project}/{package}");
        Writer {
            anonymous: true,
            ..Writer::new(
                store,
                Triggered {
                    user: &user,
                    token_id: "",
                    platform_admin: false,
                    key: None,
                    execution,
                },
                (project, package, version),
                grants,
                names,
            )
            .acting_as_package(true)
        }
    }

    /// Whether a write to `scope` acts as the package rather than the caller.
    fn as_package_in(&self, scope: Scope) -> bool {
        self.as_package && super::policy::PACKAGE_WRITES.contains(&scope)
    }

    /// Counts one attempt; past [`MAX_WRITES`] the attempt is refused, and only the first
    /// refusal of that kind is audited.
    async fn count(&self, op: &str, scope: Scope, name: &str) -> Result<(), WriteError> {
        let n = self
            .attempts
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if n < MAX_WRITES {
            return Ok(());
        }
        let refused = WriteError::Denied(format!(
            "an execution may attempt at most {MAX_WRITES} secret writes and deletes"
        ));
        if n == MAX_WRITES {
            self.audit(op, scope, name, Some(&refused)).await;
        }
        Err(refused)
    }

    /// Writes `value` as `name` in `scope`; the new version.
    pub async fn set(
        &self,
        resolver: &Resolver,
        scope: Scope,
        name: &str,
        value: &SecretValue,
    ) -> Result<u64, WriteError> {
        self.count("set", scope, name).await?;
        let result = self.write(resolver, scope, name, Op::Set(value)).await;
        self.audit("set", scope, name, result.as_ref().err()).await;
        result.map(|v| v.unwrap_or(0))
    }

    /// Deletes `name` from `scope`; whether it was there.
    pub async fn delete(
        &self,
        resolver: &Resolver,
        scope: Scope,
        name: &str,
    ) -> Result<bool, WriteError> {
        self.count("delete", scope, name).await?;
        let result = self.write(resolver, scope, name, Op::Delete).await;
        self.audit("delete", scope, name, result.as_ref().err())
            .await;
        result.map(|v| v.is_some())
    }

    /// The write itself: `Some(version)` written (`Some(0)` for a delete that found the
    /// secret), `None` for a delete that found nothing.
    async fn write(
        &self,
        resolver: &Resolver,
        scope: Scope,
        name: &str,
        op: Op<'_>,
    ) -> Result<Option<u64>, WriteError> {
        let name = resolver.checked(name).map_err(|e| match e {
            super::ResolveError::InvalidName(m) => WriteError::InvalidName(m),
            other => WriteError::Denied(other.to_string()),
        })?;
        self.may_write(resolver, scope, &name).await?;
        if let Op::Set(_) = op {
            self.names
                .parse_new(name.as_str())
                .map_err(|e| WriteError::InvalidName(e.0))?;
        }
        let owner = self.owner(scope);
        resolver
            .spend_call()
            .map_err(|e| WriteError::Unavailable(e.to_string()))?;
        let backend = &resolver.backend;
        match op {
            Op::Set(value) => {
                let value = match (&owner, &self.key) {
                    (Owner::User(user), Some(key)) => key.seal(user, name.as_str(), value),
                    _ => value.clone(),
                };
                let by = if self.as_package_in(scope) {
                    format!("package:{}/{}", self.project, self.package)
                } else {
                    self.user.clone()
                };
                backend
                    .write(&owner, &name, &value, &by, WriteMode::Upsert)
                    .await
                    .map(Some)
                    .map_err(backend_error)
            }
            Op::Delete => match backend.delete(&owner, &name).await {
                Ok(true) => Ok(Some(0)),
                Ok(false) => Ok(None),
                Err(e) => Err(backend_error(e)),
            },
        }
    }

    fn owner(&self, scope: Scope) -> Owner {
        match scope {
            Scope::Package => Owner::Package(self.project.clone(), self.package.clone()),
            Scope::Project => Owner::Project(self.project.clone()),
            Scope::Platform => Owner::Platform,
            Scope::User => Owner::User(self.user.clone()),
        }
    }

    /// The manifest's grant, then the user's own right to write `scope` through the API.
    async fn may_write(
        &self,
        resolver: &Resolver,
        scope: Scope,
        name: &SecretName,
    ) -> Result<(), WriteError> {
        if self.key.is_some() && scope != Scope::User {
            return Err(WriteError::Denied(format!(
                "this execution opened {}'s user scope, so it writes only there (no copy of a \
                 user's value into a scope others read)",
                self.user
            )));
        }
        if !self.grants.contains(&scope) {
            return Err(WriteError::Denied(format!(
                "this package's manifest does not let it write {scope} secrets (add \
                 write-secrets = [\"{scope}\"])"
            )));
        }
        if self.as_package_in(scope) {
            return Ok(());
        }
        if self.anonymous {
            return Err(WriteError::Denied(format!(
                "without a caller token this function writes only its own package scope \
                 (write-secrets-as = \"package\"); {scope} secrets need a caller who may write them"
            )));
        }
        let needed = match super::policy::rights(scope).write {
            // The same rule as a read: declared, granted, opened with the user's key.
            Right::Owner => {
                return resolver
                    .check_user(name.as_str())
                    .map(|_| ())
                    .map_err(|e| WriteError::Denied(e.to_string()));
            }
            _ if self.platform_admin => return Ok(()),
            Right::PlatformAdmin => {
                return Err(WriteError::Denied(format!(
                    "{} is not a platform admin, so this function may not write {scope} \
                     secrets for them",
                    self.user
                )));
            }
            Right::Role(role) => role,
            Right::ProjectValue => Role::Admin,
        };
        let role = self
            .store
            .role_of(self.project.to_string(), self.user.clone())
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "could not read a role for a function's secret write");
                WriteError::Unavailable(super::GUEST_UNAVAILABLE.into())
            })?;
        match role {
            Some(have) if have >= needed => Ok(()),
            have => Err(WriteError::Denied(format!(
                "writing {scope} secrets needs the {} role in project {}; {} is {}",
                needed.as_str(),
                self.project,
                self.user,
                have.map_or("not a member", |r| r.as_str())
            ))),
        }
    }

    /// One audit record per attempt, as the user, naming the package and execution; at most
    /// [`AUDITED_PER_SECOND`] a second per user and package, the rest counted into the next
    /// record kept (a guest looping on refused writes across many requests cannot flood the
    /// log).
    async fn audit(&self, op: &str, scope: Scope, name: &str, error: Option<&WriteError>) {
        let key = (
            self.user.clone(),
            self.project.to_string(),
            self.package.to_string(),
        );
        let Some(suppressed) = FUNCTION_WRITES.admit(key) else {
            return;
        };
        let status = error.map_or(200, WriteError::status);
        // The name as the API's path would show it; an invalid one is shortened, as there.
        let shown = SecretName::parse(name).map_or_else(
            |_| name.chars().take(64).collect::<String>(),
            |n| n.to_string(),
        );
        let target = format!("{}/{shown}", self.owner(scope).api_collection());
        let mut detail = format!(
            "from the function {}/{} version {}, execution {}",
            self.project, self.package, self.version, self.execution
        );
        if let Some(e) = error {
            detail.push_str(": ");
            detail.push_str(&e.to_string());
        }
        if suppressed > 0 {
            detail.push_str(&format!(
                " ({suppressed} earlier attempts of this user and package were not recorded: \
                 over {AUDITED_PER_SECOND} a second)"
            ));
        }
        let actor = if self.as_package_in(scope) {
            if !self.anonymous {
                detail.push_str(&format!(" (as the package; called by {})", self.user));
            }
            crate::audit::Actor::Package {
                project: self.project.to_string(),
                package: self.package.to_string(),
            }
        } else {
            crate::audit::Actor::User {
                name: self.user.clone(),
                token_id: Some(self.token_id.clone()),
            }
        };
        let entry = crate::audit::Entry {
            actor,
            action: format!("function secrets.{op}"),
            target,
            project: Some(self.project.to_string()),
            scope: Some(scope),
            remote: None,
            status,
            outcome: crate::audit::Outcome::of_status(status),
            detail: Some(detail),
        };
        crate::audit::record(&self.store, entry).await;
    }
}

/// A backend failure as the guest sees it: its own words for what the value cannot be, a
/// fixed message for everything else (the cause, which names Vault, goes to the log).
fn backend_error(e: BackendError) -> WriteError {
    match e {
        BackendError::Refused(m) => WriteError::InvalidValue(m),
        BackendError::NotFound(m) => WriteError::Denied(m),
        other => {
            super::warn_backend_failure(&other, "a function's secret write failed in the backend");
            WriteError::Unavailable(super::GUEST_UNAVAILABLE.into())
        }
    }
}

/// Checks a value a guest asks to write as the API checks one: a JSON object where it says
/// object (numbers without exponents), at most [`super::MAX_VALUE_BYTES`].
pub fn value_of(text: String, object: bool) -> Result<SecretValue, WriteError> {
    let json = if object {
        let doc: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
            WriteError::InvalidValue(format!("an object value must be a JSON object: {e}"))
        })?;
        if !doc.is_object() {
            return Err(WriteError::InvalidValue(
                "an object value must be a JSON object".into(),
            ));
        }
        doc
    } else {
        serde_json::Value::String(text)
    };
    super::value_from_json(&json).map_err(|e| match e {
        super::ValueError::TooLarge(_) => WriteError::TooLarge(e.to_string()),
        other => WriteError::InvalidValue(other.to_string()),
    })
}
