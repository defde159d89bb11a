//! `edgeward new`: a project directory, ready to build and deploy, from templates built into
//! the binary (`host/templates/`): the function's source in Rust, Python or JavaScript, its
//! manifest (`edgeward.toml`), a `.gitignore`, example local secrets (`dev-secrets.json`) and a
//! README that says how to build, deploy and call it.
//!
//! Python and JavaScript projects carry the thin helper module of their language
//! (`sdk/python/edgeward.py`, `sdk/js/edgeward.js`) and the WIT package (`wit/`), so they
//! build with their language's componentizer and nothing of Edgeward's source. A Rust project
//! depends on the guest SDK by path: the SDK beside the source this binary was built from, or
//! `--sdk-path`.

use super::client::{ClientError, err};
use crate::code::ErrorCode;
use crate::names::Name;
use clap::{Args, ValueEnum};
use std::path::{Path, PathBuf};

/// What `edgeward new` makes.
#[derive(Debug, Args)]
pub struct NewArgs {
    /// The function's name: the directory made here, and the package it deploys as
    /// (1 to 63 characters of a-z, 0-9 and '-').
    pub name: String,
    /// What the function starts as: `http` answers a request, `secrets` reads a secret,
    /// `credentials` calls an API with a credential the host attaches.
    #[arg(long, value_enum, default_value_t = Template::Http)]
    pub template: Template,
    /// The language.
    #[arg(long, value_enum, default_value_t = Lang::Rust)]
    pub lang: Lang,
    /// The Edgeward project it deploys to.
    #[arg(long, default_value = "dev")]
    pub project: String,
    /// Rust only: the guest SDK's directory (`guest-sdk/` of an Edgeward checkout), for the
    /// new crate's path dependency. Default: the one beside the source this binary was built
    /// from, when it is still there.
    #[arg(long, value_name = "DIR")]
    pub sdk_path: Option<PathBuf>,
}

/// A starting point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Template {
    /// Answers every request with a greeting.
    Http,
    /// Reads the secret `GREETING` (package, project, then platform scope).
    Secrets,
    /// Calls an API with the credential `API_KEY`, which the host attaches.
    Credentials,
}

/// A guest language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Lang {
    /// Rust, with the `edgeward-sdk` crate (`cargo`, target wasm32-wasip2).
    Rust,
    /// Python, through componentize-py (PyPI).
    Python,
    /// JavaScript, through componentize-js (npm).
    Js,
}

impl Lang {
    fn label(self) -> &'static str {
        match self {
            Lang::Rust => "Rust",
            Lang::Python => "Python",
            Lang::Js => "JavaScript",
        }
    }

    /// The command that builds the component, run in the project directory.
    pub fn build_command(self) -> &'static str {
        match self {
            Lang::Rust => "cargo build --release --target wasm32-wasip2",
            Lang::Python => {
                "componentize-py -d wit -w edgeward:platform/function componentize app -o app.wasm"
            }
            Lang::Js => {
                "node --single-threaded-gc edgeward-build.mjs app.js --wit wit --world-name function -o app.wasm"
            }
        }
    }
}

fn source(lang: Lang, template: Template) -> &'static str {
    match (lang, template) {
        (Lang::Rust, Template::Http) => include_str!("../../templates/rust/http.rs"),
        (Lang::Rust, Template::Secrets) => include_str!("../../templates/rust/secrets.rs"),
        (Lang::Rust, Template::Credentials) => include_str!("../../templates/rust/credentials.rs"),
        (Lang::Python, Template::Http) => include_str!("../../templates/python/http.py"),
        (Lang::Python, Template::Secrets) => include_str!("../../templates/python/secrets.py"),
        (Lang::Python, Template::Credentials) => {
            include_str!("../../templates/python/credentials.py")
        }
        (Lang::Js, Template::Http) => include_str!("../../templates/js/http.js"),
        (Lang::Js, Template::Secrets) => include_str!("../../templates/js/secrets.js"),
        (Lang::Js, Template::Credentials) => include_str!("../../templates/js/credentials.js"),
    }
}

fn manifest(template: Template) -> &'static str {
    match template {
        Template::Http => include_str!("../../templates/common/http.toml"),
        Template::Secrets => include_str!("../../templates/common/secrets.toml"),
        Template::Credentials => include_str!("../../templates/common/credentials.toml"),
    }
}

fn dev_secrets(template: Template) -> &'static str {
    match template {
        Template::Http | Template::Secrets => {
            include_str!("../../templates/common/dev-secrets.json")
        }
        Template::Credentials => {
            include_str!("../../templates/common/dev-secrets-credentials.json")
        }
    }
}

/// The SDK directory a Rust project points at: `--sdk-path`, else the SDK beside this
/// binary's source, if it is still there. Absolute, so the project builds wherever it moves.
fn sdk_dir(given: Option<&Path>) -> Result<PathBuf, ClientError> {
    let built_from = Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-sdk");
    let (dir, from_flag) = match given {
        Some(dir) => (dir.to_path_buf(), true),
        None => (built_from, false),
    };
    let found = std::fs::read_to_string(dir.join("Cargo.toml"))
        .is_ok_and(|text| text.contains("name = \"edgeward-sdk\""));
    if !found {
        let message = if from_flag {
            format!(
                "--sdk-path {}: no edgeward-sdk crate there (expected the guest-sdk/ directory \
                 of an Edgeward checkout, holding its Cargo.toml)",
                dir.display()
            )
        } else {
            "the Rust guest SDK is not where this binary was built from; pass --sdk-path \
             DIR (the guest-sdk/ directory of an Edgeward checkout)"
                .to_string()
        };
        return Err(bad_entry(message));
    }
    std::fs::canonicalize(&dir).map_err(|e| io_error(&dir, e))
}

fn bad_entry(message: String) -> ClientError {
    err(ErrorCode::BadEntry, message)
}

fn io_error(path: &Path, e: std::io::Error) -> ClientError {
    err(ErrorCode::Io, format!("{}: {e}", path.display()))
}

/// The files of a new project: (path in the project, contents).
pub fn files(
    name: &str,
    project: &str,
    lang: Lang,
    template: Template,
    sdk: Option<&Path>,
) -> Vec<(String, String)> {
    let component = match lang {
        Lang::Rust => format!(
            "target/wasm32-wasip2/release/{}.wasm",
            name.replace('-', "_")
        ),
        Lang::Python | Lang::Js => "app.wasm".to_string(),
    };
    let (listing, toolchain) = match lang {
        Lang::Rust => (
            "| `src/lib.rs` | the function |\n| `Cargo.toml` | the crate, with the `edgeward-sdk` dependency |\n",
            "\nNeeds Rust with the `wasm32-wasip2` target (`rustup target add wasm32-wasip2`).\n",
        ),
        Lang::Python => (
            "| `app.py` | the function |\n| `edgeward.py` | Edgeward's helper module (secrets, requests, credentials) |\n| `wit/` | the WIT package the component targets (`edgeward wit --out wit` refreshes it) |\n",
            "\nNeeds componentize-py from PyPI: `pip install componentize-py==0.25.1` (in a virtualenv).\n",
        ),
        Lang::Js => (
            "| `app.js` | the function |\n| `edgeward.js` | Edgeward's helper module (secrets, requests, credentials) |\n| `package.json` | the build script and its tool, componentize-js |\n| `edgeward-build.mjs` | runs componentize-js, keeping the step that does not depend on your code in a cache |\n| `wit/` | the WIT package the component targets (`edgeward wit --out wit` refreshes it) |\n",
            "\nNeeds Node.js and componentize-js from npm: `npm install` here once (or have\n`componentize-js` on your PATH).\n",
        ),
    };
    let fill = |text: &str| {
        text.replace("__NAME__", name)
            .replace("__PROJECT__", project)
            .replace("__LANG__", lang.label())
            .replace("__TEMPLATE__", &format!("{template:?}").to_lowercase())
            .replace("__BUILD__", lang.build_command())
            .replace("__COMPONENT__", &component)
            .replace("__FILES__", listing)
            .replace("__TOOLCHAIN__", toolchain)
            .replace(
                "__SDK__",
                &sdk.map(|p| p.display().to_string()).unwrap_or_default(),
            )
    };
    // `[package]` last: TOML puts every key after a table header into that table, and the
    // manifest has top-level keys (`secrets = […]`).
    let project_file = format!(
        "{}\n# How `edgeward build`, `edgeward deploy` and `edgeward dev` build and deploy this\n\
         # project; this table stays on your side, the server gets the rest as the manifest.\n\
         [package]\nname = \"__PROJECT__/__NAME__\"\nbuild = \"__BUILD__\"\n\
         component = \"__COMPONENT__\"\n",
        manifest(template)
    );
    let mut out = vec![
        ("edgeward.toml".to_string(), fill(&project_file)),
        (
            ".gitignore".to_string(),
            include_str!("../../templates/common/gitignore").to_string(),
        ),
        (
            "dev-secrets.json".to_string(),
            dev_secrets(template).to_string(),
        ),
        (
            "README.md".to_string(),
            fill(include_str!("../../templates/common/README.md")),
        ),
    ];
    let code = fill(source(lang, template));
    match lang {
        Lang::Rust => {
            out.push((
                "Cargo.toml".into(),
                fill(include_str!("../../templates/rust/Cargo.toml")),
            ));
            out.push(("src/lib.rs".into(), code));
        }
        Lang::Python => {
            out.push(("app.py".into(), code));
            out.push((
                "edgeward.py".into(),
                include_str!("../../../sdk/python/edgeward.py").into(),
            ));
        }
        Lang::Js => {
            out.push(("app.js".into(), code));
            out.push((
                "edgeward.js".into(),
                include_str!("../../../sdk/js/edgeward.js").into(),
            ));
            out.push((
                "package.json".into(),
                fill(include_str!("../../templates/js/package.json")),
            ));
            out.push((
                "edgeward-build.mjs".into(),
                include_str!("../../../sdk/js/edgeward-build.mjs").into(),
            ));
        }
    }
    if lang != Lang::Rust {
        for (path, text) in super::wit::FILES {
            out.push((format!("wit/{path}"), (*text).to_string()));
        }
    }
    out
}

/// `edgeward new NAME`: makes `./NAME` with the project's files. Refuses a name that breaks
/// the package rule and a directory that exists (nothing is overwritten).
pub fn run(args: &NewArgs) -> Result<(), ClientError> {
    let name = Name::parse("package", &args.name).map_err(|e| bad_entry(e.0))?;
    let project = Name::parse("project", &args.project).map_err(|e| bad_entry(e.0))?;
    if args.lang == Lang::Rust && !name.as_str().starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err(bad_entry(format!(
            "invalid package name {:?} for a Rust crate: start it with a letter",
            name.as_str()
        )));
    }
    let sdk = match args.lang {
        Lang::Rust => Some(sdk_dir(args.sdk_path.as_deref())?),
        Lang::Python | Lang::Js => None,
    };
    let dir = PathBuf::from(name.as_str());
    // create_dir, not create_dir_all: it fails if the directory exists, so nothing of the
    // user's is ever written over, even when two runs race.
    if let Err(e) = std::fs::create_dir(&dir) {
        return Err(if e.kind() == std::io::ErrorKind::AlreadyExists {
            err(
                ErrorCode::AlreadyExists,
                format!(
                    "{} exists; edgeward new never writes into an existing directory: pick \
                     another name or remove it",
                    dir.display()
                ),
            )
        } else {
            io_error(&dir, e)
        });
    }
    let written = files(
        name.as_str(),
        project.as_str(),
        args.lang,
        args.template,
        sdk.as_deref(),
    )
    .into_iter()
    .try_for_each(|(path, text)| {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io_error(parent, e))?;
        }
        std::fs::write(&path, text).map_err(|e| io_error(&path, e))
    });
    if let Err(e) = written {
        // The directory is ours (made above): leave nothing half-made behind.
        let _ = std::fs::remove_dir_all(&dir);
        return Err(e);
    }
    eprintln!(
        "made {}/: a {} function (template {}), deploying as {}/{}\n\
         next: cd {} && {}\n      then see its README.md to deploy and call it",
        name,
        args.lang.label(),
        format!("{:?}", args.template).to_lowercase(),
        project,
        name,
        name,
        args.lang.build_command(),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every combination fills every placeholder and carries the files its build needs.
    #[test]
    fn every_template_is_complete() {
        for lang in [Lang::Rust, Lang::Python, Lang::Js] {
            for template in [Template::Http, Template::Secrets, Template::Credentials] {
                let files = files("my-fn", "acme", lang, template, Some(Path::new("/sdk")));
                for (path, text) in &files {
                    let placeholder = text.split("__").skip(1).step_by(2).find(|word| {
                        !word.is_empty() && word.chars().all(|c| c.is_ascii_uppercase())
                    });
                    assert_eq!(placeholder, None, "{lang:?}/{template:?}: {path}");
                }
                let has = |p: &str| files.iter().any(|(path, _)| path == p);
                for needed in [
                    "edgeward.toml",
                    ".gitignore",
                    "dev-secrets.json",
                    "README.md",
                ] {
                    assert!(has(needed), "{lang:?}/{template:?}: no {needed}");
                }
                let manifest = &files.iter().find(|(p, _)| p == "edgeward.toml").unwrap().1;
                let project =
                    super::super::project::Project::parse(Path::new("edgeward.toml"), manifest)
                        .unwrap_or_else(|e| panic!("{template:?}: edgeward.toml: {e}"));
                assert_eq!(project.name.as_deref(), Some("acme/my-fn"));
                assert_eq!(project.build.as_deref(), Some(lang.build_command()));
                let ignore = &files.iter().find(|(p, _)| p == ".gitignore").unwrap().1;
                assert!(ignore.lines().any(|l| l == "dev-secrets.json"));
            }
        }
    }
}
