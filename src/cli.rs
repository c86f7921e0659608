//! The command line (CONTRACT §1): `run` and `check` share config compilation with reload.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};
use tokio::net::TcpListener;

use crate::config::{compile_file, Config, DedupSource};
use crate::gateway::Gateway;
use crate::stack::checks;

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
    /// Run the gateway until SIGTERM/SIGINT.
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
    },
    /// A self-contained tour on loopback: sends a valid, a tampered, a stale, a duplicate,
    /// an oversized and a rate-limited delivery and prints what happened.
    Demo,
    /// Print the headers a provider would send for a body, signed with the route's first
    /// secret (to test a deployment end to end).
    Sign {
        /// Config file.
        #[arg(long, env = "HOOKWALL_CONFIG")]
        config: PathBuf,
        /// Route name.
        #[arg(long)]
        route: String,
        /// The body to sign, sent byte for byte.
        #[arg(long)]
        body_file: PathBuf,
        /// Print a runnable curl command for this URL instead of the headers.
        #[arg(long)]
        curl: Option<String>,
        /// Unix seconds to sign (default: now).
        #[arg(long)]
        timestamp: Option<i64>,
        /// Delivery id to sign (default: a fresh one).
        #[arg(long)]
        id: Option<String>,
    },
}

/// Arguments of `hookwall sign`.
#[derive(Debug)]
pub struct SignArgs<'a> {
    /// Config file.
    pub config: &'a Path,
    /// Route name.
    pub route: &'a str,
    /// Body file.
    pub body_file: &'a Path,
    /// curl target.
    pub curl: Option<&'a str>,
    /// Fixed timestamp.
    pub timestamp: Option<i64>,
    /// Fixed id.
    pub id: Option<&'a str>,
}

/// `stripe-signature` → `Stripe-Signature`.
fn display_name(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut c = part.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// Single-quotes a word for a POSIX shell.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// `url` with the query parameter `param` (`name=value`) added, unless it has one so named.
fn with_param(url: &str, param: &str) -> String {
    let name = param.split('=').next().unwrap_or(param);
    let query = url.split_once('?').map_or("", |(_, q)| q);
    if form_urlencoded::parse(query.as_bytes()).any(|(k, _)| k == name) {
        return url.to_owned();
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{param}")
}

/// The header a route takes its delivery id from, when the signed headers do not carry it.
fn unsigned_id_header(
    source: &DedupSource,
    signed: &[(http::HeaderName, String)],
) -> Option<http::HeaderName> {
    let names = match source {
        DedupSource::Header(name) => std::slice::from_ref(name),
        DedupSource::AnyHeader(names) => names.as_slice(),
        DedupSource::JsonPointer(_) | DedupSource::BodySha256 => return None,
    };
    let carried = signed.iter().any(|(h, _)| names.contains(h));
    (!carried).then(|| names.first().cloned()).flatten()
}

/// `hookwall sign`: the headers (or a curl command) for one delivery.
pub fn sign(args: &SignArgs<'_>) -> ExitCode {
    let config = match compile_file(args.config) {
        Ok(c) => c,
        Err(errors) => {
            for line in errors.lines() {
                eprintln!("{line}");
            }
            return ExitCode::FAILURE;
        }
    };
    let Some(route) = config.routes.iter().find(|r| r.name == args.route) else {
        let names: Vec<&str> = config.routes.iter().map(|r| r.name.as_str()).collect();
        eprintln!(
            "hookwall sign: no route named {:?} (routes: {})",
            args.route,
            names.join(", ")
        );
        return ExitCode::FAILURE;
    };
    let body = match std::fs::read(args.body_file) {
        Ok(b) => b,
        Err(e) => {
            eprintln!(
                "hookwall sign: cannot read {}: {e}",
                args.body_file.display()
            );
            return ExitCode::FAILURE;
        }
    };
    let timestamp = args.timestamp.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
    });
    let fresh_id = format!("msg_{}", crate::context::RequestIds::default().next_id());
    let id = args.id.unwrap_or(&fresh_id);
    // Twilio calls a different URL for a JSON body (`?bodySHA256=`): the curl target gets
    // it too, unless it already has it.
    let url_param = route.verifier.url_param_for(&body);
    let target = args.curl.map(|t| match &url_param {
        Some(p) => with_param(t, p),
        None => t.to_owned(),
    });
    // The provider signs the URL it calls: public_url, with the target's query if any.
    let query = match &target {
        Some(t) => t.split_once('?').map(|(_, q)| q.to_owned()),
        None => url_param.clone(),
    };
    let url = route.public_url.as_ref().map(|base| match &query {
        Some(q) if !base.contains('?') => format!("{base}?{q}"),
        _ => base.clone(),
    });
    let input = crate::verify::SignInput {
        body: &body,
        timestamp,
        id,
        url: url.as_deref(),
        method: &http::Method::POST,
    };
    let mut headers = match route.verifier.sign(&input) {
        Ok(h) => h,
        Err(why) => {
            eprintln!(
                "hookwall sign: route {:?} (provider {:?}): {why}",
                route.name, route.provider
            );
            return ExitCode::FAILURE;
        }
    };
    // The delivery id travels in its own header where the provider does not sign it.
    if let Some(name) = route
        .dedup
        .as_ref()
        .and_then(|d| unsigned_id_header(&d.source, &headers))
    {
        headers.push((name, id.to_owned()));
    }
    let json = serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_ok();
    if json {
        headers.push((http::header::CONTENT_TYPE, "application/json".to_owned()));
    }
    if let (None, Some(p)) = (&target, &url_param) {
        eprintln!("hookwall sign: the provider adds {p} to the URL it calls for this body; send it there (--curl URL does)");
    }
    match target {
        None => {
            for (name, value) in headers {
                println!("{}: {value}", display_name(name.as_str()));
            }
        }
        Some(target) => {
            let mut cmd = format!("curl -sS -X POST {}", shell_quote(&target));
            for (name, value) in headers {
                cmd.push_str(&format!(
                    " -H {}",
                    shell_quote(&format!("{}: {value}", display_name(name.as_str())))
                ));
            }
            cmd.push_str(&format!(
                " --data-binary @{}",
                shell_quote(&args.body_file.display().to_string())
            ));
            println!("{cmd}");
        }
    }
    ExitCode::SUCCESS
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

/// `hookwall check`: one line per route, or every problem; exit 0 or 1.
pub fn check(path: &Path) -> ExitCode {
    match compile_file(path) {
        Ok(config) => {
            for w in &config.warnings {
                eprintln!("{}: warning: {w}", path.display());
            }
            for line in route_lines(&config) {
                println!("{line}");
            }
            println!("{}: ok, {} route(s)", path.display(), config.routes.len());
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for line in errors.lines() {
                eprintln!("{line}");
            }
            eprintln!("{}: {} problem(s)", path.display(), errors.errors.len());
            ExitCode::FAILURE
        }
    }
}

/// `route NAME path=... provider=... upstream=... checks=a,b,c` per route.
pub fn route_lines(config: &Config) -> Vec<String> {
    config
        .routes
        .iter()
        .map(|r| {
            format!(
                "route {} path={} provider={} upstream={} checks={}",
                r.name,
                r.path,
                r.provider,
                r.upstream,
                checks(r).join(",")
            )
        })
        .collect()
}

/// `hookwall run`: serve until SIGTERM/SIGINT, reload on SIGHUP.
pub async fn run(path: &Path) -> ExitCode {
    let config = match compile_file(path) {
        Ok(c) => c,
        Err(errors) => {
            for line in errors.lines() {
                tracing::error!("{line}");
                eprintln!("{line}");
            }
            return ExitCode::FAILURE;
        }
    };
    for w in &config.warnings {
        tracing::warn!("{w}");
    }
    let (listen, admin_listen) = (config.server.listen, config.admin.listen);
    let gateway = match Gateway::new(config) {
        Ok(g) => g,
        Err(e) => {
            tracing::error!(error = %e, "cannot build routes");
            return ExitCode::FAILURE;
        }
    };
    let (proxy, admin) = match (
        TcpListener::bind(listen).await,
        TcpListener::bind(admin_listen).await,
    ) {
        (Ok(p), Ok(a)) => (p, a),
        (Err(e), _) => {
            tracing::error!(address = %listen, error = %e, "cannot bind the proxy listener");
            return ExitCode::FAILURE;
        }
        (_, Err(e)) => {
            tracing::error!(address = %admin_listen, error = %e, "cannot bind the admin listener");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(
        proxy = %proxy.local_addr().map_or(listen, |a| a),
        admin = %admin.local_addr().map_or(admin_listen, |a| a),
        routes = gateway.live().config().routes.len(),
        "hookwall listening"
    );
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(watch_signals(gateway.clone(), stop_tx));
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let admin_task = tokio::spawn(crate::admin::run(
        admin,
        gateway.clone(),
        stopped(stop_rx.clone()),
    ));
    crate::transport::run(proxy, gateway, stopped(stop_rx)).await;
    let _ = admin_task.await;
    tracing::info!("hookwall stopped");
    ExitCode::SUCCESS
}

/// SIGTERM/SIGINT stop; SIGHUP reloads.
async fn watch_signals(gateway: Arc<Gateway>, stop: tokio::sync::watch::Sender<bool>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::error!("cannot install signal handlers; stop with SIGKILL");
        return;
    };
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                let _ = gateway.reload();
            }
        }
    }
    tracing::info!("shutdown signal received");
    let _ = stop.send(true);
}
