//! HMACs over a signed timestamp and the body: in the signature header (`t=`/`ts=`)
//! or in a header of its own. The window bounds replays.

use super::{
    header_event, header_id, json_event, json_id, secs, ts_header, Algorithm, Encoding,
    HandshakeKind, Hmac, Preset, SchemeSpec, SigFormat, TimestampFrom, TimestampSource,
    TimestampUnit, BLANK, FUTURE_5M,
};

/// The presets this file defines.
#[cfg(test)]
pub(super) const NAMES: &[&str] = &[
    "stripe",
    "mux",
    "calendly",
    "paddle",
    "slack",
    "zoom",
    "twitch",
    "workos",
    "elevenlabs",
    "sanity",
    "webflow",
    "retell",
    "box",
    "orb",
    "ghost",
    "twenty",
    "zendesk",
];

fn ts_field() -> Option<TimestampSource> {
    ts_field_in(TimestampUnit::Seconds)
}

fn ts_field_in(unit: TimestampUnit) -> Option<TimestampSource> {
    Some(TimestampSource {
        from: TimestampFrom::SigField,
        unit,
    })
}

/// `<ts>=<t>,<sig>=<tag>` items in one header (Stripe's shape under other names).
fn fields(sig: &str, ts: &str) -> SigFormat {
    SigFormat::Fields {
        sep: b',',
        sig: sig.into(),
        ts: Some(ts.into()),
    }
}

/// Box: the same HMAC over `{body}{timestamp}` in two headers, one per key (primary and
/// secondary), so a key can be rotated while the other still verifies.
fn box_signature(header: &'static str) -> SchemeSpec {
    Hmac {
        payload: "{body}{timestamp}",
        timestamp: ts_header("box-delivery-timestamp", TimestampUnit::Rfc3339),
        ..Hmac::body(Algorithm::Sha256, header, "", Encoding::Base64)
    }
    .spec()
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

pub(super) fn preset(name: &str) -> Option<Preset> {
    use super::Algorithm::Sha256;
    use super::Encoding::Hex;
    let p = match name {
        "stripe" => Preset {
            event: json_event("/type"),
            schemes: vec![stripe_like("stripe-signature")],
            window: Some((secs(300), FUTURE_5M)),
            dedup: json_id("/id"),
            ..BLANK
        },
        "mux" => Preset {
            event: json_event("/type"),
            schemes: vec![stripe_like("mux-signature")],
            window: Some((secs(300), FUTURE_5M)),
            dedup: json_id("/id"),
            ..BLANK
        },
        "calendly" => Preset {
            event: json_event("/event"),
            schemes: vec![stripe_like("calendly-webhook-signature")],
            window: Some((secs(180), None)),
            ..BLANK
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
            ..BLANK
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
            ..BLANK
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
            ..BLANK
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
            ..BLANK
        },
        // workos-node webhooks.constructEvent: `t=<ms>, v1=<hex>`, 180 s, past only.
        "workos" => Preset {
            event: json_event("/event"),
            schemes: vec![Hmac {
                format: fields("v1", "t"),
                payload: "{timestamp}.{body}",
                timestamp: ts_field_in(TimestampUnit::Millis),
                ..Hmac::body(Sha256, "workos-signature", "", Hex)
            }
            .spec()],
            window: Some((secs(180), FUTURE_5M)),
            dedup: json_id("/id"),
            ..BLANK
        },
        // elevenlabs-js webhooks.constructEvent: `t=<s>,v0=<hex>`, 30 minutes, past only.
        "elevenlabs" => Preset {
            event: json_event("/type"),
            schemes: vec![Hmac {
                format: fields("v0", "t"),
                payload: "{timestamp}.{body}",
                timestamp: ts_field(),
                ..Hmac::body(Sha256, "elevenlabs-signature", "", Hex)
            }
            .spec()],
            window: Some((secs(1800), FUTURE_5M)),
            ..BLANK
        },
        // @sanity/webhook isValidSignature: `t=<ms>,v1=<base64url>`. The SDK checks no age;
        // five minutes either side bound replays, as for the other unwindowed SDKs.
        "sanity" => Preset {
            schemes: vec![Hmac {
                format: fields("v1", "t"),
                payload: "{timestamp}.{body}",
                timestamp: ts_field_in(TimestampUnit::Millis),
                ..Hmac::body(Sha256, "sanity-webhook-signature", "", Encoding::Base64Url)
            }
            .spec()],
            window: Some((secs(300), None)),
            ..BLANK
        },
        // webflow-api webhooks.verifySignature: `{timestamp}:{body}`, x-webflow-timestamp in
        // ms. The SDK checks no age; the docs ask for five minutes.
        "webflow" => Preset {
            event: json_event("/triggerType"),
            schemes: vec![Hmac {
                payload: "{timestamp}:{body}",
                timestamp: ts_header("x-webflow-timestamp", TimestampUnit::Millis),
                ..Hmac::body(Sha256, "x-webflow-signature", "", Hex)
            }
            .spec()],
            window: Some((secs(300), FUTURE_5M)),
            ..BLANK
        },
        // retell-sdk verify: `v=<ms>,d=<hex>` over body then timestamp, ±5 minutes; the key
        // is the Retell API key that has the webhook badge.
        "retell" => Preset {
            event: json_event("/event"),
            schemes: vec![Hmac {
                format: fields("d", "v"),
                payload: "{body}{timestamp}",
                timestamp: ts_field_in(TimestampUnit::Millis),
                ..Hmac::body(Sha256, "x-retell-signature", "", Hex)
            }
            .spec()],
            window: Some((secs(300), None)),
            ..BLANK
        },
        // box-node-sdk WebhooksManager.validateMessage: 10 minutes old at most and never
        // ahead of the receiver's clock.
        "box" => Preset {
            event: json_event("/trigger"),
            schemes: vec![
                box_signature("box-signature-primary"),
                box_signature("box-signature-secondary"),
            ],
            window: Some((secs(600), Some(secs(0)))),
            ..BLANK
        },
        // orb-billing webhooks.verifySignature: `v1=<hex>` entries (space-separated) over
        // `v1:{timestamp}:{body}`, X-Orb-Timestamp in ISO 8601 (UTC when no zone), ±5 min.
        "orb" => Preset {
            schemes: vec![Hmac {
                format: SigFormat::Fields {
                    sep: b' ',
                    sig: "v1".into(),
                    ts: None,
                },
                payload: "v1:{timestamp}:{body}",
                timestamp: ts_header("x-orb-timestamp", TimestampUnit::Rfc3339),
                ..Hmac::body(Sha256, "x-orb-signature", "", Hex)
            }
            .spec()],
            window: Some((secs(300), None)),
            ..BLANK
        },
        // Ghost core/server/services/webhooks/WebhookTrigger.js: `sha256=<hex>, t=<ms>` over
        // the body then the timestamp. Ghost's retries resend the same headers within
        // seconds; nothing on the receiving side sets an age, so five minutes either way.
        "ghost" => Preset {
            event: json_event("/event"),
            schemes: vec![Hmac {
                format: fields("sha256", "t"),
                payload: "{body}{timestamp}",
                timestamp: ts_field_in(TimestampUnit::Millis),
                ..Hmac::body(Sha256, "x-ghost-signature", "", Hex)
            }
            .spec()],
            window: Some((secs(300), None)),
            ..BLANK
        },
        // twenty core-modules/webhook/jobs/call-webhook.job.ts: hex over
        // `{timestamp}:{body}`, timestamp in ms; no receiver rule, so five minutes.
        "twenty" => Preset {
            event: json_event("/eventName"),
            schemes: vec![Hmac {
                payload: "{timestamp}:{body}",
                timestamp: ts_header("x-twenty-webhook-timestamp", TimestampUnit::Millis),
                ..Hmac::body(Sha256, "x-twenty-webhook-signature", "", Hex)
            }
            .spec()],
            window: Some((secs(300), None)),
            ..BLANK
        },
        // developer.zendesk.com/documentation/webhooks/verifying: base64(HMAC-SHA256 of
        // timestamp + body); the docs give no age, so five minutes either way.
        "zendesk" => Preset {
            schemes: vec![Hmac {
                payload: "{timestamp}{body}",
                timestamp: ts_header(
                    "x-zendesk-webhook-signature-timestamp",
                    TimestampUnit::Rfc3339,
                ),
                ..Hmac::body(Sha256, "x-zendesk-webhook-signature", "", Encoding::Base64)
            }
            .spec()],
            window: Some((secs(300), None)),
            ..BLANK
        },
        _ => return None,
    };
    Some(p)
}
