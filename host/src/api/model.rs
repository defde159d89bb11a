//! The API's request and response bodies, as types: the handlers build them, the CLI reads
//! them, and the OpenAPI document (`GET /v1/openapi.json`) describes them. Times are RFC 3339
//! strings; a field that may be absent of a value is `null`, never left out, unless it says
//! otherwise.

use crate::code::ErrorCode;
use crate::store::Role;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::{IntoParams, ToSchema};

/// Every error: `{"error": {"code", "message"}}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// An error's stable code and a message a person can act on.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// The stable code.
    pub code: ErrorCode,
    /// What went wrong and what to do.
    pub message: String,
}

/// A secret's value: a string, or an object of fields.
pub fn secret_value_schema() -> RefOr<Schema> {
    OneOfBuilder::new()
        .item(ObjectBuilder::new().schema_type(Type::String))
        .item(ObjectBuilder::new().schema_type(Type::Object))
        .description(Some("a string, or an object of fields"))
        .into()
}

/// Any JSON object.
fn any_object() -> RefOr<Schema> {
    ObjectBuilder::new().schema_type(Type::Object).into()
}

/// `GET /v1/health`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// Always `ok`: the process is up. Nothing else, since anyone may ask.
    pub status: String,
}

/// Whether a part answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PartState {
    /// It answers.
    Ok,
    /// It does not (the server log says why).
    Unavailable,
}

/// `GET /v1/ready`: 200 when every part answers, 503 naming the part otherwise.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Ready {
    /// Whether every part answers.
    pub ready: bool,
    /// The metadata store.
    pub store: PartState,
    /// The change feed.
    pub feed: PartState,
    /// The secret backend.
    pub secrets: PartState,
    /// `sqlite` or `postgres`.
    pub engine: String,
}

/// `POST /v1/projects`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProject {
    /// The project's name.
    #[schema(pattern = "^[a-z0-9][a-z0-9-]{0,62}$")]
    pub name: String,
}

/// A project made.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProjectCreated {
    /// Its name.
    pub name: String,
}

/// A project.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Project {
    /// Its name.
    pub name: String,
    /// When it was made.
    pub created_at: String,
    /// By whom.
    pub created_by: String,
    /// Whether every member may read its project-scope secret values (off by default).
    pub members_read_secrets: bool,
}

/// `POST /v1/sessions`: sign in to the console with a token.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSession {
    /// An API token of the user (`ew_…`); the session is a new token of its own.
    pub token: String,
}

/// A console session: its cookie is set beside this answer.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct Session {
    /// Who signed in.
    pub user: String,
    /// The session's token id (`edgeward tokens revoke` ends it).
    pub token_id: String,
    /// When it ends.
    pub expires_at: String,
    /// What every change made with the cookie must send as `X-CSRF-Token`.
    pub csrf_token: String,
}

/// `PATCH /v1/projects/{project}`: the settings to change; those left out stay.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectSettings {
    /// Let every member (viewers and developers too) read the project's secret values, as
    /// EdgeSecrets' organisation secrets; each read is audited.
    pub members_read_secrets: Option<bool>,
}

/// `GET /v1/projects`: the projects the caller belongs to (all, for platform admins).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProjectList {
    /// The projects.
    pub projects: Vec<Project>,
}

/// A package in a listing.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PackageSummary {
    /// Its name.
    pub name: String,
    /// The version serving, if any.
    pub current_version: Option<i64>,
    /// How many versions it has.
    pub versions: i64,
    /// When it was first deployed.
    pub created_at: String,
}

/// `GET /v1/projects/{project}/packages`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PackageList {
    /// The project.
    pub project: String,
    /// Its packages.
    pub packages: Vec<PackageSummary>,
}

/// One version of a package.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PackageVersion {
    /// Its number.
    pub version: i64,
    /// The component's sha256.
    pub sha256: String,
    /// The component's size, bytes.
    pub size: i64,
    /// Its manifest, as JSON (`null` if unreadable).
    #[schema(schema_with = any_object)]
    pub manifest: Value,
    /// When it was deployed.
    pub created_at: String,
    /// By whom.
    pub created_by: String,
    /// Whether it is the version serving.
    pub current: bool,
}

/// `GET /v1/projects/{project}/packages/{package}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Package {
    /// The project.
    pub project: String,
    /// The package.
    pub name: String,
    /// The version serving, if any.
    pub current_version: Option<i64>,
    /// Every version, oldest first.
    pub versions: Vec<PackageVersion>,
}

/// `POST …/versions`: the version deployed, now current.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Deployed {
    /// The project.
    pub project: String,
    /// The package.
    pub package: String,
    /// The new version, now current.
    pub version: i64,
    /// The component's sha256.
    pub sha256: String,
    /// Its size, bytes.
    pub size: u64,
    /// The limits it runs with.
    pub limits: crate::runtime::EffectiveLimits,
    /// What the deployer should know, e.g. a limit asked above the platform's maximum.
    pub notices: Vec<String>,
    /// The package secrets its `secrets` part (secrets.json) set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets_set: Vec<String>,
    /// The package secrets the previous `secrets` part set, unchanged since, that this one
    /// leaves out: deleted (names set through the API stay).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets_removed: Vec<String>,
    /// When the upload carried no manifest: the version whose manifest and bindings it kept
    /// (send an empty `manifest` part for the defaults).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_kept_from: Option<i64>,
}

/// `POST …/rollback`: no body (the previous version) or a version.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rollback {
    /// The version to make current; the one before the current when left out.
    #[serde(default)]
    pub version: Option<i64>,
}

/// The version now current after a rollback.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RolledBack {
    /// The project.
    pub project: String,
    /// The package.
    pub package: String,
    /// The version now current.
    pub version: i64,
}

/// A user's role in a project.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Membership {
    /// The project.
    pub project: String,
    /// The role.
    pub role: Role,
}

/// A token (never its secret part).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Token {
    /// Its public id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// When it was made.
    pub created_at: String,
    /// When it expires; `null` for never.
    pub expires_at: Option<String>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<String>,
    /// Who issued it.
    pub issued_by: String,
    /// The id of the data key it opens, if any.
    pub user_key: Option<String>,
    /// The token it was made with, if any: it dies with that token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
}

/// How the key of the calling token was made: the enrollment code redeemed, when, from where
/// and with which client. A user compares it with the code they were given and when they used
/// it: a key someone else redeemed shows another time, address or client.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct KeyOrigin {
    /// The enrollment's id.
    pub enrollment: String,
    /// The code's last four characters (`ewe_…1a2b`).
    pub code_hint: Option<String>,
    /// The admin who made the code.
    pub created_by: String,
    /// When it was redeemed.
    pub redeemed_at: String,
    /// From which address.
    pub redeemed_from: Option<String>,
    /// With which client (its `User-Agent`).
    pub redeemed_client: Option<String>,
}

/// An enrollment code not yet redeemed (never the code).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PendingEnrollment {
    /// Its id.
    pub id: String,
    /// Who made it.
    pub created_by: String,
    /// When.
    pub created_at: String,
    /// When it expires.
    pub expires_at: String,
}

/// `GET /v1/whoami`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Whoami {
    /// The caller.
    pub user: String,
    /// The token used.
    pub token_id: String,
    /// Whether the caller is a platform admin.
    pub platform_admin: bool,
    /// Who issued the token used.
    pub issued_by: String,
    /// The data key the token opens, if any.
    pub user_key: Option<String>,
    /// The caller's projects and roles.
    pub projects: Vec<Membership>,
    /// Tokens of the caller that this token's key did not make.
    pub tokens_issued_by_others: Vec<Token>,
    /// Enrollment codes for the caller, not yet redeemed.
    pub pending_enrollments: Vec<PendingEnrollment>,
    /// The tokens (console sessions included) made from the calling token, at any depth:
    /// each dies with it.
    pub descendants: Vec<Token>,
    /// How the calling token's data key was made, when an enrollment made it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_origin: Option<KeyOrigin>,
}

/// `POST /v1/users`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// The user's name.
    #[schema(pattern = "^[a-z0-9][a-z0-9-]{0,62}$")]
    pub name: String,
    /// Whether the user is a platform admin.
    #[serde(default)]
    pub platform_admin: bool,
}

/// A user.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct User {
    /// The name.
    pub name: String,
    /// Whether the user is a platform admin.
    pub platform_admin: bool,
    /// When the user was made.
    pub created_at: String,
    /// By whom.
    pub created_by: String,
}

/// A user made.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UserCreated {
    /// The name.
    pub name: String,
    /// Whether the user is a platform admin.
    pub platform_admin: bool,
}

/// `GET /v1/users`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UserList {
    /// Every user.
    pub users: Vec<User>,
}

/// `POST /v1/users/{user}/tokens` (the body may be left out).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// A name for it (default `api`).
    #[serde(default)]
    pub name: Option<String>,
    /// Lifetime in seconds; none means no expiry, or the minting token's expiry if it has
    /// one (a token never outlives the token it is minted with).
    #[serde(default)]
    pub expires_in: Option<u64>,
}

/// A token made: the only time its secret part is shown.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct IssuedToken {
    /// Its public id.
    pub id: String,
    /// Its user.
    pub user: String,
    /// Its name.
    pub name: String,
    /// The token.
    pub token: String,
    /// When it expires; `null` for never.
    pub expires_at: Option<String>,
    /// Who issued it.
    pub issued_by: String,
    /// The data key it opens, if any.
    pub user_key: Option<String>,
    /// What the holder should know.
    pub note: String,
}

/// `GET /v1/users/{user}/tokens`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenList {
    /// The user.
    pub user: String,
    /// The user's tokens.
    pub tokens: Vec<Token>,
}

/// `POST /v1/users/{user}/enrollments` (the body may be left out).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEnrollment {
    /// Lifetime in seconds (default one day, at most a week).
    #[serde(default)]
    pub expires_in: Option<u64>,
}

/// An enrollment code made: the only time it is shown.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Enrollment {
    /// Its id.
    pub id: String,
    /// The user it enrolls.
    pub user: String,
    /// The single-use code.
    pub code: String,
    /// When it expires.
    pub expires_at: String,
    /// What to do with it.
    pub note: String,
}

/// `POST /v1/enroll`.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Enroll {
    /// The enrollment code.
    pub code: String,
    /// A name for the token (default `enrolled`).
    #[serde(default)]
    pub name: Option<String>,
}

/// A code redeemed: the user's new token, with a fresh data key.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Enrolled {
    /// The token's public id.
    pub id: String,
    /// The user.
    pub user: String,
    /// The token.
    pub token: String,
    /// The new data key's id.
    pub user_key: String,
    /// What the holder should know.
    pub note: String,
}

/// A project member.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Member {
    /// The user.
    pub user: String,
    /// The role.
    pub role: Role,
    /// When it was granted.
    pub granted_at: String,
    /// By whom.
    pub granted_by: String,
}

/// `GET /v1/projects/{project}/members`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MemberList {
    /// The project.
    pub project: String,
    /// Its members.
    pub members: Vec<Member>,
}

/// `PUT /v1/projects/{project}/members/{user}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetMember {
    /// The role to grant.
    pub role: Role,
}

/// A role granted.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MemberSet {
    /// The project.
    pub project: String,
    /// The user.
    pub user: String,
    /// The role now held.
    pub role: Role,
}

/// `GET /v1/audit` filters.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// At or after (RFC 3339 or Unix milliseconds).
    pub since: Option<String>,
    /// Before (RFC 3339 or Unix milliseconds).
    pub until: Option<String>,
    /// Only this actor.
    pub actor: Option<String>,
    /// Only this project.
    pub project: Option<String>,
    /// Only this action (method and route pattern, as the records show it).
    pub action: Option<String>,
    /// Only this outcome.
    pub outcome: Option<String>,
    /// Only records older than this one (a record's `id`; the previous page's `next_before`).
    pub before: Option<i64>,
    /// At most this many (1–1000, default 100).
    pub limit: Option<u32>,
}

/// One audit record.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditEntry {
    /// Its sequence number.
    pub id: i64,
    /// When.
    pub at: String,
    /// Who (a user, or `anonymous`).
    pub actor: String,
    /// With which token.
    pub token_id: Option<String>,
    /// Method and route pattern.
    pub action: String,
    /// The concrete path (tokens in it replaced by `***`).
    pub target: String,
    /// The project concerned.
    pub project: Option<String>,
    /// The secret scope concerned.
    pub scope: Option<String>,
    /// The caller's address.
    pub remote: Option<String>,
    /// The HTTP status answered.
    pub status: u16,
    /// `ok`, `denied`, `unauthenticated`, `rejected` or `error`.
    pub outcome: String,
    /// What else the record says.
    pub detail: Option<String>,
}

/// `GET /v1/audit`: newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditList {
    /// The records.
    pub entries: Vec<AuditEntry>,
    /// When the page is full: pass as `before` for the next (older) page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_before: Option<i64>,
}

/// `GET /v1/projects/{project}/executions` filters.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExecutionsQuery {
    /// Only this package.
    pub package: Option<String>,
    /// Only this status.
    pub status: Option<crate::runtime::ExecutionStatus>,
    /// Only executions started after this (Unix milliseconds).
    pub after: Option<i64>,
    /// Only executions older than this one (an execution's `id`; the previous page's
    /// `next_before`), in the list's order: start time, then id.
    pub before: Option<String>,
    /// At most this many (1–1000, default 50).
    pub limit: Option<u32>,
}

/// One execution. Output sizes and output are for project developers and up.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Execution {
    /// Its id (also in the response's `x-edgeward-execution-id`).
    pub id: String,
    /// The package.
    pub package: String,
    /// The version that ran.
    pub version: i64,
    /// When it started.
    pub started_at: String,
    /// When it started, Unix milliseconds.
    pub started_at_ms: i64,
    /// How long it took, milliseconds.
    pub duration_ms: f64,
    /// How it ended.
    pub status: crate::runtime::ExecutionStatus,
    /// The HTTP status the caller was sent, if any.
    pub http_status: Option<u16>,
    /// The request's method.
    pub method: String,
    /// The request's path under the package, without its query, tokens and secret values
    /// replaced by `***`.
    pub path: String,
    /// The user whose token came with the request.
    pub user: Option<String>,
    /// The names of the secrets it read.
    pub secrets: Vec<String>,
    /// The credentials the host attached to its outbound requests (which secret, from which
    /// scope, to which host, how many times), and requests refused for a credential
    /// placeholder where it may not go. Absent when it used none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<crate::runtime::credentials::CredentialLog>,
    /// Bytes of standard output kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout_bytes: Option<u64>,
    /// Bytes of standard error kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr_bytes: Option<u64>,
    /// Standard output, masked (in `GET …/executions/{id}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout: Option<String>,
    /// Whether standard output was cut at the cap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout_truncated: Option<bool>,
    /// Standard error, masked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr: Option<String>,
    /// Whether standard error was cut at the cap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr_truncated: Option<bool>,
    /// Why output is not shown: to callers below developer, or to anyone but the user an
    /// execution is sealed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// The user this execution's output is sealed for: it opened their user scope, so only
    /// they read its output (`GET /v1/users/{user}/executions/{id}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_for: Option<String>,
    /// Where its outbound requests went (or were refused going), by host. Absent when it sent
    /// none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outbound: Vec<crate::store::OutboundHost>,
}

/// `GET /v1/users/{user}/executions`: the executions sealed for the user, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SealedExecutionList {
    /// The user.
    pub user: String,
    /// The executions, each with its project.
    pub executions: Vec<SealedExecution>,
    /// When the page is full: pass as `before` for the next (older) page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_before: Option<String>,
}

/// An execution sealed for its user, with its project.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SealedExecution {
    /// The project.
    pub project: String,
    /// The execution.
    #[serde(flatten)]
    pub execution: Execution,
}

/// `POST /v1/users/{user}/grants`: which package version to grant (default: the one serving).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateGrant {
    /// The project.
    pub project: String,
    /// The package.
    pub package: String,
    /// The version; the current one if left out.
    #[serde(default)]
    pub version: Option<i64>,
    /// Only show what would be granted (200), grant nothing.
    #[serde(default)]
    pub preview: bool,
}

/// A grant: one package version (its component and manifest) may use the names it declares
/// in the user's scope, on that user's requests.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Grant {
    /// Its id (absent in a preview).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The project.
    pub project: String,
    /// The package.
    pub package: String,
    /// The version granted.
    pub version: i64,
    /// The component's sha256.
    pub sha256: String,
    /// The manifest's sha256.
    pub manifest_sha256: String,
    /// The user-scope names and folders (`team/*`) it declares.
    pub user_secrets: Vec<String>,
    /// Whether it may write them too (`write-secrets` names `user`).
    pub writes_user_secrets: bool,
    /// Hosts it may send requests to (where a value it reads may go).
    pub outbound_hosts: Vec<String>,
    /// When it was granted (absent in a preview).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub granted_at: Option<String>,
    /// Whether the grant verifies under the data key of the token asking (a grant made with
    /// another key of the user's, or altered in the store, does not, and opens nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid: Option<bool>,
    /// Whether this is the version serving now (in a listing: whether it is granted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serving: Option<bool>,
}

/// `GET /v1/users/{user}/grants`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GrantList {
    /// The user.
    pub user: String,
    /// Their grants, newest first.
    pub grants: Vec<Grant>,
}

/// `GET /v1/projects/{project}/executions`: newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ExecutionList {
    /// The project.
    pub project: String,
    /// The executions.
    pub executions: Vec<Execution>,
    /// When the page is full: pass as `before` for the next (older) page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_before: Option<String>,
}

/// A secret's metadata: never its value.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SecretMeta {
    /// Its name.
    pub name: String,
    /// Its scope.
    pub scope: crate::secrets::Scope,
    /// Its version.
    pub version: u64,
    /// Its last write.
    pub updated_at: String,
    /// Who wrote it last.
    pub updated_by: String,
    /// What it is for.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Its labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// A scope's secrets (names and metadata), every one under the prefix asked for, folders
/// walked.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SecretList {
    /// The scope.
    pub scope: crate::secrets::Scope,
    /// The prefix asked for ("" for all).
    pub prefix: String,
    /// Its secrets, by name.
    pub secrets: Vec<SecretMeta>,
    /// The folders directly under the prefix (each ending in `/`), as a file explorer shows
    /// them; `prefix` set to one lists its contents.
    pub folders: Vec<String>,
}

/// `GET` a scope's secrets: which.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SecretsQuery {
    /// Only names starting with this (`team/` for the folder `team`).
    pub prefix: Option<String>,
}

/// `GET` a secret's value: which version.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SecretQuery {
    /// A kept version instead of the current one.
    pub version: Option<u64>,
}

/// `DELETE` a secret: how.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeleteSecret {
    /// Delete it even though serving package versions bind it (their requests then fail
    /// `unbound` until it is set again); without it such a delete is refused `409 in_use`.
    #[serde(default)]
    pub force: bool,
}

/// `POST` a secret: its name and value.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSecret {
    /// The name (`/` separates folders).
    #[schema(
        pattern = "^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}(/[A-Za-z0-9][A-Za-z0-9_.-]{0,127})*$",
        max_length = 255
    )]
    pub name: String,
    /// The value.
    #[schema(schema_with = secret_value_schema)]
    pub value: Value,
    /// What it is for (at most 512 bytes).
    pub description: Option<String>,
    /// Labels (at most 32).
    pub labels: Option<BTreeMap<String, String>>,
}

/// `PUT` a secret's value; a description or labels given replace the secret's,
/// left out they stay as they are.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetSecret {
    /// The value.
    #[schema(schema_with = secret_value_schema)]
    pub value: Value,
    /// What it is for (at most 512 bytes).
    pub description: Option<String>,
    /// Labels (at most 32).
    pub labels: Option<BTreeMap<String, String>>,
}

/// `PATCH` a secret: a new value, or only its description and labels (a metadata-only update:
/// no new version, on Vault only the custom metadata changes). At least one of the three.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSecret {
    /// The new value; left out, the value and its version stay as they are.
    #[schema(schema_with = secret_value_schema)]
    pub value: Option<Value>,
    /// What it is for (at most 512 bytes; "" removes it).
    pub description: Option<String>,
    /// Labels (at most 32); given, they replace the secret's.
    pub labels: Option<BTreeMap<String, String>>,
}

/// One kept version of a secret.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SecretVersion {
    /// Its number.
    pub version: u64,
    /// When it was written.
    pub created_at: String,
    /// Who wrote it, where the backend knows (Vault keeps the latest writer only).
    pub created_by: Option<String>,
    /// Whether it is the current version.
    pub current: bool,
    /// Whether its value is gone (deleted in Vault): it cannot be read or rolled back to.
    pub deleted: bool,
}

/// `GET …/{name}/versions`: the versions kept, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SecretVersions {
    /// The secret.
    pub name: String,
    /// Its scope.
    pub scope: crate::secrets::Scope,
    /// Its kept versions.
    pub versions: Vec<SecretVersion>,
}

/// `POST …/{name}/rollback`: the version whose value becomes current again (as a new
/// version, like `vault kv rollback`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretRollback {
    /// The version to roll back to.
    pub version: u64,
}

/// A secret written.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SecretWritten {
    /// Its name.
    pub name: String,
    /// Its scope.
    pub scope: crate::secrets::Scope,
    /// Its new version.
    pub version: u64,
}

/// A secret's value (audited).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SecretRead {
    /// Its name.
    pub name: String,
    /// Its scope.
    pub scope: crate::secrets::Scope,
    /// Its version.
    pub version: u64,
    /// The value.
    #[schema(schema_with = secret_value_schema)]
    pub value: Value,
}

/// `PUT` a scope: a `secrets.json` object, `{"NAME": value, …}`, imported all or nothing.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(value_type = Object)]
pub struct ImportSecrets(pub serde_json::Map<String, Value>);

/// The names imported.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Imported {
    /// The scope.
    pub scope: crate::secrets::Scope,
    /// The names written.
    pub imported: Vec<String>,
}

mod packages;
pub use packages::*;
mod wrapping;
pub use wrapping::*;
mod deleting;
pub use deleting::*;

#[cfg(test)]
mod debug_tests {
    use super::*;

    #[test]
    fn credential_bodies_print_without_their_credentials() {
        let shown = format!(
            "{:?} {:?} {:?} {:?}",
            Enroll {
                code: "ewe_secret1".into(),
                name: None
            },
            Unwrap {
                token: "ewr_secret2".into()
            },
            CreateSession {
                token: "ew_secret3".into()
            },
            Session {
                user: "u".into(),
                token_id: "tok_1".into(),
                expires_at: "t".into(),
                csrf_token: "csrf_secret4".into(),
            },
        );
        for secret in ["secret1", "secret2", "secret3", "secret4"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("tok_1"), "{shown}");
    }
}
