//! Secret material that must never reach logs, `/routes`, errors or metrics.
//!
//! [`Secret`] prints as `[redacted]` in both `Debug` and `Display`; the bytes are only
//! reachable through [`Secret::expose`], which the verifiers call and nothing else should.

use std::fmt;

use subtle::ConstantTimeEq;

/// Bytes of a signing secret or token, redacted everywhere they could be printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// Wraps raw secret bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Secret(bytes.into())
    }

    /// The raw bytes, for keying a MAC or a constant-time compare.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Constant-time comparison with presented bytes (bearer tokens, shared-token schemes).
    pub fn matches(&self, presented: &[u8]) -> bool {
        // Length is not secret; the content compare is constant-time.
        self.0.len() == presented.len() && bool::from(self.0.as_slice().ct_eq(presented))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_prints_its_bytes() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "[redacted] [redacted]");
    }

    #[test]
    fn matches_is_exact() {
        let s = Secret::new("token");
        assert!(s.matches(b"token"));
        assert!(!s.matches(b"token "));
        assert!(!s.matches(b"tokeN"));
        assert!(!s.matches(b""));
    }
}
