//! Every preset against the providers' published vectors (PUBLISHED in providers.md) or,
//! where none is published, the documented algorithm's self-computed vectors (SELF); plus
//! tampering, wrong secrets, malformed headers and default dedup keys.

use std::path::Path;

use bytes::Bytes;
use hookwall::config::{compile_str, Config, DedupSource, RouteConfig};
use hookwall::layers::dedup::extract_id;
use hookwall::verify::{SignInput, SignedRequest, SignedTimestamp, Verdict};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request};

/// One route with this provider and secrets (and extra route keys).
pub(crate) fn route(provider: &str, secrets: &[&str], extra: &str) -> RouteConfig {
    let secrets: Vec<String> = secrets
        .iter()
        .map(|s| format!("{{ value = {s:?} }}"))
        .collect();
    let secrets = if secrets.is_empty() {
        String::new()
    } else {
        format!("secrets = [{}]\n", secrets.join(", "))
    };
    let text = format!(
        "[[route]]\nname = \"r\"\npath = \"/r\"\nupstream = \"http://127.0.0.1:9/\"\nprovider = \"{provider}\"\n{secrets}{extra}\n"
    );
    let cfg: Config =
        compile_str(&text, Path::new("presets.toml")).unwrap_or_else(|e| panic!("{provider}: {e}"));
    (*cfg.routes[0]).clone()
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h
}

fn verify_with(r: &RouteConfig, h: &HeaderMap, body: &[u8], url: Option<&str>) -> Verdict {
    r.verifier.verify(&SignedRequest {
        method: &Method::POST,
        headers: h,
        body,
        url,
    })
}

pub(crate) fn verify(r: &RouteConfig, pairs: &[(&str, &str)], body: &[u8]) -> Verdict {
    verify_with(r, &headers(pairs), body, None)
}

#[track_caller]
pub(crate) fn assert_valid(v: Verdict) -> SignedTimestamp {
    match v {
        Verdict::Valid { timestamp, .. } => timestamp,
        other => panic!("expected a valid signature, got {other:?}"),
    }
}

/// A body with one byte changed.
pub(crate) fn tampered(body: &[u8]) -> Vec<u8> {
    let mut b = body.to_vec();
    let i = b.len() / 2;
    b[i] ^= 0x01;
    b
}

#[test]
fn stripe_self_vector_rotation_and_tampering() {
    let r = route("stripe", &["whsec_test_secret"], "");
    let body = br#"{"id":"evt_test_webhook","object":"event"}"#;
    let header = "t=1700000000,v1=d95c6b7477fbd7e9f90b1b0ef5f9c7ac25abca5382460e0d988c2b2a5b71b990";
    assert_eq!(
        assert_valid(verify(&r, &[("Stripe-Signature", header)], body)),
        SignedTimestamp::UnixMs(1_700_000_000_000)
    );
    // Several v1 during a secret roll, plus a test-mode v0: any v1 may match.
    let rolled = format!(
        "t=1700000000,v1={},{},v0=abc",
        "00".repeat(32),
        &header[13..]
    );
    assert_valid(verify(&r, &[("Stripe-Signature", &rolled)], body));
    assert_eq!(
        verify(&r, &[("Stripe-Signature", header)], &tampered(body)),
        Verdict::Invalid
    );
    let other = route("stripe", &["whsec_other"], "");
    assert_eq!(
        verify(&other, &[("Stripe-Signature", header)], body),
        Verdict::Invalid
    );
    assert_eq!(verify(&r, &[], body), Verdict::Missing);
    for bad in [
        "",
        "t=1700000000",
        "v1=zz",
        "t=1700000000,v1=",
        "garbage",
        "t=1700000000,v0=d95c",
    ] {
        let verdict = verify(&r, &[("Stripe-Signature", bad)], body);
        assert!(!matches!(verdict, Verdict::Valid { .. }), "{bad}");
    }
    assert_eq!(
        r.dedup.as_ref().unwrap().source,
        DedupSource::JsonPointer("/id".into())
    );
}

#[test]
fn github_published_vectors_and_legacy_sha1_opt_in() {
    let r = route("github", &["It's a Secret to Everybody"], "");
    let sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    assert_valid(verify(
        &r,
        &[("X-Hub-Signature-256", sig)],
        b"Hello, World!",
    ));
    let octokit = route("github", &["mysecret"], "");
    assert_valid(verify(
        &octokit,
        &[(
            "X-Hub-Signature-256",
            "sha256=4864d2759938a15468b5df9ade20bf161da9b4f737ea61794142f3484236bda3",
        )],
        br#"{"foo":"bar"}"#,
    ));
    let sha1 = [(
        "X-Hub-Signature",
        "sha1=01dc10d0c83e72ed246219cdd91669667fe2ca59",
    )];
    assert_eq!(
        verify(&r, &sha1, b"Hello, World!"),
        Verdict::Missing,
        "SHA-1 alone is refused by default"
    );
    let legacy = route(
        "github",
        &["It's a Secret to Everybody"],
        "legacy_sha1 = true",
    );
    assert_valid(verify(&legacy, &sha1, b"Hello, World!"));
    assert_eq!(
        verify(
            &r,
            &[("X-Hub-Signature-256", "sha1=757107ea")],
            b"Hello, World!"
        ),
        Verdict::Invalid
    );
    assert_eq!(
        r.dedup.as_ref().unwrap().source,
        DedupSource::Header(HeaderName::from_static("x-github-delivery"))
    );
}

const SW_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const SW_SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
const SW_BODY: &[u8] = br#"{"test": 2432232314}"#;

#[test]
fn standard_webhooks_and_svix_published_vector() {
    let r = route("standard-webhooks", &[SW_SECRET], "");
    let pairs = |sig: &'static str| {
        [
            ("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"),
            ("webhook-timestamp", "1614265330"),
            ("webhook-signature", sig),
        ]
    };
    assert_eq!(
        assert_valid(verify(&r, &pairs(SW_SIG), SW_BODY)),
        SignedTimestamp::UnixMs(1_614_265_330_000)
    );
    assert_eq!(
        verify(
            &r,
            &pairs("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA="),
            SW_BODY
        ),
        Verdict::Invalid
    );
    // Space-separated list: an unknown version and a wrong v1 before the right one.
    assert_valid(verify(
        &r,
        &pairs("v2,abc v1,AAAA v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="),
        SW_BODY,
    ));
    assert_eq!(
        verify(&r, &pairs(SW_SIG), &tampered(SW_BODY)),
        Verdict::Invalid
    );
    let svix = route("svix", &[SW_SECRET], "");
    let svix_pairs = [
        ("svix-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"),
        ("svix-timestamp", "1614265330"),
        ("svix-signature", SW_SIG),
    ];
    assert_valid(verify(&svix, &svix_pairs, SW_BODY));
    assert_valid(verify(&svix, &pairs(SW_SIG), SW_BODY));
    let req = request(&svix_pairs, SW_BODY);
    assert_eq!(
        extract_id(&svix.dedup.as_ref().unwrap().source, &req).as_deref(),
        Some("msg_p5jXN8AQM9LWM0D4loKWxJek")
    );
    assert!(
        r.dedup.as_ref().unwrap().required,
        "the id is signed, so it is required"
    );
}

#[test]
fn standard_webhooks_secret_must_be_whsec_base64() {
    let text = "[[route]]\nname = \"sw\"\npath = \"/r\"\nupstream = \"http://127.0.0.1:9/\"\nprovider = \"standard-webhooks\"\nsecrets = [{ value = \"whsec_***not-base64***\" }]\n";
    let err = compile_str(text, Path::new("t.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("route[0].secrets[0]")
            && err.contains("whsec_")
            && err.contains("standard-webhooks"),
        "{err}"
    );
    assert!(
        !err.contains("***not-base64***"),
        "the secret itself must not be echoed: {err}"
    );
}

#[test]
fn standard_webhooks_v1a_ed25519() {
    use base64::Engine;
    use ed25519_dalek::Signer;
    let sk = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
    let whpk = format!(
        "whpk_{}",
        base64::engine::general_purpose::STANDARD.encode(sk.verifying_key().as_bytes())
    );
    // Rotation from HMAC to Ed25519: both kinds of secret on one route.
    let r = route("standard-webhooks", &[SW_SECRET, &whpk], "");
    let msg = format!("msg_1.1614265330.{}", std::str::from_utf8(SW_BODY).unwrap());
    let sig = base64::engine::general_purpose::STANDARD.encode(sk.sign(msg.as_bytes()).to_bytes());
    let header = format!("v1a,{sig}");
    let pairs = [
        ("webhook-id", "msg_1"),
        ("webhook-timestamp", "1614265330"),
        ("webhook-signature", header.as_str()),
    ];
    match verify(&r, &pairs, SW_BODY) {
        Verdict::Valid { key, .. } => assert_eq!(key, 1),
        other => panic!("{other:?}"),
    }
    assert_eq!(verify(&r, &pairs, &tampered(SW_BODY)), Verdict::Invalid);
}

#[test]
fn shopify_published_vector_both_header_styles() {
    let r = route("shopify", &["test_secret_key"], "");
    let sig = "B23tXN681gZ0qIWNRrgtzBE9XSDo5yaUu6wfmhu3a7g=";
    assert_valid(verify(
        &r,
        &[("X-Shopify-Hmac-Sha256", sig)],
        br#"{"foo": "bar"}"#,
    ));
    assert_valid(verify(
        &r,
        &[("shopify-hmac-sha256", sig)],
        br#"{"foo": "bar"}"#,
    ));
    assert_eq!(
        verify(&r, &[("X-Shopify-Hmac-Sha256", sig)], br#"{"foo":"bar"}"#),
        Verdict::Invalid,
        "re-serialised JSON fails"
    );
    let req = request(&[("shopify-event-id", "evt-9")], b"{}");
    assert_eq!(
        extract_id(&r.dedup.as_ref().unwrap().source, &req).as_deref(),
        Some("evt-9")
    );
}

#[test]
fn slack_published_vector() {
    let r = route("slack", &["8f742231b10e8888abcd99yyyzzz85a5"], "");
    let body = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    let pairs = [
        ("X-Slack-Request-Timestamp", "1531420618"),
        (
            "X-Slack-Signature",
            "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
        ),
    ];
    assert_valid(verify(&r, &pairs, body));
    assert_eq!(
        verify(&r, &pairs[1..], body),
        Verdict::Missing,
        "no timestamp: a signed input is absent"
    );
    assert_eq!(verify(&r, &pairs, &tampered(body)), Verdict::Invalid);
    let w = r.window.unwrap();
    assert_eq!((w.past.as_secs(), w.future.as_secs()), (300, 300));
}

const TWILIO_FORM: &[u8] = b"CallSid=CA1234567890ABCDE&Caller=%2B14158675309&Digits=1234&From=%2B14158675309&To=%2B18005551212";

#[test]
fn twilio_published_vectors() {
    let r = route(
        "twilio",
        &["12345"],
        "public_url = \"https://mycompany.com/myapp.php\"",
    );
    let form = headers(&[
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("X-Twilio-Signature", "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
    ]);
    assert_valid(verify_with(
        &r,
        &form,
        TWILIO_FORM,
        Some("https://mycompany.com/myapp.php?foo=1&bar=2"),
    ));
    assert_valid(verify_with(
        &r,
        &form,
        TWILIO_FORM,
        Some("https://mycompany.com:1234/myapp.php?foo=1&bar=2"),
    ));
    let port = headers(&[
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("X-Twilio-Signature", "Zmvh+3yNM1Phv2jhDCwEM3q5ebU="),
    ]);
    assert_valid(verify_with(
        &r,
        &port,
        TWILIO_FORM,
        Some("http://mycompany.com:1234/myapp.php?foo=1&bar=2"),
    ));
    assert_eq!(
        verify_with(
            &r,
            &form,
            &tampered(TWILIO_FORM),
            Some("https://mycompany.com/myapp.php?foo=1&bar=2")
        ),
        Verdict::Invalid
    );

    let sha = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620";
    let json = br#"{"property": "value", "boolean": true}"#;
    let js = |sig: &str| {
        headers(&[
            ("Content-Type", "application/json"),
            ("X-Twilio-Signature", sig),
        ])
    };
    assert_valid(verify_with(
        &r,
        &js("a9nBmqA0ju/hNViExpshrM61xv4="),
        json,
        Some(&format!(
            "https://mycompany.com/myapp.php?foo=1&bar=2&bodySHA256={sha}"
        )),
    ));
    assert_valid(verify_with(
        &r,
        &js("y77kIzt2vzLz71DgmJGsen2scGs="),
        json,
        Some(&format!("https://mycompany.com/myapp.php?bodySHA256={sha}")),
    ));
    // The body must match the hash the URL carries.
    assert_eq!(
        verify_with(
            &r,
            &js("y77kIzt2vzLz71DgmJGsen2scGs="),
            &tampered(json),
            Some(&format!("https://mycompany.com/myapp.php?bodySHA256={sha}"))
        ),
        Verdict::Invalid
    );
    // Only valid with :443 added, as Twilio's own SDK handles it.
    let empty = "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
    assert_valid(verify_with(
        &r,
        &js("Ldidvp12m26NI7eqEvxnEpkd9Hc="),
        b"{}",
        Some(&format!(
            "https://mycompany.com/myapp.php?foo=1&bar=2&bodySHA256={empty}"
        )),
    ));
}

/// Webhook Rules: HMAC-SHA256 with a SharedKey, named by the settings header. Vectors made
/// with twilio-python 9.13 (`RequestValidator("12345").compute_signature(.., "HMAC_SHA256")`).
#[test]
fn twilio_webhook_rules_sha256() {
    let r = route(
        "twilio",
        &["12345"],
        "public_url = \"https://mycompany.com/myapp.php\"",
    );
    let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
    let rules = |algorithm: &str, sig: &str| {
        headers(&[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("X-Twilio-Signature", sig),
            (
                "X-Twilio-Webhooks-Signature-Settings",
                &format!("key=webhooks_sharedkey_1, algorithm={algorithm}"),
            ),
        ])
    };
    let sha256 = "033hgUJA9M/hXIZsYjwkerEP/DBm35nEri5FhCYjA5s=";
    assert_valid(verify_with(
        &r,
        &rules("HMAC_SHA256", sha256),
        TWILIO_FORM,
        Some(url),
    ));
    assert_valid(verify_with(
        &r,
        &rules("hmac_sha256", sha256),
        TWILIO_FORM,
        Some(url),
    ));
    // The settings header decides: a SHA-256 tag claimed as SHA-1 (or the reverse) fails.
    assert_eq!(
        verify_with(&r, &rules("HMAC_SHA1", sha256), TWILIO_FORM, Some(url)),
        Verdict::Invalid
    );
    let sha1 = "RSOYDt4T1cUTdK1PDd93/VVr8B8=";
    assert_valid(verify_with(
        &r,
        &rules("HMAC_SHA1", sha1),
        TWILIO_FORM,
        Some(url),
    ));
    assert_eq!(
        verify_with(&r, &rules("HMAC_SHA256", sha1), TWILIO_FORM, Some(url)),
        Verdict::Invalid
    );
    assert_eq!(
        verify_with(&r, &rules("HMAC_MD5", sha256), TWILIO_FORM, Some(url)),
        Verdict::Invalid
    );
    assert_eq!(
        verify_with(
            &r,
            &rules("HMAC_SHA256", sha256),
            &tampered(TWILIO_FORM),
            Some(url)
        ),
        Verdict::Invalid
    );
    // JSON body with bodySHA256, signed with SHA-256.
    let json = br#"{"property": "value", "boolean": true}"#;
    let sha = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620";
    let js = headers(&[
        ("Content-Type", "application/json"),
        (
            "X-Twilio-Signature",
            "48VQclCUJfoetboXjUYkQ1KCqs//CfcEJ9vLWWMfJpg=",
        ),
        (
            "X-Twilio-Webhooks-Signature-Settings",
            "key=k,algorithm=HMAC_SHA256",
        ),
    ]);
    let json_url = format!("https://mycompany.com/myapp.php?bodySHA256={sha}");
    assert_valid(verify_with(&r, &js, json, Some(&json_url)));
}

#[test]
fn twilio_without_public_url_is_a_check_error() {
    let text = "[[route]]\nname = \"t\"\npath = \"/t\"\nupstream = \"http://127.0.0.1:9/\"\nprovider = \"twilio\"\nsecrets = [{ value = \"x\" }]\n";
    let err = compile_str(text, Path::new("t.toml"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("route[0].public_url: is required"), "{err}");
}

#[test]
fn paddle_published_vectors() {
    let r = route("paddle", &["VALID_SECRET"], "");
    let h = "ts=1698796800;h1=a300428748dce5c70e4da19bffd60769591ea969c99dea3105d0ec9612cf43f9";
    assert_valid(verify(
        &r,
        &[("Paddle-Signature", h)],
        br#"{"data": ["1", "2"]}"#,
    ));
    assert_eq!(
        verify(
            &r,
            &[("Paddle-Signature", h)],
            br#"{ "data": [ "1", "2" ]}"#
        ),
        Verdict::Invalid
    );
    let h2 = "ts=1698796800;h1=28981e941fae76e53db32f3d2a83cb69db41476595e84e1970a1b5d98f62b261";
    assert_valid(verify(
        &r,
        &[("Paddle-Signature", h2)],
        br#"{"data": "value"}"#,
    ));
    // Several h1 (rotation): every one is checked, not only the last.
    let two = format!(
        "ts=1698796800;h1=28981e941fae76e53db32f3d2a83cb69db41476595e84e1970a1b5d98f62b261;h1={}",
        "00".repeat(32)
    );
    assert_valid(verify(
        &r,
        &[("Paddle-Signature", &two)],
        br#"{"data": "value"}"#,
    ));
    let w = r.window.unwrap();
    assert_eq!((w.past.as_secs(), w.future.as_secs()), (5, 300));
}

#[test]
fn zoom_self_vector() {
    let r = route("zoom", &["zoom_secret_token"], "");
    let body =
        br#"{"event":"meeting.started","payload":{"account_id":"abc"},"event_ts":1700000000000}"#;
    let pairs = [
        ("x-zm-request-timestamp", "1700000000"),
        (
            "x-zm-signature",
            "v0=2d1cc1e93aec239e4b6385fee0380dee3eb697ec172492bff19620cd15e20efc",
        ),
    ];
    assert_valid(verify(&r, &pairs, body));
    assert_eq!(verify(&r, &pairs, &tampered(body)), Verdict::Invalid);
    assert!(r.dedup.is_none(), "Zoom sends no delivery id");
}

#[test]
fn linear_self_vector_with_body_timestamp() {
    let r = route("linear", &["lin_wh_test"], "");
    let body = br#"{"action":"create","type":"Issue","webhookTimestamp":1700000000000}"#;
    let ts = assert_valid(verify(
        &r,
        &[(
            "linear-signature",
            "0e30fc8cd283b78c118cae3e3685e9eb3595a5f7146ae4b53f8f6b042364e895",
        )],
        body,
    ));
    assert_eq!(ts, SignedTimestamp::UnixMs(1_700_000_000_000));
}

#[test]
fn gitlab_token_and_postmark_basic_auth() {
    let r = route("gitlab", &["glpat-token"], "");
    assert_valid(verify(&r, &[("X-Gitlab-Token", "glpat-token")], b"{}"));
    assert_eq!(
        verify(&r, &[("X-Gitlab-Token", "glpat-tokeN")], b"{}"),
        Verdict::Invalid
    );
    assert_eq!(verify(&r, &[], b"{}"), Verdict::Missing);
    let p = route("postmark", &["user:p@ss"], "");
    assert_valid(verify(
        &p,
        &[("Authorization", "Basic dXNlcjpwQHNz")],
        b"{}",
    ));
    assert_eq!(
        verify(&p, &[("Authorization", "Basic dXNlcjpwQHN6")], b"{}"),
        Verdict::Invalid
    );
    assert_eq!(
        verify(&p, &[("Authorization", "Bearer x")], b"{}"),
        Verdict::Invalid
    );
}

#[test]
fn square_published_vectors() {
    let body = br#"{"merchant_id":"MLEFBHHSJGVHD","type":"webhooks.test_notification","event_id":"ac3ac95b-f97d-458c-a6e6-18981597e05f","created_at":"2022-07-13T20:30:59.037339943Z","data":{"type":"webhooks","id":"bc368e64-01aa-407e-b46e-3231809b1129"}}"#;
    let url = "https://webhook.site/679a4f3a-dcfa-49ee-bac5-9d0edad886b9";
    let r = route(
        "square",
        &["Ibxx_5AKakO-3qeNVR61Dw"],
        &format!("public_url = \"{url}\""),
    );
    let h = headers(&[(
        "x-square-hmacsha256-signature",
        "GF4YkrJgGBDZ9NIYbNXBnMzqb2HoL4RW/S6vkZ9/2N4=",
    )]);
    assert_valid(verify_with(&r, &h, body, Some(url)));
    assert_eq!(
        verify_with(&r, &h, body, Some("https://webhook.site/other")),
        Verdict::Invalid
    );
    let r2 = route(
        "square",
        &["signature-key"],
        "public_url = \"https://webhook.site/webhooks\"",
    );
    let h2 = headers(&[(
        "x-square-hmacsha256-signature",
        "W3FlCNk5IA3ZQ2LHTWoajvzfaDu/OwY2tNHIHC3IUOA=",
    )]);
    assert_valid(verify_with(
        &r2,
        &h2,
        br#"{"data":{"type":"webhooks","id":"fake_id"}}"#,
        Some("https://webhook.site/webhooks"),
    ));
    let h3 = headers(&[(
        "x-square-hmacsha256-signature",
        "Cxt7+aTi4rKgcA0bC4g9EHdVtLSDWdqccmL5MvihU4U=",
    )]);
    assert_valid(verify_with(
        &r2,
        &h3,
        br#"{"data":{"type":"webhooks","id":">id<"}}"#,
        Some("https://webhook.site/webhooks"),
    ));
}

#[test]
fn discord_self_vector_ed25519() {
    let r = route(
        "discord",
        &["03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"],
        "",
    );
    let body = br#"{"type":1,"id":"787053080478613555","application_id":"1"}"#;
    let sig = "769a821cdbbc3af25f561dfa52046f9f5b7335ea7fb7ef35137b66bb4da2c2d8a0c5a936024b030dde06843d9bd7f0b77f037e7734ccd2d15bd63cdd2ff6cb01";
    let pairs = [
        ("X-Signature-Ed25519", sig),
        ("X-Signature-Timestamp", "1700000000"),
    ];
    assert_valid(verify(&r, &pairs, body));
    assert_eq!(verify(&r, &pairs, &tampered(body)), Verdict::Invalid);
    assert_eq!(
        verify(&r, &[("X-Signature-Ed25519", sig)], body),
        Verdict::Missing
    );
    assert_eq!(
        verify(
            &r,
            &[
                ("X-Signature-Ed25519", "00"),
                ("X-Signature-Timestamp", "1700000000")
            ],
            body
        ),
        Verdict::Invalid
    );
}

#[test]
fn sendgrid_published_vector_ecdsa() {
    let key = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE83T4O/n84iotIvIW4mdBgQ/7dAfSmpqIM8kF9mN1flpVKS3GRqe62gw+2fNNRaINXvVpiglSI8eNEc6wEA3F+g==";
    let r = route("sendgrid", &[key], "");
    let body = b"[{\"email\":\"hello@world.com\",\"event\":\"dropped\",\"reason\":\"Bounced Address\",\"sg_event_id\":\"ZHJvcC0xMDk5NDkxOS1MUnpYbF9OSFN0T0doUTRrb2ZTbV9BLTA\",\"sg_message_id\":\"LRzXl_NHStOGhQ4kofSm_A.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0\",\"smtp-id\":\"<LRzXl_NHStOGhQ4kofSm_A@ismtpd0039p1iad1.sendgrid.net>\",\"timestamp\":1600112492}]\r\n";
    let pairs = [
        ("X-Twilio-Email-Event-Webhook-Signature", "MEUCIGHQVtGj+Y3LkG9fLcxf3qfI10QysgDWmMOVmxG0u6ZUAiEAyBiXDWzM+uOe5W0JuG+luQAbPIqHh89M15TluLtEZtM="),
        ("X-Twilio-Email-Event-Webhook-Timestamp", "1600112502"),
    ];
    assert_valid(verify(&r, &pairs, body));
    // Without the trailing CRLF the signature no longer matches.
    assert_eq!(
        verify(&r, &pairs, &body[..body.len() - 2]),
        Verdict::Invalid
    );
}

#[test]
fn mailgun_self_vector_signature_in_body() {
    let r = route("mailgun", &["key-mailgun-test"], "");
    let body = br#"{"signature":{"timestamp":"1770920772","token":"e0b5477167110d68991efc6b9f89f0a11066af27834600e123","signature":"19c9bd1bd6242025eafc087e733cb9f18279d57d74408dc9d9ce9dbee0b53edd"},"event-data":{"id":"e1"}}"#;
    assert_eq!(
        assert_valid(verify(&r, &[], body)),
        SignedTimestamp::UnixMs(1_770_920_772_000)
    );
    let forged = String::from_utf8_lossy(body).replace("19c9bd1b", "19c9bd1c");
    assert_eq!(verify(&r, &[], forged.as_bytes()), Verdict::Invalid);
    assert_eq!(verify(&r, &[], b"{\"event-data\":{}}"), Verdict::Missing);
    let req = request(&[], body);
    assert_eq!(
        extract_id(&r.dedup.as_ref().unwrap().source, &req).as_deref(),
        Some("e0b5477167110d68991efc6b9f89f0a11066af27834600e123"),
        "the token is the dedup key: a replayed signature is a duplicate"
    );
}

#[test]
fn hubspot_v3_self_vector() {
    let r = route(
        "hubspot",
        &["yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"],
        "public_url = \"https://www.example.com/webhook_uri\"",
    );
    let h = headers(&[
        (
            "X-HubSpot-Signature-v3",
            "vnX5Als0n2OhEZQxOS/1ftERzeabHuxE8jEarlPWRdE=",
        ),
        ("X-HubSpot-Request-Timestamp", "1700000000000"),
    ]);
    let ts = assert_valid(verify_with(
        &r,
        &h,
        br#"[{"eventId":1}]"#,
        Some("https://www.example.com/webhook_uri"),
    ));
    assert_eq!(ts, SignedTimestamp::UnixMs(1_700_000_000_000));
    let get = r.verifier.verify(&SignedRequest {
        method: &Method::PUT,
        headers: &h,
        body: br#"[{"eventId":1}]"#,
        url: Some("https://www.example.com/webhook_uri"),
    });
    assert_eq!(get, Verdict::Invalid, "the method is signed");
}

#[test]
fn body_only_presets_self_vectors() {
    let cases: [(&str, &str, &str, &[u8], &str); 7] = [
        ("intercom", "intercom_test_secret", "X-Hub-Signature", br#"{"type":"notification_event","id":"notif_1","topic":"ping"}"#, "sha1=8008770ac653fbeb4054cae0a3fc50010972862b"),
        ("bitbucket", "bb_test_secret", "X-Hub-Signature", br#"{"event":"repo:push"}"#, "sha256=66f59794f66b24e69ccac36ed078283c636e52a1f8dbb740b057a7ce4777a784"),
        ("typeform", "typeform_test_secret", "Typeform-Signature", br#"{"event_id":"01HXYZ","event_type":"form_response"}"#, "sha256=UA8nYiDjbj7Wo4CChawIr0UCQes4sAFcBz2cXo9HTWU="),
        ("woocommerce", "wc_test_secret", "X-WC-Webhook-Signature", br#"{"id":123,"status":"processing"}"#, "Q/Don5HWayocKNmB/VdUoko2iNltEwrWMj2TQ2A4M/c="),
        ("sentry", "sentry_test_secret", "Sentry-Hook-Signature", br#"{"action":"created","installation":{"uuid":"7a485448-a9e2-4c85-8a3c-4f44175783c9"},"data":{},"actor":{"type":"application","id":"sentry","name":"Sentry"}}"#, "edc17c699187646450b82320cadf06e57ea5e67904c63ca9fbbcaba0a3cbfde4"),
        ("vercel", "vercel_test_secret", "x-vercel-signature", br#"{"type":"deployment.created","id":"evt_1"}"#, "3adc9f69a7eb008a8df0f783b4d729c8e9f4ea36"),
        ("pagerduty", "pd_new_secret", "X-PagerDuty-Signature", br#"{"event":{"id":"01DEN3KZ1DZBCGQ9LT0Y8UO2ZJ","event_type":"incident.triggered"}}"#, "v1=42d41039616c8b5aa779c7def017e9d0d8789d12881fff0b1a6d60bacfebe88a,v1=749f6394b957906b256ffc7bd2e028cc1f3aa91aa08e9579f01b9dadfe976060"),
    ];
    for (provider, secret, header, body, sig) in cases {
        let r = route(provider, &[secret], "");
        assert_valid(verify(&r, &[(header, sig)], body));
        assert_eq!(
            verify(&r, &[(header, sig)], &tampered(body)),
            Verdict::Invalid,
            "{provider}"
        );
        assert_eq!(
            verify(&route(provider, &["wrong"], ""), &[(header, sig)], body),
            Verdict::Invalid,
            "{provider}"
        );
        assert_eq!(verify(&r, &[], body), Verdict::Missing, "{provider}");
    }
    // PagerDuty's old secret matches the second entry.
    let old = route("pagerduty", &["pd_old_secret"], "");
    assert_valid(verify(
        &old,
        &[("X-PagerDuty-Signature", cases[6].4)],
        cases[6].3,
    ));
}

#[test]
fn woocommerce_secret_is_html_entity_decoded() {
    use base64::Engine;
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"a&b").unwrap();
    mac.update(b"{}");
    let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let r = route("woocommerce", &["a&amp;b"], "");
    assert_valid(verify(&r, &[("X-WC-Webhook-Signature", &sig)], b"{}"));
}

#[test]
fn stripe_like_self_vectors() {
    for (provider, secret, header, sig) in [
        (
            "calendly",
            "calendly_test_key",
            "Calendly-Webhook-Signature",
            "t=1700000000,v1=678248d4a935c3a33f5e8662e62a0d88fbfc5ee71c04dc091c83e2aa9b04548c",
        ),
        (
            "mux",
            "mux_test_secret",
            "Mux-Signature",
            "t=1700000000,v1=b028de2631ce00af2e779af6ea83de096230fe847c6eba5f6a09961310c5dca0",
        ),
    ] {
        let r = route(provider, &[secret], "");
        let body = br#"{"id":"evt_test_webhook","object":"event"}"#;
        assert_eq!(
            assert_valid(verify(&r, &[(header, sig)], body)),
            SignedTimestamp::UnixMs(1_700_000_000_000)
        );
        assert_eq!(
            verify(&r, &[(header, sig)], &tampered(body)),
            Verdict::Invalid
        );
    }
}

#[test]
fn twitch_self_vector_rfc3339() {
    let r = route("twitch", &["s3cre7s3cre7"], "");
    let body = br#"{"subscription":{"type":"channel.follow"}}"#;
    let pairs = [
        (
            "Twitch-Eventsub-Message-Id",
            "e76c6bd4-55c9-4987-8304-da1588d8988b",
        ),
        (
            "Twitch-Eventsub-Message-Timestamp",
            "2019-11-16T10:11:12.634234626Z",
        ),
        (
            "Twitch-Eventsub-Message-Signature",
            "sha256=5cccffae6e9f939e9d4112e26e172c68b349b4e5bd55807f200797d9a792f5ea",
        ),
    ];
    assert_eq!(
        assert_valid(verify(&r, &pairs, body)),
        SignedTimestamp::UnixMs(1_573_899_072_634)
    );
    assert_eq!(
        verify(&r, &pairs[1..], body),
        Verdict::Missing,
        "the id is signed"
    );
}

/// A secret in the form `provider` reads: whsec_ base64, a public key, Basic credentials.
pub(crate) fn secret_for(provider: &str) -> &'static str {
    match provider {
        "standard-webhooks" | "svix" | "clerk" | "resend" | "openai" | "replicate"
        | "liveblocks" | "finch" | "lithic" | "whop" | "dodopayments" => SW_SECRET,
        "discord" => "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8",
        "sendgrid" => "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE83T4O/n84iotIvIW4mdBgQ/7dAfSmpqIM8kF9mN1flpVKS3GRqe62gw+2fNNRaINXvVpiglSI8eNEc6wEA3F+g==",
        "telnyx" => "Zr5+Myx6RTMyvZ0Kf32wVfXF7xoGraZtmLOftoEMRzo=",
        "postmark" => "user:pass",
        "microsoft-teams" => "dGVhbXMtc2VjcmV0LWtleS1mb3ItdGVzdHM=",
        _ => "a-secret-value",
    }
}

/// The route table a preset needs besides secrets (fetched-key presets take no secrets).
pub(crate) fn table_for(provider: &str) -> Option<&'static str> {
    Some(match provider {
        "sns" => "sns = { topics = [\"arn:aws:sns:us-east-1:123456789012:MyTopic\"] }",
        "google-pubsub" => "google = { audience = \"https://h.example/r\", service_account = \"push@p.iam.gserviceaccount.com\" }",
        "google-chat" => "google = { audience = \"1234567890\" }",
        "plaid" => "plaid = { client_id = \"client-id\", secret = \"plaid-secret\" }",
        _ => return None,
    })
}

/// A valid route for any preset, with `extra` keys: secrets in the form it wants, its
/// table, and for Asana a secret file already holding [`secret_for`]'s value.
pub(crate) fn valid_route(provider: &str, extra: &str) -> RouteConfig {
    if let Some(table) = table_for(provider) {
        return route(provider, &[], &format!("{table}\n{extra}"));
    }
    if provider == "asana" {
        let dir = std::env::temp_dir().join(format!("hookwall-asana-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("established.secret");
        std::fs::write(&file, secret_for(provider)).unwrap();
        let text = format!(
            "[[route]]\nname = \"r\"\npath = \"/r\"\nupstream = \"http://127.0.0.1:9/\"\nprovider = \"asana\"\nsecrets = [{{ file = {:?} }}]\n{extra}\n",
            file.display().to_string()
        );
        let cfg = compile_str(&text, Path::new("presets.toml")).unwrap();
        return (*cfg.routes[0]).clone();
    }
    route(provider, &[secret_for(provider)], extra)
}

/// Presets that hold only public keys: hookwall cannot sign for them.
pub(crate) fn public_key_only(provider: &str) -> bool {
    matches!(
        provider,
        "discord" | "sendgrid" | "telnyx" | "sns" | "plaid" | "google-pubsub" | "google-chat"
    )
}

/// Sign → verify round trip for every preset that hookwall can sign for.
#[test]
fn sign_then_verify_for_every_signable_preset() {
    let url = "https://hooks.example.com/webhooks/x?a=1";
    for provider in hookwall::verify::presets::NAMES {
        let extra = "public_url = \"https://hooks.example.com/webhooks/x\"";
        if public_key_only(provider) {
            continue; // public keys only: verified with the providers' vectors
        }
        let r = valid_route(provider, extra);
        let body = b"CallSid=CA1&Digits=1234";
        let input = SignInput {
            body,
            timestamp: 1_700_000_000,
            id: "msg_42",
            url: Some(url),
            method: &Method::POST,
        };
        let signed = match r.verifier.sign(&input) {
            Ok(h) => h,
            Err(why) => {
                assert!(
                    matches!(*provider, "mailgun" | "microsoft-graph"),
                    "only mailgun and microsoft-graph carry their proof inside the body: {provider}: {why}"
                );
                continue;
            }
        };
        let mut h = HeaderMap::new();
        for (name, value) in &signed {
            h.insert(name.clone(), HeaderValue::from_str(value).unwrap());
        }
        h.insert(
            "content-type",
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        assert!(
            matches!(verify_with(&r, &h, body, Some(url)), Verdict::Valid { .. }),
            "{provider}: {signed:?}"
        );
        if !matches!(*provider, "gitlab" | "postmark" | "telegram" | "okta") {
            // Shared tokens authenticate the sender, not the body.
            assert_eq!(
                verify_with(&r, &h, &tampered(body), Some(url)),
                Verdict::Invalid,
                "{provider}"
            );
        }
    }
}

/// A request carrying headers and body, for dedup key extraction.
fn request(pairs: &[(&str, &str)], body: &[u8]) -> Request<Bytes> {
    let mut req = Request::post("/r")
        .body(Bytes::copy_from_slice(body))
        .unwrap();
    *req.headers_mut() = headers(pairs);
    req
}

/// A JSON body holding `value` at `pointer` (`/event/id` → `{"event":{"id":value}}`).
fn json_at(pointer: &str, value: serde_json::Value) -> Vec<u8> {
    let mut doc = value;
    for key in pointer.trim_start_matches('/').split('/').rev() {
        doc = serde_json::json!({ key: doc });
    }
    doc.to_string().into_bytes()
}

#[test]
fn every_preset_default_dedup_key_is_extracted() {
    for provider in hookwall::verify::presets::NAMES {
        let r = valid_route(provider, "public_url = \"https://h.example/x\"");
        let Some(dedup) = &r.dedup else { continue };
        let (pairs, body): (Vec<(String, String)>, Vec<u8>) = match &dedup.source {
            DedupSource::Header(h) => (vec![(h.to_string(), "id-42".into())], b"{}".to_vec()),
            DedupSource::AnyHeader(hs) => (
                vec![(hs[hs.len() - 1].to_string(), "id-42".into())],
                b"{}".to_vec(),
            ),
            DedupSource::JsonPointer(p) => (Vec::new(), json_at(p, "id-42".into())),
            DedupSource::BodySha256 => continue,
        };
        let refs: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let req = request(&refs, &body);
        assert_eq!(
            extract_id(&dedup.source, &req).as_deref(),
            Some("id-42"),
            "{provider}"
        );
        assert_eq!(
            extract_id(&dedup.source, &request(&[], b"{}")),
            None,
            "{provider}: no id, no key"
        );
    }
}
