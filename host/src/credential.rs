//! Credentials Edgeward makes: random, recognisable by prefix, stored only as a hash, and
//! kept out of every path that is logged or audited.
//!
//! The lowest layer: API tokens ([`crate::auth`]), enrollment codes and the embedded
//! backend's wrapping tokens are all made and hashed here.

use rand::RngCore;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// Every API token starts with this, so a leaked one is easy to recognise and scan for.
pub const TOKEN_PREFIX: &str = "ew_";

/// Enrollment codes start with this.
pub const ENROLLMENT_PREFIX: &str = "ewe_";

/// A new credential: `prefix` and 64 hex digits (256 random bits). API tokens, enrollment
/// codes and embedded wrapping tokens are all made here.
pub fn random_credential(prefix: &str) -> Zeroizing<String> {
    let mut raw = Zeroizing::new([0u8; 32]);
    rand::rng().fill_bytes(raw.as_mut());
    Zeroizing::new(format!("{prefix}{}", hex::encode(raw.as_ref())))
}

/// Prefixes of the credentials a path segment must never keep: Edgeward's API tokens,
/// wrapping tokens (embedded and user-secret), enrollment codes, and Vault's tokens.
const CREDENTIAL_PREFIXES: [&str; 6] = [TOKEN_PREFIX, "ewr_", "ewe_", "ewu_", "hvs.", "hvb."];

/// The stored form of a token. Tokens carry 256 bits of entropy, so a plain SHA-256 is
/// enough: there is nothing to brute-force.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// `path` for audit records and logs: percent-decoded first (so `ew%5F…` is recognised), then
/// every segment that is a credential ([`CREDENTIAL_PREFIXES`]) replaced by `***`: a token
/// pasted where an id belongs must not be kept.
pub fn redact_tokens(path: &str) -> String {
    let decoded = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
    decoded
        .split('/')
        .map(|segment| {
            if CREDENTIAL_PREFIXES.iter().any(|p| segment.starts_with(p)) {
                "***"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// A short public id for a token (a prefix of a second, domain-separated hash).
pub fn token_id(token: &str) -> String {
    let digest = Sha256::digest(format!("edgeward-token-id:{token}").as_bytes());
    format!("tok_{}", &hex::encode(digest)[..16])
}
