//! Signed tokens in a header: a JWS over claims that cover the body (Netlify, Plaid) or
//! name the sender (Google). Plaid's and Google's keys are fetched from the provider.

use jsonwebtoken::Algorithm as Jwa;

use super::super::jwt::{Carrier, JwtKeys, JwtScheme, JwtTime, PendingSource};
use super::{
    h, json_event, json_id, secs, KeyFormat, Preset, ProviderTable, Scheme, SchemeSpec, BLANK,
    FUTURE_5M,
};

/// The presets this file defines.
#[cfg(test)]
pub(super) const NAMES: &[&str] = &["netlify", "plaid", "google-pubsub", "google-chat"];

fn jwt(scheme: JwtScheme, key_format: KeyFormat) -> Vec<SchemeSpec> {
    vec![SchemeSpec {
        scheme: Scheme::Jwt(scheme),
        key_format,
        algorithm: super::Algorithm::Sha256,
    }]
}

pub(super) fn preset(name: &str) -> Option<Preset> {
    let p = match name {
        // docs.netlify.com/site-deploys/notifications "Payload signature": a JWS (HS256 with
        // the JWS secret token) in X-Webhook-Signature; iss is always "netlify", sha256 is
        // the hex SHA-256 of the payload. No time is signed.
        "netlify" => Preset {
            schemes: jwt(
                JwtScheme {
                    header: h("x-webhook-signature"),
                    carrier: Carrier::Whole,
                    algorithm: Jwa::HS256,
                    keys: JwtKeys::Secrets,
                    issuers: vec!["netlify".to_owned()],
                    audience: None,
                    email: None,
                    body_sha256_claim: Some("sha256"),
                    time: JwtTime::None,
                },
                KeyFormat::JwtSecret,
            ),
            ..BLANK
        },
        // plaid.com/docs/api/webhooks/webhook-verification: an ES256 JWT in
        // Plaid-Verification, its kid's key from /webhook_verification_key/get (client id
        // and secret), request_body_sha256 = SHA-256 of the body, iat at most 5 minutes old.
        "plaid" => Preset {
            event: json_event("/webhook_code"),
            schemes: jwt(
                JwtScheme {
                    header: h("plaid-verification"),
                    carrier: Carrier::Whole,
                    algorithm: Jwa::ES256,
                    keys: JwtKeys::Pending(PendingSource::Plaid),
                    issuers: Vec::new(),
                    audience: None,
                    email: None,
                    body_sha256_claim: Some("request_body_sha256"),
                    time: JwtTime::IssuedAt,
                },
                KeyFormat::Token,
            ),
            window: Some((secs(300), FUTURE_5M)),
            table: Some(ProviderTable::Plaid),
            ..BLANK
        },
        // cloud.google.com/pubsub/docs/authenticate-push-subscriptions: an RS256 OIDC token
        // in Authorization: Bearer, signed with Google's OAuth2 keys; iss accounts.google.com,
        // aud as configured on the subscription, email the push service account (verified).
        "google-pubsub" => Preset {
            schemes: jwt(
                JwtScheme {
                    header: http::header::AUTHORIZATION,
                    carrier: Carrier::Bearer,
                    algorithm: Jwa::RS256,
                    keys: JwtKeys::Pending(PendingSource::GoogleCerts),
                    issuers: vec![
                        "accounts.google.com".to_owned(),
                        "https://accounts.google.com".to_owned(),
                    ],
                    audience: None,
                    email: None,
                    body_sha256_claim: None,
                    time: JwtTime::IssuedUntilExpiry,
                },
                KeyFormat::Token,
            ),
            // Google's ID tokens live an hour; `future` is the clock-skew allowance.
            window: Some((secs(3600), FUTURE_5M)),
            dedup: json_id("/message/messageId"),
            table: Some(ProviderTable::Google),
            ..BLANK
        },
        // developers.google.com/workspace/chat/verify-requests-from-chat (project number as
        // the authentication audience): an RS256 token in Authorization: Bearer, issued by
        // chat@system.gserviceaccount.com with its published certificates, aud = the
        // project number.
        "google-chat" => Preset {
            event: json_event("/type"),
            schemes: jwt(
                JwtScheme {
                    header: http::header::AUTHORIZATION,
                    carrier: Carrier::Bearer,
                    algorithm: Jwa::RS256,
                    keys: JwtKeys::Pending(PendingSource::ChatCertificates),
                    issuers: vec!["chat@system.gserviceaccount.com".to_owned()],
                    audience: None,
                    email: None,
                    body_sha256_claim: None,
                    time: JwtTime::IssuedUntilExpiry,
                },
                KeyFormat::Token,
            ),
            window: Some((secs(3600), FUTURE_5M)),
            table: Some(ProviderTable::Google),
            ..BLANK
        },
        _ => return None,
    };
    Some(p)
}
