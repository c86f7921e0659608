//! Attestation (CONTRACT §12): what reaches the upstream carries Standard Webhooks headers
//! hookwall signed, which the app verifies the way the official `standardwebhooks`
//! libraries do: on forwarded deliveries, replays and queued attempts, through a rotation.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::support::*;

// The keys of the frozen vectors in src/attest.rs (made with the official Python library).
const CURRENT: &str = "whsec_aG9va3dhbGwtYXR0ZXN0LWN1cnJlbnQta2V5LTAwMDE=";
const PREVIOUS: &str = "whsec_aG9va3dhbGwtYXR0ZXN0LXByZXZpb3VzLWtleS0wMDI=";
const UNRELATED: &str = "whsec_dW5yZWxhdGVkLWtleS1ub2JvZHktaGFzLWl0LTAw";

/// What the app does with `standardwebhooks` (`Webhook(secret).verify(body, headers)`):
/// strip `whsec_`, base64-decode the key, HMAC-SHA256 `{id}.{timestamp}.{body}` and accept
/// when any `v1,` signature in the header matches. Written here, independently of
/// hookwall's code. The timestamp tolerance is the library's 5 minutes around `now`.
fn app_verifies(secret: &str, headers: &http::HeaderMap, body: &[u8], now: i64) -> bool {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(id), Some(ts), Some(sigs)) = (
        text("webhook-id"),
        text("webhook-timestamp"),
        text("webhook-signature"),
    ) else {
        return false;
    };
    let Ok(ts_n) = ts.parse::<i64>() else {
        return false;
    };
    if (now - ts_n).abs() > 300 {
        return false;
    }
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(body);
    let expected = STANDARD.encode(mac.finalize().into_bytes());
    sigs.split(' ')
        .filter_map(|s| s.strip_prefix("v1,"))
        .any(|s| s == expected)
}

fn attest_table(keys: &str) -> String {
    format!("attest = {{ {keys} }}")
}

/// A forwarded delivery verifies with the attest key, as the delivery id, at the gateway's
/// clock; a tampered body, another key, or an old timestamp does not.
#[tokio::test]
async fn forwarded_delivery_verifies_and_a_tampered_body_does_not() {
    let (up, gw) = setup(&attest_table(&format!(
        "secret = {{ value = {CURRENT:?} }}"
    )))
    .await;
    let body = br#"{"id":"evt_1","type":"invoice.paid"}"#;
    let answer = post(
        &gw.url("/webhooks/acme"),
        &signed(body, NOW, "evt-a1"),
        body,
    )
    .await;
    assert_eq!(answer.0, 200, "{}", answer.2);
    let seen = &up.seen()[0];
    assert_eq!(seen.headers["webhook-id"], "evt-a1", "the delivery id");
    assert_eq!(seen.headers["webhook-timestamp"], NOW.to_string().as_str());
    assert!(app_verifies(CURRENT, &seen.headers, &seen.body, NOW));
    assert!(!app_verifies(
        CURRENT,
        &seen.headers,
        br#"{"id":"evt_1","type":"invoice.paid","x":1}"#,
        NOW
    ));
    assert!(!app_verifies(UNRELATED, &seen.headers, &seen.body, NOW));
    assert!(!app_verifies(CURRENT, &seen.headers, &seen.body, NOW + 301));
    // The provider's own signature still goes upstream (no strip_signature).
    assert!(seen.headers.contains_key("x-sig"));
}

/// A route in shadow mode forwards a request whose signature failed, but hookwall does not
/// attest it: the app must be able to refuse what hookwall did not verify.
#[tokio::test]
async fn shadow_mode_never_attests_what_failed_verification() {
    let (up, gw) = setup(&format!(
        "enforce = false\n{}",
        attest_table(&format!("secret = {{ value = {CURRENT:?} }}"))
    ))
    .await;
    let body = br#"{"id":"evt_forged"}"#;
    let mut headers = signed(body, NOW, "evt-forged");
    for (name, value) in headers.iter_mut() {
        if name.eq_ignore_ascii_case("x-sig") {
            *value = format!("sha256={}", "0".repeat(64));
        }
    }
    let answer = post(&gw.url("/webhooks/acme"), &headers, body).await;
    assert_eq!(answer.0, 200, "{}", answer.2);
    let good = br#"{"id":"evt_real"}"#;
    let answer = post(
        &gw.url("/webhooks/acme"),
        &signed(good, NOW, "evt-real"),
        good,
    )
    .await;
    assert_eq!(answer.0, 200, "{}", answer.2);
    let seen = up.seen();
    let forged = seen.iter().find(|s| s.body == body[..]).unwrap();
    assert_eq!(
        forged.headers["x-hookwall-would-reject"],
        "invalid_signature"
    );
    assert!(!forged.headers.contains_key("webhook-signature"));
    assert!(!app_verifies(CURRENT, &forged.headers, &forged.body, NOW));
    let real = seen.iter().find(|s| s.body == good[..]).unwrap();
    assert!(app_verifies(CURRENT, &real.headers, &real.body, NOW));
}

/// Without a delivery id, `webhook-id` is the request id (what the gateway answered).
#[tokio::test]
async fn without_dedup_the_request_id_is_the_message_id() {
    let (up, gw) = setup(&format!(
        "dedup = false\n{}",
        attest_table(&format!("secret = {{ value = {CURRENT:?} }}"))
    ))
    .await;
    let body = br#"{"n":2}"#;
    let answer = post(&gw.url("/webhooks/acme"), &signed(body, NOW, "x"), body).await;
    assert_eq!(answer.0, 200, "{}", answer.2);
    let seen = &up.seen()[0];
    assert_eq!(seen.headers["webhook-id"], seen.headers["x-request-id"]);
    assert!(app_verifies(CURRENT, &seen.headers, &seen.body, NOW));
}

/// During a rotation (`[server] attest` with the new key and the previous one) every
/// delivery carries both signatures: an app still on the old key and one already on the
/// new key both verify; a key hookwall does not hold verifies nothing.
#[tokio::test]
async fn rotation_with_two_keys_verifies_for_either_key() {
    let up = Upstream::start().await;
    let server = format!(
        "attest = {{ secret = {{ value = {CURRENT:?} }}, previous = [{{ value = {PREVIOUS:?} }}] }}"
    );
    let gw = TestGateway::start(&config_with(&server, "", &standard_route(&up.url(), ""))).await;
    let body = br#"{"rotate":true}"#;
    let answer = post(&gw.url("/webhooks/acme"), &signed(body, NOW, "evt-r"), body).await;
    assert_eq!(answer.0, 200, "{}", answer.2);
    let seen = &up.seen()[0];
    let sigs = seen.headers["webhook-signature"].to_str().unwrap();
    assert_eq!(sigs.split(' ').count(), 2, "{sigs}");
    assert!(app_verifies(CURRENT, &seen.headers, &seen.body, NOW));
    assert!(app_verifies(PREVIOUS, &seen.headers, &seen.body, NOW));
    assert!(!app_verifies(UNRELATED, &seen.headers, &seen.body, NOW));
}

/// A replay is signed afresh (same id, the time of the replay), and so is every queued
/// attempt.
#[tokio::test]
async fn replays_and_queued_attempts_are_attested() {
    let table = attest_table(&format!("secret = {{ value = {CURRENT:?} }}"));
    let (up, gw) = setup(&table).await;
    up.answer(500, Duration::ZERO);
    let body = br#"{"id":"lost"}"#;
    assert_eq!(
        post(
            &gw.url("/webhooks/acme"),
            &signed(body, NOW, "lost-a"),
            body
        )
        .await
        .0,
        500
    );
    up.answer(200, Duration::ZERO);
    let mut entry = None;
    for _ in 0..200 {
        let list = get(&gw.admin_url("/deliveries?dedup_id=lost-a"), &[]).await;
        let v: serde_json::Value = serde_json::from_str(&list.2).unwrap();
        if let Some(id) = v["deliveries"][0]["id"].as_str() {
            entry = Some(id.to_owned());
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let entry = entry.expect("the journal entry");
    gw.clock.set(NOW + 60);
    let replay = post(
        &gw.admin_url(&format!("/deliveries/{entry}/replay")),
        &[],
        b"",
    )
    .await;
    assert_eq!(replay.0, 200, "{}", replay.2);
    let replayed = up.seen().last().unwrap().clone();
    assert_eq!(replayed.headers["webhook-id"], "lost-a");
    assert_eq!(
        replayed.headers["webhook-timestamp"],
        (NOW + 60).to_string().as_str()
    );
    assert!(app_verifies(CURRENT, &replayed.headers, body, NOW + 60));

    let up = Upstream::start().await;
    let gw = TestGateway::start(&config_with(
        "",
        "",
        &standard_route(&up.url(), &format!(
            "delivery = \"buffered\"\nretry = {{ initial = \"100ms\", max_delay = \"200ms\" }}\n{table}"
        )),
    ))
    .await;
    up.answer(503, Duration::ZERO);
    let body = br#"{"id":"queued"}"#;
    let answer = post(&gw.url("/webhooks/acme"), &signed(body, NOW, "q-a"), body).await;
    assert_eq!(answer.0, 202, "{}", answer.2);
    wait_until(|| up.hits() >= 1).await;
    up.answer(200, Duration::ZERO);
    wait_until(|| {
        up.seen()
            .iter()
            .any(|s| s.headers["x-hookwall-attempt"] == "2")
    })
    .await;
    for seen in up.seen() {
        assert_eq!(
            seen.headers["webhook-id"], "q-a",
            "the same id every attempt"
        );
        assert!(app_verifies(CURRENT, &seen.headers, &seen.body, NOW));
    }
}

/// A Standard Webhooks provider's own `webhook-*` headers would collide with hookwall's:
/// the app gets hookwall's, and the provider's under `X-Hookwall-Provider-Webhook-*`.
#[tokio::test]
async fn a_standard_webhooks_providers_headers_move_aside() {
    const PROVIDER_KEY: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let up = Upstream::start().await;
    let route = preset_route(
        &up,
        "standard-webhooks",
        PROVIDER_KEY,
        &attest_table(&format!("secret = {{ value = {CURRENT:?} }}")),
    );
    let gw = TestGateway::start(&config_with("", "", &route)).await;
    let body = br#"{"type":"user.created"}"#;
    let key = STANDARD.decode(&PROVIDER_KEY[6..]).unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("msg_provider.{NOW}.").as_bytes());
    mac.update(body);
    let provider_sig = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    let headers = vec![
        ("webhook-id".to_owned(), "msg_provider".to_owned()),
        ("webhook-timestamp".to_owned(), NOW.to_string()),
        ("webhook-signature".to_owned(), provider_sig.clone()),
    ];
    let answer = post(&gw.url("/standard-webhooks"), &headers, body).await;
    assert_eq!(answer.0, 200, "{}", answer.2);
    let seen = &up.seen()[0];
    assert!(app_verifies(CURRENT, &seen.headers, &seen.body, NOW));
    assert!(!app_verifies(PROVIDER_KEY, &seen.headers, &seen.body, NOW));
    assert_eq!(
        seen.headers["x-hookwall-provider-webhook-signature"],
        provider_sig.as_str()
    );
    assert_eq!(
        seen.headers["x-hookwall-provider-webhook-id"],
        "msg_provider"
    );
    assert_eq!(seen.headers.get_all("webhook-signature").iter().count(), 1);
}

/// The official Python library verifies hookwall's real headers, when it is installed
/// (`pip install standardwebhooks`); the same check in Rust above runs everywhere.
#[tokio::test]
async fn the_official_python_library_verifies_the_forwarded_headers() {
    let available = std::process::Command::new("python3")
        .args(["-c", "import standardwebhooks"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !available {
        eprintln!("standardwebhooks (Python) is not installed: only the Rust check ran");
        return;
    }
    let (up, gw) = setup(&attest_table(&format!(
        "secret = {{ value = {CURRENT:?} }}"
    )))
    .await;
    // The library judges the timestamp against the real clock.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    gw.clock.set(now);
    let body = br#"{"id":"evt_py","type":"invoice.paid"}"#;
    let answer = post(
        &gw.url("/webhooks/acme"),
        &signed(body, now, "evt-py"),
        body,
    )
    .await;
    assert_eq!(answer.0, 200, "{}", answer.2);
    let seen = up.seen()[0].clone();
    let header = |n: &str| seen.headers[n].to_str().unwrap().to_owned();
    let script = r#"
import sys
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
secret, body, tampered, wid, ts, sig = sys.argv[1:7]
headers = {"webhook-id": wid, "webhook-timestamp": ts, "webhook-signature": sig}
Webhook(secret).verify(body, headers)
try:
    Webhook(secret).verify(tampered, headers)
    sys.exit("a tampered body verified")
except WebhookVerificationError:
    pass
print("ok")
"#;
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            script,
            CURRENT,
            std::str::from_utf8(&seen.body).unwrap(),
            r#"{"id":"evt_py","type":"invoice.refunded"}"#,
            &header("webhook-id"),
            &header("webhook-timestamp"),
            &header("webhook-signature"),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stdout.starts_with(b"ok"),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
