//! Event filters on a route (CONTRACT §12): `events = [...]` forwards the verified
//! deliveries it wants; the rest are answered `200 ignored` after dedup committed their id,
//! counted as `outcome="ignored"` and journaled.

use crate::journal::entries;
use crate::support::*;

/// The standard route, filtering on `json:/type`.
async fn filtered(events: &str) -> (Upstream, TestGateway) {
    setup(&format!("event = \"json:/type\"\nevents = {events}")).await
}

fn body_of(id: &str, kind: &str) -> Vec<u8> {
    format!(r#"{{"id":"{id}","type":"{kind}"}}"#).into_bytes()
}

async fn send(gw: &TestGateway, id: &str, kind: &str) -> Answer {
    let body = body_of(id, kind);
    post(&gw.url("/webhooks/acme"), &signed(&body, NOW, id), &body).await
}

fn status_field(answer: &Answer) -> String {
    serde_json::from_str::<serde_json::Value>(&answer.2).unwrap()["status"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn wanted_events_are_forwarded_and_the_rest_ignored_then_duplicate() {
    let (up, gw) = filtered(r#"["invoice.*", "charge.refunded"]"#).await;
    let paid = send(&gw, "e1", "invoice.paid").await;
    assert_eq!((paid.0, paid.2.as_str()), (200, "upstream-ok"));
    let refunded = send(&gw, "e2", "charge.refunded").await;
    assert_eq!(refunded.2, "upstream-ok");
    assert_eq!(up.hits(), 2);

    let ignored = send(&gw, "e3", "customer.created").await;
    assert_eq!(ignored.0, 200, "{}", ignored.2);
    let v: serde_json::Value = serde_json::from_str(&ignored.2).unwrap();
    assert_eq!(v["status"], "ignored");
    assert!(v["request_id"].as_str().is_some_and(|r| !r.is_empty()));
    assert_eq!(ignored.1["content-type"], "application/json");
    assert_eq!(
        up.hits(),
        2,
        "an ignored delivery never reaches the upstream"
    );

    // Dedup committed the ignored id: the provider's retry is a duplicate.
    let retry = send(&gw, "e3", "customer.created").await;
    assert_eq!((retry.0, status_field(&retry).as_str()), (200, "duplicate"));
    assert_eq!(
        gw.metric(r#"hookwall_requests_total{route="acme",outcome="ignored"}"#)
            .await,
        1.0
    );
    assert_eq!(
        gw.metric(r#"hookwall_requests_total{route="acme",outcome="forwarded"}"#)
            .await,
        2.0
    );
    let journaled = entries(&gw, "route=acme&outcome=ignored", 1).await;
    assert_eq!(journaled.len(), 1);
    assert_eq!(journaled[0]["dedup_id"], "e3");
    assert_eq!(journaled[0]["status"], 200);
}

/// The filter runs after verification: a forged request with an unwanted event is refused,
/// and does not burn the real delivery's id.
#[tokio::test]
async fn an_unverified_request_is_rejected_before_the_filter_and_burns_nothing() {
    let (up, gw) = filtered(r#"["invoice.*"]"#).await;
    let body = body_of("e9", "customer.created");
    let forged = signed_with("not-the-secret", &body, NOW, "e9");
    let refused = post(&gw.url("/webhooks/acme"), &forged, &body).await;
    assert_eq!(
        (refused.0, reason(&refused).as_str()),
        (401, "invalid_signature")
    );
    let real = send(&gw, "e9", "customer.created").await;
    assert_eq!(status_field(&real), "ignored", "{}", real.2);
    assert_eq!(up.hits(), 0);
}

/// A delivery without an event type is wanted only by `*`; `*` alone wants everything;
/// a pattern is matched as a whole, not as a prefix.
#[tokio::test]
async fn glob_edge_cases_through_the_route() {
    let (up, gw) = filtered(r#"["*.created", "charge.refunded"]"#).await;
    assert_eq!(send(&gw, "g1", "customer.created").await.2, "upstream-ok");
    assert_eq!(
        status_field(&send(&gw, "g2", "charge.refunded.x").await),
        "ignored"
    );
    assert_eq!(
        status_field(&send(&gw, "g3", "customer.creat").await),
        "ignored"
    );
    assert_eq!(status_field(&send(&gw, "g4", "").await), "ignored");
    let untyped = br#"{"id":"g5"}"#;
    let answer = post(
        &gw.url("/webhooks/acme"),
        &signed(untyped, NOW, "g5"),
        untyped,
    )
    .await;
    assert_eq!(status_field(&answer), "ignored");
    assert_eq!(up.hits(), 1);

    let (up, gw) = filtered(r#"["*"]"#).await;
    let answer = post(
        &gw.url("/webhooks/acme"),
        &signed(b"not json", NOW, "s1"),
        b"not json",
    )
    .await;
    assert_eq!(answer.2, "upstream-ok");
    assert_eq!(send(&gw, "s2", "anything.at.all").await.2, "upstream-ok");
    assert_eq!(up.hits(), 2);
}

/// A generic route names its event header; the match is on the header's value.
#[tokio::test]
async fn a_generic_route_filters_on_a_header() {
    let (up, gw) = setup("event = \"header:X-Event\"\nevents = [\"push\"]").await;
    let body = b"{}";
    let mut push = signed(body, NOW, "h1");
    push.push(("X-Event".into(), "push".into()));
    assert_eq!(
        post(&gw.url("/webhooks/acme"), &push, body).await.2,
        "upstream-ok"
    );
    let mut issue = signed(body, NOW, "h2");
    issue.push(("X-Event".into(), "issues".into()));
    assert_eq!(
        status_field(&post(&gw.url("/webhooks/acme"), &issue, body).await),
        "ignored"
    );
    assert_eq!(up.hits(), 1);
}

/// On a buffered route the route's own `events` decide before anything is queued.
#[tokio::test]
async fn a_buffered_route_with_events_queues_only_what_it_wants() {
    let (up, gw) =
        setup("delivery = \"buffered\"\nevent = \"json:/type\"\nevents = [\"invoice.*\"]").await;
    let queued = send(&gw, "b1", "invoice.paid").await;
    assert_eq!((queued.0, status_field(&queued).as_str()), (202, "queued"));
    let ignored = send(&gw, "b2", "customer.created").await;
    assert_eq!(
        (ignored.0, status_field(&ignored).as_str()),
        (200, "ignored")
    );
    wait_until(|| up.hits() == 1).await;
    assert_eq!(up.seen()[0].headers["x-hookwall-delivery-id"], "b1");
    assert_eq!(
        status_field(&send(&gw, "b2", "customer.created").await),
        "duplicate"
    );
}
