//! Users, their API tokens (by hash only) and project memberships.

use super::{Store, StoreError, now_ms, project_exists};
use rusqlite::{OptionalExtension, params};

/// A role in a project. Ordered: each role can do what the ones before it can.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
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
}

/// A token joined with its user, as authentication needs it.
#[derive(Debug, Clone)]
pub struct TokenOwner {
    /// The token.
    pub token: TokenRow,
    /// Whether its user is a platform admin.
    pub platform_admin: bool,
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

fn token_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TokenRow> {
    Ok(TokenRow {
        id: r.get(0)?,
        user_name: r.get(1)?,
        label: r.get(2)?,
        created_at: r.get(3)?,
        expires_at: r.get(4)?,
        revoked_at: r.get(5)?,
    })
}

fn member_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<MemberRow> {
    let role: String = r.get(2)?;
    Ok(MemberRow {
        project: r.get(0)?,
        user: r.get(1)?,
        role: Role::parse(&role).unwrap_or(Role::Viewer),
        granted_at: r.get(3)?,
        granted_by: r.get(4)?,
    })
}

impl Store {
    /// Creates a user; `AlreadyExists` if the name is taken. `if_absent` makes that a no-op.
    pub async fn create_user(
        &self,
        name: String,
        platform_admin: bool,
        by: String,
        if_absent: bool,
    ) -> Result<(), StoreError> {
        self.call(move |c| {
            let n = c.execute(
                "INSERT INTO users (name, platform_admin, created_at, created_by) \
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT (name) DO NOTHING",
                params![name, platform_admin, now_ms(), by],
            )?;
            if n == 0 && !if_absent {
                return Err(StoreError::AlreadyExists(format!(
                    "user {name:?} already exists"
                )));
            }
            Ok(())
        })
        .await
    }

    /// All users.
    pub async fn list_users(&self) -> Result<Vec<UserRow>, StoreError> {
        self.call(|c| {
            let mut st = c.prepare(
                "SELECT name, platform_admin, created_at, created_by FROM users ORDER BY name",
            )?;
            let rows = st.query_map([], |r| {
                Ok(UserRow {
                    name: r.get(0)?,
                    platform_admin: r.get(1)?,
                    created_at: r.get(2)?,
                    created_by: r.get(3)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    /// Whether user `name` exists.
    pub async fn user_exists(&self, name: String) -> Result<bool, StoreError> {
        self.call(move |c| {
            Ok(c.query_row(
                "SELECT EXISTS (SELECT 1 FROM users WHERE name = ?1)",
                [name],
                |r| r.get(0),
            )?)
        })
        .await
    }

    /// Records a token by its hash for `user`.
    pub async fn insert_token(
        &self,
        id: String,
        hash: String,
        user: String,
        label: String,
        expires_at: Option<i64>,
    ) -> Result<(), StoreError> {
        self.call(move |c| {
            c.execute(
                "INSERT INTO tokens (id, hash, user_name, label, created_at, expires_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (hash) DO NOTHING",
                params![id, hash, user, label, now_ms(), expires_at],
            )?;
            Ok(())
        })
        .await
    }

    /// The token whose hash is `hash`, with its user's platform role.
    pub async fn token_by_hash(&self, hash: String) -> Result<Option<TokenOwner>, StoreError> {
        self.call(move |c| {
            Ok(c.query_row(
                "SELECT t.id, t.user_name, t.label, t.created_at, t.expires_at, t.revoked_at, \
                 u.platform_admin FROM tokens t JOIN users u ON u.name = t.user_name \
                 WHERE t.hash = ?1",
                [hash],
                |r| {
                    Ok(TokenOwner {
                        token: token_row(r)?,
                        platform_admin: r.get(6)?,
                    })
                },
            )
            .optional()?)
        })
        .await
    }

    /// The tokens of `user` (never the tokens themselves).
    pub async fn list_tokens(&self, user: String) -> Result<Vec<TokenRow>, StoreError> {
        self.call(move |c| {
            let mut st = c.prepare(
                "SELECT id, user_name, label, created_at, expires_at, revoked_at FROM tokens \
                 WHERE user_name = ?1 ORDER BY created_at",
            )?;
            let rows = st.query_map([user], token_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    /// Revokes token `id` of `user`.
    pub async fn revoke_token(&self, user: String, id: String) -> Result<(), StoreError> {
        self.call(move |c| {
            let n = c.execute(
                "UPDATE tokens SET revoked_at = COALESCE(revoked_at, ?3) \
                 WHERE user_name = ?1 AND id = ?2",
                params![user, id, now_ms()],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound(format!(
                    "user {user:?} has no token {id:?}"
                )));
            }
            Ok(())
        })
        .await
    }

    /// `user`'s role in `project`, if any.
    pub async fn role_of(&self, project: String, user: String) -> Result<Option<Role>, StoreError> {
        self.call(move |c| {
            let role: Option<String> = c
                .query_row(
                    "SELECT role FROM members WHERE project = ?1 AND user_name = ?2",
                    params![project, user],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(role.as_deref().and_then(Role::parse))
        })
        .await
    }

    /// Grants (or changes) `user`'s role in `project`.
    pub async fn set_member(
        &self,
        project: String,
        user: String,
        role: Role,
        by: String,
    ) -> Result<(), StoreError> {
        self.call(move |c| {
            if !project_exists(c, &project)? {
                return Err(StoreError::NotFound(format!("no project {project:?}")));
            }
            let user_exists: bool = c.query_row(
                "SELECT EXISTS (SELECT 1 FROM users WHERE name = ?1)",
                [&user],
                |r| r.get(0),
            )?;
            if !user_exists {
                return Err(StoreError::NotFound(format!("no user {user:?}")));
            }
            c.execute(
                "INSERT INTO members (project, user_name, role, granted_at, granted_by) \
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (project, user_name) DO UPDATE \
                 SET role = excluded.role, granted_at = excluded.granted_at, \
                 granted_by = excluded.granted_by",
                params![project, user, role.as_str(), now_ms(), by],
            )?;
            Ok(())
        })
        .await
    }

    /// Removes `user` from `project`.
    pub async fn remove_member(&self, project: String, user: String) -> Result<(), StoreError> {
        self.call(move |c| {
            let n = c.execute(
                "DELETE FROM members WHERE project = ?1 AND user_name = ?2",
                params![project, user],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound(format!(
                    "{user:?} is not a member of {project:?}"
                )));
            }
            Ok(())
        })
        .await
    }

    /// The members of `project`.
    pub async fn list_members(&self, project: String) -> Result<Vec<MemberRow>, StoreError> {
        self.call(move |c| {
            let mut st = c.prepare(
                "SELECT project, user_name, role, granted_at, granted_by FROM members \
                 WHERE project = ?1 ORDER BY user_name",
            )?;
            let rows = st.query_map([project], member_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    /// The memberships of `user`.
    pub async fn memberships(&self, user: String) -> Result<Vec<MemberRow>, StoreError> {
        self.call(move |c| {
            let mut st = c.prepare(
                "SELECT project, user_name, role, granted_at, granted_by FROM members \
                 WHERE user_name = ?1 ORDER BY project",
            )?;
            let rows = st.query_map([user], member_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }
}
