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
///
/// Shared, not copied: a cached secret hands its name to every lookup that finds it, and a
/// clone is a reference count, not an allocation.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SecretName(std::sync::Arc<str>);

impl serde::Serialize for SecretName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// Quoted, as a string's: messages say `no user "nobody"`, never `SecretName("nobody")`.
impl fmt::Debug for SecretName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// The longest secret name, folders included.
pub const SECRET_NAME_MAX: usize = 255;

/// Whether `s` follows the secret-name rule, in one pass over its bytes (a guest's every lookup
/// checks its name; a non-ASCII byte is never allowed, so bytes are enough).
fn secret_name_ok(s: &str) -> bool {
    if s.is_empty() || s.len() > SECRET_NAME_MAX {
        return false;
    }
    // The current segment's length, and the byte before this one ('/' at a segment's start).
    let (mut len, mut prev) = (0usize, b'/');
    for &b in s.as_bytes() {
        let ok = match b {
            b'/' => len > 0,
            _ if len == 0 => b.is_ascii_alphanumeric(),
            b'.' => prev != b'.',
            b'_' | b'-' => true,
            _ => b.is_ascii_alphanumeric(),
        };
        if !ok {
            return false;
        }
        len = if b == b'/' { 0 } else { len + 1 };
        if len > 128 {
            return false;
        }
        prev = b;
    }
    len > 0
}

impl SecretName {
    /// Checks `s` against the rule.
    pub fn parse(s: &str) -> Result<SecretName, BadName> {
        SecretName::check(s)?;
        Ok(SecretName(s.into()))
    }

    /// Checks `s` against the rule without keeping it: a guest's cached lookup allocates no
    /// name.
    pub fn check(s: &str) -> Result<(), BadName> {
        if !secret_name_ok(s) {
            let shown = shorten(s);
            return Err(BadName(format!(
                "invalid secret name {shown:?}: use 1 to 128 characters of A-Z, a-z, 0-9, '_', \
                 '.' and '-', starting with a letter or digit, with no '..'; folders are \
                 '/'-separated segments under the same rule (team/db), 255 bytes in all"
            )));
        }
        Ok(())
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

    /// The one-pass check says what the rule says, written the obvious way.
    #[test]
    fn the_secret_name_check_is_the_rule() {
        fn by_the_rule(s: &str) -> bool {
            let segment_ok = |seg: &str| {
                seg.len() <= 128
                    && seg
                        .chars()
                        .next()
                        .is_some_and(|c| c.is_ascii_alphanumeric())
                    && seg
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
            };
            !s.is_empty()
                && s.len() <= SECRET_NAME_MAX
                && !s.contains("..")
                && s.split('/').all(segment_ok)
        }
        // Every string of up to 4 characters from an alphabet of the interesting ones, then
        // random longer ones (a fixed seed: a failure is repeatable).
        let alphabet = ['a', 'Z', '0', '_', '.', '-', '/', ' ', 'é'];
        let mut all = vec![String::new()];
        for _ in 0..4 {
            let longer: Vec<String> = all
                .iter()
                .flat_map(|s| alphabet.iter().map(move |c| format!("{s}{c}")))
                .collect();
            all.extend(longer);
        }
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 300) as usize;
            let s: String = (0..len)
                .map(|i| {
                    let r = seed.rotate_left(i as u32 % 64) as usize + i;
                    if r.is_multiple_of(61) {
                        '/'
                    } else if r.is_multiple_of(97) {
                        '.'
                    } else {
                        alphabet[r % 3]
                    }
                })
                .collect();
            all.push(s);
        }
        for s in &all {
            assert_eq!(secret_name_ok(s), by_the_rule(s), "{s:?}");
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
