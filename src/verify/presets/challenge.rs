//! Body HMACs whose provider first proves the endpoint with a challenge the gateway answers
//! itself: Meta's `hub.challenge`, X's CRC, Dropbox's `challenge`, Asana's `X-Hook-Secret`.

use super::{json_event, HandshakeKind, Hmac, Preset, BLANK};

/// The presets this file defines.
#[cfg(test)]
pub(super) const NAMES: &[&str] = &["meta", "x", "dropbox", "asana"];

pub(super) fn preset(name: &str) -> Option<Preset> {
    use super::Algorithm::Sha256;
    use super::Encoding::{Base64, Hex};
    let p = match name {
        // developers.facebook.com/docs/graph-api/webhooks/getting-started: the app secret
        // keys an HMAC-SHA256 of the payload, "sha256=" + hex; the GET verification
        // request echoes hub.challenge when hub.verify_token is the one configured. The
        // same for Instagram and the WhatsApp Cloud API (Meta apps).
        "meta" => Preset {
            event: json_event("/object"),
            schemes: vec![Hmac::body(Sha256, "x-hub-signature-256", "sha256=", Hex).spec()],
            handshake: Some(HandshakeKind::MetaVerification),
            ..BLANK
        },
        // developer.x.com Account Activity API "Securing webhooks": the consumer secret
        // keys HMAC-SHA256, "sha256=" + base64, over the body (POST) or the crc_token (CRC).
        "x" => Preset {
            schemes: vec![
                Hmac::body(Sha256, "x-twitter-webhooks-signature", "sha256=", Base64).spec(),
            ],
            handshake: Some(HandshakeKind::XCrc),
            ..BLANK
        },
        // dropbox.com/developers/reference/webhooks: X-Dropbox-Signature is the hex
        // HMAC-SHA256 of the body keyed with the app secret; GET ?challenge= is echoed.
        "dropbox" => Preset {
            schemes: vec![Hmac::body(Sha256, "x-dropbox-signature", "", Hex).spec()],
            handshake: Some(HandshakeKind::DropboxChallenge),
            ..BLANK
        },
        // developers.asana.com/docs/webhooks-guide: the X-Hook-Secret of the handshake is
        // the key of every later X-Hook-Signature (hex HMAC-SHA256 of the body).
        "asana" => Preset {
            schemes: vec![Hmac::body(Sha256, "x-hook-signature", "", Hex).spec()],
            handshake: Some(HandshakeKind::AsanaHookSecret),
            ..BLANK
        },
        _ => return None,
    };
    Some(p)
}
