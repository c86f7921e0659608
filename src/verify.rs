//! Signature schemes: what a provider signs, and how hookwall checks it.
//!
//! A [`Verifier`] is one or more schemes, each with the route's keys in the form that
//! scheme needs (several during rotation; any one may match). Schemes look only at the raw
//! body bytes and the headers, never at re-serialised JSON. Signing (for `hookwall sign`
//! and tests) uses the same scheme code, so the two cannot drift apart.
//!
//! Per-scheme files: [`hmac_scheme`] (the generic HMAC family, which most presets are),
//! [`twilio`], [`mailgun`], [`asymmetric`] (Ed25519, ECDSA P-256), [`token`] (shared
//! tokens and Basic auth), [`jwt`] (signed tokens: Netlify, Plaid, Google), [`sns`]
//! (Amazon SNS messages), [`client_state`] (Microsoft Graph); [`presets`] maps provider
//! names to schemes; [`keys`] turns configured secrets into key material;
//! [`fetched_keys`] fetches and caches the public keys some providers publish.

pub mod asymmetric;
pub mod client_state;
pub mod facts;
pub mod fetched_keys;
pub mod hmac_scheme;
pub mod jwt;
pub mod keys;
pub mod learned;
pub mod mac;
pub mod mailgun;
pub mod presets;
pub mod sns;
pub mod template;
pub mod token;
pub mod twilio;

use http::{HeaderMap, HeaderName, Method};

pub use hmac_scheme::{
    Encoding, HmacScheme, SigFormat, TimestampFrom, TimestampSource, TimestampUnit,
};
pub use mac::{Algorithm, PreparedMac};
pub use template::{Part, Template};

/// Longest signature header hookwall will look at; longer ones are refused unread.
pub const MAX_SIGNATURE_HEADER_LEN: usize = 8 * 1024;
/// Most signatures looked at in one header (rotation needs two or three).
pub const MAX_SIGNATURES: usize = 16;

/// What a scheme needs from the request.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    /// The request method.
    pub method: &'a Method,
    /// The request headers as received.
    pub headers: &'a HeaderMap,
    /// The exact body bytes.
    pub body: &'a [u8],
    /// The public URL the provider called (route `public_url` + the request's query), if any.
    pub url: Option<&'a str>,
}

/// The signed timestamp a valid signature vouched for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignedTimestamp {
    /// The scheme carries no timestamp.
    None,
    /// Unix time in milliseconds.
    UnixMs(i64),
    /// A token valid from `issued_ms` until `expires_ms` (JWT `iat`/`exp`).
    Validity {
        /// When it was issued (unix ms).
        issued_ms: i64,
        /// When it expires (unix ms).
        expires_ms: i64,
    },
    /// A timestamp was present (and signed) but is not a valid time.
    Malformed,
}

/// The outcome of checking one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Secret number `key` (config order) produced the presented signature.
    Valid {
        /// Index of the matching secret in the route's `secrets`.
        key: usize,
        /// The authenticated timestamp, for the window check.
        timestamp: SignedTimestamp,
    },
    /// The signature header, or a signed input it needs, is absent.
    Missing,
    /// Present but no key produces it (or it cannot be decoded).
    Invalid,
}

impl Verdict {
    /// Combines verdicts of several schemes: any valid wins, then invalid, then missing.
    fn or(self, other: Verdict) -> Verdict {
        match (self, other) {
            (v @ Verdict::Valid { .. }, _) | (_, v @ Verdict::Valid { .. }) => v,
            (Verdict::Invalid, _) | (_, Verdict::Invalid) => Verdict::Invalid,
            _ => Verdict::Missing,
        }
    }
}

/// Key material for one configured secret.
// A handful exist per route, built once and never moved per request: size is irrelevant,
// and an unboxed MAC state saves a pointer chase on every verification.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum KeyMaterial {
    /// A keyed HMAC.
    Mac(PreparedMac),
    /// An Ed25519 public key (Discord, Standard Webhooks `v1a`).
    Ed25519(Box<ed25519_dalek::VerifyingKey>),
    /// An ECDSA P-256 public key (SendGrid).
    P256(Box<p256::ecdsa::VerifyingKey>),
    /// A shared token compared as a whole (GitLab, Basic auth).
    Token(crate::secret::Secret),
}

/// One secret, prepared for a scheme, with the label metrics use for it.
#[derive(Clone, Debug)]
pub struct Key {
    /// Position in the route's `secrets`.
    pub index: usize,
    /// `id` from the config, else the index as a string.
    pub label: String,
    /// The prepared key.
    pub material: KeyMaterial,
}

impl Key {
    /// The keyed HMAC, for schemes that use one.
    pub fn mac(&self) -> Option<&PreparedMac> {
        match &self.material {
            KeyMaterial::Mac(m) => Some(m),
            _ => None,
        }
    }
}

/// How one scheme checks (and, where possible, makes) a signature.
#[derive(Clone, Debug)]
pub enum Scheme {
    /// The HMAC family: generic, Stripe, GitHub, Slack, Standard Webhooks, ...
    Hmac(HmacScheme),
    /// Twilio: URL + sorted form parameters, HMAC-SHA1 (or SHA-256 with Webhook Rules).
    Twilio(twilio::TwilioScheme),
    /// Mailgun: the signature object inside the JSON body.
    Mailgun(mailgun::MailgunScheme),
    /// Ed25519 or ECDSA P-256 over timestamp + body.
    Asymmetric(asymmetric::AsymmetricScheme),
    /// A shared token or Basic credentials in a header.
    Token(token::TokenScheme),
    /// A signed token (JWT / JWS) in a header.
    Jwt(jwt::JwtScheme),
    /// An Amazon SNS message, signed with the key of a fetched certificate.
    Sns(sns::SnsScheme),
    /// Microsoft Graph's `clientState` in every notification of the body.
    ClientState,
    /// An HMAC whose key the provider hands over in a handshake (Asana).
    Learned(HmacScheme, std::sync::Arc<learned::LearnedSecret>),
}

impl Scheme {
    fn verify(&self, keys: &[Key], req: &SignedRequest<'_>) -> Verdict {
        match self {
            // Keys fetched from the provider, not configured secrets.
            Scheme::Sns(s) => return s.verify(req),
            Scheme::Learned(s, secret) => {
                return match secret.key() {
                    Some(key) => s.verify(std::slice::from_ref(&*key), req),
                    None => Verdict::Missing,
                }
            }
            Scheme::Jwt(s) if matches!(s.keys, jwt::JwtKeys::Fetched(_)) => {
                return s.verify(keys, req)
            }
            _ => {}
        }
        if keys.is_empty() {
            return Verdict::Missing;
        }
        match self {
            Scheme::Hmac(s) => s.verify(keys, req),
            Scheme::Twilio(s) => s.verify(keys, req),
            Scheme::Mailgun(s) => s.verify(keys, req),
            Scheme::Asymmetric(s) => s.verify(keys, req),
            Scheme::Token(s) => s.verify(keys, req),
            Scheme::Jwt(s) => s.verify(keys, req),
            Scheme::ClientState => client_state::verify(keys, req),
            Scheme::Sns(s) => s.verify(req),
            Scheme::Learned(..) => Verdict::Missing,
        }
    }

    /// The fetched key this request needs, if this scheme fetches keys: the key layer makes
    /// sure it is cached before the (synchronous) signature check runs.
    pub fn wanted_key(
        &self,
        req: &SignedRequest<'_>,
    ) -> Option<(std::sync::Arc<fetched_keys::KeySource>, String)> {
        match self {
            Scheme::Jwt(s) => s.wanted_kid(req),
            Scheme::Sns(s) => s.wanted_cert(req),
            _ => None,
        }
    }

    /// Whether this scheme verifies with keys fetched from the provider, or will once its
    /// route fills in where from (the preset table's form).
    pub fn fetches_keys_or_pending(&self) -> bool {
        match self {
            Scheme::Jwt(s) => !matches!(s.keys, jwt::JwtKeys::Secrets),
            Scheme::Sns(_) => true,
            _ => false,
        }
    }

    /// Whether this scheme verifies with keys fetched from the provider.
    pub fn fetches_keys(&self) -> bool {
        match self {
            Scheme::Jwt(s) => matches!(s.keys, jwt::JwtKeys::Fetched(_)),
            Scheme::Sns(_) => true,
            _ => false,
        }
    }

    /// The header whose value this scheme signs as the delivery id, if it signs one.
    pub fn signed_id_header(&self) -> Option<&HeaderName> {
        match self {
            Scheme::Hmac(s) if s.payload.uses(&Part::Id) => s.id_header.as_ref(),
            Scheme::Asymmetric(s) if s.layout == asymmetric::Layout::IdTimestampBody => {
                s.id_header.as_ref()
            }
            _ => None,
        }
    }

    /// Whether this scheme's signature covers the raw body.
    pub fn signs_body(&self) -> bool {
        match self {
            Scheme::Hmac(s) | Scheme::Learned(s, _) => s.payload.uses(&Part::Body),
            Scheme::Asymmetric(_) => true,
            _ => false,
        }
    }

    /// The JSON field this scheme signs as the delivery id, for schemes that sign fields
    /// of the body rather than its bytes (Mailgun's token, SNS's MessageId).
    pub fn signed_json_id(&self) -> Option<&'static str> {
        match self {
            Scheme::Mailgun(_) => Some("/signature/token"),
            Scheme::Sns(_) => Some("/MessageId"),
            _ => None,
        }
    }

    /// Headers that carry this scheme's signature.
    pub fn signature_headers(&self) -> Vec<HeaderName> {
        match self {
            Scheme::Hmac(s) => vec![s.header.clone()],
            Scheme::Twilio(_) => vec![HeaderName::from_static(twilio::SIGNATURE_HEADER)],
            Scheme::Mailgun(_) => Vec::new(),
            Scheme::Asymmetric(s) => vec![s.signature_header.clone()],
            Scheme::Token(s) => vec![s.header.clone()],
            Scheme::Jwt(s) => vec![s.header.clone()],
            Scheme::Learned(s, _) => vec![s.header.clone()],
            Scheme::Sns(_) | Scheme::ClientState => Vec::new(),
        }
    }
}

/// A scheme with the keys prepared for it.
#[derive(Clone, Debug)]
pub struct Keyed {
    /// The scheme.
    pub scheme: Scheme,
    /// Its keys, in config order (may be a subset of the route's secrets).
    pub keys: Vec<Key>,
    /// How configured secrets become its keys (the diagnosis tries other secrets with it).
    pub format: keys::KeyFormat,
}

/// Everything a route needs to verify (and sign) deliveries.
#[derive(Clone, Debug)]
pub struct Verifier {
    /// The schemes, tried in order; the first valid one wins.
    pub schemes: Vec<Keyed>,
}

/// Why a route's scheme cannot produce a signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// No scheme at all.
    #[error("the route has no signature scheme")]
    NoScheme,
    /// No key the scheme can sign with.
    #[error("the route has no usable secret for signing")]
    NoKey,
    /// `--key` names no secret of the route.
    #[error("the route has no secret with id {label:?} (its secrets: {known})")]
    UnknownKey {
        /// What was asked for.
        label: String,
        /// The ids there are.
        known: String,
    },
    /// The key is of another kind than the scheme needs.
    #[error("the secret is not {0}")]
    WrongKey(&'static str),
    /// A part of the signed payload has no value.
    #[error("a part of the signed payload has no value")]
    MissingInput,
    /// The scheme signs the URL and none was given.
    #[error("this scheme signs the URL: the route needs public_url")]
    NeedsUrl,
    /// The signature (or token) lives in the body.
    #[error("this provider carries its proof inside the JSON body (mailgun: signature.timestamp, .token, .signature; microsoft-graph: value[].clientState); hookwall sign only prints headers")]
    SignatureInBody,
    /// Only the provider's private key could sign.
    #[error("the route holds only public keys; only the provider's private key can sign")]
    PublicKeysOnly,
}

/// What `hookwall sign` and tests need to produce a delivery's headers.
#[derive(Debug, Clone, Copy)]
pub struct SignInput<'a> {
    /// The body bytes.
    pub body: &'a [u8],
    /// Unix seconds.
    pub timestamp: i64,
    /// The delivery id.
    pub id: &'a str,
    /// The public URL (with query) for URL-signing schemes.
    pub url: Option<&'a str>,
    /// The method.
    pub method: &'a Method,
}

impl Verifier {
    /// Checks a request against every scheme and key.
    pub fn verify(&self, req: &SignedRequest<'_>) -> Verdict {
        self.verify_by(req).0
    }

    /// [`Self::verify`], also naming the scheme that found the signature valid.
    pub fn verify_by(&self, req: &SignedRequest<'_>) -> (Verdict, Option<&Scheme>) {
        let mut verdict = Verdict::Missing;
        for k in &self.schemes {
            verdict = verdict.or(k.scheme.verify(&k.keys, req));
            if matches!(verdict, Verdict::Valid { .. }) {
                return (verdict, Some(&k.scheme));
            }
        }
        (verdict, None)
    }

    /// Header names that carry signatures (stripped upstream with `strip_signature`).
    pub fn signature_headers(&self) -> Vec<HeaderName> {
        self.schemes
            .iter()
            .flat_map(|k| k.scheme.signature_headers())
            .collect()
    }

    /// Whether any scheme carries a signed timestamp.
    pub fn has_timestamp(&self) -> bool {
        self.schemes.iter().any(|k| match &k.scheme {
            Scheme::Hmac(s) => s.timestamp.is_some(),
            Scheme::Mailgun(_) | Scheme::Asymmetric(_) => true,
            Scheme::Jwt(s) => s.time != jwt::JwtTime::None,
            Scheme::Twilio(_)
            | Scheme::Token(_)
            | Scheme::Sns(_)
            | Scheme::ClientState
            | Scheme::Learned(..) => false,
        })
    }

    /// A query parameter the provider adds to the URL it calls for this body, as the
    /// scheme [`Self::sign`] uses signs it (Twilio's `bodySHA256` for JSON bodies).
    pub fn url_param_for(&self, body: &[u8]) -> Option<String> {
        match &self.schemes.first()?.scheme {
            Scheme::Twilio(_) => twilio::json_body_query(body),
            _ => None,
        }
    }

    /// The headers a provider would send for `input`, signed with the first secret of the
    /// first scheme that can sign. Errors explain why a scheme cannot be signed.
    pub fn sign(&self, input: &SignInput<'_>) -> Result<Vec<(HeaderName, String)>, SignError> {
        self.sign_with(input, None)
    }

    /// [`Self::sign`] with the secret whose label (its `id`, else its index) is `key`.
    pub fn sign_with(
        &self,
        input: &SignInput<'_>,
        key: Option<&str>,
    ) -> Result<Vec<(HeaderName, String)>, SignError> {
        let k = self.schemes.first().ok_or(SignError::NoScheme)?;
        if let Scheme::Learned(s, secret) = &k.scheme {
            let learned = secret.key().ok_or(SignError::NoKey)?;
            return s.sign_headers(&learned, input);
        }
        let key = match key {
            None => k.keys.first().ok_or(SignError::NoKey)?,
            Some(label) => k
                .keys
                .iter()
                .find(|key| key.label == label)
                .ok_or_else(|| SignError::UnknownKey {
                    label: label.to_owned(),
                    known: k
                        .keys
                        .iter()
                        .map(|key| key.label.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                })?,
        };
        match &k.scheme {
            Scheme::Hmac(s) => s.sign_headers(key, input),
            Scheme::Twilio(s) => s.sign_headers(key, input),
            Scheme::Token(s) => s.sign_headers(key),
            Scheme::Mailgun(_) => Err(SignError::SignatureInBody),
            Scheme::Asymmetric(_) | Scheme::Sns(_) => Err(SignError::PublicKeysOnly),
            Scheme::Jwt(s) => match s.keys {
                jwt::JwtKeys::Secrets => s.sign_headers(key, input),
                jwt::JwtKeys::Fetched(_) | jwt::JwtKeys::Pending(_) => {
                    Err(SignError::PublicKeysOnly)
                }
            },
            Scheme::Learned(s, secret) => match secret.key() {
                Some(learned) => s.sign_headers(&learned, input),
                None => Err(SignError::NoKey),
            },
            Scheme::ClientState => Err(SignError::SignatureInBody),
        }
    }
}
