//! Control requests some providers send to check an endpoint, answered by the gateway
//! exactly as the provider requires, never forwarded and never touching dedup (outcome
//! `handshake`):
//!
//! - Zoom `endpoint.url_validation` → `{"plainToken", "encryptedToken": hex HMAC-SHA256}`
//! - Slack `url_verification` → `{"challenge": ...}`
//! - Twitch `webhook_callback_verification` → the challenge as `text/plain`
//! - Discord PING → `{"type":1}` (interactions) or 204 (webhook events)
//! - WooCommerce's unsigned creation ping `webhook_id=<n>` → 200
//!
//! All but WooCommerce's run after the signature and timestamp checks (a forged handshake
//! is a 401 like any forged delivery). WooCommerce pings carry no signature at all, so that
//! one check runs before the signature layer and matches only that exact body.

use std::ops::ControlFlow;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, StatusCode};
use serde_json::Value;

use super::check::{check_layer, Check};
use crate::context::VerifiedKey;
use crate::respond::{self, HttpResponse};
use crate::verify::presets::HandshakeKind;
use crate::verify::Verifier;

/// Answers one provider's control request.
#[derive(Debug, Clone)]
pub struct ProviderHandshake {
    kind: HandshakeKind,
    verifier: Arc<Verifier>,
}

impl ProviderHandshake {
    /// `verifier` supplies the matched key for Zoom's token.
    pub fn new(kind: HandshakeKind, verifier: Arc<Verifier>) -> Self {
        ProviderHandshake { kind, verifier }
    }

    /// Whether this kind runs before the signature check (unsigned pings).
    pub fn before_signature(kind: HandshakeKind) -> bool {
        kind == HandshakeKind::WooCommercePing
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
        }
    }
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
