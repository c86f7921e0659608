//! The `hookwall` binary: parse the command line and hand over to the library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    hookwall::cli::main(hookwall::cli::Cli::parse())
}
