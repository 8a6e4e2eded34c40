//! `switchyard-app`: command-line parsing only; the work is in the library.

use clap::Parser;
use switchyard_app::cli::{Cli, Command};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    switchyard_app::node::init_logging();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("switchyard-app: cannot start the runtime: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Http(args) => switchyard_app::run_http(args).await,
            Command::Socket(args) => switchyard_app::run_socket(args).await,
            Command::Demo(args) => switchyard_app::demo::run(args).await,
        }
    });
    // Do not wait for background tasks (Redis reconnects) on the way out.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("switchyard-app: error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
