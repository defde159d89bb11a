//! Names of projects, packages and secrets, validated once at the boundary.
//!
//! Every name that reaches a file path, a SQL key or a Vault path has passed through here, so
//! no name can carry a path separator, `..` or anything else that widens its reach.

use std::fmt;

/// A name that breaks its rule. The message says the rule, so a person can fix the name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadName(pub String);

/// The name of a project or package: `[a-z0-9][a-z0-9-]{0,62}`, like a DNS label, so that it is
/// safe in URLs, file names and Vault paths alike.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct Name(String);

/// Quoted, as a string's: messages say `no user "nobody"`, never `Name("nobody")`.
impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl Name {
    /// Checks `s` against the rule; `what` ("project", "package") names it in the error.
    pub fn parse(what: &str, s: &str) -> Result<Name, BadName> {
        let ok_first = s
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        let ok_rest = s
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if s.is_empty() || s.len() > 63 || !ok_first || !ok_rest {
            let shown = shorten(s);
            return Err(BadName(format!(
                "invalid {what} name {shown:?}: use 1 to 63 characters of a-z, 0-9 and '-', \
                 starting with a letter or digit"
            )));
        }
        Ok(Name(s.to_string()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The name of a secret: one or more `/`-separated segments, each
/// `[A-Za-z0-9][A-Za-z0-9_.-]{0,127}`, at most 255 bytes in all, without `..` (a leading digit,
/// as EdgeSecrets allows `1abc`; never a leading `_`, `.` or `-`, so never an empty, `.` or
/// `..` segment). `team/db` is the secret `db` in the folder `team/`, as Vault's nested paths.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct SecretName(String);

/// Quoted, as a string's: messages say `no user "nobody"`, never `SecretName("nobody")`.
impl fmt::Debug for SecretName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// The longest secret name, folders included.
pub const SECRET_NAME_MAX: usize = 255;

fn segment_ok(seg: &str) -> bool {
    seg.len() <= 128
        && seg
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && seg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

impl SecretName {
    /// Checks `s` against the rule.
    pub fn parse(s: &str) -> Result<SecretName, BadName> {
        if s.is_empty()
            || s.len() > SECRET_NAME_MAX
            || s.contains("..")
            || !s.split('/').all(segment_ok)
        {
            let shown = shorten(s);
            return Err(BadName(format!(
                "invalid secret name {shown:?}: use 1 to 128 characters of A-Z, a-z, 0-9, '_', \
                 '.' and '-', starting with a letter or digit, with no '..'; folders are \
                 '/'-separated segments under the same rule (team/db), 255 bytes in all"
            )));
        }
        Ok(SecretName(s.to_string()))
    }

    /// Checks `s` against RFC 1123 (the server's `--secret-names rfc1123` mode, for writes):
    /// each `/`-separated segment a DNS subdomain of lowercase letters, digits, `-` and `.`,
    /// every dot-separated label starting and ending with a letter or digit.
    pub fn parse_rfc1123(s: &str) -> Result<SecretName, BadName> {
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        let name = SecretName::parse(s)?;
        if !s.split('/').all(|seg| seg.split('.').all(label_ok)) {
            return Err(BadName(format!(
                "invalid secret name {:?}: this server takes RFC 1123 names (--secret-names \
                 rfc1123): lowercase a-z, 0-9, '-' and '.', each dot-separated part starting \
                 and ending with a letter or digit, folders '/'-separated",
                shorten(s)
            )));
        }
        Ok(name)
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the name is in a folder (holds a `/`).
    pub fn in_folder(&self) -> bool {
        self.0.contains('/')
    }
}

impl fmt::Display for SecretName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which rule new secret names follow (`serve --secret-names`). Reads take any name of the
/// default rule either way, so secrets written before the switch stay reachable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum NameRule {
    /// `[A-Za-z0-9][A-Za-z0-9_.-]{0,127}` per folder segment.
    #[default]
    Default,
    /// RFC 1123 DNS subdomains per folder segment: lowercase, digits, `-` and `.`.
    Rfc1123,
}

impl NameRule {
    /// Checks the name of a secret about to be written.
    pub fn parse_new(self, s: &str) -> Result<SecretName, BadName> {
        match self {
            NameRule::Default => SecretName::parse(s),
            NameRule::Rfc1123 => SecretName::parse_rfc1123(s),
        }
    }
}

/// Keeps error messages short when someone sends a 10 KiB name.
fn shorten(s: &str) -> String {
    if s.chars().count() <= 40 {
        return s.to_string();
    }
    let head: String = s.chars().take(40).collect();
    format!("{head}… ({} bytes)", s.len())
}

/// Where a secret lives.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    utoipa::ToSchema,
    strum::IntoStaticStr,
    strum::EnumString,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum Scope {
    /// One package of one project.
    Package,
    /// One project, shared by its packages.
    Project,
    /// The whole installation.
    Platform,
    /// One user; only by explicit scope, only for executions triggered with their token.
    User,
}

impl Scope {
    /// The scope's name as the API, CLI and storage spell it.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The scope its name spells, if any.
    pub fn parse(s: &str) -> Option<Scope> {
        s.parse().ok()
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether `f` may name a field where a manifest refers to one (`secret:NAME#FIELD`, a
/// credential's `field`): A-Z, a-z, 0-9, `_`, `.`, `-`, 1 to 128 characters.
pub fn field_name_ok(f: &str) -> bool {
    !f.is_empty()
        && f.len() <= 128
        && f.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_and_package_names() {
        for ok in ["acme", "a", "hello-world", "0day", &"a".repeat(63)] {
            assert!(Name::parse("project", ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-x",
            "Acme",
            "a_b",
            "a/b",
            "..",
            "a.b",
            " a",
            &"a".repeat(64),
            "é",
        ] {
            let err = Name::parse("project", bad).unwrap_err();
            assert!(err.0.contains("invalid project name"), "{bad}: {err}");
        }
    }

    #[test]
    fn secret_names() {
        for ok in [
            "DB_PASS",
            "a",
            "api.key-2",
            "1abc",
            "7",
            &format!("A{}", "b".repeat(127)),
            "team/db",
            "a/b/c",
            "1/2",
            &format!("{0}/{0}", "c".repeat(127)),
        ] {
            assert!(SecretName::parse(ok).is_ok(), "{ok}");
        }
        let long = "A".repeat(10 * 1024);
        for bad in [
            "",
            "_x",
            ".x",
            "-x",
            "/a",
            "a/",
            "a//b",
            "a/./b",
            "a/_b",
            "a/-b",
            "a\\b",
            &format!("{0}/{0}/x", "c".repeat(127)),
            &format!("a/{}", "b".repeat(129)),
            "../platform/X",
            "a..b",
            "a b",
            "naïve",
            &long,
        ] {
            let err = SecretName::parse(bad).unwrap_err();
            assert!(err.0.contains("invalid secret name"), "{bad}: {err}");
            assert!(err.0.len() < 300, "error message stays short");
        }
    }

    #[test]
    fn rfc1123_secret_names() {
        for ok in ["db", "db-pass", "a.b", "team/db", "1abc", "x9"] {
            assert!(SecretName::parse_rfc1123(ok).is_ok(), "{ok}");
        }
        for bad in ["DB_PASS", "db_pass", "a-", "a.-b", "Team/db", "a.", "x/y-"] {
            let err = SecretName::parse_rfc1123(bad).unwrap_err();
            assert!(
                err.0.contains("RFC 1123") || err.0.contains("invalid secret name"),
                "{bad}"
            );
        }
    }
}
