//! The `hookwall` binary: parse the command line, set up logging, hand over to the library.

use std::process::ExitCode;

use clap::Parser;
use hookwall::cli::{self, Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { config } => cli::check(&config),
        Command::Demo => match tokio::runtime::Runtime::new() {
            Ok(rt) => rt.block_on(hookwall::demo::run()),
            Err(e) => {
                eprintln!("hookwall: cannot start the async runtime: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Sign {
            config,
            route,
            body_file,
            curl,
            timestamp,
            id,
        } => cli::sign(&cli::SignArgs {
            config: &config,
            route: &route,
            body_file: &body_file,
            curl: curl.as_deref(),
            timestamp,
            id: id.as_deref(),
        }),
        Command::Run { config } => {
            let _guard = cli::init_logging(cli.log_format);
            match tokio::runtime::Runtime::new() {
                Ok(rt) => rt.block_on(cli::run(&config)),
                Err(e) => {
                    eprintln!("hookwall: cannot start the async runtime: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
