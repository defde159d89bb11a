//! The project file: `edgeward.toml` with a `[package]` table beside the manifest's sections.
//!
//! ```toml
//! [package]
//! name = "acme/app"                                     # where `deploy` and `dev` put it
//! build = "cargo build --release --target wasm32-wasip2"   # run in the file's directory
//! component = "target/wasm32-wasip2/release/app.wasm"   # what the build makes
//!
//! secrets = ["GREETING"]                                # the rest is the manifest
//! [env]
//! MODE = "production"
//! ```
//!
//! `edgeward build`, `edgeward deploy` with no arguments and `edgeward dev` read it. The
//! `[package]` table stays on this side: the server gets the rest, as the manifest.

use super::client::{ClientError, err};
use crate::code::ErrorCode;
use std::path::{Path, PathBuf};

/// The file `build`, `deploy` and `dev` look for in the current directory.
pub const FILE_NAME: &str = "edgeward.toml";

/// A project file, read.
#[derive(Debug, Clone)]
pub struct Project {
    /// The directory holding the file: builds run there, paths are relative to it.
    pub dir: PathBuf,
    /// `[package] name`: `project/package`.
    pub name: Option<String>,
    /// `[package] build`: a shell command.
    pub build: Option<String>,
    /// `[package] component`, joined to `dir`.
    pub component: Option<PathBuf>,
    /// The file without `[package]`: the manifest sent with each deploy (TOML).
    pub manifest: Vec<u8>,
}

/// The `[package]` table.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PackageTable {
    name: Option<String>,
    build: Option<String>,
    component: Option<PathBuf>,
}

impl Project {
    /// Reads `file`, or `./edgeward.toml` when none is given.
    pub fn load(file: Option<&Path>) -> Result<Project, ClientError> {
        let path = file.unwrap_or(Path::new(FILE_NAME));
        let text = std::fs::read_to_string(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound && file.is_none() {
                err(
                    ErrorCode::BadEntry,
                    format!(
                        "no {FILE_NAME} here: run this in a project directory (`edgeward new` \
                         makes one), give -f FILE, or name the package and component"
                    ),
                )
            } else {
                err(ErrorCode::Io, format!("{}: {e}", path.display()))
            }
        })?;
        Project::parse(path, &text)
    }

    /// Parses the text of the project file at `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Project, ClientError> {
        let bad = |m: String| err(ErrorCode::BadManifest, format!("{}: {m}", path.display()));
        let mut table: toml::Table = toml::from_str(text).map_err(|e| bad(e.message().into()))?;
        let package = match table.remove("package") {
            Some(value) => value
                .try_into::<PackageTable>()
                .map_err(|e| bad(format!("[package]: {}", e.message())))?,
            None => PackageTable::default(),
        };
        let manifest = toml::to_string(&table).map_err(|e| bad(e.to_string()))?;
        // The manifest is checked as the server will, so a mistake shows before a build.
        crate::manifest::Manifest::parse(manifest.as_bytes()).map_err(|e| bad(e.0))?;
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if let Some(name) = &package.name {
            let (project, package) = super::split_target(name)
                .map_err(|e| bad(format!("[package] name: {}", e.message)))?;
            crate::names::Name::parse("project", project)
                .and_then(|_| crate::names::Name::parse("package", package))
                .map_err(|e| bad(format!("[package] name: {}", e.0)))?;
        }
        Ok(Project {
            component: package.component.map(|c| dir.join(c)),
            dir,
            name: package.name,
            build: package.build,
            manifest: manifest.into_bytes(),
        })
    }

    /// Runs the build command in the project's directory, its output on stderr (stdout stays
    /// the command's result). No `build` is nothing to do. Dropping the future kills the
    /// build (`dev` stopping mid-build leaves nothing running).
    pub async fn run_build(&self) -> Result<(), ClientError> {
        let Some(command) = &self.build else {
            return Ok(());
        };
        eprintln!("building: {command}");
        let started = std::time::Instant::now();
        let stderr = std::io::stderr();
        let to_stderr = std::os::fd::AsFd::as_fd(&stderr)
            .try_clone_to_owned()
            .map_err(|e| err(ErrorCode::Io, format!("stderr: {e}")))?;
        let status = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(command)
            .current_dir(&self.dir)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::from(to_stderr))
            .kill_on_drop(true)
            .status()
            .await
            .map_err(|e| err(ErrorCode::Io, format!("cannot run sh: {e}")))?;
        if !status.success() {
            return Err(err(
                ErrorCode::BuildFailed,
                format!("`{command}` failed ({status}) in {}", self.dir.display()),
            ));
        }
        eprintln!("built in {:.1} s", started.elapsed().as_secs_f64());
        Ok(())
    }

    /// The component the build makes.
    pub fn component(&self) -> Result<&Path, ClientError> {
        self.component.as_deref().ok_or_else(|| {
            err(
                ErrorCode::BadEntry,
                "the project file's [package] has no `component` (the .wasm its build makes)",
            )
        })
    }

    /// `project/package`.
    pub fn target(&self) -> Result<&str, ClientError> {
        self.name.as_deref().ok_or_else(|| {
            err(
                ErrorCode::BadEntry,
                "the project file's [package] has no `name` (\"project/package\"); add one or \
                 name the target on the command line",
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_package_table_stays_out_of_the_manifest() {
        let project = Project::parse(
            Path::new("dir/edgeward.toml"),
            "secrets = [\"A\"]\n[package]\nname = \"acme/app\"\nbuild = \"make\"\n\
             component = \"out/app.wasm\"\n[env]\nMODE = \"x\"\n",
        )
        .unwrap();
        assert_eq!(project.name.as_deref(), Some("acme/app"));
        assert_eq!(project.build.as_deref(), Some("make"));
        assert_eq!(project.component, Some(PathBuf::from("dir/out/app.wasm")));
        let manifest = String::from_utf8(project.manifest).unwrap();
        assert!(
            !manifest.contains("package") && !manifest.contains("make"),
            "{manifest}"
        );
        let parsed = crate::manifest::Manifest::parse(manifest.as_bytes()).unwrap();
        assert_eq!(parsed.env.vars.get("MODE").map(String::as_str), Some("x"));
    }

    #[test]
    fn mistakes_are_bad_manifest_with_the_file_named() {
        for text in [
            "[package]\nnmae = \"acme/app\"\n",
            "[package]\nname = \"acme\"\n",
            "[package]\nname = \"Acme/app\"\n",
            "secrest = [\"A\"]\n",
            "[package\n",
        ] {
            let e = Project::parse(Path::new("p/edgeward.toml"), text).unwrap_err();
            assert_eq!(e.code, "bad_manifest", "{text}: {e}");
            assert!(e.message.starts_with("p/edgeward.toml: "), "{e}");
        }
    }
}
