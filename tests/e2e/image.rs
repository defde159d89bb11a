//! The OCI image (`scripts/image`): built FROM scratch with buildah from the binary this test
//! run built (a release build would cost CI a quarter of an hour), in a storage of its own,
//! then run with `buildah run` (chroot isolation, the host's network): it serves a deployed
//! function over loopback, as the non-root user the image names.

use crate::harness::{guest, repo_root, unique};
use std::io::{BufRead as _, BufReader};
use std::os::unix::fs::MetadataExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The user the image runs as.
const UID: u32 = 10001;

/// buildah on the test's own storage (nothing of the machine's images is touched).
fn buildah(root: &Path) -> Command {
    let mut cmd = Command::new("buildah");
    cmd.args(["--storage-driver", "vfs", "--root"])
        .arg(root.join("storage"))
        .arg("--runroot")
        .arg(root.join("run"))
        .stdin(Stdio::null());
    cmd
}

/// Runs buildah; its stdout, trimmed, panicking on failure.
fn run(root: &Path, args: &[&str]) -> String {
    let out = buildah(root).args(args).output().expect("run buildah");
    assert!(
        out.status.success(),
        "buildah {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The container's process tree, stopped (its process group) on drop, and the container,
/// image and storage removed.
struct Running {
    root: PathBuf,
    container: String,
    tag: String,
    child: Option<Child>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let group = rustix::process::Pid::from_child(&child);
            let _ = rustix::process::kill_process_group(group, rustix::process::Signal::TERM);
            let deadline = Instant::now() + Duration::from_secs(10);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
            let _ = child.wait();
        }
        let _ = buildah(&self.root).args(["rm", &self.container]).output();
        let _ = buildah(&self.root).args(["rmi", &self.tag]).output();
    }
}

/// The uids (real, effective, saved, filesystem) of the processes in `group` named `name`.
fn uids_in_group(group: u32, name: &str) -> Vec<Vec<u32>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(status) = std::fs::read_to_string(entry.path().join("status")) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid pgrp ...`: comm may hold spaces, so split after its `)`.
        let after = stat.rsplit_once(") ").map(|(_, rest)| rest).unwrap_or("");
        let pgrp: Option<u32> = after.split(' ').nth(2).and_then(|p| p.parse().ok());
        let comm = status
            .lines()
            .find_map(|l| l.strip_prefix("Name:"))
            .map(str::trim);
        if pgrp == Some(group) && comm == Some(name) {
            let uids = status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .map(|u| {
                    u.split_whitespace()
                        .filter_map(|n| n.parse().ok())
                        .collect()
                })
                .unwrap_or_default();
            found.push(uids);
        }
    }
    found
}

#[tokio::test]
async fn the_image_serves_a_function_as_its_non_root_user() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("buildah");
    let tag = format!("localhost/edgeward-test:{}", unique("t"));
    let binary = env!("CARGO_BIN_EXE_edgeward");

    let started = Instant::now();
    let out = Command::new(repo_root().join("scripts").join("image"))
        .args(["--binary", binary, "--tag", &tag, "--root"])
        .arg(&root)
        .stdin(Stdio::null())
        .output()
        .expect("run scripts/image");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "scripts/image: {said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains(&format!("image {tag} built")), "{said}");
    eprintln!("image built in {:?}: {}", started.elapsed(), said.trim());

    // What the image says it runs, as whom, with what.
    let inspect: serde_json::Value =
        serde_json::from_str(&run(&root, &["inspect", "--type", "image", &tag])).unwrap();
    let config = &inspect["OCIv1"]["config"];
    assert_eq!(config["User"], format!("{UID}:{UID}"), "{config}");
    let entrypoint: Vec<String> = serde_json::from_value(config["Entrypoint"].clone()).unwrap();
    let cmd: Vec<String> = serde_json::from_value(config["Cmd"].clone()).unwrap();
    assert_eq!(entrypoint, ["/usr/local/bin/edgeward"], "{config}");
    assert_eq!(cmd, ["serve"], "{config}");
    let env: Vec<String> = serde_json::from_value(config["Env"].clone()).unwrap();
    for wanted in [
        "EDGEWARD_DATA_DIR=/var/lib/edgeward",
        "EDGEWARD_LISTEN=0.0.0.0:8080",
        "EDGEWARD_API_LISTEN=0.0.0.0:8081",
    ] {
        assert!(env.iter().any(|e| e == wanted), "{wanted} in {env:?}");
    }
    assert!(
        config["Volumes"]["/var/lib/edgeward"].is_object(),
        "{config}"
    );

    let container = run(&root, &["from", "--quiet", &tag]);
    let mut running = Running {
        root: root.clone(),
        container: container.clone(),
        tag: tag.clone(),
        child: None,
    };
    let rootfs = PathBuf::from(run(&root, &["mount", &container]));
    // Exactly the libraries the binary links, with the loader, and nothing else executable.
    let ldd = Command::new("ldd").arg(binary).output().unwrap();
    let mut linked: Vec<String> = String::from_utf8_lossy(&ldd.stdout)
        .split_whitespace()
        .filter(|w| w.starts_with('/'))
        .map(str::to_string)
        .collect();
    linked.push("/usr/local/bin/edgeward".into());
    linked.sort();
    let mut files = Vec::new();
    let mut dirs = vec![rootfs.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let meta = std::fs::symlink_metadata(entry.path()).unwrap();
            if meta.is_dir() {
                dirs.push(entry.path());
            } else if meta.mode() & 0o111 != 0 {
                let path = entry.path();
                files.push(format!(
                    "/{}",
                    path.strip_prefix(&rootfs).unwrap().display()
                ));
            }
        }
    }
    files.sort();
    assert_eq!(files, linked, "the executables in the image");
    let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).unwrap();
    assert!(
        passwd.contains(&format!("edgeward:x:{UID}:{UID}:")),
        "{passwd}"
    );
    assert!(rootfs.join("etc/ssl/certs/ca-certificates.crt").is_file());

    // The image's own command, on loopback ports of the host's network, its data volume a
    // directory of the test's that belongs to the image's user (as a volume would).
    let volume = tmp.path().join("data");
    std::fs::create_dir(&volume).unwrap();
    std::os::unix::fs::chown(&volume, Some(UID), Some(UID)).unwrap();
    let mut child = buildah(&root)
        .args(["run", "--isolation", "chroot", "--volume"])
        .arg(format!("{}:/var/lib/edgeward", volume.display()))
        .args([&container, "--"])
        .args(&entrypoint)
        .args(&cmd)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--api-listen",
            "127.0.0.1:0",
            "--drain-seconds",
            "1",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("buildah run");
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let group = child.id();
    running.child = Some(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let keep = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            keep.lock().unwrap().push_str(&format!("{line}\n"));
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut lines = Vec::new();
    while lines.last().is_none_or(|l| l != "ready") {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => lines.push(line),
            Err(_) => panic!(
                "the container did not become ready: {lines:?}\n{}",
                log.lock().unwrap()
            ),
        }
    }
    let find = |prefix: &str| {
        lines
            .iter()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} in {lines:?}"))
            .to_string()
    };
    let (data_plane, api) = (find("listening: data-plane "), find("listening: api "));
    assert!(
        lines.contains(&"admin token: /var/lib/edgeward/admin.token (created)".to_string()),
        "the data directory is the image's volume: {lines:?}"
    );

    // The server is the image's user: the process, and the files it made.
    let uids = uids_in_group(group, "edgeward");
    assert!(!uids.is_empty(), "no edgeward process in the container");
    for u in &uids {
        assert_eq!(u, &vec![UID; 4], "the server's uids");
    }
    let token_file = volume.join("admin.token");
    assert_eq!(std::fs::metadata(&token_file).unwrap().uid(), UID);
    let token = std::fs::read_to_string(&token_file).unwrap();

    // A function deployed through the API, served on the data plane.
    let http = crate::harness::http();
    let wasm = std::fs::read(guest("hello")).unwrap();
    let r = http
        .post(format!("{api}/v1/projects/acme/packages/hello/versions"))
        .bearer_auth(token.trim())
        .header("content-type", "application/wasm")
        .body(wasm)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
    let r = http
        .get(format!("{data_plane}/acme/hello/from-the-image"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    assert!(
        body.contains("Hello from Edgeward") && body.contains("/from-the-image"),
        "{body}"
    );
    drop(running);
}
