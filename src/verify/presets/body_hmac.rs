//! Body-only HMACs: the signature covers the raw body and nothing else, so replay
//! protection comes from dedup alone (Linear's timestamp is inside the signed body).

use super::{
    h, header_event, header_id, json_event, json_id, secs, EventSource, HandshakeKind, Hmac,
    KeyFormat, Preset, SigFormat, TimestampFrom, TimestampSource, TimestampUnit, BLANK,
};

/// The presets this file defines.
#[cfg(test)]
pub(super) const NAMES: &[&str] = &[
    "github",
    "shopify",
    "intercom",
    "typeform",
    "woocommerce",
    "sentry",
    "vercel",
    "bitbucket",
    "pagerduty",
    "linear",
    "coinbase-commerce",
    "razorpay",
    "gocardless",
    "onfido",
    "line",
    "pusher",
];

pub(super) fn preset(name: &str, legacy_sha1: bool) -> Option<Preset> {
    use super::Algorithm::{Sha1, Sha256};
    use super::Encoding::{Base64, Hex};
    let p = match name {
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
                ..BLANK
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
            ..BLANK
        },
        "intercom" => Preset {
            event: json_event("/topic"),
            schemes: vec![Hmac::body(Sha1, "x-hub-signature", "sha1=", Hex).spec()],
            dedup: json_id("/id"),
            ..BLANK
        },
        "typeform" => Preset {
            event: json_event("/event_type"),
            schemes: vec![Hmac::body(Sha256, "typeform-signature", "sha256=", Base64).spec()],
            dedup: json_id("/event_id"),
            ..BLANK
        },
        "woocommerce" => Preset {
            event: header_event("x-wc-webhook-topic"),
            schemes: vec![Hmac {
                key_format: KeyFormat::HtmlEntities,
                ..Hmac::body(Sha256, "x-wc-webhook-signature", "", Base64)
            }
            .spec()],
            handshake: Some(HandshakeKind::WooCommercePing),
            ..BLANK
        },
        "sentry" => Preset {
            event: header_event("sentry-hook-resource"),
            schemes: vec![Hmac::body(Sha256, "sentry-hook-signature", "", Hex).spec()],
            ..BLANK
        },
        "vercel" => Preset {
            event: json_event("/type"),
            schemes: vec![Hmac::body(Sha1, "x-vercel-signature", "", Hex).spec()],
            dedup: json_id("/id"),
            ..BLANK
        },
        "bitbucket" => Preset {
            event: header_event("x-event-key"),
            schemes: vec![Hmac::body(Sha256, "x-hub-signature", "sha256=", Hex).spec()],
            dedup: header_id(&["x-request-uuid"], false),
            ..BLANK
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
            ..BLANK
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
            ..BLANK
        },
        // coinbase-commerce-node Webhook.verifySigHeader.
        "coinbase-commerce" => Preset {
            event: json_event("/event/type"),
            schemes: vec![Hmac::body(Sha256, "x-cc-webhook-signature", "", Hex).spec()],
            dedup: json_id("/event/id"),
            ..BLANK
        },
        // razorpay-node validateWebhookSignature (the webhook secret, not the API key).
        "razorpay" => Preset {
            event: json_event("/event"),
            schemes: vec![Hmac::body(Sha256, "x-razorpay-signature", "", Hex).spec()],
            ..BLANK
        },
        // gocardless-nodejs webhooks.verifySignature. One delivery carries several events,
        // so there is no single event type; meta.webhook_id names the delivery.
        "gocardless" => Preset {
            schemes: vec![Hmac::body(Sha256, "webhook-signature", "", Hex).spec()],
            dedup: json_id("/meta/webhook_id"),
            ..BLANK
        },
        // @onfido/api WebhookEventVerifier (the webhook's token is the key).
        "onfido" => Preset {
            event: json_event("/payload/action"),
            schemes: vec![Hmac::body(Sha256, "x-sha2-signature", "", Hex).spec()],
            ..BLANK
        },
        // @line/bot-sdk validateSignature (the channel secret). Events come in a list.
        "line" => Preset {
            schemes: vec![Hmac::body(Sha256, "x-line-signature", "", Base64).spec()],
            ..BLANK
        },
        // pusher-http-node WebHook.isValid (the app secret). Events come in a list.
        "pusher" => Preset {
            schemes: vec![Hmac::body(Sha256, "x-pusher-signature", "", Hex).spec()],
            ..BLANK
        },
        _ => return None,
    };
    Some(p)
}
