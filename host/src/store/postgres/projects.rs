//! Projects, packages, versions and blobs on PostgreSQL ([`ProjectStore`]).

use super::*;

#[async_trait::async_trait]
impl ProjectStore for PgStore {
    async fn create_project(&self, name: String, by: String) -> Result<(), StoreError> {
        let n = self
            .client()
            .await?
            .execute(
                "INSERT INTO projects (name, created_at, created_by) VALUES ($1, $2, $3) \
                 ON CONFLICT (name) DO NOTHING",
                &[&name, &now_ms(), &by],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::AlreadyExists(format!(
                "project {name:?} already exists"
            )));
        }
        Ok(())
    }

    async fn list_projects(&self) -> Result<Vec<ProjectRow>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT name, created_at, created_by, members_read_secrets FROM projects \
                 ORDER BY name",
                &[],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| ProjectRow {
                name: r.get(0),
                created_at: r.get(1),
                created_by: r.get(2),
                members_read_secrets: r.get(3),
            })
            .collect())
    }

    async fn members_read_secrets(&self, name: String) -> Result<bool, StoreError> {
        Ok(self
            .client()
            .await?
            .query_opt(
                "SELECT members_read_secrets FROM projects WHERE name = $1",
                &[&name],
            )
            .await?
            .is_some_and(|r| r.get(0)))
    }

    async fn set_members_read_secrets(&self, name: String, on: bool) -> Result<(), StoreError> {
        let n = self
            .client()
            .await?
            .execute(
                "UPDATE projects SET members_read_secrets = $2 WHERE name = $1",
                &[&name, &on],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("no project {name:?}")));
        }
        Ok(())
    }

    async fn project_exists(&self, name: String) -> Result<bool, StoreError> {
        project_exists(&self.client().await?, &name).await
    }

    async fn delete_project(&self, name: String) -> Result<(), StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        // Locked against a concurrent first deploy of a package into it.
        let found = tx
            .query_opt(
                "SELECT 1 FROM projects WHERE name = $1 FOR UPDATE",
                &[&name],
            )
            .await?;
        if found.is_none() {
            return Err(StoreError::NotFound(format!("no project {name:?}")));
        }
        let packages: i64 = tx
            .query_one("SELECT COUNT(*) FROM packages WHERE project = $1", &[&name])
            .await?
            .get(0);
        if packages > 0 {
            return Err(StoreError::Conflict(format!(
                "project {name:?} has {packages} package(s)"
            )));
        }
        tx.execute("DELETE FROM grants WHERE project = $1", &[&name])
            .await?;
        tx.execute("DELETE FROM executions WHERE project = $1", &[&name])
            .await?;
        tx.execute("DELETE FROM projects WHERE name = $1", &[&name])
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn add_version(&self, version: NewVersion) -> Result<Committed, StoreError> {
        let NewVersion {
            project,
            package,
            sha256,
            bytes,
            manifest,
            by,
            create_project,
        } = version;
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let now = now_ms();
        if !project_exists(&tx, &project).await? {
            if !create_project {
                return Err(StoreError::NotFound(format!("no project {project:?}")));
            }
            tx.execute(
                "INSERT INTO projects (name, created_at, created_by) VALUES ($1, $2, $3) \
                 ON CONFLICT (name) DO NOTHING",
                &[&project, &now, &by],
            )
            .await?;
        }
        let size = bytes.len() as i64;
        tx.execute(
            "INSERT INTO blobs (sha256, size, bytes) VALUES ($1, $2, $3) \
             ON CONFLICT (sha256) DO NOTHING",
            &[&sha256, &size, &bytes.as_slice()],
        )
        .await?;
        tx.execute(
            "INSERT INTO packages (project, name, current_version, next_version, created_at) \
             VALUES ($1, $2, NULL, 1, $3) ON CONFLICT (project, name) DO NOTHING",
            &[&project, &package, &now],
        )
        .await?;
        // The row lock makes a concurrent deploy of the same package, from any host, wait
        // for this one and then read the number after ours.
        let version: i64 = tx
            .query_one(
                "SELECT next_version FROM packages WHERE project = $1 AND name = $2 FOR UPDATE",
                &[&project, &package],
            )
            .await?
            .get(0);
        tx.execute(
            "INSERT INTO versions (project, package, version, sha256, size, manifest, \
             created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                &project, &package, &version, &sha256, &size, &manifest, &now, &by,
            ],
        )
        .await?;
        let generation = record_package_change(&tx, &project, &package).await?;
        tx.execute(
            "UPDATE packages SET current_version = $3::BIGINT, next_version = $3::BIGINT + 1, \
             generation = $4 \
             WHERE project = $1 AND name = $2",
            &[&project, &package, &version, &generation],
        )
        .await?;
        crate::faults::point("upload.before_commit");
        tx.commit().await?;
        Ok(Committed {
            version,
            generation,
        })
    }

    async fn list_packages(&self, project: String) -> Result<Vec<PackageRow>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT p.project, p.name, p.current_version, \
                   (SELECT COUNT(*) FROM versions v WHERE v.project = p.project \
                      AND v.package = p.name), p.created_at \
                 FROM packages p WHERE p.project = $1 ORDER BY p.name",
                &[&project],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| PackageRow {
                project: r.get(0),
                name: r.get(1),
                current_version: r.get(2),
                versions: r.get(3),
                created_at: r.get(4),
            })
            .collect())
    }

    async fn list_versions(
        &self,
        project: String,
        package: String,
    ) -> Result<(PackageRow, Vec<VersionRow>), StoreError> {
        let c = self.client().await?;
        let pkg = c
            .query_opt(
                "SELECT project, name, current_version, created_at FROM packages \
                 WHERE project = $1 AND name = $2",
                &[&project, &package],
            )
            .await?
            .ok_or_else(|| no_package(&project, &package))?;
        let versions: Vec<VersionRow> = c
            .query(
                &format!("{VERSION_COLUMNS} WHERE project = $1 AND package = $2 ORDER BY version"),
                &[&project, &package],
            )
            .await?
            .iter()
            .map(version_row)
            .collect();
        Ok((
            PackageRow {
                project: pkg.get(0),
                name: pkg.get(1),
                current_version: pkg.get(2),
                versions: versions.len() as i64,
                created_at: pkg.get(3),
            },
            versions,
        ))
    }

    async fn version_with_blob(
        &self,
        project: String,
        package: String,
        version: i64,
    ) -> Result<(VersionRow, Vec<u8>), StoreError> {
        let c = self.client().await?;
        let row = c
            .query_opt(
                &format!("{VERSION_COLUMNS} WHERE project = $1 AND package = $2 AND version = $3"),
                &[&project, &package, &version],
            )
            .await?
            .map(|r| version_row(&r))
            .ok_or_else(|| no_version(&project, &package, version))?;
        let bytes: Vec<u8> = c
            .query_one("SELECT bytes FROM blobs WHERE sha256 = $1", &[&row.sha256])
            .await?
            .get(0);
        Ok((row, bytes))
    }

    async fn set_current(
        &self,
        project: String,
        package: String,
        version: i64,
    ) -> Result<i64, StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let exists: bool = tx
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM versions WHERE project = $1 AND package = $2 \
                 AND version = $3)",
                &[&project, &package, &version],
            )
            .await?
            .get(0);
        if !exists {
            return Err(no_version(&project, &package, version));
        }
        let generation = record_package_change(&tx, &project, &package).await?;
        tx.execute(
            "UPDATE packages SET current_version = $3, generation = $4 \
             WHERE project = $1 AND name = $2",
            &[&project, &package, &version, &generation],
        )
        .await?;
        tx.commit().await?;
        Ok(generation)
    }

    async fn delete_package(
        &self,
        project: String,
        package: String,
    ) -> Result<(i64, Vec<String>), StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let n = tx
            .execute(
                "DELETE FROM packages WHERE project = $1 AND name = $2",
                &[&project, &package],
            )
            .await?;
        if n == 0 {
            return Err(no_package(&project, &package));
        }
        let gone = drop_unused_blobs(&tx).await?;
        let generation = record_package_change(&tx, &project, &package).await?;
        tx.commit().await?;
        Ok((generation, gone))
    }

    async fn prune_versions(
        &self,
        project: String,
        package: String,
        keep: u32,
    ) -> Result<Vec<String>, StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        tx.execute(
            "DELETE FROM versions WHERE project = $1 AND package = $2 \
             AND version NOT IN (SELECT version FROM versions \
               WHERE project = $1 AND package = $2 ORDER BY version DESC LIMIT $3) \
             AND version IS DISTINCT FROM (SELECT current_version FROM packages \
               WHERE project = $1 AND name = $2)",
            &[&project, &package, &i64::from(keep)],
        )
        .await?;
        let gone = drop_unused_blobs(&tx).await?;
        tx.commit().await?;
        Ok(gone)
    }

    async fn current_versions(&self) -> Result<Vec<Current>, StoreError> {
        Ok(self
            .client()
            .await?
            .query(
                &format!("{CURRENT_COLUMNS} ORDER BY v.project, v.package"),
                &[],
            )
            .await?
            .iter()
            .map(current_row)
            .collect())
    }

    async fn current(
        &self,
        project: String,
        package: String,
    ) -> Result<Option<Current>, StoreError> {
        Ok(self
            .client()
            .await?
            .query_opt(
                &format!("{CURRENT_COLUMNS} WHERE p.project = $1 AND p.name = $2"),
                &[&project, &package],
            )
            .await?
            .map(|r| current_row(&r)))
    }

    async fn blob(&self, sha256: String) -> Result<Vec<u8>, StoreError> {
        self.client()
            .await?
            .query_opt("SELECT bytes FROM blobs WHERE sha256 = $1", &[&sha256])
            .await?
            .map(|r| r.get(0))
            .ok_or_else(|| StoreError::NotFound(format!("no blob {sha256}")))
    }

    async fn blob_names(&self) -> Result<Vec<String>, StoreError> {
        Ok(self
            .client()
            .await?
            .query("SELECT sha256 FROM blobs", &[])
            .await?
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect())
    }
}

/// Deletes the blobs no version uses; the sha256 of each.
async fn drop_unused_blobs(tx: &Transaction<'_>) -> Result<Vec<String>, StoreError> {
    Ok(tx
        .query(
            "DELETE FROM blobs b WHERE NOT EXISTS \
             (SELECT 1 FROM versions v WHERE v.sha256 = b.sha256) RETURNING b.sha256",
            &[],
        )
        .await?
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect())
}
