//! The Kubernetes manifests (deploy/kubernetes) checked by `scripts/check-kubernetes`: strict
//! schema validation against a named Kubernetes version (kubernetes-validate), every flag
//! and variable one `edgeward` knows, every pod restricted. And the check itself can fail: a
//! copy with one thing broken is refused, naming it.

use crate::harness::repo_root;
use std::path::Path;
use std::process::Command;

/// Runs the check on `dir`; (success, what it printed).
fn check(dir: &Path) -> (bool, String) {
    let root = repo_root();
    let python = root.join(".venv").join("bin").join("python");
    assert!(
        python.exists(),
        "{} is missing: run ./scripts/test, which installs kubernetes-validate into .venv",
        python.display()
    );
    let out = Command::new(python)
        .arg(root.join("scripts").join("check-kubernetes"))
        .args(["--edgeward", env!("CARGO_BIN_EXE_edgeward"), "--dir"])
        .arg(dir)
        .output()
        .expect("run scripts/check-kubernetes");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir(&target).unwrap();
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn the_kubernetes_manifests_validate_and_name_only_real_settings() {
    let manifests = repo_root().join("deploy").join("kubernetes");
    let (ok, said) = check(&manifests);
    assert!(ok, "{said}");
    assert!(
        said.contains("valid for Kubernetes 1.33.0 (strict)"),
        "{said}"
    );

    // One fault at a time, in a copy: each is refused, by name.
    let faults: [(&str, &str, &str, &str); 6] = [
        (
            "base/configmap.yaml",
            "EDGEWARD_LOG: info",
            "EDGEWARD_LOG: info\n  EDGEWARD_NO_SUCH_SETTING: \"1\"",
            "EDGEWARD_NO_SUCH_SETTING",
        ),
        (
            "base/deployment.yaml",
            "args: [\"serve\", \"--drain-seconds\", \"20\"]",
            "args: [\"serve\", \"--drain-secs\", \"20\"]",
            "no flag --drain-secs",
        ),
        (
            "base/deployment.yaml",
            "readOnlyRootFilesystem: true",
            "readOnlyRootFilesystem: false",
            "root filesystem is writable",
        ),
        (
            "base/deployment.yaml",
            "revisionHistoryLimit: 5",
            "revisionHistoryLimit: 5\n  replicasWanted: 3",
            "kubernetes-validate",
        ),
        (
            "base/service-api.yaml",
            "targetPort: api",
            "targetPort: apii",
            "no port apii",
        ),
        (
            "embedded/deployment.yaml",
            "- name: EDGEWARD_MASTER_KEY",
            "- name: EDGEWARD_MASTERKEY",
            "does not read EDGEWARD_MASTERKEY",
        ),
    ];
    for (file, from, to, reason) in faults {
        let copy = tempfile::tempdir().unwrap();
        copy_tree(&manifests, copy.path());
        let path = copy.path().join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{file} has no {from:?}");
        std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
        let (ok, said) = check(copy.path());
        assert!(!ok, "{file} with {to:?} passed: {said}");
        assert!(said.contains(reason), "{file} with {to:?}: {said}");
    }
}
