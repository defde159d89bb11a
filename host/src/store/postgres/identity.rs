//! Users, tokens (by hash), key slots, enrollments and memberships (PostgreSQL).

use super::{PgStore, project_exists, record_change};
use crate::store::KeySlot;
use crate::store::identity::Counted;
use crate::store::*;
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

/// The columns [`token_row`] reads, from `tokens t LEFT JOIN key_slots k`.
const TOKEN_COLUMNS: &str = "t.id, t.user_name, t.label, t.created_at, t.expires_at, \
     t.revoked_at, COALESCE(t.issued_by, t.user_name), k.key_id, t.parent_id";

fn token_row(r: &Row) -> TokenRow {
    TokenRow {
        id: r.get(0),
        user_name: r.get(1),
        label: r.get(2),
        created_at: r.get(3),
        expires_at: r.get(4),
        revoked_at: r.get(5),
        issued_by: r.get(6),
        key_id: r.get(7),
        parent_id: r.get(8),
    }
}

/// The ids of token `$1` and every token made from it, at any depth.
const LINEAGE: &str = "WITH RECURSIVE lineage(id) AS (SELECT $1::TEXT UNION \
     SELECT t.id FROM tokens t JOIN lineage l ON t.parent_id = l.id)";

/// Every token of user `$1` and every token made from one, at any depth.
const USER_LINEAGE: &str = "WITH RECURSIVE lineage(id) AS (SELECT id FROM tokens WHERE user_name = $1 \
     UNION SELECT t.id FROM tokens t JOIN lineage l ON t.parent_id = l.id)";

/// Revokes every token of `lineage` (one of the `*LINEAGE` CTEs, rooted at `root`) and
/// destroys their key slots, in `tx`; the count and the users whose tokens they were (as
/// SQLite's `revoke_lineage`).
async fn revoke_lineage(
    tx: &deadpool_postgres::Transaction<'_>,
    lineage: &str,
    root: &str,
    counted: Counted,
) -> Result<(usize, Vec<String>), StoreError> {
    let users: Vec<String> = tx
        .query(
            &format!(
                "{lineage} SELECT DISTINCT user_name FROM tokens \
                 WHERE id IN (SELECT id FROM lineage) ORDER BY user_name"
            ),
            &[&root],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let live_only = if counted == Counted::NewlyRevoked {
        " AND revoked_at IS NULL"
    } else {
        ""
    };
    let revoked = tx
        .execute(
            &format!(
                "{lineage} UPDATE tokens SET revoked_at = COALESCE(revoked_at, $2) \
                 WHERE id IN (SELECT id FROM lineage){live_only}"
            ),
            &[&root, &now_ms()],
        )
        .await?;
    tx.execute(
        &format!("{lineage} DELETE FROM key_slots WHERE token_id IN (SELECT id FROM lineage)"),
        &[&root],
    )
    .await?;
    Ok((usize::try_from(revoked).unwrap_or(usize::MAX), users))
}

const GRANT_COLUMNS: &str = "id, user_name, project, package, version, sha256, manifest_sha256, \
     names, key_id, mac, created_at";

fn grant_row(r: &Row) -> GrantRow {
    GrantRow {
        id: r.get(0),
        user: r.get(1),
        project: r.get(2),
        package: r.get(3),
        version: r.get(4),
        sha256: r.get(5),
        manifest_sha256: r.get(6),
        names: serde_json::from_str(r.get::<_, &str>(7)).unwrap_or_default(),
        key_id: r.get(8),
        mac: r.get(9),
        created_at: r.get(10),
    }
}

fn member_row(r: &Row) -> MemberRow {
    MemberRow {
        project: r.get(0),
        user: r.get(1),
        role: Role::parse(r.get(2)).unwrap_or(Role::Viewer),
        granted_at: r.get(3),
        granted_by: r.get(4),
    }
}

async fn insert_token(c: &impl GenericClient, t: &NewToken) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO tokens (id, hash, user_name, label, created_at, expires_at, issued_by, \
         parent_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (hash) DO NOTHING",
        &[
            &t.id,
            &t.hash,
            &t.user,
            &t.label,
            &now_ms(),
            &t.expires_at,
            &t.issued_by,
            &t.parent,
        ],
    )
    .await?;
    if let Some(slot) = &t.slot {
        c.execute(
            "INSERT INTO key_slots (token_id, user_name, key_id, nonce, wrapped, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (token_id) DO NOTHING",
            &[
                &t.id,
                &t.user,
                &slot.key_id,
                &slot.nonce,
                &slot.wrapped,
                &now_ms(),
            ],
        )
        .await?;
    }
    Ok(())
}

const MEMBER_COLUMNS: &str = "SELECT project, user_name, role, granted_at, granted_by FROM members";

#[async_trait::async_trait]
impl IdentityStore for PgStore {
    async fn create_user(
        &self,
        name: String,
        platform_admin: bool,
        by: String,
        if_absent: bool,
    ) -> Result<(), StoreError> {
        if RESERVED_USER_NAMES.contains(&name.as_str()) {
            return Err(StoreError::Reserved(format!(
                "the user name {name} is reserved (the audit log uses it as a label); \
                 reserved: {}",
                RESERVED_USER_NAMES.join(", ")
            )));
        }
        let n = self
            .client()
            .await?
            .execute(
                "INSERT INTO users (name, platform_admin, created_at, created_by) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING",
                &[&name, &platform_admin, &now_ms(), &by],
            )
            .await?;
        if n == 0 && !if_absent {
            return Err(StoreError::AlreadyExists(format!(
                "user {name} already exists"
            )));
        }
        Ok(())
    }

    async fn list_users(&self) -> Result<Vec<UserRow>, StoreError> {
        Ok(self
            .client()
            .await?
            .query(
                "SELECT name, platform_admin, created_at, created_by FROM users ORDER BY name",
                &[],
            )
            .await?
            .iter()
            .map(|r| UserRow {
                name: r.get(0),
                platform_admin: r.get(1),
                created_at: r.get(2),
                created_by: r.get(3),
            })
            .collect())
    }

    async fn user_exists(&self, name: String) -> Result<bool, StoreError> {
        Ok(self
            .client()
            .await?
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM users WHERE name = $1)",
                &[&name],
            )
            .await?
            .get(0))
    }

    async fn insert_token(&self, token: NewToken) -> Result<(), StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        insert_token(&tx, &token).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn token_by_hash(&self, hash: String) -> Result<Option<TokenOwner>, StoreError> {
        let row = self
            .client()
            .await?
            .query_opt(
                &format!(
                    "SELECT {TOKEN_COLUMNS}, u.platform_admin, k.nonce, k.wrapped \
                     FROM tokens t JOIN users u ON u.name = t.user_name \
                     LEFT JOIN key_slots k ON k.token_id = t.id WHERE t.hash = $1"
                ),
                &[&hash],
            )
            .await?;
        Ok(row.map(|r| {
            let token = token_row(&r);
            let slot = match (&token.key_id, r.get(10), r.get(11)) {
                (Some(key_id), Some(nonce), Some(wrapped)) => Some(KeySlot {
                    key_id: key_id.clone(),
                    nonce,
                    wrapped,
                }),
                _ => None,
            };
            TokenOwner {
                token,
                platform_admin: r.get(9),
                slot,
            }
        }))
    }

    async fn list_tokens(&self, user: String) -> Result<Vec<TokenRow>, StoreError> {
        Ok(self
            .client()
            .await?
            .query(
                &format!(
                    "SELECT {TOKEN_COLUMNS} FROM tokens t \
                     LEFT JOIN key_slots k ON k.token_id = t.id \
                     WHERE t.user_name = $1 ORDER BY t.created_at, t.id"
                ),
                &[&user],
            )
            .await?
            .iter()
            .map(token_row)
            .collect())
    }

    async fn revoke_token(&self, user: String, id: String) -> Result<Revoked, StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let owned: bool = tx
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM tokens WHERE user_name = $1 AND id = $2)",
                &[&user, &id],
            )
            .await?
            .get(0);
        if !owned {
            return Err(StoreError::NotFound(format!(
                "user {user} has no token {id}"
            )));
        }
        let (revoked, users) = revoke_lineage(&tx, LINEAGE, &id, Counted::Lineage).await?;
        for user in &users {
            record_change(&tx, &Change::Identity { user: user.clone() }).await?;
        }
        tx.commit().await?;
        Ok(Revoked {
            tokens: revoked,
            users,
        })
    }

    async fn delete_user(&self, name: String) -> Result<Revoked, StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let exists = tx
            .query_opt("SELECT 1 FROM users WHERE name = $1 FOR UPDATE", &[&name])
            .await?;
        if exists.is_none() {
            return Err(StoreError::NotFound(format!("no user {name:?}")));
        }
        let (revoked, mut users) =
            revoke_lineage(&tx, USER_LINEAGE, &name, Counted::NewlyRevoked).await?;
        tx.execute("DELETE FROM users WHERE name = $1", &[&name])
            .await?;
        if !users.contains(&name) {
            users.push(name);
        }
        for user in &users {
            record_change(&tx, &Change::Identity { user: user.clone() }).await?;
        }
        tx.commit().await?;
        Ok(Revoked {
            tokens: revoked,
            users,
        })
    }

    async fn descendants(&self, id: String) -> Result<Vec<TokenRow>, StoreError> {
        Ok(self
            .client()
            .await?
            .query(
                &format!(
                    "{LINEAGE} SELECT {TOKEN_COLUMNS} FROM tokens t \
                     LEFT JOIN key_slots k ON k.token_id = t.id \
                     WHERE t.id IN (SELECT id FROM lineage) AND t.id <> $1 \
                     ORDER BY t.created_at, t.id"
                ),
                &[&id],
            )
            .await?
            .iter()
            .map(token_row)
            .collect())
    }

    async fn key_origin(
        &self,
        user: String,
        key_id: String,
    ) -> Result<Option<KeyOrigin>, StoreError> {
        Ok(self
            .client()
            .await?
            .query_opt(
                "SELECT id, code_hint, created_by, used_at, redeemed_from, redeemed_client \
                 FROM enrollments WHERE user_name = $1 AND key_id = $2 AND used_at IS NOT NULL",
                &[&user, &key_id],
            )
            .await?
            .map(|r| KeyOrigin {
                enrollment: r.get(0),
                code_hint: r.get(1),
                created_by: r.get(2),
                redeemed_at: r.get(3),
                from: r.get(4),
                client: r.get(5),
            }))
    }

    async fn put_grant(&self, grant: GrantRow) -> Result<GrantRow, StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let names = serde_json::to_string(&grant.names).unwrap_or_else(|_| "[]".into());
        let row = tx
            .query_one(
                &format!(
                    "INSERT INTO grants ({GRANT_COLUMNS}) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                     ON CONFLICT (user_name, project, package, sha256, manifest_sha256) \
                     DO UPDATE SET version = excluded.version, names = excluded.names, \
                     key_id = excluded.key_id, mac = excluded.mac, \
                     created_at = excluded.created_at RETURNING {GRANT_COLUMNS}"
                ),
                &[
                    &grant.id,
                    &grant.user,
                    &grant.project,
                    &grant.package,
                    &grant.version,
                    &grant.sha256,
                    &grant.manifest_sha256,
                    &names,
                    &grant.key_id,
                    &grant.mac,
                    &grant.created_at,
                ],
            )
            .await?;
        record_change(&tx, &Change::Identity { user: grant.user }).await?;
        tx.commit().await?;
        Ok(grant_row(&row))
    }

    async fn list_grants(&self, user: String) -> Result<Vec<GrantRow>, StoreError> {
        Ok(self
            .client()
            .await?
            .query(
                &format!(
                    "SELECT {GRANT_COLUMNS} FROM grants WHERE user_name = $1 \
                     ORDER BY created_at DESC, id"
                ),
                &[&user],
            )
            .await?
            .iter()
            .map(grant_row)
            .collect())
    }

    async fn delete_grant(&self, user: String, id: String) -> Result<(), StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let n = tx
            .execute(
                "DELETE FROM grants WHERE user_name = $1 AND id = $2",
                &[&user, &id],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound(format!(
                "user {user} has no grant {id}"
            )));
        }
        record_change(&tx, &Change::Identity { user }).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn find_grant(
        &self,
        user: String,
        project: String,
        package: String,
        sha256: String,
        manifest_sha256: String,
    ) -> Result<Option<GrantRow>, StoreError> {
        Ok(self
            .client()
            .await?
            .query_opt(
                &format!(
                    "SELECT {GRANT_COLUMNS} FROM grants WHERE user_name = $1 AND project = $2 \
                     AND package = $3 AND sha256 = $4 AND manifest_sha256 = $5"
                ),
                &[&user, &project, &package, &sha256, &manifest_sha256],
            )
            .await?
            .map(|r| grant_row(&r)))
    }

    async fn drop_expired_slots(&self) -> Result<usize, StoreError> {
        let n = self
            .client()
            .await?
            .execute(
                "DELETE FROM key_slots WHERE token_id IN (SELECT id FROM tokens \
                 WHERE expires_at IS NOT NULL AND expires_at <= $1)",
                &[&now_ms()],
            )
            .await?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    async fn pending_enrollments(&self, user: String) -> Result<Vec<PendingRow>, StoreError> {
        Ok(self
            .client()
            .await?
            .query(
                "SELECT id, created_by, created_at, expires_at FROM enrollments \
                 WHERE user_name = $1 AND used_at IS NULL AND expires_at > $2 \
                 ORDER BY created_at",
                &[&user, &now_ms()],
            )
            .await?
            .iter()
            .map(|r| PendingRow {
                id: r.get(0),
                created_by: r.get(1),
                created_at: r.get(2),
                expires_at: r.get(3),
            })
            .collect())
    }

    async fn has_user_key(&self, user: String) -> Result<bool, StoreError> {
        Ok(self
            .client()
            .await?
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM key_slots WHERE user_name = $1)",
                &[&user],
            )
            .await?
            .get(0))
    }

    async fn create_enrollment(
        &self,
        id: String,
        hash: String,
        code_hint: String,
        user: String,
        by: String,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        self.client()
            .await?
            .execute(
                "INSERT INTO enrollments (hash, id, user_name, created_by, created_at, \
                 expires_at, code_hint) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[&hash, &id, &user, &by, &now_ms(), &expires_at, &code_hint],
            )
            .await?;
        Ok(())
    }

    async fn enrollment(&self, hash: String) -> Result<Option<Enrollment>, StoreError> {
        Ok(self
            .client()
            .await?
            .query_opt(
                "SELECT id, user_name, created_by FROM enrollments \
                 WHERE hash = $1 AND used_at IS NULL AND expires_at > $2",
                &[&hash, &now_ms()],
            )
            .await?
            .map(|r| Enrollment {
                id: r.get(0),
                user: r.get(1),
                created_by: r.get(2),
            }))
    }

    async fn redeem_enrollment(
        &self,
        hash: String,
        token: NewToken,
        how: Redemption,
    ) -> Result<(), StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let key_id = token.slot.as_ref().map(|s| s.key_id.clone());
        let n = tx
            .execute(
                "UPDATE enrollments SET used_at = $2, token_id = $3, redeemed_from = $4, \
                 redeemed_client = $5, key_id = $6 \
                 WHERE hash = $1 AND used_at IS NULL AND expires_at > $2",
                &[&hash, &now_ms(), &token.id, &how.from, &how.client, &key_id],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound(
                "the enrollment code is unknown, used or expired".into(),
            ));
        }
        insert_token(&tx, &token).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn role_of(&self, project: String, user: String) -> Result<Option<Role>, StoreError> {
        Ok(self
            .client()
            .await?
            .query_opt(
                "SELECT role FROM members WHERE project = $1 AND user_name = $2",
                &[&project, &user],
            )
            .await?
            .and_then(|r| Role::parse(r.get(0))))
    }

    async fn set_member(
        &self,
        project: String,
        user: String,
        role: Role,
        by: String,
    ) -> Result<(), StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        if !project_exists(&tx, &project).await? {
            return Err(StoreError::NotFound(format!("no project {project:?}")));
        }
        let user_exists: bool = tx
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM users WHERE name = $1)",
                &[&user],
            )
            .await?
            .get(0);
        if !user_exists {
            return Err(StoreError::NotFound(format!("no user {user}")));
        }
        tx.execute(
            "INSERT INTO members (project, user_name, role, granted_at, granted_by) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (project, user_name) DO UPDATE \
             SET role = excluded.role, granted_at = excluded.granted_at, \
             granted_by = excluded.granted_by",
            &[&project, &user, &role.as_str(), &now_ms(), &by],
        )
        .await?;
        record_change(&tx, &Change::Identity { user }).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn remove_member(&self, project: String, user: String) -> Result<(), StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let n = tx
            .execute(
                "DELETE FROM members WHERE project = $1 AND user_name = $2",
                &[&project, &user],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound(format!(
                "{user:?} is not a member of {project:?}"
            )));
        }
        record_change(&tx, &Change::Identity { user }).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_members(&self, project: String) -> Result<Vec<MemberRow>, StoreError> {
        Ok(self
            .client()
            .await?
            .query(
                &format!("{MEMBER_COLUMNS} WHERE project = $1 ORDER BY user_name"),
                &[&project],
            )
            .await?
            .iter()
            .map(member_row)
            .collect())
    }

    async fn memberships(&self, user: String) -> Result<Vec<MemberRow>, StoreError> {
        Ok(self
            .client()
            .await?
            .query(
                &format!("{MEMBER_COLUMNS} WHERE user_name = $1 ORDER BY project"),
                &[&user],
            )
            .await?
            .iter()
            .map(member_row)
            .collect())
    }
}
