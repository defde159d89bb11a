//! Projects, packages, versions and blobs on SQLite ([`ProjectStore`]).

use super::*;

#[async_trait::async_trait]
impl ProjectStore for SqliteStore {
    /// Creates a project; `AlreadyExists` if it exists.
    async fn create_project(&self, name: String, by: String) -> Result<(), StoreError> {
        self.call(move |c| {
            let n = c.execute(
                "INSERT INTO projects (name, created_at, created_by) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (name) DO NOTHING",
                params![name, now_ms(), by],
            )?;
            if n == 0 {
                return Err(StoreError::AlreadyExists(format!(
                    "project {name:?} already exists"
                )));
            }
            Ok(())
        })
        .await
    }

    /// All projects, by name.
    async fn list_projects(&self) -> Result<Vec<ProjectRow>, StoreError> {
        self.call(|c| {
            let mut st = c.prepare(
                "SELECT name, created_at, created_by, members_read_secrets FROM projects \
                 ORDER BY name",
            )?;
            let rows = st.query_map([], |r| {
                Ok(ProjectRow {
                    name: r.get(0)?,
                    created_at: r.get(1)?,
                    created_by: r.get(2)?,
                    members_read_secrets: r.get(3)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    /// Whether project `name` exists.
    async fn project_exists(&self, name: String) -> Result<bool, StoreError> {
        self.call(move |c| Ok(project_exists(c, &name)?)).await
    }

    async fn members_read_secrets(&self, name: String) -> Result<bool, StoreError> {
        self.call(move |c| {
            Ok(c.query_row(
                "SELECT members_read_secrets FROM projects WHERE name = ?1",
                [&name],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(false))
        })
        .await
    }

    async fn delete_project(&self, name: String) -> Result<(), StoreError> {
        self.call(move |c| {
            let tx = c.transaction()?;
            if !project_exists(&tx, &name)? {
                return Err(StoreError::NotFound(format!("no project {name:?}")));
            }
            let packages: i64 = tx.query_row(
                "SELECT COUNT(*) FROM packages WHERE project = ?1",
                [&name],
                |r| r.get(0),
            )?;
            if packages > 0 {
                return Err(StoreError::Conflict(format!(
                    "project {name:?} has {packages} package(s)"
                )));
            }
            tx.execute("DELETE FROM grants WHERE project = ?1", [&name])?;
            tx.execute("DELETE FROM executions WHERE project = ?1", [&name])?;
            tx.execute("DELETE FROM projects WHERE name = ?1", [&name])?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn set_members_read_secrets(&self, name: String, on: bool) -> Result<(), StoreError> {
        self.call(move |c| {
            let n = c.execute(
                "UPDATE projects SET members_read_secrets = ?2 WHERE name = ?1",
                params![name, on],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("no project {name:?}")));
            }
            Ok(())
        })
        .await
    }

    /// Records a new version of `project/package` with its blob and makes it current, in one
    /// transaction. Creates the project (when `create_project`) and the package if missing.
    /// Returns the new version number.
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
        let (p, k) = (project.clone(), package.clone());
        let committed = self
            .call(move |c| {
                let tx = c.transaction()?;
                let now = now_ms();
                if !project_exists(&tx, &project)? {
                    if !create_project {
                        return Err(StoreError::NotFound(format!("no project {project:?}")));
                    }
                    tx.execute(
                        "INSERT INTO projects (name, created_at, created_by) VALUES (?1, ?2, ?3)",
                        params![project, now, by],
                    )?;
                }
                tx.execute(
                    "INSERT INTO blobs (sha256, size, bytes) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (sha256) DO NOTHING",
                    params![sha256, bytes.len() as i64, bytes.as_slice()],
                )?;
                tx.execute(
                "INSERT INTO packages (project, name, current_version, next_version, created_at) \
                 VALUES (?1, ?2, NULL, 1, ?3) ON CONFLICT (project, name) DO NOTHING",
                params![project, package, now],
            )?;
                let version: i64 = tx.query_row(
                    "SELECT next_version FROM packages WHERE project = ?1 AND name = ?2",
                    params![project, package],
                    |r| r.get(0),
                )?;
                tx.execute(
                    "INSERT INTO versions (project, package, version, sha256, size, manifest, \
                 created_at, created_by) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![
                        project,
                        package,
                        version,
                        sha256,
                        bytes.len() as i64,
                        manifest,
                        now,
                        by
                    ],
                )?;
                let generation = record_change(&tx, "package", &project, &package)?;
                tx.execute(
                    "UPDATE packages SET current_version = ?3, next_version = ?3 + 1, \
                 generation = ?4 WHERE project = ?1 AND name = ?2",
                    params![project, package, version, generation],
                )?;
                crate::faults::point("upload.before_commit");
                tx.commit()?;
                Ok(Committed {
                    version,
                    generation,
                })
            })
            .await?;
        self.announce_package(p, k, committed.generation);
        Ok(committed)
    }

    /// The packages of `project`.
    async fn list_packages(&self, project: String) -> Result<Vec<PackageRow>, StoreError> {
        self.call(move |c| {
            let mut st = c.prepare(
                "SELECT p.project, p.name, p.current_version, \
                   (SELECT COUNT(*) FROM versions v WHERE v.project = p.project \
                      AND v.package = p.name), p.created_at \
                 FROM packages p WHERE p.project = ?1 ORDER BY p.name",
            )?;
            let rows = st.query_map([project], |r| {
                Ok(PackageRow {
                    project: r.get(0)?,
                    name: r.get(1)?,
                    current_version: r.get(2)?,
                    versions: r.get(3)?,
                    created_at: r.get(4)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    /// The versions of `project/package`, oldest first; `NotFound` if there is no such package.
    async fn list_versions(
        &self,
        project: String,
        package: String,
    ) -> Result<(PackageRow, Vec<VersionRow>), StoreError> {
        self.call(move |c| {
            let pkg = c
                .query_row(
                    "SELECT project, name, current_version, created_at FROM packages \
                     WHERE project = ?1 AND name = ?2",
                    params![project, package],
                    |r| {
                        Ok(PackageRow {
                            project: r.get(0)?,
                            name: r.get(1)?,
                            current_version: r.get(2)?,
                            versions: 0,
                            created_at: r.get(3)?,
                        })
                    },
                )
                .optional()?
                .ok_or_else(|| no_package(&project, &package))?;
            let mut st = c.prepare(&format!(
                "{VERSION_COLUMNS} WHERE project = ?1 AND package = ?2 ORDER BY version"
            ))?;
            let versions: Vec<VersionRow> = st
                .query_map(params![project, package], version_row)?
                .collect::<Result<_, _>>()?;
            Ok((
                PackageRow {
                    versions: versions.len() as i64,
                    ..pkg
                },
                versions,
            ))
        })
        .await
    }

    /// One version with its blob.
    async fn version_with_blob(
        &self,
        project: String,
        package: String,
        version: i64,
    ) -> Result<(VersionRow, Vec<u8>), StoreError> {
        self.call(move |c| {
            let row = c
                .query_row(
                    &format!(
                        "{VERSION_COLUMNS} WHERE project = ?1 AND package = ?2 AND version = ?3"
                    ),
                    params![project, package, version],
                    version_row,
                )
                .optional()?
                .ok_or_else(|| {
                    StoreError::NotFound(format!(
                        "package {project}/{package} has no version {version}"
                    ))
                })?;
            let bytes: Vec<u8> = c.query_row(
                "SELECT bytes FROM blobs WHERE sha256 = ?1",
                [&row.sha256],
                |r| r.get(0),
            )?;
            Ok((row, bytes))
        })
        .await
    }

    /// Points `project/package` at `version`.
    async fn set_current(
        &self,
        project: String,
        package: String,
        version: i64,
    ) -> Result<i64, StoreError> {
        let (p, k) = (project.clone(), package.clone());
        let generation = self
            .call(move |c| {
                let tx = c.transaction()?;
                let exists: bool = tx.query_row(
                    "SELECT EXISTS (SELECT 1 FROM versions WHERE project = ?1 AND package = ?2 \
                 AND version = ?3)",
                    params![project, package, version],
                    |r| r.get(0),
                )?;
                if !exists {
                    return Err(StoreError::NotFound(format!(
                        "package {project}/{package} has no version {version}"
                    )));
                }
                let generation = record_change(&tx, "package", &project, &package)?;
                tx.execute(
                    "UPDATE packages SET current_version = ?3, generation = ?4 \
                 WHERE project = ?1 AND name = ?2",
                    params![project, package, version, generation],
                )?;
                tx.commit()?;
                Ok(generation)
            })
            .await?;
        self.announce_package(p, k, generation);
        Ok(generation)
    }

    /// Deletes `project/package`, its versions, and blobs no other version uses.
    async fn delete_package(
        &self,
        project: String,
        package: String,
    ) -> Result<(i64, Vec<String>), StoreError> {
        let (p, k) = (project.clone(), package.clone());
        let (generation, gone) = self
            .call(move |c| {
                let tx = c.transaction()?;
                let n = tx.execute(
                    "DELETE FROM packages WHERE project = ?1 AND name = ?2",
                    params![project, package],
                )?;
                if n == 0 {
                    return Err(no_package(&project, &package));
                }
                let gone = drop_unused_blobs(&tx)?;
                let generation = record_change(&tx, "package", &project, &package)?;
                tx.commit()?;
                Ok((generation, gone))
            })
            .await?;
        self.announce_package(p, k, generation);
        Ok((generation, gone))
    }

    async fn prune_versions(
        &self,
        project: String,
        package: String,
        keep: u32,
    ) -> Result<Vec<String>, StoreError> {
        self.call(move |c| {
            let tx = c.transaction()?;
            tx.execute(
                "DELETE FROM versions WHERE project = ?1 AND package = ?2 \
                 AND version NOT IN (SELECT version FROM versions \
                   WHERE project = ?1 AND package = ?2 ORDER BY version DESC LIMIT ?3) \
                 AND version IS NOT (SELECT current_version FROM packages \
                   WHERE project = ?1 AND name = ?2)",
                params![project, package, keep],
            )?;
            let gone = drop_unused_blobs(&tx)?;
            tx.commit()?;
            Ok(gone)
        })
        .await
    }

    /// The current version of every package, for loading at start.
    async fn current_versions(&self) -> Result<Vec<Current>, StoreError> {
        self.call(|c| {
            let mut st = c.prepare(&format!("{CURRENT_COLUMNS} ORDER BY v.project, v.package"))?;
            let rows = st.query_map([], current_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn current(
        &self,
        project: String,
        package: String,
    ) -> Result<Option<Current>, StoreError> {
        self.call(move |c| {
            Ok(c.query_row(
                &format!("{CURRENT_COLUMNS} WHERE p.project = ?1 AND p.name = ?2"),
                params![project, package],
                current_row,
            )
            .optional()?)
        })
        .await
    }

    /// The bytes of blob `sha256`.
    async fn blob(&self, sha256: String) -> Result<Vec<u8>, StoreError> {
        self.call(move |c| {
            c.query_row(
                "SELECT bytes FROM blobs WHERE sha256 = ?1",
                [&sha256],
                |r| r.get(0),
            )
            .optional()?
            .ok_or_else(|| StoreError::NotFound(format!("no blob {sha256}")))
        })
        .await
    }

    async fn blob_names(&self) -> Result<Vec<String>, StoreError> {
        self.read(|c| {
            Ok(c.prepare("SELECT sha256 FROM blobs")?
                .query_map([], |r| r.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }
}

/// Deletes the blobs no version uses; the sha256 of each.
fn drop_unused_blobs(tx: &rusqlite::Transaction<'_>) -> Result<Vec<String>, StoreError> {
    Ok(tx
        .prepare(
            "DELETE FROM blobs WHERE sha256 NOT IN (SELECT sha256 FROM versions) RETURNING sha256",
        )?
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?)
}
