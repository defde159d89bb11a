//! The audit log's one home: what a record says (typed), how a path is kept (credentials
//! redacted, length capped), how floods fold into counts, and how long records are kept.
//!
//! Three writers use it: the API's policy middleware (every change and every value read),
//! a function's secret writes (as the triggering user), and the execution record writer
//! (credential uses and refusals, folded per package). None of them builds an
//! [`AuditRow`] by hand: they fill an [`Entry`] and [`record`] it. Never a value or a token.

use crate::names::Scope;
use crate::store::{AuditRow, Store};
use governor::{Quota, RateLimiter};
use std::hash::Hash;
use std::num::NonZeroU32;
use std::sync::Mutex;

/// How a call ended, as the log spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::EnumString)]
#[strum(serialize_all = "snake_case")]
pub enum Outcome {
    /// Done.
    Ok,
    /// Refused: the caller lacks the right.
    Denied,
    /// Refused: no valid token.
    Unauthenticated,
    /// Refused: the request was invalid.
    Rejected,
    /// Failed on the server's side.
    Error,
}

impl Outcome {
    /// The outcome of an HTTP status.
    pub fn of_status(status: u16) -> Outcome {
        match status {
            200..=299 => Outcome::Ok,
            401 => Outcome::Unauthenticated,
            403 => Outcome::Denied,
            400..=499 => Outcome::Rejected,
            _ => Outcome::Error,
        }
    }
}

/// Who acted.
#[derive(Debug, Clone)]
pub enum Actor {
    /// A user, with the public id of the token they used.
    User {
        /// The user.
        name: String,
        /// Their token's public id.
        token_id: Option<String>,
    },
    /// A caller without a valid token.
    Anonymous,
    /// A package acting on its own (its credentials).
    Package {
        /// The project.
        project: String,
        /// The package.
        package: String,
    },
}

/// One audit record, before it is written. Its `Debug` shows the target as the log keeps it
/// (credentials redacted), never the raw path.
#[derive(Clone)]
pub struct Entry {
    /// Who.
    pub actor: Actor,
    /// What: a method and route pattern (`POST /v1/projects/{project}/secrets`), or a named
    /// action (`function secrets.set`, `CREDENTIAL use`).
    pub action: String,
    /// On what: a path; [`record`] redacts credentials from it and caps its length.
    pub target: String,
    /// The project concerned.
    pub project: Option<String>,
    /// The secret scope concerned.
    pub scope: Option<Scope>,
    /// From where.
    pub remote: Option<String>,
    /// The HTTP status answered (or the one the API would have answered).
    pub status: u16,
    /// How it ended.
    pub outcome: Outcome,
    /// What else the record needs (a token's id, a count of records not kept); never a value.
    pub detail: Option<String>,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("actor", &self.actor)
            .field("action", &self.action)
            .field("target", &target(&self.target))
            .field("project", &self.project)
            .field("scope", &self.scope)
            .field("status", &self.status)
            .field("outcome", &self.outcome)
            .finish_non_exhaustive()
    }
}

impl Entry {
    /// The row the store keeps, stamped `at` (Unix milliseconds).
    pub fn into_row(self, at: i64) -> AuditRow {
        let (actor, token_id) = match self.actor {
            Actor::User { name, token_id } => (name, token_id),
            Actor::Anonymous => ("anonymous".to_string(), None),
            Actor::Package { project, package } => (format!("package:{project}/{package}"), None),
        };
        let outcome: &'static str = self.outcome.into();
        AuditRow {
            id: 0,
            at,
            actor,
            token_id,
            action: self.action,
            target: target(&self.target),
            project: self.project,
            scope: self.scope.map(|s| s.as_str().to_string()),
            remote: self.remote,
            status: self.status,
            outcome: outcome.to_string(),
            detail: self.detail,
        }
    }
}

/// Writes one record now. A store that fails is logged, not returned: an answer already given
/// is not taken back for its audit record.
pub async fn record(store: &Store, entry: Entry) {
    record_all(store, vec![entry]).await;
}

/// Writes several records stamped with one time.
pub async fn record_all(store: &Store, entries: Vec<Entry>) {
    let at = crate::store::now_ms();
    for entry in entries {
        if let Err(e) = store.append_audit(entry.into_row(at)).await {
            tracing::error!(error = %e, "could not write the audit log");
        }
    }
}

/// The longest `target` kept in an audit record, in characters.
pub const MAX_TARGET: usize = 512;

/// A path as an audit record (or a log line) keeps it: credentials redacted
/// ([`crate::credential::redact_tokens`]), then cut to [`MAX_TARGET`] characters.
pub fn target(path: &str) -> String {
    let mut target = crate::credential::redact_tokens(path);
    if target.chars().count() > MAX_TARGET {
        target = target.chars().take(MAX_TARGET).collect();
        target.push('…');
    }
    target
}

/// Deletes records older than `max_age` (the operator's `--audit-max-age`).
pub async fn apply_retention(store: &Store, max_age: std::time::Duration) {
    let max_age = i64::try_from(max_age.as_millis()).unwrap_or(i64::MAX);
    let before = crate::store::now_ms().saturating_sub(max_age);
    match store.prune_audit(before).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(removed = n, "audit records past retention removed"),
        Err(e) => tracing::error!(error = %e, "could not apply audit retention"),
    }
}

/// A keyed rate limiter as `governor` keeps it.
type Keyed<K> = governor::DefaultKeyedRateLimiter<K>;

/// A limit on audit records of one kind per key and second, so that a flood cannot grow the
/// log without bound and one noisy key cannot hide another's records. What is over the limit
/// is counted, and the count written with that key's next record that is kept: repeats fold
/// into one row with a count.
///
/// The rate is `governor`'s (a generic cell rate per key, forgotten once a key is idle); the
/// fold counts are kept only for keys with records not yet reported, at most
/// [`Limit::COUNTED`] of them; past that, what is suppressed is counted for whichever key
/// next keeps a record, so no flood of keys resets another key's limit.
pub struct Limit<K: Hash + Eq + Clone> {
    per_second: NonZeroU32,
    state: Mutex<Option<Folding<K>>>,
}

struct Folding<K: Hash + Eq + Clone> {
    limiter: Keyed<K>,
    suppressed: std::collections::HashMap<K, u64>,
    /// Suppressed records of keys past [`Limit::COUNTED`].
    unattributed: u64,
    admitted: u32,
}

impl<K: Hash + Eq + Clone> Limit<K> {
    /// Keys whose suppressed records are counted each on their own.
    const COUNTED: usize = 10_000;

    /// A limit of `per_second` records per key (at least one).
    pub const fn new(per_second: u32) -> Limit<K> {
        let per_second = match NonZeroU32::new(per_second) {
            Some(n) => n,
            None => NonZeroU32::MIN,
        };
        Limit {
            per_second,
            state: Mutex::new(None),
        }
    }

    /// Records kept per second and key.
    pub fn per_second(&self) -> u32 {
        self.per_second.get()
    }

    /// `Some(records suppressed since this key's last kept one)` if a record for `key` may be
    /// written now, `None` if it is over the limit (and is counted).
    pub fn admit(&self, key: K) -> Option<u64> {
        let mut guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let st = guard.get_or_insert_with(|| Folding {
            limiter: RateLimiter::keyed(Quota::per_second(self.per_second)),
            suppressed: std::collections::HashMap::new(),
            unattributed: 0,
            admitted: 0,
        });
        st.admitted = st.admitted.wrapping_add(1);
        if st.admitted.is_multiple_of(1024) {
            // Keys idle long enough to be back at a full allowance take no memory.
            st.limiter.retain_recent();
            st.limiter.shrink_to_fit();
        }
        if st.limiter.check_key(&key).is_err() {
            if let Some(n) = st.suppressed.get_mut(&key) {
                *n += 1;
            } else if st.suppressed.len() < Self::COUNTED {
                st.suppressed.insert(key, 1);
            } else {
                st.unattributed += 1;
            }
            return None;
        }
        let own = st.suppressed.remove(&key).unwrap_or(0);
        Some(own + std::mem::take(&mut st.unattributed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_folds_into_the_next_kept_record() {
        let limit: Limit<&str> = Limit::new(3);
        let kept: Vec<_> = (0..10).map(|_| limit.admit("a")).collect();
        assert_eq!(kept[..3], [Some(0), Some(0), Some(0)]);
        assert!(kept[3..].iter().all(Option::is_none), "{kept:?}");
        // Another key is not held back by the first one's flood.
        assert_eq!(limit.admit("b"), Some(0));
    }

    #[test]
    fn many_keys_do_not_reset_a_flooded_key() {
        let limit: Limit<u32> = Limit::new(1);
        assert_eq!(limit.admit(0), Some(0));
        assert_eq!(limit.admit(0), None);
        // Twenty thousand other keys (an attacker's addresses) come and go.
        for k in 1..20_000 {
            limit.admit(k);
        }
        // Key 0 is still limited within its second: the flood of keys did not clear it.
        assert_eq!(limit.admit(0), None);
    }

    #[test]
    fn targets_are_redacted_and_capped() {
        let t = target("/v1/unwrap/ewr_0123456789abcdef");
        assert!(!t.contains("0123456789abcdef"), "{t}");
        let long = format!("/{}", "a".repeat(2000));
        assert_eq!(target(&long).chars().count(), MAX_TARGET + 1);
    }

    #[test]
    fn an_entrys_debug_never_shows_a_token_in_its_path() {
        let token = format!("ew_{}", "ab12".repeat(16));
        let entry = Entry {
            actor: Actor::Anonymous,
            action: "DELETE /v1/users/{user}/tokens/{id}".into(),
            target: format!("/v1/users/bob/tokens/{token}"),
            project: None,
            scope: None,
            remote: None,
            status: 404,
            outcome: Outcome::Rejected,
            detail: None,
        };
        let shown = format!("{entry:?}");
        assert!(!shown.contains(&token[3..]), "{shown}");
        assert!(shown.contains("/v1/users/bob/tokens/***"), "{shown}");
        assert!(!entry.into_row(0).target.contains(&token[3..]));
    }

    #[test]
    fn outcomes_follow_the_status() {
        for (status, want) in [
            (200, "ok"),
            (201, "ok"),
            (401, "unauthenticated"),
            (403, "denied"),
            (404, "rejected"),
            (503, "error"),
        ] {
            let got: &str = Outcome::of_status(status).into();
            assert_eq!(got, want, "{status}");
        }
    }
}
