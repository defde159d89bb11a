//! Wrapped single-use tokens: the wrap answer and both unwrap shapes (Edgeward's and Vault's).

use super::*;

/// `POST …/{name}/wrap` (the body may be left out).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Wrap {
    /// Lifetime in seconds (default 300, at most a day).
    #[serde(default)]
    pub ttl: Option<u64>,
}

/// A single-use wrapping token for a secret's value.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct Wrapped {
    /// The token.
    pub token: String,
    /// Its lifetime, seconds.
    pub ttl: u64,
    /// When it expires.
    pub expires_at: String,
    /// Where to redeem it, whichever the backend: Edgeward's `POST /v1/unwrap`, the token in
    /// `X-Vault-Token` or the body; it answers `{"value", "data"}`.
    pub unwrap_url: String,
    /// With the Vault backend, Vault's own `sys/wrapping/unwrap`, where the same token also
    /// redeems (once): Vault answers a wrapped KV read as
    /// `{"data": {"data": {fields}, "metadata": {...}}}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vault_unwrap_url: Option<String>,
}

/// `POST /v1/unwrap`.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Unwrap {
    /// The wrapping token.
    pub token: String,
}

/// A wrapped value, redeemed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Unwrapped {
    /// The value, as stored: a string or an object of fields.
    #[schema(schema_with = secret_value_schema)]
    pub value: Value,
    /// Its fields in Vault's shape (a plain value as the field `value`), as
    /// `/v1/sys/wrapping/unwrap` answers.
    #[schema(schema_with = any_object)]
    pub data: Value,
}

/// `/v1/unwrap` and `/v1/sys/wrapping/unwrap`: `{"token"}`, or no body and the token as
/// `X-Vault-Token`.
#[derive(Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct VaultUnwrap {
    /// The wrapping token.
    #[serde(default)]
    pub token: Option<String>,
}

/// A wrapped value in Vault's shape: its fields (a plain value as the field `value`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VaultUnwrapped {
    /// The fields.
    #[schema(schema_with = any_object)]
    pub data: Value,
}

/// Bodies that carry a credential print without it: a token, code or CSRF token never reaches a
/// log line or a panic through `Debug`.
macro_rules! redacted_debug {
    ($($t:ty => [$($shown:ident),*]),* $(,)?) => {$(
        impl std::fmt::Debug for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($t))
                    $(.field(stringify!($shown), &self.$shown))*
                    .finish_non_exhaustive()
            }
        }
    )*};
}

redacted_debug! {
    Enroll => [name],
    Unwrap => [],
    VaultUnwrap => [],
    Wrapped => [ttl, expires_at, unwrap_url, vault_unwrap_url],
    CreateSession => [],
    Session => [user, token_id, expires_at],
}
