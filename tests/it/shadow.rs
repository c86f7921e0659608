//! Shadow mode (CONTRACT §12): `enforce = false` runs every check but forwards anyway with
//! `X-Hookwall-Would-Reject: <reason>`, counted in `hookwall_shadow_rejections_total`
//! (not in `hookwall_rejections_total`) and journaled; a reload to `enforce = true`
//! enforces at once.

use std::io::Write;
use std::time::Duration;

use crate::journal::entries;
use crate::support::*;

async fn shadow(extra: &str) -> (Upstream, TestGateway) {
    setup(&format!("enforce = false\n{extra}")).await
}

fn shadow_count(reason: &str) -> String {
    format!(r#"hookwall_shadow_rejections_total{{route="acme",reason="{reason}"}}"#)
}

fn rejection_count(reason: &str) -> String {
    format!(r#"hookwall_rejections_total{{route="acme",reason="{reason}"}}"#)
}

/// The header the upstream got on its `i`-th request.
fn would_reject(up: &Upstream, i: usize) -> Option<String> {
    up.seen()[i]
        .headers
        .get("x-hookwall-would-reject")
        .map(|v| v.to_str().unwrap().to_owned())
}

/// Forwarded (the upstream's answer back), marked with `reason`, counted once as a shadow
/// rejection and never as a rejection.
async fn assert_shadowed(up: &Upstream, gw: &TestGateway, answer: &Answer, reason: &str) {
    assert_eq!(
        (answer.0, answer.2.as_str()),
        (200, "upstream-ok"),
        "{reason}"
    );
    let last = up.seen().len() - 1;
    assert_eq!(would_reject(up, last).as_deref(), Some(reason));
    assert_eq!(gw.metric(&shadow_count(reason)).await, 1.0, "{reason}");
    assert_eq!(gw.metric(&rejection_count(reason)).await, 0.0, "{reason}");
}

#[tokio::test]
async fn a_passing_delivery_carries_no_mark() {
    let (up, gw) = shadow("").await;
    let body = br#"{"id":"ok"}"#;
    let answer = post(&gw.url("/webhooks/acme"), &signed(body, NOW, "ok"), body).await;
    assert_eq!(answer.2, "upstream-ok");
    assert_eq!(would_reject(&up, 0), None);
    assert_eq!(up.seen()[0].headers["x-hookwall-verified"], "generic");
}

#[tokio::test]
async fn ip_not_allowed_and_rate_limited_are_forwarded_and_counted() {
    let (up, gw) = shadow("allow_ips = [\"203.0.113.0/24\"]").await;
    let body = b"{}";
    let answer = post(&gw.url("/webhooks/acme"), &signed(body, NOW, "ip1"), body).await;
    assert_shadowed(&up, &gw, &answer, "ip_not_allowed").await;
    // The signature did verify: the upstream is told so.
    assert_eq!(up.seen()[0].headers["x-hookwall-verified"], "generic");

    let (up, gw) = shadow("rate_limit = { per_minute = 1 }").await;
    let first = post(&gw.url("/webhooks/acme"), &signed(body, NOW, "rl1"), body).await;
    assert_eq!(first.2, "upstream-ok");
    assert_eq!(would_reject(&up, 0), None);
    let second = post(&gw.url("/webhooks/acme"), &signed(body, NOW, "rl2"), body).await;
    assert_shadowed(&up, &gw, &second, "rate_limited").await;
}

/// A request that failed its signature or window is forwarded without
/// `X-Hookwall-Verified`, and touches no dedup state: the real delivery with the same id
/// is forwarded unmarked afterwards.
#[tokio::test]
async fn signature_and_timestamp_failures_are_forwarded_unverified_and_burn_no_id() {
    let (up, gw) = shadow("").await;
    let body = br#"{"id":"s1"}"#;
    let missing = post(
        &gw.url("/webhooks/acme"),
        &[("X-Delivery".into(), "s0".into())],
        body,
    )
    .await;
    assert_shadowed(&up, &gw, &missing, "missing_signature").await;
    assert!(!up.seen()[0].headers.contains_key("x-hookwall-verified"));

    let forged = signed_with("not-the-secret", body, NOW, "s1");
    let invalid = post(&gw.url("/webhooks/acme"), &forged, body).await;
    assert_shadowed(&up, &gw, &invalid, "invalid_signature").await;
    assert!(!up.seen()[1].headers.contains_key("x-hookwall-verified"));

    let stale = post(
        &gw.url("/webhooks/acme"),
        &signed(body, NOW - 3600, "s2"),
        body,
    )
    .await;
    assert_shadowed(&up, &gw, &stale, "timestamp_out_of_window").await;
    assert!(!up.seen()[2].headers.contains_key("x-hookwall-verified"));

    // Neither forgery nor stale copy claimed the ids.
    for id in ["s1", "s2"] {
        let real = post(&gw.url("/webhooks/acme"), &signed(body, NOW, id), body).await;
        assert_eq!(real.2, "upstream-ok");
        let last = up.seen().len() - 1;
        assert_eq!(would_reject(&up, last), None, "{id}");
    }
    assert_eq!(gw.metric(&shadow_count("duplicate")).await, 0.0);
}

#[tokio::test]
async fn a_missing_dedup_key_is_forwarded_without_dedup() {
    let (up, gw) = shadow("").await;
    let body = b"{}";
    let mut headers = signed(body, NOW, "unused");
    headers.retain(|(k, _)| k != "X-Delivery");
    let answer = post(&gw.url("/webhooks/acme"), &headers, body).await;
    assert_shadowed(&up, &gw, &answer, "missing_dedup_key").await;
}

/// A duplicate is forwarded, marked, and leaves the delivered mark alone; an id in flight
/// is forwarded without releasing or committing the other attempt's reservation.
#[tokio::test]
async fn duplicates_and_in_flight_ids_are_forwarded_without_touching_the_other_attempt() {
    let (up, gw) = shadow("").await;
    let body = br#"{"id":"d1"}"#;
    let url = gw.url("/webhooks/acme");
    assert_eq!(
        post(&url, &signed(body, NOW, "d1"), body).await.2,
        "upstream-ok"
    );
    let again = post(&url, &signed(body, NOW, "d1"), body).await;
    assert_shadowed(&up, &gw, &again, "duplicate").await;
    assert_eq!(
        gw.metric(r#"hookwall_requests_total{route="acme",outcome="duplicate"}"#)
            .await,
        0.0
    );

    // The first attempt of f1 holds its reservation while the upstream is slow.
    up.answer(200, Duration::from_millis(600));
    let slow = tokio::spawn({
        let url = url.clone();
        async move { post(&url, &signed(b"{}", NOW, "f1"), b"{}").await }
    });
    wait_until(|| up.hits() == 3).await;
    up.answer(500, Duration::ZERO);
    let during = post(&url, &signed(b"{}", NOW, "f1"), b"{}").await;
    assert_eq!(during.0, 500, "the upstream's own answer comes back");
    assert_eq!(would_reject(&up, 3).as_deref(), Some("in_flight"));
    assert_eq!(gw.metric(&shadow_count("in_flight")).await, 1.0);
    up.answer(200, Duration::ZERO);
    assert_eq!(slow.await.unwrap().2, "upstream-ok");
    // The in-flight copy's 500 did not release f1, and the first attempt's 2xx committed
    // it: the next copy is a duplicate.
    post(&url, &signed(b"{}", NOW, "f1"), b"{}").await;
    assert_eq!(would_reject(&up, 4).as_deref(), Some("duplicate"));
}

#[tokio::test]
async fn an_unwanted_event_is_forwarded_marked_ignored() {
    let (up, gw) = shadow("event = \"json:/type\"\nevents = [\"invoice.*\"]").await;
    let body = br#"{"type":"customer.created"}"#;
    let answer = post(&gw.url("/webhooks/acme"), &signed(body, NOW, "i1"), body).await;
    assert_shadowed(&up, &gw, &answer, "ignored").await;
    assert_eq!(
        gw.metric(r#"hookwall_requests_total{route="acme",outcome="ignored"}"#)
            .await,
        0.0
    );
}

/// Beyond the cap there is no whole body to forward: answered as usual.
#[tokio::test]
async fn a_body_beyond_the_cap_is_still_refused() {
    let (up, gw) = shadow("max_body = \"16\"").await;
    let body = [b'x'; 64];
    let answer = post(&gw.url("/webhooks/acme"), &signed(&body, NOW, "big"), &body).await;
    assert_eq!(
        (answer.0, reason(&answer).as_str()),
        (413, "body_too_large")
    );
    assert_eq!(up.hits(), 0);
    assert_eq!(gw.metric(&rejection_count("body_too_large")).await, 1.0);
}

#[tokio::test]
async fn the_journal_marks_shadow_decisions() {
    let (_up, gw) = shadow("").await;
    let body = br#"{"id":"j1"}"#;
    let forged = signed_with("not-the-secret", body, NOW, "j1");
    post(&gw.url("/webhooks/acme"), &forged, body).await;
    let listed = entries(&gw, "route=acme", 1).await;
    assert_eq!(listed[0]["outcome"], "forwarded");
    assert_eq!(listed[0]["would_reject"], "invalid_signature");
    assert_eq!(listed[0]["verified"], false);
    let real = post(&gw.url("/webhooks/acme"), &signed(body, NOW, "j2"), body).await;
    assert_eq!(real.2, "upstream-ok");
    let listed = entries(&gw, "route=acme", 2).await;
    assert!(listed[0].get("would_reject").is_none(), "{}", listed[0]);
    assert_eq!(listed[0]["verified"], true);
}

/// `enforce = true` on reload: the next forged request is refused.
#[tokio::test]
async fn enforce_true_on_reload_enforces_at_once() {
    let up = Upstream::start().await;
    let text = |extra: &str| config_with("", "", &standard_route(&up.url(), extra));
    let mut f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    f.write_all(text("enforce = false").as_bytes()).unwrap();
    let cfg = hookwall::config::compile_file(f.path()).unwrap();
    let stores = hookwall::dedup::build(&cfg.dedup).unwrap();
    let gw = TestGateway::start_with(cfg, stores).await;
    let body = b"{}";
    let forged = signed_with("not-the-secret", body, NOW, "r1");
    assert_eq!(
        post(&gw.url("/webhooks/acme"), &forged, body).await.2,
        "upstream-ok"
    );

    std::fs::write(f.path(), text("enforce = true")).unwrap();
    let reloaded = post(&gw.admin_url("/reload"), &[], b"").await;
    assert_eq!(reloaded.0, 200, "{}", reloaded.2);
    let refused = post(&gw.url("/webhooks/acme"), &forged, body).await;
    assert_eq!(
        (refused.0, reason(&refused).as_str()),
        (401, "invalid_signature")
    );
    assert_eq!(up.hits(), 1);
    assert_eq!(gw.metric(&rejection_count("invalid_signature")).await, 1.0);
    assert_eq!(gw.metric(&shadow_count("invalid_signature")).await, 1.0);
}

/// On a buffered route the decision is kept with the queued delivery: every attempt carries
/// it, and the journal marks both the acceptance and the attempt.
#[tokio::test]
async fn a_buffered_route_carries_the_decision_to_its_attempts() {
    let (up, gw) = shadow("delivery = \"buffered\"").await;
    let body = br#"{"id":"q1"}"#;
    let forged = signed_with("not-the-secret", body, NOW, "q1");
    let answer = post(&gw.url("/webhooks/acme"), &forged, body).await;
    assert_eq!(answer.0, 202, "{}", answer.2);
    wait_until(|| up.hits() == 1).await;
    assert_eq!(would_reject(&up, 0).as_deref(), Some("invalid_signature"));
    assert!(!up.seen()[0].headers.contains_key("x-hookwall-verified"));
    assert_eq!(up.seen()[0].headers["x-hookwall-attempt"], "1");
    assert_eq!(gw.metric(&shadow_count("invalid_signature")).await, 1.0);
    let listed = entries(&gw, "route=acme", 2).await;
    assert!(
        listed
            .iter()
            .all(|e| e["would_reject"] == "invalid_signature"),
        "{listed:?}"
    );

    // A verified delivery on the same route is queued and delivered unmarked.
    let real = post(&gw.url("/webhooks/acme"), &signed(body, NOW, "q2"), body).await;
    assert_eq!(real.0, 202);
    wait_until(|| up.hits() == 2).await;
    assert_eq!(would_reject(&up, 1), None);
    assert_eq!(up.seen()[1].headers["x-hookwall-verified"], "generic");
}

/// A dedup store that does not answer (`on_store_error = "reject"`, the default) would
/// answer `503 dedup_unavailable`: forwarded instead, nothing settled.
#[tokio::test]
async fn an_unreachable_dedup_store_is_forwarded_marked() {
    let up = Upstream::start().await;
    let redis = format!(
        "store = \"redis\"\nredis_url = \"redis://{}\"\ncall_timeout = \"250ms\"",
        dead_port().await
    );
    let gw = TestGateway::start(&config_with(
        "",
        &redis,
        &standard_route(&up.url(), "enforce = false"),
    ))
    .await;
    let body = b"{}";
    let answer = post(&gw.url("/webhooks/acme"), &signed(body, NOW, "u1"), body).await;
    assert_shadowed(&up, &gw, &answer, "dedup_unavailable").await;
    assert!(
        gw.metric(r#"hookwall_dedup_store_errors_total{route="acme"}"#)
            .await
            >= 1.0
    );
}

/// A signed provider challenge is answered by hookwall in shadow mode too (the provider
/// expects that answer); one whose signature failed goes to the app instead of being
/// answered in the provider's name.
#[tokio::test]
async fn a_signed_handshake_is_answered_only_when_its_signature_verifies() {
    let up = Upstream::start().await;
    let gw = TestGateway::start(&config_with(
        "",
        "",
        &preset_route(&up, "slack", "slack-secret", "enforce = false"),
    ))
    .await;
    let body = br#"{"token":"t","challenge":"c-123","type":"url_verification"}"#;
    let ts = NOW.to_string();
    let slack = |secret: &str| {
        let sig = hmac_hex(secret, &[b"v0:", ts.as_bytes(), b":", body]);
        vec![
            ("X-Slack-Request-Timestamp".to_owned(), ts.clone()),
            ("X-Slack-Signature".to_owned(), format!("v0={sig}")),
        ]
    };
    let answered = post(&gw.url("/slack"), &slack("slack-secret"), body).await;
    assert_eq!(answered.0, 200);
    assert!(answered.2.contains("c-123"), "{}", answered.2);
    assert_eq!(up.hits(), 0);

    let forged = post(&gw.url("/slack"), &slack("wrong"), body).await;
    assert_eq!(forged.2, "upstream-ok");
    assert_eq!(would_reject(&up, 0).as_deref(), Some("invalid_signature"));
}
