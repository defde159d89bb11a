//! Profiles saved by `edgeward login`: an API URL and a token per name, in
//! `<config dir>/edgeward/profiles.toml` (`$XDG_CONFIG_HOME` or `~/.config` on Linux), the
//! directory 0700 and the file 0600, replaced whole on every change.

use super::client::ClientError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// One profile.
#[derive(Clone, Serialize, Deserialize)]
pub struct Profile {
    /// The API's base URL.
    pub api: String,
    /// The token.
    pub token: String,
}

impl std::fmt::Debug for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Profile")
            .field("api", &self.api)
            .field("token", &"***")
            .finish()
    }
}

/// The file's contents.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Profiles {
    /// The profile used when none is named.
    #[serde(default)]
    pub current: Option<String>,
    /// Every profile, by name.
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
}

fn io(what: &str, e: impl std::fmt::Display) -> ClientError {
    ClientError {
        code: "io".into(),
        message: format!("{what}: {e}"),
    }
}

/// Where profiles are kept.
pub fn path() -> Result<PathBuf, ClientError> {
    let dir = dirs::config_dir().ok_or_else(|| {
        io(
            "profiles",
            "no config directory (set HOME or XDG_CONFIG_HOME)",
        )
    })?;
    Ok(dir.join("edgeward").join("profiles.toml"))
}

impl Profiles {
    /// The saved profiles (none if the file does not exist).
    pub fn load() -> Result<Profiles, ClientError> {
        let path = path()?;
        match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text)
                .map_err(|e| io(&path.display().to_string(), e.message().to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Profiles::default()),
            Err(e) => Err(io(&path.display().to_string(), e)),
        }
    }

    /// Writes the profiles: to a new 0600 file beside the old one, then renamed over it.
    pub fn save(&self) -> Result<PathBuf, ClientError> {
        use std::io::Write as _;
        use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
        let path = path()?;
        let dir = path.parent().unwrap_or(&path).to_path_buf();
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| io(&dir.display().to_string(), e))?;
        let text = toml::to_string(self).map_err(|e| io("profiles", e))?;
        let tmp = dir.join(format!(".profiles.toml.{}", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| io(&tmp.display().to_string(), e))?;
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| io(&tmp.display().to_string(), e))?;
        std::fs::rename(&tmp, &path).map_err(|e| io(&path.display().to_string(), e))?;
        Ok(path)
    }

    /// The profile `name` names, or the current one; `None` when neither exists. A name
    /// that no profile has is an error.
    pub fn pick(&self, name: Option<&str>) -> Result<Option<(String, Profile)>, ClientError> {
        match name {
            Some(n) => match self.profiles.get(n) {
                Some(p) => Ok(Some((n.to_string(), p.clone()))),
                None => Err(ClientError {
                    code: "not_found".into(),
                    message: format!(
                        "no profile {n:?} (saved: {}); run `edgeward login --profile {n} --api URL`",
                        if self.profiles.is_empty() {
                            "none".to_string()
                        } else {
                            self.profiles.keys().cloned().collect::<Vec<_>>().join(", ")
                        }
                    ),
                }),
            },
            None => Ok(self
                .current
                .as_ref()
                .and_then(|c| self.profiles.get(c).map(|p| (c.clone(), p.clone())))),
        }
    }
}
