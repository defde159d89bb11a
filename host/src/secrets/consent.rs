//! Consent bound to the code: a user's grant of one package version to their user scope.
//!
//! A package declares what it wants from its caller's user scope (`user-secrets` in its
//! manifest). The user grants one version of it: the component's sha256 and the manifest's
//! sha256, for `project/package`. The grant is a row in the store carrying an HMAC-SHA256 of
//! exactly that, under a key derived from the user's data key ([`UserKey::mac`]), so only a
//! token that opens the key can make one or check one: an admin with the database can delete a
//! grant (denial) but cannot forge one, nor move one to other code. A new upload, a changed
//! manifest or a rollback to a version the user never granted has other digests, so no grant
//! verifies and the data plane refuses the user's request before the guest runs
//! (`consent_required`).

use super::userkey::UserKey;
use crate::store::{GrantRow, Store};
use std::sync::Arc;

/// The domain a grant's MAC is made in.
const DOMAIN: &str = "edgeward-grant-v1";

/// What a grant binds: who, which package, which code and which manifest.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// The user granting.
    pub user: &'a str,
    /// The project.
    pub project: &'a str,
    /// The package.
    pub package: &'a str,
    /// The component's sha256.
    pub sha256: &'a str,
    /// The manifest's sha256 ([`crate::manifest::Manifest::digest`]).
    pub manifest_sha256: &'a str,
}

impl Subject<'_> {
    /// The message the MAC covers: each part on its own line (no part holds a newline: names
    /// follow the naming rule and digests are hex).
    fn message(&self) -> String {
        format!(
            "{}\n{}\n{}\n{}\n{}",
            self.user, self.project, self.package, self.sha256, self.manifest_sha256
        )
    }

    /// The MAC of this subject under `key`, hex.
    pub fn sign(&self, key: &UserKey) -> String {
        hex::encode(key.mac(DOMAIN, self.message().as_bytes()))
    }

    /// Whether `grant` is a valid grant of this subject under `key`: the same subject, made
    /// with this key.
    pub fn verify(&self, key: &UserKey, grant: &GrantRow) -> bool {
        let same = grant.user == self.user
            && grant.project == self.project
            && grant.package == self.package
            && grant.sha256 == self.sha256
            && grant.manifest_sha256 == self.manifest_sha256
            && grant.key_id == key.id();
        let Ok(tag) = hex::decode(&grant.mac) else {
            return false;
        };
        same && key.verify_mac(DOMAIN, self.message().as_bytes(), &tag)
    }
}

/// Why a user's request may not open their scope to a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The request's token opens no data key (an admin issued it): it can have no grant.
    NoKey,
    /// No grant of this code and manifest verifies under the token's key.
    NoGrant,
    /// The store could not answer.
    Unavailable,
}

/// Grants this host has verified, so a user's requests to a version she granted cost one set
/// lookup, not a store query and a MAC each. An entry names the subject and the key that
/// verified it; the change feed drops a user's entries whenever her grants change on any host
/// (and all of them after a resync). The epoch keeps a check that raced such a change from
/// caching what it read before it.
#[derive(Debug, Default)]
pub struct Verified {
    seen: std::sync::Mutex<std::collections::HashSet<String>>,
    epoch: std::sync::atomic::AtomicU64,
}

/// The most verified grants a host remembers; past it, it starts again.
const VERIFIED_MAX: usize = 65_536;

impl Verified {
    fn entry(subject: &Subject<'_>, key_id: &str) -> String {
        format!("{}\n{key_id}", subject.message())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<String>> {
        self.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Forgets every grant of `user` (hers changed somewhere).
    pub fn forget_user(&self, user: &str) {
        let prefix = format!("{user}\n");
        let mut seen = self.lock();
        self.epoch.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        seen.retain(|e| !e.starts_with(&prefix));
    }

    /// Forgets everything (after the feed lost track).
    pub fn clear(&self) {
        let mut seen = self.lock();
        self.epoch.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        seen.clear();
    }
}

/// The user's data key, for an execution of `subject`, when a grant of it verifies under `key`
/// (the key the request's token opens).
pub async fn check(
    store: &Store,
    verified: &Verified,
    subject: Subject<'_>,
    key: Option<Arc<UserKey>>,
) -> Result<Arc<UserKey>, Refusal> {
    let key = key.ok_or(Refusal::NoKey)?;
    let entry = Verified::entry(&subject, key.id());
    if verified.lock().contains(&entry) {
        return Ok(key);
    }
    let epoch = verified.epoch.load(std::sync::atomic::Ordering::Acquire);
    let grant = store
        .find_grant(
            subject.user.to_string(),
            subject.project.to_string(),
            subject.package.to_string(),
            subject.sha256.to_string(),
            subject.manifest_sha256.to_string(),
        )
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "could not read a user's grant");
            Refusal::Unavailable
        })?;
    match grant {
        Some(grant) if subject.verify(&key, &grant) => {
            let mut seen = verified.lock();
            if verified.epoch.load(std::sync::atomic::Ordering::Acquire) == epoch {
                if seen.len() >= VERIFIED_MAX {
                    seen.clear();
                }
                seen.insert(entry);
            }
            Ok(key)
        }
        _ => Err(Refusal::NoGrant),
    }
}

/// A new grant id.
pub fn grant_id() -> String {
    use rand::RngCore;
    let mut raw = [0u8; 8];
    rand::rng().fill_bytes(&mut raw);
    format!("grant_{}", hex::encode(raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject<'a>(sha: &'a str, manifest: &'a str) -> Subject<'a> {
        Subject {
            user: "alice",
            project: "acme",
            package: "tool",
            sha256: sha,
            manifest_sha256: manifest,
        }
    }

    fn grant(s: &Subject<'_>, key: &UserKey, mac: String) -> GrantRow {
        GrantRow {
            id: grant_id(),
            user: s.user.into(),
            project: s.project.into(),
            package: s.package.into(),
            version: 1,
            sha256: s.sha256.into(),
            manifest_sha256: s.manifest_sha256.into(),
            names: vec!["API_KEY".into()],
            key_id: key.id().into(),
            mac,
            created_at: 0,
        }
    }

    #[test]
    fn a_grant_verifies_for_its_code_manifest_and_key_only() {
        let key = UserKey::generate();
        let s = subject("aa", "mm");
        let g = grant(&s, &key, s.sign(&key));
        assert!(s.verify(&key, &g));
        // Other code, another manifest, another package, another user: no.
        assert!(!subject("ab", "mm").verify(&key, &g));
        assert!(!subject("aa", "mn").verify(&key, &g));
        let mut other = s;
        other.package = "tool2";
        assert!(!other.verify(&key, &g));
        other = s;
        other.user = "bob";
        assert!(!other.verify(&key, &g));
        // Another key (an admin's, or the user's after a new enrollment): no.
        assert!(!s.verify(&UserKey::generate(), &g));
        // A row an admin edits to point at other code keeps a MAC that no longer verifies.
        let mut moved = g.clone();
        moved.sha256 = "ff".into();
        assert!(!subject("ff", "mm").verify(&key, &moved));
        // A forged MAC, or none.
        for mac in ["", "zz", &"00".repeat(32)] {
            assert!(!s.verify(&key, &grant(&s, &key, mac.to_string())));
        }
    }
}
