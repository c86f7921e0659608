//! Standard Webhooks and Svix: `{id}.{timestamp}.{body}`, `v1` HMAC (whsec_) or `v1a`
//! Ed25519 (whpk_); the id is signed, so it is a required dedup key. Also the providers that
//! send this scheme under their own name (Clerk, Resend, OpenAI, ...): their SDKs check `v1`
//! only, so their presets carry the HMAC scheme alone.

use super::super::asymmetric::{AsymmetricScheme, Carrier, Layout};
use super::{
    h, header_id, json_event, secs, ts_header, Algorithm, Encoding, Hmac, KeyFormat, Preset,
    Scheme, SchemeSpec, SigFormat, TimestampUnit, BLANK,
};

/// The presets this file defines.
#[cfg(test)]
pub(super) const NAMES: &[&str] = &[
    "standard-webhooks",
    "svix",
    "clerk",
    "resend",
    "openai",
    "replicate",
    "polar",
    "liveblocks",
    "finch",
    "lithic",
    "imagekit",
    "whop",
    "dodopayments",
];

/// The `v1` HMAC scheme over the given header names, with the secret read as `key_format`.
fn v1(id: &'static str, ts: &'static str, sig: &'static str, key_format: KeyFormat) -> SchemeSpec {
    Hmac {
        format: SigFormat::Versioned("v1".into()),
        payload: "{id}.{timestamp}.{body}",
        timestamp: ts_header(ts, TimestampUnit::Seconds),
        id_header: Some(id),
        key_format,
        ..Hmac::body(Algorithm::Sha256, sig, "", Encoding::Base64)
    }
    .spec()
}

/// A provider that sends Standard Webhooks `v1` under the `webhook-*` names, ±5 minutes (the
/// standardwebhooks libraries' tolerance, which these SDKs use or copy).
fn webhook_v1(key_format: KeyFormat) -> Preset {
    Preset {
        event: json_event("/type"),
        schemes: vec![v1(
            "webhook-id",
            "webhook-timestamp",
            "webhook-signature",
            key_format,
        )],
        window: Some((secs(300), Some(secs(300)))),
        dedup: header_id(&["webhook-id"], true),
        ..BLANK
    }
}

/// A Svix customer whose SDK reads the `svix-*` names only.
fn svix_v1() -> Preset {
    Preset {
        schemes: vec![v1(
            "svix-id",
            "svix-timestamp",
            "svix-signature",
            KeyFormat::WhsecBase64,
        )],
        dedup: header_id(&["svix-id"], true),
        ..webhook_v1(KeyFormat::WhsecBase64)
    }
}

/// Standard Webhooks over the given header names: `v1` HMAC (whsec_) and `v1a` Ed25519 (whpk_).
pub(super) fn standard_webhooks(
    id: &'static str,
    ts: &'static str,
    sig: &'static str,
) -> Vec<SchemeSpec> {
    vec![
        v1(id, ts, sig, KeyFormat::WhsecBase64),
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

pub(super) fn preset(name: &str) -> Option<Preset> {
    let p = match name {
        "standard-webhooks" => Preset {
            event: json_event("/type"),
            schemes: standard_webhooks("webhook-id", "webhook-timestamp", "webhook-signature"),
            window: Some((secs(300), Some(secs(300)))),
            dedup: header_id(&["webhook-id"], true),
            ..BLANK
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
                ..BLANK
            }
        }
        // @clerk/backend verifyWebhook: svix-* headers, standardwebhooks `v1`.
        "clerk" => svix_v1(),
        // resend-node webhooks.verify: svix-* headers, standardwebhooks `v1`.
        "resend" => svix_v1(),
        // openai-node webhooks.verifySignature: webhook-*, whsec_ base64, ±300 s.
        "openai" => webhook_v1(KeyFormat::WhsecBase64),
        // replicate-javascript validateWebhook: webhook-*, whsec_ base64. The body is the
        // prediction, which has no event type; the SDK checks no timestamp, so the
        // standard's ±5 minutes apply.
        "replicate" => Preset {
            event: None,
            ..webhook_v1(KeyFormat::WhsecBase64)
        },
        // @polar-sh/sdk validateEvent: the secret's own bytes are the key (the SDK base64s
        // the secret before handing it to standardwebhooks).
        "polar" => webhook_v1(KeyFormat::Raw),
        // @liveblocks/node WebhookHandler: whsec_ base64, ±300 s.
        "liveblocks" => webhook_v1(KeyFormat::WhsecBase64),
        // finch-api webhooks.verifySignature: finch-* headers, the secret is plain base64
        // (read like whsec_ without its prefix), ±5 minutes.
        "finch" => Preset {
            event: json_event("/event_type"),
            schemes: vec![v1(
                "finch-event-id",
                "finch-timestamp",
                "finch-signature",
                KeyFormat::WhsecBase64,
            )],
            dedup: header_id(&["finch-event-id"], true),
            ..webhook_v1(KeyFormat::WhsecBase64)
        },
        // lithic-node webhooks.verifySignature: standardwebhooks over webhook-*.
        "lithic" => Preset {
            event: json_event("/event_type"),
            ..webhook_v1(KeyFormat::WhsecBase64)
        },
        // @imagekit/nodejs webhooks.unwrap: standardwebhooks keyed with the secret's own
        // bytes (the SDK base64s it first), as Polar.
        "imagekit" => webhook_v1(KeyFormat::Raw),
        // @whop/sdk webhooks.unwrap: standardwebhooks with the key as given.
        "whop" => webhook_v1(KeyFormat::WhsecBase64),
        // dodopayments webhooks.unwrap: standardwebhooks with the key as given.
        "dodopayments" => webhook_v1(KeyFormat::WhsecBase64),
        _ => return None,
    };
    Some(p)
}
