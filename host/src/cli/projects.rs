//! `projects …`: create, list and set projects, and their members.

use super::client::{Client, ClientError, emit, err, json_mode, table};
use super::{ConnArgs, MembersCommand};
use crate::api::model::{MemberList, ProjectList};
use crate::code::ErrorCode;
use reqwest::Method;

/// `projects create`.
pub(super) async fn create(name: String, conn: ConnArgs) -> Result<(), ClientError> {
    let client = Client::from_args(&conn)?;
    let body = client
        .send(
            client
                .request(reqwest::Method::POST, "/v1/projects")
                .json(&crate::api::model::CreateProject { name: name.clone() }),
        )
        .await?;
    if json_mode() {
        emit(&body);
    } else {
        println!("created project {name}");
    }
    Ok(())
}

/// `projects delete`.
pub(super) async fn delete(
    name: String,
    force: bool,
    yes: bool,
    conn: ConnArgs,
) -> Result<(), ClientError> {
    super::client::confirm(
        yes,
        &format!(
            "delete project {name}{}?",
            if force {
                " with its packages, every version and its secrets"
            } else {
                ""
            }
        ),
    )?;
    let client = Client::from_args(&conn)?;
    let path = format!(
        "/v1/projects/{name}{}",
        if force { "?force=true" } else { "" }
    );
    let body: crate::api::model::ProjectDeleted = client
        .send_as(client.request(Method::DELETE, &path))
        .await?;
    if json_mode() {
        emit(&body);
    } else {
        println!(
            "deleted project {}{}",
            body.project,
            if body.packages.is_empty() {
                String::new()
            } else {
                format!(
                    " with packages {} and {} secret(s)",
                    body.packages.join(", "),
                    body.secrets
                )
            }
        );
    }
    Ok(())
}

/// `projects list`.
pub(super) async fn list(conn: ConnArgs) -> Result<(), ClientError> {
    let client = Client::from_args(&conn)?;
    let body: ProjectList = client
        .send_as(client.request(reqwest::Method::GET, "/v1/projects"))
        .await?;
    if json_mode() {
        emit(&body);
        return Ok(());
    }
    let rows = body
        .projects
        .into_iter()
        .map(|p| {
            let members = if p.members_read_secrets { "on" } else { "off" };
            vec![p.name, p.created_at, p.created_by, members.to_string()]
        })
        .collect();
    println!(
        "{}",
        table(&["NAME", "CREATED", "BY", "MEMBERS READ SECRETS"], rows)
    );
    Ok(())
}

/// `projects set`.
pub(super) async fn set(
    project: String,
    members_read_secrets: Option<bool>,
    conn: ConnArgs,
) -> Result<(), ClientError> {
    let client = Client::from_args(&conn)?;
    let Some(on) = members_read_secrets else {
        return Err(err(
            ErrorCode::BadEntry,
            "say what to change: --members-read-secrets on|off",
        ));
    };
    let body = client
        .send(
            client
                .request(reqwest::Method::PATCH, &format!("/v1/projects/{project}"))
                .json(&crate::api::model::ProjectSettings {
                    members_read_secrets: Some(on),
                }),
        )
        .await?;
    if json_mode() {
        emit(&body);
    } else if on {
        println!(
            "{project}: every member may now read its project secrets' values (each \
             read is audited)"
        );
    } else {
        println!("{project}: only project admins read its project secrets' values");
    }
    Ok(())
}

pub(super) async fn members(cmd: MembersCommand) -> Result<(), ClientError> {
    match cmd {
        MembersCommand::Add {
            project,
            user,
            role,
            conn,
        } => {
            let client = Client::from_args(&conn)?;
            let body = client
                .send(
                    client
                        .request(
                            Method::PUT,
                            &format!("/v1/projects/{project}/members/{user}"),
                        )
                        .json(&crate::api::model::SetMember {
                            role: parse_role(&role)?,
                        }),
                )
                .await?;
            if json_mode() {
                emit(&body);
            } else {
                println!("{user} is now {role} in {project}");
            }
        }
        MembersCommand::Remove {
            project,
            user,
            conn,
        } => {
            let client = Client::from_args(&conn)?;
            client
                .send(client.request(
                    Method::DELETE,
                    &format!("/v1/projects/{project}/members/{user}"),
                ))
                .await?;
            if json_mode() {
                emit(&serde_json::json!({ "removed": user, "project": project }));
            } else {
                println!("removed {user} from {project}");
            }
        }
        MembersCommand::List { project, conn } => {
            let client = Client::from_args(&conn)?;
            let body: MemberList = client
                .send_as(client.request(Method::GET, &format!("/v1/projects/{project}/members")))
                .await?;
            if json_mode() {
                emit(&body);
                return Ok(());
            }
            let rows = body
                .members
                .into_iter()
                .map(|m| {
                    vec![
                        m.user,
                        format!("{:?}", m.role).to_lowercase(),
                        m.granted_at,
                        m.granted_by,
                    ]
                })
                .collect();
            println!("{}", table(&["USER", "ROLE", "SINCE", "GRANTED BY"], rows));
        }
    }
    Ok(())
}

/// A member's role, checked here so a typo gets the list of roles rather than a parser's words.
fn parse_role(role: &str) -> Result<crate::store::Role, ClientError> {
    crate::store::Role::parse(role).ok_or_else(|| {
        err(
            ErrorCode::BadEntry,
            format!("--role {role:?}: a role is viewer, developer or admin"),
        )
    })
}
