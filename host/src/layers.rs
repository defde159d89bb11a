//! The layer rule of `ARCHITECTURE.md`, enforced: a top-level module imports only modules of
//! lower layers (`crate::X` anywhere in its non-test code), so no cycle can form between
//! top-level modules. A new module must be placed in [`LAYERS`] before it builds green.

/// The layers, lowest first. A module may use any module of a layer below its own, and none of
/// its own layer or above.
pub const LAYERS: &[&[&str]] = &[
    // Foundations: vocabulary and plumbing that know nothing of Edgeward's state.
    &[
        "code",
        "names",
        "credential",
        "cookies",
        "datadir",
        "faults",
        "net",
        "metrics",
    ],
    // Persistence: rows and engines.
    &["store"],
    // The audit log's one home (typed records, redaction, limits, retention).
    &["audit"],
    // What a package declares.
    &["manifest"],
    // Scopes, backends, resolution, consent, the guest's secrets interface.
    &["secrets"],
    // Tokens; the wasmtime runtime (instances, outbound, credentials, masking).
    &["auth", "runtime"],
    // Package versions and deploys; execution records.
    &["packages", "executions"],
    // The shared state one server holds.
    &["app"],
    // The control plane, the data plane, and serve's configuration.
    &["api", "dataplane", "config"],
    // Accept loops.
    &["listeners"],
    // The server: serve's wiring.
    &["server"],
    // The command-line client, above the server only because `edgeward dev` embeds one.
    &["cli"],
];

/// Functions of the crate root (`lib.rs`) that any module may call.
const ROOT_ITEMS: &[&str] = &["install_crypto", "init_logging", "init_server_logging"];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// The non-test text of a source file: everything before its `#[cfg(test)] mod …` block.
fn without_tests(text: &str) -> &str {
    let mut at = 0;
    while let Some(i) = text[at..].find("#[cfg(test)]") {
        let start = at + i;
        let rest = text[start + "#[cfg(test)]".len()..].trim_start();
        if rest.starts_with("mod ") && rest.split('\n').next().is_some_and(|l| l.contains('{')) {
            return &text[..start];
        }
        at = start + 1;
    }
    text
}

/// Every violation in `files` (top-level module, path, source text): `path:line: a -> b`.
pub fn violations(files: &[(String, String, String)]) -> Vec<String> {
    let mut found = Vec::new();
    for (module, path, text) in files {
        let Some(own) = layer_of(module) else {
            found.push(format!(
                "{path}: module {module} is in no layer of LAYERS (host/src/layers.rs)"
            ));
            continue;
        };
        for (n, line) in without_tests(text).lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            for (i, _) in code.match_indices("crate::") {
                let used: String = code[i + "crate::".len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if used.is_empty() || used == *module || ROOT_ITEMS.contains(&used.as_str()) {
                    continue;
                }
                match layer_of(&used) {
                    Some(l) if l < own => {}
                    Some(_) => found.push(format!(
                        "{path}:{}: {module} -> {used} (layer {own} may only use layers below it)",
                        n + 1
                    )),
                    None => found.push(format!(
                        "{path}:{}: {module} -> {used}, which is in no layer",
                        n + 1
                    )),
                }
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// Files declared `#[cfg(test)] mod x;`: test code, which may reach anything.
    fn test_only(dir: &Path) -> Vec<std::path::PathBuf> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                for w in lines.windows(2) {
                    if w[0].trim() == "#[cfg(test)]"
                        && let Some(name) = w[1]
                            .trim()
                            .strip_prefix("mod ")
                            .and_then(|n| n.strip_suffix(';'))
                    {
                        let base = if path.ends_with("mod.rs") || path.ends_with("lib.rs") {
                            d.clone()
                        } else {
                            d.join(path.file_stem().unwrap())
                        };
                        out.push(base.join(format!("{name}.rs")));
                        out.push(base.join(name));
                    }
                }
            }
        }
        out
    }

    fn sources() -> Vec<(String, String, String)> {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let skip = test_only(&src);
        let mut files = Vec::new();
        let mut stack = vec![src.clone()];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).unwrap().flatten() {
                let path = entry.path();
                if skip.iter().any(|s| path.starts_with(s)) {
                    continue;
                }
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                if path.extension().is_none_or(|e| e != "rs") {
                    continue;
                }
                let rel = path.strip_prefix(&src).unwrap();
                let top = rel.iter().next().unwrap().to_string_lossy();
                let module = top.trim_end_matches(".rs").to_string();
                if matches!(module.as_str(), "lib" | "main" | "layers") {
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                files.push((module, rel.display().to_string(), text));
            }
        }
        files
    }

    #[test]
    fn imports_only_point_down() {
        let files = sources();
        assert!(files.len() > 50, "the walk found {} files", files.len());
        let found = violations(&files);
        assert!(
            found.is_empty(),
            "upward or unplaced imports:\n{}",
            found.join("\n")
        );
    }

    #[test]
    fn every_top_level_module_is_placed() {
        let lib = include_str!("lib.rs");
        for line in lib.lines() {
            if let Some(name) = line
                .strip_prefix("pub mod ")
                .and_then(|n| n.strip_suffix(';'))
            {
                assert!(
                    name == "layers" || layer_of(name).is_some(),
                    "module {name} is in no layer"
                );
            }
        }
    }

    #[test]
    fn a_planted_upward_import_is_caught() {
        let planted = vec![(
            "store".to_string(),
            "store/mod.rs".to_string(),
            "use crate::runtime::ExecutionStatus;\nuse crate::faults;\n".to_string(),
        )];
        let found = violations(&planted);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].contains("store/mod.rs:1: store -> runtime"),
            "{found:?}"
        );
        // In test code, anything goes.
        let in_tests = vec![(
            "store".to_string(),
            "store/mod.rs".to_string(),
            "fn f() {}\n#[cfg(test)]\nmod tests {\n    use crate::server::Server;\n}\n".to_string(),
        )];
        assert!(violations(&in_tests).is_empty());
        // A module nobody placed fails too.
        let unplaced = vec![("newthing".into(), "newthing.rs".into(), String::new())];
        assert_eq!(violations(&unplaced).len(), 1);
    }
}
