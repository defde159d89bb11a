//! The embedded backend: values encrypted with AES-256-GCM in the metadata store.
//!
//! The master key is `EDGEWARD_MASTER_KEY` (64 hex digits) or `<data-dir>/master.key`, created
//! with mode 0600 on first start. Each ciphertext is bound to its scope, owner and name as
//! associated data, so a row copied to another place in the database does not decrypt.

use super::{
    AnnotationUpdate, Annotations, BackendError, Owner, SecretBackend, SecretMeta, SecretValue,
    StoredSecret, VersionMeta, Wrapped, WriteMode,
};
use crate::datadir::DataDir;
use crate::names::SecretName;
use crate::store::{SecretRow, Store, StoreError};
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::RngCore;
use zeroize::Zeroizing;

/// The master key file under the data directory.
pub const MASTER_KEY_FILE: &str = "master.key";

/// Errors loading the master key. Never contains key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key given is malformed.
    #[error("{0}")]
    Malformed(String),
    /// The key file could not be read or written.
    #[error("master key file: {0}")]
    Io(#[from] std::io::Error),
}

/// Secrets encrypted at rest in the metadata store.
pub struct EmbeddedBackend {
    store: Store,
    cipher: Aes256Gcm,
    keep: u32,
}

/// How many versions of each secret the embedded backend keeps by default (as Vault's KV v2).
pub const DEFAULT_VERSIONS_KEPT: u32 = 10;

impl std::fmt::Debug for EmbeddedBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedBackend").finish_non_exhaustive()
    }
}

impl EmbeddedBackend {
    /// A backend over `store` with master key `key`.
    pub fn new(store: Store, key: &[u8; 32]) -> EmbeddedBackend {
        EmbeddedBackend {
            store,
            cipher: Aes256Gcm::new(key.into()),
            keep: DEFAULT_VERSIONS_KEPT,
        }
    }

    /// Keeps the last `keep` versions of each secret (at least 1, the current one).
    pub fn keeping(mut self, keep: u32) -> EmbeddedBackend {
        self.keep = keep.max(1);
        self
    }

    /// Loads the master key from `env_key` (hex) if given, else from the data directory,
    /// creating a random one there (0600) on first start.
    pub fn load_key(
        data_dir: &DataDir,
        env_key: Option<&str>,
    ) -> Result<Zeroizing<[u8; 32]>, KeyError> {
        if let Some(hex_key) = env_key {
            return parse_key(hex_key.trim()).ok_or_else(|| {
                KeyError::Malformed("EDGEWARD_MASTER_KEY must be 64 hex digits (32 bytes)".into())
            });
        }
        if let Some(bytes) = data_dir.read(MASTER_KEY_FILE)? {
            // The file's bytes are the key: wiped when dropped, parsed in place.
            let bytes = Zeroizing::new(bytes);
            let text = std::str::from_utf8(&bytes).unwrap_or_default();
            return parse_key(text.trim()).ok_or_else(|| {
                KeyError::Malformed(format!(
                    "{} must hold 64 hex digits (32 bytes)",
                    data_dir.path().join(MASTER_KEY_FILE).display()
                ))
            });
        }
        let mut key = Zeroizing::new([0u8; 32]);
        rand::rng().fill_bytes(key.as_mut());
        let text = Zeroizing::new(hex::encode(key.as_ref()));
        data_dir.write_atomic(MASTER_KEY_FILE, text.as_bytes(), 0o600)?;
        Ok(key)
    }

    fn aad(owner: &Owner, name: &SecretName) -> String {
        format!("edgeward:v1:{}:{}:{}", owner.scope(), owner.key(), name)
    }

    fn decrypt(
        &self,
        owner: &Owner,
        name: &SecretName,
        row: &SecretRow,
    ) -> Result<SecretValue, BackendError> {
        let what = || format!("{} secret {name}", owner.scope());
        self.open(what, &Self::aad(owner, name), &row.nonce, &row.ciphertext)
    }

    /// Encrypts a value (tagged text or object) under `aad`; returns nonce and ciphertext.
    fn seal(&self, aad: &str, value: &SecretValue) -> Result<(Vec<u8>, Vec<u8>), BackendError> {
        let plain = super::tagged(value);
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        let ciphertext = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &plain,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| BackendError::Corrupt("encryption failed".into()))?;
        Ok((nonce.to_vec(), ciphertext))
    }

    /// Decrypts; `what` names the item in the error (built only when there is one).
    fn open(
        &self,
        what: impl Fn() -> String,
        aad: &str,
        nonce: &[u8],
        ciphertext: &[u8],
    ) -> Result<SecretValue, BackendError> {
        let corrupt = || {
            BackendError::Corrupt(format!(
                "{} does not decrypt (wrong master key or damaged row)",
                what()
            ))
        };
        if nonce.len() != 12 {
            return Err(corrupt());
        }
        let plain = Zeroizing::new(
            self.cipher
                .decrypt(
                    Nonce::from_slice(nonce),
                    Payload {
                        msg: ciphertext,
                        aad: aad.as_bytes(),
                    },
                )
                .map_err(|_| corrupt())?,
        );
        super::untagged(&plain).ok_or_else(corrupt)
    }
}

fn parse_key(hex_key: &str) -> Option<Zeroizing<[u8; 32]>> {
    let mut key = Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(hex_key, key.as_mut()).ok()?;
    Some(key)
}

/// Embedded wrapping tokens start with this.
pub const WRAP_PREFIX: &str = "ewr_";

fn wrap_aad(hash: &str) -> String {
    format!("edgeward:wrap:v1:{hash}")
}

fn annotations_of(row: &SecretRow) -> Annotations {
    Annotations {
        description: row.description.clone(),
        labels: serde_json::from_str(&row.labels).unwrap_or_default(),
    }
}

fn store_error(e: StoreError) -> BackendError {
    match e {
        StoreError::NotFound(m) => BackendError::NotFound(m),
        StoreError::AlreadyExists(m) => BackendError::AlreadyExists(m),
        other => BackendError::Unavailable(other.to_string()),
    }
}

#[async_trait::async_trait]
impl SecretBackend for EmbeddedBackend {
    async fn get(
        &self,
        owner: &Owner,
        name: &SecretName,
    ) -> Result<Option<StoredSecret>, BackendError> {
        let row = self
            .store
            .secret_get(owner.scope().as_str(), owner.key(), name.to_string())
            .await
            .map_err(store_error)?;
        let Some(row) = row else { return Ok(None) };
        let value = self.decrypt(owner, name, &row)?;
        Ok(Some(StoredSecret {
            name: name.clone(),
            version: u64::try_from(row.version).unwrap_or(0),
            value,
        }))
    }

    async fn list(&self, owner: &Owner) -> Result<Vec<SecretMeta>, BackendError> {
        let rows = self
            .store
            .secret_list(owner.scope().as_str(), owner.key())
            .await
            .map_err(store_error)?;
        Ok(rows
            .into_iter()
            .filter_map(|row| {
                Some(SecretMeta {
                    name: SecretName::parse(&row.name).ok()?,
                    scope: owner.scope(),
                    version: u64::try_from(row.version).unwrap_or(0),
                    updated_at: row.updated_at,
                    annotations: annotations_of(&row),
                    updated_by: row.updated_by,
                })
            })
            .collect())
    }

    async fn write(
        &self,
        owner: &Owner,
        name: &SecretName,
        value: &SecretValue,
        by: &str,
        mode: WriteMode,
    ) -> Result<u64, BackendError> {
        let (nonce, ciphertext) = self.seal(&Self::aad(owner, name), value)?;
        let version = self
            .store
            .secret_write(
                owner.scope().as_str(),
                owner.key(),
                name.to_string(),
                nonce,
                ciphertext,
                by.to_string(),
                mode,
                i64::from(self.keep),
            )
            .await
            .map_err(store_error)?;
        Ok(u64::try_from(version).unwrap_or(0))
    }

    async fn import(
        &self,
        owner: &Owner,
        entries: &[(SecretName, SecretValue)],
        by: &str,
    ) -> Result<(), BackendError> {
        let mut sealed = Vec::with_capacity(entries.len());
        for (name, value) in entries {
            let (nonce, ciphertext) = self.seal(&Self::aad(owner, name), value)?;
            sealed.push((name.to_string(), nonce, ciphertext));
        }
        self.store
            .secret_import(
                owner.scope().as_str(),
                owner.key(),
                sealed,
                by.to_string(),
                i64::from(self.keep),
            )
            .await
            .map_err(store_error)
    }

    async fn wrap(
        &self,
        owner: &Owner,
        name: &SecretName,
        ttl: std::time::Duration,
    ) -> Result<Option<Wrapped>, BackendError> {
        let Some(secret) = self.get(owner, name).await? else {
            return Ok(None);
        };
        self.wrap_value(&secret.value, ttl).await.map(Some)
    }

    async fn wrap_value(
        &self,
        value: &SecretValue,
        ttl: std::time::Duration,
    ) -> Result<Wrapped, BackendError> {
        let token = crate::credential::random_credential(WRAP_PREFIX);
        let hash = crate::credential::hash_token(&token);
        let (nonce, ciphertext) = self.seal(&wrap_aad(&hash), value)?;
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        let expires_at = crate::store::now_ms().saturating_add(ttl_ms);
        self.store
            .wrap_insert(hash, String::new(), nonce, ciphertext, expires_at)
            .await
            .map_err(store_error)?;
        Ok(Wrapped {
            token,
            expires_at,
            unwrap_url: None,
        })
    }

    async fn unwrap(&self, token: &str) -> Result<SecretValue, BackendError> {
        let gone =
            || BackendError::NotFound("the wrapping token is unknown, used or expired".into());
        if !token.starts_with(WRAP_PREFIX) || token.len() > 128 {
            return Err(gone());
        }
        let hash = crate::credential::hash_token(token);
        let (_, nonce, ciphertext) = self
            .store
            .wrap_take(hash.clone())
            .await
            .map_err(store_error)?
            .ok_or_else(gone)?;
        self.open(
            || "wrapped value".to_string(),
            &wrap_aad(&hash),
            &nonce,
            &ciphertext,
        )
    }

    async fn versions(
        &self,
        owner: &Owner,
        name: &SecretName,
    ) -> Result<Option<Vec<VersionMeta>>, BackendError> {
        let rows = self
            .store
            .secret_versions(owner.scope().as_str(), owner.key(), name.to_string())
            .await
            .map_err(store_error)?;
        let Some(current) = rows.iter().map(|r| r.version).max() else {
            return Ok(None);
        };
        Ok(Some(
            rows.into_iter()
                .map(|r| VersionMeta {
                    version: u64::try_from(r.version).unwrap_or(0),
                    created_at: r.created_at,
                    created_by: Some(r.created_by),
                    current: r.version == current,
                    deleted: false,
                })
                .collect(),
        ))
    }

    async fn get_version(
        &self,
        owner: &Owner,
        name: &SecretName,
        version: u64,
    ) -> Result<Option<StoredSecret>, BackendError> {
        let Ok(wanted) = i64::try_from(version) else {
            return Ok(None);
        };
        let row = self
            .store
            .secret_get_version(
                owner.scope().as_str(),
                owner.key(),
                name.to_string(),
                wanted,
            )
            .await
            .map_err(store_error)?;
        let Some(row) = row else { return Ok(None) };
        let value = self.decrypt(owner, name, &row)?;
        Ok(Some(StoredSecret {
            name: name.clone(),
            version,
            value,
        }))
    }

    async fn annotate(
        &self,
        owner: &Owner,
        name: &SecretName,
        update: &AnnotationUpdate,
    ) -> Result<(), BackendError> {
        let labels = update
            .labels
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| BackendError::Corrupt(format!("labels: {e}")))?;
        let found = self
            .store
            .secret_annotate(
                owner.scope().as_str(),
                owner.key(),
                name.to_string(),
                update.description.clone(),
                labels,
            )
            .await
            .map_err(store_error)?;
        if !found {
            return Err(BackendError::NotFound(format!(
                "no {} secret {name}",
                owner.scope()
            )));
        }
        Ok(())
    }

    async fn delete(&self, owner: &Owner, name: &SecretName) -> Result<bool, BackendError> {
        self.store
            .secret_delete(owner.scope().as_str(), owner.key(), name.to_string())
            .await
            .map_err(store_error)
    }
}
