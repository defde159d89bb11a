//! The stable error codes: one enum for the API's error bodies, the data plane's error
//! responses, the CLI's messages and exit statuses, and the guest interface's errors.

use serde::{Deserialize, Serialize};

/// A stable error code, as it appears in `{"error": {"code": …}}` and in the CLI's
/// `error: CODE: message` lines. New codes may be added; existing ones keep their meaning.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum ErrorCode {
    /// An invalid name, value, field or query parameter.
    BadEntry,
    /// A request the data plane could not pass to the function.
    BadRequest,
    /// The package's manifest is invalid.
    BadManifest,
    /// An upload with no bytes.
    EmptyBody,
    /// An upload that is not WebAssembly.
    NotWasm,
    /// A core module where a component is expected.
    NotAComponent,
    /// A component that does not validate or compile.
    InvalidComponent,
    /// A component without `wasi:http/incoming-handler`.
    MissingExport,
    /// A component importing what Edgeward does not provide.
    UnsupportedImport,
    /// A body over its limit.
    TooLarge,
    /// No token, or a token that is unknown, expired or revoked.
    Unauthenticated,
    /// A caller (or guest) without the right.
    Denied,
    /// A user's request to a package version they have not granted their user scope to.
    ConsentRequired,
    /// No such thing (or the caller may not know it exists).
    NotFound,
    /// The name is taken.
    AlreadyExists,
    /// The request conflicts with the current state.
    Conflict,
    /// Still in use (a secret a serving package version binds, a project with packages, a
    /// user who keeps user secrets); deleting it needs `force`.
    InUse,
    /// A backend (metadata store, secret backend) cannot be reached; retry.
    Unavailable,
    /// Every instance slot is busy; retry shortly.
    Capacity,
    /// The function ran past its time limit.
    TimedOut,
    /// The function ran out of memory.
    OutOfMemory,
    /// The function hit a limit of its package.
    Limited,
    /// The function crashed before answering.
    GuestTrapped,
    /// The function answered with an error, or not at all.
    GuestError,
    /// An env binding names a secret no scope holds.
    UnresolvedBinding,
    /// A server fault; the server log has the details under the id in the message.
    Internal,
    /// The CLI could not read or write a local file.
    Io,
    /// The user declined a confirmation.
    Cancelled,
    /// The server answered without an error body.
    HttpError,
    /// A project's build command failed (`edgeward build`, `deploy`, `dev`).
    BuildFailed,
}

/// The class of an error, which decides the CLI's exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// A bad command line or invalid input: exit 2.
    Usage,
    /// Authentication or permission: exit 3.
    Auth,
    /// Not found: exit 4.
    NotFound,
    /// A conflict with the current state: exit 5.
    Conflict,
    /// Unavailable for now; try again: exit 6.
    Unavailable,
    /// Anything else: exit 1.
    Other,
}

impl ErrorCode {
    /// Every code, for documentation and tests.
    pub const ALL: &[ErrorCode] = <ErrorCode as strum::VariantArray>::VARIANTS;

    /// The code as it is written.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The code's class.
    pub fn class(self) -> ErrorClass {
        use ErrorCode::*;
        match self {
            BadEntry | BadRequest | BadManifest | EmptyBody | NotWasm | NotAComponent
            | InvalidComponent | MissingExport | UnsupportedImport | TooLarge
            | UnresolvedBinding => ErrorClass::Usage,
            Unauthenticated | Denied | ConsentRequired => ErrorClass::Auth,
            NotFound => ErrorClass::NotFound,
            AlreadyExists | Conflict | InUse => ErrorClass::Conflict,
            Unavailable | Capacity | TimedOut => ErrorClass::Unavailable,
            OutOfMemory | Limited | GuestTrapped | GuestError | Internal | Io | Cancelled
            | HttpError | BuildFailed => ErrorClass::Other,
        }
    }

    /// The CLI's exit status for an error with this code (documented in the README).
    pub fn exit_code(self) -> u8 {
        match self.class() {
            ErrorClass::Other => 1,
            ErrorClass::Usage => 2,
            ErrorClass::Auth => 3,
            ErrorClass::NotFound => 4,
            ErrorClass::Conflict => 5,
            ErrorClass::Unavailable => 6,
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_written_as_serde_writes_them_and_parse_back() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_value(code).unwrap_or_default();
            assert_eq!(json, serde_json::json!(code.as_str()));
            assert_eq!(code.as_str().parse::<ErrorCode>(), Ok(*code));
        }
        assert!("no_such_code".parse::<ErrorCode>().is_err());
    }

    /// The README's exit table and [`ErrorCode::exit_code`] agree: every code the table names
    /// exits with its row's status, and every code outside class 1 is in the table.
    #[test]
    fn the_readme_exit_table_is_the_code() {
        let readme = include_str!("../../README.md");
        let table = readme
            .split("| exit | class | codes |")
            .nth(1)
            .expect("README has the exit table");
        let mut listed = Vec::new();
        for row in table.lines().skip(2).take_while(|l| l.starts_with('|')) {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            let exit: u8 = cells[1].parse().expect("an exit status");
            for code in cells[3].split('`').skip(1).step_by(2) {
                let parsed: ErrorCode = code.parse().unwrap_or_else(|_| panic!("{code}"));
                assert_eq!(
                    parsed.exit_code(),
                    exit,
                    "{code} is listed under exit {exit}"
                );
                listed.push(parsed);
            }
        }
        for code in ErrorCode::ALL {
            if code.exit_code() != 1 {
                assert!(
                    listed.contains(code),
                    "{code} exits {} but README does not say so",
                    code.exit_code()
                );
            }
        }
    }
}
