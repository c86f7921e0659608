//! What the commands that ask a running gateway share (`deliveries`, `replay`, `queue`,
//! `dead-letters`): where it is (`--config` or `--admin`, `--json`), one call with its
//! failure printed, and query strings.

use std::path::PathBuf;
use std::process::ExitCode;

use http::{Method, StatusCode};
use serde_json::Value;

use super::admin_client::AdminClient;
use crate::config::compile_admin;

/// Where the running gateway is.
#[derive(Debug, clap::Args)]
pub struct Target {
    /// Config file (for the admin listener's address and token); only its `[admin]`
    /// section is read.
    #[arg(long, env = "HOOKWALL_CONFIG", required_unless_present = "admin")]
    pub(super) config: Option<PathBuf>,
    /// The admin listener to ask (default: `[admin] listen` of the config). Without a
    /// config no token is sent.
    #[arg(long, value_name = "URL")]
    pub(super) admin: Option<String>,
    /// Print the admin API's JSON instead of a table.
    #[arg(long)]
    pub(super) json: bool,
}

/// The admin client `target` names.
pub(super) fn client(target: &Target) -> Result<AdminClient, ExitCode> {
    let made = match &target.config {
        Some(path) => {
            let admin = compile_admin(path).map_err(|errors| {
                for line in errors.lines() {
                    eprintln!("{line}");
                }
                ExitCode::FAILURE
            })?;
            AdminClient::new(&admin, target.admin.as_deref())
        }
        // `--admin` alone (clap requires one of the two): no token.
        None => AdminClient::at(target.admin.as_deref().unwrap_or_default(), None),
    };
    made.map_err(|e| {
        eprintln!("hookwall: {e}");
        ExitCode::FAILURE
    })
}

/// Calls the admin API; an answer other than `ok` is printed and turned into the exit.
pub(super) async fn call(
    client: &AdminClient,
    method: Method,
    path: &str,
    body: Option<Vec<u8>>,
    ok: StatusCode,
) -> Result<Value, ExitCode> {
    call_expecting(client, method, path, body, &[ok]).await
}

/// [`call`] for an endpoint with several good answers.
pub(super) async fn call_expecting(
    client: &AdminClient,
    method: Method,
    path: &str,
    body: Option<Vec<u8>>,
    ok: &[StatusCode],
) -> Result<Value, ExitCode> {
    let body = body.map(|b| ("application/json", b));
    match client.call(method, path, body).await {
        Ok((status, value)) if ok.contains(&status) => Ok(value),
        Ok((status, value)) => {
            let what = value["error"].as_str().unwrap_or("error");
            let detail = value["detail"]
                .as_str()
                .map_or(String::new(), |d| format!(": {d}"));
            eprintln!("hookwall: {status} {what}{detail}");
            Err(ExitCode::FAILURE)
        }
        Err(e) => {
            eprintln!("hookwall: {e}");
            Err(ExitCode::FAILURE)
        }
    }
}

/// `pairs` as a query string.
pub(super) fn query(pairs: &[(&str, &str)]) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        q.append_pair(k, v);
    }
    q.finish()
}

/// The flags that were given, as query pairs.
pub(super) fn given<'a, const N: usize>(
    fields: [(&'static str, &'a Option<String>); N],
) -> Vec<(&'static str, &'a str)> {
    fields
        .into_iter()
        .filter_map(|(k, v)| v.as_deref().map(|v| (k, v)))
        .collect()
}

/// A listing's path: `base` with the filter `pairs`, the page size and the cursor.
pub(super) fn page_path(
    base: &str,
    pairs: Vec<(&str, &str)>,
    limit: u32,
    before: Option<&str>,
) -> String {
    let limit = limit.to_string();
    let mut all = pairs;
    all.push(("limit", &limit));
    all.extend(before.map(|b| ("before", b)));
    format!("{base}?{}", query(&all))
}

/// An id as given, if it looks like one (it goes into a URL path); else the error names
/// `what` it should have been.
pub(super) fn path_id<'a>(id: &'a str, what: &str) -> Result<&'a str, ExitCode> {
    if !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        Ok(id)
    } else {
        eprintln!("hookwall: {id:?} is not {what}");
        Err(ExitCode::FAILURE)
    }
}

/// `v` as JSON with `--json`, else as `human` writes it for people.
pub(super) fn print_json_or(target: &Target, v: &Value, human: impl FnOnce(&Value) -> String) {
    if target.json {
        super::print(&format!("{v}\n"));
    } else {
        super::print(&human(v));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_paths_carry_the_given_flags_the_limit_and_the_cursor() {
        let (route, since) = (Some("a b".to_owned()), None);
        let pairs = given([("route", &route), ("since", &since)]);
        assert_eq!(
            page_path("/dead-letters", pairs, 5, Some("x")),
            "/dead-letters?route=a+b&limit=5&before=x"
        );
    }

    #[test]
    fn ids_that_would_change_the_url_are_refused() {
        assert!(path_id("0193a0b1-7c2d-7e3f-8a4b-5c6d7e8f9a0b", "an id").is_ok());
        assert!(path_id("../reload", "an id").is_err());
        assert!(path_id("a?b", "an id").is_err());
        assert!(path_id("", "an id").is_err());
    }
}
