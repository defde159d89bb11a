//! One conformance suite for every secret backend: the same assertions against the embedded
//! store and against a real OpenBao, called through the library's `SecretBackend` trait.

use crate::harness::{BAO_ROOT_TOKEN, OpenBao, unique};
use edgeward_host::names::{Name, SecretName};
use edgeward_host::secrets::embedded::EmbeddedBackend;
use edgeward_host::secrets::vault::{VaultAuth, VaultBackend, VaultConfig};
use edgeward_host::secrets::{BackendError, Owner, SecretBackend, SecretValue, WriteMode};
use std::sync::Arc;
use std::time::Duration;

fn n(s: &str) -> SecretName {
    SecretName::parse(s).unwrap()
}

fn project(s: &str) -> Name {
    Name::parse("project", s).unwrap()
}

async fn suite(b: Arc<dyn SecretBackend>) {
    let pkg = Owner::Package(project("acme"), project("api"));
    let other = Owner::Package(project("other"), project("api"));
    let text = |s: &str| SecretValue::text(s.to_string());

    // Write modes and versions.
    assert_eq!(
        b.write(&pkg, &n("A"), &text("1"), "t", WriteMode::Create)
            .await
            .unwrap(),
        1
    );
    assert!(matches!(
        b.write(&pkg, &n("A"), &text("x"), "t", WriteMode::Create)
            .await,
        Err(BackendError::AlreadyExists(_))
    ));
    assert!(matches!(
        b.write(&pkg, &n("NONE"), &text("x"), "t", WriteMode::Update)
            .await,
        Err(BackendError::NotFound(_))
    ));
    assert_eq!(
        b.write(&pkg, &n("A"), &text("2"), "t", WriteMode::Update)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        b.write(&pkg, &n("A"), &text("3"), "t", WriteMode::Upsert)
            .await
            .unwrap(),
        3
    );
    let got = b.get(&pkg, &n("A")).await.unwrap().unwrap();
    assert_eq!(
        (got.value.expose(), got.version, got.value.is_object()),
        ("3", 3, false)
    );
    // Owners are isolated.
    assert!(b.get(&other, &n("A")).await.unwrap().is_none());
    assert!(b.get(&Owner::Platform, &n("A")).await.unwrap().is_none());
    // Objects round-trip as objects.
    let obj = SecretValue::object(r#"{"host":"h","password":"p"}"#.into());
    b.write(&pkg, &n("OBJ"), &obj, "t", WriteMode::Upsert)
        .await
        .unwrap();
    let got = b.get(&pkg, &n("OBJ")).await.unwrap().unwrap();
    assert!(got.value.is_object());
    let parsed: serde_json::Value = serde_json::from_str(got.value.expose()).unwrap();
    assert_eq!(parsed, serde_json::json!({ "host": "h", "password": "p" }));
    // Listing: names, versions, who; never values.
    let list = b.list(&pkg).await.unwrap();
    let mut names: Vec<_> = list.iter().map(|m| m.name.as_str().to_string()).collect();
    names.sort();
    assert_eq!(names, ["A", "OBJ"]);
    let a = list.iter().find(|m| m.name.as_str() == "A").unwrap();
    assert_eq!((a.version, a.updated_by.as_str()), (3, "t"));
    assert!(b.list(&other).await.unwrap().is_empty());
    // Import: all entries land.
    b.import(&pkg, &[(n("I1"), text("i1")), (n("I2"), obj.clone())], "t")
        .await
        .unwrap();
    assert_eq!(
        b.get(&pkg, &n("I1")).await.unwrap().unwrap().value.expose(),
        "i1"
    );
    assert!(
        b.get(&pkg, &n("I2"))
            .await
            .unwrap()
            .unwrap()
            .value
            .is_object()
    );
    // Delete.
    assert!(b.delete(&pkg, &n("I1")).await.unwrap());
    assert!(!b.delete(&pkg, &n("I1")).await.unwrap());
    assert!(b.get(&pkg, &n("I1")).await.unwrap().is_none());
    // Wrap: once, then never again; unknown tokens and absent names.
    let w = b
        .wrap(&pkg, &n("A"), Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    assert!(
        !format!("{w:?}").contains(w.token.as_str()),
        "Debug hides the token"
    );
    assert_eq!(b.unwrap(&w.token).await.unwrap().expose(), "3");
    assert!(matches!(
        b.unwrap(&w.token).await,
        Err(BackendError::NotFound(_))
    ));
    assert!(matches!(
        b.unwrap("not-a-token").await,
        Err(BackendError::NotFound(_))
    ));
    assert!(
        b.wrap(&pkg, &n("NONE"), Duration::from_secs(60))
            .await
            .unwrap()
            .is_none()
    );
    // Wrapping a value the host holds (an opened user secret): the same value back, once.
    for value in [
        SecretValue::text("held-by-the-host".into()),
        SecretValue::object(r#"{"user":"u","n":1.5,"list":["a",2]}"#.into()),
    ] {
        let w = b.wrap_value(&value, Duration::from_secs(60)).await.unwrap();
        let back = b.unwrap(&w.token).await.unwrap();
        assert_eq!(back.is_object(), value.is_object());
        if value.is_object() {
            let (got, want): (serde_json::Value, serde_json::Value) = (
                serde_json::from_str(back.expose()).unwrap(),
                serde_json::from_str(value.expose()).unwrap(),
            );
            assert_eq!(got, want);
        } else {
            assert_eq!(back.expose(), value.expose());
        }
        assert!(matches!(
            b.unwrap(&w.token).await,
            Err(BackendError::NotFound(_))
        ));
    }
    // Expiry: a one-second token stops working (polled, bounded).
    let w = b
        .wrap(&pkg, &n("A"), Duration::from_secs(1))
        .await
        .unwrap()
        .unwrap();
    // Expiry is a matter of the clock, and a token is single-use, so it cannot be polled:
    // wait until half a second past its expiry, then it must be dead.
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let left = u64::try_from(w.expires_at + 500 - now_ms).unwrap_or(0);
    assert!(left <= 1500, "a one-second token expires within a second");
    tokio::time::sleep(Duration::from_millis(left)).await;
    assert!(
        matches!(b.unwrap(&w.token).await, Err(BackendError::NotFound(_))),
        "expired"
    );
}

#[tokio::test]
async fn conformance_embedded() {
    let tmp = tempfile::tempdir().unwrap();
    let store = edgeward_host::store::Store::open(&tmp.path().join("db")).unwrap();
    suite(Arc::new(EmbeddedBackend::new(store, &[9u8; 32]))).await;
}

#[tokio::test]
async fn conformance_embedded_on_postgres() {
    let url = crate::pg::Postgres::shared().create_database();
    let store = edgeward_host::store::Store::connect(&url).await.unwrap();
    suite(Arc::new(EmbeddedBackend::new(store, &[9u8; 32]))).await;
}

#[tokio::test]
async fn conformance_openbao() {
    let bao = OpenBao::start();
    let backend = VaultBackend::new(VaultConfig {
        addr: bao.addr.clone(),
        auth: VaultAuth::Token(BAO_ROOT_TOKEN.to_string().into()),
        mount: "secret".into(),
        prefix: unique("conformance"),
        timeout: Duration::from_secs(5),
    })
    .unwrap();
    assert!(
        !format!("{backend:?}").contains(BAO_ROOT_TOKEN),
        "Debug hides the token"
    );
    suite(Arc::new(backend)).await;
}

/// A backend logged in with AppRole: a role holding `policy` with tokens living `ttl`, under
/// `prefix`.
fn approle_backend(bao: &OpenBao, policy: &str, ttl: &str, prefix: String) -> VaultBackend {
    bao.cli(&["auth", "enable", "approle"]);
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), policy).unwrap();
    bao.cli(&["policy", "write", "edgeward", file.path().to_str().unwrap()]);
    bao.cli(&[
        "write",
        "auth/approle/role/edgeward",
        "token_policies=edgeward",
        &format!("token_ttl={ttl}"),
        &format!("token_max_ttl={ttl}"),
    ]);
    let role_id = bao.cli(&[
        "read",
        "-field=role_id",
        "auth/approle/role/edgeward/role-id",
    ]);
    let secret_id = bao.cli(&[
        "write",
        "-f",
        "-field=secret_id",
        "auth/approle/role/edgeward/secret-id",
    ]);
    VaultBackend::new(VaultConfig {
        addr: bao.addr.clone(),
        auth: VaultAuth::AppRole {
            mount: "approle".into(),
            role_id: role_id.trim().into(),
            secret_id: secret_id.trim().to_string().into(),
        },
        mount: "secret".into(),
        prefix,
        timeout: Duration::from_secs(5),
    })
    .unwrap()
}

#[tokio::test]
async fn conformance_openbao_with_approle() {
    let bao = OpenBao::start();
    let backend = approle_backend(
        &bao,
        "path \"secret/*\" { capabilities = [\"create\", \"read\", \"update\", \"delete\", \"list\"] }\n",
        "1h",
        unique("approle"),
    );
    let owner = Owner::Platform;
    backend
        .write(
            &owner,
            &n("X"),
            &SecretValue::text("via-approle".into()),
            "t",
            WriteMode::Upsert,
        )
        .await
        .unwrap();
    assert_eq!(
        backend
            .get(&owner, &n("X"))
            .await
            .unwrap()
            .unwrap()
            .value
            .expose(),
        "via-approle"
    );
}

/// AppRole with a two-second token: wrapping as the very first Vault call logs in first, and
/// wrapping after the token has expired logs in again, as reads do.
#[tokio::test]
async fn approle_wrap_logs_in_first_and_again_after_expiry() {
    let bao = OpenBao::start();
    let prefix = unique("approle");
    let policy = std::fs::read_to_string(crate::harness::repo_root().join("docs/vault-policy.hcl"))
        .unwrap()
        .replace("edgeward/", &format!("{prefix}/"));
    let backend = approle_backend(&bao, &policy, "2s", prefix);
    // The first Vault call of this backend is a wrap.
    let w = backend
        .wrap_value(
            &SecretValue::text("first-call".into()),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    assert_eq!(
        backend.unwrap(&w.token).await.unwrap().expose(),
        "first-call"
    );
    let owner = Owner::Platform;
    backend
        .write(
            &owner,
            &n("X"),
            &SecretValue::text("after-expiry".into()),
            "t",
            WriteMode::Upsert,
        )
        .await
        .unwrap();
    // Its token revoked in Vault (as expiry would, without waiting for the clock): the next
    // wrap must log in again to succeed.
    let accessors = bao.cli(&["list", "-format=json", "auth/token/accessors"]);
    let mut revoked = 0;
    for accessor in serde_json::from_str::<Vec<String>>(&accessors).unwrap() {
        let (ok, info, _) =
            bao.try_cli(&["token", "lookup", "-format=json", "-accessor", &accessor]);
        let info: serde_json::Value = if ok {
            serde_json::from_str(&info).unwrap()
        } else {
            continue;
        };
        if info["data"]["path"]
            .as_str()
            .is_some_and(|p| p.starts_with("auth/approle/login"))
        {
            bao.cli(&["token", "revoke", "-accessor", &accessor]);
            revoked += 1;
        }
    }
    assert!(
        revoked >= 1,
        "the backend's AppRole token was found and revoked"
    );
    let w = backend
        .wrap(&owner, &n("X"), Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        backend.unwrap(&w.token).await.unwrap().expose(),
        "after-expiry"
    );
}
