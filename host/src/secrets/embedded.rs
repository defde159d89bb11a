//! The embedded backend: values encrypted with AES-256-GCM in the metadata store.
//!
//! The master key is `EDGEWARD_MASTER_KEY` (64 hex digits) or `<data-dir>/master.key`, created
//! with mode 0600 on first start. Each ciphertext is bound to its scope, owner and name as
//! associated data, so a row copied to another place in the database does not decrypt.

use super::{BackendError, Owner, SecretBackend, SecretMeta, SecretValue, StoredSecret};
use crate::datadir::DataDir;
use crate::names::SecretName;
use crate::store::{SecretRow, Store};
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
}

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
        }
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
            let text = Zeroizing::new(String::from_utf8_lossy(&bytes).into_owned());
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
        let corrupt = || {
            BackendError::Corrupt(format!(
                "{} secret {name} does not decrypt (wrong master key or damaged row)",
                owner.scope()
            ))
        };
        if row.nonce.len() != 12 {
            return Err(corrupt());
        }
        let aad = Self::aad(owner, name);
        let plain = Zeroizing::new(
            self.cipher
                .decrypt(
                    Nonce::from_slice(&row.nonce),
                    Payload {
                        msg: &row.ciphertext,
                        aad: aad.as_bytes(),
                    },
                )
                .map_err(|_| corrupt())?,
        );
        let (kind, text) = plain.split_first().ok_or_else(corrupt)?;
        let text = String::from_utf8(text.to_vec()).map_err(|_| corrupt())?;
        match kind {
            b't' => Ok(SecretValue::text(text)),
            b'o' => Ok(SecretValue::object(text)),
            _ => Err(corrupt()),
        }
    }
}

fn parse_key(hex_key: &str) -> Option<Zeroizing<[u8; 32]>> {
    let mut key = Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(hex_key, key.as_mut()).ok()?;
    Some(key)
}

fn store_error(e: crate::store::StoreError) -> BackendError {
    BackendError::Unavailable(e.to_string())
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
                    updated_by: row.updated_by,
                })
            })
            .collect())
    }

    async fn put(
        &self,
        owner: &Owner,
        name: &SecretName,
        value: &SecretValue,
        by: &str,
    ) -> Result<u64, BackendError> {
        let mut plain = Zeroizing::new(Vec::with_capacity(value.expose().len() + 1));
        plain.push(if value.is_object() { b'o' } else { b't' });
        plain.extend_from_slice(value.expose().as_bytes());
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        let aad = Self::aad(owner, name);
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
        let version = self
            .store
            .secret_put(
                owner.scope().as_str(),
                owner.key(),
                name.to_string(),
                nonce.to_vec(),
                ciphertext,
                by.to_string(),
            )
            .await
            .map_err(store_error)?;
        Ok(u64::try_from(version).unwrap_or(0))
    }

    async fn delete(&self, owner: &Owner, name: &SecretName) -> Result<bool, BackendError> {
        self.store
            .secret_delete(owner.scope().as_str(), owner.key(), name.to_string())
            .await
            .map_err(store_error)
    }
}
