//! The `hookwall` binary: parse the command line, set up logging, hand over to the library.

use std::process::ExitCode;

use clap::Parser;
use hookwall::cli::{self, Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { config } => cli::check(&config),
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
