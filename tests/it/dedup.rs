//! Two-phase dedup through real sockets: nothing is swallowed, nothing forged burns an id.

use std::time::Duration;

use crate::redis_server::RedisServer;
use crate::support::*;

/// The store under test; the dedup matrix runs once per store.
pub(crate) struct Backend {
    redis: Option<RedisServer>,
}

impl Backend {
    pub(crate) async fn memory() -> Self {
        Backend { redis: None }
    }

    pub(crate) async fn redis() -> Self {
        Backend {
            redis: Some(RedisServer::start().await),
        }
    }

    /// Keys for the `[dedup]` table.
    pub(crate) fn dedup_toml(&self) -> String {
        match &self.redis {
            None => "store = \"memory\"".into(),
            Some(r) => format!("store = \"redis\"\nredis_url = \"{}\"", r.url()),
        }
    }
}

async fn setup(b: &Backend, route_extra: &str) -> (Upstream, TestGateway) {
    let up = Upstream::start().await;
    let gw = TestGateway::start(&config_with(
        "",
        &b.dedup_toml(),
        &standard_route(&up.url(), route_extra),
    ))
    .await;
    (up, gw)
}

async fn delivered_id_is_answered_duplicate_without_calling_upstream(b: Backend) {
    let (up, gw) = setup(&b, "").await;
    let url = gw.url("/webhooks/acme");
    let h = signed(b"{}", NOW, "evt_dup");
    assert_eq!(post(&url, &h, b"{}").await.0, 200);
    let again = post(&url, &h, b"{}").await;
    assert_eq!(again.0, 200);
    let v: serde_json::Value = serde_json::from_str(&again.2).unwrap();
    assert_eq!(v["status"], "duplicate");
    assert!(v["request_id"].is_string());
    assert_eq!(up.hits(), 1);
    assert_eq!(
        gw.metric(r#"hookwall_requests_total{route="acme",outcome="duplicate"}"#)
            .await,
        1.0
    );
    // A duplicate is not a rejection.
    assert_eq!(
        gw.metric(r#"hookwall_requests_total{route="acme",outcome="rejected"}"#)
            .await,
        0.0
    );
}

async fn forged_request_with_a_real_id_does_not_block_the_real_delivery(b: Backend) {
    let (up, gw) = setup(&b, "").await;
    let url = gw.url("/webhooks/acme");
    let forged = post(
        &url,
        &signed_with("attacker", b"{}", NOW, "evt_real"),
        b"{}",
    )
    .await;
    assert_eq!(reason(&forged), "invalid_signature");
    let real = post(&url, &signed(b"{}", NOW, "evt_real"), b"{}").await;
    assert_eq!(real.0, 200);
    assert_eq!(real.2, "upstream-ok");
    assert_eq!(up.hits(), 1);
}

async fn upstream_500_releases_the_id_so_the_retry_is_forwarded(b: Backend) {
    let (up, gw) = setup(&b, "").await;
    let url = gw.url("/webhooks/acme");
    let h = signed(b"{}", NOW, "evt_500");
    up.answer(500, Duration::ZERO);
    let first = post(&url, &h, b"{}").await;
    assert_eq!((first.0, first.2.as_str()), (500, "upstream-ok"));
    up.answer(200, Duration::ZERO);
    assert_eq!(post(&url, &h, b"{}").await.0, 200);
    assert_eq!(up.hits(), 2);
    // And now it is delivered.
    assert!(post(&url, &h, b"{}").await.2.contains("duplicate"));
    assert_eq!(up.hits(), 2);
}

async fn upstream_down_is_502_then_up_the_retry_is_forwarded_once(b: Backend) {
    let addr = dead_port().await;
    let gw = TestGateway::start(&config_with(
        "",
        &b.dedup_toml(),
        &standard_route(&format!("http://{addr}"), ""),
    ))
    .await;
    let url = gw.url("/webhooks/acme");
    let h = signed(b"{}", NOW, "evt_down");
    let down = post(&url, &h, b"{}").await;
    assert_eq!(
        (down.0, reason(&down)),
        (502, "upstream_unreachable".into())
    );
    let up = Upstream::start_on(tokio::net::TcpListener::bind(addr).await.unwrap()).await;
    assert_eq!(post(&url, &h, b"{}").await.0, 200);
    assert!(post(&url, &h, b"{}").await.2.contains("duplicate"));
    assert_eq!(up.hits(), 1);
    assert_eq!(
        gw.metric(r#"hookwall_rejections_total{route="acme",reason="upstream_unreachable"}"#)
            .await,
        1.0
    );
}

async fn slow_upstream_is_504_and_the_retry_goes_through(b: Backend) {
    let (up, gw) = setup(&b, "").await;
    let url = gw.url("/webhooks/acme");
    let h = signed(b"{}", NOW, "evt_slow");
    up.answer(200, Duration::from_millis(2500)); // route timeout is 2s
    let slow = post(&url, &h, b"{}").await;
    assert_eq!((slow.0, reason(&slow)), (504, "upstream_timeout".into()));
    up.answer(200, Duration::ZERO);
    let retry = post(&url, &h, b"{}").await;
    assert_eq!(retry.0, 200);
    assert_eq!(retry.2, "upstream-ok");
    assert_eq!(up.hits(), 2);
}

async fn eight_concurrent_copies_reach_the_upstream_exactly_once(b: Backend) {
    let (up, gw) = setup(&b, "").await;
    up.answer(200, Duration::from_millis(300));
    let url = gw.url("/webhooks/acme");
    let h = signed(b"{}", NOW, "evt_race");
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (url, h) = (url.clone(), h.clone());
            tokio::spawn(async move { post(&url, &h, b"{}").await })
        })
        .collect();
    let mut forwarded = 0;
    for t in tasks {
        let resp = t.await.unwrap();
        match resp.0 {
            200 if resp.2 == "upstream-ok" => forwarded += 1,
            200 => assert!(resp.2.contains("duplicate")),
            409 => {
                assert_eq!(reason(&resp), "in_flight");
                assert!(resp.1.contains_key("retry-after"));
            }
            other => panic!("unexpected {other}: {}", resp.2),
        }
    }
    assert_eq!(forwarded, 1);
    assert_eq!(up.hits(), 1);
}

async fn missing_id_is_400_when_required(b: Backend) {
    let (up, gw) = setup(&b, "").await;
    let mut h = signed(b"{}", NOW, "x");
    h.retain(|(k, _)| k != "X-Delivery");
    let resp = post(&gw.url("/webhooks/acme"), &h, b"{}").await;
    assert_eq!((resp.0, reason(&resp)), (400, "missing_dedup_key".into()));
    assert_eq!(up.hits(), 0);
}

async fn optional_key_forwards_without_dedup(b: Backend) {
    let (up, gw) = setup(&b, "dedup = { key = \"json:/event_id\", required = false }").await;
    let url = gw.url("/webhooks/acme");
    for _ in 0..2 {
        assert_eq!(post(&url, &signed(b"{}", NOW, "x"), b"{}").await.0, 200);
    }
    let body = br#"{"event_id":"E1"}"#;
    assert_eq!(post(&url, &signed(body, NOW, "x"), body).await.0, 200);
    assert!(post(&url, &signed(body, NOW, "x"), body)
        .await
        .2
        .contains("duplicate"));
    assert_eq!(up.hits(), 3);
}

async fn routes_do_not_share_ids(b: Backend) {
    let up = Upstream::start().await;
    let routes = format!(
        "{}{}",
        standard_route(&up.url(), ""),
        standard_route(&up.url(), "")
            .replace("name = \"acme\"", "name = \"acme2\"")
            .replace("/webhooks/acme\"", "/webhooks/acme2\"")
    );
    let gw = TestGateway::start(&config_with("", &b.dedup_toml(), &routes)).await;
    let h = signed(b"{}", NOW, "same-id");
    assert_eq!(
        post(&gw.url("/webhooks/acme"), &h, b"{}").await.2,
        "upstream-ok"
    );
    assert_eq!(
        post(&gw.url("/webhooks/acme2"), &h, b"{}").await.2,
        "upstream-ok"
    );
    assert_eq!(up.hits(), 2);
}

async fn provider_hanging_up_mid_forward_still_records_the_delivery(b: Backend) {
    let (up, gw) = setup(&b, "").await;
    up.answer(200, Duration::from_millis(300));
    let url = gw.url("/webhooks/acme");
    let h = signed(b"{}", NOW, "evt_hangup");
    let attempt = {
        let (url, h) = (url.clone(), h.clone());
        tokio::spawn(async move { post(&url, &h, b"{}").await })
    };
    wait_until(|| up.hits() == 1).await;
    attempt.abort(); // the provider gives up (its own timeout) while the upstream works
    let _ = attempt.await;
    // The attempt finishes anyway; the provider's retry is then a duplicate, not a re-run.
    let mut last = post(&url, &h, b"{}").await;
    for _ in 0..50 {
        if last.0 != 409 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        last = post(&url, &h, b"{}").await;
    }
    assert!(last.2.contains("duplicate"), "{last:?}");
    assert_eq!(up.hits(), 1);
}

/// Runs each scenario against both stores: one suite, not two copies.
macro_rules! for_each_store {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $( #[tokio::test] async fn $name() { super::$name(super::Backend::memory().await).await } )*
        }
        mod redis {
            $( #[tokio::test] async fn $name() { super::$name(super::Backend::redis().await).await } )*
        }
    };
}

for_each_store!(
    delivered_id_is_answered_duplicate_without_calling_upstream,
    forged_request_with_a_real_id_does_not_block_the_real_delivery,
    upstream_500_releases_the_id_so_the_retry_is_forwarded,
    upstream_down_is_502_then_up_the_retry_is_forwarded_once,
    slow_upstream_is_504_and_the_retry_goes_through,
    eight_concurrent_copies_reach_the_upstream_exactly_once,
    missing_id_is_400_when_required,
    optional_key_forwards_without_dedup,
    routes_do_not_share_ids,
    provider_hanging_up_mid_forward_still_records_the_delivery,
);
