//! Provider presets: `provider = "stripe"` is all it takes to verify exactly as the
//! provider's own SDK does. Each preset names its scheme(s), secret format, timestamp rule
//! and default dedup key; the facts and their sources are in `shared/providers.md`.

use std::time::Duration;

use http::HeaderName;

use super::asymmetric::{AsymmetricScheme, Carrier, Layout};
use super::hmac_scheme::{
    Encoding, HmacScheme, SigFormat, TimestampFrom, TimestampSource, TimestampUnit,
};
use super::keys::KeyFormat;
use super::mac::Algorithm;
use super::mailgun::MailgunScheme;
use super::template::Template;
use super::token::{TokenScheme, TokenStyle};
use super::twilio::TwilioScheme;
use super::Scheme;
use crate::config::EventSource;

/// Every preset name, for messages and docs.
pub const NAMES: &[&str] = &[
    "stripe",
    "github",
    "standard-webhooks",
    "svix",
    "shopify",
    "slack",
    "twilio",
    "paddle",
    "zoom",
    "linear",
    "gitlab",
    "square",
    "intercom",
    "hubspot",
    "typeform",
    "calendly",
    "twitch",
    "woocommerce",
    "mailgun",
    "sentry",
    "vercel",
    "mux",
    "bitbucket",
    "pagerduty",
    "postmark",
    "discord",
    "sendgrid",
];

/// Where a preset's delivery id is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DefaultId {
    /// The first of these headers that is present.
    Headers(Vec<HeaderName>),
    /// A JSON pointer into the body.
    Json(&'static str),
}

/// A preset's default dedup key. `required` is true only where the id is part of what the
/// provider signs; elsewhere a delivery without an id is forwarded without dedup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DedupDefault {
    /// Where.
    pub id: DefaultId,
    /// Whether a delivery without it is refused.
    pub required: bool,
}

/// Control requests a preset answers itself (providers.md "Control requests").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeKind {
    /// Zoom `endpoint.url_validation`: answer the HMAC of `plainToken`.
    ZoomUrlValidation,
    /// Slack `url_verification`: echo the challenge.
    SlackUrlVerification,
    /// Twitch `webhook_callback_verification`: echo the challenge as text.
    TwitchCallbackVerification,
    /// Discord PING: interactions `{"type":1}`, webhook events 204.
    DiscordPing,
    /// WooCommerce's unsigned `webhook_id=<n>` creation ping: 200, not forwarded.
    WooCommercePing,
}

/// One scheme of a preset and the secret format it reads.
#[derive(Debug, Clone)]
pub struct SchemeSpec {
    /// The scheme.
    pub scheme: Scheme,
    /// How secrets become keys for it.
    pub key_format: KeyFormat,
    /// The MAC algorithm (HMAC schemes).
    pub algorithm: Algorithm,
}

/// A provider preset.
#[derive(Debug, Clone)]
pub struct Preset {
    /// Schemes, tried in order.
    pub schemes: Vec<SchemeSpec>,
    /// Default (past, future) window; `None` future = same as past. `None` = no timestamp.
    pub window: Option<(Duration, Option<Duration>)>,
    /// Default dedup key, `None` = the provider sends no stable id.
    pub dedup: Option<DedupDefault>,
    /// Whether the scheme signs the URL (route needs `public_url`).
    pub needs_public_url: bool,
    /// Control request answered by the gateway.
    pub handshake: Option<HandshakeKind>,
    /// Where the event type is, for `events` filters.
    pub event: Option<EventSource>,
}

fn h(name: &'static str) -> HeaderName {
    HeaderName::from_static(name)
}

fn template(t: &str) -> Template {
    // Preset templates are literals checked by the tests below.
    Template::parse(t).unwrap_or_else(|e| unreachable!("preset template {t:?}: {e}"))
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// The contract's rule for SDKs that accept any future timestamp.
const FUTURE_5M: Option<Duration> = Some(Duration::from_secs(300));

struct Hmac {
    algorithm: Algorithm,
    header: &'static str,
    format: SigFormat,
    encoding: Encoding,
    payload: &'static str,
    timestamp: Option<TimestampSource>,
    id_header: Option<&'static str>,
    key_format: KeyFormat,
}

impl Hmac {
    /// Body-only HMAC with the raw secret: the most common shape.
    fn body(algorithm: Algorithm, header: &'static str, prefix: &str, encoding: Encoding) -> Self {
        Hmac {
            algorithm,
            header,
            format: SigFormat::Prefixed(prefix.to_owned()),
            encoding,
            payload: "{body}",
            timestamp: None,
            id_header: None,
            key_format: KeyFormat::Raw,
        }
    }

    fn spec(self) -> SchemeSpec {
        SchemeSpec {
            scheme: Scheme::Hmac(HmacScheme {
                algorithm: self.algorithm,
                header: h(self.header),
                format: self.format,
                encoding: self.encoding,
                payload: template(self.payload),
                timestamp: self.timestamp,
                id_header: self.id_header.map(h),
            }),
            key_format: self.key_format,
            algorithm: self.algorithm,
        }
    }
}

fn ts_header(name: &'static str, unit: TimestampUnit) -> Option<TimestampSource> {
    Some(TimestampSource {
        from: TimestampFrom::Header(h(name)),
        unit,
    })
}

fn ts_field() -> Option<TimestampSource> {
    Some(TimestampSource {
        from: TimestampFrom::SigField,
        unit: TimestampUnit::Seconds,
    })
}

/// `t=<unix>,v1=<hex>` over `{t}.{body}` (Stripe, Mux, Calendly).
fn stripe_like(header: &'static str) -> SchemeSpec {
    Hmac {
        format: SigFormat::Fields {
            sep: b',',
            sig: "v1".into(),
            ts: Some("t".into()),
        },
        payload: "{timestamp}.{body}",
        timestamp: ts_field(),
        ..Hmac::body(Algorithm::Sha256, header, "", Encoding::Hex)
    }
    .spec()
}

/// Standard Webhooks over the given header names: `v1` HMAC (whsec_) and `v1a` Ed25519 (whpk_).
fn standard_webhooks(id: &'static str, ts: &'static str, sig: &'static str) -> Vec<SchemeSpec> {
    vec![
        Hmac {
            format: SigFormat::Versioned("v1".into()),
            payload: "{id}.{timestamp}.{body}",
            timestamp: ts_header(ts, TimestampUnit::Seconds),
            id_header: Some(id),
            key_format: KeyFormat::WhsecBase64,
            ..Hmac::body(Algorithm::Sha256, sig, "", Encoding::Base64)
        }
        .spec(),
        SchemeSpec {
            scheme: Scheme::Asymmetric(AsymmetricScheme {
                signature_header: h(sig),
                carrier: Carrier::Versioned("v1a".into()),
                encoding: Encoding::Base64,
                timestamp_header: h(ts),
                id_header: Some(h(id)),
                layout: Layout::IdTimestampBody,
            }),
            key_format: KeyFormat::WhpkBase64,
            algorithm: Algorithm::Sha256,
        },
    ]
}

fn json_event(pointer: &str) -> Option<EventSource> {
    Some(EventSource::Json(pointer.to_owned()))
}

fn header_event(name: &'static str) -> Option<EventSource> {
    Some(EventSource::Header(h(name)))
}

fn json_id(pointer: &'static str) -> Option<DedupDefault> {
    Some(DedupDefault {
        id: DefaultId::Json(pointer),
        required: false,
    })
}

fn header_id(names: &[&'static str], required: bool) -> Option<DedupDefault> {
    Some(DedupDefault {
        id: DefaultId::Headers(names.iter().map(|n| h(n)).collect()),
        required,
    })
}

/// The preset called `name`; `legacy_sha1` adds GitHub's SHA-1 `X-Hub-Signature`.
pub fn preset(name: &str, legacy_sha1: bool) -> Option<Preset> {
    use Algorithm::{Sha1, Sha256};
    use Encoding::{Base64, Hex};
    let none = Preset {
        schemes: Vec::new(),
        window: None,
        dedup: None,
        needs_public_url: false,
        handshake: None,
        event: None,
    };
    let p = match name {
        "stripe" => Preset {
            event: json_event("/type"),
            schemes: vec![stripe_like("stripe-signature")],
            window: Some((secs(300), FUTURE_5M)),
            dedup: json_id("/id"),
            ..none
        },
        "mux" => Preset {
            event: json_event("/type"),
            schemes: vec![stripe_like("mux-signature")],
            window: Some((secs(300), FUTURE_5M)),
            dedup: json_id("/id"),
            ..none
        },
        "calendly" => Preset {
            event: json_event("/event"),
            schemes: vec![stripe_like("calendly-webhook-signature")],
            window: Some((secs(180), None)),
            ..none
        },
        "paddle" => Preset {
            event: json_event("/event_type"),
            schemes: vec![Hmac {
                format: SigFormat::Fields {
                    sep: b';',
                    sig: "h1".into(),
                    ts: Some("ts".into()),
                },
                payload: "{timestamp}:{body}",
                timestamp: ts_field(),
                ..Hmac::body(Sha256, "paddle-signature", "", Hex)
            }
            .spec()],
            window: Some((secs(5), FUTURE_5M)),
            dedup: json_id("/event_id"),
            ..none
        },
        "pagerduty" => Preset {
            event: json_event("/event/event_type"),
            schemes: vec![Hmac {
                format: SigFormat::Fields {
                    sep: b',',
                    sig: "v1".into(),
                    ts: None,
                },
                ..Hmac::body(Sha256, "x-pagerduty-signature", "", Hex)
            }
            .spec()],
            dedup: json_id("/event/id"),
            ..none
        },
        "github" => {
            let mut schemes =
                vec![Hmac::body(Sha256, "x-hub-signature-256", "sha256=", Hex).spec()];
            if legacy_sha1 {
                schemes.push(Hmac::body(Sha1, "x-hub-signature", "sha1=", Hex).spec());
            }
            Preset {
                schemes,
                dedup: header_id(&["x-github-delivery"], false),
                event: Some(EventSource::HeaderDotJson(
                    h("x-github-event"),
                    "/action".to_owned(),
                )),
                ..none
            }
        }
        "standard-webhooks" => Preset {
            event: json_event("/type"),
            schemes: standard_webhooks("webhook-id", "webhook-timestamp", "webhook-signature"),
            window: Some((secs(300), Some(secs(300)))),
            dedup: header_id(&["webhook-id"], true),
            ..none
        },
        "svix" => {
            // Svix sends svix-*; white-label accounts send webhook-*; the SDKs accept both.
            let mut schemes = standard_webhooks("svix-id", "svix-timestamp", "svix-signature");
            schemes.extend(standard_webhooks(
                "webhook-id",
                "webhook-timestamp",
                "webhook-signature",
            ));
            Preset {
                schemes,
                window: Some((secs(300), Some(secs(300)))),
                dedup: header_id(&["svix-id", "webhook-id"], true),
                event: json_event("/type"),
                ..none
            }
        }
        "shopify" => Preset {
            event: header_event("x-shopify-topic"),
            // Events API deliveries use un-prefixed lowercase headers.
            schemes: vec![
                Hmac::body(Sha256, "x-shopify-hmac-sha256", "", Base64).spec(),
                Hmac::body(Sha256, "shopify-hmac-sha256", "", Base64).spec(),
            ],
            dedup: header_id(&["x-shopify-event-id", "shopify-event-id"], false),
            ..none
        },
        "slack" => Preset {
            event: json_event("/event/type"),
            schemes: vec![Hmac {
                payload: "v0:{timestamp}:{body}",
                timestamp: ts_header("x-slack-request-timestamp", TimestampUnit::Seconds),
                ..Hmac::body(Sha256, "x-slack-signature", "v0=", Hex)
            }
            .spec()],
            window: Some((secs(300), Some(secs(300)))),
            dedup: json_id("/event_id"),
            handshake: Some(HandshakeKind::SlackUrlVerification),
            ..none
        },
        "zoom" => Preset {
            event: json_event("/event"),
            schemes: vec![Hmac {
                payload: "v0:{timestamp}:{body}",
                timestamp: ts_header("x-zm-request-timestamp", TimestampUnit::Seconds),
                ..Hmac::body(Sha256, "x-zm-signature", "v0=", Hex)
            }
            .spec()],
            window: Some((secs(300), None)),
            handshake: Some(HandshakeKind::ZoomUrlValidation),
            ..none
        },
        "linear" => Preset {
            event: json_event("/type"),
            schemes: vec![Hmac {
                timestamp: Some(TimestampSource {
                    from: TimestampFrom::JsonField(
                        "/webhookTimestamp".into(),
                        Some(h("linear-timestamp")),
                    ),
                    unit: TimestampUnit::Millis,
                }),
                ..Hmac::body(Sha256, "linear-signature", "", Hex)
            }
            .spec()],
            window: Some((secs(60), Some(secs(60)))),
            dedup: header_id(&["linear-delivery"], false),
            ..none
        },
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
            ..none
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
            ..none
        },
        "square" => Preset {
            event: json_event("/type"),
            schemes: vec![Hmac {
                payload: "{url}{body}",
                ..Hmac::body(Sha256, "x-square-hmacsha256-signature", "", Base64)
            }
            .spec()],
            dedup: json_id("/event_id"),
            needs_public_url: true,
            ..none
        },
        "hubspot" => Preset {
            event: json_event("/0/subscriptionType"),
            schemes: vec![Hmac {
                payload: "{method}{url}{body}{timestamp}",
                timestamp: ts_header("x-hubspot-request-timestamp", TimestampUnit::Millis),
                ..Hmac::body(Sha256, "x-hubspot-signature-v3", "", Base64)
            }
            .spec()],
            window: Some((secs(300), FUTURE_5M)),
            needs_public_url: true,
            ..none
        },
        "twilio" => Preset {
            // The Auth Token (HMAC-SHA1) or a Webhook Rules SharedKey (HMAC-SHA256).
            schemes: vec![
                SchemeSpec {
                    scheme: Scheme::Twilio(TwilioScheme { sha256: false }),
                    key_format: KeyFormat::Raw,
                    algorithm: Sha1,
                },
                SchemeSpec {
                    scheme: Scheme::Twilio(TwilioScheme { sha256: true }),
                    key_format: KeyFormat::Raw,
                    algorithm: Sha256,
                },
            ],
            dedup: header_id(&["i-twilio-idempotency-token"], false),
            needs_public_url: true,
            ..none
        },
        "intercom" => Preset {
            event: json_event("/topic"),
            schemes: vec![Hmac::body(Sha1, "x-hub-signature", "sha1=", Hex).spec()],
            dedup: json_id("/id"),
            ..none
        },
        "typeform" => Preset {
            event: json_event("/event_type"),
            schemes: vec![Hmac::body(Sha256, "typeform-signature", "sha256=", Base64).spec()],
            dedup: json_id("/event_id"),
            ..none
        },
        "twitch" => Preset {
            event: header_event("twitch-eventsub-subscription-type"),
            schemes: vec![Hmac {
                payload: "{id}{timestamp}{body}",
                timestamp: ts_header("twitch-eventsub-message-timestamp", TimestampUnit::Rfc3339),
                id_header: Some("twitch-eventsub-message-id"),
                ..Hmac::body(Sha256, "twitch-eventsub-message-signature", "sha256=", Hex)
            }
            .spec()],
            window: Some((secs(600), FUTURE_5M)),
            dedup: header_id(&["twitch-eventsub-message-id"], true),
            handshake: Some(HandshakeKind::TwitchCallbackVerification),
            ..none
        },
        "woocommerce" => Preset {
            event: header_event("x-wc-webhook-topic"),
            schemes: vec![Hmac {
                key_format: KeyFormat::HtmlEntities,
                ..Hmac::body(Sha256, "x-wc-webhook-signature", "", Base64)
            }
            .spec()],
            handshake: Some(HandshakeKind::WooCommercePing),
            ..none
        },
        "mailgun" => Preset {
            event: json_event("/event-data/event"),
            schemes: vec![SchemeSpec {
                scheme: Scheme::Mailgun(MailgunScheme),
                key_format: KeyFormat::Raw,
                algorithm: Sha256,
            }],
            // Retries may carry the original signature: the window covers Mailgun's 8 h of
            // retries, and the token (one use only) is what stops replays.
            window: Some((secs(12 * 3600), Some(secs(300)))),
            dedup: Some(DedupDefault {
                id: DefaultId::Json("/signature/token"),
                required: true,
            }),
            ..none
        },
        "sentry" => Preset {
            event: header_event("sentry-hook-resource"),
            schemes: vec![Hmac::body(Sha256, "sentry-hook-signature", "", Hex).spec()],
            ..none
        },
        "vercel" => Preset {
            event: json_event("/type"),
            schemes: vec![Hmac::body(Sha1, "x-vercel-signature", "", Hex).spec()],
            dedup: json_id("/id"),
            ..none
        },
        "bitbucket" => Preset {
            event: header_event("x-event-key"),
            schemes: vec![Hmac::body(Sha256, "x-hub-signature", "sha256=", Hex).spec()],
            dedup: header_id(&["x-request-uuid"], false),
            ..none
        },
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
            ..none
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
            ..none
        },
        _ => return None,
    };
    Some(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_preset_exists_and_has_a_scheme() {
        for name in NAMES {
            let p = preset(name, true).unwrap_or_else(|| panic!("{name}"));
            assert!(!p.schemes.is_empty(), "{name}");
        }
        assert!(
            preset("generic", false).is_none(),
            "generic is the [route.verify] table"
        );
        assert!(preset("nope", false).is_none());
    }

    #[test]
    fn github_sha1_only_when_asked() {
        assert_eq!(preset("github", false).unwrap().schemes.len(), 1);
        assert_eq!(preset("github", true).unwrap().schemes.len(), 2);
    }
}
