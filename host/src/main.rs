//! The `edgeward` binary: parses the command line and hands off to the library.

use clap::Parser;
use edgeward_host::cli::{Cli, Command};
use edgeward_host::server::Server;
use std::process::ExitCode;

/// `argv` with the settings of `serve --config FILE` added as flags, for each flag that
/// neither the command line nor the environment sets. Other commands pass as they are.
fn with_config(argv: &[String]) -> Result<Vec<String>, String> {
    use clap::CommandFactory;
    use clap::parser::ValueSource;
    // A command line clap refuses is left for `parse` to explain.
    let Ok(matches) = Cli::command().try_get_matches_from(argv) else {
        return Ok(argv.to_vec());
    };
    let Some(("serve", serve)) = matches.subcommand() else {
        return Ok(argv.to_vec());
    };
    let Some(path) = serve.get_one::<std::path::PathBuf>("config") else {
        return Ok(argv.to_vec());
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the config file {}: {e}", path.display()))?;
    let table: toml::Table =
        toml::from_str(&text).map_err(|e| format!("{}: {}", path.display(), e.message()))?;
    let command = Cli::command();
    let flags = command
        .find_subcommand("serve")
        .map(|c| c.get_arguments().cloned().collect::<Vec<_>>())
        .unwrap_or_default();
    let mut out = argv.to_vec();
    for (key, value) in table {
        let arg = flags
            .iter()
            .find(|a| a.get_long() == Some(key.as_str()) && key != "config")
            .ok_or_else(|| {
                let known: Vec<&str> = flags
                    .iter()
                    .filter_map(|a| a.get_long())
                    .filter(|l| !matches!(*l, "config" | "help"))
                    .collect();
                format!(
                    "{}: unknown setting {key:?}; settings are serve's flags by their long \
                     names: {}",
                    path.display(),
                    known.join(", ")
                )
            })?;
        if matches!(
            serve.value_source(arg.get_id().as_str()),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        ) {
            continue;
        }
        let scalar = |v: &toml::Value| match v {
            toml::Value::String(s) => Ok(s.clone()),
            toml::Value::Integer(i) => Ok(i.to_string()),
            toml::Value::Float(f) => Ok(f.to_string()),
            other => Err(format!(
                "{}: {key} = {other}: expected a string or a number",
                path.display()
            )),
        };
        match &value {
            toml::Value::Boolean(true) => out.push(format!("--{key}")),
            toml::Value::Boolean(false) => {}
            toml::Value::Array(items) => {
                for item in items {
                    out.push(format!("--{key}"));
                    out.push(scalar(item)?);
                }
            }
            v => {
                out.push(format!("--{key}"));
                out.push(scalar(v)?);
            }
        }
    }
    Ok(out)
}

fn main() -> ExitCode {
    quiet_on_broken_pipe();
    edgeward_host::install_crypto();
    let argv: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let cli = match with_config(&argv) {
        Ok(args) => Cli::parse_from(args),
        Err(e) => {
            eprintln!("error: bad_entry: {e}");
            return ExitCode::from(2);
        }
    };
    edgeward_host::cli::client::set_output(cli.output);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: internal: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        Command::Serve(args) => runtime.block_on(serve(*args, argv)),
        Command::Admin(command) => runtime.block_on(admin(command)),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut command = edgeward_host::cli::Cli::command();
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut command, "edgeward", &mut script);
            use std::io::Write as _;
            match std::io::stdout().write_all(&script) {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::from(141),
                Err(e) => {
                    eprintln!("error: io: cannot write to stdout: {e}");
                    ExitCode::FAILURE
                }
                Ok(()) => ExitCode::SUCCESS,
            }
        }
        Command::New(args) => local(edgeward_host::cli::new::run(&args)),
        Command::Dev(args) => local(runtime.block_on(edgeward_host::cli::dev::run(args))),
        Command::Wit { out } => local(edgeward_host::cli::wit::run(out.as_deref())),
        command => local(runtime.block_on(edgeward_host::cli::client::run(command))),
    }
}

/// A command's exit: its error on stderr (one line, or under `-o json` one JSON document with
/// the same code) and the exit status of its class.
fn local(result: Result<(), edgeward_host::cli::ClientError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if edgeward_host::cli::client::json_mode() {
                eprintln!(
                    "{}",
                    serde_json::json!({ "error": { "code": e.code, "message": e.message } })
                );
            } else {
                eprintln!("error: {e}");
            }
            ExitCode::from(e.exit_code())
        }
    }
}

/// A reader that closed the pipe (`edgeward completions bash | head -1`) ends the command as
/// it ends any Unix tool, quietly with SIGPIPE's status, instead of a panic report: Rust
/// ignores SIGPIPE, so `println!` to a closed pipe panics with this message.
fn quiet_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}

async fn admin(command: edgeward_host::cli::AdminCommand) -> ExitCode {
    use edgeward_host::cli::AdminCommand;
    let AdminCommand::Init {
        store,
        store_ca,
        token_file,
    } = command;
    let result = async {
        if !(store.0.starts_with("postgres://") || store.0.starts_with("postgresql://")) {
            anyhow::bail!(
                "bad_entry: admin init is for a cluster's PostgreSQL store \
                 (postgres://user:password@host:port/database); a single host on SQLite \
                 creates admin.token in its data directory at first start"
            );
        }
        // The file first: once the admin exists, its token must have somewhere to go.
        let file = match &token_file {
            Some(path) => {
                use std::os::unix::fs::OpenOptionsExt as _;
                let file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)
                    .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", path.display()))?;
                Some((path, file))
            }
            None => None,
        };
        let made = async {
            let options = edgeward_host::store::PgOptions {
                ca: store_ca,
                ..edgeward_host::store::PgOptions::default()
            };
            let store = edgeward_host::store::Store::connect_with(&store.0, &options).await?;
            edgeward_host::auth::init_admin(&store).await
        }
        .await;
        let token = match (made, &file) {
            (Ok(token), _) => token,
            (Err(e), Some((path, _))) => {
                let _ = std::fs::remove_file(path);
                return Err(e);
            }
            (Err(e), None) => return Err(e),
        };
        match file {
            Some((path, mut file)) => {
                use std::io::Write as _;
                file.write_all(format!("{}\n", token.as_str()).as_bytes())?;
                if edgeward_host::cli::client::json_mode() {
                    edgeward_host::cli::client::emit(&serde_json::json!({ "token_file": path }));
                } else {
                    eprintln!("admin token written to {} (0600)", path.display());
                }
            }
            None if edgeward_host::cli::client::json_mode() => {
                edgeward_host::cli::client::emit(&serde_json::json!({ "token": token.as_str() }));
            }
            None => {
                eprintln!("admin token (shown once; store it like a password):");
                println!("{}", token.as_str());
            }
        }
        Ok(())
    }
    .await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: edgeward_host::cli::ServeArgs, argv: Vec<String>) -> ExitCode {
    if let Err(e) =
        edgeward_host::init_server_logging(args.log.as_deref(), args.log_format == "json")
    {
        eprintln!("error: bad_entry: {e}");
        return ExitCode::from(2);
    }
    let config = match args.into_config() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: bad_entry: {e}");
            return ExitCode::FAILURE;
        }
    };
    let server = match Server::start(config).await {
        Ok(server) => server,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let (token_path, created) = server.admin_token();
    if edgeward_host::cli::client::json_mode() {
        edgeward_host::cli::client::emit(&serde_json::json!({
            "data_plane": format!("http://{}", server.listen_addr()),
            "api": format!("http://{}", server.api_addr()),
            "metrics": server.metrics_addr().map(|a| format!("http://{a}")),
            "admin_token": created.map(|c| serde_json::json!({
                "path": token_path,
                "created": c,
            })),
            "ready": true,
        }));
    } else {
        println!("listening: data-plane http://{}", server.listen_addr());
        println!("listening: api http://{}", server.api_addr());
        if let Some(addr) = server.metrics_addr() {
            println!("listening: metrics http://{addr}");
        }
    }
    match created {
        _ if edgeward_host::cli::client::json_mode() => {}
        Some(created) => println!(
            "admin token: {} ({})",
            token_path.display(),
            if created { "created" } else { "existing" }
        ),
        None => println!("admin token: none on this host (cluster mode: `edgeward admin init`)"),
    }
    if !edgeward_host::cli::client::json_mode() {
        println!("ready");
    }
    // SIGHUP: the config file (and the environment) read again; the log filter, the
    // package limits and the outbound CA applied; anything else needs a restart.
    #[cfg(unix)]
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let shutdown = edgeward_host::server::wait_for_shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        #[cfg(unix)]
        let hangup = async {
            match hup.as_mut() {
                Some(h) => h.recv().await,
                None => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let hangup = std::future::pending::<Option<()>>();
        tokio::select! {
            _ = &mut shutdown => break,
            _ = hangup => reload(&server, &argv),
        }
    }
    tracing::info!("shutting down: draining in-flight requests");
    server.shutdown().await;
    ExitCode::SUCCESS
}

/// Applies what a SIGHUP can change: the log filter, the package limits and the outbound CA
/// bundle, from the command line, the environment and the config file as they are now. A bad
/// file (the config file, or an `--outbound-ca` bundle that does not read) changes nothing.
fn reload(server: &Server, argv: &[String]) {
    let parsed =
        with_config(argv).and_then(|args| Cli::try_parse_from(args).map_err(|e| e.to_string()));
    let args = match parsed {
        Ok(Cli {
            command: Command::Serve(args),
            ..
        }) => args,
        Ok(_) => return,
        Err(e) => {
            tracing::error!(error = %e, "SIGHUP: the configuration is invalid; nothing changed");
            return;
        }
    };
    let log = args.log.clone();
    let config = match (*args).into_config() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "SIGHUP: the configuration is invalid; nothing changed");
            return;
        }
    };
    if let Err(e) = edgeward_host::reload_log_filter(log.as_deref()) {
        tracing::error!(error = %e, "SIGHUP: the log filter was not changed");
    }
    for notice in server.reload_limits(&config) {
        tracing::warn!(%notice, "SIGHUP: a package asks for more than the new maximum");
    }
    if let Err(e) = server.reload_outbound_ca(&config) {
        tracing::error!(error = %e, "SIGHUP: the outbound CA was not changed");
    }
    tracing::info!("SIGHUP: configuration reloaded (log filter, package limits, outbound CA)");
}
