//! Public-key signatures: hookwall holds the provider's public key and can verify but
//! never sign.

use super::super::asymmetric::{AsymmetricScheme, Carrier, Layout};
use super::{
    h, json_event, json_id, secs, HandshakeKind, KeyFormat, Preset, Scheme, SchemeSpec, BLANK,
};

/// The presets this file defines.
#[cfg(test)]
pub(super) const NAMES: &[&str] = &["discord", "sendgrid", "telnyx"];

pub(super) fn preset(name: &str) -> Option<Preset> {
    use super::Algorithm::Sha256;
    use super::Encoding::{Base64, Hex};
    let p = match name {
        "discord" => Preset {
            event: json_event("/event/type"),
            schemes: vec![SchemeSpec {
                scheme: Scheme::Asymmetric(AsymmetricScheme {
                    signature_header: h("x-signature-ed25519"),
                    carrier: Carrier::Whole,
                    encoding: Hex,
                    timestamp_header: h("x-signature-timestamp"),
                    id_header: None,
                    layout: Layout::TimestampBody,
                }),
                key_format: KeyFormat::Ed25519Hex,
                algorithm: Sha256,
            }],
            window: Some((secs(300), None)),
            dedup: json_id("/id"),
            handshake: Some(HandshakeKind::DiscordPing),
            ..BLANK
        },
        "sendgrid" => Preset {
            event: json_event("/0/event"),
            schemes: vec![SchemeSpec {
                scheme: Scheme::Asymmetric(AsymmetricScheme {
                    signature_header: h("x-twilio-email-event-webhook-signature"),
                    carrier: Carrier::Whole,
                    encoding: Base64,
                    timestamp_header: h("x-twilio-email-event-webhook-timestamp"),
                    id_header: None,
                    layout: Layout::TimestampBody,
                }),
                key_format: KeyFormat::P256Der,
                algorithm: Sha256,
            }],
            window: Some((secs(600), Some(secs(300)))),
            ..BLANK
        },
        // telnyx-node TelnyxWebhook.verify: Ed25519 over `{timestamp}|{body}`, ±300 s.
        "telnyx" => Preset {
            event: json_event("/data/event_type"),
            schemes: vec![SchemeSpec {
                scheme: Scheme::Asymmetric(AsymmetricScheme {
                    signature_header: h("telnyx-signature-ed25519"),
                    carrier: Carrier::Whole,
                    encoding: Base64,
                    timestamp_header: h("telnyx-timestamp"),
                    id_header: None,
                    layout: Layout::TimestampPipeBody,
                }),
                key_format: KeyFormat::Ed25519Base64,
                algorithm: Sha256,
            }],
            window: Some((secs(300), None)),
            dedup: json_id("/data/id"),
            ..BLANK
        },
        _ => return None,
    };
    Some(p)
}
