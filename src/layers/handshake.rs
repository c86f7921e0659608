//! Control requests some providers send to check an endpoint, answered by the gateway
//! exactly as the provider requires, never forwarded and never touching dedup (outcome
//! `handshake`):
//!
//! - Zoom `endpoint.url_validation` → `{"plainToken", "encryptedToken": hex HMAC-SHA256}`
//! - Slack `url_verification` → `{"challenge": ...}`
//! - Twitch `webhook_callback_verification` → the challenge as `text/plain`
//! - Discord PING → `{"type":1}` (interactions) or 204 (webhook events)
//! - WooCommerce's unsigned creation ping `webhook_id=<n>` → 200
//! - Meta `GET ?hub.mode=subscribe&hub.verify_token=..&hub.challenge=..` → the challenge
//!   as text, only when the verify token is the route's `meta.verify_token` (constant time)
//! - X CRC `GET ?crc_token=..` → `{"response_token":"sha256=<base64 HMAC>"}`
//! - Dropbox `GET ?challenge=..` → the challenge as text, `X-Content-Type-Options: nosniff`
//! - Asana `X-Hook-Secret` → 200 echoing it, and the secret learned (verify/learned.rs),
//!   only while the route has none
//! - Okta `GET` with `x-okta-verification-challenge` → `{"verification": ..}`, only with the
//!   route's Authorization value
//! - Microsoft Graph `?validationToken=..` → the token as text
//!
//! Zoom, Slack, Twitch and Discord run after the signature and timestamp checks (a forged
//! handshake is a 401 like any forged delivery). The others carry no signature of their
//! own, so they run before the signature layer, match only their exact shape, and are
//! authenticated where the provider gives a way to (Meta's verify token, Okta's
//! Authorization value, Asana's "no secret yet"); one that fails that is refused with
//! `403 handshake_refused`. Echoed values are bounded and answered as `text/plain` with
//! `nosniff`, so the gateway cannot be made to serve a page.

use std::ops::ControlFlow;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, StatusCode};
use serde_json::Value;

use super::check::{check_layer, Check};
use super::request_id;
use crate::context::VerifiedKey;
use crate::error::Rejection;
use crate::respond::{self, HttpResponse};
use crate::secret::Secret;
use crate::verify::learned::LearnedSecret;
use crate::verify::presets::HandshakeKind;
use crate::verify::{SignedRequest, Verdict, Verifier};

/// Longest challenge echoed back (providers send a few dozen characters).
const MAX_ECHO: usize = 1024;

/// What some handshakes need besides the verifier.
#[derive(Debug, Clone, Default)]
pub struct HandshakeSettings {
    /// Meta's verify token.
    pub verify_token: Option<Secret>,
    /// Asana's learnable secret.
    pub learned: Option<Arc<LearnedSecret>>,
    /// The route, for the log line of a learned secret.
    pub route: Arc<str>,
}

/// Answers one provider's control request.
#[derive(Debug, Clone)]
pub struct ProviderHandshake {
    kind: HandshakeKind,
    verifier: Arc<Verifier>,
    settings: HandshakeSettings,
}

impl ProviderHandshake {
    /// `verifier` supplies the matched key for Zoom's token, X's CRC and Okta's check.
    pub fn new(kind: HandshakeKind, verifier: Arc<Verifier>, settings: HandshakeSettings) -> Self {
        ProviderHandshake {
            kind,
            verifier,
            settings,
        }
    }

    /// Whether this kind runs before the signature check (unsigned control requests).
    pub fn before_signature(kind: HandshakeKind) -> bool {
        matches!(
            kind,
            HandshakeKind::WooCommercePing
                | HandshakeKind::MetaVerification
                | HandshakeKind::XCrc
                | HandshakeKind::DropboxChallenge
                | HandshakeKind::AsanaHookSecret
                | HandshakeKind::OktaVerification
                | HandshakeKind::GraphValidation
        )
    }

    fn refused(req: &Request<Bytes>) -> HttpResponse {
        respond::rejection(&request_id(req), Rejection::HandshakeRefused)
    }

    /// The gateway's own answer, if `req` is this provider's control request.
    fn answer(&self, req: &Request<Bytes>) -> Option<HttpResponse> {
        let json = || serde_json::from_slice::<Value>(req.body()).ok();
        match self.kind {
            HandshakeKind::WooCommercePing => {
                let unsigned = !req.headers().contains_key("x-wc-webhook-signature");
                let body = req.body().strip_prefix(b"webhook_id=")?;
                (unsigned && !body.is_empty() && body.iter().all(u8::is_ascii_digit)).then(|| {
                    respond::handshake(StatusCode::OK, "application/json", r#"{"status":"ok"}"#)
                })
            }
            HandshakeKind::SlackUrlVerification => {
                let doc = json()?;
                (doc.get("type")? == "url_verification").then(|| {
                    let challenge = doc.get("challenge").cloned().unwrap_or(Value::Null);
                    respond::handshake(
                        StatusCode::OK,
                        "application/json",
                        serde_json::json!({ "challenge": challenge }).to_string(),
                    )
                })
            }
            HandshakeKind::TwitchCallbackVerification => {
                let kind = req.headers().get("twitch-eventsub-message-type")?;
                if kind != "webhook_callback_verification" {
                    return None;
                }
                let challenge = json()?.get("challenge")?.as_str()?.to_owned();
                Some(respond::handshake(StatusCode::OK, "text/plain", challenge))
            }
            HandshakeKind::DiscordPing => {
                let doc = json()?;
                let kind = doc.get("type")?.as_i64()?;
                let is_interaction = doc.get("token").is_some() || doc.get("id").is_some();
                match kind {
                    1 if is_interaction => Some(respond::handshake(
                        StatusCode::OK,
                        "application/json",
                        r#"{"type":1}"#,
                    )),
                    0 if !is_interaction && doc.get("event").is_none() => Some(respond::handshake(
                        StatusCode::NO_CONTENT,
                        "application/json",
                        Bytes::new(),
                    )),
                    _ => None,
                }
            }
            HandshakeKind::ZoomUrlValidation => {
                let doc = json()?;
                if doc.get("event")? != "endpoint.url_validation" {
                    return None;
                }
                let plain = doc.pointer("/payload/plainToken")?.as_str()?.to_owned();
                let VerifiedKey(index) = *req.extensions().get::<VerifiedKey>()?;
                let mac = self
                    .verifier
                    .schemes
                    .iter()
                    .flat_map(|s| &s.keys)
                    .find(|k| k.index == index)?
                    .mac()?;
                let encrypted = hex::encode(mac.compute(&[plain.as_bytes()]).as_bytes());
                let body = serde_json::json!({ "plainToken": plain, "encryptedToken": encrypted });
                Some(respond::handshake(
                    StatusCode::OK,
                    "application/json",
                    body.to_string(),
                ))
            }
            HandshakeKind::MetaVerification => {
                if req.method() != http::Method::GET {
                    return None;
                }
                let q = query(req);
                if q.get("hub.mode")? != "subscribe" {
                    return None;
                }
                let challenge = q.get("hub.challenge").filter(|c| echoable(c));
                let token_ok = match (&self.settings.verify_token, q.get("hub.verify_token")) {
                    (Some(want), Some(got)) => want.matches(got.as_bytes()),
                    _ => false,
                };
                Some(match (token_ok, challenge) {
                    (true, Some(c)) => text(c.clone()),
                    _ => Self::refused(req),
                })
            }
            HandshakeKind::XCrc => {
                if req.method() != http::Method::GET {
                    return None;
                }
                let token = query(req).remove("crc_token")?;
                // The answer is an HMAC with the key that also signs deliveries: a token
                // that is itself a JSON document would be a body signed on request. X's
                // tokens never are, so those are refused.
                if !echoable(&token) || serde_json::from_str::<Value>(&token).is_ok() {
                    return Some(Self::refused(req));
                }
                let mac = self
                    .verifier
                    .schemes
                    .iter()
                    .flat_map(|s| &s.keys)
                    .find_map(|k| k.mac())?;
                use base64::Engine;
                let tag = base64::engine::general_purpose::STANDARD
                    .encode(mac.compute(&[token.as_bytes()]).as_bytes());
                let body = serde_json::json!({ "response_token": format!("sha256={tag}") });
                Some(respond::handshake(
                    StatusCode::OK,
                    "application/json",
                    body.to_string(),
                ))
            }
            HandshakeKind::DropboxChallenge => {
                if req.method() != http::Method::GET {
                    return None;
                }
                let challenge = query(req).remove("challenge")?;
                Some(if echoable(&challenge) {
                    text(challenge)
                } else {
                    Self::refused(req)
                })
            }
            HandshakeKind::GraphValidation => {
                let token = query(req).remove("validationToken")?;
                Some(if echoable(&token) {
                    text(token)
                } else {
                    Self::refused(req)
                })
            }
            HandshakeKind::OktaVerification => {
                if req.method() != http::Method::GET {
                    return None;
                }
                let challenge = req
                    .headers()
                    .get("x-okta-verification-challenge")?
                    .to_str()
                    .ok()
                    .map(str::to_owned);
                let authorized = matches!(
                    self.verifier.verify(&SignedRequest {
                        method: req.method(),
                        headers: req.headers(),
                        body: req.body(),
                        url: None,
                    }),
                    Verdict::Valid { .. }
                );
                Some(match challenge.filter(|c| echoable(c)) {
                    Some(c) if authorized => respond::handshake(
                        StatusCode::OK,
                        "application/json",
                        serde_json::json!({ "verification": c }).to_string(),
                    ),
                    _ => Self::refused(req),
                })
            }
            HandshakeKind::AsanaHookSecret => {
                let secret = req.headers().get("x-hook-secret")?;
                let learned = self.settings.learned.as_ref()?;
                Some(match learned.learn(secret.as_bytes()) {
                    Ok(()) => {
                        tracing::info!(
                            route = %self.settings.route,
                            file = %learned.path().display(),
                            "asana handshake: webhook secret learned and stored"
                        );
                        let mut resp =
                            respond::handshake(StatusCode::OK, "text/plain", Bytes::new());
                        resp.headers_mut().insert("x-hook-secret", secret.clone());
                        resp
                    }
                    Err(why) => {
                        // Never the secret: only why it was not taken.
                        tracing::warn!(route = %self.settings.route, reason = %why, "asana handshake refused");
                        Self::refused(req)
                    }
                })
            }
            // Answered by the SNS layer, which can wait for the confirmation GET.
            HandshakeKind::SnsSubscription => None,
        }
    }
}

/// The request's query parameters (later ones win), percent-decoded.
fn query(req: &Request<Bytes>) -> std::collections::HashMap<String, String> {
    form_urlencoded::parse(req.uri().query().unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

/// Whether a value may be echoed: present, bounded, printable.
fn echoable(v: &str) -> bool {
    !v.is_empty() && v.len() <= MAX_ECHO && !v.chars().any(char::is_control)
}

/// A challenge echoed as text, which browsers must not sniff into HTML.
fn text(body: String) -> HttpResponse {
    let mut resp = respond::handshake(StatusCode::OK, "text/plain", body);
    resp.headers_mut().insert(
        http::header::X_CONTENT_TYPE_OPTIONS,
        http::HeaderValue::from_static("nosniff"),
    );
    resp
}

check_layer! {
    /// Provider control requests, answered by the gateway (outcome `handshake`).
    HandshakeLayer => Handshake(ProviderHandshake)
}

impl Check<Bytes> for ProviderHandshake {
    fn check(&self, req: &mut Request<Bytes>) -> ControlFlow<HttpResponse> {
        // A control request is answered here: the "rejection" is the provider's answer.
        match self.answer(req) {
            Some(answer) => ControlFlow::Break(answer),
            None => ControlFlow::Continue(()),
        }
    }
}
