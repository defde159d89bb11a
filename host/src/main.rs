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
        command => match runtime.block_on(edgeward_host::cli::client::run(command)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
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
    println!(
        "admin token: {} ({})",
        token_path.display(),
        if created { "created" } else { "existing" }
    );
    println!("ready");
    edgeward_host::server::wait_for_shutdown_signal().await;
    tracing::info!("shutting down: draining in-flight requests");
    server.shutdown().await;
    ExitCode::SUCCESS
}
