//! `edgeward wit`: the WIT package this binary was built with (`edgeward:platform`, and the
//! WASI packages it uses), so guests in any language get their world from the tool.
//!
//! The files are the guest SDK's `wit/` (the repository's `wit/` links to it), built in.

use super::client::{ClientError, err};
use crate::code::ErrorCode;
use std::path::Path;

/// Each file of the WIT package: its path under the WIT directory, and its text.
pub const FILES: &[(&str, &str)] = &[
    (
        "secrets.wit",
        include_str!("../../../guest-sdk/wit/secrets.wit"),
    ),
    (
        "deps/cli/cli.wit",
        include_str!("../../../guest-sdk/wit/deps/cli/cli.wit"),
    ),
    (
        "deps/clocks/clocks.wit",
        include_str!("../../../guest-sdk/wit/deps/clocks/clocks.wit"),
    ),
    (
        "deps/filesystem/filesystem.wit",
        include_str!("../../../guest-sdk/wit/deps/filesystem/filesystem.wit"),
    ),
    (
        "deps/http/http.wit",
        include_str!("../../../guest-sdk/wit/deps/http/http.wit"),
    ),
    (
        "deps/io/io.wit",
        include_str!("../../../guest-sdk/wit/deps/io/io.wit"),
    ),
    (
        "deps/random/random.wit",
        include_str!("../../../guest-sdk/wit/deps/random/random.wit"),
    ),
    (
        "deps/sockets/sockets.wit",
        include_str!("../../../guest-sdk/wit/deps/sockets/sockets.wit"),
    ),
];

/// Writes every file of the WIT package under `dir` (made if missing; files of these names
/// are replaced, nothing else there is touched).
pub fn write_to(dir: &Path) -> std::io::Result<()> {
    for (path, text) in FILES {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, text)?;
    }
    Ok(())
}

/// `edgeward wit [--out DIR]`: without `--out`, prints the `edgeward:platform` package (the
/// WASI packages it uses are the standard ones, at the versions its `use`s name).
pub fn run(out: Option<&Path>) -> Result<(), ClientError> {
    match out {
        Some(dir) => {
            write_to(dir).map_err(|e| {
                err(
                    ErrorCode::Io,
                    format!("cannot write the WIT package to {}: {e}", dir.display()),
                )
            })?;
            eprintln!(
                "wrote the WIT package edgeward:platform@0.1.0 ({} files) to {}",
                FILES.len(),
                dir.display()
            );
            Ok(())
        }
        None => {
            use std::io::Write as _;
            let mut stdout = std::io::stdout().lock();
            match stdout.write_all(FILES[0].1.as_bytes()) {
                // A closed pipe (`edgeward wit | head`) is the reader's choice, not an error.
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    Err(err(ErrorCode::Io, format!("cannot write to stdout: {e}")))
                }
                _ => Ok(()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    /// Every `.wit` file of the SDK's WIT directory is built in, so `edgeward wit --out` writes
    /// the whole package (a file added there without a line here fails this test).
    #[test]
    fn every_wit_file_is_built_in() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-sdk/wit");
        let mut on_disk = Vec::new();
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    let rel = path
                        .strip_prefix(&root)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned();
                    on_disk.push((rel, std::fs::read_to_string(&path).unwrap()));
                }
            }
        }
        on_disk.sort();
        let mut built_in: Vec<(String, String)> = super::FILES
            .iter()
            .map(|(p, t)| (p.to_string(), t.to_string()))
            .collect();
        built_in.sort();
        assert_eq!(
            on_disk.iter().map(|f| &f.0).collect::<Vec<_>>(),
            built_in.iter().map(|f| &f.0).collect::<Vec<_>>()
        );
        assert!(
            on_disk == built_in,
            "a built-in WIT file differs from guest-sdk/wit"
        );
    }
}
