//! Keyed HMAC state, prepared once per secret at config compile time.

use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Sha256, Sha512};

/// Longest MAC output (SHA-512).
pub const MAX_MAC_LEN: usize = 64;

/// The hash behind an HMAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// HMAC-SHA1 (legacy providers only).
    Sha1,
    /// HMAC-SHA256.
    Sha256,
    /// HMAC-SHA512.
    Sha512,
}

impl Algorithm {
    /// Parses the config spelling (`hmac-sha256`).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "hmac-sha1" => Some(Algorithm::Sha1),
            "hmac-sha256" => Some(Algorithm::Sha256),
            "hmac-sha512" => Some(Algorithm::Sha512),
            _ => None,
        }
    }

    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha1 => "hmac-sha1",
            Algorithm::Sha256 => "hmac-sha256",
            Algorithm::Sha512 => "hmac-sha512",
        }
    }
}

/// An HMAC already keyed with one secret; cloning it skips the key schedule per request.
#[derive(Clone)]
pub enum PreparedMac {
    /// HMAC-SHA1.
    Sha1(Hmac<Sha1>),
    /// HMAC-SHA256.
    Sha256(Hmac<Sha256>),
    /// HMAC-SHA512.
    Sha512(Hmac<Sha512>),
}

impl std::fmt::Debug for PreparedMac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PreparedMac([redacted])")
    }
}

/// A MAC output on the stack.
#[derive(Clone, Copy)]
pub struct MacOutput {
    bytes: [u8; MAX_MAC_LEN],
    len: usize,
}

impl MacOutput {
    /// The tag bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl PreparedMac {
    /// Keys an HMAC. HMAC accepts keys of any length, so this cannot fail.
    pub fn new(algorithm: Algorithm, key: &[u8]) -> Self {
        // `new_from_slice` only errors for fixed-size-key MACs; HMAC has none.
        match algorithm {
            Algorithm::Sha1 => PreparedMac::Sha1(
                <Hmac<Sha1> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!()),
            ),
            Algorithm::Sha256 => PreparedMac::Sha256(
                <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!()),
            ),
            Algorithm::Sha512 => PreparedMac::Sha512(
                <Hmac<Sha512> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!()),
            ),
        }
    }

    /// MAC over the concatenation of `parts`, without concatenating them.
    pub fn compute(&self, parts: &[&[u8]]) -> MacOutput {
        fn run<M: Mac + Clone>(mac: &M, parts: &[&[u8]]) -> MacOutput {
            let mut mac = mac.clone();
            for p in parts {
                mac.update(p);
            }
            let tag = mac.finalize().into_bytes();
            let mut out = MacOutput {
                bytes: [0; MAX_MAC_LEN],
                len: tag.len(),
            };
            out.bytes[..tag.len()].copy_from_slice(&tag);
            out
        }
        match self {
            PreparedMac::Sha1(m) => run(m, parts),
            PreparedMac::Sha256(m) => run(m, parts),
            PreparedMac::Sha512(m) => run(m, parts),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4231_case_2_sha256() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?"
        let mac = PreparedMac::new(Algorithm::Sha256, b"Jefe");
        let out = mac.compute(&[b"what do ya want ", b"for nothing?"]);
        assert_eq!(
            hex::encode(out.as_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn rfc2202_case_2_sha1() {
        let mac = PreparedMac::new(Algorithm::Sha1, b"Jefe");
        let out = mac.compute(&[b"what do ya want for nothing?"]);
        assert_eq!(
            hex::encode(out.as_bytes()),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
    }
}
