//! `hookwall sign`: the headers a provider would send for a body, or a ready curl command,
//! from the same scheme code that verifies (so the two cannot drift apart).

use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::{compile_route, DedupSource};

/// Arguments of `hookwall sign`.
#[derive(Debug, clap::Args)]
pub struct SignArgs {
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
    /// The secret to sign with, by its `id` (or index) in the route's `secrets` (default:
    /// the first).
    #[arg(long)]
    key: Option<String>,
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
pub(super) fn sign(args: &SignArgs) -> ExitCode {
    // Only this route's secrets need to be there: signing for one route must not need
    // every other route's environment.
    let route = match compile_route(&args.config, &args.route) {
        Ok(route) => route,
        Err(errors) => {
            for line in errors.lines() {
                eprintln!("{line}");
            }
            return ExitCode::FAILURE;
        }
    };
    let body = match std::fs::read(&args.body_file) {
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
    let id = args.id.as_deref().unwrap_or(&fresh_id);
    // Twilio calls a different URL for a JSON body (`?bodySHA256=`): the curl target gets
    // it too, unless it already has it.
    let url_param = route.verifier.url_param_for(&body);
    let target = args.curl.as_deref().map(|t| match &url_param {
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
    let mut headers = match route.verifier.sign_with(&input, args.key.as_deref()) {
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
                super::print(&format!("{}: {value}\n", display_name(name.as_str())));
            }
        }
        Some(target) => {
            // -i: the answer's status and headers are what tells accepted from refused.
            let mut cmd = format!("curl -sS -i -X POST {}", shell_quote(&target));
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
            super::print(&format!("{cmd}\n"));
        }
    }
    ExitCode::SUCCESS
}
