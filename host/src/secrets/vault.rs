//! The Vault backend: KV v2 in Vault or OpenBao through `vaultrs`.
//!
//! One KV entry per secret, under a mount (default `secret`) and prefix (default `edgeward`):
//! `<prefix>/platform/<name>`, `<prefix>/projects/<p>/shared/<name>`,
//! `<prefix>/projects/<p>/packages/<pkg>/<name>`, `<prefix>/users/<u>/<name>`. A plain string
//! is the single field `value`; an object is stored as its fields. So Vault's own tools see
//! and write the same secrets. The host authenticates with a token or AppRole; that
//! credential never leaves this module (it is not in any `Debug` output or error).

use super::{
    AnnotationUpdate, Annotations, BackendError, Owner, SecretBackend, SecretMeta, SecretValue,
    StoredSecret, VersionMeta, Wrapped, WriteMode,
};
use crate::names::SecretName;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::RwLock;
use vaultrs::api::kv2::requests::{ReadSecretRequest, SetSecretMetadataRequest};
use vaultrs::api::kv2::responses::{ReadSecretMetadataResponse, ReadSecretResponse};
use vaultrs::client::{Client, VaultClient, VaultClientSettingsBuilder};
use vaultrs::error::ClientError;
use vaultrs::kv2;
use zeroize::Zeroizing;

/// How the host proves itself to Vault.
pub enum VaultAuth {
    /// A token (`VAULT_TOKEN`).
    Token(Zeroizing<String>),
    /// AppRole (`VAULT_ROLE_ID`, `VAULT_SECRET_ID`) at an auth mount (default `approle`).
    AppRole {
        /// The auth mount.
        mount: String,
        /// The role id.
        role_id: String,
        /// The secret id.
        secret_id: Zeroizing<String>,
    },
}

impl std::fmt::Debug for VaultAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VaultAuth::Token(_) => f.write_str("Token(***)"),
            VaultAuth::AppRole { mount, .. } => write!(f, "AppRole {{ mount: {mount:?}, .. }}"),
        }
    }
}

/// Where and how to reach Vault.
#[derive(Debug)]
pub struct VaultConfig {
    /// The server address (`VAULT_ADDR`).
    pub addr: String,
    /// How to authenticate.
    pub auth: VaultAuth,
    /// The KV v2 mount.
    pub mount: String,
    /// The path prefix under the mount.
    pub prefix: String,
    /// The timeout of each request.
    pub timeout: Duration,
}

/// The folder under the prefix that holds the journals of imports in flight.
pub const IMPORT_JOURNALS: &str = "_imports";

/// Secrets kept in Vault's KV v2.
pub struct VaultBackend {
    client: RwLock<Arc<VaultClient>>,
    addr: String,
    auth: VaultAuth,
    mount: String,
    prefix: String,
    http: reqwest::Client,
    timeout: Duration,
}

impl std::fmt::Debug for VaultBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultBackend")
            .field("addr", &self.addr)
            .field("mount", &self.mount)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// Whether every number in `v` reads back from Vault's KV exactly as written: Vault decodes
/// numbers into 64-bit floats and prints them in their shortest form, plain between 1e-6 and
/// 1e21. Anything else would come back changed, so it is refused instead.
fn vault_keeps_numbers(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Number(n) => {
            let text = n.to_string();
            text.parse::<f64>().is_ok_and(|f| {
                f.is_finite()
                    && format!("{f}") == text
                    && (f == 0.0 || (1e-6..1e21).contains(&f.abs()))
            })
        }
        serde_json::Value::Array(items) => items.iter().all(vault_keeps_numbers),
        serde_json::Value::Object(map) => map.values().all(vault_keeps_numbers),
        _ => true,
    }
}

/// Whether Vault answered 404. A soft-deleted or destroyed latest version answers 404 with a
/// body that holds metadata and no `errors`, which vaultrs leaves as a raw server-response
/// error: it is absent all the same, exactly as `vault kv get` treats it.
fn is_not_found(e: &ClientError) -> bool {
    matches!(
        e,
        ClientError::APIError { code: 404, .. }
            | ClientError::RestClientError {
                source: rustify::errors::ClientError::ServerResponseError { code: 404, .. },
            }
    )
}

const VALUE_FIELD: &str = "value";
const UPDATED_BY: &str = "edgeward-updated-by";
/// A secret's description and labels, in its custom metadata (`bao kv metadata get` shows them).
const DESCRIPTION: &str = "description";
const LABEL: &str = "label.";

/// The description and labels kept in `custom` (other keys left alone).
fn annotations_in(custom: Option<&HashMap<String, String>>) -> Annotations {
    let mut out = Annotations::default();
    for (k, v) in custom.into_iter().flatten() {
        if k == DESCRIPTION {
            out.description = v.clone();
        } else if let Some(label) = k.strip_prefix(LABEL) {
            out.labels.insert(label.to_string(), v.clone());
        }
    }
    out
}

/// RFC 3339 as Unix milliseconds (0 when it does not parse).
fn unix_ms(rfc3339: &str) -> i64 {
    time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .map(|t| i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(0))
        .unwrap_or(0)
}

impl VaultBackend {
    /// A backend for `config`. AppRole logs in lazily, on first use, and again when Vault
    /// refuses the token.
    pub fn new(config: VaultConfig) -> Result<VaultBackend, BackendError> {
        crate::install_crypto();
        let token = match &config.auth {
            VaultAuth::Token(t) => t.to_string(),
            VaultAuth::AppRole { .. } => String::new(),
        };
        let settings = VaultClientSettingsBuilder::default()
            .address(&config.addr)
            .token(token)
            .timeout(Some(config.timeout))
            .build()
            .map_err(|e| BackendError::Unavailable(format!("invalid Vault settings: {e}")))?;
        let client = VaultClient::new(settings)
            .map_err(|e| BackendError::Unavailable(format!("cannot set up a Vault client: {e}")))?;
        // Response wrapping has no vaultrs endpoint; those two calls go through vaultrs's own
        // HTTP client, so they share its TLS set-up (VAULT_CACERT, VAULT_CAPATH,
        // VAULT_SKIP_VERIFY, VAULT_CLIENT_CERT/KEY) and timeout.
        let http = client.http.http.clone();
        Ok(VaultBackend {
            client: RwLock::new(Arc::new(client)),
            addr: config.addr.trim_end_matches('/').to_string(),
            auth: config.auth,
            mount: config.mount,
            prefix: config.prefix.trim_matches('/').to_string(),
            http,
            timeout: config.timeout,
        })
    }

    /// The KV path of `owner`'s folder.
    fn folder(&self, owner: &Owner) -> String {
        let p = &self.prefix;
        match owner {
            Owner::Platform => format!("{p}/platform"),
            Owner::Project(project) => format!("{p}/projects/{project}/shared"),
            Owner::Package(project, package) => {
                format!("{p}/projects/{project}/packages/{package}")
            }
            Owner::User(user) => format!("{p}/users/{user}"),
        }
    }

    fn path(&self, owner: &Owner, name: &SecretName) -> String {
        format!("{}/{name}", self.folder(owner))
    }

    /// Where import journals are kept, beside the scopes.
    fn journal_folder(&self) -> String {
        format!("{}/{IMPORT_JOURNALS}", self.prefix)
    }

    /// One LIST of `folder`: its keys (sub-folders end in `/`); an absent folder has none.
    /// The names of `owner` that start with `prefix`, sorted: one LIST per folder the prefix
    /// reaches (a folder is walked when it could hold such a name), names outside Edgeward's
    /// rule left out.
    async fn names_under(
        &self,
        owner: &Owner,
        prefix: &str,
    ) -> Result<Vec<SecretName>, BackendError> {
        let root = self.folder(owner);
        let mut out = Vec::new();
        // Folders to walk, relative to the scope's folder ("" or "team/").
        let mut folders = vec![String::new()];
        while let Some(rel) = folders.pop() {
            for key in self.list_keys(&format!("{root}/{rel}")).await? {
                let full = format!("{rel}{key}");
                match full.strip_suffix('/') {
                    // A folder deeper than any name could reach is not walked, nor one the
                    // prefix leaves out (`team/` walks `team/sub/`, not `other/`).
                    Some(folder)
                        if full.len() < crate::names::SECRET_NAME_MAX
                            && (full.starts_with(prefix) || prefix.starts_with(&full))
                            && SecretName::parse(folder).is_ok() =>
                    {
                        folders.push(full);
                    }
                    Some(_) => {}
                    None if full.starts_with(prefix) => {
                        out.extend(SecretName::parse(&full).ok());
                    }
                    None => {}
                }
            }
        }
        out.sort();
        Ok(out)
    }

    async fn list_keys(&self, folder: &str) -> Result<Vec<String>, BackendError> {
        self.with_client(&format!("a list of {folder}"), |client| async move {
            match kv2::list(&*client, &self.mount, folder).await {
                Ok(keys) => Ok(keys),
                Err(e) if is_not_found(&e) => Ok(Vec::new()),
                Err(e) => Err(e),
            }
        })
        .await
    }

    /// Sets `data` at `path` as it is (no check-and-set, no writer tag).
    async fn set_raw(&self, path: &str, data: &serde_json::Value) -> Result<(), BackendError> {
        self.with_client(&format!("a write of {path}"), |client| {
            let (path, data) = (path.to_string(), data.clone());
            async move {
                kv2::set(&*client, &self.mount, &path, &data)
                    .await
                    .map(|_| ())
            }
        })
        .await
    }

    /// Deletes `path` and all its versions; absent is fine.
    async fn delete_raw(&self, path: &str) -> Result<(), BackendError> {
        self.with_client(&format!("a delete of {path}"), |client| {
            let path = path.to_string();
            async move {
                match kv2::delete_metadata(&*client, &self.mount, &path).await {
                    Err(e) if is_not_found(&e) => Ok(()),
                    other => other,
                }
            }
        })
        .await
    }

    /// Whether `path` may appear in an import journal: a secret in one of Edgeward's scope
    /// folders under the prefix, no empty, `.` or `..` segment.
    fn journaled_path(&self, path: &str) -> bool {
        let Some(rest) = path.strip_prefix(&format!("{}/", self.prefix)) else {
            return false;
        };
        ["platform/", "projects/", "users/"]
            .iter()
            .any(|scope| rest.starts_with(scope))
            && rest
                .split('/')
                .all(|seg| !seg.is_empty() && seg != "." && seg != "..")
    }

    /// Drops a finished import's journal. One left behind is settled at the next start, which
    /// finds every entry as the import wrote it and keeps them.
    async fn drop_journal(&self, journal: &str) {
        if let Err(e) = self.delete_raw(journal).await {
            tracing::error!(%journal, error = %e, "could not drop an import journal; it is settled at the next start");
        }
    }

    /// Settles imports a crash interrupted, from their journals: an import whose every entry
    /// holds what it wrote is complete and kept; otherwise each entry that holds what it wrote
    /// is put back as it was (an entry someone changed since is left alone), so an import is
    /// all or nothing even across a crash. Returns how many were undone and how many kept.
    pub async fn recover_imports(&self) -> Result<(usize, usize), BackendError> {
        let folder = self.journal_folder();
        let journals = self.list_keys(&folder).await?;
        let (mut undone, mut kept) = (0, 0);
        for journal in journals {
            let path = format!("{folder}/{journal}");
            let Some(doc) = self.read(&path).await? else {
                continue;
            };
            let entries = doc.data["entries"].as_array().cloned().unwrap_or_default();
            let mut written = Vec::new();
            for e in &entries {
                // Only a secret of Edgeward's own scopes: a journal planted by whoever can
                // write under the prefix must not steer Edgeward's token anywhere else.
                let Some(at) = e["path"].as_str().filter(|at| self.journaled_path(at)) else {
                    tracing::warn!(%journal, "an import journal names a path outside Edgeward's scopes; ignored");
                    continue;
                };
                let now = self.read(at).await?.map(|r| r.data);
                if now.as_ref() == Some(&e["after"]) {
                    written.push((at.to_string(), e["before"].clone()));
                }
            }
            if written.len() == entries.len() {
                kept += 1;
            } else {
                for (at, before) in &written {
                    if before.is_null() {
                        self.delete_raw(at).await?;
                    } else {
                        self.set_raw(at, before).await?;
                    }
                }
                undone += 1;
                tracing::warn!(%journal, entries = entries.len(), put_back = written.len(), "an import interrupted by a crash was undone");
            }
            self.delete_raw(&path).await?;
        }
        Ok((undone, kept))
    }

    async fn login(&self) -> Result<(), BackendError> {
        let VaultAuth::AppRole {
            mount,
            role_id,
            secret_id,
        } = &self.auth
        else {
            return Ok(());
        };
        let current = self.client.read().await.clone();
        let info = vaultrs::auth::approle::login(&*current, mount, role_id, secret_id)
            .await
            .map_err(|e| self.error("AppRole login", e))?;
        let mut settings = current.settings.clone();
        settings.token = info.client_token;
        let client = VaultClient::new(settings)
            .map_err(|e| BackendError::Unavailable(format!("cannot set up a Vault client: {e}")))?;
        *self.client.write().await = Arc::new(client);
        Ok(())
    }

    /// Runs `f` with the client, logging in first (AppRole) when there is no token yet, and
    /// once more if Vault answers 403 (an expired AppRole token).
    async fn with_client<T, F, Fut>(&self, what: &str, f: F) -> Result<T, BackendError>
    where
        F: Fn(Arc<VaultClient>) -> Fut,
        Fut: Future<Output = Result<T, ClientError>>,
    {
        let approle = matches!(self.auth, VaultAuth::AppRole { .. });
        if approle && self.client.read().await.settings().token.is_empty() {
            self.login().await?;
        }
        let client = self.client.read().await.clone();
        let first = f(client).await;
        match first {
            Err(ClientError::APIError { code: 403, .. }) if approle => {
                self.login().await?;
                let client = self.client.read().await.clone();
                f(client).await.map_err(|e| self.error(what, e))
            }
            other => other.map_err(|e| self.error(what, e)),
        }
    }

    /// Describes a client error without anything secret: Vault's messages name paths and
    /// policies, never values or tokens.
    fn error(&self, what: &str, e: ClientError) -> BackendError {
        match e {
            // Vault's policy does not let Edgeward do this: an operator's matter, not an outage.
            ClientError::APIError { code: 403, errors } => BackendError::Denied(format!(
                "Vault at {} denied {what} (403: {}); grant Edgeward's token the policy in the \
                 README",
                self.addr,
                errors.join("; ")
            )),
            ClientError::APIError { code, errors } => BackendError::Unavailable(format!(
                "Vault at {} refused {what} ({code}: {})",
                self.addr,
                errors.join("; ")
            )),
            ClientError::RestClientError { .. } => {
                BackendError::Unavailable(format!("cannot reach Vault at {} ({what})", self.addr))
            }
            other => BackendError::Unavailable(format!("Vault {what}: {other}")),
        }
    }

    async fn read(&self, path: &str) -> Result<Option<ReadSecretResponse>, BackendError> {
        let result = self
            .with_client(&format!("a read of {path}"), |client| async move {
                let endpoint = ReadSecretRequest::builder()
                    .mount(&self.mount)
                    .path(path)
                    .build()
                    .map_err(|_| ClientError::ResponseEmptyError)?;
                match vaultrs::api::exec_with_result(&*client, endpoint).await {
                    Ok(r) => Ok(Some(r)),
                    Err(e) if is_not_found(&e) => Ok(None),
                    // A soft-deleted latest version reads as no data. Anything else that
                    // does not decode is an error, never "absent": absent would let resolution
                    // fall through to a lower scope's value.
                    Err(ClientError::ResponseDataEmptyError) => Ok(None),
                    Err(e) => Err(e),
                }
            })
            .await?;
        Ok(result.filter(|r| !r.data.is_null()))
    }

    fn decode(data: &serde_json::Value) -> Result<SecretValue, BackendError> {
        let map = data
            .as_object()
            .ok_or_else(|| BackendError::Corrupt("a Vault entry that is not an object".into()))?;
        if map.len() == 1
            && let Some(serde_json::Value::String(s)) = map.get(VALUE_FIELD)
        {
            return Ok(SecretValue::text(s.clone()));
        }
        Ok(SecretValue::object(data.to_string()))
    }

    fn encode(value: &SecretValue) -> Result<serde_json::Value, BackendError> {
        if value.is_object() {
            let doc: serde_json::Value = serde_json::from_str(value.expose())
                .map_err(|_| BackendError::Corrupt("an object value that is not JSON".into()))?;
            if !vault_keeps_numbers(&doc) {
                return Err(BackendError::Refused(
                    "Vault's KV store keeps numbers as 64-bit floats, so a field's number would \
                     not read back as written (too many digits, a trailing zero, -0.0…); \
                     write it as a string, or as Vault would print it"
                        .into(),
                ));
            }
            Ok(doc)
        } else {
            Ok(serde_json::json!({ VALUE_FIELD: value.expose() }))
        }
    }

    /// Sends a request answered with a wrapping token (`X-Vault-Wrap-TTL`), with the host's
    /// own Vault token: logged in first (AppRole) when there is none yet, and once more when
    /// Vault refuses it, as every other call does. `None` for a 404.
    async fn wrapping(
        &self,
        ttl: Duration,
        request: impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
    ) -> Result<Option<Wrapped>, BackendError> {
        let approle = matches!(self.auth, VaultAuth::AppRole { .. });
        if approle && self.client.read().await.settings().token.is_empty() {
            self.login().await?;
        }
        let mut retried = false;
        let response = loop {
            let token = Zeroizing::new(self.client.read().await.settings().token.clone());
            let response = request(&self.http, &token)
                .header("X-Vault-Wrap-TTL", format!("{}s", ttl.as_secs().max(1)))
                .send()
                .await
                .map_err(|_| {
                    BackendError::Unavailable(format!("cannot reach Vault at {}", self.addr))
                })?;
            if response.status() == reqwest::StatusCode::FORBIDDEN && approle && !retried {
                retried = true;
                self.login().await?;
                continue;
            }
            break response;
        };
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(BackendError::Unavailable(format!(
                "Vault at {} refused to wrap ({status})",
                self.addr
            )));
        }
        let body: serde_json::Value = response
            .json()
            .await
            .map_err(|e| BackendError::Unavailable(format!("Vault's wrap answer: {e}")))?;
        let wrapped = body["wrap_info"]["token"]
            .as_str()
            .ok_or_else(|| BackendError::Unavailable("Vault did not wrap the response".into()))?;
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        Ok(Some(Wrapped {
            token: Zeroizing::new(wrapped.to_string()),
            expires_at: crate::store::now_ms().saturating_add(ttl_ms),
            unwrap_url: Some(format!("{}/v1/sys/wrapping/unwrap", self.addr)),
        }))
    }

    /// The KV v2 metadata of `path` (versions, custom metadata); `None` if there is no such
    /// secret.
    async fn metadata(
        &self,
        path: &str,
    ) -> Result<Option<ReadSecretMetadataResponse>, BackendError> {
        self.with_client(&format!("a metadata read of {path}"), |client| async move {
            match kv2::read_metadata(&*client, &self.mount, path).await {
                Ok(m) => Ok(Some(m)),
                Err(e) if is_not_found(&e) => Ok(None),
                Err(e) => Err(e),
            }
        })
        .await
    }

    async fn current_version(&self, path: &str) -> Result<Option<u64>, BackendError> {
        Ok(self.metadata(path).await?.map(|m| m.current_version))
    }

    /// The custom metadata of `path`; `None` if there is no such secret.
    async fn custom_metadata(
        &self,
        path: &str,
    ) -> Result<Option<HashMap<String, String>>, BackendError> {
        Ok(self
            .metadata(path)
            .await?
            .map(|m| m.custom_metadata.unwrap_or_default()))
    }

    /// Replaces the custom metadata of `path` (Vault's write replaces the whole map).
    async fn set_custom_metadata(
        &self,
        path: &str,
        custom: HashMap<String, String>,
    ) -> Result<(), BackendError> {
        self.with_client(&format!("a metadata write of {path}"), |client| {
            let custom = custom.clone();
            async move {
                let endpoint = SetSecretMetadataRequest::builder()
                    .mount(&self.mount)
                    .path(path)
                    .custom_metadata(custom)
                    .build()
                    .map_err(|_| ClientError::ResponseEmptyError)?;
                vaultrs::api::exec_with_empty(&*client, endpoint).await
            }
        })
        .await
    }

    /// Records the writer in the custom metadata, keeping what else is there (description,
    /// labels, anyone else's keys).
    async fn tag_writer(&self, path: &str, by: &str) {
        let result = async {
            let mut custom = self.custom_metadata(path).await?.unwrap_or_default();
            custom.insert(UPDATED_BY.to_string(), by.to_string());
            self.set_custom_metadata(path, custom).await
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, "could not record who wrote a Vault secret");
        }
    }
}

#[async_trait::async_trait]
impl SecretBackend for VaultBackend {
    async fn get(
        &self,
        owner: &Owner,
        name: &SecretName,
    ) -> Result<Option<StoredSecret>, BackendError> {
        let Some(read) = self.read(&self.path(owner, name)).await? else {
            return Ok(None);
        };
        Ok(Some(StoredSecret {
            name: name.clone(),
            version: read.metadata.version,
            value: Self::decode(&read.data)?,
        }))
    }

    /// One LIST per folder: the names a guest may ask for, folders walked (`team/db`), names
    /// outside Edgeward's rule left out, no metadata reads.
    async fn list_names(&self, owner: &Owner) -> Result<Vec<SecretName>, BackendError> {
        self.names_under(owner, "").await
    }

    async fn list(&self, owner: &Owner) -> Result<Vec<SecretMeta>, BackendError> {
        self.list_prefixed(owner, "").await
    }

    /// The names under `prefix` first (LISTs of the folders it reaches only), then the
    /// metadata of those alone: a scope of thousands of secrets pays for the ones asked for.
    async fn list_prefixed(
        &self,
        owner: &Owner,
        prefix: &str,
    ) -> Result<Vec<SecretMeta>, BackendError> {
        let folder = self.folder(owner);
        let mut out = Vec::new();
        for name in self.names_under(owner, prefix).await? {
            let meta = self.metadata(&format!("{folder}/{name}")).await?;
            let Some(meta) = meta else { continue };
            // A current version soft-deleted or destroyed outside Edgeward (`bao kv delete`)
            // reads as absent, so it is not listed either.
            let gone = meta
                .versions
                .get(&meta.current_version.to_string())
                .is_some_and(|m| m.destroyed || !m.deletion_time.is_empty());
            if gone {
                continue;
            }
            out.push(SecretMeta {
                name,
                scope: owner.scope(),
                version: meta.current_version,
                updated_at: unix_ms(&meta.updated_time),
                updated_by: meta
                    .custom_metadata
                    .as_ref()
                    .and_then(|m| m.get(UPDATED_BY).cloned())
                    .unwrap_or_else(|| "vault".into()),
                annotations: annotations_in(meta.custom_metadata.as_ref()),
            });
        }
        Ok(out)
    }

    async fn write(
        &self,
        owner: &Owner,
        name: &SecretName,
        value: &SecretValue,
        by: &str,
        mode: WriteMode,
    ) -> Result<u64, BackendError> {
        let path = self.path(owner, name);
        let data = Self::encode(value)?;
        let cas = match mode {
            WriteMode::Upsert => None,
            // Check-and-set 0: written only if the key does not exist yet.
            WriteMode::Create => Some(0),
            WriteMode::Update => match self.current_version(&path).await? {
                Some(v) => Some(u32::try_from(v).unwrap_or(u32::MAX)),
                None => {
                    return Err(BackendError::NotFound(format!(
                        "no {} secret {name}",
                        owner.scope()
                    )));
                }
            },
        };
        let written = self
            .with_client(&format!("a write of {path}"), |client| {
                let data = data.clone();
                let path = path.clone();
                async move {
                    let result = match cas {
                        None => kv2::set(&*client, &self.mount, &path, &data).await,
                        Some(cas) => {
                            kv2::set_with_options(
                                &*client,
                                &self.mount,
                                &path,
                                &data,
                                vaultrs::api::kv2::requests::SetSecretRequestOptions { cas },
                            )
                            .await
                        }
                    };
                    match result {
                        Ok(meta) => Ok(Some(meta.version)),
                        // A check-and-set mismatch: someone else wrote first.
                        Err(ClientError::APIError { code: 400, .. }) if cas.is_some() => Ok(None),
                        Err(e) => Err(e),
                    }
                }
            })
            .await?;
        let version = written.ok_or_else(|| match mode {
            WriteMode::Create => BackendError::AlreadyExists(format!(
                "{} secret {name} already exists",
                owner.scope()
            )),
            _ => BackendError::Unavailable(format!(
                "{} secret {name} changed during the update; retry",
                owner.scope()
            )),
        })?;
        self.tag_writer(&path, by).await;
        Ok(version)
    }

    /// KV v2's own versions (`bao kv metadata get`): those Vault keeps (its `max_versions`,
    /// 10 by default), a soft-deleted or destroyed one marked deleted.
    async fn versions(
        &self,
        owner: &Owner,
        name: &SecretName,
    ) -> Result<Option<Vec<VersionMeta>>, BackendError> {
        let path = self.path(owner, name);
        let meta = self.metadata(&path).await?;
        let Some(meta) = meta else { return Ok(None) };
        let writer = meta
            .custom_metadata
            .as_ref()
            .and_then(|m| m.get(UPDATED_BY).cloned());
        let mut out: Vec<VersionMeta> = meta
            .versions
            .iter()
            .filter_map(|(v, m)| {
                let version: u64 = v.parse().ok()?;
                let current = version == meta.current_version;
                Some(VersionMeta {
                    version,
                    created_at: unix_ms(&m.created_time),
                    created_by: if current { writer.clone() } else { None },
                    current,
                    deleted: m.destroyed || !m.deletion_time.is_empty(),
                })
            })
            .collect();
        out.sort_by_key(|v| v.version);
        Ok(Some(out))
    }

    async fn get_version(
        &self,
        owner: &Owner,
        name: &SecretName,
        version: u64,
    ) -> Result<Option<StoredSecret>, BackendError> {
        let path = self.path(owner, name);
        let read = self
            .with_client(&format!("a read of {path}"), |client| {
                let path = path.clone();
                async move {
                    let endpoint = ReadSecretRequest::builder()
                        .mount(&self.mount)
                        .path(&path)
                        .version(Some(version))
                        .build()
                        .map_err(|_| ClientError::ResponseEmptyError)?;
                    match vaultrs::api::exec_with_result(&*client, endpoint).await {
                        Ok(r) => Ok(Some(r)),
                        Err(e) if is_not_found(&e) => Ok(None),
                        Err(ClientError::ResponseDataEmptyError) => Ok(None),
                        Err(e) => Err(e),
                    }
                }
            })
            .await?;
        let Some(read) = read.filter(|r| !r.data.is_null()) else {
            return Ok(None);
        };
        Ok(Some(StoredSecret {
            name: name.clone(),
            version: read.metadata.version,
            value: Self::decode(&read.data)?,
        }))
    }

    async fn annotate(
        &self,
        owner: &Owner,
        name: &SecretName,
        update: &AnnotationUpdate,
    ) -> Result<(), BackendError> {
        let path = self.path(owner, name);
        let Some(mut custom) = self.custom_metadata(&path).await? else {
            return Err(BackendError::NotFound(format!(
                "no {} secret {name}",
                owner.scope()
            )));
        };
        if let Some(description) = &update.description {
            custom.remove(DESCRIPTION);
            if !description.is_empty() {
                custom.insert(DESCRIPTION.to_string(), description.clone());
            }
        }
        if let Some(labels) = &update.labels {
            custom.retain(|k, _| !k.starts_with(LABEL));
            for (k, v) in labels {
                custom.insert(format!("{LABEL}{k}"), v.clone());
            }
        }
        self.set_custom_metadata(&path, custom).await
    }

    async fn delete(&self, owner: &Owner, name: &SecretName) -> Result<bool, BackendError> {
        let path = self.path(owner, name);
        if self.current_version(&path).await?.is_none() {
            return Ok(false);
        }
        self.delete_raw(&path).await?;
        Ok(true)
    }

    /// Vault has no transactions: a journal of the import is written first; on a failure
    /// part-way, what was written is put back as it was (previous value restored, new names
    /// deleted) before the error is returned; a crash part-way is settled from the journal at
    /// the next start ([`VaultBackend::recover_imports`]).
    async fn import(
        &self,
        owner: &Owner,
        entries: &[(SecretName, SecretValue)],
        by: &str,
    ) -> Result<(), BackendError> {
        let mut previous = Vec::with_capacity(entries.len());
        for (name, _) in entries {
            previous.push(self.get(owner, name).await?.map(|s| s.value));
        }
        // The journal, written before anything else: what each entry was and becomes, so a
        // crash part-way is settled at the next start (`recover_imports`).
        let journal = format!("{}/{}", self.journal_folder(), uuid::Uuid::now_v7());
        let mut journaled = Vec::with_capacity(entries.len());
        for ((name, value), before) in entries.iter().zip(&previous) {
            journaled.push(serde_json::json!({
                "path": self.path(owner, name),
                "before": before.as_ref().map(Self::encode).transpose()?,
                "after": Self::encode(value)?,
            }));
        }
        self.set_raw(
            &journal,
            &serde_json::json!({ "by": by, "entries": journaled }),
        )
        .await?;
        for (i, (name, value)) in entries.iter().enumerate() {
            let result = self.write(owner, name, value, by, WriteMode::Upsert).await;
            // How many entries were written when the import failed, and why it failed.
            let (written, error) = match result {
                Ok(_) if crate::faults::fail("vault_import.write") => (
                    i + 1,
                    BackendError::Unavailable("injected fault vault_import.write".into()),
                ),
                Ok(_) => continue,
                Err(e) => (i, e),
            };
            for ((name, _), before) in entries[..written].iter().zip(&previous) {
                let undo = if crate::faults::fail("vault_import.undo") {
                    Err(BackendError::Unavailable(
                        "injected fault vault_import.undo".into(),
                    ))
                } else {
                    match before {
                        Some(v) => self
                            .write(owner, name, v, by, WriteMode::Upsert)
                            .await
                            .map(|_| ()),
                        None => self.delete(owner, name).await.map(|_| ()),
                    }
                };
                if let Err(undo) = undo {
                    tracing::error!(%name, error = %undo, "could not undo a partial import");
                }
            }
            self.drop_journal(&journal).await;
            return Err(error);
        }
        crate::faults::point("vault_import.done");
        self.drop_journal(&journal).await;
        Ok(())
    }

    /// Vault's own response wrapping: the KV read is answered with a wrapping token
    /// (`X-Vault-Wrap-TTL`), redeemable once at `sys/wrapping/unwrap`.
    async fn wrap(
        &self,
        owner: &Owner,
        name: &SecretName,
        ttl: Duration,
    ) -> Result<Option<Wrapped>, BackendError> {
        // No read first: the wrapped GET itself answers 404 for an absent secret, and a read
        // would fetch the plaintext for nothing.
        let url = format!(
            "{}/v1/{}/data/{}",
            self.addr,
            self.mount,
            self.path(owner, name)
        );
        self.wrapping(ttl, |http, token| {
            http.get(&url).header("X-Vault-Token", token)
        })
        .await
    }

    /// `sys/wrapping/wrap`: Vault keeps the value in a single-use cubbyhole.
    async fn wrap_value(
        &self,
        value: &SecretValue,
        ttl: Duration,
    ) -> Result<Wrapped, BackendError> {
        let data = Self::encode(value)?;
        let url = format!("{}/v1/sys/wrapping/wrap", self.addr);
        self.wrapping(ttl, |http, token| {
            http.post(&url).header("X-Vault-Token", token).json(&data)
        })
        .await?
        .ok_or_else(|| BackendError::Unavailable("Vault did not wrap the value".into()))
    }

    async fn unwrap(&self, token: &str) -> Result<SecretValue, BackendError> {
        let gone =
            || BackendError::NotFound("the wrapping token is unknown, used or expired".into());
        if token.is_empty() || token.len() > 512 {
            return Err(gone());
        }
        // Redeemed with the wrapping token itself as the client token, as Vault's CLI does.
        let url = format!("{}/v1/sys/wrapping/unwrap", self.addr);
        let response = self
            .http
            .post(&url)
            .header("X-Vault-Token", token)
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|_| {
                BackendError::Unavailable(format!("cannot reach Vault at {}", self.addr))
            })?;
        let status = response.status();
        if status == reqwest::StatusCode::BAD_REQUEST
            || status == reqwest::StatusCode::FORBIDDEN
            || status == reqwest::StatusCode::NOT_FOUND
        {
            return Err(gone());
        }
        if !status.is_success() {
            return Err(BackendError::Unavailable(format!(
                "Vault at {} refused to unwrap ({status})",
                self.addr
            )));
        }
        let body: serde_json::Value = response
            .json()
            .await
            .map_err(|e| BackendError::Unavailable(format!("Vault's unwrap answer: {e}")))?;
        // A wrapped KV read holds `data.data` beside `data.metadata`; a wrapped value
        // (`sys/wrapping/wrap`) is the fields themselves.
        let kv =
            body["data"]["metadata"]["version"].is_number() && body["data"]["data"].is_object();
        if kv {
            Self::decode(&body["data"]["data"])
        } else {
            Self::decode(&body["data"])
        }
    }
}
