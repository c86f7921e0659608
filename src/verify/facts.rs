//! What a preset does, in words, read off the same [`Preset`] table the verifiers are built
//! from (`hookwall presets`, `docs/PRESETS.md`), so the description cannot drift from the
//! code.

use std::fmt::Write;

use super::asymmetric::{Carrier, Layout};
use super::hmac_scheme::{SigFormat, TimestampFrom, TimestampUnit};
use super::keys::KeyFormat;
use super::mac::Algorithm;
use super::presets::{DefaultId, HandshakeKind, Preset, SchemeSpec};
use super::token::TokenStyle;
use super::{Encoding, Scheme};

/// One scheme of a preset, described.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemeFacts {
    /// The header(s) the signature is read from, and its shape.
    pub header: String,
    /// Algorithm and encoding.
    pub algorithm: String,
    /// What is signed.
    pub payload: String,
    /// What the configured secret must be.
    pub secret: String,
    /// Where the signed timestamp is, if any.
    pub timestamp: Option<String>,
}

/// A preset, described.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresetFacts {
    /// Its schemes, tried in order.
    pub schemes: Vec<SchemeFacts>,
    /// The timestamp window (past / future).
    pub window: Option<String>,
    /// The default dedup key.
    pub dedup: Option<String>,
    /// Whether a delivery without that key is refused (else forwarded without dedup).
    pub dedup_required: bool,
    /// Where the event type is.
    pub event: Option<String>,
    /// The control request hookwall answers itself.
    pub handshake: Option<&'static str>,
    /// Whether the route needs `public_url`.
    pub needs_public_url: bool,
}

fn algorithm(a: Algorithm) -> &'static str {
    match a {
        Algorithm::Sha1 => "HMAC-SHA1",
        Algorithm::Sha256 => "HMAC-SHA256",
        Algorithm::Sha512 => "HMAC-SHA512",
    }
}

fn encoding(e: Encoding) -> &'static str {
    match e {
        Encoding::Hex => "hex",
        Encoding::Base64 => "base64",
        Encoding::Base64Url => "base64url (unpadded)",
    }
}

fn unit(u: TimestampUnit) -> &'static str {
    match u {
        TimestampUnit::Seconds => "unix seconds",
        TimestampUnit::Millis => "unix milliseconds",
        TimestampUnit::Rfc3339 => "RFC 3339",
    }
}

fn secret(format: KeyFormat) -> &'static str {
    match format {
        KeyFormat::Raw => "the signing secret as the provider shows it",
        KeyFormat::WhsecBase64 => {
            "\"whsec_\" + base64, or the base64 alone (the decoded bytes are the key)"
        }
        KeyFormat::HtmlEntities => "the secret as WooCommerce shows it (HTML entities decoded)",
        KeyFormat::Ed25519Hex => "the application's Ed25519 public key, hex",
        KeyFormat::WhpkBase64 => "\"whpk_\" + base64 Ed25519 public key",
        KeyFormat::Ed25519Base64 => "the provider's Ed25519 public key, base64",
        KeyFormat::P256Der => "the verification key, base64 DER (P-256)",
        KeyFormat::Token => "the shared token (compared whole, in constant time)",
    }
}

/// Handshake descriptions, as `hookwall presets` prints them.
pub fn handshake(kind: HandshakeKind) -> &'static str {
    match kind {
        HandshakeKind::ZoomUrlValidation => {
            "endpoint.url_validation: answers plainToken with its HMAC-SHA256 (encryptedToken)"
        }
        HandshakeKind::SlackUrlVerification => "url_verification: echoes the challenge",
        HandshakeKind::TwitchCallbackVerification => {
            "webhook_callback_verification: echoes the challenge as text/plain"
        }
        HandshakeKind::DiscordPing => "PING: {\"type\":1} for interactions, 204 for events",
        HandshakeKind::WooCommercePing => "the unsigned webhook_id=<n> creation ping: 200",
    }
}

fn scheme(spec: &SchemeSpec) -> SchemeFacts {
    let secret = secret(spec.key_format).to_owned();
    match &spec.scheme {
        Scheme::Hmac(s) => {
            let header = match &s.format {
                SigFormat::Prefixed(p) if p.is_empty() => s.header.to_string(),
                SigFormat::Prefixed(p) => format!("{}: {p}<sig>", s.header),
                SigFormat::Fields { sep, sig, ts } => {
                    let sep = char::from(*sep);
                    match ts {
                        Some(ts) => format!("{}: {ts}=<t>{sep}{sig}=<sig>", s.header),
                        None => format!("{}: {sig}=<sig>[{sep}{sig}=<sig>...]", s.header),
                    }
                }
                SigFormat::Versioned(v) => format!("{}: {v},<sig> [{v},<sig> ...]", s.header),
            };
            let timestamp = s.timestamp.as_ref().map(|t| {
                let at = match &t.from {
                    TimestampFrom::Header(h) => format!("header {h}"),
                    TimestampFrom::SigField => "the signature header".to_owned(),
                    TimestampFrom::JsonField(p, Some(h)) => format!("json:{p} (else header {h})"),
                    TimestampFrom::JsonField(p, None) => format!("json:{p}"),
                };
                format!("{at}, {}", unit(t.unit))
            });
            let mut payload = s.payload.to_string();
            if let Some(id) = &s.id_header {
                let _ = write!(payload, " ({{id}} = header {id})");
            }
            SchemeFacts {
                header,
                algorithm: format!("{}, {}", algorithm(s.algorithm), encoding(s.encoding)),
                payload,
                secret,
                timestamp,
            }
        }
        Scheme::Twilio(t) => SchemeFacts {
            header: super::twilio::SIGNATURE_HEADER.to_owned(),
            algorithm: if t.sha256 {
                "HMAC-SHA256 (Webhook Rules SharedKey), base64".to_owned()
            } else {
                "HMAC-SHA1 (Auth Token), base64".to_owned()
            },
            payload: "public_url + sorted form parameters (JSON bodies: URL with ?bodySHA256=)"
                .to_owned(),
            secret,
            timestamp: None,
        },
        Scheme::Mailgun(_) => SchemeFacts {
            header: "none: signature{timestamp, token, signature} in the JSON body".to_owned(),
            algorithm: "HMAC-SHA256, hex".to_owned(),
            payload: "{timestamp}{token} (the body itself is not signed)".to_owned(),
            secret,
            timestamp: Some("json:/signature/timestamp, unix seconds".to_owned()),
        },
        Scheme::Asymmetric(a) => {
            let header = match &a.carrier {
                Carrier::Whole => a.signature_header.to_string(),
                Carrier::Versioned(v) => format!("{}: {v},<sig> [...]", a.signature_header),
            };
            let payload = match (&a.layout, &a.id_header) {
                (Layout::TimestampBody, _) => "{timestamp}{body}".to_owned(),
                (Layout::TimestampPipeBody, _) => "{timestamp}|{body}".to_owned(),
                (Layout::IdTimestampBody, Some(id)) => {
                    format!("{{id}}.{{timestamp}}.{{body}} ({{id}} = header {id})")
                }
                (Layout::IdTimestampBody, None) => "{id}.{timestamp}.{body}".to_owned(),
            };
            let alg = match spec.key_format {
                KeyFormat::P256Der => "ECDSA P-256 / SHA-256",
                _ => "Ed25519",
            };
            SchemeFacts {
                header,
                algorithm: format!("{alg}, {}", encoding(a.encoding)),
                payload,
                secret,
                timestamp: Some(format!("header {}, unix seconds", a.timestamp_header)),
            }
        }
        Scheme::Token(t) => SchemeFacts {
            header: match t.style {
                TokenStyle::Plain => format!("{}: <token>", t.header),
                TokenStyle::Basic => format!("{}: Basic base64(user:password)", t.header),
            },
            algorithm: "shared token, constant-time compare".to_owned(),
            payload: "none (the token is the proof)".to_owned(),
            secret,
            timestamp: None,
        },
    }
}

fn duration(d: std::time::Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// Describes `preset`.
pub fn describe(preset: &Preset) -> PresetFacts {
    let window = preset.window.map(|(past, future)| {
        let future = future.unwrap_or(past);
        format!("{} past / {} future", duration(past), duration(future))
    });
    let dedup = preset.dedup.as_ref().map(|d| {
        let key = match &d.id {
            DefaultId::Headers(names) => {
                let names: Vec<&str> = names.iter().map(|n| n.as_str()).collect();
                format!("header:{}", names.join(" | "))
            }
            DefaultId::Json(p) => format!("json:{p}"),
        };
        key
    });
    PresetFacts {
        schemes: preset.schemes.iter().map(scheme).collect(),
        window,
        dedup,
        dedup_required: preset.dedup.as_ref().is_some_and(|d| d.required),
        event: preset.event.as_ref().map(ToString::to_string),
        handshake: preset.handshake.map(handshake),
        needs_public_url: preset.needs_public_url,
    }
}
