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

/// The name of a secret: `[A-Za-z0-9][A-Za-z0-9_.-]{0,127}` without `..` (a leading digit, as
/// EdgeSecrets allows `1abc`; never a leading `_`, `.` or `-`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct SecretName(String);

/// Quoted, as a string's: messages say `no user "nobody"`, never `SecretName("nobody")`.
impl fmt::Debug for SecretName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl SecretName {
    /// Checks `s` against the rule.
    pub fn parse(s: &str) -> Result<SecretName, BadName> {
        let ok_first = s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
        let ok_rest = s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if s.is_empty() || s.len() > 128 || !ok_first || !ok_rest || s.contains("..") {
            let shown = shorten(s);
            return Err(BadName(format!(
                "invalid secret name {shown:?}: use 1 to 128 characters of A-Z, a-z, 0-9, '_', \
                 '.' and '-', starting with a letter or digit, with no '..'"
            )));
        }
        Ok(SecretName(s.to_string()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SecretName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
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
        ] {
            assert!(SecretName::parse(ok).is_ok(), "{ok}");
        }
        let long = "A".repeat(10 * 1024);
        for bad in [
            "",
            "_x",
            ".x",
            "-x",
            "a/b",
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
}
