//! Users, tokens (by hash), key slots, enrollments and memberships. (SQLite)

use super::{SqliteStore, project_exists};
use crate::store::KeySlot;
use crate::store::identity::Counted;
use crate::store::*;
use rusqlite::{OptionalExtension, params};

/// The columns [`token_row`] reads, from `tokens t LEFT JOIN key_slots k`.
const TOKEN_COLUMNS: &str = "t.id, t.user_name, t.label, t.created_at, t.expires_at, \
     t.revoked_at, COALESCE(t.issued_by, t.user_name), k.key_id, t.parent_id";

fn token_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TokenRow> {
    Ok(TokenRow {
        id: r.get(0)?,
        user_name: r.get(1)?,
        label: r.get(2)?,
        created_at: r.get(3)?,
        expires_at: r.get(4)?,
        revoked_at: r.get(5)?,
        issued_by: r.get(6)?,
        key_id: r.get(7)?,
        parent_id: r.get(8)?,
    })
}

/// The ids of token `?1` and every token made from it, at any depth.
const LINEAGE: &str = "WITH RECURSIVE lineage(id) AS (SELECT ?1 UNION \
     SELECT t.id FROM tokens t JOIN lineage l ON t.parent_id = l.id)";

/// Every token of user `?1` and every token made from one, at any depth.
const USER_LINEAGE: &str = "WITH RECURSIVE lineage(id) AS (SELECT id FROM tokens WHERE user_name = ?1 \
     UNION SELECT t.id FROM tokens t JOIN lineage l ON t.parent_id = l.id)";

/// Revokes every token of `lineage` (one of the `*LINEAGE` CTEs, rooted at `root`) and
/// destroys their key slots, in `tx`; the count and the users whose tokens they were.
fn revoke_lineage(
    tx: &rusqlite::Transaction<'_>,
    lineage: &str,
    root: &str,
    counted: Counted,
) -> Result<(usize, Vec<String>), StoreError> {
    let users: Vec<String> = {
        let mut st = tx.prepare(&format!(
            "{lineage} SELECT DISTINCT user_name FROM tokens \
             WHERE id IN (SELECT id FROM lineage) ORDER BY user_name"
        ))?;
        let rows = st.query_map([root], |r| r.get(0))?;
        rows.collect::<Result<_, _>>()?
    };
    let live_only = if counted == Counted::NewlyRevoked {
        " AND revoked_at IS NULL"
    } else {
        ""
    };
    let revoked = tx.execute(
        &format!(
            "{lineage} UPDATE tokens SET revoked_at = COALESCE(revoked_at, ?2) \
             WHERE id IN (SELECT id FROM lineage){live_only}"
        ),
        params![root, now_ms()],
    )?;
    tx.execute(
        &format!("{lineage} DELETE FROM key_slots WHERE token_id IN (SELECT id FROM lineage)"),
        [root],
    )?;
    Ok((revoked, users))
}

const GRANT_COLUMNS: &str = "id, user_name, project, package, version, sha256, manifest_sha256, \
     names, key_id, mac, created_at";

fn grant_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<GrantRow> {
    let names: String = r.get(7)?;
    Ok(GrantRow {
        id: r.get(0)?,
        user: r.get(1)?,
        project: r.get(2)?,
        package: r.get(3)?,
        version: r.get(4)?,
        sha256: r.get(5)?,
        manifest_sha256: r.get(6)?,
        names: serde_json::from_str(&names).unwrap_or_default(),
        key_id: r.get(8)?,
        mac: r.get(9)?,
        created_at: r.get(10)?,
    })
}

fn insert_token(c: &rusqlite::Connection, t: &NewToken) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO tokens (id, hash, user_name, label, created_at, expires_at, issued_by, \
         parent_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (hash) DO NOTHING",
        params![
            t.id,
            t.hash,
            t.user,
            t.label,
            now_ms(),
            t.expires_at,
            t.issued_by,
            t.parent
        ],
    )?;
    if let Some(slot) = &t.slot {
        c.execute(
            "INSERT INTO key_slots (token_id, user_name, key_id, nonce, wrapped, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (token_id) DO NOTHING",
            params![
                t.id,
                t.user,
                slot.key_id,
                slot.nonce,
                slot.wrapped,
                now_ms()
            ],
        )?;
    }
    Ok(())
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

#[async_trait::async_trait]
impl IdentityStore for SqliteStore {
    /// Creates a user; `AlreadyExists` if the name is taken. `if_absent` makes that a no-op.
    async fn create_user(
        &self,
        name: String,
        platform_admin: bool,
        by: String,
        if_absent: bool,
    ) -> Result<(), StoreError> {
        self.call(move |c| {
            if RESERVED_USER_NAMES.contains(&name.as_str()) {
                return Err(StoreError::Reserved(format!(
                    "the user name {name} is reserved (the audit log uses it as a label); \
                     reserved: {}",
                    RESERVED_USER_NAMES.join(", ")
                )));
            }
            let n = c.execute(
                "INSERT INTO users (name, platform_admin, created_at, created_by) \
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT (name) DO NOTHING",
                params![name, platform_admin, now_ms(), by],
            )?;
            if n == 0 && !if_absent {
                return Err(StoreError::AlreadyExists(format!(
                    "user {name} already exists"
                )));
            }
            Ok(())
        })
        .await
    }

    /// All users.
    async fn list_users(&self) -> Result<Vec<UserRow>, StoreError> {
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
    async fn user_exists(&self, name: String) -> Result<bool, StoreError> {
        self.call(move |c| {
            Ok(c.query_row(
                "SELECT EXISTS (SELECT 1 FROM users WHERE name = ?1)",
                [name],
                |r| r.get(0),
            )?)
        })
        .await
    }

    /// Records a token by its hash, with its key slot if it has one, in one transaction.
    async fn insert_token(&self, token: NewToken) -> Result<(), StoreError> {
        self.call(move |c| {
            let tx = c.transaction()?;
            insert_token(&tx, &token)?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    /// The token whose hash is `hash`, with its user's platform role and its key slot.
    async fn token_by_hash(&self, hash: String) -> Result<Option<TokenOwner>, StoreError> {
        self.call(move |c| {
            Ok(c.query_row(
                &format!(
                    "SELECT {TOKEN_COLUMNS}, u.platform_admin, k.nonce, k.wrapped \
                     FROM tokens t JOIN users u ON u.name = t.user_name \
                     LEFT JOIN key_slots k ON k.token_id = t.id WHERE t.hash = ?1"
                ),
                [hash],
                |r| {
                    let token = token_row(r)?;
                    let slot = match (&token.key_id, r.get(10)?, r.get(11)?) {
                        (Some(key_id), Some(nonce), Some(wrapped)) => Some(KeySlot {
                            key_id: key_id.clone(),
                            nonce,
                            wrapped,
                        }),
                        _ => None,
                    };
                    Ok(TokenOwner {
                        token,
                        platform_admin: r.get(9)?,
                        slot,
                    })
                },
            )
            .optional()?)
        })
        .await
    }

    /// The tokens of `user` (never the tokens themselves).
    async fn list_tokens(&self, user: String) -> Result<Vec<TokenRow>, StoreError> {
        self.call(move |c| {
            let mut st = c.prepare(&format!(
                "SELECT {TOKEN_COLUMNS} FROM tokens t \
                 LEFT JOIN key_slots k ON k.token_id = t.id \
                 WHERE t.user_name = ?1 ORDER BY t.created_at"
            ))?;
            let rows = st.query_map([user], token_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    /// Revokes token `id` of `user` and every token made from it, destroying their key slots,
    /// in one transaction.
    async fn revoke_token(&self, user: String, id: String) -> Result<Revoked, StoreError> {
        let (revoked, users) = self
            .call(move |c| {
                let tx = c.transaction()?;
                let owned: bool = tx.query_row(
                    "SELECT EXISTS (SELECT 1 FROM tokens WHERE user_name = ?1 AND id = ?2)",
                    params![user, id],
                    |r| r.get(0),
                )?;
                if !owned {
                    return Err(StoreError::NotFound(format!(
                        "user {user} has no token {id}"
                    )));
                }
                let (revoked, users) = revoke_lineage(&tx, LINEAGE, &id, Counted::Lineage)?;
                tx.commit()?;
                Ok((revoked, users))
            })
            .await?;
        for user in &users {
            self.feed.send(Change::Identity { user: user.clone() });
        }
        Ok(Revoked {
            tokens: revoked,
            users,
        })
    }

    async fn delete_user(&self, name: String) -> Result<Revoked, StoreError> {
        let (revoked, users) = self
            .call(move |c| {
                let tx = c.transaction()?;
                let exists: bool = tx.query_row(
                    "SELECT EXISTS (SELECT 1 FROM users WHERE name = ?1)",
                    [&name],
                    |r| r.get(0),
                )?;
                if !exists {
                    return Err(StoreError::NotFound(format!("no user {name:?}")));
                }
                let (revoked, mut users) =
                    revoke_lineage(&tx, USER_LINEAGE, &name, Counted::NewlyRevoked)?;
                tx.execute("DELETE FROM users WHERE name = ?1", [&name])?;
                tx.commit()?;
                if !users.contains(&name) {
                    users.push(name);
                }
                Ok((revoked, users))
            })
            .await?;
        for user in &users {
            self.feed.send(Change::Identity { user: user.clone() });
        }
        Ok(Revoked {
            tokens: revoked,
            users,
        })
    }

    /// The tokens made from token `id`, at any depth.
    async fn descendants(&self, id: String) -> Result<Vec<TokenRow>, StoreError> {
        self.call(move |c| {
            let mut st = c.prepare(&format!(
                "{LINEAGE} SELECT {TOKEN_COLUMNS} FROM tokens t \
                 LEFT JOIN key_slots k ON k.token_id = t.id \
                 WHERE t.id IN (SELECT id FROM lineage) AND t.id <> ?1 ORDER BY t.created_at"
            ))?;
            let rows = st.query_map([id], token_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    /// The enrollment whose redemption made `user`'s data key `key_id`, if one did.
    async fn key_origin(
        &self,
        user: String,
        key_id: String,
    ) -> Result<Option<KeyOrigin>, StoreError> {
        self.call(move |c| {
            Ok(c.query_row(
                "SELECT id, code_hint, created_by, used_at, redeemed_from, redeemed_client \
                 FROM enrollments WHERE user_name = ?1 AND key_id = ?2 AND used_at IS NOT NULL",
                params![user, key_id],
                |r| {
                    Ok(KeyOrigin {
                        enrollment: r.get(0)?,
                        code_hint: r.get(1)?,
                        created_by: r.get(2)?,
                        redeemed_at: r.get(3)?,
                        from: r.get(4)?,
                        client: r.get(5)?,
                    })
                },
            )
            .optional()?)
        })
        .await
    }

    /// Records a grant, replacing the user's grant of the same component and manifest.
    async fn put_grant(&self, grant: GrantRow) -> Result<GrantRow, StoreError> {
        let user = grant.user.clone();
        let stored = self
            .call(move |c| {
                let names = serde_json::to_string(&grant.names).unwrap_or_else(|_| "[]".into());
                Ok(c.query_row(
                    &format!(
                        "INSERT INTO grants ({GRANT_COLUMNS}) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) \
                         ON CONFLICT (user_name, project, package, sha256, manifest_sha256) \
                         DO UPDATE SET version = excluded.version, names = excluded.names, \
                         key_id = excluded.key_id, mac = excluded.mac, \
                         created_at = excluded.created_at RETURNING {GRANT_COLUMNS}"
                    ),
                    params![
                        grant.id,
                        grant.user,
                        grant.project,
                        grant.package,
                        grant.version,
                        grant.sha256,
                        grant.manifest_sha256,
                        names,
                        grant.key_id,
                        grant.mac,
                        grant.created_at
                    ],
                    grant_row,
                )?)
            })
            .await?;
        self.feed.send(Change::Identity { user });
        Ok(stored)
    }

    /// The grants of `user`, newest first.
    async fn list_grants(&self, user: String) -> Result<Vec<GrantRow>, StoreError> {
        self.call(move |c| {
            let mut st = c.prepare(&format!(
                "SELECT {GRANT_COLUMNS} FROM grants WHERE user_name = ?1 \
                 ORDER BY created_at DESC, id"
            ))?;
            let rows = st.query_map([user], grant_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    /// Removes grant `id` of `user`.
    async fn delete_grant(&self, user: String, id: String) -> Result<(), StoreError> {
        let changed = user.clone();
        self.call(move |c| {
            let n = c.execute(
                "DELETE FROM grants WHERE user_name = ?1 AND id = ?2",
                params![user, id],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound(format!(
                    "user {user} has no grant {id}"
                )));
            }
            Ok(())
        })
        .await?;
        self.feed.send(Change::Identity { user: changed });
        Ok(())
    }

    /// `user`'s grant of `project/package` with this component and manifest, if any.
    async fn find_grant(
        &self,
        user: String,
        project: String,
        package: String,
        sha256: String,
        manifest_sha256: String,
    ) -> Result<Option<GrantRow>, StoreError> {
        self.call(move |c| {
            Ok(c.query_row(
                &format!(
                    "SELECT {GRANT_COLUMNS} FROM grants WHERE user_name = ?1 AND project = ?2 \
                     AND package = ?3 AND sha256 = ?4 AND manifest_sha256 = ?5"
                ),
                params![user, project, package, sha256, manifest_sha256],
                grant_row,
            )
            .optional()?)
        })
        .await
    }

    /// Destroys the key slots of tokens that have expired; how many.
    async fn drop_expired_slots(&self) -> Result<usize, StoreError> {
        self.call(|c| {
            Ok(c.execute(
                "DELETE FROM key_slots WHERE token_id IN (SELECT id FROM tokens \
                 WHERE expires_at IS NOT NULL AND expires_at <= ?1)",
                [now_ms()],
            )?)
        })
        .await
    }

    /// The enrollment codes of `user` not yet redeemed nor expired: (id, by, created, expires).
    async fn pending_enrollments(&self, user: String) -> Result<Vec<PendingRow>, StoreError> {
        self.call(move |c| {
            let mut st = c.prepare(
                "SELECT id, created_by, created_at, expires_at FROM enrollments \
                 WHERE user_name = ?1 AND used_at IS NULL AND expires_at > ?2 ORDER BY created_at",
            )?;
            let rows = st.query_map(params![user, now_ms()], |r| {
                Ok(PendingRow {
                    id: r.get(0)?,
                    created_by: r.get(1)?,
                    created_at: r.get(2)?,
                    expires_at: r.get(3)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    /// Whether `user` has any user data key (any token with a key slot).
    async fn has_user_key(&self, user: String) -> Result<bool, StoreError> {
        self.call(move |c| {
            Ok(c.query_row(
                "SELECT EXISTS (SELECT 1 FROM key_slots WHERE user_name = ?1)",
                [user],
                |r| r.get(0),
            )?)
        })
        .await
    }

    /// Records an enrollment code (by hash) for `user`.
    async fn create_enrollment(
        &self,
        id: String,
        hash: String,
        code_hint: String,
        user: String,
        by: String,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        self.call(move |c| {
            c.execute(
                "INSERT INTO enrollments (hash, id, user_name, created_by, created_at, \
                 expires_at, code_hint) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![hash, id, user, by, now_ms(), expires_at, code_hint],
            )?;
            Ok(())
        })
        .await
    }

    /// The unused, unexpired enrollment whose code hashes to `hash`.
    async fn enrollment(&self, hash: String) -> Result<Option<Enrollment>, StoreError> {
        self.call(move |c| {
            Ok(c.query_row(
                "SELECT id, user_name, created_by FROM enrollments \
                 WHERE hash = ?1 AND used_at IS NULL AND expires_at > ?2",
                params![hash, now_ms()],
                |r| {
                    Ok(Enrollment {
                        id: r.get(0)?,
                        user: r.get(1)?,
                        created_by: r.get(2)?,
                    })
                },
            )
            .optional()?)
        })
        .await
    }

    /// Redeems the enrollment whose code hashes to `hash` once: marks it used and records
    /// `token` in the same transaction. `NotFound` if it was used or expired meanwhile.
    async fn redeem_enrollment(
        &self,
        hash: String,
        token: NewToken,
        how: Redemption,
    ) -> Result<(), StoreError> {
        self.call(move |c| {
            let tx = c.transaction()?;
            let n = tx.execute(
                "UPDATE enrollments SET used_at = ?2, token_id = ?3, redeemed_from = ?4, \
                 redeemed_client = ?5, key_id = ?6 \
                 WHERE hash = ?1 AND used_at IS NULL AND expires_at > ?2",
                params![
                    hash,
                    now_ms(),
                    token.id,
                    how.from,
                    how.client,
                    token.slot.as_ref().map(|s| s.key_id.clone())
                ],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound(
                    "the enrollment code is unknown, used or expired".into(),
                ));
            }
            insert_token(&tx, &token)?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    /// `user`'s role in `project`, if any.
    async fn role_of(&self, project: String, user: String) -> Result<Option<Role>, StoreError> {
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
    async fn set_member(
        &self,
        project: String,
        user: String,
        role: Role,
        by: String,
    ) -> Result<(), StoreError> {
        let user_changed = user.clone();
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
                return Err(StoreError::NotFound(format!("no user {user}")));
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
        .await?;
        self.feed.send(Change::Identity { user: user_changed });
        Ok(())
    }

    /// Removes `user` from `project`.
    async fn remove_member(&self, project: String, user: String) -> Result<(), StoreError> {
        let user_changed = user.clone();
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
        .await?;
        self.feed.send(Change::Identity { user: user_changed });
        Ok(())
    }

    /// The members of `project`.
    async fn list_members(&self, project: String) -> Result<Vec<MemberRow>, StoreError> {
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
    async fn memberships(&self, user: String) -> Result<Vec<MemberRow>, StoreError> {
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
