//! Amazon SNS: the message signs itself with the key of a certificate fetched from AWS.

use super::super::fetched_keys::HostAllowlist;
use super::super::sns::SnsScheme;
use super::{
    json_event, DedupDefault, DefaultId, HandshakeKind, KeyFormat, Preset, ProviderTable, Scheme,
    SchemeSpec, BLANK,
};
use crate::config::defaults;

/// The presets this file defines.
#[cfg(test)]
pub(super) const NAMES: &[&str] = &["sns"];

pub(super) fn preset(name: &str) -> Option<Preset> {
    if name != "sns" {
        return None;
    }
    let hosts: Vec<String> = defaults::SNS_CERT_HOSTS
        .iter()
        .map(|h| (*h).to_owned())
        .collect();
    let hosts = HostAllowlist::new(&hosts)
        .unwrap_or_else(|e| unreachable!("default SNS hosts are valid patterns: {e}"));
    Some(Preset {
        event: json_event("/Type"),
        schemes: vec![SchemeSpec {
            scheme: Scheme::Sns(SnsScheme {
                hosts,
                source: None,
            }),
            key_format: KeyFormat::Token,
            algorithm: super::Algorithm::Sha256,
        }],
        // MessageId is part of what SNS signs, and SNS keeps it across retries.
        dedup: Some(DedupDefault {
            id: DefaultId::Json("/MessageId"),
            required: true,
        }),
        handshake: Some(HandshakeKind::SnsSubscription),
        table: Some(ProviderTable::Sns),
        ..BLANK
    })
}
