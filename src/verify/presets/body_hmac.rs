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
    "modern-treasury",
    "viber",
    "calcom",
    "lemonsqueezy",
    "clickup",
    "netbox",
    "frappe",
    "plane",
    "gitea",
    "gogs",
    "terraform-cloud",
    "microsoft-teams",
];

pub(super) fn preset(name: &str, legacy_sha1: bool) -> Option<Preset> {
    use super::Algorithm::{Sha1, Sha256, Sha512};
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
            // Events API deliveries use un-prefixed lowercase headers.
            event: Some(EventSource::AnyHeader(vec![
                h("x-shopify-topic"),
                h("shopify-topic"),
            ])),
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
        // modern-treasury-node webhooks.validateSignature (the webhook key).
        "modern-treasury" => Preset {
            schemes: vec![Hmac::body(Sha256, "x-signature", "", Hex).spec()],
            ..BLANK
        },
        // viber-bot MessageValidator (the bot's auth token).
        "viber" => Preset {
            event: json_event("/event"),
            schemes: vec![Hmac::body(Sha256, "x-viber-content-signature", "", Hex).spec()],
            ..BLANK
        },
        // cal.com packages/features/webhooks/lib/sendPayload.ts createWebhookSignature.
        "calcom" => Preset {
            event: json_event("/triggerEvent"),
            schemes: vec![Hmac::body(Sha256, "x-cal-signature-256", "", Hex).spec()],
            ..BLANK
        },
        // docs.lemonsqueezy.com/help/webhooks/signing-requests and Lemon Squeezy's own
        // nextjs-billing template (HMAC-SHA256 hex); the event is X-Event-Name.
        "lemonsqueezy" => Preset {
            event: header_event("x-event-name"),
            schemes: vec![Hmac::body(Sha256, "x-signature", "", Hex).spec()],
            ..BLANK
        },
        // developer.clickup.com/docs/webhooksignature (the webhook's secret).
        "clickup" => Preset {
            event: json_event("/event"),
            schemes: vec![Hmac::body(Sha256, "x-signature", "", Hex).spec()],
            ..BLANK
        },
        // netbox extras/webhooks.py generate_signature: HMAC-SHA512, hex.
        "netbox" => Preset {
            event: json_event("/event"),
            schemes: vec![Hmac::body(Sha512, "x-hook-signature", "", Hex).spec()],
            ..BLANK
        },
        // frappe integrations/doctype/webhook/webhook.py get_webhook_headers: base64.
        "frappe" => Preset {
            schemes: vec![Hmac::body(Sha256, "x-frappe-webhook-signature", "", Base64).spec()],
            ..BLANK
        },
        // plane bgtasks/webhook_task.py: hex; X-Plane-Delivery is new on every attempt.
        "plane" => Preset {
            event: header_event("x-plane-event"),
            schemes: vec![Hmac::body(Sha256, "x-plane-signature", "", Hex).spec()],
            ..BLANK
        },
        // gitea services/webhook/deliver.go: hex, no prefix (JSON content type: the form
        // type sends payload=<urlencoded>, not the bytes it signed).
        "gitea" => Preset {
            event: header_event("x-gitea-event"),
            schemes: vec![Hmac::body(Sha256, "x-gitea-signature", "", Hex).spec()],
            dedup: header_id(&["x-gitea-delivery"], false),
            ..BLANK
        },
        // gogs internal/database/webhook.go: hex, no prefix (JSON content type, as Gitea).
        "gogs" => Preset {
            event: header_event("x-gogs-event"),
            schemes: vec![Hmac::body(Sha256, "x-gogs-signature", "", Hex).spec()],
            dedup: header_id(&["x-gogs-delivery"], false),
            ..BLANK
        },
        // HCP Terraform / Terraform Enterprise generic notifications: HMAC-SHA512 of the body
        // keyed with the notification token, hex.
        "terraform-cloud" => Preset {
            event: json_event("/notifications/0/trigger"),
            schemes: vec![Hmac::body(Sha512, "x-tfe-notification-signature", "", Hex).spec()],
            ..BLANK
        },
        // learn.microsoft.com "Create Outgoing Webhooks" (Verify the outgoing webhook HMAC
        // token) and Microsoft's Teams samples: the security token shown at creation is
        // base64; its decoded bytes key an HMAC-SHA256 of the body, sent as
        // "Authorization: HMAC <base64>".
        "microsoft-teams" => Preset {
            event: json_event("/type"),
            schemes: vec![Hmac {
                key_format: KeyFormat::Base64Key,
                ..Hmac::body(Sha256, "authorization", "HMAC ", Base64)
            }
            .spec()],
            dedup: json_id("/id"),
            ..BLANK
        },
        _ => return None,
    };
    Some(p)
}
