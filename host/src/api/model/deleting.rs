//! Deleting a project or a user: what is refused without `force`, and what went.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// `DELETE` a project or a user: the query.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ForceDelete {
    /// Delete what would be lost with it too (a project's packages, versions and secrets; a
    /// user's own secrets); without it such a delete is refused `409 in_use`, naming them.
    #[serde(default)]
    pub force: bool,
}

/// A project deleted, and what went with it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProjectDeleted {
    /// The project.
    pub project: String,
    /// Its packages, each with every version (they stopped serving).
    pub packages: Vec<String>,
    /// How many project-scope and package-scope secrets were deleted.
    pub secrets: usize,
}

/// A user deleted, and what went with them.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UserDeleted {
    /// The user.
    pub user: String,
    /// Tokens revoked: theirs, and every token made from one of theirs (whoever's).
    pub tokens_revoked: usize,
    /// Their user secrets deleted (readable by no one else: sealed under their keys).
    pub secrets: usize,
    /// The projects they were a member of (the memberships went).
    pub projects: Vec<String>,
}
