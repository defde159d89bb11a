//! The embedded backend's sealed secrets on SQLite ([`CipherStore`]): versions kept,
//! deleted, destroyed, and annotations.

use super::*;

#[async_trait::async_trait]
impl CipherStore for SqliteStore {
    /// Reads one embedded-backend ciphertext.
    async fn secret_get(
        &self,
        scope: &'static str,
        owner: String,
        name: String,
    ) -> Result<Option<SecretRow>, StoreError> {
        self.read(move |c| {
            Ok(c.query_row(
                "SELECT name, version, nonce, ciphertext, updated_at, updated_by, description, \
                 labels FROM secrets WHERE scope = ?1 AND owner = ?2 AND name = ?3",
                params![scope, owner, name],
                secret_row,
            )
            .optional()?)
        })
        .await
    }

    /// Lists the embedded-backend ciphertexts of one owner in one scope.
    async fn secret_list(
        &self,
        scope: &'static str,
        owner: String,
    ) -> Result<Vec<SecretRow>, StoreError> {
        self.call(move |c| {
            let mut st = c.prepare(
                "SELECT name, version, nonce, ciphertext, updated_at, updated_by, description, \
                 labels FROM secrets WHERE scope = ?1 AND owner = ?2 ORDER BY name",
            )?;
            let rows = st.query_map(params![scope, owner], secret_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    /// Writes one embedded-backend ciphertext, bumping its version; returns the new version.
    /// `mode` is `None` for upsert, `Some(true)` for create-only, `Some(false)` for update-only.
    #[allow(clippy::too_many_arguments)]
    async fn secret_write(
        &self,
        scope: &'static str,
        owner: String,
        name: String,
        nonce: Vec<u8>,
        ciphertext: Vec<u8>,
        by: String,
        mode: WriteMode,
        keep: i64,
    ) -> Result<i64, StoreError> {
        self.call(move |c| {
            let tx = c.transaction()?;
            let version =
                secret_write_in(&tx, scope, &owner, &name, &nonce, &ciphertext, &by, mode)?;
            keep_version(
                &tx,
                scope,
                &owner,
                &name,
                version,
                &nonce,
                &ciphertext,
                &by,
                keep,
            )?;
            tx.commit()?;
            Ok(version)
        })
        .await
    }

    /// Upserts many ciphertexts of one owner in one transaction: all or none.
    async fn secret_import(
        &self,
        scope: &'static str,
        owner: String,
        entries: Vec<(String, Vec<u8>, Vec<u8>)>,
        by: String,
        keep: i64,
    ) -> Result<(), StoreError> {
        self.call(move |c| {
            let tx = c.transaction()?;
            for (name, nonce, ciphertext) in &entries {
                let version = secret_write_in(
                    &tx,
                    scope,
                    &owner,
                    name,
                    nonce,
                    ciphertext,
                    &by,
                    WriteMode::Upsert,
                )?;
                keep_version(
                    &tx, scope, &owner, name, version, nonce, ciphertext, &by, keep,
                )?;
                crate::faults::point("import.write");
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    /// Stores a wrapped value under the hash of its token.
    async fn wrap_insert(
        &self,
        hash: String,
        name: String,
        nonce: Vec<u8>,
        ciphertext: Vec<u8>,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        self.call(move |c| {
            c.execute(
                "INSERT INTO wraps (hash, name, nonce, ciphertext, expires_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![hash, name, nonce, ciphertext, expires_at],
            )?;
            // Expired wraps are useless; drop them whenever a new one is made.
            c.execute("DELETE FROM wraps WHERE expires_at <= ?1", [now_ms()])?;
            Ok(())
        })
        .await
    }

    /// Removes and returns the wrapped value for `hash` if it has not expired: single use.
    async fn wrap_take(
        &self,
        hash: String,
    ) -> Result<Option<(String, Vec<u8>, Vec<u8>)>, StoreError> {
        self.call(move |c| {
            let row: Option<(String, Vec<u8>, Vec<u8>, i64)> = c
                .query_row(
                    "DELETE FROM wraps WHERE hash = ?1 \
                     RETURNING name, nonce, ciphertext, expires_at",
                    [hash],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional()?;
            Ok(row
                .filter(|(_, _, _, expires_at)| *expires_at > now_ms())
                .map(|(name, nonce, ct, _)| (name, nonce, ct)))
        })
        .await
    }

    /// Remembers a wrapping token Edgeward handed out (by hash), so that unwrap redeems only
    /// tokens it created.
    async fn issued_wrap_insert(&self, hash: String, expires_at: i64) -> Result<(), StoreError> {
        self.call(move |c| {
            c.execute(
                "INSERT INTO issued_wraps (hash, expires_at) VALUES (?1, ?2) \
                 ON CONFLICT (hash) DO NOTHING",
                params![hash, expires_at],
            )?;
            c.execute(
                "DELETE FROM issued_wraps WHERE expires_at <= ?1",
                [now_ms()],
            )?;
            Ok(())
        })
        .await
    }

    /// Forgets a wrapping token Edgeward handed out; whether it was known and unexpired.
    async fn issued_wrap_take(&self, hash: String) -> Result<bool, StoreError> {
        self.call(move |c| {
            let at: Option<i64> = c
                .query_row(
                    "DELETE FROM issued_wraps WHERE hash = ?1 RETURNING expires_at",
                    [hash],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(at.is_some_and(|at| at > now_ms()))
        })
        .await
    }

    /// Deletes one embedded-backend secret; whether it existed.
    async fn secret_delete(
        &self,
        scope: &'static str,
        owner: String,
        name: String,
    ) -> Result<bool, StoreError> {
        self.call(move |c| {
            let tx = c.transaction()?;
            tx.execute(
                "DELETE FROM secret_versions WHERE scope = ?1 AND owner = ?2 AND name = ?3",
                params![scope, owner, name],
            )?;
            let found = tx.execute(
                "DELETE FROM secrets WHERE scope = ?1 AND owner = ?2 AND name = ?3",
                params![scope, owner, name],
            )? > 0;
            tx.commit()?;
            Ok(found)
        })
        .await
    }

    async fn secret_versions(
        &self,
        scope: &'static str,
        owner: String,
        name: String,
    ) -> Result<Vec<SecretVersionRow>, StoreError> {
        self.call(move |c| {
            let mut st = c.prepare(
                "SELECT version, created_at, created_by FROM secret_versions \
                 WHERE scope = ?1 AND owner = ?2 AND name = ?3 ORDER BY version",
            )?;
            let rows = st.query_map(params![scope, owner, name], |r| {
                Ok(SecretVersionRow {
                    version: r.get(0)?,
                    created_at: r.get(1)?,
                    created_by: r.get(2)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn secret_get_version(
        &self,
        scope: &'static str,
        owner: String,
        name: String,
        version: i64,
    ) -> Result<Option<SecretRow>, StoreError> {
        self.call(move |c| {
            Ok(c.query_row(
                "SELECT v.name, v.version, v.nonce, v.ciphertext, v.created_at, v.created_by, \
                 s.description, s.labels FROM secret_versions v JOIN secrets s \
                 ON s.scope = v.scope AND s.owner = v.owner AND s.name = v.name \
                 WHERE v.scope = ?1 AND v.owner = ?2 AND v.name = ?3 AND v.version = ?4",
                params![scope, owner, name, version],
                secret_row,
            )
            .optional()?)
        })
        .await
    }

    async fn secret_annotate(
        &self,
        scope: &'static str,
        owner: String,
        name: String,
        description: Option<String>,
        labels: Option<String>,
    ) -> Result<bool, StoreError> {
        self.call(move |c| {
            Ok(c.execute(
                "UPDATE secrets SET description = COALESCE(?4, description), \
                 labels = COALESCE(?5, labels) \
                 WHERE scope = ?1 AND owner = ?2 AND name = ?3",
                params![scope, owner, name, description, labels],
            )? > 0)
        })
        .await
    }
}

fn secret_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SecretRow> {
    Ok(SecretRow {
        name: r.get(0)?,
        version: r.get(1)?,
        nonce: r.get(2)?,
        ciphertext: r.get(3)?,
        updated_at: r.get(4)?,
        updated_by: r.get(5)?,
        description: r.get(6)?,
        labels: r.get(7)?,
    })
}

/// Keeps `version` of a secret among its versions and drops those older than its last
/// `keep`.
#[allow(clippy::too_many_arguments)]
fn keep_version(
    c: &Connection,
    scope: &str,
    owner: &str,
    name: &str,
    version: i64,
    nonce: &[u8],
    ciphertext: &[u8],
    by: &str,
    keep: i64,
) -> Result<(), StoreError> {
    c.execute(
        "INSERT OR REPLACE INTO secret_versions (scope, owner, name, version, nonce, \
         ciphertext, created_at, created_by) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![scope, owner, name, version, nonce, ciphertext, now_ms(), by],
    )?;
    c.execute(
        "DELETE FROM secret_versions WHERE scope = ?1 AND owner = ?2 AND name = ?3 \
         AND version <= ?4",
        params![scope, owner, name, version - keep.max(1)],
    )?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn secret_write_in(
    c: &Connection,
    scope: &str,
    owner: &str,
    name: &str,
    nonce: &[u8],
    ciphertext: &[u8],
    by: &str,
    mode: WriteMode,
) -> Result<i64, StoreError> {
    let exists: bool = c.query_row(
        "SELECT EXISTS (SELECT 1 FROM secrets WHERE scope = ?1 AND owner = ?2 AND name = ?3)",
        params![scope, owner, name],
        |r| r.get(0),
    )?;
    match mode {
        WriteMode::Create if exists => {
            return Err(StoreError::AlreadyExists(format!(
                "{scope} secret {name} already exists"
            )));
        }
        WriteMode::Update if !exists => {
            return Err(StoreError::NotFound(format!("no {scope} secret {name}")));
        }
        _ => {}
    }
    Ok(c.query_row(
        "INSERT INTO secrets (scope, owner, name, version, nonce, ciphertext, updated_at, \
         updated_by) VALUES (?1, ?2, ?3, 1, ?4, ?5, ?6, ?7) \
         ON CONFLICT (scope, owner, name) DO UPDATE SET version = version + 1, \
         nonce = excluded.nonce, ciphertext = excluded.ciphertext, \
         updated_at = excluded.updated_at, updated_by = excluded.updated_by \
         RETURNING version",
        params![scope, owner, name, nonce, ciphertext, now_ms(), by],
        |r| r.get(0),
    )?)
}
