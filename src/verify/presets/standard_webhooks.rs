//! Standard Webhooks and Svix: `{id}.{timestamp}.{body}`, `v1` HMAC (whsec_) or `v1a`
//! Ed25519 (whpk_); the id is signed, so it is a required dedup key.

use super::super::asymmetric::{AsymmetricScheme, Carrier, Layout};
use super::{
    h, header_id, json_event, secs, ts_header, Algorithm, Encoding, Hmac, KeyFormat, Preset,
    Scheme, SchemeSpec, SigFormat, TimestampUnit, BLANK,
};

/// The presets this file defines.
#[cfg(test)]
pub(super) const NAMES: &[&str] = &["standard-webhooks", "svix"];

/// Standard Webhooks over the given header names: `v1` HMAC (whsec_) and `v1a` Ed25519 (whpk_).
pub(super) fn standard_webhooks(
    id: &'static str,
    ts: &'static str,
    sig: &'static str,
) -> Vec<SchemeSpec> {
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
        _ => return None,
    };
    Some(p)
}
