//! The parsers the hard presets added, on arbitrary bytes: never a panic, and never a
//! verdict or an answer that the input could not have earned.
//!
//! Input layout: byte 0 picks what is fuzzed; the rest is split on `\n` into up to three
//! fields.
//! - 0: a URL against the SNS host allowlist (`sns.*.amazonaws.com`): an allowed URL is
//!   https on a host of exactly that shape.
//! - 1: a body as an SNS message: its canonical string, and the SNS scheme's verdict
//!   (no certificate is cached, so never valid).
//! - 2: an `Authorization` value and a body for Google Pub/Sub's token scheme (no key
//!   cached: never valid) and Netlify's (`X-Webhook-Signature`, a secret the fuzzer does
//!   not know: never valid).
//! - 3: a query string and header value for each unsigned handshake (Meta, X, Dropbox,
//!   Okta, Graph): answered or refused, never a panic; Meta answers 200 only for the
//!   configured verify token.
#![no_main]

use std::ops::ControlFlow;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use hookwall::config::{compile_str, RouteConfig};
use hookwall::layers::{Check, HandshakeSettings, ProviderHandshake};
use hookwall::verify::fetched_keys::HostAllowlist;
use hookwall::verify::{sns, SignedRequest, Verdict};
use http::{HeaderMap, HeaderValue, Method, Request};
use libfuzzer_sys::fuzz_target;

fn route(provider: &str, keys: &str) -> RouteConfig {
    let text = format!(
        "[[route]]\nname = \"r\"\npath = \"/r\"\nupstream = \"http://127.0.0.1:9/\"\nprovider = \"{provider}\"\n{keys}\n"
    );
    let cfg = compile_str(&text, Path::new("fuzz.toml")).unwrap_or_else(|e| panic!("{provider}: {e}"));
    (*cfg.routes[0]).clone()
}

struct Routes {
    sns: RouteConfig,
    pubsub: RouteConfig,
    netlify: RouteConfig,
    handshakes: Vec<(RouteConfig, ProviderHandshake)>,
}

fn routes() -> &'static Routes {
    static ROUTES: OnceLock<Routes> = OnceLock::new();
    ROUTES.get_or_init(|| {
        let handshakes = [
            ("meta", "secrets = [{ value = \"s\" }]\nmeta = { verify_token = \"fuzz-verify-token\" }"),
            ("x", "secrets = [{ value = \"s\" }]"),
            ("dropbox", "secrets = [{ value = \"s\" }]"),
            ("okta", "secrets = [{ value = \"fuzz-okta-token\" }]"),
            ("microsoft-graph", "secrets = [{ value = \"s\" }]"),
        ]
        .into_iter()
        .map(|(p, keys)| {
            let r = route(p, keys);
            let settings = HandshakeSettings {
                verify_token: r.provider_settings.meta_verify_token.clone(),
                learned: None,
                route: "r".into(),
            };
            let kind = r.handshake.unwrap_or_else(|| panic!("{p} has a handshake"));
            let h = ProviderHandshake::new(kind, Arc::new(r.verifier.clone()), settings);
            (r, h)
        })
        .collect();
        Routes {
            sns: route("sns", "sns = { topics = [\"arn:aws:sns:us-east-1:123456789012:T\"] }"),
            pubsub: route(
                "google-pubsub",
                "google = { audience = \"a\", service_account = \"s@p.iam.gserviceaccount.com\" }",
            ),
            netlify: route("netlify", "secrets = [{ value = \"fuzz-netlify-secret\" }]"),
            handshakes,
        }
    })
}

fn valid(v: Verdict) -> bool {
    matches!(v, Verdict::Valid { .. })
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else { return };
    let mut parts = rest.splitn(3, |b| *b == b'\n');
    let (a, b, c) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    let routes = routes();
    match pick % 4 {
        0 => {
            let hosts = HostAllowlist::new(&["sns.*.amazonaws.com".to_owned()]).unwrap_or_else(|e| panic!("{e}"));
            let url = String::from_utf8_lossy(a);
            if hosts.allows(&url) {
                let uri: http::Uri = url.parse().unwrap_or_else(|_| panic!("allowed an unparsable {url:?}"));
                assert_eq!(uri.scheme_str(), Some("https"), "{url}");
                let host = uri.host().unwrap_or_default().to_ascii_lowercase();
                let labels: Vec<&str> = host.split('.').collect();
                assert!(labels.len() == 4 && labels[0] == "sns" && labels[2] == "amazonaws" && labels[3] == "com", "{url}");
            }
        }
        1 => {
            if let Some(msg) = sns::message(rest) {
                let _ = sns::canonical(&msg);
            }
            let h = HeaderMap::new();
            let verdict = routes.sns.verifier.verify(&SignedRequest { method: &Method::POST, headers: &h, body: rest, url: None });
            assert!(!valid(verdict), "an SNS message verified without any certificate");
        }
        2 => {
            let mut h = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_bytes(a) {
                h.insert(http::header::AUTHORIZATION, v.clone());
                h.insert("x-webhook-signature", v);
            }
            let req = SignedRequest { method: &Method::POST, headers: &h, body: b, url: None };
            assert!(!valid(routes.pubsub.verifier.verify(&req)), "a Google token verified without keys");
            for k in &routes.pubsub.verifier.schemes {
                let _ = k.scheme.wanted_key(&req);
            }
            assert!(!valid(routes.netlify.verifier.verify(&req)), "a Netlify token verified with an unknown secret");
        }
        _ => {
            let query = String::from_utf8_lossy(a);
            for (r, handshake) in &routes.handshakes {
                let uri = format!("/r?{query}");
                let Ok(mut req) = Request::get(uri.as_str()).body(Bytes::copy_from_slice(c)) else { return };
                if let Ok(v) = HeaderValue::from_bytes(b) {
                    req.headers_mut().insert("x-okta-verification-challenge", v.clone());
                    req.headers_mut().insert(http::header::AUTHORIZATION, v);
                }
                if let ControlFlow::Break(resp) = handshake.check(&mut req) {
                    if r.provider == "meta" && resp.status() == 200 {
                        let token_ok = form_urlencoded::parse(query.as_bytes())
                            .any(|(k, v)| k == "hub.verify_token" && v == "fuzz-verify-token");
                        assert!(token_ok, "meta answered without the verify token: {query}");
                    }
                }
            }
        }
    }
});
