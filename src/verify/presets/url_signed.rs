//! Schemes that sign the URL the provider called: the route needs `public_url`.

use super::super::twilio::TwilioScheme;
use super::{
    header_id, json_event, json_id, secs, ts_header, Hmac, KeyFormat, Preset, Scheme, SchemeSpec,
    TimestampUnit, BLANK, FUTURE_5M,
};

/// The presets this file defines.
#[cfg(test)]
pub(super) const NAMES: &[&str] = &["square", "hubspot", "twilio"];

pub(super) fn preset(name: &str) -> Option<Preset> {
    use super::Algorithm::{Sha1, Sha256};
    use super::Encoding::Base64;
    let p = match name {
        "square" => Preset {
            event: json_event("/type"),
            schemes: vec![Hmac {
                payload: "{url}{body}",
                ..Hmac::body(Sha256, "x-square-hmacsha256-signature", "", Base64)
            }
            .spec()],
            dedup: json_id("/event_id"),
            needs_public_url: true,
            ..BLANK
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
            ..BLANK
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
            ..BLANK
        },
        _ => return None,
    };
    Some(p)
}
