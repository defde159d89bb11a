//! `login`, `logout`, `whoami`, `enroll`, `users …` and `tokens …`: who the caller is.

use super::client::{Client, ClientError, arg_or_stdin, emit, err, json_mode, table};
use super::{ConnArgs, TokensCommand, UsersCommand, parse_duration_secs};
use crate::api::model::{TokenList, UserList};
use crate::code::ErrorCode;
use reqwest::Method;

/// `edgeward login`: checks the token against the API, then keeps both under the profile and
/// makes it the current one.
pub(super) async fn login(conn: ConnArgs) -> Result<(), ClientError> {
    let name = conn.profile.clone().unwrap_or_else(|| "default".into());
    let api = conn.api.clone().ok_or_else(|| {
        err(
            ErrorCode::BadEntry,
            "login needs the API's URL: --api URL (or EDGEWARD_API)",
        )
    })?;
    let token = match &conn.token {
        Some(t) => t.clone(),
        None if std::io::IsTerminal::is_terminal(&std::io::stdin()) => {
            read_hidden(&format!("token for {api} (not shown): "))
                .map_err(|e| err(ErrorCode::Io, format!("cannot read the token: {e}")))?
        }
        None => arg_or_stdin("-".into())?,
    };
    let token = token.trim().to_string();
    if token.is_empty() {
        return Err(err(ErrorCode::BadEntry, "no token given"));
    }
    let client = Client::from_args(&ConnArgs {
        api: Some(api.clone()),
        token: Some(token.clone()),
        profile: None,
        data_dir: conn.data_dir.clone(),
    })?;
    let me: crate::api::model::Whoami = client
        .send_as(client.request(Method::GET, "/v1/whoami"))
        .await?;
    let mut profiles = super::profiles::Profiles::load()?;
    profiles.profiles.insert(
        name.clone(),
        super::profiles::Profile {
            api: client.api().to_string(),
            token,
        },
    );
    profiles.current = Some(name.clone());
    let path = profiles.save()?;
    if json_mode() {
        emit(&serde_json::json!({
            "profile": name,
            "api": client.api(),
            "user": me.user,
            "file": path,
        }));
    } else {
        println!(
            "logged in to {} as {} (profile {name}, kept in {})",
            client.api(),
            me.user,
            path.display()
        );
    }
    Ok(())
}

/// Reads a line from the terminal without echo. Echo is off before the prompt is shown, so
/// nothing typed as soon as the prompt appears is echoed (rpassword, used before, showed the prompt first),
/// and it is turned back on however the read ends.
pub(super) fn read_hidden(prompt: &str) -> std::io::Result<String> {
    use rustix::termios::{LocalModes, OptionalActions, tcgetattr, tcsetattr};
    use std::io::{BufRead, Write};
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")?;
    let before = tcgetattr(&tty)?;
    let mut hidden = before.clone();
    hidden.local_modes.remove(LocalModes::ECHO);
    hidden.local_modes.insert(LocalModes::ECHONL);
    tcsetattr(&tty, OptionalActions::Flush, &hidden)?;
    struct Restore<'a>(&'a std::fs::File, rustix::termios::Termios);
    impl Drop for Restore<'_> {
        fn drop(&mut self) {
            let _ = tcsetattr(self.0, OptionalActions::Now, &self.1);
        }
    }
    let _restore = Restore(&tty, before);
    let mut out = &tty;
    out.write_all(prompt.as_bytes())?;
    out.flush()?;
    let mut line = zeroize::Zeroizing::new(String::new());
    std::io::BufReader::new(&tty).read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// `logout`: forgets a profile.
pub(super) fn logout(profile: String) -> Result<(), ClientError> {
    let mut profiles = super::profiles::Profiles::load()?;
    if profiles.profiles.remove(&profile).is_none() {
        return Err(err(ErrorCode::NotFound, format!("no profile {profile:?}")));
    }
    if profiles.current.as_deref() == Some(profile.as_str()) {
        // The current one is gone: `default` if it is left, else the only one left, else none
        // (then `--profile NAME` picks one).
        profiles.current = if profiles.profiles.contains_key("default") {
            Some("default".to_string())
        } else if profiles.profiles.len() == 1 {
            profiles.profiles.keys().next().cloned()
        } else {
            None
        };
    }
    profiles.save()?;
    if json_mode() {
        emit(&serde_json::json!({ "removed": profile, "current": profiles.current }));
    } else {
        println!("forgot profile {profile}");
        match &profiles.current {
            Some(current) => println!("current profile: {current}"),
            None if !profiles.profiles.is_empty() => println!(
                "no current profile: name one with --profile ({})",
                profiles
                    .profiles
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None => {}
        }
    }
    Ok(())
}

/// `whoami`.
pub(super) async fn whoami(conn: ConnArgs) -> Result<(), ClientError> {
    let client = Client::from_args(&conn)?;
    let me = client
        .send(client.request(Method::GET, "/v1/whoami"))
        .await?;
    if json_mode() {
        emit(&me);
        return Ok(());
    }
    println!(
        "{}{}",
        me["user"].as_str().unwrap_or_default(),
        if me["platform_admin"].as_bool() == Some(true) {
            " (platform admin)"
        } else {
            ""
        }
    );
    for p in me["projects"].as_array().into_iter().flatten() {
        println!(
            "  {} {}",
            p["project"].as_str().unwrap_or_default(),
            p["role"].as_str().unwrap_or_default()
        );
    }
    match me["user_key"].as_str() {
        Some(key) => println!("this token opens your user secrets (data key {key})"),
        None => println!(
            "this token opens none of your user secrets (issued by {})",
            me["issued_by"].as_str().unwrap_or_default()
        ),
    }
    if let Some(origin) = me["key_origin"].as_object() {
        println!(
            "that key was made by redeeming code ewe_…{} (enrollment {} by {}) at {} \
             from {} with {}: if that was not you, enroll again and revoke this token",
            origin["code_hint"].as_str().unwrap_or("?"),
            origin["enrollment"].as_str().unwrap_or_default(),
            origin["created_by"].as_str().unwrap_or_default(),
            origin["redeemed_at"].as_str().unwrap_or_default(),
            origin["redeemed_from"]
                .as_str()
                .unwrap_or("an unknown address"),
            origin["redeemed_client"]
                .as_str()
                .unwrap_or("an unknown client"),
        );
    }
    if let Some(children) = me["descendants"].as_array().filter(|d| !d.is_empty()) {
        println!("tokens made from this one (each dies with it):");
        for t in children {
            println!(
                "  {} {:?} expires {}{}",
                t["id"].as_str().unwrap_or_default(),
                t["name"].as_str().unwrap_or_default(),
                t["expires_at"].as_str().unwrap_or("never"),
                if t["revoked_at"].is_string() {
                    " [revoked]"
                } else {
                    ""
                },
            );
        }
    }
    let others = me["tokens_issued_by_others"].as_array();
    if let Some(others) = others.filter(|o| !o.is_empty()) {
        println!("tokens others issued for you:");
        for t in others {
            println!(
                "  {} {:?} issued by {} at {}{}{}",
                t["id"].as_str().unwrap_or_default(),
                t["name"].as_str().unwrap_or_default(),
                t["issued_by"].as_str().unwrap_or_default(),
                t["created_at"].as_str().unwrap_or_default(),
                if t["user_key"].is_string() {
                    " (enrolled: holds a data key of its own)"
                } else {
                    ""
                },
                if t["revoked_at"].is_string() {
                    " [revoked]"
                } else {
                    ""
                },
            );
        }
    }
    Ok(())
}

/// `enroll`: redeems an enrollment code.
pub(super) async fn enroll(
    code: String,
    name: Option<String>,
    conn: ConnArgs,
) -> Result<(), ClientError> {
    let client = Client::from_args(&conn)?;
    let code = arg_or_stdin(code)?;
    let body = client
        .send(
            client
                .anonymous(Method::POST, "/v1/enroll")
                .json(&crate::api::model::Enroll { code, name }),
        )
        .await?;
    if json_mode() {
        emit(&body);
        return Ok(());
    }
    eprintln!(
        "enrolled {}: token {} below, with data key {}; it is shown once, store it now",
        body["user"].as_str().unwrap_or_default(),
        body["id"].as_str().unwrap_or_default(),
        body["user_key"].as_str().unwrap_or_default(),
    );
    if let Some(note) = body["note"].as_str().filter(|n| n.contains("NEW data key")) {
        eprintln!("note: {note}");
    }
    println!("{}", body["token"].as_str().unwrap_or_default());
    Ok(())
}

pub(super) async fn users(cmd: UsersCommand) -> Result<(), ClientError> {
    match cmd {
        UsersCommand::Create {
            name,
            platform_admin,
            conn,
        } => {
            let client = Client::from_args(&conn)?;
            let body = client
                .send(client.request(Method::POST, "/v1/users").json(
                    &crate::api::model::CreateUser {
                        name: name.clone(),
                        platform_admin,
                    },
                ))
                .await?;
            if json_mode() {
                emit(&body);
            } else {
                println!("created user {name}");
            }
        }
        UsersCommand::Enroll {
            name,
            expires_in,
            conn,
        } => {
            let client = Client::from_args(&conn)?;
            let expires_in = expires_in.as_deref().map(parse_duration_secs).transpose()?;
            let body = client
                .send(
                    client
                        .request(Method::POST, &format!("/v1/users/{name}/enrollments"))
                        .json(&crate::api::model::CreateEnrollment { expires_in }),
                )
                .await?;
            if json_mode() {
                emit(&body);
                return Ok(());
            }
            eprintln!(
                "enrollment code {} for {name}, valid until {}; single use, shown once: hand \
                 it to {name}, who runs `edgeward enroll CODE`",
                body["id"].as_str().unwrap_or_default(),
                body["expires_at"].as_str().unwrap_or_default()
            );
            println!("{}", body["code"].as_str().unwrap_or_default());
        }
        UsersCommand::Delete {
            name,
            force,
            yes,
            conn,
        } => {
            super::client::confirm(
                yes,
                &format!("delete user {name} and revoke every token of theirs?"),
            )?;
            let client = Client::from_args(&conn)?;
            let path = format!("/v1/users/{name}{}", if force { "?force=true" } else { "" });
            let body: crate::api::model::UserDeleted = client
                .send_as(client.request(Method::DELETE, &path))
                .await?;
            if json_mode() {
                emit(&body);
                return Ok(());
            }
            println!(
                "deleted user {}: {} token(s) revoked, {} user secret(s) destroyed, removed \
                 from {}",
                body.user,
                body.tokens_revoked,
                body.secrets,
                if body.projects.is_empty() {
                    "no project".to_string()
                } else {
                    body.projects.join(", ")
                }
            );
        }
        UsersCommand::List { conn } => {
            let client = Client::from_args(&conn)?;
            let body: UserList = client
                .send_as(client.request(Method::GET, "/v1/users"))
                .await?;
            if json_mode() {
                emit(&body);
                return Ok(());
            }
            let rows = body
                .users
                .into_iter()
                .map(|u| {
                    vec![
                        u.name,
                        if u.platform_admin {
                            "platform admin"
                        } else {
                            ""
                        }
                        .into(),
                        u.created_at,
                        u.created_by,
                    ]
                })
                .collect();
            println!("{}", table(&["NAME", "ROLE", "CREATED", "BY"], rows));
        }
    }
    Ok(())
}

/// `user`, or the caller's own name when none is given.
pub(super) async fn whoami_name(
    client: &Client,
    user: Option<String>,
) -> Result<String, ClientError> {
    match user {
        Some(u) => Ok(u),
        None => {
            let me = client
                .send(client.request(Method::GET, "/v1/whoami"))
                .await?;
            Ok(me["user"].as_str().unwrap_or_default().to_string())
        }
    }
}

pub(super) async fn tokens(cmd: TokensCommand) -> Result<(), ClientError> {
    match cmd {
        TokensCommand::Create {
            user,
            name,
            expires_in,
            conn,
        } => {
            let client = Client::from_args(&conn)?;
            let expires_in = expires_in.as_deref().map(parse_duration_secs).transpose()?;
            let user = whoami_name(&client, user).await?;
            let body = client
                .send(
                    client
                        .request(Method::POST, &format!("/v1/users/{user}/tokens"))
                        .json(&crate::api::model::CreateToken {
                            name: name.clone(),
                            expires_in,
                        }),
                )
                .await?;
            if json_mode() {
                emit(&body);
                return Ok(());
            }
            eprintln!(
                "created token {} for {user}; it is shown once, store it now",
                body["id"].as_str().unwrap_or_default()
            );
            println!("{}", body["token"].as_str().unwrap_or_default());
        }
        TokensCommand::List { user, conn } => {
            let client = Client::from_args(&conn)?;
            let user = whoami_name(&client, user).await?;
            let body: TokenList = client
                .send_as(client.request(Method::GET, &format!("/v1/users/{user}/tokens")))
                .await?;
            if json_mode() {
                emit(&body);
                return Ok(());
            }
            let rows = body
                .tokens
                .into_iter()
                .map(|t| {
                    let state = if t.revoked_at.is_some() {
                        "revoked"
                    } else {
                        "active"
                    };
                    vec![
                        t.id,
                        t.name,
                        t.expires_at.unwrap_or_else(|| "never".into()),
                        t.issued_by,
                        t.user_key.unwrap_or_else(|| "-".into()),
                        state.into(),
                    ]
                })
                .collect();
            println!(
                "{}",
                table(
                    &["ID", "NAME", "EXPIRES", "ISSUED BY", "USER KEY", "STATE"],
                    rows
                )
            );
        }
        TokensCommand::Revoke { id, user, conn } => {
            let client = Client::from_args(&conn)?;
            let user = whoami_name(&client, user).await?;
            client
                .send(client.request(Method::DELETE, &format!("/v1/users/{user}/tokens/{id}")))
                .await?;
            if json_mode() {
                emit(&serde_json::json!({ "revoked": id }));
            } else {
                println!("revoked {id}");
            }
        }
    }
    Ok(())
}
