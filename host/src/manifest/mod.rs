//! A package's manifest: what it declares about itself, checked at upload.
//!
//! TOML or JSON, every field optional:
//!
//! ```toml
//! secrets = ["DB_PASS", "API_KEY"]      # allowlist; other names are `denied`
//! write-secrets = ["package"]            # scopes the function may write (as its caller)
//! user-secrets = ["API_KEY", "team/*"]   # what it may read from its caller's user scope,
//!                                        # once that user granted this exact version
//!
//! [env]                                  # the guest's WASI environment
//! DB_PASSWORD = "secret:DB_PASS"         # bound to a secret, resolved per instance
//! DB_HOST = "secret:db#HOST"             # one field of a multi-field secret
//! MODE = "production"                    # a literal
//!
//! [env.expand]                           # one variable per field: DB_HOST, DB_PASSWORD…
//! DB_ = "secret:db"
//!
//! [outbound]
//! hosts = ["api.example.com", "*.example.org:443"]
//!
//! [[outbound.credentials]]              # attached by the host; never enters the guest
//! secret = "STRIPE_KEY"                  # resolved like get(): package, project, platform
//! hosts = ["api.example.com"]            # https only; each within [outbound] hosts
//! header = "authorization"               # the default
//! format = "Bearer {}"                   # the default; "Basic {user}:{}" base64-encodes
//!
//! [limits]
//! timeout-ms = 10000
//! memory-mb = 64
//! max-request-bytes = 1048576
//! max-response-bytes = 10485760
//! max-concurrency = 16
//! max-outbound-requests = 8
//! ```

pub mod credential;
mod hosts;

use crate::names::{Scope, SecretName, field_name_ok};
pub use hosts::HostPattern;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The largest manifest accepted.
pub const MAX_MANIFEST_BYTES: usize = 64 * 1024;

/// A parsed, validated manifest.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Manifest {
    /// Secret names the package may read; `None` means any name its scopes hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets: Option<Vec<String>>,
    /// Environment variables for the guest: a literal, `secret:NAME`, `secret:NAME#FIELD` or
    /// `credential:NAME`; and `expand`, prefixes bound to multi-field secrets.
    #[serde(default, skip_serializing_if = "Env::is_empty")]
    pub env: Env,
    /// Outbound HTTP.
    #[serde(default, skip_serializing_if = "Outbound::is_empty")]
    pub outbound: Outbound,
    /// Resource limits; unset fields take the server's defaults.
    #[serde(default)]
    pub limits: Limits,
    /// The scopes a function may write secrets to (WIT `set` and `delete`), with the rights
    /// of the user whose token triggered it; none by default.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub write_secrets: Vec<Scope>,
    /// Who the function's writes to its own package scope act as: the caller (`"user"`, the
    /// default: a token and its rights) or the package itself (`"package"`: with or without a
    /// caller token, audited as the package). Never wider than the package's own scope.
    #[serde(default, skip_serializing_if = "WriteAs::is_user")]
    pub write_secrets_as: WriteAs,
    /// What the function may read (and, with `write-secrets = ["user"]`, write) in the user
    /// scope of the user whose token calls it: names, or folders as `team/*`. Nothing without
    /// it; and even with it, only once that user granted this exact version
    /// (`edgeward grants add`).
    #[serde(default, skip_serializing_if = "UserSecrets::is_empty")]
    pub user_secrets: UserSecrets,
}

/// Who a function's writes to its own package scope act as (`write-secrets-as`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WriteAs {
    /// The user whose token triggered the execution, with their rights.
    #[default]
    User,
    /// The package itself, whoever called (no token needed).
    Package,
}

impl WriteAs {
    fn is_user(&self) -> bool {
        *self == WriteAs::User
    }
}

/// The names and folders of its caller's user scope a package declares (`user-secrets`):
/// `NAME`, or `FOLDER/*` for everything under a folder.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserSecrets(Vec<String>);

/// The most entries `user-secrets` may hold.
pub const MAX_USER_SECRETS: usize = 64;

impl UserSecrets {
    /// Declared from a list (checked by [`UserSecrets::check`]).
    pub fn new(entries: Vec<String>) -> UserSecrets {
        UserSecrets(entries)
    }

    /// Whether nothing is declared: user scope is closed to the package.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The entries as declared.
    pub fn entries(&self) -> &[String] {
        &self.0
    }

    /// Whether `name` is declared: named, or under a declared folder.
    pub fn allows(&self, name: &str) -> bool {
        self.0.iter().any(|entry| match entry.strip_suffix("/*") {
            Some(folder) => name
                .strip_prefix(folder)
                .is_some_and(|rest| rest.starts_with('/')),
            None => entry == name,
        })
    }

    fn check(&self) -> Result<(), ManifestError> {
        if self.0.len() > MAX_USER_SECRETS {
            return Err(ManifestError(format!(
                "user-secrets: at most {MAX_USER_SECRETS} names and folders"
            )));
        }
        for entry in &self.0 {
            let name = entry.strip_suffix("/*").unwrap_or(entry);
            SecretName::parse(name).map_err(|e| {
                ManifestError(format!(
                    "user-secrets: {e} (declare names, or folders as FOLDER/*)"
                ))
            })?;
        }
        Ok(())
    }
}

/// The guest's environment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Env {
    /// `PREFIX = "secret:NAME"`: a variable `PREFIX` + field name per field of a multi-field
    /// secret (as EDITO injects a folder's keys). Variables named in the table itself win.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub expand: BTreeMap<String, String>,
    /// `NAME = value`.
    #[serde(flatten)]
    pub vars: BTreeMap<String, String>,
}

impl Env {
    fn is_empty(&self) -> bool {
        self.expand.is_empty() && self.vars.is_empty()
    }
}

/// Whether `key` may name an environment variable (or begin one, as an expansion's prefix).
fn env_name_ok(key: &str) -> bool {
    key.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && key.len() <= 128
}

/// Outbound HTTP permissions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outbound {
    /// Hosts a guest may call: `host`, `*.suffix`, optionally `:port`.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Credentials the host attaches to requests (docs/credentials.md).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub credentials: Vec<Credential>,
}

impl Outbound {
    fn is_empty(&self) -> bool {
        self.hosts.is_empty() && self.credentials.is_empty()
    }
}

/// The most credentials one package declares.
pub const MAX_CREDENTIALS: usize = 16;

/// A credential the host attaches to outgoing requests: the guest names it (through
/// `edgeward:platform/credentials.attach`, or an env binding `credential:NAME` that gives it a
/// placeholder), the host puts the value in `header`, formatted, on requests to `hosts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credential {
    /// The secret, resolved like `get()`: package, project, platform.
    pub secret: String,
    /// Where it may go: https hosts, each within `[outbound] hosts`.
    pub hosts: Vec<String>,
    /// The header it goes in.
    #[serde(default = "default_header")]
    pub header: String,
    /// The header's value: `{}` is the secret (or its `field`), `{name}` another field of a
    /// multi-field secret; a value starting `Basic ` has the rest base64-encoded.
    #[serde(default = "default_format")]
    pub format: String,
    /// For a multi-field secret, the field `{}` stands for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

fn default_header() -> String {
    "authorization".into()
}

fn default_format() -> String {
    "Bearer {}".into()
}

/// Per-package limits.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Limits {
    /// Wall time per request, milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Linear memory per instance, MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mb: Option<u64>,
    /// Largest request body, bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_request_bytes: Option<u64>,
    /// Largest response body, bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_response_bytes: Option<u64>,
    /// Instances of this package at once; more requests wait briefly, then get 503.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<u32>,
    /// Outbound HTTP requests per execution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_outbound_requests: Option<u32>,
}

/// What is wrong with a manifest, in words a person can act on.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct ManifestError(pub String);

/// Whether a secrets allowlist admits `name`: no list admits every name.
pub fn allows(allowlist: Option<&[String]>, name: &str) -> bool {
    allowlist.is_none_or(|names| names.iter().any(|n| n == name))
}

/// A value bound into the guest's environment.
#[derive(Debug, Clone, PartialEq)]
pub enum EnvBinding {
    /// A literal value.
    Literal(String),
    /// The value of a secret, resolved like `get(name)`.
    Secret(SecretName),
    /// One field of a multi-field secret (`secret:NAME#FIELD`).
    SecretField(SecretName, String),
    /// Every field of a multi-field secret, each as the binding's key followed by the field's
    /// name (`[env.expand]`).
    Expand(SecretName),
    /// A per-execution placeholder for a declared credential, which the host replaces with
    /// the value only where the declaration allows it.
    Credential(SecretName),
}

impl Manifest {
    /// Parses TOML or JSON (chosen by the first non-blank character) and validates it.
    pub fn parse(text: &[u8]) -> Result<Manifest, ManifestError> {
        if text.len() > MAX_MANIFEST_BYTES {
            return Err(ManifestError(format!(
                "the manifest is {} bytes; the limit is {MAX_MANIFEST_BYTES}",
                text.len()
            )));
        }
        let text = std::str::from_utf8(text)
            .map_err(|_| ManifestError("the manifest is not valid UTF-8".into()))?;
        let manifest: Manifest = if text.trim_start().starts_with('{') {
            serde_json::from_str(text)
                .map_err(|e| ManifestError(format!("the manifest is not valid JSON: {e}")))?
        } else {
            toml::from_str(text)
                .map_err(|e| ManifestError(format!("the manifest is not valid TOML: {e}")))?
        };
        manifest.validate()?;
        Ok(manifest)
    }

    /// What a function may write: user scope only its declared user secrets, and acting as the
    /// package only within its own package scope.
    fn validate_writes(&self) -> Result<(), ManifestError> {
        if self.write_secrets.contains(&Scope::User) && self.user_secrets.is_empty() {
            return Err(ManifestError(
                "write-secrets names user, but user-secrets declares no names: a function \
                 writes only the user secrets it declares"
                    .into(),
            ));
        }
        if self.write_secrets_as == WriteAs::Package
            && !self.write_secrets.contains(&Scope::Package)
        {
            return Err(ManifestError(
                "write-secrets-as = \"package\" needs write-secrets = [\"package\"]: a \
                 package acting as itself writes its own package scope and nothing wider"
                    .into(),
            ));
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), ManifestError> {
        for name in self.secrets.iter().flatten() {
            SecretName::parse(name).map_err(|e| ManifestError(format!("secrets: {e}")))?;
        }
        self.user_secrets.check()?;
        self.validate_writes()?;
        for (key, binding) in self.env_bindings()? {
            // A binding the allowlist refuses could never bind: refused here, at deploy,
            // rather than failing every request.
            if let EnvBinding::Secret(name)
            | EnvBinding::SecretField(name, _)
            | EnvBinding::Expand(name) = &binding
                && !self.allows_secret(name.as_str())
            {
                return Err(ManifestError(format!(
                    "env.{key} binds secret {name}, which the `secrets` allowlist does not name"
                )));
            }
            if let EnvBinding::Credential(name) = &binding
                && !self
                    .outbound
                    .credentials
                    .iter()
                    .any(|c| c.secret == name.as_str())
            {
                return Err(ManifestError(format!(
                    "env.{key} binds credential {name}, which no [[outbound.credentials]] \
                     declares"
                )));
            }
            let ok = match &binding {
                // A prefix may be empty: the fields' own names then.
                EnvBinding::Expand(_) => key.is_empty() || env_name_ok(&key),
                _ => env_name_ok(&key),
            };
            if !ok {
                return Err(ManifestError(format!(
                    "env: invalid variable name {key:?}: use A-Z, a-z, 0-9 and '_', not \
                     starting with a digit"
                )));
            }
        }
        let l = &self.limits;
        for (name, value) in [
            ("timeout-ms", l.timeout_ms),
            ("memory-mb", l.memory_mb),
            ("max-request-bytes", l.max_request_bytes),
            ("max-response-bytes", l.max_response_bytes),
            ("max-concurrency", l.max_concurrency.map(u64::from)),
        ] {
            if value == Some(0) {
                return Err(ManifestError(format!("limits.{name} must be above 0")));
            }
        }
        let mut allowed = Vec::with_capacity(self.outbound.hosts.len());
        for host in &self.outbound.hosts {
            allowed.push(
                HostPattern::parse(host)
                    .map_err(|e| ManifestError(format!("outbound.hosts: {e}")))?,
            );
        }
        if self.outbound.credentials.len() > MAX_CREDENTIALS {
            return Err(ManifestError(format!(
                "outbound.credentials: at most {MAX_CREDENTIALS} credentials per package"
            )));
        }
        for (i, c) in self.outbound.credentials.iter().enumerate() {
            credential::Spec::parse(c, &allowed)
                .map_err(|e| ManifestError(format!("outbound.credentials[{i}]: {e}")))?;
            if !self.allows_secret(&c.secret) {
                return Err(ManifestError(format!(
                    "outbound.credentials[{i}]: secret {}, which the `secrets` allowlist does \
                     not name",
                    c.secret
                )));
            }
            if self.outbound.credentials[..i]
                .iter()
                .any(|other| other.secret == c.secret)
            {
                return Err(ManifestError(format!(
                    "outbound.credentials[{i}]: secret {} is declared twice",
                    c.secret
                )));
            }
        }
        Ok(())
    }

    /// The env bindings, with `secret:` references parsed: expansions first (as
    /// `expand.PREFIX`'s prefix), then the variables, which win over an expansion's.
    pub fn env_bindings(&self) -> Result<Vec<(String, EnvBinding)>, ManifestError> {
        let mut out = Vec::with_capacity(self.env.expand.len() + self.env.vars.len());
        for (prefix, v) in &self.env.expand {
            let name = v
                .strip_prefix("secret:")
                .filter(|n| !n.contains('#'))
                .ok_or_else(|| {
                    ManifestError(format!(
                        "env.expand.{prefix}: bind a multi-field secret as \"secret:NAME\""
                    ))
                })?;
            let name = SecretName::parse(name)
                .map_err(|e| ManifestError(format!("env.expand.{prefix}: {e}")))?;
            out.push((prefix.clone(), EnvBinding::Expand(name)));
        }
        for (k, v) in &self.env.vars {
            let name = |name: &str| {
                SecretName::parse(name).map_err(|e| ManifestError(format!("env.{k}: {e}")))
            };
            let binding = if let Some(n) = v.strip_prefix("secret:") {
                match n.split_once('#') {
                    Some((n, field)) => {
                        if !field_name_ok(field) {
                            return Err(ManifestError(format!(
                                "env.{k}: {field:?} is not a field name (A-Z, a-z, 0-9, '_', \
                                 '.', '-', at most 128)"
                            )));
                        }
                        EnvBinding::SecretField(name(n)?, field.to_string())
                    }
                    None => EnvBinding::Secret(name(n)?),
                }
            } else if let Some(n) = v.strip_prefix("credential:") {
                EnvBinding::Credential(name(n)?)
            } else {
                EnvBinding::Literal(v.clone())
            };
            out.push((k.clone(), binding));
        }
        Ok(out)
    }

    /// Whether the allowlist (if any) admits `name`.
    pub fn allows_secret(&self, name: &str) -> bool {
        allows(self.secrets.as_deref(), name)
    }

    /// The manifest as normalised JSON, for storage.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }

    /// The sha256 (hex) of the normalised manifest: what a user's grant binds beside the
    /// component's sha256, so a changed manifest (new hosts, names or write scopes) needs a
    /// new grant even for the same code.
    pub fn digest(&self) -> String {
        use sha2::{Digest, Sha256};
        hex::encode(Sha256::digest(self.to_json().as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_and_json_agree() {
        let toml = br#"
secrets = ["DB_PASS"]
[env]
DB_PASSWORD = "secret:DB_PASS"
MODE = "prod"
[limits]
timeout-ms = 500
"#;
        let json = br#"{"secrets":["DB_PASS"],"env":{"DB_PASSWORD":"secret:DB_PASS","MODE":"prod"},
                      "limits":{"timeout-ms":500}}"#;
        let a = Manifest::parse(toml).unwrap();
        assert_eq!(a, Manifest::parse(json).unwrap());
        assert!(a.allows_secret("DB_PASS") && !a.allows_secret("OTHER"));
        assert!(Manifest::default().allows_secret("ANY"));
        assert_eq!(Manifest::parse(a.to_json().as_bytes()).unwrap(), a);
    }

    #[test]
    fn fields_and_expansions_parse_in_toml_and_json() {
        let toml = b"[env]\nA = \"secret:db#HOST\"\n[env.expand]\nDB_ = \"secret:db\"\n";
        let json = br#"{"env":{"A":"secret:db#HOST","expand":{"DB_":"secret:db"}}}"#;
        let m = Manifest::parse(toml).unwrap();
        assert_eq!(m, Manifest::parse(json).unwrap());
        assert_eq!(Manifest::parse(m.to_json().as_bytes()).unwrap(), m);
        let bindings = m.env_bindings().unwrap();
        assert!(
            matches!(&bindings[0], (k, EnvBinding::Expand(n)) if k == "DB_" && n.as_str() == "db")
        );
        assert!(
            matches!(&bindings[1], (k, EnvBinding::SecretField(n, f)) if k == "A" && n.as_str() == "db" && f == "HOST")
        );
    }

    #[test]
    fn user_secrets_declare_names_and_folders() {
        let m = Manifest::parse(b"user-secrets = [\"API_KEY\", \"team/*\"]").unwrap();
        for (name, allowed) in [
            ("API_KEY", true),
            ("team/db", true),
            ("team/a/b", true),
            ("team", false),
            ("teamx/db", false),
            ("API_KEY2", false),
            ("other", false),
        ] {
            assert_eq!(m.user_secrets.allows(name), allowed, "{name}");
        }
        assert!(Manifest::default().user_secrets.is_empty());
        assert!(!Manifest::default().user_secrets.allows("API_KEY"));
        assert_eq!(Manifest::parse(m.to_json().as_bytes()).unwrap(), m);
        // A change anywhere in the manifest changes what a grant binds.
        let other = Manifest::parse(b"user-secrets = [\"API_KEY\"]").unwrap();
        assert_ne!(m.digest(), other.digest());
        assert_eq!(
            m.digest(),
            Manifest::parse(m.to_json().as_bytes()).unwrap().digest()
        );
    }

    #[test]
    fn bad_manifests_say_what_is_wrong() {
        let cases: &[(&[u8], &str)] = &[
            (b"secrets = [\"../x\"]", "invalid secret name"),
            (b"[env]\n\"1X\" = \"v\"", "invalid variable name"),
            (b"[env]\nX = \"secret:\"", "env.X"),
            (b"unknown = 1", "unknown field"),
            (b"{not json", "not valid JSON"),
            (b"[limits]\ntimeout-ms = 0", "above 0"),
            (
                b"secrets = [\"A\"]\n[env]\nX = \"secret:B\"",
                "env.X binds secret B, which the `secrets` allowlist does not name",
            ),
            (&[0xff, 0xfe], "UTF-8"),
            (b"user-secrets = [\"*\"]", "user-secrets"),
            (b"user-secrets = [\"../x\"]", "user-secrets"),
            (b"user-secrets = [\"a/**\"]", "user-secrets"),
            (
                b"write-secrets = [\"user\"]",
                "user-secrets declares no names",
            ),
        ];
        for (text, want) in cases {
            let err = Manifest::parse(text).unwrap_err();
            assert!(err.0.contains(want), "{err} should mention {want}");
        }
    }
}
