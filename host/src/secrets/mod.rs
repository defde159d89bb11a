//! Secrets: scopes, values, the backend trait and resolution.
//!
//! The guest-facing interface ([`guest`]) is kept apart from the backends ([`embedded`] and
//! [`vault`]): it talks to one [`SecretBackend`] trait, and resolution rules live here, once.
//! Who may read and write each scope is one table, [`policy`].
//! Values are held in [`SecretValue`], whose `Debug` never prints them and which zeroizes on drop.

pub mod cache;
pub mod consent;
pub mod embedded;
pub mod guest;
pub mod policy;
pub mod userkey;
pub mod vault;
pub mod writes;

use crate::names::{Name, SecretName};
pub use crate::names::{Scope, field_name_ok};
pub use crate::store::WriteMode;
use secrecy::{ExposeSecret, SecretString};
use std::fmt;
use std::sync::Arc;

/// Whose secrets: a scope together with its owner.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Owner {
    /// The platform's secrets.
    Platform,
    /// A project's shared secrets.
    Project(Name),
    /// A package's own secrets.
    Package(Name, Name),
    /// A user's secrets (by user id).
    User(String),
}

impl Owner {
    /// The API's collection path of this owner's secrets (what an audit record of a write to
    /// one of them names, whichever way it came).
    pub fn api_collection(&self) -> String {
        match self {
            Owner::Platform => "/v1/secrets/platform".into(),
            Owner::Project(p) => format!("/v1/projects/{p}/secrets"),
            Owner::Package(p, k) => format!("/v1/projects/{p}/packages/{k}/secrets"),
            Owner::User(u) => format!("/v1/users/{u}/secrets"),
        }
    }

    /// The owner that [`Owner::key`] gave `key` for, in `scope` (as the change feed carries
    /// them); `None` for what is not a valid pair.
    pub fn from_key(scope: &str, key: &str) -> Option<Owner> {
        Some(match Scope::parse(scope)? {
            Scope::Platform if key.is_empty() => Owner::Platform,
            Scope::Platform => return None,
            Scope::Project => Owner::Project(Name::parse("project", key).ok()?),
            Scope::Package => {
                let (project, package) = key.split_once('/')?;
                Owner::Package(
                    Name::parse("project", project).ok()?,
                    Name::parse("package", package).ok()?,
                )
            }
            Scope::User => Owner::User(key.to_string()),
        })
    }

    /// The scope this owner's secrets are in.
    pub fn scope(&self) -> Scope {
        match self {
            Owner::Platform => Scope::Platform,
            Owner::Project(_) => Scope::Project,
            Owner::Package(..) => Scope::Package,
            Owner::User(_) => Scope::User,
        }
    }

    /// A stable key for the owner within its scope (`""`, `p`, `p/pkg`, `user`).
    pub fn key(&self) -> String {
        match self {
            Owner::Platform => String::new(),
            Owner::Project(p) => p.to_string(),
            Owner::Package(p, pkg) => format!("{p}/{pkg}"),
            Owner::User(u) => u.clone(),
        }
    }
}

/// A secret's value: a plain string or a JSON object of fields. Never printed.
#[derive(Clone)]
pub enum SecretValue {
    /// A plain string.
    Text(Arc<SecretString>),
    /// A JSON object, as text.
    Object(Arc<SecretString>),
}

impl SecretValue {
    /// A plain-string value.
    pub fn text(s: String) -> SecretValue {
        SecretValue::Text(Arc::new(SecretString::from(s)))
    }

    /// A JSON-object value (the caller has checked it is an object).
    pub fn object(s: String) -> SecretValue {
        SecretValue::Object(Arc::new(SecretString::from(s)))
    }

    /// The plaintext. Every caller is a place where a value leaves its wrapper.
    pub fn expose(&self) -> &str {
        match self {
            SecretValue::Text(s) | SecretValue::Object(s) => s.expose_secret(),
        }
    }

    /// Whether this is a multi-field (object) value.
    pub fn is_object(&self) -> bool {
        matches!(self, SecretValue::Object(_))
    }

    /// Field `name` of a multi-field value, as text: a string as it is, a number or boolean as
    /// written, an object or array as JSON. `None` for a plain value, a missing field or `null`.
    pub fn field(&self, name: &str) -> Option<zeroize::Zeroizing<String>> {
        if !self.is_object() {
            return None;
        }
        let fields: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(self.expose()).ok()?;
        field_text(fields.get(name)?)
    }

    /// Every field of a multi-field value (`None` for a plain value), as [`SecretValue::field`]
    /// gives each; `null` fields are left out.
    pub fn fields(&self) -> Option<Vec<(String, zeroize::Zeroizing<String>)>> {
        if !self.is_object() {
            return None;
        }
        let fields: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(self.expose()).ok()?;
        Some(
            fields
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), field_text(v)?)))
                .collect(),
        )
    }
}

fn field_text(v: &serde_json::Value) -> Option<zeroize::Zeroizing<String>> {
    match v {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(zeroize::Zeroizing::new(s.clone())),
        other => Some(zeroize::Zeroizing::new(other.to_string())),
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretValue::Text(_) => f.write_str("Text(***)"),
            SecretValue::Object(_) => f.write_str("Object(***)"),
        }
    }
}

/// `value` as the bytes encryption takes: a tag (`t` text, `o` object) and the text.
pub(crate) fn tagged(value: &SecretValue) -> zeroize::Zeroizing<Vec<u8>> {
    let mut plain = zeroize::Zeroizing::new(Vec::with_capacity(value.expose().len() + 1));
    plain.push(if value.is_object() { b'o' } else { b't' });
    plain.extend_from_slice(value.expose().as_bytes());
    plain
}

/// The value [`tagged`] made, back from its bytes; `None` if they are not such bytes.
pub(crate) fn untagged(plain: &[u8]) -> Option<SecretValue> {
    let (kind, text) = plain.split_first()?;
    let text = String::from_utf8(text.to_vec()).ok()?;
    match kind {
        b't' => Some(SecretValue::text(text)),
        b'o' => Some(SecretValue::object(text)),
        _ => None,
    }
}

/// A secret as a backend returns it.
#[derive(Debug, Clone)]
pub struct StoredSecret {
    /// Its name.
    pub name: SecretName,
    /// Its version, increasing with each write.
    pub version: u64,
    /// Its value.
    pub value: SecretValue,
}

/// A secret's metadata, for listings. Never a value.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SecretMeta {
    /// Its name.
    pub name: SecretName,
    /// Its scope.
    pub scope: Scope,
    /// Its version.
    pub version: u64,
    /// Last write, Unix milliseconds.
    pub updated_at: i64,
    /// Who wrote it last.
    pub updated_by: String,
    /// What it is for, and its labels.
    pub annotations: Annotations,
}

/// A secret's description and labels (free text, `key=value`): shown in listings, never a
/// value. Kept beside the secret (embedded: its row; Vault: its custom metadata, as
/// `description` and `label.<key>`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Annotations {
    /// What the secret is for.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Labels, by key.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub labels: std::collections::BTreeMap<String, String>,
}

/// The most labels on one secret, and the longest description.
pub const MAX_LABELS: usize = 32;
/// The longest description, in bytes (Vault's limit on a custom metadata value).
pub const MAX_DESCRIPTION: usize = 512;

impl Annotations {
    /// Checks the rules: a description of at most 512 bytes without control characters; at
    /// most 32 labels, keys `[A-Za-z0-9][A-Za-z0-9_.-]{0,62}`, values of at most 256 printable
    /// bytes.
    pub fn check(&self) -> Result<(), String> {
        if self.description.len() > MAX_DESCRIPTION
            || self.description.chars().any(char::is_control)
        {
            return Err(format!(
                "a description is at most {MAX_DESCRIPTION} bytes of printable text"
            ));
        }
        if self.labels.len() > MAX_LABELS {
            return Err(format!("a secret has at most {MAX_LABELS} labels"));
        }
        for (k, v) in &self.labels {
            let key_ok = k.len() <= 63
                && k.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
                && k.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
            if !key_ok {
                return Err(format!(
                    "label key {:?}: 1 to 63 characters of A-Z, a-z, 0-9, '_', '.' and '-', \
                     starting with a letter or digit",
                    k.chars().take(40).collect::<String>()
                ));
            }
            if v.len() > 256 || v.chars().any(char::is_control) {
                return Err(format!(
                    "label {k}: a value is at most 256 bytes of printable text"
                ));
            }
        }
        Ok(())
    }
}

/// A change to a secret's description and labels: what is given replaces, what is left out
/// stays.
#[derive(Debug, Clone, Default)]
pub struct AnnotationUpdate {
    /// The new description ("" clears it).
    pub description: Option<String>,
    /// The new labels (empty clears them).
    pub labels: Option<std::collections::BTreeMap<String, String>>,
}

impl AnnotationUpdate {
    /// Whether it changes nothing.
    pub fn is_empty(&self) -> bool {
        self.description.is_none() && self.labels.is_none()
    }

    /// Checks what is given against [`Annotations::check`].
    pub fn check(&self) -> Result<(), String> {
        Annotations {
            description: self.description.clone().unwrap_or_default(),
            labels: self.labels.clone().unwrap_or_default(),
        }
        .check()
    }
}

/// One kept version of a secret.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VersionMeta {
    /// Its number.
    pub version: u64,
    /// When it was written, Unix milliseconds.
    pub created_at: i64,
    /// Who wrote it, where the backend knows (Vault keeps only the latest writer).
    pub created_by: Option<String>,
    /// Whether it is the current version.
    pub current: bool,
    /// Whether its value is gone (deleted or destroyed in Vault), so it cannot be read or
    /// rolled back to.
    pub deleted: bool,
}

/// Why a backend could not answer. Messages never contain a value or a credential.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The backend could not be reached in time; retrying may succeed.
    #[error("secret backend unavailable: {0}")]
    Unavailable(String),
    /// Stored data could not be decrypted or decoded.
    #[error("secret backend: {0}")]
    Corrupt(String),
    /// An update or unwrap found nothing.
    #[error("{0}")]
    NotFound(String),
    /// A create found the name taken.
    #[error("{0}")]
    AlreadyExists(String),
    /// The backend cannot keep this value as it is (and so refuses it rather than change it).
    #[error("{0}")]
    Refused(String),
    /// The backend's own access policy refused Edgeward (Vault's 403); names the path.
    #[error("{0}")]
    Denied(String),
}

/// A single-use token standing for a secret's value.
pub struct Wrapped {
    /// The token to hand over.
    pub token: zeroize::Zeroizing<String>,
    /// When it stops working, Unix milliseconds.
    pub expires_at: i64,
    /// Where to redeem it, when that is the backend itself (Vault's `sys/wrapping/unwrap`).
    pub unwrap_url: Option<String>,
}

impl fmt::Debug for Wrapped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wrapped")
            .field("expires_at", &self.expires_at)
            .field("unwrap_url", &self.unwrap_url)
            .finish_non_exhaustive()
    }
}

/// The largest value accepted, in bytes.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;

/// A place secrets are kept. One conformance suite runs against every implementation.
#[async_trait::async_trait]
pub trait SecretBackend: Send + Sync + 'static {
    /// Reads `name` of `owner`; `None` if absent.
    async fn get(
        &self,
        owner: &Owner,
        name: &SecretName,
    ) -> Result<Option<StoredSecret>, BackendError>;

    /// Reads `name` of `owner` from the backend itself, past any cache, and leaves the cache
    /// holding what was found: an API read sees a change made directly in Vault (a version
    /// soft-deleted or destroyed with `bao kv delete`) at once, and so do guests after it.
    async fn get_fresh(
        &self,
        owner: &Owner,
        name: &SecretName,
    ) -> Result<Option<StoredSecret>, BackendError> {
        self.get(owner, name).await
    }

    /// What a cache in front of the backend already knows of `name` of `owner`, answered
    /// without waiting: `Some(found)` when it holds a fresh answer (found or absent), `None`
    /// when only [`SecretBackend::get`] can tell. Lets a guest's cached lookup skip a future.
    fn get_cached(&self, _owner: &Owner, _name: &str) -> Option<Option<StoredSecret>> {
        None
    }

    /// What a cache in front of the backend already knows of `owner`'s names, answered without
    /// waiting; `None` when only [`SecretBackend::list_names`] can tell.
    fn list_cached(&self, _owner: &Owner) -> Option<Vec<SecretName>> {
        None
    }

    /// Lists `owner`'s secrets.
    async fn list(&self, owner: &Owner) -> Result<Vec<SecretMeta>, BackendError>;

    /// Lists `owner`'s secrets whose names start with `prefix` (`team/`, `team/d`): a backend
    /// that reads each secret's metadata reads only theirs (Vault walks only the folders the
    /// prefix reaches).
    async fn list_prefixed(
        &self,
        owner: &Owner,
        prefix: &str,
    ) -> Result<Vec<SecretMeta>, BackendError> {
        let mut all = self.list(owner).await?;
        all.retain(|m| m.name.as_str().starts_with(prefix));
        Ok(all)
    }

    /// The names of `owner`'s secrets, without their metadata: what a guest's `list` needs,
    /// in one backend call where the backend can (Vault: one LIST, no metadata reads).
    async fn list_names(&self, owner: &Owner) -> Result<Vec<SecretName>, BackendError> {
        Ok(self
            .list(owner)
            .await?
            .into_iter()
            .map(|m| m.name)
            .collect())
    }

    /// Writes `name` of `owner` as `mode` says; returns the new version.
    async fn write(
        &self,
        owner: &Owner,
        name: &SecretName,
        value: &SecretValue,
        by: &str,
        mode: WriteMode,
    ) -> Result<u64, BackendError>;

    /// Deletes `name` of `owner`, every version; whether it existed.
    async fn delete(&self, owner: &Owner, name: &SecretName) -> Result<bool, BackendError>;

    /// The kept versions of `name` of `owner`, oldest first; `None` if there is no such
    /// secret.
    async fn versions(
        &self,
        owner: &Owner,
        name: &SecretName,
    ) -> Result<Option<Vec<VersionMeta>>, BackendError>;

    /// Version `version` of `name` of `owner`; `None` if it is not kept (or deleted).
    async fn get_version(
        &self,
        owner: &Owner,
        name: &SecretName,
        version: u64,
    ) -> Result<Option<StoredSecret>, BackendError>;

    /// Changes the description and labels of `name` of `owner`; `NotFound` if absent.
    async fn annotate(
        &self,
        owner: &Owner,
        name: &SecretName,
        update: &AnnotationUpdate,
    ) -> Result<(), BackendError>;

    /// Writes all of `entries` (upserts) or, on failure, none of them.
    async fn import(
        &self,
        owner: &Owner,
        entries: &[(SecretName, SecretValue)],
        by: &str,
    ) -> Result<(), BackendError>;

    /// Exchanges the current value of `name` for a single-use token valid for `ttl`;
    /// `None` if there is no such secret.
    async fn wrap(
        &self,
        owner: &Owner,
        name: &SecretName,
        ttl: std::time::Duration,
    ) -> Result<Option<Wrapped>, BackendError>;

    /// Exchanges `value` itself for a single-use token valid for `ttl` (for values the host
    /// holds already, such as an opened user secret).
    async fn wrap_value(
        &self,
        value: &SecretValue,
        ttl: std::time::Duration,
    ) -> Result<Wrapped, BackendError>;

    /// Redeems a token from [`SecretBackend::wrap`] once; `NotFound` when it is unknown,
    /// used or expired.
    async fn unwrap(&self, token: &str) -> Result<SecretValue, BackendError>;
}

/// Writes with [`WriteMode::Upsert`]; a convenience for tests and seeding.
pub async fn put(
    backend: &dyn SecretBackend,
    owner: &Owner,
    name: &SecretName,
    value: &SecretValue,
    by: &str,
) -> Result<u64, BackendError> {
    backend
        .write(owner, name, value, by, WriteMode::Upsert)
        .await
}

/// Why a JSON value cannot be a secret value. Never carries the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// Neither a string nor an object.
    #[error("a secret value is a string or a JSON object of fields")]
    NotStringOrObject,
    /// Over [`MAX_VALUE_BYTES`]; the size it has.
    #[error("a secret value is at most {MAX_VALUE_BYTES} bytes; this one is {0}")]
    TooLarge(usize),
    /// A number written with an exponent, whose text JSON parsers rewrite (`1e3` → `1e+3`).
    #[error(
        "a field holds a number with an exponent (like 1e3), which cannot keep its exact \
         text; write the number out in full, or as a string"
    )]
    Exponent,
}

/// Whether any number in `v` is written with an exponent.
fn has_exponent(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Number(n) => n.to_string().contains(['e', 'E']),
        serde_json::Value::Array(items) => items.iter().any(has_exponent),
        serde_json::Value::Object(map) => map.values().any(has_exponent),
        _ => false,
    }
}

/// Parses an API or `secrets.json` value: a string, or an object of fields. Numbers keep
/// their exact text (serde_json's `arbitrary_precision`), fields their order; a number with an
/// exponent, whose text would change, is refused.
pub fn value_from_json(v: &serde_json::Value) -> Result<SecretValue, ValueError> {
    let value = match v {
        serde_json::Value::String(s) => SecretValue::text(s.clone()),
        serde_json::Value::Object(_) if has_exponent(v) => return Err(ValueError::Exponent),
        serde_json::Value::Object(_) => SecretValue::object(v.to_string()),
        _ => return Err(ValueError::NotStringOrObject),
    };
    if value.expose().len() > MAX_VALUE_BYTES {
        return Err(ValueError::TooLarge(value.expose().len()));
    }
    Ok(value)
}

/// The most names one import may carry.
pub const MAX_IMPORT: usize = 1000;

/// Why a `secrets.json` import was refused; nothing of it is written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    /// A name or value breaks the rules, or the document is not an object.
    #[error("{0}")]
    BadEntry(String),
    /// Too many names, or a value over the size limit.
    #[error("{0}")]
    TooLarge(String),
}

/// Validates a whole `secrets.json` object (`{"NAME": "value" | {fields}, …}`) before anything
/// is written.
pub fn parse_import(
    doc: &serde_json::Value,
) -> Result<Vec<(SecretName, SecretValue)>, ImportError> {
    let map = doc.as_object().ok_or_else(|| {
        ImportError::BadEntry("secrets.json must be a JSON object of NAME: value pairs".into())
    })?;
    if map.len() > MAX_IMPORT {
        return Err(ImportError::TooLarge(format!(
            "an import carries at most {MAX_IMPORT} secrets; this one has {}",
            map.len()
        )));
    }
    map.iter()
        .map(|(k, v)| {
            let name = SecretName::parse(k).map_err(|e| ImportError::BadEntry(e.0))?;
            let value = value_from_json(v).map_err(|e| match e {
                ValueError::TooLarge(_) => ImportError::TooLarge(format!("{name}: {e}")),
                ValueError::NotStringOrObject | ValueError::Exponent => {
                    ImportError::BadEntry(format!("{name}: {e}"))
                }
            })?;
            Ok((name, value))
        })
        .collect()
}

/// The value as JSON for the API: a string, or the object itself.
pub fn value_to_json(v: &SecretValue) -> serde_json::Value {
    if v.is_object() {
        serde_json::from_str(v.expose()).unwrap_or(serde_json::Value::Null)
    } else {
        serde_json::Value::String(v.expose().to_string())
    }
}

/// The owners a lookup by `project/package` tries, in order: the package, its project, the
/// platform.
pub fn owner_chain(project: Name, package: Name) -> Arc<[Owner; 3]> {
    Arc::new([
        Owner::Package(project.clone(), package),
        Owner::Project(project),
        Owner::Platform,
    ])
}

/// The user whose token triggered an execution, and what the execution may do in their scope.
#[derive(Debug, Clone)]
pub struct UserContext {
    /// The user.
    pub name: String,
    /// Their data key, opened with the request's token, when the version declares user
    /// secrets and the user granted it ([`consent`]); `None` otherwise, so it opens no user
    /// secret. An execution that holds it is sealed to the user.
    pub key: Option<Arc<userkey::UserKey>>,
    /// What the version declared of the user's scope; empty, the scope is closed to it.
    pub declared: Arc<crate::manifest::UserSecrets>,
}

/// Which package is running, and for whom: everything resolution needs, fixed by the host.
#[derive(Clone)]
pub struct Resolver {
    backend: Arc<dyn SecretBackend>,
    /// The owners `get` tries, in order: this package, its project, the platform. Built once,
    /// not per lookup.
    chain: Arc<[Owner; 3]>,
    /// The triggering user's own secrets, and what this execution may do with them, when the
    /// request carried their token.
    user: Option<(Owner, UserContext)>,
    allow: Option<Arc<[String]>>,
    /// Backend calls this execution has made (cache hits are free), shared by its clones.
    calls: Arc<std::sync::atomic::AtomicU32>,
}

/// The most secret-backend calls (cache misses) one execution may make: a guest looping over
/// names cannot turn one request into thousands of Vault requests.
pub const MAX_BACKEND_CALLS: u32 = 128;

impl fmt::Debug for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resolver")
            .field("package", &self.chain[0])
            .field("user", &self.user.is_some())
            .finish_non_exhaustive()
    }
}

/// Why a guest's lookup failed; maps one-to-one onto the WIT `error` variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// The name breaks the rule.
    #[error("{0}")]
    InvalidName(String),
    /// The name or scope is not this package's to read.
    #[error("{0}")]
    Denied(String),
    /// The backend could not answer.
    #[error("{0}")]
    Unavailable(String),
}

impl ResolveError {
    /// The stable code, the same in the API, the data plane and the SDK's `Error::code`: the
    /// WIT variants `invalid-name`, `denied` and `unavailable` are `bad_entry`, `denied` and
    /// `unavailable`.
    pub fn code(&self) -> crate::code::ErrorCode {
        use crate::code::ErrorCode;
        match self {
            ResolveError::InvalidName(_) => ErrorCode::BadEntry,
            ResolveError::Denied(_) => ErrorCode::Denied,
            ResolveError::Unavailable(_) => ErrorCode::Unavailable,
        }
    }
}

impl Resolver {
    /// A resolver for `project/package`, with the manifest's allowlist and the triggering user.
    pub fn new(
        backend: Arc<dyn SecretBackend>,
        project: Name,
        package: Name,
        allow: Option<Arc<[String]>>,
        user: Option<UserContext>,
    ) -> Resolver {
        Resolver::with_owners(backend, owner_chain(project, package), allow, user)
    }

    /// A resolver over an [`owner_chain`] built once per package version, so an execution
    /// does not rebuild it.
    pub fn with_owners(
        backend: Arc<dyn SecretBackend>,
        chain: Arc<[Owner; 3]>,
        allow: Option<Arc<[String]>>,
        user: Option<UserContext>,
    ) -> Resolver {
        Resolver {
            backend,
            chain,
            user: user.map(|u| (Owner::User(u.name.clone()), u)),
            allow,
            calls: Arc::default(),
        }
    }

    /// The same resolver with a backend-call budget of its own: what the host resolves for an
    /// execution (its declared credentials, for redaction) is not the guest's to spend, so a
    /// guest that burned its [`MAX_BACKEND_CALLS`] cannot switch redaction off.
    pub fn with_own_budget(&self) -> Resolver {
        Resolver {
            calls: Arc::default(),
            ..self.clone()
        }
    }

    /// Whether `name` follows the rule and the allowlist lets this package read it.
    fn check(&self, name: &str) -> Result<(), ResolveError> {
        SecretName::check(name).map_err(|e| ResolveError::InvalidName(e.0))?;
        if !crate::manifest::allows(self.allow.as_deref(), name) {
            return Err(ResolveError::Denied(format!(
                "{name} is not in this package's secrets allowlist"
            )));
        }
        Ok(())
    }

    /// [`Resolver::check`], keeping the name.
    fn checked(&self, name: &str) -> Result<SecretName, ResolveError> {
        self.check(name)?;
        SecretName::parse(name).map_err(|e| ResolveError::InvalidName(e.0))
    }

    fn owner(&self, scope: Scope) -> Result<&Owner, ResolveError> {
        Ok(match scope {
            Scope::Package => &self.chain[0],
            Scope::Project => &self.chain[1],
            Scope::Platform => &self.chain[2],
            Scope::User => self.user.as_ref().map(|(owner, _)| owner).ok_or_else(|| {
                ResolveError::Denied(
                    "user scope is only readable by a request made with a user's token".into(),
                )
            })?,
        })
    }

    /// Whether this execution may use `name` of its caller's user scope: the version declares
    /// it (`user-secrets`), and the user granted the version (which gave it the key).
    pub fn check_user(&self, name: &str) -> Result<(&str, &Arc<userkey::UserKey>), ResolveError> {
        let (_, user) = self.user.as_ref().ok_or_else(|| {
            ResolveError::Denied(
                "user scope is only readable by a request made with a user's token".into(),
            )
        })?;
        if user.declared.is_empty() {
            return Err(ResolveError::Denied(
                "this package declares no user-secrets in its manifest, so it reads and writes \
                 no user's secrets"
                    .into(),
            ));
        }
        if !user.declared.allows(name) {
            return Err(ResolveError::Denied(format!(
                "{name} is not among the user-secrets this package declares"
            )));
        }
        let key = user.key.as_ref().ok_or_else(|| {
            ResolveError::Denied(
                "the request's token holds no key to its user's secrets (a token the user \
                 minted, or redeemed from an enrollment, does)"
                    .into(),
            )
        })?;
        Ok((&user.name, key))
    }

    /// Reads `name` (already checked) of `owner`: from the cache when it holds it, without
    /// allocating; else from the backend, one call of this execution's budget.
    async fn lookup(
        &self,
        owner: &Owner,
        name: &str,
    ) -> Result<Option<StoredSecret>, ResolveError> {
        if let Some(hit) = self.backend.get_cached(owner, name) {
            return Ok(hit);
        }
        self.spend_call()?;
        let name = SecretName::parse(name).map_err(|e| ResolveError::InvalidName(e.0))?;
        self.backend.get(owner, &name).await.map_err(unavailable)
    }

    /// Counts one backend call against [`MAX_BACKEND_CALLS`].
    fn spend_call(&self) -> Result<(), ResolveError> {
        let n = self
            .calls
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if n >= MAX_BACKEND_CALLS {
            return Err(ResolveError::Unavailable(format!(
                "this execution made more than {MAX_BACKEND_CALLS} secret lookups that reached \
                 the backend; cached ones are free"
            )));
        }
        Ok(())
    }

    /// Resolves `name` through package, then project, then platform scope. (No tracing span:
    /// this is the guest's hot path, and the execution record lists what was resolved.)
    pub async fn get(&self, name: &str) -> Result<Option<(Scope, StoredSecret)>, ResolveError> {
        self.check(name)?;
        for owner in self.chain.iter() {
            if let Some(found) = self.lookup(owner, name).await? {
                return Ok(Some((owner.scope(), found)));
            }
        }
        Ok(None)
    }

    /// Reads `name` from `scope` alone.
    pub async fn get_from(
        &self,
        scope: Scope,
        name: &str,
    ) -> Result<Option<StoredSecret>, ResolveError> {
        self.check(name)?;
        if scope != Scope::User {
            return self.lookup(self.owner(scope)?, name).await;
        }
        let (user, key) = self.check_user(name)?;
        let found = self.lookup(self.owner(scope)?, name).await?;
        // A user's values are sealed under their data key: opened here, for this execution.
        found
            .map(|mut secret| {
                secret.value = key
                    .open(user, name, &secret.value)
                    .map_err(|e| ResolveError::Denied(e.to_string()))?;
                Ok(secret)
            })
            .transpose()
    }

    /// The names this package may read, with their scopes (user scope only with a user).
    pub async fn list(&self) -> Result<Vec<(Scope, SecretName)>, ResolveError> {
        let mut scopes = vec![Scope::Package, Scope::Project, Scope::Platform];
        // User scope only where this execution may read it: declared and granted.
        let user_open = self
            .user
            .as_ref()
            .is_some_and(|(_, u)| u.key.is_some() && !u.declared.is_empty());
        if user_open {
            scopes.push(Scope::User);
        }
        let mut out = Vec::new();
        for scope in scopes {
            let owner = self.owner(scope)?;
            let names = match self.backend.list_cached(owner) {
                Some(names) => names,
                None => {
                    self.spend_call()?;
                    self.backend.list_names(owner).await.map_err(unavailable)?
                }
            };
            out.extend(
                names
                    .into_iter()
                    .filter(|n| crate::manifest::allows(self.allow.as_deref(), n.as_str()))
                    .filter(|n| {
                        scope != Scope::User
                            || self
                                .user
                                .as_ref()
                                .is_some_and(|(_, u)| u.declared.allows(n.as_str()))
                    })
                    .map(|n| (scope, n)),
            );
        }
        Ok(out)
    }
}

/// What a guest is told when the backend fails: no more. The backend's own message names
/// internal addresses, mounts and policies (`Vault at http://10.0.0.5:8200 refused a read`),
/// which are the platform's business, not a tenant's; it goes to the host's log instead.
pub const GUEST_UNAVAILABLE: &str =
    "the secret backend could not answer; try again later (the cause is in the host's log)";

/// Logs a backend failure's cause: at most one warning a second (the rest at debug), so an
/// outage under load does not flood the log.
pub fn warn_backend_failure(cause: &dyn fmt::Display, what: &str) {
    static BACKEND_FAILURES: crate::net::LogLimit = crate::net::LogLimit::new();
    if BACKEND_FAILURES.admit() {
        tracing::warn!(error = %cause, "{what}");
    } else {
        tracing::debug!(error = %cause, "{what}");
    }
}

/// Any backend failure seen by a guest is `unavailable` with [`GUEST_UNAVAILABLE`]; the cause
/// is logged.
fn unavailable(e: BackendError) -> ResolveError {
    warn_backend_failure(&e, "a guest's secret lookup failed in the backend");
    ResolveError::Unavailable(GUEST_UNAVAILABLE.into())
}

#[cfg(test)]
mod tests;
