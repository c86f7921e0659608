//! `hookwall queue` and `hookwall dead-letters list|retry|discard`: buffered delivery from
//! the command line, through the running gateway's admin API (CONTRACT §10).

use std::process::ExitCode;

use http::{Method, StatusCode};
use serde_json::{Map, Value};

use super::admin_command::{call, client, given, page_path, path_id, print_json_or, Target};
use super::table::{render, text};

/// Arguments of `hookwall queue`.
#[derive(Debug, clap::Args)]
pub struct QueueArgs {
    #[command(flatten)]
    target: Target,
}

/// `hookwall dead-letters ...`.
#[derive(Debug, clap::Subcommand)]
pub enum DeadLettersCommand {
    /// Dead letters, newest first, with their last status and error.
    List {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        filter: DeadFilter,
        /// At most this many (1 to 500).
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Only dead letters older than this id (the `next` of a previous page).
        #[arg(long)]
        before: Option<String>,
    },
    /// Put one dead letter (by id), or every one the filter matches, back in the queue
    /// with its attempts reset.
    Retry {
        #[command(flatten)]
        target: Target,
        /// The dead letter; without it, every one the filter matches (`--all` for no
        /// filter).
        id: Option<String>,
        #[command(flatten)]
        filter: DeadFilter,
        /// With no id and no filter: every dead letter.
        #[arg(long)]
        all: bool,
    },
    /// Delete a dead letter for good (the journal keeps a `discarded` entry).
    Discard {
        #[command(flatten)]
        target: Target,
        /// The dead letter.
        id: String,
    },
}

/// Which dead letters.
#[derive(Debug, Default, clap::Args)]
pub struct DeadFilter {
    /// Route name.
    #[arg(long)]
    route: Option<String>,
    /// Dead-lettered since: RFC 3339, or a duration ago (`2h`).
    #[arg(long)]
    since: Option<String>,
    /// Dead-lettered before: RFC 3339, or a duration ago.
    #[arg(long)]
    until: Option<String>,
}

impl DeadFilter {
    fn pairs(&self) -> Vec<(&'static str, &str)> {
        given([
            ("route", &self.route),
            ("since", &self.since),
            ("until", &self.until),
        ])
    }
}

/// A dead letter id as given, if it looks like one (it goes into a URL path).
fn dead_letter_id(id: &str) -> Result<&str, ExitCode> {
    path_id(
        id,
        "a dead letter id (the `id` of `hookwall dead-letters list`)",
    )
}

fn queue_table(routes: &[Value]) -> String {
    let rows = routes
        .iter()
        .map(|r| {
            vec![
                text(&r["route"]),
                text(&r["target"]),
                text(&r["queued"]),
                text(&r["in_flight"]),
                text(&r["dead_lettered"]),
                r["oldest_seconds"]
                    .as_f64()
                    .map_or_else(|| "-".to_owned(), |s| format!("{s:.1}")),
            ]
        })
        .collect();
    render(
        &[
            "ROUTE",
            "TARGET",
            "QUEUED",
            "IN FLIGHT",
            "DEAD",
            "OLDEST (s)",
        ],
        rows,
    )
}

fn dead_table(list: &[Value]) -> String {
    let rows = list
        .iter()
        .map(|d| {
            vec![
                text(&d["dead_lettered_at"]).chars().take(19).collect(),
                text(&d["route"]),
                text(&d["target"]),
                text(&d["attempts"]),
                text(&d["last_status"]),
                text(&d["last_error"]),
                text(&d["delivery_id"]),
                text(&d["id"]),
            ]
        })
        .collect();
    render(
        &[
            "DEAD SINCE (UTC)",
            "ROUTE",
            "TARGET",
            "ATTEMPTS",
            "STATUS",
            "LAST ERROR",
            "DELIVERY ID",
            "ID",
        ],
        rows,
    )
}

pub(super) async fn queue(args: QueueArgs) -> ExitCode {
    let result: Result<(), ExitCode> = async {
        let client = client(&args.target)?;
        let v = call(&client, Method::GET, "/queue", None, StatusCode::OK).await?;
        print_json_or(&args.target, &v, |v| {
            let routes = v["routes"].as_array().cloned().unwrap_or_default();
            if routes.is_empty() {
                "nothing queued, no dead letters\n".to_owned()
            } else {
                queue_table(&routes)
            }
        });
        Ok(())
    }
    .await;
    result.map_or_else(|code| code, |()| ExitCode::SUCCESS)
}

pub(super) async fn dead_letters(command: DeadLettersCommand) -> ExitCode {
    let result: Result<(), ExitCode> = async {
        match command {
            DeadLettersCommand::List {
                target,
                filter,
                limit,
                before,
            } => {
                let client = client(&target)?;
                let path = page_path("/dead-letters", filter.pairs(), limit, before.as_deref());
                let v = call(&client, Method::GET, &path, None, StatusCode::OK).await?;
                print_json_or(&target, &v, |v| {
                    let list = v["dead_letters"].as_array().cloned().unwrap_or_default();
                    let mut out = dead_table(&list);
                    if let Some(next) = v["next"].as_str() {
                        out.push_str(&format!("more: --before {next}\n"));
                    }
                    out
                });
            }
            DeadLettersCommand::Retry {
                target,
                id,
                filter,
                all,
            } => {
                let client = client(&target)?;
                let v = match &id {
                    Some(id) => {
                        let path = format!("/dead-letters/{}/retry", dead_letter_id(id)?);
                        call(&client, Method::POST, &path, None, StatusCode::OK).await?
                    }
                    None => {
                        let pairs = filter.pairs();
                        if pairs.is_empty() && !all {
                            eprintln!(
                                "hookwall: name a dead letter, a filter (--route, --since, --until), or --all"
                            );
                            return Err(ExitCode::FAILURE);
                        }
                        let spec: Map<String, Value> = pairs
                            .into_iter()
                            .map(|(k, v)| (k.to_owned(), Value::String(v.to_owned())))
                            .collect();
                        let body = Value::Object(spec).to_string().into_bytes();
                        call(
                            &client,
                            Method::POST,
                            "/dead-letters/retry",
                            Some(body),
                            StatusCode::OK,
                        )
                        .await?
                    }
                };
                print_json_or(&target, &v, |v| {
                    format!("{} put back in the queue\n", text(&v["requeued"]))
                });
            }
            DeadLettersCommand::Discard { target, id } => {
                let client = client(&target)?;
                let path = format!("/dead-letters/{}", dead_letter_id(&id)?);
                let v = call(&client, Method::DELETE, &path, None, StatusCode::OK).await?;
                print_json_or(&target, &v, |v| {
                    format!(
                        "discarded {id} (delivery {} of route {})\n",
                        text(&v["discarded"]["delivery_id"]),
                        text(&v["discarded"]["route"])
                    )
                });
            }
        }
        Ok(())
    }
    .await;
    result.map_or_else(|code| code, |()| ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_queue_table_shows_every_route_and_target() {
        let out = queue_table(&[json!({
            "route": "shop", "target": "billing", "queued": 12, "in_flight": 3,
            "dead_lettered": 1, "oldest_seconds": 4.25
        })]);
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[0].starts_with("ROUTE"));
        assert_eq!(
            lines[1].split_whitespace().collect::<Vec<_>>(),
            ["shop", "billing", "12", "3", "1", "4.2"]
        );
    }
}
