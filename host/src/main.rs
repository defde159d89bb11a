//! The `edgeward` binary: parses the command line and hands off to the library.

use clap::Parser;
use edgeward_host::cli::{Cli, Command};
use edgeward_host::server::Server;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
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
        Command::Serve(args) => runtime.block_on(serve(args)),
        Command::Admin(command) => runtime.block_on(admin(command)),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut command = edgeward_host::cli::Cli::command();
            clap_complete::generate(shell, &mut command, "edgeward", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
        command => match runtime.block_on(edgeward_host::cli::client::run(command)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(e.exit_code())
            }
        },
    }
}

async fn admin(command: edgeward_host::cli::AdminCommand) -> ExitCode {
    use edgeward_host::cli::AdminCommand;
    let AdminCommand::Init { store, token_file } = command;
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
            let store = edgeward_host::store::Store::connect(&store.0).await?;
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
                eprintln!("admin token written to {} (0600)", path.display());
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

async fn serve(args: edgeward_host::cli::ServeArgs) -> ExitCode {
    edgeward_host::init_logging();
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
    println!("listening: data-plane http://{}", server.listen_addr());
    println!("listening: api http://{}", server.api_addr());
    if let Some(addr) = server.metrics_addr() {
        println!("listening: metrics http://{addr}");
    }
    match created {
        Some(created) => println!(
            "admin token: {} ({})",
            token_path.display(),
            if created { "created" } else { "existing" }
        ),
        None => println!("admin token: none on this host (cluster mode: `edgeward admin init`)"),
    }
    println!("ready");
    edgeward_host::server::wait_for_shutdown_signal().await;
    tracing::info!("shutting down: draining in-flight requests");
    server.shutdown().await;
    ExitCode::SUCCESS
}
