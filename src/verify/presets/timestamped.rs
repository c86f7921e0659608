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
    "stripe", "mux", "calendly", "paddle", "slack", "zoom", "twitch",
];

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
        _ => return None,
    };
    Some(p)
}
