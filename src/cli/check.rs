//! `hookwall check`: compile and build the config without serving; one line per route, or
//! every problem. With `--against-running`, also what the running gateway would refuse on
//! reload (settings that need a restart), asked of its admin listener.

use std::path::Path;
use std::process::ExitCode;

use http::{Method, StatusCode};

use super::admin_client::AdminClient;
use crate::config::{compile_file, Config, RouteConfig};
use crate::gateway::Gateway;
use crate::stack::checks;

/// `id=...`: whether the route's signature covers its dedup id, and if not, that the id
/// is bound to the body (so a captured delivery cannot be resent under another id).
fn id_binding(route: &RouteConfig) -> &'static str {
    match (&route.dedup, route.id_signed()) {
        (None, _) => "id=none",
        (Some(_), true) => "id=signed",
        (Some(_), false) => "id=unsigned(bound to body)",
    }
}

/// `replay=...`: how long a captured delivery verifies (the timestamp window), or `none`
/// when nothing bounds it in time.
fn replay_bound(route: &RouteConfig) -> String {
    match route.window {
        Some(w) => format!("replay=window {}s", w.past.as_secs()),
        None => "replay=none".to_owned(),
    }
}

/// `route NAME path=... provider=... upstream=... checks=a,b,c id=... replay=...` per route.
pub(crate) fn route_lines(config: &Config) -> Vec<String> {
    config
        .routes
        .iter()
        .map(|r| {
            let mut line = format!(
                "route {} path={} provider={} upstream={} checks={}",
                r.name,
                r.path,
                r.provider,
                r.upstream,
                checks(r).join(",")
            );
            line.push_str(&format!(" {} {}", id_binding(r), replay_bound(r)));
            if !r.events.is_empty() {
                line.push_str(&format!(" events={}", r.events.join("|")));
            }
            if !r.enforce {
                line.push_str(" enforce=false");
            }
            if let Some(b) = r.delivery.buffered() {
                let targets: Vec<String> = b
                    .targets
                    .iter()
                    .map(|t| match t.events.is_empty() {
                        true => format!("{}={}", t.name, t.upstream),
                        false => format!("{}={}[{}]", t.name, t.upstream, t.events.join("|")),
                    })
                    .collect();
                line.push_str(&format!(" delivery=buffered targets={}", targets.join(",")));
            }
            if let Some(rc) = &r.reconcile {
                line.push_str(&format!(
                    " reconcile={} every={}",
                    rc.source.name(),
                    humantime::format_duration(rc.every)
                ));
            }
            line
        })
        .collect()
}

/// `against`: `None` for a plain check, `Some(url)` to ask the running gateway too (at
/// `url`, else the config's admin listener).
pub(super) fn check(path: &Path, against: Option<Option<String>>) -> ExitCode {
    let config = match compile_file(path) {
        Ok(config) => config,
        Err(errors) => {
            for line in errors.lines() {
                eprintln!("{line}");
            }
            eprintln!("{}: {} problem(s)", path.display(), errors.errors.len());
            return ExitCode::FAILURE;
        }
    };
    for w in &config.warnings {
        eprintln!("{}: warning: {w}", path.display());
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hookwall check: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The build step `run` and reload take, minus binding and serving.
    if let Err(e) = runtime.block_on(async { Gateway::new(config.clone()).map(drop) }) {
        eprintln!("{}: {e}", path.display());
        eprintln!("{}: 1 problem(s)", path.display());
        return ExitCode::FAILURE;
    }
    for line in route_lines(&config) {
        super::print(&format!("{line}\n"));
    }
    super::print(&format!(
        "{}: ok, {} route(s)\n",
        path.display(),
        config.routes.len()
    ));
    match against {
        None => ExitCode::SUCCESS,
        Some(url) => runtime.block_on(against_running(path, &config, url.as_deref())),
    }
}

/// Posts the file to the running gateway's `POST /config/check` and prints its verdict.
async fn against_running(path: &Path, config: &Config, url: Option<&str>) -> ExitCode {
    let admin = match AdminClient::new(&config.admin, url) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("hookwall check: {e}");
            return ExitCode::FAILURE;
        }
    };
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("hookwall check: cannot read {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    };
    let answer = admin
        .call(
            Method::POST,
            "/config/check",
            Some(("application/toml", text)),
        )
        .await;
    match answer {
        Ok((StatusCode::OK, _)) => {
            super::print(&format!(
                "{}: the running gateway at {} would apply this file on reload\n",
                path.display(),
                admin.base()
            ));
            ExitCode::SUCCESS
        }
        Ok((StatusCode::UNAUTHORIZED, _)) => {
            eprintln!(
                "hookwall check: the admin listener at {} refused the token of {} (401)",
                admin.base(),
                path.display()
            );
            ExitCode::FAILURE
        }
        Ok((status, body)) => {
            let what = body["error"].as_str().unwrap_or("refused");
            eprintln!(
                "{}: the running gateway at {} would refuse a reload of this file ({what}, {status}):",
                path.display(),
                admin.base()
            );
            for detail in body["details"].as_array().into_iter().flatten() {
                eprintln!("  {}", detail.as_str().unwrap_or_default());
            }
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("hookwall check: {e}");
            ExitCode::FAILURE
        }
    }
}
