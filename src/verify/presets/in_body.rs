//! Signatures carried inside the JSON body.

use super::super::mailgun::MailgunScheme;
use super::{
    json_event, secs, DedupDefault, DefaultId, KeyFormat, Preset, Scheme, SchemeSpec, BLANK,
};

/// The presets this file defines.
#[cfg(test)]
pub(super) const NAMES: &[&str] = &["mailgun"];

pub(super) fn preset(name: &str) -> Option<Preset> {
    use super::Algorithm::Sha256;
    let p = match name {
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
            ..BLANK
        },
        _ => return None,
    };
    Some(p)
}
