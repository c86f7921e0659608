//! Property: any single-byte change to the body or the signature is rejected.

use std::path::Path;

use bytes::Bytes;
use hookwall::config::compile_str;
use hookwall::verify::{SignedRequest, Verdict, Verifier};
use http::{HeaderMap, HeaderValue};
use proptest::prelude::*;

use crate::support::{hmac_hex, SECRET};

fn verifier() -> Verifier {
    let cfg = compile_str(
        &format!(
            r#"
[[route]]
name = "p"
path = "/p"
upstream = "http://127.0.0.1:9/"
secrets = [{{ value = "{SECRET}" }}]
[route.verify]
header = "X-Sig"
prefix = "sha256="
payload = "{{timestamp}}.{{body}}"
timestamp_header = "X-Ts"
"#
        ),
        Path::new("p.toml"),
    )
    .unwrap();
    cfg.routes[0].verifier.clone()
}

fn headers(sig: &[u8], ts: &str) -> Option<HeaderMap> {
    let mut h = HeaderMap::new();
    h.insert("x-sig", HeaderValue::from_bytes(sig).ok()?);
    h.insert("x-ts", HeaderValue::from_str(ts).ok()?);
    Some(h)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_single_byte_change_to_the_body_is_rejected(
        body in proptest::collection::vec(any::<u8>(), 1..512),
        index in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let v = verifier();
        let sig = format!("sha256={}", hmac_hex(SECRET, &[b"1700000000.", &body]));
        let h = headers(sig.as_bytes(), "1700000000").unwrap();
        let ok = v.verify(&SignedRequest { method: &http::Method::POST, headers: &h, body: &body, url: None });
        let valid = matches!(ok, Verdict::Valid { .. });
        prop_assert!(valid);
        let mut changed = body.clone();
        let i = index.index(changed.len());
        changed[i] ^= flip;
        let changed = Bytes::from(changed);
        let bad = v.verify(&SignedRequest { method: &http::Method::POST, headers: &h, body: &changed, url: None });
        prop_assert_eq!(bad, Verdict::Invalid);
    }

    #[test]
    fn any_single_byte_change_to_the_signature_is_rejected(
        body in proptest::collection::vec(any::<u8>(), 0..256),
        index in any::<prop::sample::Index>(),
        replacement in any::<u8>(),
    ) {
        let v = verifier();
        let sig = format!("sha256={}", hmac_hex(SECRET, &[b"1700000000.", &body]));
        let mut changed = sig.clone().into_bytes();
        let i = index.index(changed.len());
        // Hex is case-insensitive: a case flip of a hex letter is the same signature.
        prop_assume!(!changed[i].eq_ignore_ascii_case(&replacement));
        changed[i] = replacement;
        if let Some(h) = headers(&changed, "1700000000") {
            let verdict = v.verify(&SignedRequest { method: &http::Method::POST, headers: &h, body: &body, url: None });
            let valid = matches!(verdict, Verdict::Valid { .. });
            prop_assert!(!valid, "{:?}", String::from_utf8_lossy(&changed));
        }
    }

    #[test]
    fn arbitrary_header_bytes_never_verify_or_panic(sig in proptest::collection::vec(any::<u8>(), 0..300), ts in "[0-9a-z ]{0,20}") {
        let v = verifier();
        if let Some(h) = headers(&sig, &ts) {
            let verdict = v.verify(&SignedRequest { method: &http::Method::POST, headers: &h, body: b"{}", url: None });
            let valid = matches!(verdict, Verdict::Valid { .. });
            prop_assert!(!valid);
        }
    }
}

/// Every preset's verifier, with secrets in the form each expects.
fn preset_verifiers() -> Vec<(String, Verifier)> {
    hookwall::verify::presets::NAMES
        .iter()
        .map(|p| {
            let r = super::presets::valid_route(p, "public_url = \"https://h.example/r\"");
            ((*p).to_owned(), r.verifier.clone())
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Each preset's header parser on arbitrary bytes: no panic, and no forged signature
    /// passes (shared-token presets excepted: a token is a plain string).
    #[test]
    fn every_preset_parser_survives_arbitrary_header_bytes(
        sig in proptest::collection::vec(any::<u8>(), 0..400),
        side in "[ -~]{0,40}",
        body in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        for (provider, v) in preset_verifiers() {
            let mut h = HeaderMap::new();
            if let Ok(value) = HeaderValue::from_bytes(&sig) {
                for name in v.signature_headers() {
                    h.insert(name, value.clone());
                }
            }
            for name in ["webhook-id", "webhook-timestamp", "svix-id", "svix-timestamp", "x-slack-request-timestamp", "twitch-eventsub-message-timestamp", "x-signature-timestamp"] {
                h.insert(name, HeaderValue::from_str(&side).unwrap());
            }
            let verdict = v.verify(&SignedRequest { method: &http::Method::POST, headers: &h, body: &body, url: Some("https://h.example/r") });
            let valid = matches!(verdict, Verdict::Valid { .. });
            prop_assert!(!valid || matches!(provider.as_str(), "gitlab" | "postmark" | "telegram" | "okta"), "{provider} accepted garbage");
        }
    }
}
