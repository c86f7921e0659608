//! The presets whose providers sign with a shared secret but differ from the plain body
//! HMAC (Meta, X, Dropbox, Asana, Teams, Netlify) or send a shared value (Okta, Graph),
//! against the vectors in `tests/fixtures/vectors/hard_presets.json` (each entry names how
//! it was made and which official code accepted it). Each vector verifies; a changed body
//! byte, a changed signature character and another secret are refused. None of these
//! providers signs a time, so there is no window to test here (Plaid's and Google's are in
//! `key_fetch.rs`).

use hookwall::verify::{SignedTimestamp, Verdict};
use serde_json::Value;

use super::presets::{assert_valid, route, tampered, verify};

/// The frozen vectors.
pub(crate) fn vectors() -> Value {
    serde_json::from_str(include_str!("../fixtures/vectors/hard_presets.json")).unwrap()
}

pub(crate) fn s<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no {pointer} in the vectors"))
}

/// `sig` with the character in the middle replaced by another of the same alphabet.
pub(crate) fn altered(sig: &str) -> String {
    let mut b = sig.as_bytes().to_vec();
    let i = b.len() / 2;
    b[i] = if b[i] == b'A' { b'B' } else { b'A' };
    String::from_utf8(b).unwrap()
}

/// One secret-signed vector: the header that carries it and the preset.
struct Case {
    provider: &'static str,
    key: &'static str,
    header: &'static str,
}

const CASES: &[Case] = &[
    Case {
        provider: "meta",
        key: "meta",
        header: "X-Hub-Signature-256",
    },
    Case {
        provider: "x",
        key: "x",
        header: "X-Twitter-Webhooks-Signature",
    },
    Case {
        provider: "dropbox",
        key: "dropbox",
        header: "X-Dropbox-Signature",
    },
    Case {
        provider: "microsoft-teams",
        key: "teams",
        header: "Authorization",
    },
    Case {
        provider: "netlify",
        key: "netlify",
        header: "X-Webhook-Signature",
    },
];

#[test]
fn secret_signed_vectors_verify_and_every_change_is_refused() {
    let v = vectors();
    for c in CASES {
        let at = |field: &str| s(&v, &format!("/{}/{field}", c.key)).to_owned();
        let (secret, body, sig) = (at("secret"), at("body"), at("sig"));
        let r = route(c.provider, &[&secret], "");
        let name = c.provider;
        assert_eq!(
            assert_valid(verify(&r, &[(c.header, &sig)], body.as_bytes())),
            SignedTimestamp::None,
            "{name}: {}",
            at("source")
        );
        assert_eq!(
            verify(&r, &[(c.header, &sig)], &tampered(body.as_bytes())),
            Verdict::Invalid,
            "{name}: changed body byte"
        );
        assert_eq!(
            verify(&r, &[(c.header, &altered(&sig))], body.as_bytes()),
            Verdict::Invalid,
            "{name}: changed signature character"
        );
        let other_secret = if c.provider == "microsoft-teams" {
            "b3RoZXIgdGVhbXMgdG9rZW4="
        } else {
            "another-secret-entirely"
        };
        let other = route(c.provider, &[other_secret], "");
        assert_eq!(
            verify(&other, &[(c.header, &sig)], body.as_bytes()),
            Verdict::Invalid,
            "{name}: another secret"
        );
        assert_eq!(
            verify(&r, &[], body.as_bytes()),
            Verdict::Missing,
            "{name}: no signature"
        );
    }
}

/// Teams' security token is base64: its decoded bytes are the key, so the same text used
/// as a raw key does not verify, and a token that is not base64 is a config error.
#[test]
fn teams_key_is_the_decoded_security_token() {
    let v = vectors();
    let (secret, body, sig) = (
        s(&v, "/teams/secret"),
        s(&v, "/teams/body"),
        s(&v, "/teams/sig"),
    );
    let raw = route(
        "generic",
        &[secret],
        "[route.verify]\nheader = \"Authorization\"\nprefix = \"HMAC \"\nencoding = \"base64\"",
    );
    assert_eq!(
        verify(&raw, &[("Authorization", sig)], body.as_bytes()),
        Verdict::Invalid
    );
    let text = "[[route]]\nname = \"t\"\npath = \"/t\"\nupstream = \"http://127.0.0.1:9/\"\nprovider = \"microsoft-teams\"\nsecrets = [{ value = \"not base64!\" }]\n";
    let err = hookwall::config::compile_str(text, std::path::Path::new("t.toml")).unwrap_err();
    assert!(err.to_string().contains("base64"), "{err}");
}

/// Netlify's token must name netlify as issuer and carry the body's digest: a token signed
/// with the right secret but other claims is refused, and so is another algorithm.
#[test]
fn netlify_claims_and_algorithm_are_checked() {
    use jsonwebtoken::{encode, EncodingKey, Header};
    let v = vectors();
    let (secret, body) = (s(&v, "/netlify/secret"), s(&v, "/netlify/body"));
    let r = route("netlify", &[secret], "");
    let digest = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(body.as_bytes()))
    };
    let sign = |alg, claims: Value| {
        encode(
            &Header::new(alg),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    };
    let ok = sign(
        jsonwebtoken::Algorithm::HS256,
        serde_json::json!({"iss": "netlify", "sha256": digest}),
    );
    assert_valid(verify(&r, &[("X-Webhook-Signature", &ok)], body.as_bytes()));
    for (what, token) in [
        (
            "other issuer",
            sign(
                jsonwebtoken::Algorithm::HS256,
                serde_json::json!({"iss": "other", "sha256": digest}),
            ),
        ),
        (
            "no digest",
            sign(
                jsonwebtoken::Algorithm::HS256,
                serde_json::json!({"iss": "netlify"}),
            ),
        ),
        (
            "other algorithm",
            sign(
                jsonwebtoken::Algorithm::HS512,
                serde_json::json!({"iss": "netlify", "sha256": digest}),
            ),
        ),
        (
            "unsigned",
            "eyJhbGciOiJub25lIn0.eyJpc3MiOiJuZXRsaWZ5In0.".to_owned(),
        ),
        ("garbage", "not.a.token".to_owned()),
    ] {
        assert_eq!(
            verify(&r, &[("X-Webhook-Signature", &token)], body.as_bytes()),
            Verdict::Invalid,
            "{what}"
        );
    }
}

/// Okta sends the configured Authorization value as it is; Graph repeats the clientState
/// in every notification, and one notification without it spoils the whole body.
#[test]
fn okta_authorization_and_graph_client_state() {
    let okta = route("okta", &["okta-hook-secret-value"], "");
    let body = br#"{"eventType":"com.okta.event_hook","eventId":"b5a188b9-5ece-4636-b041-482ffda96311","data":{"events":[{"eventType":"user.session.start"}]}}"#;
    assert_valid(verify(
        &okta,
        &[("Authorization", "okta-hook-secret-value")],
        body,
    ));
    assert_eq!(
        verify(&okta, &[("Authorization", "okta-hook-secret-valuE")], body),
        Verdict::Invalid
    );
    assert_eq!(
        verify(
            &route("okta", &["another"], ""),
            &[("Authorization", "okta-hook-secret-value")],
            body
        ),
        Verdict::Invalid
    );
    assert_eq!(verify(&okta, &[], body), Verdict::Missing);

    let graph = route("microsoft-graph", &["secretClientValue"], "");
    let one = |state: &str| {
        format!(
            r#"{{"subscriptionId":"7f105c7d-2dc5-4530-97cd-4e7ae6534c07","clientState":"{state}","changeType":"created","resource":"Users/ab/Messages/cd","tenantId":"84bd8158-6d4d-4958-8b9f-9d6445542f95"}}"#
        )
    };
    let body = |items: &[String]| format!(r#"{{"value":[{}]}}"#, items.join(","));
    let good = body(&[one("secretClientValue"), one("secretClientValue")]);
    assert_valid(verify(&graph, &[], good.as_bytes()));
    assert_eq!(
        verify(
            &graph,
            &[],
            body(&[one("secretClientValue"), one("forged")]).as_bytes()
        ),
        Verdict::Invalid
    );
    assert_eq!(
        verify(&graph, &[], body(&[one("secretClientValuE")]).as_bytes()),
        Verdict::Invalid
    );
    assert_eq!(
        verify(
            &route("microsoft-graph", &["other"], ""),
            &[],
            good.as_bytes()
        ),
        Verdict::Invalid
    );
    assert_eq!(
        verify(&graph, &[], br#"{"value":[{"changeType":"created"}]}"#),
        Verdict::Invalid
    );
    assert_eq!(verify(&graph, &[], b"{}"), Verdict::Missing);
    assert_eq!(verify(&graph, &[], b"not json"), Verdict::Missing);
}

/// Asana: a secret file that already holds the secret verifies at once; without it the
/// route verifies nothing until the handshake (see `handshakes_hard.rs`).
#[test]
fn asana_with_an_established_secret_file() {
    let v = vectors();
    let (secret, body, sig) = (
        s(&v, "/asana/secret"),
        s(&v, "/asana/body"),
        s(&v, "/asana/sig"),
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("asana.secret");
    std::fs::write(&file, format!("{secret}\n")).unwrap();
    let text = |file: &std::path::Path| {
        format!(
        "[[route]]\nname = \"a\"\npath = \"/a\"\nupstream = \"http://127.0.0.1:9/\"\nprovider = \"asana\"\nsecrets = [{{ file = {:?} }}]\n",
        file.display().to_string()
    )
    };
    let cfg = hookwall::config::compile_str(&text(&file), std::path::Path::new("a.toml")).unwrap();
    let r = &cfg.routes[0];
    assert_valid(verify(r, &[("X-Hook-Signature", sig)], body.as_bytes()));
    assert_eq!(
        verify(r, &[("X-Hook-Signature", sig)], &tampered(body.as_bytes())),
        Verdict::Invalid
    );
    assert_eq!(
        verify(r, &[("X-Hook-Signature", &altered(sig))], body.as_bytes()),
        Verdict::Invalid
    );
    let missing = dir.path().join("not-yet.secret");
    let cfg =
        hookwall::config::compile_str(&text(&missing), std::path::Path::new("a.toml")).unwrap();
    assert_eq!(
        verify(
            &cfg.routes[0],
            &[("X-Hook-Signature", sig)],
            body.as_bytes()
        ),
        Verdict::Missing
    );
    // A value secret would let anyone reading the config choose nothing: only files.
    let value = "[[route]]\nname = \"a\"\npath = \"/a\"\nupstream = \"http://127.0.0.1:9/\"\nprovider = \"asana\"\nsecrets = [{ value = \"x\" }]\n";
    let err = hookwall::config::compile_str(value, std::path::Path::new("a.toml")).unwrap_err();
    assert!(err.to_string().contains("X-Hook-Secret"), "{err}");
}
