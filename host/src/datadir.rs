//! The data directory: every file Edgeward keeps outside SQLite.
//!
//! Files are opened through a `cap_std::fs::Dir` rooted at the data directory, so a path built
//! from a name can never reach outside it, and written atomically (temp file, fsync, rename,
//! fsync of the directory) so a crash leaves either the old file or the new one.

use cap_std::ambient_authority;
use cap_std::fs::{Dir, OpenOptions, OpenOptionsExt, PermissionsExt};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The SQLite file under the data directory.
pub const DB_FILE: &str = "edgeward.db";
/// Where a running server writes its real addresses, for the CLI.
pub const SERVER_FILE: &str = "server.json";

/// The lock file that keeps a second server off the directory.
pub const LOCK_FILE: &str = "lock";

/// The data directory, opened once.
#[derive(Debug)]
pub struct DataDir {
    path: PathBuf,
    dir: Dir,
}

impl DataDir {
    /// Opens `path`, creating it if it does not exist. The directory is made 0700 whatever it
    /// was: it holds keys, tokens, the metadata store and execution output.
    pub fn open(path: &Path) -> io::Result<DataDir> {
        if !path.exists() {
            std::fs::create_dir_all(path)?;
        }
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
        let dir = Dir::open_ambient_dir(path, ambient_authority())?;
        let path = std::fs::canonicalize(path)?;
        Ok(DataDir { path, dir })
    }

    /// Makes every file directly in the data directory and in `subdirs` mode 0600 and those
    /// sub-directories 0700, whatever they were (a directory prepared by hand, an older
    /// version, a umask of 022).
    pub fn restrict(&self, subdirs: &[&str]) -> io::Result<()> {
        let restrict_in = |dir: &Dir| -> io::Result<()> {
            for entry in dir.entries()? {
                let entry = entry?;
                if entry.file_type()?.is_file() {
                    dir.set_permissions(
                        entry.file_name(),
                        cap_std::fs::Permissions::from_mode(0o600),
                    )?;
                }
            }
            Ok(())
        };
        restrict_in(&self.dir)?;
        for sub in subdirs {
            match self.dir.open_dir(sub) {
                Ok(d) => {
                    self.dir
                        .set_permissions(sub, cap_std::fs::Permissions::from_mode(0o700))?;
                    restrict_in(&d)?;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Takes an exclusive lock on the data directory (`<dir>/lock`, held until the returned
    /// file is dropped or the process ends), so two servers never run on one directory.
    pub fn lock(&self) -> io::Result<std::fs::File> {
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).mode(0o600);
        let file = self.dir.open_with(LOCK_FILE, &options)?.into_std();
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(file),
            Err(rustix::io::Errno::WOULDBLOCK) => Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                format!(
                    "another edgeward server is running on the data directory {} (it holds \
                     {LOCK_FILE}); stop it first, or give this one its own --data-dir",
                    self.path.display()
                ),
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// The directory's absolute path, for messages and for SQLite.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Creates sub-directory `rel` (and its parents) if missing, mode 0700.
    pub fn ensure_dir(&self, rel: &str) -> io::Result<()> {
        self.dir.create_dir_all(rel)?;
        self.dir
            .set_permissions(rel, cap_std::fs::Permissions::from_mode(0o700))
    }

    /// Reads `rel`, `None` if it does not exist.
    pub fn read(&self, rel: &str) -> io::Result<Option<Vec<u8>>> {
        match self.dir.read(rel) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Opens `rel` for reading, `None` if it does not exist.
    pub fn open_file(&self, rel: &str) -> io::Result<Option<std::fs::File>> {
        match self.dir.open(rel) {
            Ok(file) => Ok(Some(file.into_std())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Whether `rel` exists.
    pub fn exists(&self, rel: &str) -> bool {
        self.dir.exists(rel)
    }

    /// Removes `rel` if it exists.
    pub fn remove(&self, rel: &str) -> io::Result<()> {
        match self.dir.remove_file(rel) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Removes temp files a crash left behind in `rel` (a sub-directory, or `.`).
    pub fn sweep_temp_files(&self, rel: &str) -> io::Result<usize> {
        let dir = match self.dir.open_dir(rel) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e),
        };
        let mut removed = 0;
        for entry in dir.entries()? {
            let entry = entry?;
            if entry.file_name().to_string_lossy().contains(".tmp-") {
                dir.remove_file(entry.file_name())?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Writes `contents` to `rel` atomically with permissions `mode`.
    pub fn write_atomic(&self, rel: &str, contents: &[u8], mode: u32) -> io::Result<()> {
        let tmp = format!("{rel}.tmp-{}", uuid::Uuid::now_v7().simple());
        let result = (|| {
            let mut options = OpenOptions::new();
            options.write(true).create_new(true).mode(mode);
            let mut file = self.dir.open_with(&tmp, &options)?;
            file.write_all(contents)?;
            // `mode` is filtered by the umask at creation; set it exactly.
            file.set_permissions(cap_std::fs::Permissions::from_mode(mode))?;
            file.sync_all()?;
            drop(file);
            self.dir.rename(&tmp, &self.dir, rel)?;
            self.sync_parent(rel)
        })();
        if result.is_err() {
            let _ = self.dir.remove_file(&tmp);
        }
        result
    }

    fn sync_parent(&self, rel: &str) -> io::Result<()> {
        let parent = Path::new(rel)
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        // A read-only handle: the `O_PATH` handle `open_dir` gives cannot be fsync'ed.
        let mut options = OpenOptions::new();
        options.read(true);
        self.dir.open_with(parent, &options)?.sync_all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn atomic_write_sets_mode_and_stays_inside() {
        let tmp = tempfile::tempdir().unwrap();
        let dd = DataDir::open(&tmp.path().join("data")).unwrap();
        dd.write_atomic("admin.token", b"secret", 0o600).unwrap();
        let meta = std::fs::metadata(tmp.path().join("data/admin.token")).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(dd.read("admin.token").unwrap().unwrap(), b"secret");
        // Nothing outside the root is reachable, whatever the name.
        assert!(dd.write_atomic("../escape", b"x", 0o600).is_err());
        assert!(dd.read("../data/admin.token").is_err());
        assert!(!tmp.path().join("escape").exists());
        // No temp files are left behind.
        let names: Vec<_> = std::fs::read_dir(tmp.path().join("data"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("admin.token")]);
    }
}
