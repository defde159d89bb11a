//! API tokens: high-entropy, recognisable (`ew_…`), stored only as a SHA-256 hash, shown once.
//!
//! On first start the server makes a platform admin token and writes it to
//! `<data-dir>/admin.token` (0600): the one credential an operator needs to begin.

#[cfg(test)]
use crate::credential::redact_tokens;
pub use crate::credential::{ENROLLMENT_PREFIX, TOKEN_PREFIX};
use crate::credential::{hash_token, random_credential, token_id};
use crate::datadir::DataDir;
use crate::secrets::userkey::{KeySlot, UserKey};

use crate::store::{NewToken, Store, StoreError};
use std::sync::Arc;
use zeroize::Zeroizing;

/// The admin token file under the data directory.
pub const ADMIN_TOKEN_FILE: &str = "admin.token";

/// The bootstrap platform admin user, who owns `admin.token`.
pub const ADMIN_USER: &str = "admin";

/// Who is calling. Never holds the token itself.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The user.
    pub user: String,
    /// The token's public id.
    pub token_id: String,
    /// Whether the user administers the whole installation.
    pub platform_admin: bool,
    /// Who made the token: the user, or an admin.
    pub issued_by: String,
    /// The token's key slot (its user's data key, encrypted for this token), if it has one.
    pub slot: Option<Box<KeySlot>>,
    /// When the token expires, Unix milliseconds.
    pub expires_at: Option<i64>,
}

impl Principal {
    /// The user's data key, opened with `token` (this principal's own token), if the token
    /// holds a key slot.
    pub fn open_user_key(&self, token: &str) -> Option<Arc<UserKey>> {
        let slot = self.slot.as_ref()?;
        UserKey::open_slot(&self.user, &self.token_id, token, slot).map(Arc::new)
    }

    /// The expiry of a token made with this principal's token (minted, or a console session):
    /// `requested`, held to this token's own expiry, which it inherits when it asks none. A
    /// token never outlives the token that made it (and its revocation revokes it too).
    pub fn child_expiry(&self, requested: Option<i64>) -> Option<i64> {
        match (requested, self.expires_at) {
            (Some(asked), Some(parent)) => Some(asked.min(parent)),
            (asked, parent) => asked.or(parent),
        }
    }
}

/// Why a caller was not let in. Messages never echo the token.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No token, a malformed one, an unknown one or a revoked one.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A new random token (`ew_` and 64 hex digits: 256 bits) and its public id.
pub fn generate_token() -> (String, Zeroizing<String>) {
    let token = random_credential(TOKEN_PREFIX);
    (token_id(&token), token)
}

/// Makes sure the admin user and the admin token file exist and the token is known to the
/// store. Returns whether the token was created now.
pub async fn ensure_admin_token(store: &Store, data_dir: &DataDir) -> anyhow::Result<bool> {
    store
        .create_user(ADMIN_USER.into(), true, "edgeward".into(), true)
        .await?;
    if let Some(bytes) = data_dir.read(ADMIN_TOKEN_FILE)? {
        let token = Zeroizing::new(String::from_utf8_lossy(&bytes).trim().to_string());
        if !token.starts_with(TOKEN_PREFIX) {
            anyhow::bail!(
                "{} does not hold an Edgeward token (expected {TOKEN_PREFIX}…)",
                data_dir.path().join(ADMIN_TOKEN_FILE).display()
            );
        }
        store
            .insert_token(NewToken {
                id: token_id(&token),
                hash: hash_token(&token),
                user: ADMIN_USER.into(),
                label: "admin.token".into(),
                expires_at: None,
                issued_by: ADMIN_USER.into(),
                slot: None,
                parent: None,
            })
            .await?;
        return Ok(false);
    }
    // The bootstrap token lives in a file beside the store, so it opens no user secrets: the
    // admin enrolls like anyone else for those (`edgeward users enroll admin`).
    let (_, token) = issue_token(
        store,
        ADMIN_USER,
        "admin.token",
        None,
        ADMIN_USER,
        None,
        None,
    )
    .await?;
    let mut contents = Zeroizing::new(token.to_string());
    contents.push('\n');
    data_dir.write_atomic(ADMIN_TOKEN_FILE, contents.as_bytes(), 0o600)?;
    Ok(true)
}

/// The record of a new token for `user`, made by `issued_by` (with the token `parent`, if
/// any), with a key slot for `key`.
pub fn new_token(
    user: &str,
    label: &str,
    expires_at: Option<i64>,
    issued_by: &str,
    key: Option<&UserKey>,
    parent: Option<&str>,
) -> (NewToken, Zeroizing<String>) {
    let (id, token) = generate_token();
    let slot = key.map(|k| k.slot_for(user, &id, &token));
    (
        NewToken {
            id,
            hash: hash_token(&token),
            user: user.to_string(),
            label: label.to_string(),
            expires_at,
            issued_by: issued_by.to_string(),
            slot,
            parent: parent.map(str::to_string),
        },
        token,
    )
}

/// Creates a token for `user`, made by `issued_by` with the token `parent` (if any), holding a
/// key slot for `key` if given; returns its id and the token, which is not kept anywhere.
pub async fn issue_token(
    store: &Store,
    user: &str,
    label: &str,
    expires_at: Option<i64>,
    issued_by: &str,
    key: Option<&UserKey>,
    parent: Option<&str>,
) -> Result<(String, Zeroizing<String>), StoreError> {
    let (record, token) = new_token(user, label, expires_at, issued_by, key, parent);
    let id = record.id.clone();
    store.insert_token(record).await?;
    Ok((id, token))
}

/// A new enrollment code (`ewe_` and 64 hex digits), its public id and its hash.
pub fn generate_enrollment_code() -> (String, String, Zeroizing<String>) {
    let code = random_credential(ENROLLMENT_PREFIX);
    let hash = hash_token(&code);
    let id = format!("enr_{}", &hash[..16]);
    (id, hash, code)
}

/// Creates a cluster's first platform admin, [`ADMIN_USER`], and returns its token. Refused
/// (`AlreadyExists`) if the store has one: of two hosts racing, one wins.
pub async fn init_admin(store: &Store) -> anyhow::Result<Zeroizing<String>> {
    store
        .create_user(ADMIN_USER.into(), true, "edgeward".into(), false)
        .await
        .map_err(|e| match e {
            crate::store::StoreError::AlreadyExists(_) => anyhow::anyhow!(
                "already_exists: this store has its admin already (admin init runs once per \
                 cluster; an admin can issue more tokens with `edgeward tokens create`)"
            ),
            e => e.into(),
        })?;
    let (_, token) = issue_token(
        store,
        ADMIN_USER,
        "admin init",
        None,
        ADMIN_USER,
        None,
        None,
    )
    .await?;
    Ok(token)
}

/// Tokens this host has found in the store, by hash, so a request with a token costs a map
/// lookup rather than a store round trip. Only what the store holds is kept (the hash, the
/// key slot, which opens only with the token itself); unknown tokens are never cached. A
/// revocation drops its users' entries at once on the host that made it
/// ([`TokenCache::forget`]) and,
/// through the change feed (`Change::Identity`), on every other host within a second; expiry
/// is checked on every use. The epoch keeps a lookup that raced a revocation from caching what
/// it read before it.
#[derive(Default)]
pub struct TokenCache {
    seen: std::sync::Mutex<std::collections::HashMap<String, crate::store::TokenOwner>>,
    epoch: std::sync::atomic::AtomicU64,
}

/// How many tokens are cached, never which (their hashes are the store's lookup keys).
impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("tokens", &self.lock().len())
            .finish_non_exhaustive()
    }
}

/// The most tokens a host remembers; past it, it starts again.
const TOKENS_CACHED: usize = 65_536;

impl TokenCache {
    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, crate::store::TokenOwner>>
    {
        self.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Forgets the tokens of `user` (one of theirs, or one made from one of theirs, changed).
    pub fn forget_user(&self, user: &str) {
        let mut seen = self.lock();
        self.epoch.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        seen.retain(|_, owner| owner.token.user_name != user);
    }

    /// Forgets the tokens a revocation reached, on the host that made it (the others hear of
    /// it through the change feed).
    pub fn forget(&self, revoked: &crate::store::Revoked) {
        for user in &revoked.users {
            self.forget_user(user);
        }
    }

    /// Forgets every token (the feed lost track).
    pub fn clear(&self) {
        let mut seen = self.lock();
        self.epoch.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        seen.clear();
    }
}

/// Checks a bearer token (without the `Bearer ` prefix).
pub async fn authenticate_token(
    store: &Store,
    cache: &TokenCache,
    token: &str,
) -> Result<Principal, AuthError> {
    if !token.starts_with(TOKEN_PREFIX) || token.len() > 256 {
        return Err(AuthError::Unauthenticated("invalid token"));
    }
    let hash = hash_token(token);
    let cached = cache.lock().get(&hash).cloned();
    let owner = match cached {
        Some(owner) => owner,
        None => {
            let epoch = cache.epoch.load(std::sync::atomic::Ordering::Acquire);
            let owner = store
                .token_by_hash(hash.clone())
                .await?
                .ok_or(AuthError::Unauthenticated("invalid token"))?;
            let mut seen = cache.lock();
            if cache.epoch.load(std::sync::atomic::Ordering::Acquire) == epoch {
                if seen.len() >= TOKENS_CACHED {
                    seen.clear();
                }
                seen.insert(hash, owner.clone());
            }
            owner
        }
    };
    if owner.token.revoked_at.is_some() {
        return Err(AuthError::Unauthenticated("invalid token"));
    }
    if owner
        .token
        .expires_at
        .is_some_and(|at| at <= crate::store::now_ms())
    {
        return Err(AuthError::Unauthenticated("the token has expired"));
    }
    Ok(Principal {
        user: owner.token.user_name,
        token_id: owner.token.id,
        platform_admin: owner.platform_admin,
        issued_by: owner.token.issued_by,
        slot: owner.slot.map(Box::new),
        expires_at: owner.token.expires_at,
    })
}

/// The token in an `Authorization: Bearer …` header value (the scheme in any case), if it
/// is one.
pub fn bearer(header: &str) -> Option<&str> {
    let (scheme, rest) = header.trim_start().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

/// Checks an `Authorization` header value.
pub async fn authenticate(
    store: &Store,
    cache: &TokenCache,
    header: Option<&str>,
) -> Result<Principal, AuthError> {
    let header = header.ok_or(AuthError::Unauthenticated(
        "missing bearer token: send `Authorization: Bearer ew_…`",
    ))?;
    let token = bearer(header).ok_or(AuthError::Unauthenticated(
        "the Authorization header must be `Bearer ew_…`",
    ))?;
    authenticate_token(store, cache, token).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_paths_are_redacted_encoded_or_not() {
        let token = random_credential(TOKEN_PREFIX);
        for path in [
            format!("/v1/users/bob/tokens/{}", token.as_str()),
            format!("/v1/users/bob/tokens/{}", token.replacen('_', "%5F", 1)),
            format!("/v1/users/bob/tokens/{}", token.replacen('e', "%65", 1)),
        ] {
            assert_eq!(redact_tokens(&path), "/v1/users/bob/tokens/***", "{path}");
        }
        assert_eq!(redact_tokens("/acme/api/new_key"), "/acme/api/new_key");
        assert_eq!(redact_tokens("/x/hvs.CAES/ewu_a~b~c"), "/x/***/***");
    }

    #[tokio::test]
    async fn admin_token_is_created_once_and_stored_hashed() {
        let tmp = tempfile::tempdir().unwrap();
        let dd = DataDir::open(tmp.path()).unwrap();
        let store = Store::open(&tmp.path().join("db")).unwrap();
        assert!(ensure_admin_token(&store, &dd).await.unwrap());
        assert!(!ensure_admin_token(&store, &dd).await.unwrap());
        let token = String::from_utf8(dd.read(ADMIN_TOKEN_FILE).unwrap().unwrap()).unwrap();
        let token = token.trim();
        assert!(token.starts_with("ew_") && token.len() == 67);
        let cache = TokenCache::default();
        let who = authenticate(&store, &cache, Some(&format!("Bearer {token}")))
            .await
            .unwrap();
        assert!(who.platform_admin);
        assert!(!format!("{who:?}").contains(token));
        for bad in [None, Some("Bearer ew_nope"), Some(token), Some("Basic abc")] {
            assert!(authenticate(&store, &cache, bad).await.is_err());
        }
        let db = std::fs::read(tmp.path().join("db")).unwrap();
        let wal = std::fs::read(tmp.path().join("db-wal")).unwrap_or_default();
        let all = [db, wal].concat();
        assert!(!String::from_utf8_lossy(&all).contains(token));
    }
}
