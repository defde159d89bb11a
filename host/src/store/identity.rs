//! Users, their API tokens (by hash only) and project memberships.

use super::StoreError;

/// Names the audit log and the system use as actor labels; no user may take them.
pub const RESERVED_USER_NAMES: &[&str] = &["anonymous", "edgeward", "vault", "system", "root"];

/// A role in a project. Ordered: each role can do what the ones before it can.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads packages, members and execution records.
    Viewer,
    /// Also deploys, rolls back and deletes packages, and writes package secrets.
    Developer,
    /// Also manages members and project secrets.
    Admin,
}

impl Role {
    /// The role's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Developer => "developer",
            Role::Admin => "admin",
        }
    }

    /// Parses a role name.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "developer" => Some(Role::Developer),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// A user.
#[derive(Debug, Clone, serde::Serialize)]
pub struct UserRow {
    /// The user's name (their id).
    pub name: String,
    /// Whether they administer the whole installation.
    pub platform_admin: bool,
    /// Creation time, Unix milliseconds.
    pub created_at: i64,
    /// Who created them.
    pub created_by: String,
}

/// An API token's record. The token itself is never stored.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TokenRow {
    /// Its public id.
    pub id: String,
    /// Its owner.
    pub user_name: String,
    /// What it is for.
    pub label: String,
    /// Creation time, Unix milliseconds.
    pub created_at: i64,
    /// Expiry, Unix milliseconds.
    pub expires_at: Option<i64>,
    /// Revocation time, Unix milliseconds.
    pub revoked_at: Option<i64>,
    /// Who made it: the user themselves, or the admin who issued it (directly or through an
    /// enrollment code).
    pub issued_by: String,
    /// The id of the user data key its key slot opens, if it has one.
    pub key_id: Option<String>,
    /// The token it was made with (minted from, or signed in to the console with), if any: it
    /// never outlives that token nor survives its revocation.
    pub parent_id: Option<String>,
}

/// A token joined with its user, as authentication needs it.
#[derive(Debug, Clone)]
pub struct TokenOwner {
    /// The token.
    pub token: TokenRow,
    /// Whether its user is a platform admin.
    pub platform_admin: bool,
    /// Its key slot, if it has one.
    pub slot: Option<KeySlot>,
}

/// A token to record.
#[derive(Debug, Clone)]
pub struct NewToken {
    /// Its public id.
    pub id: String,
    /// Its SHA-256 hash.
    pub hash: String,
    /// Its user.
    pub user: String,
    /// What it is for.
    pub label: String,
    /// Expiry, Unix milliseconds.
    pub expires_at: Option<i64>,
    /// Who made it.
    pub issued_by: String,
    /// Its key slot, if it gets one.
    pub slot: Option<KeySlot>,
    /// The token it is made with, whose revocation revokes it too.
    pub parent: Option<String>,
}

/// What a revocation reached: the token and every token made from it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Revoked {
    /// How many tokens it revoked (the token itself included).
    pub tokens: usize,
    /// Whose they were.
    pub users: Vec<String>,
}

/// How an enrollment code was redeemed, as the API saw the request.
#[derive(Debug, Clone, Default)]
pub struct Redemption {
    /// The client's address.
    pub from: Option<String>,
    /// The client's `User-Agent`.
    pub client: Option<String>,
}

/// Where a user data key came from: the enrollment whose redemption made it.
#[derive(Debug, Clone)]
pub struct KeyOrigin {
    /// The enrollment's public id.
    pub enrollment: String,
    /// The code's last four characters, to compare with the code the user was given.
    pub code_hint: Option<String>,
    /// The admin who made the code.
    pub created_by: String,
    /// When it was redeemed, Unix milliseconds.
    pub redeemed_at: i64,
    /// From which address.
    pub from: Option<String>,
    /// With which client.
    pub client: Option<String>,
}

/// A user's grant: one package version (its component's and manifest's sha256) may read, and
/// where its manifest says so write, the user-scope names it declared, for that user's calls.
/// `mac` authenticates it under the user's data key (see `secrets::consent`).
#[derive(Debug, Clone)]
pub struct GrantRow {
    /// Its public id.
    pub id: String,
    /// The user who granted it.
    pub user: String,
    /// The project.
    pub project: String,
    /// The package.
    pub package: String,
    /// The version granted (for display: the grant binds the two digests).
    pub version: i64,
    /// The component's sha256.
    pub sha256: String,
    /// The manifest's sha256.
    pub manifest_sha256: String,
    /// The user-scope names and folders it declared.
    pub names: Vec<String>,
    /// The data key whose MAC it carries.
    pub key_id: String,
    /// The MAC, hex.
    pub mac: String,
    /// When it was granted, Unix milliseconds.
    pub created_at: i64,
}

/// A project membership.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MemberRow {
    /// The project.
    pub project: String,
    /// The user.
    pub user: String,
    /// Their role.
    pub role: Role,
    /// When it was granted, Unix milliseconds.
    pub granted_at: i64,
    /// Who granted it.
    pub granted_by: String,
}

/// An enrollment code waiting to be redeemed.
#[derive(Debug, Clone)]
pub struct Enrollment {
    /// Its public id.
    pub id: String,
    /// The user it enrolls.
    pub user: String,
    /// The admin who made it.
    pub created_by: String,
}

/// Users, tokens (by hash), key slots, enrollments and memberships.
#[async_trait::async_trait]
pub trait IdentityStore: Send + Sync {
    /// Creates a user; `AlreadyExists` if the name is taken. `if_absent` makes that a no-op.
    async fn create_user(
        &self,
        name: String,
        platform_admin: bool,
        by: String,
        if_absent: bool,
    ) -> Result<(), StoreError>;

    /// All users.
    async fn list_users(&self) -> Result<Vec<UserRow>, StoreError>;

    /// Whether user `name` exists.
    async fn user_exists(&self, name: String) -> Result<bool, StoreError>;

    /// Records a token by its hash, with its key slot if it has one, in one transaction.
    async fn insert_token(&self, token: NewToken) -> Result<(), StoreError>;

    /// The token whose hash is `hash`, with its user's platform role and its key slot.
    async fn token_by_hash(&self, hash: String) -> Result<Option<TokenOwner>, StoreError>;

    /// The tokens of `user` (never the tokens themselves).
    async fn list_tokens(&self, user: String) -> Result<Vec<TokenRow>, StoreError>;

    /// Revokes token `id` of `user` and every token made from it (at any depth, console
    /// sessions included, whoever's they are), destroying their key slots, in one transaction;
    /// how many tokens were revoked, and whose.
    async fn revoke_token(&self, user: String, id: String) -> Result<Revoked, StoreError>;

    /// The tokens made from token `id`, at any depth (never the tokens themselves).
    async fn descendants(&self, id: String) -> Result<Vec<TokenRow>, StoreError>;

    /// Deletes user `name` in one transaction: every token of theirs and every token made from
    /// one (whoever's) is revoked and loses its key slot, then the user goes with their
    /// tokens, enrollments, memberships and grants. How many tokens were revoked, and whose.
    /// `NotFound` if there is no such user. (Their user secrets are the secret backend's.)
    async fn delete_user(&self, name: String) -> Result<Revoked, StoreError>;

    /// The enrollment whose redemption made `user`'s data key `key_id`, if one did.
    async fn key_origin(
        &self,
        user: String,
        key_id: String,
    ) -> Result<Option<KeyOrigin>, StoreError>;

    /// Records a grant, replacing the user's grant of the same component and manifest; the
    /// grant as stored (with the id it keeps).
    async fn put_grant(&self, grant: GrantRow) -> Result<GrantRow, StoreError>;

    /// The grants of `user`, newest first.
    async fn list_grants(&self, user: String) -> Result<Vec<GrantRow>, StoreError>;

    /// Removes grant `id` of `user`.
    async fn delete_grant(&self, user: String, id: String) -> Result<(), StoreError>;

    /// `user`'s grant of `project/package` with this component and manifest, if any.
    async fn find_grant(
        &self,
        user: String,
        project: String,
        package: String,
        sha256: String,
        manifest_sha256: String,
    ) -> Result<Option<GrantRow>, StoreError>;

    /// Destroys the key slots of tokens that have expired; how many.
    async fn drop_expired_slots(&self) -> Result<usize, StoreError>;

    /// The enrollment codes of `user` not yet redeemed nor expired, oldest first.
    async fn pending_enrollments(&self, user: String) -> Result<Vec<PendingRow>, StoreError>;

    /// Whether `user` has any user data key (any token with a key slot).
    async fn has_user_key(&self, user: String) -> Result<bool, StoreError>;

    /// Records an enrollment code (by hash, with its last four characters) for `user`.
    async fn create_enrollment(
        &self,
        id: String,
        hash: String,
        code_hint: String,
        user: String,
        by: String,
        expires_at: i64,
    ) -> Result<(), StoreError>;

    /// The unused, unexpired enrollment whose code hashes to `hash`.
    async fn enrollment(&self, hash: String) -> Result<Option<Enrollment>, StoreError>;

    /// Redeems the enrollment whose code hashes to `hash` once: marks it used (how, and the
    /// new token's key) and records `token` in the same transaction. `NotFound` if it was used
    /// or expired meanwhile.
    async fn redeem_enrollment(
        &self,
        hash: String,
        token: NewToken,
        how: Redemption,
    ) -> Result<(), StoreError>;

    /// `user`'s role in `project`, if any.
    async fn role_of(&self, project: String, user: String) -> Result<Option<Role>, StoreError>;

    /// Grants (or changes) `user`'s role in `project`.
    async fn set_member(
        &self,
        project: String,
        user: String,
        role: Role,
        by: String,
    ) -> Result<(), StoreError>;

    /// Removes `user` from `project`.
    async fn remove_member(&self, project: String, user: String) -> Result<(), StoreError>;

    /// The members of `project`.
    async fn list_members(&self, project: String) -> Result<Vec<MemberRow>, StoreError>;

    /// The memberships of `user`.
    async fn memberships(&self, user: String) -> Result<Vec<MemberRow>, StoreError>;
}

/// A data key encrypted for one token: what the store keeps.
#[derive(Clone)]
pub struct KeySlot {
    /// The data key's public id.
    pub key_id: String,
    /// The AEAD nonce.
    pub nonce: Vec<u8>,
    /// The data key, encrypted under the token's slot key.
    pub wrapped: Vec<u8>,
}

impl std::fmt::Debug for KeySlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySlot")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// An enrollment code not yet redeemed nor expired (never the code itself).
#[derive(Debug, Clone)]
pub struct PendingRow {
    /// The enrollment's id.
    pub id: String,
    /// Who made it.
    pub created_by: String,
    /// When, Unix milliseconds.
    pub created_at: i64,
    /// Until when it can be redeemed, Unix milliseconds.
    pub expires_at: i64,
}

/// What an engine's lineage revocation counts: every token of the lineage (a revoke reports
/// the tokens made from the one named), or only those revoked now (a user's deletion).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Counted {
    /// Every token of the lineage, revoked before or now.
    Lineage,
    /// Only the tokens this revocation revoked.
    NewlyRevoked,
}
