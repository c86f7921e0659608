//! `hookwall reconcile status` and `hookwall reconcile run ROUTE`: reconcile from the
//! command line, through the running gateway's admin API (CONTRACT §11).

use std::process::ExitCode;

use http::{Method, StatusCode};
use serde_json::Value;

use super::admin_command::{call, call_expecting, client, print_json_or, Target};
use super::table::{render, text};

/// `hookwall reconcile ...`.
#[derive(Debug, clap::Subcommand)]
pub enum ReconcileCommand {
    /// Per route: source, last run and its result, cursor, lag, events recovered.
    Status {
        #[command(flatten)]
        target: Target,
    },
    /// Run a route's reconcile now and print what it found.
    Run {
        #[command(flatten)]
        target: Target,
        /// The route.
        route: String,
    },
}

fn status_table(routes: &[Value]) -> String {
    let rows = routes
        .iter()
        .map(|r| {
            vec![
                text(&r["route"]),
                text(&r["source"]),
                text(&r["last_run"]).chars().take(19).collect(),
                text(&r["result"]),
                text(&r["lag_seconds"]),
                text(&r["recovered"]),
                text(&r["cursor"]),
                text(&r["error"]),
            ]
        })
        .collect();
    render(
        &[
            "ROUTE",
            "SOURCE",
            "LAST RUN (UTC)",
            "RESULT",
            "LAG (s)",
            "RECOVERED",
            "CURSOR",
            "ERROR",
        ],
        rows,
    )
}

fn run_line(v: &Value) -> String {
    match v["status"].as_str() {
        Some("running") => format!(
            "{}: still running; see `hookwall reconcile status`\n",
            text(&v["route"])
        ),
        _ => {
            let mut line = format!(
                "{}: {}, {} listed, {} recovered",
                text(&v["route"]),
                text(&v["result"]),
                text(&v["listed"]),
                text(&v["recovered"])
            );
            if let Some(e) = v["error"].as_str() {
                line.push_str(&format!(" ({e})"));
            }
            line.push('\n');
            line
        }
    }
}

pub(super) async fn reconcile(command: ReconcileCommand) -> ExitCode {
    let result: Result<(), ExitCode> = async {
        match command {
            ReconcileCommand::Status { target } => {
                let client = client(&target)?;
                let v = call(&client, Method::GET, "/reconcile", None, StatusCode::OK).await?;
                print_json_or(&target, &v, |v| {
                    let routes = v["routes"].as_array().cloned().unwrap_or_default();
                    if routes.is_empty() {
                        "no route reconciles\n".to_owned()
                    } else {
                        status_table(&routes)
                    }
                });
            }
            ReconcileCommand::Run { target, route } => {
                if route.is_empty() || route.contains(['?', '#', '%', ' ']) {
                    eprintln!("hookwall: {route:?} is not a route name");
                    return Err(ExitCode::FAILURE);
                }
                let client = client(&target)?;
                let path = format!("/reconcile/{route}/run");
                // 202: the run goes on past what the admin API waits for.
                let v = call_expecting(
                    &client,
                    Method::POST,
                    &path,
                    None,
                    &[StatusCode::OK, StatusCode::ACCEPTED],
                )
                .await?;
                print_json_or(&target, &v, run_line);
                // A run that ended in error is a failed command (scripts check it).
                if v["result"].as_str() == Some("error") {
                    return Err(ExitCode::FAILURE);
                }
            }
        }
        Ok(())
    }
    .await;
    result.map_or_else(|code| code, |()| ExitCode::SUCCESS)
}
