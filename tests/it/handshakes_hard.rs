//! The control requests of Meta, X, Dropbox, Asana, Okta and Microsoft Graph through a real
//! gateway: each answered exactly as the provider documents it, only for the configured
//! secret or token, never forwarded; and the deliveries after them verified.

use crate::presets_hard::{s, vectors};
use crate::support::*;

fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

async fn gateway(routes: &str) -> TestGateway {
    TestGateway::start(&config_with("", "", routes)).await
}

#[tokio::test]
async fn meta_verification_answers_the_challenge_only_for_the_verify_token() {
    let up = Upstream::start().await;
    let v = vectors();
    let gw = gateway(&preset_route(
        &up,
        "meta",
        s(&v, "/meta/secret"),
        "meta = { verify_token = { value = \"meta-verify-token-42\" } }",
    ))
    .await;
    let ok = get(
        &gw.url("/meta?hub.mode=subscribe&hub.verify_token=meta-verify-token-42&hub.challenge=1158201444"),
        &[],
    )
    .await;
    assert_eq!((ok.0, ok.2.as_str()), (200, "1158201444"));
    assert_eq!(ok.1["content-type"], "text/plain");
    assert_eq!(ok.1["x-content-type-options"], "nosniff");
    let wrong = get(
        &gw.url("/meta?hub.mode=subscribe&hub.verify_token=meta-verify-token-43&hub.challenge=1158201444"),
        &[],
    )
    .await;
    assert_eq!(
        (wrong.0, reason(&wrong).as_str()),
        (403, "handshake_refused")
    );
    assert!(!wrong.2.contains("1158201444"));
    let none = get(&gw.url("/meta?hub.mode=subscribe&hub.challenge=1"), &[]).await;
    assert_eq!(none.0, 403);
    // Not a verification request: a GET like any other needs a signature.
    let plain = get(&gw.url("/meta"), &[]).await;
    assert_eq!(
        (plain.0, reason(&plain).as_str()),
        (401, "missing_signature")
    );
    // The delivery itself.
    let delivery = post(
        &gw.url("/meta"),
        &h(&[("X-Hub-Signature-256", s(&v, "/meta/sig"))]),
        s(&v, "/meta/body").as_bytes(),
    )
    .await;
    assert_eq!(delivery.0, 200);
    assert_eq!(up.hits(), 1, "only the delivery reached the upstream");
}

#[tokio::test]
async fn meta_without_a_verify_token_refuses_every_verification() {
    let up = Upstream::start().await;
    let gw = gateway(&preset_route(&up, "meta", "app-secret", "")).await;
    let r = get(
        &gw.url("/meta?hub.mode=subscribe&hub.verify_token=&hub.challenge=1"),
        &[],
    )
    .await;
    assert_eq!((r.0, reason(&r).as_str()), (403, "handshake_refused"));
}

#[tokio::test]
async fn x_crc_is_answered_with_the_hmac_of_the_token() {
    let up = Upstream::start().await;
    let v = vectors();
    let gw = gateway(&preset_route(&up, "x", s(&v, "/x/secret"), "")).await;
    let crc = s(&v, "/x/crc");
    let r = get(&gw.url(&format!("/x?crc_token={crc}")), &[]).await;
    assert_eq!(r.0, 200);
    let body: serde_json::Value = serde_json::from_str(&r.2).unwrap();
    assert_eq!(
        body,
        serde_json::json!({ "response_token": s(&v, "/x/response_token") })
    );
    // Another secret answers another token: the provider would refuse the endpoint.
    let other = gateway(&preset_route(&up, "x", "other-consumer-secret", "")).await;
    let r2 = get(&other.url(&format!("/x?crc_token={crc}")), &[]).await;
    assert_ne!(
        serde_json::from_str::<serde_json::Value>(&r2.2).unwrap()["response_token"],
        s(&v, "/x/response_token")
    );
    // A token that is a JSON document would get a delivery body signed on request.
    let body_json = s(&v, "/x/body");
    let oracle = get(
        &gw.url(&format!(
            "/x?crc_token={}",
            form_urlencoded::byte_serialize(body_json.as_bytes()).collect::<String>()
        )),
        &[],
    )
    .await;
    assert_eq!(
        (oracle.0, reason(&oracle).as_str()),
        (403, "handshake_refused")
    );
    let delivery = post(
        &gw.url("/x"),
        &h(&[("x-twitter-webhooks-signature", s(&v, "/x/sig"))]),
        body_json.as_bytes(),
    )
    .await;
    assert_eq!(delivery.0, 200);
    assert_eq!(up.hits(), 1);
}

#[tokio::test]
async fn dropbox_challenge_is_echoed_as_plain_text() {
    let up = Upstream::start().await;
    let v = vectors();
    let gw = gateway(&preset_route(&up, "dropbox", s(&v, "/dropbox/secret"), "")).await;
    let r = get(&gw.url("/dropbox?challenge=hGZ3a2Jz0z8Fh4dX"), &[]).await;
    assert_eq!((r.0, r.2.as_str()), (200, "hGZ3a2Jz0z8Fh4dX"));
    assert_eq!(r.1["content-type"], "text/plain");
    assert_eq!(r.1["x-content-type-options"], "nosniff");
    let huge = get(
        &gw.url(&format!("/dropbox?challenge={}", "a".repeat(2000))),
        &[],
    )
    .await;
    assert_eq!(huge.0, 403);
    let delivery = post(
        &gw.url("/dropbox"),
        &h(&[("X-Dropbox-Signature", s(&v, "/dropbox/sig"))]),
        s(&v, "/dropbox/body").as_bytes(),
    )
    .await;
    assert_eq!(delivery.0, 200);
    let forged = post(
        &gw.url("/dropbox"),
        &h(&[("X-Dropbox-Signature", s(&v, "/dropbox/sig"))]),
        b"{}",
    )
    .await;
    assert_eq!(
        (forged.0, reason(&forged).as_str()),
        (401, "invalid_signature")
    );
    assert_eq!(up.hits(), 1);
}

#[tokio::test]
async fn graph_validation_token_is_echoed_and_notifications_need_the_client_state() {
    let up = Upstream::start().await;
    let gw = gateway(&preset_route(
        &up,
        "microsoft-graph",
        "secretClientValue",
        "",
    ))
    .await;
    let r = post(&gw.url("/microsoft-graph?validationToken=Validation%3A%20Testing%20client%20application%20reachability%20for%20subscription%20Request-Id%3A%2025b0a4e3"), &[], b"").await;
    assert_eq!(r.0, 200);
    assert_eq!(
        r.2,
        "Validation: Testing client application reachability for subscription Request-Id: 25b0a4e3"
    );
    assert_eq!(r.1["content-type"], "text/plain");
    let note = br#"{"value":[{"subscriptionId":"s1","clientState":"secretClientValue","changeType":"created","resource":"Users/a/Messages/b"}]}"#;
    assert_eq!(post(&gw.url("/microsoft-graph"), &[], note).await.0, 200);
    let forged =
        br#"{"value":[{"subscriptionId":"s1","clientState":"guess","changeType":"created"}]}"#;
    let f = post(&gw.url("/microsoft-graph"), &[], forged).await;
    assert_eq!((f.0, reason(&f).as_str()), (401, "invalid_signature"));
    assert_eq!(up.hits(), 1);
}

#[tokio::test]
async fn okta_verification_needs_the_authorization_value() {
    let up = Upstream::start().await;
    let gw = gateway(&preset_route(&up, "okta", "okta-hook-secret-value", "")).await;
    let challenge = "X8Fpe0iK1VsQ9aFZyPXkNw1rXTNd0jb7WiR6nv0ydD4";
    let ok = get(
        &gw.url("/okta"),
        &h(&[
            ("x-okta-verification-challenge", challenge),
            ("Authorization", "okta-hook-secret-value"),
        ]),
    )
    .await;
    assert_eq!(ok.0, 200);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&ok.2).unwrap(),
        serde_json::json!({ "verification": challenge })
    );
    for auth in [None, Some("okta-hook-secret-valuE")] {
        let mut headers = h(&[("x-okta-verification-challenge", challenge)]);
        if let Some(a) = auth {
            headers.push(("Authorization".into(), a.into()));
        }
        let r = get(&gw.url("/okta"), &headers).await;
        assert_eq!(
            (r.0, reason(&r).as_str()),
            (403, "handshake_refused"),
            "{auth:?}"
        );
        assert!(!r.2.contains(challenge));
    }
    let event = br#"{"eventType":"com.okta.event_hook","eventId":"b5a188b9","data":{"events":[{"eventType":"user.session.start"}]}}"#;
    let d = post(
        &gw.url("/okta"),
        &h(&[("Authorization", "okta-hook-secret-value")]),
        event,
    )
    .await;
    assert_eq!(d.0, 200);
    assert_eq!(up.hits(), 1);
}

#[tokio::test]
async fn asana_handshake_is_taken_once_stored_0600_and_signs_what_follows() {
    let up = Upstream::start().await;
    let v = vectors();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("asana.secret");
    let route = format!(
        "[[route]]\nname = \"asana\"\npath = \"/asana\"\nupstream = \"{}/hooks\"\nprovider = \"asana\"\nsecrets = [{{ file = {:?} }}]\ntimeout = \"2s\"\n",
        up.url(),
        file.display().to_string()
    );
    let config = config_with("", "", &route);
    let gw = gateway(&route).await;
    let (secret, body, sig) = (
        s(&v, "/asana/secret"),
        s(&v, "/asana/body"),
        s(&v, "/asana/sig"),
    );
    // Before the handshake nothing verifies.
    let early = post(
        &gw.url("/asana"),
        &h(&[("X-Hook-Signature", sig)]),
        body.as_bytes(),
    )
    .await;
    assert_eq!(
        (early.0, reason(&early).as_str()),
        (401, "missing_signature")
    );
    let hs = post(&gw.url("/asana"), &h(&[("X-Hook-Secret", secret)]), b"").await;
    assert_eq!(hs.0, 200);
    assert_eq!(hs.1["x-hook-secret"], secret);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), secret);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    // Used at once.
    let d = post(
        &gw.url("/asana"),
        &h(&[("X-Hook-Signature", sig)]),
        body.as_bytes(),
    )
    .await;
    assert_eq!(d.0, 200);
    // A second handshake cannot take the route over.
    let again = post(
        &gw.url("/asana"),
        &h(&[("X-Hook-Secret", "attacker-chosen")]),
        b"",
    )
    .await;
    assert_eq!(
        (again.0, reason(&again).as_str()),
        (403, "handshake_refused")
    );
    assert!(again.1.get("x-hook-secret").is_none());
    assert_eq!(std::fs::read_to_string(&file).unwrap(), secret);
    // The secret is in no answer, log-visible config or route listing.
    let routes = get(&gw.admin_url("/routes"), &[]).await;
    assert!(!routes.2.contains(secret), "{}", routes.2);
    // A restart (or reload) reads the stored secret back.
    let restarted = TestGateway::start(&config).await;
    let d2 = post(
        &restarted.url("/asana"),
        &h(&[("X-Hook-Signature", sig)]),
        body.as_bytes(),
    )
    .await;
    assert_eq!(d2.0, 200);
    let hs2 = post(
        &restarted.url("/asana"),
        &h(&[("X-Hook-Secret", "attacker-chosen")]),
        b"",
    )
    .await;
    assert_eq!(hs2.0, 403);
    assert_eq!(up.hits(), 2);
}
