//! Provider presets: `provider = "stripe"` is all it takes to verify exactly as the
//! provider's own SDK does. Each preset names its scheme(s), secret format, timestamp rule,
//! default dedup key and event field; `docs/PRESETS.md` lists them with their sources.
//!
//! This file holds the types, the names and the lookup; the table itself is split by
//! scheme family, one file each under `presets/`.

use std::time::Duration;

mod asymmetric;
mod body_hmac;
mod challenge;
mod in_body;
mod jwt;
mod sns;
mod standard_webhooks;
mod timestamped;
mod token;
mod url_signed;

use http::HeaderName;

use super::hmac_scheme::{
    Encoding, HmacScheme, SigFormat, TimestampFrom, TimestampSource, TimestampUnit,
};
use super::keys::KeyFormat;
use super::mac::Algorithm;
use super::template::Template;
use super::Scheme;
use crate::config::EventSource;

/// Every preset name, for messages and docs.
pub const NAMES: &[&str] = &[
    "stripe",
    "github",
    "standard-webhooks",
    "svix",
    "shopify",
    "slack",
    "twilio",
    "paddle",
    "zoom",
    "linear",
    "gitlab",
    "square",
    "intercom",
    "hubspot",
    "typeform",
    "calendly",
    "twitch",
    "woocommerce",
    "mailgun",
    "sentry",
    "vercel",
    "mux",
    "bitbucket",
    "pagerduty",
    "postmark",
    "discord",
    "sendgrid",
    "clerk",
    "resend",
    "openai",
    "replicate",
    "polar",
    "liveblocks",
    "coinbase-commerce",
    "razorpay",
    "gocardless",
    "onfido",
    "line",
    "pusher",
    "workos",
    "elevenlabs",
    "sanity",
    "webflow",
    "retell",
    "box",
    "telnyx",
    "finch",
    "lithic",
    "imagekit",
    "whop",
    "dodopayments",
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
    "orb",
    "ghost",
    "twenty",
    "zendesk",
    "telegram",
    "meta",
    "x",
    "dropbox",
    "asana",
    "microsoft-teams",
    "microsoft-graph",
    "okta",
    "netlify",
    "plaid",
    "google-pubsub",
    "google-chat",
    "sns",
];

/// Where a preset's delivery id is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DefaultId {
    /// The first of these headers that is present.
    Headers(Vec<HeaderName>),
    /// A JSON pointer into the body.
    Json(&'static str),
}

/// A preset's default dedup key. `required` is true only where the id is part of what the
/// provider signs; elsewhere a delivery without an id is forwarded without dedup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DedupDefault {
    /// Where.
    pub id: DefaultId,
    /// Whether a delivery without it is refused.
    pub required: bool,
}

/// Control requests a preset answers itself (providers.md "Control requests").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeKind {
    /// Zoom `endpoint.url_validation`: answer the HMAC of `plainToken`.
    ZoomUrlValidation,
    /// Slack `url_verification`: echo the challenge.
    SlackUrlVerification,
    /// Twitch `webhook_callback_verification`: echo the challenge as text.
    TwitchCallbackVerification,
    /// Discord PING: interactions `{"type":1}`, webhook events 204.
    DiscordPing,
    /// WooCommerce's unsigned `webhook_id=<n>` creation ping: 200, not forwarded.
    WooCommercePing,
    /// Meta's `GET ?hub.mode=subscribe&hub.verify_token=..&hub.challenge=..`: the challenge,
    /// only for the configured verify token.
    MetaVerification,
    /// X's CRC `GET ?crc_token=..`: `{"response_token":"sha256=<base64 HMAC>"}`.
    XCrc,
    /// Dropbox's `GET ?challenge=..`: echoed as text.
    DropboxChallenge,
    /// Asana's `X-Hook-Secret` handshake: echoed, and the secret learned, only while the
    /// route has none.
    AsanaHookSecret,
    /// Okta's verification `GET` (`x-okta-verification-challenge`), for the configured
    /// Authorization value: `{"verification": ..}`.
    OktaVerification,
    /// Microsoft Graph's subscription validation (`?validationToken=`): echoed as text.
    GraphValidation,
    /// SNS `SubscriptionConfirmation` (confirmed by a GET of `SubscribeURL` when the route
    /// allows it) and `UnsubscribeConfirmation`: answered, not forwarded.
    SnsSubscription,
}

impl HandshakeKind {
    /// Whether the provider sends this control request as a GET (the route then accepts
    /// GET as well as POST unless it lists its methods).
    pub fn uses_get(self) -> bool {
        matches!(
            self,
            HandshakeKind::MetaVerification
                | HandshakeKind::XCrc
                | HandshakeKind::DropboxChallenge
                | HandshakeKind::OktaVerification
        )
    }
}

/// A per-route table a preset reads besides `secrets`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderTable {
    /// `google = { audience, service_account, key_url }` (required).
    Google,
    /// `plaid = { client_id, secret, api_base }` (required).
    Plaid,
    /// `sns = { topics, auto_confirm, cert_hosts }` (required: the topics).
    Sns,
}

/// One scheme of a preset and the secret format it reads.
#[derive(Debug, Clone)]
pub struct SchemeSpec {
    /// The scheme.
    pub scheme: Scheme,
    /// How secrets become keys for it.
    pub key_format: KeyFormat,
    /// The MAC algorithm (HMAC schemes).
    pub algorithm: Algorithm,
}

/// A provider preset.
#[derive(Debug, Clone)]
pub struct Preset {
    /// Schemes, tried in order.
    pub schemes: Vec<SchemeSpec>,
    /// Default (past, future) window; `None` future = same as past. `None` = no timestamp.
    pub window: Option<(Duration, Option<Duration>)>,
    /// Default dedup key, `None` = the provider sends no stable id.
    pub dedup: Option<DedupDefault>,
    /// Whether the scheme signs the URL (route needs `public_url`).
    pub needs_public_url: bool,
    /// Control request answered by the gateway.
    pub handshake: Option<HandshakeKind>,
    /// Where the event type is, for `events` filters.
    pub event: Option<EventSource>,
    /// The per-route table the preset needs, if any.
    pub table: Option<ProviderTable>,
}

fn h(name: &'static str) -> HeaderName {
    HeaderName::from_static(name)
}

fn template(t: &str) -> Template {
    // Preset templates are literals checked by the tests below.
    Template::parse(t).unwrap_or_else(|e| unreachable!("preset template {t:?}: {e}"))
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A preset with nothing set, for `..BLANK` in the family tables.
const BLANK: Preset = Preset {
    schemes: Vec::new(),
    window: None,
    dedup: None,
    needs_public_url: false,
    handshake: None,
    event: None,
    table: None,
};

/// The contract's rule for SDKs that accept any future timestamp.
const FUTURE_5M: Option<Duration> = Some(Duration::from_secs(300));

struct Hmac {
    algorithm: Algorithm,
    header: &'static str,
    format: SigFormat,
    encoding: Encoding,
    payload: &'static str,
    timestamp: Option<TimestampSource>,
    id_header: Option<&'static str>,
    key_format: KeyFormat,
}

impl Hmac {
    /// Body-only HMAC with the raw secret: the most common shape.
    fn body(algorithm: Algorithm, header: &'static str, prefix: &str, encoding: Encoding) -> Self {
        Hmac {
            algorithm,
            header,
            format: SigFormat::Prefixed(prefix.to_owned()),
            encoding,
            payload: "{body}",
            timestamp: None,
            id_header: None,
            key_format: KeyFormat::Raw,
        }
    }

    fn spec(self) -> SchemeSpec {
        SchemeSpec {
            scheme: Scheme::Hmac(HmacScheme {
                algorithm: self.algorithm,
                header: h(self.header),
                format: self.format,
                encoding: self.encoding,
                payload: template(self.payload),
                timestamp: self.timestamp,
                id_header: self.id_header.map(h),
            }),
            key_format: self.key_format,
            algorithm: self.algorithm,
        }
    }
}

fn ts_header(name: &'static str, unit: TimestampUnit) -> Option<TimestampSource> {
    Some(TimestampSource {
        from: TimestampFrom::Header(h(name)),
        unit,
    })
}

fn json_event(pointer: &str) -> Option<EventSource> {
    Some(EventSource::Json(pointer.to_owned()))
}

fn header_event(name: &'static str) -> Option<EventSource> {
    Some(EventSource::Header(h(name)))
}

fn json_id(pointer: &'static str) -> Option<DedupDefault> {
    Some(DedupDefault {
        id: DefaultId::Json(pointer),
        required: false,
    })
}

fn header_id(names: &[&'static str], required: bool) -> Option<DedupDefault> {
    Some(DedupDefault {
        id: DefaultId::Headers(names.iter().map(|n| h(n)).collect()),
        required,
    })
}

/// The preset called `name`; `legacy_sha1` adds GitHub's SHA-1 `X-Hub-Signature`.
pub fn preset(name: &str, legacy_sha1: bool) -> Option<Preset> {
    body_hmac::preset(name, legacy_sha1)
        .or_else(|| timestamped::preset(name))
        .or_else(|| standard_webhooks::preset(name))
        .or_else(|| url_signed::preset(name))
        .or_else(|| asymmetric::preset(name))
        .or_else(|| token::preset(name))
        .or_else(|| in_body::preset(name))
        .or_else(|| challenge::preset(name))
        .or_else(|| jwt::preset(name))
        .or_else(|| sns::preset(name))
}

/// Each family's names, for the test that the families and [`NAMES`] agree.
#[cfg(test)]
const FAMILIES: &[&[&str]] = &[
    body_hmac::NAMES,
    timestamped::NAMES,
    standard_webhooks::NAMES,
    url_signed::NAMES,
    asymmetric::NAMES,
    token::NAMES,
    in_body::NAMES,
    challenge::NAMES,
    jwt::NAMES,
    sns::NAMES,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_preset_exists_and_has_a_scheme() {
        for name in NAMES {
            let p = preset(name, true).unwrap_or_else(|| panic!("{name}"));
            assert!(!p.schemes.is_empty(), "{name}");
        }
        assert!(
            preset("generic", false).is_none(),
            "generic is the [route.verify] table"
        );
        assert!(preset("nope", false).is_none());
    }

    #[test]
    fn families_hold_exactly_the_named_presets_once() {
        let mut in_families: Vec<&str> = FAMILIES.iter().flat_map(|f| f.iter().copied()).collect();
        in_families.sort_unstable();
        let before = in_families.len();
        in_families.dedup();
        assert_eq!(before, in_families.len(), "a name is in two families");
        let mut names = NAMES.to_vec();
        names.sort_unstable();
        assert_eq!(in_families, names);
    }

    #[test]
    fn github_sha1_only_when_asked() {
        assert_eq!(preset("github", false).unwrap().schemes.len(), 1);
        assert_eq!(preset("github", true).unwrap().schemes.len(), 2);
    }
}
