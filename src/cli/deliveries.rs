//! `hookwall deliveries list|show` and `hookwall replay`: the journal from the command
//! line, through the running gateway's admin API (`--admin URL` overrides the config's
//! admin listener; the token comes from the config). Tables for people, `--json` for
//! scripts.

use std::process::ExitCode;

use http::{Method, StatusCode};
use serde_json::Value;

use super::admin_command::{call, client, given, page_path, path_id, Target};
use super::table::text;

/// `hookwall deliveries ...`.
#[derive(Debug, clap::Subcommand)]
pub enum DeliveriesCommand {
    /// The journal, newest first.
    List {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        filter: Filter,
        /// At most this many (1 to 500).
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Only entries older than this entry id (the `next` of a previous page).
        #[arg(long)]
        before: Option<String>,
    },
    /// One entry, whole: headers, body, diagnosis, replays.
    Show {
        #[command(flatten)]
        target: Target,
        /// The entry id.
        id: String,
    },
}

/// Which entries.
#[derive(Debug, Default, clap::Args)]
pub struct Filter {
    /// Route name.
    #[arg(long)]
    route: Option<String>,
    /// forwarded, duplicate, rejected, handshake.
    #[arg(long)]
    outcome: Option<String>,
    /// A rejection reason (e.g. invalid_signature, upstream_unreachable).
    #[arg(long)]
    reason: Option<String>,
    /// Received since: RFC 3339, or a duration ago (`2h`).
    #[arg(long)]
    since: Option<String>,
    /// Received before: RFC 3339, or a duration ago.
    #[arg(long)]
    until: Option<String>,
    /// A delivery id.
    #[arg(long)]
    dedup_id: Option<String>,
}

impl Filter {
    fn pairs(&self) -> Vec<(&'static str, &str)> {
        given([
            ("route", &self.route),
            ("outcome", &self.outcome),
            ("reason", &self.reason),
            ("since", &self.since),
            ("until", &self.until),
            ("dedup_id", &self.dedup_id),
        ])
    }
}

/// Arguments of `hookwall replay`.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    target: Target,
    /// The entry to replay; without it, every entry the filter matches.
    id: Option<String>,
    /// Run the stored request through the route's current signature check first.
    #[arg(long)]
    reverify: bool,
    #[command(flatten)]
    filter: Filter,
    /// Only count what would be replayed.
    #[arg(long)]
    dry_run: bool,
    /// Replays per second, for a bulk replay.
    #[arg(long, default_value_t = 10.0)]
    rate: f64,
}

/// An entry id as given, if it looks like one (it goes into a URL path).
fn entry_id(id: &str) -> Result<&str, ExitCode> {
    path_id(
        id,
        "a journal entry id (the `id` of `hookwall deliveries list`)",
    )
}

/// The list as a table, one entry a line.
fn table(list: &[Value]) -> String {
    let rows = list
        .iter()
        .map(|e| {
            vec![
                text(&e["received_at"]).chars().take(19).collect(),
                text(&e["route"]),
                text(&e["outcome"]),
                text(&e["reason"]),
                text(&e["status"]),
                text(&e["upstream_status"]),
                text(&e["dedup_id"]),
                text(&e["id"]),
            ]
        })
        .collect();
    super::table::render(
        &[
            "RECEIVED (UTC)",
            "ROUTE",
            "OUTCOME",
            "REASON",
            "STATUS",
            "UPSTREAM",
            "DEDUP ID",
            "ENTRY",
        ],
        rows,
    )
}

/// One entry for a person: the facts, the headers, the body (pretty when JSON).
fn details(e: &Value) -> String {
    let mut out = String::new();
    for key in [
        "id",
        "request_id",
        "received_at",
        "route",
        "method",
        "path",
        "client_ip",
        "outcome",
        "reason",
        "status",
        "upstream_status",
        "upstream_ms",
        "dedup_id",
        "key_id",
        "diagnosis",
        "body_size",
        "body_sha256",
        "truncated",
    ] {
        out.push_str(&format!("{key:<16} {}\n", text(&e[key])));
    }
    out.push_str("\nheaders\n");
    for h in e["headers"].as_array().into_iter().flatten() {
        out.push_str(&format!("  {}: {}\n", text(&h[0]), text(&h[1])));
    }
    out.push_str("\nbody\n");
    match e["body_text"].as_str() {
        Some(body) => {
            let pretty = serde_json::from_str::<Value>(body)
                .ok()
                .and_then(|v| serde_json::to_string_pretty(&v).ok());
            out.push_str(&pretty.unwrap_or_else(|| body.to_owned()));
            out.push('\n');
        }
        None if e["body_base64"].is_string() => out.push_str("  (binary; see --json)\n"),
        None => out.push_str("  (not kept)\n"),
    }
    let replays = e["replays"].as_array().cloned().unwrap_or_default();
    if !replays.is_empty() {
        out.push_str("\nreplays\n");
        for r in replays {
            out.push_str(&format!(
                "  {}  upstream {}  {}{}\n",
                text(&r["at"]),
                text(&r["upstream_status"]),
                text(&r["id"]),
                if r["reverified"] == true {
                    "  (re-verified)"
                } else {
                    ""
                }
            ));
        }
    }
    out
}

pub(super) async fn deliveries(command: DeliveriesCommand) -> ExitCode {
    let result = match command {
        DeliveriesCommand::List {
            target,
            filter,
            limit,
            before,
        } => {
            async {
                let client = client(&target)?;
                let path = page_path("/deliveries", filter.pairs(), limit, before.as_deref());
                let v = call(&client, Method::GET, &path, None, StatusCode::OK).await?;
                if target.json {
                    super::print(&format!("{v}\n"));
                } else {
                    let list = v["deliveries"].as_array().cloned().unwrap_or_default();
                    super::print(&table(&list));
                    if let Some(next) = v["next"].as_str() {
                        super::print(&format!("more: --before {next}\n"));
                    }
                }
                Ok(())
            }
            .await
        }
        DeliveriesCommand::Show { target, id } => {
            async {
                let client = client(&target)?;
                let path = format!("/deliveries/{}", entry_id(&id)?);
                let v = call(&client, Method::GET, &path, None, StatusCode::OK).await?;
                if target.json {
                    super::print(&format!("{v}\n"));
                } else {
                    super::print(&details(&v));
                }
                Ok(())
            }
            .await
        }
    };
    result.map_or_else(|code| code, |()| ExitCode::SUCCESS)
}

pub(super) async fn replay(args: ReplayArgs) -> ExitCode {
    let result: Result<(), ExitCode> = async {
        let client = client(&args.target)?;
        match &args.id {
            Some(id) => {
                let id = entry_id(id)?;
                let path = if args.reverify {
                    format!("/deliveries/{id}/replay?reverify=true")
                } else {
                    format!("/deliveries/{id}/replay")
                };
                let v = call(&client, Method::POST, &path, None, StatusCode::OK).await?;
                if args.target.json {
                    super::print(&format!("{v}\n"));
                } else {
                    super::print(&format!(
                        "replayed {id}: upstream answered {} (replay {})\n",
                        text(&v["upstream_status"]),
                        text(&v["replay_id"])
                    ));
                }
            }
            None => {
                let mut spec = serde_json::Map::new();
                for (k, v) in args.filter.pairs() {
                    spec.insert(k.to_owned(), Value::String(v.to_owned()));
                }
                spec.insert("reverify".into(), args.reverify.into());
                spec.insert("dry_run".into(), args.dry_run.into());
                spec.insert("rate".into(), args.rate.into());
                let body = Value::Object(spec).to_string().into_bytes();
                let v = call(
                    &client,
                    Method::POST,
                    "/replays",
                    Some(body),
                    StatusCode::ACCEPTED,
                )
                .await?;
                if args.target.json {
                    super::print(&format!("{v}\n"));
                } else if args.dry_run {
                    super::print(&format!(
                        "{} entries match; nothing sent (--dry-run)\n",
                        text(&v["matched"])
                    ));
                } else {
                    super::print(&format!(
                        "replaying {} entries at {}/s: job {} (GET /replays/{} for progress)\n",
                        text(&v["matched"]),
                        args.rate,
                        text(&v["job"]),
                        text(&v["job"])
                    ));
                }
            }
        }
        Ok(())
    }
    .await;
    result.map_or_else(|code| code, |()| ExitCode::SUCCESS)
}
