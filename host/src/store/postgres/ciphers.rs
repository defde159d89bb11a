//! The embedded backend's sealed secrets on PostgreSQL ([`CipherStore`]): versions kept,
//! deleted, destroyed, and annotations.

use super::*;

const SECRET_COLUMNS: &str = "SELECT name, version, nonce, ciphertext, updated_at, updated_by, \
     description, labels FROM secrets";

fn secret_row(r: &Row) -> SecretRow {
    SecretRow {
        name: r.get(0),
        version: r.get(1),
        nonce: r.get(2),
        ciphertext: r.get(3),
        updated_at: r.get(4),
        updated_by: r.get(5),
        description: r.get(6),
        labels: r.get(7),
    }
}

/// Keeps `version` of a secret among its versions and drops those older than its last
/// `keep`.
#[allow(clippy::too_many_arguments)]
pub(super) async fn keep_version(
    tx: &Transaction<'_>,
    scope: &str,
    owner: &str,
    name: &str,
    version: i64,
    nonce: &[u8],
    ciphertext: &[u8],
    by: &str,
    keep: i64,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO secret_versions (scope, owner, name, version, nonce, ciphertext, \
         created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (scope, owner, name, version) DO UPDATE SET nonce = excluded.nonce, \
         ciphertext = excluded.ciphertext, created_at = excluded.created_at, \
         created_by = excluded.created_by",
        &[
            &scope,
            &owner,
            &name,
            &version,
            &nonce,
            &ciphertext,
            &now_ms(),
            &by,
        ],
    )
    .await?;
    tx.execute(
        "DELETE FROM secret_versions WHERE scope = $1 AND owner = $2 AND name = $3 \
         AND version <= $4",
        &[&scope, &owner, &name, &(version - keep.max(1))],
    )
    .await?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn secret_write_in(
    tx: &Transaction<'_>,
    scope: &str,
    owner: &str,
    name: &str,
    nonce: &[u8],
    ciphertext: &[u8],
    by: &str,
    mode: WriteMode,
) -> Result<i64, StoreError> {
    match mode {
        WriteMode::Create => {
            let n = tx
                .execute(
                    "INSERT INTO secrets (scope, owner, name, version, nonce, ciphertext, \
                     updated_at, updated_by) VALUES ($1, $2, $3, 1, $4, $5, $6, $7) \
                     ON CONFLICT (scope, owner, name) DO NOTHING",
                    &[&scope, &owner, &name, &nonce, &ciphertext, &now_ms(), &by],
                )
                .await?;
            if n == 0 {
                return Err(StoreError::AlreadyExists(format!(
                    "{scope} secret {name} already exists"
                )));
            }
            Ok(1)
        }
        WriteMode::Update => tx
            .query_opt(
                "UPDATE secrets SET version = version + 1, nonce = $4, ciphertext = $5, \
                 updated_at = $6, updated_by = $7 \
                 WHERE scope = $1 AND owner = $2 AND name = $3 RETURNING version",
                &[&scope, &owner, &name, &nonce, &ciphertext, &now_ms(), &by],
            )
            .await?
            .map(|r| r.get(0))
            .ok_or_else(|| StoreError::NotFound(format!("no {scope} secret {name}"))),
        WriteMode::Upsert => Ok(tx
            .query_one(
                "INSERT INTO secrets (scope, owner, name, version, nonce, ciphertext, \
                 updated_at, updated_by) VALUES ($1, $2, $3, 1, $4, $5, $6, $7) \
                 ON CONFLICT (scope, owner, name) DO UPDATE SET \
                 version = secrets.version + 1, nonce = excluded.nonce, \
                 ciphertext = excluded.ciphertext, updated_at = excluded.updated_at, \
                 updated_by = excluded.updated_by RETURNING version",
                &[&scope, &owner, &name, &nonce, &ciphertext, &now_ms(), &by],
            )
            .await?
            .get(0)),
    }
}

#[async_trait::async_trait]
impl CipherStore for PgStore {
    async fn secret_get(
        &self,
        scope: &'static str,
        owner: String,
        name: String,
    ) -> Result<Option<SecretRow>, StoreError> {
        Ok(self
            .client()
            .await?
            .query_opt(
                &format!("{SECRET_COLUMNS} WHERE scope = $1 AND owner = $2 AND name = $3"),
                &[&scope, &owner, &name],
            )
            .await?
            .map(|r| secret_row(&r)))
    }

    async fn secret_list(
        &self,
        scope: &'static str,
        owner: String,
    ) -> Result<Vec<SecretRow>, StoreError> {
        Ok(self
            .client()
            .await?
            .query(
                &format!("{SECRET_COLUMNS} WHERE scope = $1 AND owner = $2 ORDER BY name"),
                &[&scope, &owner],
            )
            .await?
            .iter()
            .map(secret_row)
            .collect())
    }

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
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let version =
            secret_write_in(&tx, scope, &owner, &name, &nonce, &ciphertext, &by, mode).await?;
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
        )
        .await?;
        tx.commit().await?;
        Ok(version)
    }

    async fn secret_import(
        &self,
        scope: &'static str,
        owner: String,
        entries: Vec<(String, Vec<u8>, Vec<u8>)>,
        by: String,
        keep: i64,
    ) -> Result<(), StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
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
            )
            .await?;
            keep_version(
                &tx, scope, &owner, name, version, nonce, ciphertext, &by, keep,
            )
            .await?;
            crate::faults::point("import.write");
        }
        tx.commit().await?;
        Ok(())
    }

    async fn wrap_insert(
        &self,
        hash: String,
        name: String,
        nonce: Vec<u8>,
        ciphertext: Vec<u8>,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let c = self.client().await?;
        c.execute(
            "INSERT INTO wraps (hash, name, nonce, ciphertext, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
            &[&hash, &name, &nonce, &ciphertext, &expires_at],
        )
        .await?;
        c.execute("DELETE FROM wraps WHERE expires_at <= $1", &[&now_ms()])
            .await?;
        Ok(())
    }

    async fn wrap_take(
        &self,
        hash: String,
    ) -> Result<Option<(String, Vec<u8>, Vec<u8>)>, StoreError> {
        let row = self
            .client()
            .await?
            .query_opt(
                "DELETE FROM wraps WHERE hash = $1 RETURNING name, nonce, ciphertext, expires_at",
                &[&hash],
            )
            .await?;
        Ok(row
            .filter(|r| r.get::<_, i64>(3) > now_ms())
            .map(|r| (r.get(0), r.get(1), r.get(2))))
    }

    async fn issued_wrap_insert(&self, hash: String, expires_at: i64) -> Result<(), StoreError> {
        let c = self.client().await?;
        c.execute(
            "INSERT INTO issued_wraps (hash, expires_at) VALUES ($1, $2) \
             ON CONFLICT (hash) DO NOTHING",
            &[&hash, &expires_at],
        )
        .await?;
        c.execute(
            "DELETE FROM issued_wraps WHERE expires_at <= $1",
            &[&now_ms()],
        )
        .await?;
        Ok(())
    }

    async fn issued_wrap_take(&self, hash: String) -> Result<bool, StoreError> {
        let at: Option<i64> = self
            .client()
            .await?
            .query_opt(
                "DELETE FROM issued_wraps WHERE hash = $1 RETURNING expires_at",
                &[&hash],
            )
            .await?
            .map(|r| r.get(0));
        Ok(at.is_some_and(|at| at > now_ms()))
    }

    async fn secret_delete(
        &self,
        scope: &'static str,
        owner: String,
        name: String,
    ) -> Result<bool, StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        tx.execute(
            "DELETE FROM secret_versions WHERE scope = $1 AND owner = $2 AND name = $3",
            &[&scope, &owner, &name],
        )
        .await?;
        let found = tx
            .execute(
                "DELETE FROM secrets WHERE scope = $1 AND owner = $2 AND name = $3",
                &[&scope, &owner, &name],
            )
            .await?
            > 0;
        tx.commit().await?;
        Ok(found)
    }

    async fn secret_versions(
        &self,
        scope: &'static str,
        owner: String,
        name: String,
    ) -> Result<Vec<SecretVersionRow>, StoreError> {
        Ok(self
            .client()
            .await?
            .query(
                "SELECT version, created_at, created_by FROM secret_versions \
                 WHERE scope = $1 AND owner = $2 AND name = $3 ORDER BY version",
                &[&scope, &owner, &name],
            )
            .await?
            .iter()
            .map(|r| SecretVersionRow {
                version: r.get(0),
                created_at: r.get(1),
                created_by: r.get(2),
            })
            .collect())
    }

    async fn secret_get_version(
        &self,
        scope: &'static str,
        owner: String,
        name: String,
        version: i64,
    ) -> Result<Option<SecretRow>, StoreError> {
        Ok(self
            .client()
            .await?
            .query_opt(
                "SELECT v.name, v.version, v.nonce, v.ciphertext, v.created_at, v.created_by, \
                 s.description, s.labels FROM secret_versions v JOIN secrets s \
                 ON s.scope = v.scope AND s.owner = v.owner AND s.name = v.name \
                 WHERE v.scope = $1 AND v.owner = $2 AND v.name = $3 AND v.version = $4",
                &[&scope, &owner, &name, &version],
            )
            .await?
            .map(|r| secret_row(&r)))
    }

    async fn secret_annotate(
        &self,
        scope: &'static str,
        owner: String,
        name: String,
        description: Option<String>,
        labels: Option<String>,
    ) -> Result<bool, StoreError> {
        Ok(self
            .client()
            .await?
            .execute(
                "UPDATE secrets SET description = COALESCE($4, description), \
                 labels = COALESCE($5, labels) \
                 WHERE scope = $1 AND owner = $2 AND name = $3",
                &[&scope, &owner, &name, &description, &labels],
            )
            .await?
            > 0)
    }
}
