//! Secrets the host resolves for this function.
//!
//! [`get`] looks a name up in the package's own scope, then the project's, then the platform's,
//! and says where it found it. [`get_from`] reads one scope; it is the only way to reach `user`
//! scope, and only when the request carried that user's token. The value stays behind a handle
//! until [`Secret::reveal`], and [`SecretValue`] never prints it.

use crate::bindings::edgeward::platform::secrets as wit;
use std::fmt;

/// Where a secret lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// This package's own secrets.
    Package,
    /// Shared by every package of this project.
    Project,
    /// Shared by every package of the installation.
    Platform,
    /// The secrets of the user whose token triggered this request.
    User,
}

impl Scope {
    /// The scope's name as the API and CLI spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Package => "package",
            Scope::Project => "project",
            Scope::Platform => "platform",
            Scope::User => "user",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<wit::Scope> for Scope {
    fn from(s: wit::Scope) -> Self {
        match s {
            wit::Scope::Package => Scope::Package,
            wit::Scope::Project => Scope::Project,
            wit::Scope::Platform => Scope::Platform,
            wit::Scope::User => Scope::User,
        }
    }
}

impl From<Scope> for wit::Scope {
    fn from(s: Scope) -> Self {
        match s {
            Scope::Package => wit::Scope::Package,
            Scope::Project => wit::Scope::Project,
            Scope::Platform => wit::Scope::Platform,
            Scope::User => wit::Scope::User,
        }
    }
}

/// Why a secret could not be read. Each carries the host's explanation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The name breaks the naming rule (`bad_entry`).
    InvalidName(String),
    /// This function may not read that name or scope (`denied`).
    Denied(String),
    /// The secret backend could not be reached; retrying later may succeed (`unavailable`).
    Unavailable(String),
}

impl Error {
    /// The stable error code shared with the API and CLI.
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidName(_) => "bad_entry",
            Error::Denied(_) => "denied",
            Error::Unavailable(_) => "unavailable",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (Error::InvalidName(m) | Error::Denied(m) | Error::Unavailable(m)) = self;
        write!(f, "{}: {m}", self.code())
    }
}

impl std::error::Error for Error {}

impl From<wit::Error> for Error {
    fn from(e: wit::Error) -> Self {
        match e {
            wit::Error::InvalidName(m) => Error::InvalidName(m),
            wit::Error::Denied(m) => Error::Denied(m),
            wit::Error::Unavailable(m) => Error::Unavailable(m),
        }
    }
}

/// Why a write was refused; nothing was written. Each carries the host's explanation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteError {
    /// The name breaks the naming rule (`bad_entry`).
    InvalidName(String),
    /// The value is not one the API would take (`bad_entry`).
    InvalidValue(String),
    /// The value is over 64 KiB (`too_large`).
    TooLarge(String),
    /// The manifest grants no writes to the scope, no user's token came with the request, or
    /// that user may not write the scope (`denied`).
    Denied(String),
    /// The secret backend could not be reached; retrying later may succeed (`unavailable`).
    Unavailable(String),
}

impl WriteError {
    /// The stable error code shared with the API and CLI.
    pub fn code(&self) -> &'static str {
        match self {
            WriteError::InvalidName(_) | WriteError::InvalidValue(_) => "bad_entry",
            WriteError::TooLarge(_) => "too_large",
            WriteError::Denied(_) => "denied",
            WriteError::Unavailable(_) => "unavailable",
        }
    }
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (WriteError::InvalidName(m)
        | WriteError::InvalidValue(m)
        | WriteError::TooLarge(m)
        | WriteError::Denied(m)
        | WriteError::Unavailable(m)) = self;
        write!(f, "{}: {m}", self.code())
    }
}

impl std::error::Error for WriteError {}

impl From<wit::WriteError> for WriteError {
    fn from(e: wit::WriteError) -> Self {
        match e {
            wit::WriteError::InvalidName(m) => WriteError::InvalidName(m),
            wit::WriteError::InvalidValue(m) => WriteError::InvalidValue(m),
            wit::WriteError::TooLarge(m) => WriteError::TooLarge(m),
            wit::WriteError::Denied(m) => WriteError::Denied(m),
            wit::WriteError::Unavailable(m) => WriteError::Unavailable(m),
        }
    }
}

/// A resolved secret. Its value is read with [`Secret::reveal`]; its name, scope and version
/// are asked of the host the first time they are wanted (a lookup that only needs the value
/// costs no more calls than that).
pub struct Secret {
    handle: wit::Secret,
    name: std::cell::OnceCell<String>,
}

impl Secret {
    fn from_handle(handle: wit::Secret) -> Self {
        Secret {
            handle,
            name: std::cell::OnceCell::new(),
        }
    }

    /// The name asked for.
    pub fn name(&self) -> &str {
        self.name.get_or_init(|| self.handle.name())
    }

    /// The scope it was found in.
    pub fn scope(&self) -> Scope {
        self.handle.scope().into()
    }

    /// The version of its value.
    pub fn version(&self) -> u64 {
        self.handle.version()
    }

    /// One field of a multi-field secret, copied into this instance's memory without parsing
    /// its JSON: a string as it is, a number or boolean as written, an object or array as JSON.
    /// `None` for a plain value, a missing field or `null`.
    pub fn field(&self, name: &str) -> Option<SecretValue> {
        self.handle.field(name).map(|value| SecretValue {
            value,
            is_object: false,
        })
    }

    /// Copies the value into this instance's memory.
    pub fn reveal(&self) -> SecretValue {
        SecretValue::from_wit(self.handle.reveal())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secret")
            .field("name", &self.name())
            .field("scope", &self.scope())
            .field("version", &self.version())
            .finish_non_exhaustive()
    }
}

/// A secret's value. `Debug` and `Display` print `***`; the memory is overwritten on drop.
pub struct SecretValue {
    value: String,
    is_object: bool,
}

impl SecretValue {
    fn from_wit(value: wit::SecretValue) -> SecretValue {
        match value {
            wit::SecretValue::Text(value) => SecretValue {
                value,
                is_object: false,
            },
            wit::SecretValue::Object(value) => SecretValue {
                value,
                is_object: true,
            },
        }
    }

    /// The value: the string itself, or for a multi-field secret its JSON object text.
    pub fn expose(&self) -> &str {
        &self.value
    }

    /// Whether this is a multi-field secret (a JSON object).
    pub fn is_object(&self) -> bool {
        self.is_object
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue(***)")
    }
}

impl fmt::Display for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl Drop for SecretValue {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.value);
    }
}

/// Looks `name` up in package, then project, then platform scope.
pub fn get(name: &str) -> Result<Option<Secret>, Error> {
    Ok(wit::get(name)?.map(Secret::from_handle))
}

/// The value of `name`, looked up as [`get`] looks it up, in one call to the host: for a
/// function that needs only the value (not its scope or version). Recorded and masked like a
/// [`get`] followed by [`Secret::reveal`].
///
/// ```ignore
/// let key = secrets::value("API_KEY")?.ok_or("API_KEY is not set")?;
/// ```
pub fn value(name: &str) -> Result<Option<SecretValue>, Error> {
    Ok(wit::get_value(name)?.map(SecretValue::from_wit))
}

/// Looks `name` up in `scope` alone.
pub fn get_from(scope: Scope, name: &str) -> Result<Option<Secret>, Error> {
    Ok(wit::get_from(scope.into(), name)?.map(Secret::from_handle))
}

/// The names this function may read, with their scopes. Never values.
pub fn list() -> Result<Vec<(Scope, String)>, Error> {
    Ok(wit::list()?
        .into_iter()
        .map(|(scope, name)| (scope.into(), name))
        .collect())
}

/// Writes `value` as `name` in `scope` (a new version) with the rights of the user whose token
/// triggered this request, where the manifest grants the scope (`write-secrets`); the new
/// version. Audited as that user.
///
/// ```ignore
/// let version = secrets::set(Scope::Project, "team/token", &fresh_token)?;
/// ```
pub fn set(scope: Scope, name: &str, value: &str) -> Result<u64, WriteError> {
    Ok(wit::set(
        scope.into(),
        name,
        &wit::SecretValue::Text(value.to_string()),
    )?)
}

/// Writes a multi-field secret: `fields` is a JSON object's text (`{"user": …, "password": …}`).
pub fn set_fields(scope: Scope, name: &str, fields: &str) -> Result<u64, WriteError> {
    Ok(wit::set(
        scope.into(),
        name,
        &wit::SecretValue::Object(fields.to_string()),
    )?)
}

/// Deletes `name` (every version) from `scope`, under the same rules as [`set`]; `false` when
/// there was nothing to delete.
pub fn delete(scope: Scope, name: &str) -> Result<bool, WriteError> {
    Ok(wit::delete(scope.into(), name)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_never_print() {
        let v = SecretValue {
            value: "hunter2-marker".into(),
            is_object: false,
        };
        assert_eq!(format!("{v}"), "***");
        assert!(!format!("{v:?}").contains("hunter2"));
        assert!(!format!("{v:#?}").contains("hunter2"));
        assert_eq!(v.expose(), "hunter2-marker");
    }

    #[test]
    fn errors_carry_the_stable_codes() {
        assert_eq!(Error::InvalidName("x".into()).code(), "bad_entry");
        assert_eq!(Error::Denied("x".into()).code(), "denied");
        assert_eq!(Error::Unavailable("x".into()).code(), "unavailable");
        assert_eq!(Error::Denied("no".into()).to_string(), "denied: no");
        assert_eq!(WriteError::TooLarge("x".into()).code(), "too_large");
        assert_eq!(WriteError::InvalidValue("x".into()).code(), "bad_entry");
        assert_eq!(WriteError::Denied("no".into()).to_string(), "denied: no");
    }
}
