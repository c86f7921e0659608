//! Signature schemes: what a provider signs, and how hookwall checks it.
//!
//! A [`Verifier`] is a scheme plus the route's keys (several during rotation; any one may
//! match). It looks only at the raw body bytes and the headers, never at parsed JSON.
//! The same scheme code signs (for `hookwall sign` and tests), so signing and verifying
//! cannot drift apart.

pub mod hmac_scheme;
pub mod mac;
pub mod template;

use http::HeaderMap;

pub use hmac_scheme::{Encoding, HmacScheme};
pub use mac::{Algorithm, PreparedMac};
pub use template::{Part, Template};

/// Longest signature header hookwall will look at; longer ones are refused unread.
pub const MAX_SIGNATURE_HEADER_LEN: usize = 8 * 1024;

/// What a scheme needs from the request besides its headers.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
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
    /// Unix seconds.
    Unix(i64),
    /// A timestamp was present (and signed) but is not a number.
    Malformed,
}

/// The outcome of checking one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Key number `key` produced the presented signature.
    Valid {
        /// Index of the matching key in the route's `secrets`.
        key: usize,
        /// The authenticated timestamp, for the window check.
        timestamp: SignedTimestamp,
    },
    /// The signature header, or a signed input it needs, is absent.
    Missing,
    /// Present but no key produces it (or it cannot be decoded).
    Invalid,
}

/// One secret, prepared for the scheme, with the label metrics use for it.
#[derive(Clone, Debug)]
pub struct Key {
    /// `id` from the config, else the secret's index as a string.
    pub label: String,
    /// The keyed MAC state, ready to clone per request.
    pub mac: PreparedMac,
}

/// A scheme (currently the generic HMAC one) and the route's keys.
#[derive(Clone, Debug)]
pub struct Verifier {
    /// How the signature is built and carried.
    pub scheme: HmacScheme,
    /// Candidate keys, in config order.
    pub keys: Vec<Key>,
}

impl Verifier {
    /// Checks a request against every key; the first that matches wins.
    pub fn verify(&self, req: &SignedRequest<'_>) -> Verdict {
        self.scheme.verify(&self.keys, req)
    }

    /// Header names that carry the signature (stripped upstream with `strip_signature`).
    pub fn signature_headers(&self) -> Vec<http::HeaderName> {
        vec![self.scheme.header.clone()]
    }
}
