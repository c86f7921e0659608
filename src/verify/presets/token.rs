//! Shared tokens: the provider sends the secret itself (or Basic credentials); the body
//! is not authenticated.

use super::super::token::{TokenScheme, TokenStyle};
use super::{
    h, header_event, header_id, json_event, json_id, HandshakeKind, KeyFormat, Preset, Scheme,
    SchemeSpec, BLANK,
};

/// The presets this file defines.
#[cfg(test)]
pub(super) const NAMES: &[&str] = &["gitlab", "postmark", "telegram", "okta", "microsoft-graph"];

pub(super) fn preset(name: &str) -> Option<Preset> {
    use super::Algorithm::Sha256;
    let p = match name {
        "gitlab" => Preset {
            event: header_event("x-gitlab-event"),
            schemes: vec![SchemeSpec {
                scheme: Scheme::Token(TokenScheme {
                    header: h("x-gitlab-token"),
                    style: TokenStyle::Plain,
                }),
                key_format: KeyFormat::Token,
                algorithm: Sha256,
            }],
            dedup: header_id(&["idempotency-key"], false),
            ..BLANK
        },
        "postmark" => Preset {
            event: json_event("/RecordType"),
            schemes: vec![SchemeSpec {
                scheme: Scheme::Token(TokenScheme {
                    header: http::header::AUTHORIZATION,
                    style: TokenStyle::Basic,
                }),
                key_format: KeyFormat::Token,
                algorithm: Sha256,
            }],
            dedup: json_id("/MessageID"),
            ..BLANK
        },
        // core.telegram.org/bots/api#setwebhook: the secret_token given to setWebhook comes
        // back in this header. update_id is the update's unique id.
        "telegram" => Preset {
            schemes: vec![SchemeSpec {
                scheme: Scheme::Token(TokenScheme {
                    header: h("x-telegram-bot-api-secret-token"),
                    style: TokenStyle::Plain,
                }),
                key_format: KeyFormat::Token,
                algorithm: Sha256,
            }],
            dedup: json_id("/update_id"),
            ..BLANK
        },
        // developer.okta.com event hooks: the Authorization header carries the secret value
        // configured on the hook, in every request (the verification GET included, whose
        // x-okta-verification-challenge is answered {"verification": ...}).
        "okta" => Preset {
            event: json_event("/data/events/0/eventType"),
            schemes: vec![SchemeSpec {
                scheme: Scheme::Token(TokenScheme {
                    header: http::header::AUTHORIZATION,
                    style: TokenStyle::Plain,
                }),
                key_format: KeyFormat::Token,
                algorithm: Sha256,
            }],
            dedup: json_id("/eventId"),
            handshake: Some(HandshakeKind::OktaVerification),
            ..BLANK
        },
        // learn.microsoft.com/graph/change-notifications-delivery-webhooks: no signature;
        // each notification repeats the subscription's clientState (the route's secret),
        // and the subscription validation request's validationToken is echoed as text.
        "microsoft-graph" => Preset {
            event: json_event("/value/0/changeType"),
            schemes: vec![SchemeSpec {
                scheme: Scheme::ClientState,
                key_format: KeyFormat::Token,
                algorithm: Sha256,
            }],
            handshake: Some(HandshakeKind::GraphValidation),
            ..BLANK
        },
        _ => return None,
    };
    Some(p)
}
