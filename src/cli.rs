//! The command line (CONTRACT §1 and §13). One file per command under `cli/`; `run`,
//! `check` and reload share config compilation and the build step (`gateway/`).

mod admin_client;
mod admin_command;
mod check;
mod deliveries;
mod echo;
mod presets;
mod queue;
mod reconcile;
mod run;
mod sign;
mod table;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// hookwall: a receiving-side webhook gateway.
#[derive(Debug, Parser)]
#[command(name = "hookwall", version, about)]
pub struct Cli {
    /// Log format (default: text on a terminal, json otherwise).
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormat>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable.
    Text,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway until SIGTERM/SIGINT; SIGHUP reloads the config.
    Run {
        /// Config file.
        #[arg(long, env = "HOOKWALL_CONFIG")]
        config: PathBuf,
    },
    /// Validate a config without starting anything.
    Check {
        /// Config file.
        #[arg(long, env = "HOOKWALL_CONFIG")]
        config: PathBuf,
        /// Also ask the running gateway (its admin listener) what a reload of this file
        /// would refuse.
        #[arg(long)]
        against_running: bool,
        /// The admin listener to ask (default: `[admin] listen` of the config).
        #[arg(long, value_name = "URL")]
        admin: Option<String>,
    },
    /// A self-contained tour on loopback: sends a valid, a tampered, a stale, a duplicate,
    /// an oversized and a rate-limited delivery and prints what happened.
    Demo,
    /// Print the headers a provider would send for a body, signed with one of the route's
    /// secrets (to test a deployment end to end).
    Sign(sign::SignArgs),
    /// A tiny upstream that prints every delivery it gets (headers and body).
    Echo {
        /// Where to listen.
        #[arg(long, default_value = "127.0.0.1:3000")]
        listen: std::net::SocketAddr,
    },
    /// Every provider preset, or one preset's facts: headers, signed payload, window,
    /// dedup key, event field, handshake.
    Presets {
        /// The preset to describe.
        name: Option<String>,
    },
    /// The delivery journal of the running gateway.
    #[command(subcommand)]
    Deliveries(deliveries::DeliveriesCommand),
    /// Send a journaled delivery (or every one a filter matches) to its route's upstream
    /// again.
    Replay(deliveries::ReplayArgs),
    /// Per route and target of the running gateway: queued, in flight, dead-lettered,
    /// oldest age.
    Queue(queue::QueueArgs),
    /// The dead letters of the running gateway: list, retry, discard.
    #[command(subcommand)]
    DeadLetters(queue::DeadLettersCommand),
    /// Polling the providers' APIs for missed deliveries: status, or run a route now.
    #[command(subcommand)]
    Reconcile(reconcile::ReconcileCommand),
}

/// Runs a command to its exit code.
pub fn main(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Check {
            config,
            against_running,
            admin,
        } => check::check(&config, against_running.then_some(admin)),
        Command::Demo => with_runtime(crate::demo::run()),
        Command::Sign(args) => sign::sign(&args),
        Command::Echo { listen } => with_runtime(echo::echo(listen)),
        Command::Presets { name } => presets::presets(name.as_deref()),
        Command::Deliveries(command) => with_runtime(deliveries::deliveries(command)),
        Command::Replay(args) => with_runtime(deliveries::replay(args)),
        Command::Queue(args) => with_runtime(queue::queue(args)),
        Command::DeadLetters(command) => with_runtime(queue::dead_letters(command)),
        Command::Reconcile(command) => with_runtime(reconcile::reconcile(command)),
        Command::Run { config } => {
            let _guard = init_logging(cli.log_format);
            with_runtime(run::run(&config))
        }
    }
}

/// Writes to stdout; a reader that went away (`| head`) is not an error worth a panic.
fn print(text: &str) {
    use std::io::Write;
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

/// Runs `main` on a multi-threaded runtime.
fn with_runtime(main: impl std::future::Future<Output = ExitCode>) -> ExitCode {
    match tokio::runtime::Runtime::new() {
        Ok(rt) => rt.block_on(main),
        Err(e) => {
            eprintln!("hookwall: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Installs the tracing subscriber; keep the guard alive so buffered lines are flushed.
pub fn init_logging(format: Option<LogFormat>) -> tracing_appender::non_blocking::WorkerGuard {
    let format = format.unwrap_or(if std::io::stderr().is_terminal() {
        LogFormat::Text
    } else {
        LogFormat::Json
    });
    // Logging happens off the request path: a slow stderr must not slow the proxy. The
    // worker thread writes whatever lines are queued into the buffer and flushes once per
    // batch, so a busy gateway makes one write(2) per batch instead of one per line.
    let stderr = std::io::BufWriter::with_capacity(64 * 1024, std::io::stderr());
    let (writer, guard) = tracing_appender::non_blocking(stderr);
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
    }
    guard
}
