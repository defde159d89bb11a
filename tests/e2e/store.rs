//! The metadata store's conformance suite: every method of every aggregate trait, run against
//! both engines (SQLite in a file, PostgreSQL on a real server), with the errors a caller relies
//! on. Then what only a shared database must get right: version numbers decided by the
//! database when hosts deploy at once, and the change feed heard by every host.

use crate::pg::Postgres;
use edgeward_host::secrets::userkey::KeySlot;
use edgeward_host::store::{
    AuditFilter, AuditRow, Change, ExecutionFilter, ExecutionRow, GrantRow, NewToken, OutboundHost,
    Redemption, Revoked, Role, Store, StoreError, now_ms,
};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

fn blob(n: u8) -> Arc<Vec<u8>> {
    Arc::new(vec![n; 64])
}

async fn deploy(store: &Store, project: &str, package: &str, sha: &str) -> i64 {
    store
        .add_version(edgeward_host::store::NewVersion {
            project: project.into(),
            package: package.into(),
            sha256: sha.into(),
            bytes: blob(sha.len() as u8),
            manifest: "{}".into(),
            by: "alice".into(),
            create_project: true,
        })
        .await
        .unwrap()
        .version
}

fn token(id: &str, user: &str, slot: bool, expires_at: Option<i64>) -> NewToken {
    NewToken {
        id: id.into(),
        hash: format!("hash-{id}"),
        user: user.into(),
        label: format!("label {id}"),
        expires_at,
        issued_by: user.into(),
        slot: slot.then(|| KeySlot {
            key_id: format!("key-{user}"),
            nonce: vec![1; 12],
            wrapped: vec![2; 48],
        }),
        parent: None,
    }
}

fn execution(id: &str, package: &str, started_at: i64, status: &str) -> ExecutionRow {
    ExecutionRow {
        method: "GET".into(),
        path: "/".into(),
        id: id.into(),
        project: "acme".into(),
        package: package.into(),
        version: 1,
        started_at,
        duration_us: 42,
        status: status.into(),
        http_status: Some(200),
        user: Some("alice".into()),
        secrets: vec!["package:DB".into()],
        credentials: edgeward_host::runtime::credentials::CredentialLog {
            used: vec![edgeward_host::runtime::credentials::CredentialUse {
                secret: "API_KEY".into(),
                scope: "project".into(),
                host: "api.example.com".into(),
                count: 2,
            }],
            refused: Vec::new(),
        },
        stdout: b"out".to_vec(),
        stdout_truncated: false,
        stderr: b"err".to_vec(),
        stderr_truncated: true,
        sealed_for: None,
        outbound: vec![OutboundHost {
            host: "api.example.com".into(),
            sent: 2,
            refused: 1,
        }],
    }
}

fn audit(at: i64, actor: &str, project: Option<&str>) -> AuditRow {
    AuditRow {
        id: 0,
        at,
        actor: actor.into(),
        token_id: Some("tok_1".into()),
        action: "GET /v1/projects".into(),
        target: "/v1/projects".into(),
        project: project.map(Into::into),
        scope: Some("project".into()),
        remote: Some("127.0.0.1".into()),
        status: 200,
        outcome: "ok".into(),
        detail: None,
    }
}

/// Every trait method, on one engine.
async fn suite(store: Store) {
    let mut feed = store.subscribe();

    // Projects and packages.
    store
        .create_project("acme".into(), "alice".into())
        .await
        .unwrap();
    assert!(matches!(
        store.create_project("acme".into(), "bob".into()).await,
        Err(StoreError::AlreadyExists(_))
    ));
    assert!(store.project_exists("acme".into()).await.unwrap());
    assert!(!store.project_exists("nope".into()).await.unwrap());
    let no_project = store
        .add_version(edgeward_host::store::NewVersion {
            project: "ghost".into(),
            package: "x".into(),
            sha256: "aa".into(),
            bytes: blob(1),
            manifest: "{}".into(),
            by: "alice".into(),
            create_project: false,
        })
        .await;
    assert!(matches!(no_project, Err(StoreError::NotFound(_))));
    assert_eq!(deploy(&store, "acme", "api", "aa").await, 1);
    assert_eq!(deploy(&store, "acme", "api", "bb").await, 2);
    assert_eq!(deploy(&store, "acme", "web", "aa").await, 1);
    assert_eq!(
        deploy(&store, "other", "api", "cc").await,
        1,
        "creates the project"
    );
    let projects: Vec<String> = store
        .list_projects()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(projects, ["acme", "other"]);
    let packages = store.list_packages("acme".into()).await.unwrap();
    assert_eq!(
        packages
            .iter()
            .map(|p| (p.name.as_str(), p.current_version, p.versions))
            .collect::<Vec<_>>(),
        [("api", Some(2), 2), ("web", Some(1), 1)]
    );
    let (pkg, versions) = store
        .list_versions("acme".into(), "api".into())
        .await
        .unwrap();
    assert_eq!(pkg.current_version, Some(2));
    assert_eq!(
        versions
            .iter()
            .map(|v| (v.version, v.sha256.as_str()))
            .collect::<Vec<_>>(),
        [(1, "aa"), (2, "bb")]
    );
    assert!(matches!(
        store.list_versions("acme".into(), "nope".into()).await,
        Err(StoreError::NotFound(_))
    ));
    let (row, bytes) = store
        .version_with_blob("acme".into(), "api".into(), 1)
        .await
        .unwrap();
    assert_eq!((row.sha256.as_str(), bytes.len()), ("aa", 64));
    assert!(matches!(
        store
            .version_with_blob("acme".into(), "api".into(), 9)
            .await,
        Err(StoreError::NotFound(_))
    ));
    let before = store
        .current("acme".into(), "api".into())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(before.version.version, 2);
    let generation = store
        .set_current("acme".into(), "api".into(), 1)
        .await
        .unwrap();
    assert!(generation > before.generation, "generations only grow");
    assert!(matches!(
        store.set_current("acme".into(), "api".into(), 9).await,
        Err(StoreError::NotFound(_))
    ));
    let current = store
        .current("acme".into(), "api".into())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (current.version.version, current.generation),
        (1, generation)
    );
    assert!(
        store
            .current("acme".into(), "nope".into())
            .await
            .unwrap()
            .is_none()
    );
    let all: Vec<(String, String, i64)> = store
        .current_versions()
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.version.project, c.version.package, c.version.version))
        .collect();
    assert_eq!(
        all,
        [
            ("acme".into(), "api".into(), 1),
            ("acme".into(), "web".into(), 1),
            ("other".into(), "api".into(), 1)
        ]
    );
    assert_eq!(store.blob("bb".into()).await.unwrap().len(), 64);
    // Deleting a package drops the blobs only it used.
    let (deleted, gone) = store
        .delete_package("acme".into(), "api".into())
        .await
        .unwrap();
    assert!(deleted > generation);
    assert_eq!(gone, ["bb"], "aa is acme/web's too");
    assert!(matches!(
        store.delete_package("acme".into(), "api".into()).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.blob("bb".into()).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(
        store.blob("aa".into()).await.is_ok(),
        "acme/web still uses it"
    );
    assert_eq!(
        deploy(&store, "acme", "api", "dd").await,
        1,
        "a new package starts again at 1"
    );

    // Every package change was on the feed, in order, with its generation.
    let mut heard = Vec::new();
    while let Ok(change) = feed.try_recv() {
        heard.push(change);
    }
    let wait = tokio::time::timeout(Duration::from_secs(5), async {
        while heard
            .iter()
            .filter(|c| matches!(c, Change::Package { .. }))
            .count()
            < 7
        {
            heard.push(feed.recv().await.unwrap());
        }
    });
    wait.await.expect("7 package changes heard");
    assert!(heard.contains(&Change::Package {
        project: "acme".into(),
        package: "api".into(),
        generation,
    }));
    assert!(heard.contains(&Change::Package {
        project: "acme".into(),
        package: "api".into(),
        generation: deleted,
    }));

    // Embedded ciphertexts.
    let write = |name: &str, mode: edgeward_host::store::WriteMode, ct: u8| {
        store.secret_write(
            "project",
            "acme".into(),
            name.into(),
            vec![0; 12],
            vec![ct; 20],
            "alice".into(),
            mode,
            2,
        )
    };
    assert_eq!(
        write("DB", edgeward_host::store::WriteMode::Create, 1)
            .await
            .unwrap(),
        1
    );
    assert!(matches!(
        write("DB", edgeward_host::store::WriteMode::Create, 2).await,
        Err(StoreError::AlreadyExists(_))
    ));
    assert!(matches!(
        write("NOPE", edgeward_host::store::WriteMode::Update, 2).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        write("DB", edgeward_host::store::WriteMode::Update, 3)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        write("DB", edgeward_host::store::WriteMode::Upsert, 4)
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        write("API", edgeward_host::store::WriteMode::Upsert, 5)
            .await
            .unwrap(),
        1
    );
    let got = store
        .secret_get("project", "acme".into(), "DB".into())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((got.version, got.ciphertext[0]), (3, 4));
    // The last two versions are kept (the current one among them), each with its writer.
    let kept: Vec<(i64, String)> = store
        .secret_versions("project", "acme".into(), "DB".into())
        .await
        .unwrap()
        .into_iter()
        .map(|v| (v.version, v.created_by))
        .collect();
    assert_eq!(kept, [(2, "alice".into()), (3, "alice".into())]);
    let v2 = store
        .secret_get_version("project", "acme".into(), "DB".into(), 2)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((v2.version, v2.ciphertext[0]), (2, 3));
    assert!(
        store
            .secret_get_version("project", "acme".into(), "DB".into(), 1)
            .await
            .unwrap()
            .is_none(),
        "older than the last two: dropped"
    );
    // Description and labels: what is given replaces, what is not stays.
    assert!(
        store
            .secret_annotate(
                "project",
                "acme".into(),
                "DB".into(),
                Some("the db".into()),
                Some(r#"{"env":"prod"}"#.into()),
            )
            .await
            .unwrap()
    );
    assert!(
        store
            .secret_annotate(
                "project",
                "acme".into(),
                "DB".into(),
                None,
                Some("{}".into())
            )
            .await
            .unwrap()
    );
    assert!(
        !store
            .secret_annotate(
                "project",
                "acme".into(),
                "NOPE".into(),
                Some("x".into()),
                None
            )
            .await
            .unwrap()
    );
    let got = store
        .secret_get("project", "acme".into(), "DB".into())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (got.description.as_str(), got.labels.as_str()),
        ("the db", "{}")
    );
    assert_eq!(v2.description, "", "a version read before the change");
    assert!(
        store
            .secret_get("package", "acme".into(), "DB".into())
            .await
            .unwrap()
            .is_none(),
        "scopes are apart"
    );
    store
        .secret_import(
            "project",
            "acme".into(),
            vec![
                ("API".into(), vec![0; 12], vec![6; 20]),
                ("NEW".into(), vec![0; 12], vec![7; 20]),
            ],
            "alice".into(),
            10,
        )
        .await
        .unwrap();
    let listed: Vec<(String, i64)> = store
        .secret_list("project", "acme".into())
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.name, s.version))
        .collect();
    assert_eq!(
        listed,
        [("API".into(), 2), ("DB".into(), 3), ("NEW".into(), 1)]
    );
    assert!(
        store
            .secret_delete("project", "acme".into(), "NEW".into())
            .await
            .unwrap()
    );
    assert!(
        !store
            .secret_delete("project", "acme".into(), "NEW".into())
            .await
            .unwrap()
    );
    assert!(
        store
            .secret_versions("project", "acme".into(), "NEW".into())
            .await
            .unwrap()
            .is_empty(),
        "a delete takes every version"
    );
    store
        .wrap_insert(
            "w1".into(),
            "DB".into(),
            vec![1; 12],
            vec![2; 20],
            now_ms() + 60_000,
        )
        .await
        .unwrap();
    store
        .wrap_insert(
            "w0".into(),
            "DB".into(),
            vec![1; 12],
            vec![2; 20],
            now_ms() - 1,
        )
        .await
        .unwrap();
    let taken = store.wrap_take("w1".into()).await.unwrap().unwrap();
    assert_eq!(taken.0, "DB");
    assert!(
        store.wrap_take("w1".into()).await.unwrap().is_none(),
        "single use"
    );
    assert!(
        store.wrap_take("w0".into()).await.unwrap().is_none(),
        "expired"
    );
    store
        .issued_wrap_insert("i1".into(), now_ms() + 60_000)
        .await
        .unwrap();
    assert!(store.issued_wrap_take("i1".into()).await.unwrap());
    assert!(!store.issued_wrap_take("i1".into()).await.unwrap());

    // Identity.
    for reserved in ["anonymous", "root"] {
        assert!(matches!(
            store
                .create_user(reserved.into(), false, "admin".into(), false)
                .await,
            Err(StoreError::Reserved(_))
        ));
    }
    store
        .create_user("alice".into(), false, "admin".into(), false)
        .await
        .unwrap();
    store
        .create_user("root-admin".into(), true, "admin".into(), false)
        .await
        .unwrap();
    assert!(matches!(
        store
            .create_user("alice".into(), true, "admin".into(), false)
            .await,
        Err(StoreError::AlreadyExists(_))
    ));
    store
        .create_user("alice".into(), true, "admin".into(), true)
        .await
        .unwrap();
    let users: Vec<(String, bool)> = store
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| (u.name, u.platform_admin))
        .collect();
    assert_eq!(
        users,
        [("alice".into(), false), ("root-admin".into(), true)],
        "if_absent changed nothing"
    );
    assert!(store.user_exists("alice".into()).await.unwrap());
    assert!(!store.user_exists("bob".into()).await.unwrap());
    store
        .insert_token(token("t1", "alice", true, None))
        .await
        .unwrap();
    store
        .insert_token(token("t2", "alice", true, Some(now_ms() - 1)))
        .await
        .unwrap();
    let owner = store
        .token_by_hash("hash-t1".into())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(owner.token.user_name, "alice");
    assert!(!owner.platform_admin);
    assert_eq!(owner.slot.unwrap().wrapped, vec![2; 48]);
    assert!(store.token_by_hash("nope".into()).await.unwrap().is_none());
    assert_eq!(store.list_tokens("alice".into()).await.unwrap().len(), 2);
    assert!(store.has_user_key("alice".into()).await.unwrap());
    assert_eq!(store.drop_expired_slots().await.unwrap(), 1);
    store
        .revoke_token("alice".into(), "t1".into())
        .await
        .unwrap();
    assert!(matches!(
        store.revoke_token("alice".into(), "t9".into()).await,
        Err(StoreError::NotFound(_))
    ));
    let revoked = store
        .token_by_hash("hash-t1".into())
        .await
        .unwrap()
        .unwrap();
    assert!(revoked.token.revoked_at.is_some());
    assert!(
        revoked.slot.is_none(),
        "a revoked token's key slot is destroyed"
    );
    assert!(!store.has_user_key("alice".into()).await.unwrap());
    store
        .create_enrollment(
            "enr_1".into(),
            "ehash".into(),
            "1a2b".into(),
            "alice".into(),
            "root-admin".into(),
            now_ms() + 60_000,
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .enrollment("ehash".into())
            .await
            .unwrap()
            .unwrap()
            .user,
        "alice"
    );
    assert_eq!(
        store
            .pending_enrollments("alice".into())
            .await
            .unwrap()
            .len(),
        1
    );
    let how = || Redemption {
        from: Some("127.0.0.1".into()),
        client: Some("edgeward-cli/test".into()),
    };
    store
        .redeem_enrollment("ehash".into(), token("t3", "alice", true, None), how())
        .await
        .unwrap();
    assert!(matches!(
        store
            .redeem_enrollment("ehash".into(), token("t4", "alice", true, None), how())
            .await,
        Err(StoreError::NotFound(_))
    ));
    // Where the key came from: the enrollment, its code's hint, when, from where, with what.
    let origin = store
        .key_origin("alice".into(), "key-alice".into())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            origin.enrollment.as_str(),
            origin.code_hint.as_deref(),
            origin.created_by.as_str(),
            origin.from.as_deref(),
            origin.client.as_deref()
        ),
        (
            "enr_1",
            Some("1a2b"),
            "root-admin",
            Some("127.0.0.1"),
            Some("edgeward-cli/test")
        )
    );
    assert!(origin.redeemed_at > 0);
    assert!(
        store
            .key_origin("alice".into(), "key-other".into())
            .await
            .unwrap()
            .is_none()
    );

    // Lineage: revoking a token revokes every token made from it, at any depth and whoever's
    // it is, in one go; its siblings and ancestors live on.
    let child = |id: &str, user: &str, parent: &str| NewToken {
        parent: Some(parent.into()),
        ..token(id, user, true, None)
    };
    store
        .insert_token(token("root", "alice", true, None))
        .await
        .unwrap();
    store
        .insert_token(child("kid", "alice", "root"))
        .await
        .unwrap();
    store
        .insert_token(child("kid2", "alice", "root"))
        .await
        .unwrap();
    store
        .insert_token(child("grandkid", "alice", "kid"))
        .await
        .unwrap();
    store
        .insert_token(child("admins", "root-admin", "grandkid"))
        .await
        .unwrap();
    let below: Vec<String> = store
        .descendants("root".into())
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(below.len(), 4, "{below:?}");
    for id in ["kid", "kid2", "grandkid", "admins"] {
        assert!(below.contains(&id.to_string()), "{id} in {below:?}");
    }
    let kid = store
        .token_by_hash("hash-kid".into())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kid.token.parent_id.as_deref(), Some("root"));
    assert!(matches!(
        store.revoke_token("root-admin".into(), "kid".into()).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        store
            .revoke_token("alice".into(), "kid".into())
            .await
            .unwrap(),
        Revoked {
            tokens: 3,
            users: {
                let mut users = vec!["alice".to_string(), "root-admin".to_string()];
                users.sort();
                users
            }
        },
        "the count, and whose (for each host's token cache)"
    );
    for (hash, revoked) in [
        ("hash-root", false),
        ("hash-kid", true),
        ("hash-kid2", false),
        ("hash-grandkid", true),
        ("hash-admins", true),
    ] {
        let t = store.token_by_hash(hash.into()).await.unwrap().unwrap();
        assert_eq!(t.token.revoked_at.is_some(), revoked, "{hash}");
        assert_eq!(
            t.slot.is_none(),
            revoked,
            "{hash}: slots go with revocation"
        );
    }

    // Grants: one per user, package, code and manifest (a second replaces it, keeping its
    // id), listed newest first, found exactly, removed by their user only.
    let grant = |id: &str, sha: &str, at: i64| GrantRow {
        id: id.into(),
        user: "alice".into(),
        project: "acme".into(),
        package: "tool".into(),
        version: 2,
        sha256: sha.into(),
        manifest_sha256: "m1".into(),
        names: vec!["API_KEY".into(), "team/*".into()],
        key_id: "key-alice".into(),
        mac: "00ff".into(),
        created_at: at,
    };
    let g1 = store.put_grant(grant("g1", "s1", 1)).await.unwrap();
    assert_eq!(g1.names, ["API_KEY", "team/*"]);
    store.put_grant(grant("g2", "s2", 2)).await.unwrap();
    let again = store
        .put_grant(GrantRow {
            mac: "aa".into(),
            ..grant("g3", "s1", 3)
        })
        .await
        .unwrap();
    assert_eq!((again.id.as_str(), again.mac.as_str()), ("g1", "aa"));
    let ids: Vec<String> = store
        .list_grants("alice".into())
        .await
        .unwrap()
        .into_iter()
        .map(|g| g.id)
        .collect();
    assert_eq!(ids, ["g1", "g2"]);
    let found = |sha: &str, manifest: &str| {
        store.find_grant(
            "alice".into(),
            "acme".into(),
            "tool".into(),
            sha.into(),
            manifest.into(),
        )
    };
    assert_eq!(found("s2", "m1").await.unwrap().unwrap().id, "g2");
    assert!(found("s2", "m2").await.unwrap().is_none());
    assert!(found("s9", "m1").await.unwrap().is_none());
    assert!(matches!(
        store.delete_grant("root-admin".into(), "g2".into()).await,
        Err(StoreError::NotFound(_))
    ));
    store
        .delete_grant("alice".into(), "g2".into())
        .await
        .unwrap();
    assert!(found("s2", "m1").await.unwrap().is_none());
    assert!(
        store
            .token_by_hash("hash-t4".into())
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.enrollment("ehash".into()).await.unwrap().is_none());
    assert!(store.has_user_key("alice".into()).await.unwrap());
    assert!(matches!(
        store
            .set_member("nope".into(), "alice".into(), Role::Viewer, "a".into())
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store
            .set_member("acme".into(), "bob".into(), Role::Viewer, "a".into())
            .await,
        Err(StoreError::NotFound(_))
    ));
    store
        .set_member("acme".into(), "alice".into(), Role::Viewer, "a".into())
        .await
        .unwrap();
    store
        .set_member("acme".into(), "alice".into(), Role::Developer, "a".into())
        .await
        .unwrap();
    store
        .set_member("other".into(), "alice".into(), Role::Admin, "a".into())
        .await
        .unwrap();
    assert_eq!(
        store.role_of("acme".into(), "alice".into()).await.unwrap(),
        Some(Role::Developer)
    );
    assert_eq!(store.list_members("acme".into()).await.unwrap().len(), 1);
    assert_eq!(
        store
            .memberships("alice".into())
            .await
            .unwrap()
            .iter()
            .map(|m| (m.project.as_str(), m.role))
            .collect::<Vec<_>>(),
        [("acme", Role::Developer), ("other", Role::Admin)]
    );
    store
        .remove_member("acme".into(), "alice".into())
        .await
        .unwrap();
    assert!(matches!(
        store.remove_member("acme".into(), "alice".into()).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        store.role_of("acme".into(), "alice".into()).await.unwrap(),
        None
    );

    // Execution records.
    let now = now_ms();
    store
        .insert_executions(vec![
            execution("e1", "api", now - 3000, "ok"),
            execution("e2", "api", now - 2000, "trapped"),
            execution("e3", "web", now - 1000, "ok"),
            execution("old", "web", now - 10_000_000, "ok"),
        ])
        .await
        .unwrap();
    let list = |package: Option<&str>, status: Option<&str>, after: Option<i64>| {
        store.list_executions(ExecutionFilter {
            project: Some("acme".into()),
            package: package.map(Into::into),
            status: status.map(Into::into),
            after,
            limit: 10,
            ..Default::default()
        })
    };
    let ids = |rows: Vec<ExecutionRow>| rows.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(
        ids(list(None, None, None).await.unwrap()),
        ["e3", "e2", "e1", "old"]
    );
    assert_eq!(
        ids(list(Some("api"), None, None).await.unwrap()),
        ["e2", "e1"]
    );
    assert_eq!(
        ids(list(None, Some("trapped"), None).await.unwrap()),
        ["e2"]
    );
    assert_eq!(
        ids(list(None, None, Some(now - 2500)).await.unwrap()),
        ["e3", "e2"]
    );
    // A page's cursor: older than (start time, id) in the list's order, ties broken by id.
    let before = |at: i64, id: &str| {
        store.list_executions(ExecutionFilter {
            project: Some("acme".into()),
            before: Some((at, id.into())),
            limit: 10,
            ..Default::default()
        })
    };
    assert_eq!(ids(before(now - 2000, "e2").await.unwrap()), ["e1", "old"]);
    assert_eq!(
        ids(before(now - 2000, "zz").await.unwrap()),
        ["e2", "e1", "old"]
    );
    let got = store
        .execution("acme".into(), "e2".into())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        got.credentials.used[0].count, 2,
        "the credential log round-trips"
    );
    assert_eq!(
        got.outbound,
        [OutboundHost {
            host: "api.example.com".into(),
            sent: 2,
            refused: 1
        }],
        "the outbound hosts round-trip"
    );
    // Sealed records are found by their user, and by id among them.
    let mut sealed = execution("s1", "web", now - 500, "ok");
    sealed.sealed_for = Some("alice".into());
    sealed.project = "sealed-elsewhere".into();
    store.insert_executions(vec![sealed]).await.unwrap();
    let of = |user: &str, id: Option<&str>| {
        store.list_executions(ExecutionFilter {
            sealed_for: Some(user.into()),
            id: id.map(Into::into),
            limit: 10,
            ..Default::default()
        })
    };
    assert_eq!(ids(of("alice", None).await.unwrap()), ["s1"]);
    assert_eq!(ids(of("alice", Some("s1")).await.unwrap()), ["s1"]);
    assert!(of("alice", Some("e2")).await.unwrap().is_empty());
    assert!(of("bob", None).await.unwrap().is_empty());
    assert_eq!(
        (
            got.http_status,
            got.secrets,
            got.stdout,
            got.stderr_truncated
        ),
        (
            Some(200),
            vec!["package:DB".to_string()],
            b"out".to_vec(),
            true
        )
    );
    assert!(
        store
            .execution("other".into(), "e2".into())
            .await
            .unwrap()
            .is_none(),
        "by project"
    );
    let dropped = store
        .prune_executions(
            vec![("acme".into(), "api".into())],
            1,
            3_600_000,
            vec!["acme".into()],
            u64::MAX,
        )
        .await
        .unwrap();
    assert_eq!(
        dropped, 2,
        "one past the per-package count, one past the age"
    );
    assert_eq!(ids(list(None, None, None).await.unwrap()), ["e3", "e2"]);
    let dropped = store
        .prune_executions(Vec::new(), 100, 3_600_000, vec!["acme".into()], 6)
        .await
        .unwrap();
    assert_eq!(dropped, 1, "6 bytes of output keep the newest record only");

    // The audit log.
    for (at, actor, project) in [
        (1000, "alice", Some("acme")),
        (2000, "bob", Some("other")),
        (3000, "alice", None),
    ] {
        store.append_audit(audit(at, actor, project)).await.unwrap();
    }
    let all = |f: AuditFilter| AuditFilter { limit: 10, ..f };
    let cases: [(AuditFilter, &[i64]); 5] = [
        (all(AuditFilter::default()), &[3000, 2000, 1000]),
        (
            all(AuditFilter {
                actor: Some("alice".into()),
                ..AuditFilter::default()
            }),
            &[3000, 1000],
        ),
        (
            all(AuditFilter {
                project: Some("other".into()),
                ..AuditFilter::default()
            }),
            &[2000],
        ),
        (
            all(AuditFilter {
                since: Some(1500),
                until: Some(3000),
                ..AuditFilter::default()
            }),
            &[2000],
        ),
        (
            AuditFilter {
                limit: 1,
                ..AuditFilter::default()
            },
            &[3000],
        ),
    ];
    for (filter, expected) in cases {
        let rows = store.query_audit(filter.clone()).await.unwrap();
        assert!(rows.iter().all(|r| r.status == 200 && r.outcome == "ok"));
        let ats: Vec<i64> = rows.iter().map(|r| r.at).collect();
        assert_eq!(ats, expected, "{filter:?}");
    }
    // A page's cursor (`before`, a record's id), and the action and outcome filters.
    let every = store
        .query_audit(all(AuditFilter::default()))
        .await
        .unwrap();
    let older = store
        .query_audit(all(AuditFilter {
            before: Some(every[0].id),
            ..AuditFilter::default()
        }))
        .await
        .unwrap();
    assert_eq!(older.iter().map(|r| r.at).collect::<Vec<_>>(), [2000, 1000]);
    let by = |action: &str, outcome: &str| {
        all(AuditFilter {
            action: Some(action.into()),
            outcome: Some(outcome.into()),
            ..AuditFilter::default()
        })
    };
    assert_eq!(
        store
            .query_audit(by("GET /v1/projects", "ok"))
            .await
            .unwrap()
            .len(),
        3
    );
    for (action, outcome) in [
        ("DELETE /v1/projects", "ok"),
        ("GET /v1/projects", "denied"),
    ] {
        assert!(
            store
                .query_audit(by(action, outcome))
                .await
                .unwrap()
                .is_empty()
        );
    }
    assert_eq!(store.prune_audit(2500).await.unwrap(), 2);

    // Changes published from outside the store reach subscribers.
    let secret = Change::Secret {
        scope: "project".into(),
        owner: "acme".into(),
        name: "DB".into(),
    };
    store.publish(secret.clone()).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if feed.recv().await.unwrap() == secret {
                break;
            }
        }
    })
    .await
    .expect("the published change is heard");
    let health = store.health().await;
    assert!(health.store.is_ok() && health.feed.is_ok(), "{health:?}");

    // Pruning (what `edgeward dev` does after each deploy) keeps the newest `keep` versions
    // and the current one, and deletes the components no version uses any more.
    let others = store
        .list_versions("acme".into(), "api".into())
        .await
        .unwrap()
        .1;
    for sha in ["p1", "p2", "p3", "p4", "p5", "p2"] {
        deploy(&store, "acme", "pruned", sha).await;
    }
    store
        .set_current("acme".into(), "pruned".into(), 1)
        .await
        .unwrap();
    let mut gone = store
        .prune_versions("acme".into(), "pruned".into(), 2)
        .await
        .unwrap();
    gone.sort();
    assert_eq!(gone, ["p3", "p4"], "p2 is version 6's too");
    let (pkg, versions) = store
        .list_versions("acme".into(), "pruned".into())
        .await
        .unwrap();
    assert_eq!(pkg.current_version, Some(1));
    assert_eq!(
        versions.iter().map(|v| v.version).collect::<Vec<_>>(),
        [1, 5, 6]
    );
    assert!(store.blob("p3".into()).await.is_err());
    assert_eq!(store.blob("p2".into()).await.unwrap().len(), 64);
    let names = store.blob_names().await.unwrap();
    assert!(
        ["p1", "p2", "p5"]
            .iter()
            .all(|n| names.iter().any(|m| m == n))
            && !names.iter().any(|m| m == "p3" || m == "p4"),
        "{names:?}"
    );
    assert!(
        store
            .prune_versions("acme".into(), "pruned".into(), 2)
            .await
            .unwrap()
            .is_empty(),
        "nothing more to prune"
    );
    // Other packages keep every version.
    let (_, api) = store
        .list_versions("acme".into(), "api".into())
        .await
        .unwrap();
    assert_eq!(
        api.iter().map(|v| v.version).collect::<Vec<_>>(),
        others.iter().map(|v| v.version).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn the_sqlite_store_conforms() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("db")).unwrap();
    assert_eq!(store.engine(), "sqlite");
    suite(store).await;
}

#[tokio::test]
async fn the_postgres_store_conforms() {
    let url = Postgres::shared().create_database();
    let store = Store::connect(&url).await.unwrap();
    assert_eq!(store.engine(), "postgres");
    suite(store).await;
    // A second connection migrates nothing again and sees the same data.
    let again = Store::connect(&url).await.unwrap();
    assert_eq!(again.list_projects().await.unwrap().len(), 2);
}

/// Two hosts (two stores on one database) deploying the same package at once: every deploy
/// gets its own version number, none is lost, and the current version is the last committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_deploying_one_package_at_once_each_get_a_version() {
    let url = Postgres::shared().create_database();
    let a = Store::connect(&url).await.unwrap();
    let b = Store::connect(&url).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..40 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            store
                .add_version(edgeward_host::store::NewVersion {
                    project: "acme".into(),
                    package: "api".into(),
                    sha256: format!("sha{i}"),
                    bytes: blob(i as u8),
                    manifest: "{}".into(),
                    by: "alice".into(),
                    create_project: true,
                })
                .await
                .unwrap()
        }));
    }
    let mut committed = Vec::new();
    for t in tasks {
        committed.push(t.await.unwrap());
    }
    let versions: BTreeSet<i64> = committed.iter().map(|c| c.version).collect();
    assert_eq!(versions, (1..=40).collect(), "no duplicate, no gap");
    let generations: BTreeSet<i64> = committed.iter().map(|c| c.generation).collect();
    assert_eq!(generations.len(), 40, "each change has its own generation");
    // The version with the greatest generation committed last, and is current.
    let last = committed.iter().max_by_key(|c| c.generation).unwrap();
    let current = b
        .current("acme".into(), "api".into())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (current.version.version, current.generation),
        (last.version, last.generation)
    );
    let (_, listed) = a.list_versions("acme".into(), "api".into()).await.unwrap();
    assert_eq!(listed.len(), 40);
}

/// A change made through one host is heard by another within a second, and a host whose
/// database restarts hears that it must resynchronise, then hears new changes again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_reaches_other_hosts_and_survives_a_database_restart() {
    let mut pg = Postgres::start();
    let url = pg.create_database();
    let a = Store::connect(&url).await.unwrap();
    let b = Store::connect(&url).await.unwrap();
    let mut heard = b.subscribe();
    let started = std::time::Instant::now();
    let committed = a
        .add_version(edgeward_host::store::NewVersion {
            project: "acme".into(),
            package: "api".into(),
            sha256: "aa".into(),
            bytes: blob(1),
            manifest: "{}".into(),
            by: "alice".into(),
            create_project: true,
        })
        .await
        .unwrap();
    let change = tokio::time::timeout(Duration::from_secs(1), heard.recv())
        .await
        .expect("heard within a second")
        .unwrap();
    assert_eq!(
        change,
        Change::Package {
            project: "acme".into(),
            package: "api".into(),
            generation: committed.generation,
        }
    );
    println!("feed delay: {:?}", started.elapsed());

    pg.stop();
    let health = b.health().await;
    assert!(health.store.is_err(), "{health:?}");
    assert!(matches!(
        b.list_projects().await,
        Err(StoreError::Unavailable(_))
    ));
    pg.restart();
    // The listener reconnects by itself and tells subscribers to reload everything.
    let resync = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            if heard.recv().await.unwrap() == Change::Resync {
                break;
            }
        }
    })
    .await;
    assert!(resync.is_ok(), "no resync after the restart: {}", pg.log());
    a.publish(Change::Identity {
        user: "alice".into(),
    })
    .await
    .unwrap();
    let after = tokio::time::timeout(Duration::from_secs(1), heard.recv())
        .await
        .expect("new changes are heard after the restart")
        .unwrap();
    assert_eq!(
        after,
        Change::Identity {
            user: "alice".into()
        }
    );
    assert!(b.health().await.feed.is_ok());
}
