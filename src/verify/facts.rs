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
        KeyFormat::Base64Key => {
            "the security token as shown (base64; its decoded bytes are the key)"
        }
        KeyFormat::JwtSecret => {
            "the JWS secret token (the HS256 key, as configured at the provider)"
        }
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
        HandshakeKind::MetaVerification => {
            "GET ?hub.mode=subscribe&hub.verify_token=..&hub.challenge=..: the challenge as text/plain, only when hub.verify_token is meta.verify_token"
        }
        HandshakeKind::XCrc => {
            "GET ?crc_token=..: {\"response_token\":\"sha256=<base64 HMAC-SHA256 of crc_token with the consumer secret>\"}"
        }
        HandshakeKind::DropboxChallenge => {
            "GET ?challenge=..: the challenge echoed as text/plain (X-Content-Type-Options: nosniff)"
        }
        HandshakeKind::AsanaHookSecret => {
            "X-Hook-Secret: echoed (200) and stored in the route's secret file, only while the route has no secret yet; later handshakes are refused"
        }
        HandshakeKind::OktaVerification => {
            "GET with x-okta-verification-challenge (and the configured Authorization): {\"verification\": <challenge>}"
        }
        HandshakeKind::GraphValidation => {
            "?validationToken=..: the token echoed as text/plain (200)"
        }
        HandshakeKind::SnsSubscription => {
            "SubscriptionConfirmation (signed, from a listed topic): confirmed by a GET of SubscribeURL when sns.auto_confirm = true (else forwarded); messages from topics not in sns.topics: 403 topic_not_allowed"
        }
    }
}

fn scheme(spec: &SchemeSpec) -> SchemeFacts {
    let secret = secret(spec.key_format).to_owned();
    match &spec.scheme {
        Scheme::Learned(s, _) => SchemeFacts {
            secret: "learned from the X-Hook-Secret handshake and stored in the route's { file = ... } secret (or that file, written beforehand)".to_owned(),
            ..hmac_facts(s, secret)
        },
        Scheme::Hmac(s) => hmac_facts(s, secret),
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
        Scheme::Jwt(j) => jwt_facts(j, secret),
        Scheme::Sns(_) => SchemeFacts {
            header: "none: Signature, SignatureVersion and SigningCertURL in the JSON body".to_owned(),
            algorithm: "RSA PKCS#1 v1.5 with SHA-1 (SignatureVersion 1) or SHA-256 (2), base64".to_owned(),
            payload: "the canonical string of the message's fields (Notification: Message, MessageId, Subject, Timestamp, TopicArn, Type; confirmations: Message, MessageId, SubscribeURL, Timestamp, Token, TopicArn, Type)".to_owned(),
            secret: "none: the certificate at SigningCertURL, fetched over HTTPS from sns.cert_hosts and cached".to_owned(),
            timestamp: None,
        },
        Scheme::ClientState => SchemeFacts {
            header: "none: value[].clientState in the JSON body".to_owned(),
            algorithm: "shared secret, constant-time compare, in every notification".to_owned(),
            payload: "none (the clientState is the proof)".to_owned(),
            secret: "the clientState given when the subscription was created".to_owned(),
            timestamp: None,
        },
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

fn hmac_facts(s: &super::HmacScheme, secret: String) -> SchemeFacts {
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

fn jwt_facts(j: &super::jwt::JwtScheme, secret: String) -> SchemeFacts {
    use super::jwt::{Carrier, JwtKeys, JwtTime, PendingSource};
    let header = match j.carrier {
        Carrier::Bearer => format!("{}: Bearer <JWT>", j.header),
        Carrier::Whole => format!("{}: <JWS>", j.header),
    };
    let mut claims = Vec::new();
    if !j.issuers.is_empty() {
        claims.push(format!("iss = {}", j.issuers.join(" or ")));
    }
    if let Some(a) = &j.audience {
        claims.push(format!("aud = {a}"));
    }
    if let Some(c) = j.body_sha256_claim {
        claims.push(format!("{c} = hex SHA-256 of {{body}}"));
    }
    if j.email.is_some() || matches!(j.keys, JwtKeys::Pending(PendingSource::GoogleCerts)) {
        claims.push("email = the service account (email_verified)".to_owned());
    }
    let secret = match &j.keys {
        JwtKeys::Secrets => secret,
        JwtKeys::Pending(PendingSource::GoogleCerts) | JwtKeys::Fetched(_) => {
            "none: Google's published keys (JWKS), fetched and cached; google.audience and google.service_account name the expected token".to_owned()
        }
        JwtKeys::Pending(PendingSource::ChatCertificates) => {
            "none: the Chat service account's published certificates, fetched and cached; google.audience is the project number".to_owned()
        }
        JwtKeys::Pending(PendingSource::Plaid) => {
            "none: the key named by kid, fetched from /webhook_verification_key/get with plaid.client_id and plaid.secret".to_owned()
        }
    };
    SchemeFacts {
        header,
        algorithm: format!("JWS {:?}", j.algorithm),
        payload: format!(
            "claims: {}",
            if claims.is_empty() {
                "none".to_owned()
            } else {
                claims.join(", ")
            }
        ),
        secret,
        timestamp: match j.time {
            JwtTime::None => None,
            JwtTime::IssuedAt => Some("claim iat, unix seconds".to_owned()),
            JwtTime::IssuedUntilExpiry => Some("claims iat and exp, unix seconds".to_owned()),
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
    let mut schemes: Vec<SchemeFacts> = preset.schemes.iter().map(scheme).collect();
    if preset.handshake == Some(HandshakeKind::AsanaHookSecret) {
        for s in &mut schemes {
            s.secret = "one { file = ... } secret: learned from the X-Hook-Secret handshake and stored there (mode 0600), or written there beforehand".to_owned();
        }
    }
    PresetFacts {
        schemes,
        window,
        dedup,
        dedup_required: preset.dedup.as_ref().is_some_and(|d| d.required),
        event: preset.event.as_ref().map(ToString::to_string),
        handshake: preset.handshake.map(handshake),
        needs_public_url: preset.needs_public_url,
    }
}
