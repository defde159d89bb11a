//! Who may do what with a scope's secrets: the one table that both the API's routes
//! (`api::secret_routes`) and a function's writes (`secrets::writes`) read, so a function
//! never writes where its user could not write through the API.

use crate::names::Scope;
use crate::store::Role;

/// What a caller needs for one kind of operation on a scope's secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Right {
    /// A platform admin.
    PlatformAdmin,
    /// At least this role in the secret's project (platform admins always pass).
    Role(Role),
    /// A project secret's value: the project's admins, or every member where the project lets
    /// members read its values (`members_read_secrets`).
    ProjectValue,
    /// The user the scope belongs to, and nobody else (not even a platform admin).
    Owner,
}

/// The rights of one scope, by operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rights {
    /// Listing names and metadata (never values).
    pub list: Right,
    /// Creating, importing, setting, updating, deleting and rolling back.
    pub write: Right,
    /// Reading a value.
    pub read: Right,
    /// Wrapping a value in a single-use token.
    pub wrap: Right,
}

/// What a package acting as itself (`write-secrets-as = "package"`, no user's rights behind
/// it) may write: its own package scope, nothing wider.
pub const PACKAGE_WRITES: &[Scope] = &[Scope::Package];

/// The rights of `scope`.
pub const fn rights(scope: Scope) -> Rights {
    use Right::*;
    match scope {
        Scope::Platform => Rights {
            list: PlatformAdmin,
            write: PlatformAdmin,
            read: PlatformAdmin,
            wrap: PlatformAdmin,
        },
        // Names for members, writes for project admins, values for project admins (and every
        // member where the project says so).
        Scope::Project => Rights {
            list: Role(crate::store::Role::Viewer),
            write: Role(crate::store::Role::Admin),
            read: ProjectValue,
            wrap: ProjectValue,
        },
        // Names for members, writes for developers, values for admins.
        Scope::Package => Rights {
            list: Role(crate::store::Role::Viewer),
            write: Role(crate::store::Role::Developer),
            read: Role(crate::store::Role::Admin),
            wrap: Role(crate::store::Role::Admin),
        },
        // That user alone, whoever else asks.
        Scope::User => Rights {
            list: Owner,
            write: Owner,
            read: Owner,
            wrap: Owner,
        },
    }
}
