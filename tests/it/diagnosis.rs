//! Signature-failure diagnosis (CONTRACT §9): for each known mistake a sender makes, the
//! refused delivery's journal entry names it, the hint is counted, and the client's answer
//! says nothing more than `invalid_signature`.

use crate::journal::{entries, named_route};
use crate::support::*;

/// Sends one delivery signed over `signed_body` with `secret` but carrying `sent_body`,
/// and returns the diagnosis of its entry (the answer must be a plain 401).
async fn diagnosis_of(
    gw: &TestGateway,
    path: &str,
    secret: &str,
    signed_body: &[u8],
    sent_body: &[u8],
    id: &str,
) -> String {
    let mut headers = signed_with(secret, signed_body, NOW, id);
    headers.retain(|(k, _)| k != "X-Delivery");
    headers.push(("X-Delivery".into(), id.into()));
    let answer = post(&gw.url(path), &headers, sent_body).await;
    assert_eq!(answer.0, 401, "{answer:?}");
    let v: serde_json::Value = serde_json::from_str(&answer.2).unwrap();
    assert_eq!(
        v.as_object().unwrap().len(),
        2,
        "nothing but error and request_id: {v}"
    );
    assert_eq!(v["error"], "invalid_signature");
    let request_id = v["request_id"].as_str().unwrap().to_owned();
    let list = entries(gw, "reason=invalid_signature&limit=500", 1).await;
    for _ in 0..500 {
        let list = entries(gw, "reason=invalid_signature&limit=500", 1).await;
        if let Some(e) = list.iter().find(|e| e["request_id"] == request_id.as_str()) {
            return e["diagnosis"].as_str().unwrap_or("none").to_owned();
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("no entry for {request_id}: {list:?}");
}

#[tokio::test]
async fn each_known_mistake_is_named() {
    let up = Upstream::start().await;
    let encoded_secret = {
        use base64::Engine;
        format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode("the-raw-key-bytes")
        )
    };
    let routes = [
        named_route(&up.url(), "acme", ""),
        named_route(&up.url(), "other", "").replace(SECRET, "the-other-routes-secret"),
        named_route(&up.url(), "encoded", "").replace(SECRET, &encoded_secret),
    ]
    .concat();
    let gw = TestGateway::start(&config_with("", "", &routes)).await;
    let acme = "/webhooks/acme";
    let compact = br#"{"a":1,"b":[1,2]}"#;
    let pretty = b"{\n  \"a\": 1,\n  \"b\": [\n    1,\n    2\n  ]\n}";
    // (path, secret signed with, body signed, body sent, the hint)
    type Case<'a> = (&'a str, &'a str, &'a [u8], &'a [u8], &'a str);
    let cases: [Case<'_>; 7] = [
        (acme, SECRET, compact, pretty, "body_reserialized_json"),
        (acme, SECRET, b"{}", b"{}\n", "trailing_newline_added"),
        (acme, SECRET, b"{}\n", b"{}", "trailing_newline_removed"),
        (
            acme,
            SECRET,
            b"line one\r\nline two",
            b"line one\nline two",
            "crlf_to_lf",
        ),
        (
            "/webhooks/encoded",
            "the-raw-key-bytes",
            b"{}",
            b"{}",
            "secret_encoding",
        ),
        (
            acme,
            "the-other-routes-secret",
            b"{}",
            b"{}",
            "other_route_secret",
        ),
        (acme, "nobody-knows-this", b"{}", b"{}", "unknown"),
    ];
    for (i, (path, secret, signed, sent, hint)) in cases.iter().enumerate() {
        let got = diagnosis_of(&gw, path, secret, signed, sent, &format!("d{i}")).await;
        assert_eq!(got, *hint, "case {i}");
    }
    let counted = gw
        .metric(r#"hookwall_signature_diagnosis_total{route="acme",hint="crlf_to_lf"}"#)
        .await;
    assert_eq!(counted, 1.0);
}

/// A URL-signing scheme whose provider was configured with `http://` while `public_url`
/// says `https://`.
#[tokio::test]
async fn a_public_url_mismatch_is_named() {
    let up = Upstream::start().await;
    let route = named_route(
        &up.url(),
        "signed-url",
        "public_url = \"https://hooks.example.com/webhooks/signed-url\"",
    )
    .replace(
        "payload = \"{timestamp}.{body}\"",
        "payload = \"{timestamp}.{url}{body}\"",
    );
    let gw = TestGateway::start(&config_with("", "", &route)).await;
    let body = b"{}";
    let ts = NOW.to_string();
    let wrong_url = "http://hooks.example.com/webhooks/signed-url";
    let sig = hmac_hex(SECRET, &[ts.as_bytes(), b".", wrong_url.as_bytes(), body]);
    let headers = vec![
        ("X-Sig".to_owned(), format!("sha256={sig}")),
        ("X-Ts".to_owned(), ts),
        ("X-Delivery".to_owned(), "u1".to_owned()),
    ];
    let answer = post(&gw.url("/webhooks/signed-url"), &headers, body).await;
    assert_eq!(reason(&answer), "invalid_signature");
    let e = entries(&gw, "reason=invalid_signature", 1).await;
    assert_eq!(e[0]["diagnosis"], "public_url_mismatch");
}

/// Milliseconds where seconds are signed: the signature is valid, the timestamp is far in
/// the future, and the diagnosis says why.
#[tokio::test]
async fn milliseconds_for_seconds_are_named() {
    let (_up, gw) = setup("").await;
    let headers = signed(b"{}", NOW * 1000, "ms1");
    let answer = post(&gw.url("/webhooks/acme"), &headers, b"{}").await;
    assert_eq!(reason(&answer), "timestamp_out_of_window");
    let e = entries(&gw, "reason=timestamp_out_of_window", 1).await;
    assert_eq!(e[0]["diagnosis"], "timestamp_unit");
}
