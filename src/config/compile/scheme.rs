//! A route's signature scheme: the generic `[route.verify]` table or a provider preset,
//! with the secrets turned into key material and the preset's defaults (timestamp window,
//! dedup key, URL requirement, handshake).

use std::time::Duration;

use super::Compiler;
use crate::config::raw::{RawRoute, RawVerify};
use crate::config::{defaults, suggest};
use crate::config::{DedupKeyConfig, DedupSource};
use crate::secret::Secret;
use crate::verify::keys::{material, KeyFormat};
use crate::verify::presets::{preset, DefaultId, HandshakeKind, SchemeSpec, NAMES};
use crate::verify::{
    Algorithm, Encoding, HmacScheme, Key, KeyMaterial, Keyed, Part, PreparedMac, Scheme, SigFormat,
    Template, TimestampFrom, TimestampSource, TimestampUnit, Verifier,
};

/// What the scheme implies for the rest of the route.
#[derive(Debug, Default)]
pub(super) struct SchemeDefaults {
    /// (past, future) window when the scheme has a signed timestamp; `None` future = past.
    pub(super) window: Option<(Duration, Option<Duration>)>,
    /// The dedup key when `dedup` is omitted or `true`.
    pub(super) dedup: Option<DedupKeyConfig>,
    /// The scheme signs the URL: `public_url` is required.
    pub(super) needs_public_url: bool,
    /// A control request the gateway answers.
    pub(super) handshake: Option<HandshakeKind>,
}

impl Compiler {
    /// The verifier (if everything in it is valid) and the scheme's defaults.
    pub(super) fn route_scheme(
        &mut self,
        at: &str,
        r: &RawRoute,
        provider: &str,
        secrets: &[(String, Secret)],
    ) -> (Option<Verifier>, SchemeDefaults) {
        if provider != "github" && r.legacy_sha1.is_some() {
            self.warnings.push(format!(
                "{at}.legacy_sha1 only applies to provider = \"github\""
            ));
        }
        if provider == "generic" {
            return self.generic_scheme(at, r.verify.as_ref(), secrets);
        }
        if r.verify.is_some() {
            self.error(
                &format!("{at}.verify"),
                format!("[route.verify] describes the generic scheme; provider {provider:?} already defines its own (remove one of them)"),
            );
        }
        let Some(p) = preset(provider, r.legacy_sha1.unwrap_or(false)) else {
            self.error(
                &format!("{at}.provider"),
                format!(
                    "unknown provider {provider:?}{}; `hookwall presets` lists every preset, and provider = \"generic\" with a [route.verify] table covers any other HMAC scheme",
                    suggest::hint(provider, NAMES.iter().copied().chain(["generic"])),
                ),
            );
            return (None, SchemeDefaults::default());
        };
        let defaults = SchemeDefaults {
            window: p.window,
            dedup: p.dedup.map(|d| DedupKeyConfig {
                source: match d.id {
                    DefaultId::Headers(mut names) if names.len() == 1 => {
                        DedupSource::Header(names.remove(0))
                    }
                    DefaultId::Headers(names) => DedupSource::AnyHeader(names),
                    DefaultId::Json(pointer) => DedupSource::JsonPointer(pointer.to_owned()),
                },
                required: d.required,
            }),
            needs_public_url: p.needs_public_url,
            handshake: p.handshake,
        };
        let verifier = self.preset_keys(at, provider, &p.schemes, secrets);
        (verifier, defaults)
    }

    /// Prepares every secret for every scheme of a preset. Public keys (`whpk_`) go only to
    /// the schemes that take them, so one route can rotate from HMAC to Ed25519.
    fn preset_keys(
        &mut self,
        at: &str,
        provider: &str,
        specs: &[SchemeSpec],
        secrets: &[(String, Secret)],
    ) -> Option<Verifier> {
        let has_whpk = specs.iter().any(|s| s.key_format == KeyFormat::WhpkBase64);
        let mut failed = vec![false; secrets.len()];
        let mut schemes = Vec::new();
        for spec in specs {
            let mut keys = Vec::new();
            for (index, (label, secret)) in secrets.iter().enumerate() {
                let is_whpk = secret.expose().starts_with(b"whpk_");
                if has_whpk && is_whpk != (spec.key_format == KeyFormat::WhpkBase64) {
                    continue;
                }
                match material(spec.key_format, spec.algorithm, secret) {
                    Ok(material) => keys.push(Key {
                        index,
                        label: label.clone(),
                        material,
                    }),
                    Err(why) if !failed[index] => {
                        failed[index] = true;
                        self.error(
                            &format!("{at}.secrets[{index}]"),
                            format!("{why} (provider \"{provider}\")"),
                        );
                    }
                    Err(_) => {}
                }
            }
            schemes.push(Keyed {
                scheme: spec.scheme.clone(),
                keys,
                format: spec.key_format,
            });
        }
        (!failed.contains(&true)).then_some(Verifier { schemes })
    }

    fn generic_scheme(
        &mut self,
        at: &str,
        raw: Option<&RawVerify>,
        secrets: &[(String, Secret)],
    ) -> (Option<Verifier>, SchemeDefaults) {
        let Some(v) = raw else {
            self.error(
                &format!("{at}.verify"),
                "a route needs `provider = \"...\"` or a [route.verify] table; hookwall never forwards unverified deliveries".to_owned(),
            );
            return (None, SchemeDefaults::default());
        };
        let at = format!("{at}.verify");
        let header_name = |cx: &mut Self, key: &str, h: Option<&str>| {
            h.and_then(|h| cx.header_name(&format!("{at}.{key}"), h))
        };
        let timestamp_header = header_name(self, "timestamp_header", v.timestamp_header.as_deref());
        let id_header = header_name(self, "id_header", v.id_header.as_deref());
        let payload = self.check(
            &format!("{at}.payload"),
            Template::parse(v.payload.as_deref().unwrap_or("{body}")),
        );
        let defaults = SchemeDefaults {
            window: v
                .timestamp_header
                .is_some()
                .then_some((defaults::GENERIC_TOLERANCE, None)),
            dedup: id_header.clone().map(|h| DedupKeyConfig {
                source: DedupSource::Header(h),
                required: true,
            }),
            needs_public_url: payload.as_ref().is_some_and(|p| p.uses(&Part::Url)),
            handshake: None,
        };
        let algorithm = match v.algorithm.as_deref() {
            None => Some(Algorithm::Sha256),
            Some(a) => self.check(
                &format!("{at}.algorithm"),
                Algorithm::parse(a).ok_or_else(|| {
                    format!(
                        "unknown algorithm {a:?} (expected hmac-sha1, hmac-sha256 or hmac-sha512)"
                    )
                }),
            ),
        };
        let header = match v.header.as_deref() {
            None => {
                self.error(&format!("{at}.header"), "is required".to_owned());
                None
            }
            Some(h) => self.header_name(&format!("{at}.header"), h),
        };
        let encoding = match v.encoding.as_deref() {
            None => Some(Encoding::Hex),
            Some(e) => self.check(
                &format!("{at}.encoding"),
                Encoding::parse(e)
                    .ok_or_else(|| format!("unknown encoding {e:?} (expected hex or base64)")),
            ),
        };
        if let Some(p) = &payload {
            if !p.uses(&Part::Body) {
                self.warnings.push(format!(
                    "{at}.payload does not contain {{body}}: the body is not authenticated"
                ));
            }
            if p.uses(&Part::Timestamp) && v.timestamp_header.is_none() {
                self.error(
                    &format!("{at}.payload"),
                    "uses {timestamp} but timestamp_header is not set".to_owned(),
                );
            }
            if p.uses(&Part::Id) && v.id_header.is_none() {
                self.error(
                    &format!("{at}.payload"),
                    "uses {id} but id_header is not set".to_owned(),
                );
            }
            if v.timestamp_header.is_some() && !p.uses(&Part::Timestamp) {
                self.warnings.push(format!(
                    "{at}.timestamp_header is not part of the signed payload, so the window check trusts an unsigned value"
                ));
            }
        }
        let (Some(algorithm), Some(header), Some(encoding), Some(payload)) =
            (algorithm, header, encoding, payload)
        else {
            return (None, defaults);
        };
        let scheme = HmacScheme {
            algorithm,
            header,
            format: SigFormat::Prefixed(v.prefix.clone().unwrap_or_default()),
            encoding,
            payload,
            timestamp: timestamp_header.map(|h| TimestampSource {
                from: TimestampFrom::Header(h),
                unit: TimestampUnit::Seconds,
            }),
            id_header,
        };
        let keys = secrets
            .iter()
            .enumerate()
            .map(|(index, (label, secret))| Key {
                index,
                label: label.clone(),
                material: KeyMaterial::Mac(PreparedMac::new(algorithm, secret.expose())),
            })
            .collect();
        (
            Some(Verifier {
                schemes: vec![Keyed {
                    scheme: Scheme::Hmac(scheme),
                    keys,
                    format: KeyFormat::Raw,
                }],
            }),
            defaults,
        )
    }
}
