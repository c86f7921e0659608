//! Buffered delivery (CONTRACT §10) through a real gateway on SQLite: acceptance (202 once
//! on disk), delivery with `X-Hookwall-Attempt`, backoff and `Retry-After`, dead letters
//! and redrive, `max_age`, fan-out with event filters, `queue_full`.

use std::time::Duration;

use crate::support::*;

/// A buffered acme route; `extra` goes into the route table.
fn buffered(upstream: &str, extra: &str) -> String {
    config_with(
        "",
        "",
        &standard_route(upstream, &format!("delivery = \"buffered\"\n{extra}")),
    )
}

async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

fn json(answer: &Answer) -> serde_json::Value {
    serde_json::from_str(&answer.2).unwrap_or_else(|_| panic!("not JSON: {}", answer.2))
}

/// The provider gets `202 queued` with the delivery id; the upstream gets the exact bytes
/// with `X-Hookwall-Attempt: 1`; the provider's retry is a duplicate; every step is
/// journaled (acceptance, then the attempt with its number and target).
#[tokio::test]
async fn accepted_then_delivered_once_with_the_attempt_number() {
    let up = Upstream::start().await;
    let gw = TestGateway::start(&buffered(&up.url(), "")).await;
    let body = br#"{"id":"q1","n":1}"#;
    let headers = signed(body, NOW, "evt-q1");
    let answer = post(&gw.url("/webhooks/acme"), &headers, body).await;
    assert_eq!(answer.0, 202, "{}", answer.2);
    let v = json(&answer);
    assert_eq!(v["status"], "queued");
    assert_eq!(v["delivery_id"], "evt-q1");
    assert!(v["request_id"].is_string());
    until("the delivery", || up.hits() == 1).await;
    let seen = &up.seen()[0];
    assert_eq!(&seen.body[..], &body[..]);
    assert_eq!(seen.headers["x-hookwall-attempt"], "1");
    assert_eq!(seen.headers["x-hookwall-delivery-id"], "evt-q1");
    assert_eq!(seen.headers["x-hookwall-route"], "acme");
    assert_eq!(seen.headers["x-sig"], headers[0].1.as_str());
    let again = post(&gw.url("/webhooks/acme"), &headers, body).await;
    assert!(again.2.contains("\"status\":\"duplicate\""), "{}", again.2);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(up.hits(), 1, "delivered once");
    assert_eq!(
        gw.metric_reaches(
            r#"hookwall_delivery_attempts_total{route="acme",target="default",result="2xx"}"#,
            1.0
        )
        .await,
        1.0
    );
    assert_eq!(
        gw.metric(r#"hookwall_requests_total{route="acme",outcome="queued"}"#)
            .await,
        1.0
    );
    let entries = poll_entries(&gw, "dedup_id=evt-q1", 2).await;
    let attempt = entries.iter().find(|e| e["attempt"] == 1).unwrap();
    assert_eq!(attempt["target"], "default");
    assert_eq!(attempt["upstream_status"], 200);
    let accepted = entries.iter().find(|e| e["outcome"] == "queued").unwrap();
    assert_eq!(accepted["status"], 202);
}

async fn poll_entries(gw: &TestGateway, query: &str, n: usize) -> Vec<serde_json::Value> {
    let mut last = Vec::new();
    for _ in 0..300 {
        let v = json(&get(&gw.admin_url(&format!("/deliveries?{query}")), &[]).await);
        last = v["deliveries"].as_array().cloned().unwrap_or_default();
        if last.len() >= n {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("fewer than {n} journal entries for {query}: {last:?}");
}

/// An upstream that is down (503) is tried again with growing, jittered delays; its
/// `Retry-After` is honoured; once it is back the delivery arrives, same delivery id,
/// attempt numbers counting up.
#[tokio::test]
async fn backoff_grows_honours_retry_after_and_delivers_when_the_upstream_is_back() {
    let up = Upstream::start().await;
    up.answer(503, Duration::ZERO);
    let gw = TestGateway::start(&buffered(
        &up.url(),
        "retry = { initial = \"200ms\", max_delay = \"2s\", multiplier = 2.0 }",
    ))
    .await;
    let body = br#"{"id":"q2"}"#;
    let answer = post(
        &gw.url("/webhooks/acme"),
        &signed(body, NOW, "evt-q2"),
        body,
    )
    .await;
    assert_eq!(answer.0, 202);
    until("three attempts", || up.hits() >= 3).await;
    // The fourth answer says when: one second.
    up.answer_retry_after(503, "1");
    until("four attempts", || up.hits() >= 4).await;
    up.answer(200, Duration::ZERO);
    until("the delivery", || {
        up.seen()
            .last()
            .is_some_and(|s| s.headers["x-hookwall-attempt"] == "5")
    })
    .await;
    let seen = up.seen();
    let attempts: Vec<String> = seen
        .iter()
        .map(|s| s.headers["x-hookwall-attempt"].to_str().unwrap().to_owned())
        .collect();
    assert_eq!(attempts, ["1", "2", "3", "4", "5"]);
    assert!(seen
        .iter()
        .all(|s| s.headers["x-hookwall-delivery-id"] == "evt-q2"));
    // Full jitter: each gap is at most its cap (200 ms, 400 ms, 800 ms, + the poll).
    let gap = |i: usize| seen[i].at - seen[i - 1].at;
    assert!(gap(1) < Duration::from_millis(200 + 600), "{:?}", gap(1));
    assert!(gap(2) < Duration::from_millis(400 + 600), "{:?}", gap(2));
    // After `Retry-After: 1`, not sooner than one second.
    assert!(gap(4) >= Duration::from_millis(1000), "{:?}", gap(4));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(up.hits(), 5);
    assert_eq!(
        gw.metric(
            r#"hookwall_delivery_attempts_total{route="acme",target="default",result="retry"}"#
        )
        .await,
        4.0
    );
}

/// A status outside `retry_on` dead-letters at once; `POST /dead-letters/{id}/retry`
/// puts it back, and it is delivered.
#[tokio::test]
async fn a_permanent_status_dead_letters_at_once_and_redrive_delivers_it() {
    let up = Upstream::start().await;
    up.answer(400, Duration::ZERO);
    let gw = TestGateway::start(&buffered(&up.url(), "")).await;
    let body = br#"{"id":"q3"}"#;
    assert_eq!(
        post(
            &gw.url("/webhooks/acme"),
            &signed(body, NOW, "evt-q3"),
            body
        )
        .await
        .0,
        202
    );
    until("one attempt", || up.hits() == 1).await;
    let dead = wait_dead_letters(&gw, 1).await;
    assert_eq!(dead[0]["delivery_id"], "evt-q3");
    assert_eq!(dead[0]["last_status"], 400);
    assert_eq!(dead[0]["attempts"], 1);
    assert_eq!(
        gw.metric_reaches(
            r#"hookwall_dead_letters_total{route="acme",target="default",reason="status"}"#,
            1.0
        )
        .await,
        1.0
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(up.hits(), 1, "not tried again");
    up.answer(200, Duration::ZERO);
    let id = dead[0]["id"].as_str().unwrap();
    let redrive = post(
        &gw.admin_url(&format!("/dead-letters/{id}/retry")),
        &[],
        b"",
    )
    .await;
    assert_eq!(redrive.0, 200, "{}", redrive.2);
    until("the redriven delivery", || up.hits() == 2).await;
    assert_eq!(
        up.seen()[1].headers["x-hookwall-attempt"],
        "1",
        "attempts reset"
    );
    assert_eq!(wait_dead_letters(&gw, 0).await.len(), 0);
}

async fn wait_dead_letters(gw: &TestGateway, n: usize) -> Vec<serde_json::Value> {
    let mut last = Vec::new();
    for _ in 0..300 {
        let answer = get(&gw.admin_url("/dead-letters"), &[]).await;
        assert_eq!(answer.0, 200, "{}", answer.2);
        last = json(&answer)["dead_letters"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if last.len() == n {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("expected {n} dead letters, have {last:?}");
}

/// A delivery older than `max_age` is dead-lettered instead of tried again.
#[tokio::test]
async fn max_age_dead_letters() {
    let dead = dead_port().await;
    let gw = TestGateway::start(&buffered(
        &format!("http://{dead}"),
        "retry = { initial = \"5s\", max_delay = \"5s\", multiplier = 1.0, max_age = \"1s\" }",
    ))
    .await;
    let body = br#"{"id":"q4"}"#;
    let answer = post(
        &gw.url("/webhooks/acme"),
        &signed(body, NOW, "evt-q4"),
        body,
    )
    .await;
    assert_eq!(answer.0, 202);
    // The first attempt fails; a retry could be up to 5 s away, past the 1 s max_age —
    // unless the jitter drew it shorter; either way the delivery ends as a dead letter.
    let dead = wait_dead_letters_for(&gw, Duration::from_secs(8)).await;
    assert_eq!(dead["delivery_id"], "evt-q4");
    assert_eq!(dead["last_error"], "upstream_unreachable");
    assert!(
        ["max_age"].contains(&dead["reason"].as_str().unwrap_or("")),
        "{dead}"
    );
}

async fn wait_dead_letters_for(gw: &TestGateway, limit: Duration) -> serde_json::Value {
    let started = std::time::Instant::now();
    while started.elapsed() < limit {
        let v = json(&get(&gw.admin_url("/dead-letters"), &[]).await);
        if let Some(first) = v["dead_letters"].as_array().and_then(|a| a.first()) {
            return first.clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no dead letter within {limit:?}");
}

/// Fan-out: one accepted delivery becomes one queue row per target whose events want it;
/// each target gets it once; a delivery no target wants is answered `200 ignored`.
#[tokio::test]
async fn fan_out_delivers_each_target_once_and_filters_by_event() {
    let billing = Upstream::start().await;
    let everything = Upstream::start().await;
    let route = format!(
        r#"
[[route]]
name = "acme"
path = "/webhooks/acme"
secrets = [{{ value = "{SECRET}" }}]
timeout = "2s"
delivery = "buffered"
event = "json:/type"
[route.verify]
header = "X-Sig"
prefix = "sha256="
payload = "{{timestamp}}.{{body}}"
timestamp_header = "X-Ts"
id_header = "X-Delivery"
[[route.targets]]
name = "billing"
upstream = "{}/billing"
events = ["invoice.*"]
[[route.targets]]
name = "all"
upstream = "{}/all"
events = ["invoice.*", "customer.*"]
"#,
        billing.url(),
        everything.url()
    );
    let gw = TestGateway::start(&config_with("", "", &route)).await;
    let send = |id: &'static str, kind: &'static str| {
        let url = gw.url("/webhooks/acme");
        async move {
            let body = format!(r#"{{"id":"{id}","type":"{kind}"}}"#);
            post(&url, &signed(body.as_bytes(), NOW, id), body.as_bytes()).await
        }
    };
    assert_eq!(send("f1", "invoice.paid").await.0, 202);
    assert_eq!(send("f2", "customer.created").await.0, 202);
    let ignored = send("f3", "charge.refunded").await;
    assert_eq!(ignored.0, 200, "{}", ignored.2);
    assert_eq!(json(&ignored)["status"], "ignored");
    until("both deliveries to all", || everything.hits() == 2).await;
    until("the invoice to billing", || billing.hits() == 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!((billing.hits(), everything.hits()), (1, 2));
    assert_eq!(billing.seen()[0].uri.path(), "/billing");
    assert_eq!(billing.seen()[0].headers["x-hookwall-delivery-id"], "f1");
    // An ignored delivery is committed: the provider's retry is a duplicate.
    assert!(send("f3", "charge.refunded")
        .await
        .2
        .contains("\"status\":\"duplicate\""));
    assert_eq!(
        gw.metric(r#"hookwall_requests_total{route="acme",outcome="ignored"}"#)
            .await,
        1.0
    );
}

/// `max_queued` deliveries waiting: the next is refused `503 queue_full` with
/// `Retry-After`, and dedup lets its retry through later.
#[tokio::test]
async fn queue_full_at_the_bound() {
    let dead = dead_port().await;
    let gw = TestGateway::start(&buffered(
        &format!("http://{dead}"),
        "max_queued = 2\nretry = { initial = \"1h\", max_delay = \"1h\" }",
    ))
    .await;
    for i in 0..2 {
        let id = format!("full-{i}");
        let body = format!(r#"{{"id":"{id}"}}"#);
        let answer = post(
            &gw.url("/webhooks/acme"),
            &signed(body.as_bytes(), NOW, &id),
            body.as_bytes(),
        )
        .await;
        assert_eq!(answer.0, 202, "{}", answer.2);
    }
    let body = br#"{"id":"full-2"}"#;
    let headers = signed(body, NOW, "full-2");
    let full = post(&gw.url("/webhooks/acme"), &headers, body).await;
    assert_eq!((full.0, reason(&full).as_str()), (503, "queue_full"));
    assert!(full.1.contains_key("retry-after"));
    // Refused, not taken: the same delivery is not a duplicate.
    let again = post(&gw.url("/webhooks/acme"), &headers, body).await;
    assert_eq!(reason(&again), "queue_full");
}

/// The SQLite WAL that a burst of deliveries grew is given back to the disk once writes
/// stop (checkpoints under load only restart it, which does not stall acceptances).
#[tokio::test]
async fn the_wal_is_truncated_once_the_queue_is_idle() {
    let up = Upstream::start().await;
    let gw = TestGateway::start(&buffered(&up.url(), "")).await;
    for n in 0..50 {
        let body = format!(r#"{{"id":"w{n}"}}"#);
        let answer = post(
            &gw.url("/webhooks/acme"),
            &signed(body.as_bytes(), NOW, &format!("evt-w{n}")),
            body.as_bytes(),
        )
        .await;
        assert_eq!(answer.0, 202);
    }
    until("every delivery", || up.hits() == 50).await;
    let wal = gw.sqlite_file().unwrap().with_extension("db-wal");
    let mut size = u64::MAX;
    for _ in 0..100 {
        size = std::fs::metadata(&wal).map_or(0, |m| m.len());
        if size == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(size, 0, "{} still holds {size} bytes", wal.display());
}
