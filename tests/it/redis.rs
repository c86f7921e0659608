//! Redis-specific behaviour: failure policy, recovery without restart, a fleet sharing
//! one Redis, lease expiry after a crash, and Redis Cluster.

use std::time::Duration;

use hookwall::dedup::{DedupStore, Reservation};

use crate::redis_server::{RedisCluster, RedisServer};
use crate::support::*;

fn redis_dedup(r: &RedisServer, extra: &str) -> String {
    format!(
        "store = \"redis\"\nredis_url = \"{}\"\ncall_timeout = \"250ms\"\n{extra}",
        r.url()
    )
}

/// An upstream and a gateway whose standard route dedups in `redis` (`extra`: more
/// `[dedup]` keys).
async fn redis_gateway(redis: &RedisServer, extra: &str) -> (Upstream, TestGateway) {
    let up = Upstream::start().await;
    let gw = TestGateway::start(&config_with(
        "",
        &redis_dedup(redis, extra),
        &standard_route(&up.url(), ""),
    ))
    .await;
    (up, gw)
}

/// Sends deliveries `<prefix>-0..8`, each on a new connection. Connections go to the
/// workers round robin, so every worker (one per core) then holds its Redis connection.
/// Returns how many were sent (all forwarded).
async fn connect_every_worker(url: &str, prefix: &str) -> usize {
    const SENT: usize = 8;
    for i in 0..SENT {
        let resp = post(url, &signed(b"{}", NOW, &format!("{prefix}-{i}")), b"{}").await;
        assert_eq!(resp.0, 200, "{prefix}-{i}");
    }
    SENT
}

/// The first 32 hex digits of SHA-256(`{}`), the body most tests send.
const EMPTY_OBJECT_SHA256_32: &str = "44136fa355b3678a1146ad16f7e8649e";

#[tokio::test]
async fn redis_down_rejects_with_503_then_recovers_without_restart() {
    let mut redis = RedisServer::start().await;
    let (up, gw) = redis_gateway(&redis, "").await;
    let url = gw.url("/webhooks/acme");
    assert_eq!(
        post(&url, &signed(b"{}", NOW, "before"), b"{}").await.0,
        200
    );
    assert_eq!(get(&gw.admin_url("/readyz"), &[]).await.0, 200);

    redis.kill();
    let down = post(&url, &signed(b"{}", NOW, "during"), b"{}").await;
    assert_eq!((down.0, reason(&down)), (503, "dedup_unavailable".into()));
    assert!(down.1.contains_key("retry-after"));
    let ready = get(&gw.admin_url("/readyz"), &[]).await;
    assert_eq!(ready.0, 503);
    assert!(ready.2.contains("dedup store unreachable"), "{}", ready.2);
    assert!(
        gw.metric(r#"hookwall_dedup_store_errors_total{route="acme"}"#)
            .await
            >= 1.0
    );
    assert_eq!(up.hits(), 1, "nothing forwarded without dedup under reject");

    redis.restart().await;
    // The connection manager reconnects on its own; the provider's retry then goes through.
    let mut retry = post(&url, &signed(b"{}", NOW, "during"), b"{}").await;
    for _ in 0..100 {
        if retry.0 == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        retry = post(&url, &signed(b"{}", NOW, "during"), b"{}").await;
    }
    assert_eq!((retry.0, retry.2.as_str()), (200, "upstream-ok"));
    assert_eq!(get(&gw.admin_url("/readyz"), &[]).await.0, 200);
}

#[tokio::test]
async fn a_hung_redis_gets_503_within_the_call_timeout_and_leaves_no_lease_behind() {
    let redis = RedisServer::start().await;
    // A lease far longer than the retry loop below, so an orphaned one shows.
    let (up, gw) = redis_gateway(&redis, "lease = \"60s\"").await;
    let url = gw.url("/webhooks/acme");
    let warm = connect_every_worker(&url, "warm").await;

    redis.pause();
    // The reserve is sent but never answered: call_timeout (250ms) turns it into a 503
    // (the request helper gives up after 10 s, so a hang fails the test).
    let hung = post(&url, &signed(b"{}", NOW, "during-hang"), b"{}").await;
    assert_eq!((hung.0, reason(&hung)), (503, "dedup_unavailable".into()));
    assert!(hung.1.contains_key("retry-after"));
    redis.resume();

    // Redis now runs the queued SET, and the release queued behind it. Without that
    // release the retry would get 409 in_flight for a whole lease (60 s).
    let mut retry = post(&url, &signed(b"{}", NOW, "during-hang"), b"{}").await;
    for _ in 0..40 {
        if retry.0 == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        retry = post(&url, &signed(b"{}", NOW, "during-hang"), b"{}").await;
    }
    assert_eq!((retry.0, retry.2.as_str()), (200, "upstream-ok"));
    assert_eq!(
        up.hits(),
        warm + 1,
        "warm-up and the retry, nothing during the hang"
    );
}

#[tokio::test]
async fn the_first_requests_after_a_redis_restart_are_not_refused() {
    let mut redis = RedisServer::start().await;
    let (up, gw) = redis_gateway(&redis, "").await;
    let url = gw.url("/webhooks/acme");
    // Every worker gets its Redis connection, which the restart below breaks.
    let before = connect_every_worker(&url, "before").await;
    redis.restart().await;
    // Each worker finds its connection dead on its next call and calls again on a new one.
    for i in 0..before {
        let after = post(&url, &signed(b"{}", NOW, &format!("after-{i}")), b"{}").await;
        assert_eq!(
            (after.0, after.2.as_str()),
            (200, "upstream-ok"),
            "request {i}"
        );
    }
    assert_eq!(up.hits(), 2 * before);
}

#[tokio::test]
async fn redis_down_with_allow_policy_forwards_without_dedup() {
    let mut redis = RedisServer::start().await;
    let (up, gw) = redis_gateway(&redis, "on_store_error = \"allow\"").await;
    redis.kill();
    let resp = post(
        &gw.url("/webhooks/acme"),
        &signed(b"{}", NOW, "allow-1"),
        b"{}",
    )
    .await;
    assert_eq!((resp.0, resp.2.as_str()), (200, "upstream-ok"));
    assert_eq!(up.hits(), 1);
    assert!(
        gw.metric(r#"hookwall_dedup_store_errors_total{route="acme"}"#)
            .await
            >= 1.0
    );
}

#[tokio::test]
async fn gateway_starts_while_redis_is_down() {
    let mut redis = RedisServer::start().await;
    redis.kill();
    let (_up, gw) = redis_gateway(&redis, "").await;
    assert_eq!(get(&gw.admin_url("/healthz"), &[]).await.0, 200);
    assert_eq!(get(&gw.admin_url("/readyz"), &[]).await.0, 503);
    redis.restart().await;
    let mut ready = 0;
    for _ in 0..100 {
        ready = get(&gw.admin_url("/readyz"), &[]).await.0;
        if ready == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(ready, 200);
}

#[tokio::test]
async fn two_instances_sharing_redis_forward_a_delivery_exactly_once() {
    let redis = RedisServer::start().await;
    let up = Upstream::start().await;
    up.answer(200, Duration::from_millis(200));
    let cfg = config_with("", &redis_dedup(&redis, ""), &standard_route(&up.url(), ""));
    let (a, b) = (
        TestGateway::start(&cfg).await,
        TestGateway::start(&cfg).await,
    );
    let h = signed(b"{}", NOW, "evt_fleet");
    let mut tasks = Vec::new();
    for i in 0..8 {
        let url = if i % 2 == 0 {
            a.url("/webhooks/acme")
        } else {
            b.url("/webhooks/acme")
        };
        let h = h.clone();
        tasks.push(tokio::spawn(async move { post(&url, &h, b"{}").await }));
    }
    let mut forwarded = 0;
    for t in tasks {
        let resp = t.await.unwrap();
        if resp.2 == "upstream-ok" {
            forwarded += 1;
        } else {
            assert!(resp.0 == 409 || resp.2.contains("duplicate"), "{resp:?}");
        }
    }
    assert_eq!((forwarded, up.hits()), (1, 1));
    // Either instance now answers duplicate.
    assert!(post(&b.url("/webhooks/acme"), &h, b"{}")
        .await
        .2
        .contains("duplicate"));
    assert!(post(&a.url("/webhooks/acme"), &h, b"{}")
        .await
        .2
        .contains("duplicate"));
}

#[tokio::test]
async fn an_expired_lease_of_a_crashed_attempt_lets_the_retry_through() {
    let redis = RedisServer::start().await;
    let up = Upstream::start().await;
    let routes = standard_route(&up.url(), "").replace("timeout = \"2s\"", "timeout = \"300ms\"");
    let gw = TestGateway::start(&config_with(
        "",
        &redis_dedup(&redis, "lease = \"1500ms\""),
        &routes,
    ))
    .await;
    // An instance reserved the id and died before settling it. The standard route's
    // signature does not cover its id, so the key binds the id to the body's SHA-256.
    let store = hookwall::dedup::RedisStore::single(
        &hookwall::secret::Secret::new(redis.url()),
        Duration::from_secs(1),
    )
    .unwrap();
    assert!(matches!(
        store
            .reserve(
                &format!("acme:evt_crash:{EMPTY_OBJECT_SHA256_32}"),
                Duration::from_millis(1500)
            )
            .await
            .unwrap(),
        Reservation::Acquired(_)
    ));
    let h = signed(b"{}", NOW, "evt_crash");
    let blocked = post(&gw.url("/webhooks/acme"), &h, b"{}").await;
    assert_eq!((blocked.0, reason(&blocked)), (409, "in_flight".into()));
    let retry_after: u64 = blocked.1["retry-after"].to_str().unwrap().parse().unwrap();
    // Retry-After rounds the lease left up to whole seconds.
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert_eq!(
        post(&gw.url("/webhooks/acme"), &h, b"{}").await.2,
        "upstream-ok"
    );
    assert_eq!(up.hits(), 1);
}

#[tokio::test]
async fn keys_are_namespaced_and_small() {
    let redis = RedisServer::start().await;
    let (_up, gw) = redis_gateway(&redis, "").await;
    assert_eq!(
        post(
            &gw.url("/webhooks/acme"),
            &signed(b"{}", NOW, "evt_ns"),
            b"{}"
        )
        .await
        .0,
        200
    );
    // `<route>:<id>:<body hash>`: the standard route's id is not signed (see dedup/key.rs).
    let key = format!("hookwall:dedup:{{acme:evt_ns:{EMPTY_OBJECT_SHA256_32}}}");
    let keys = redis.cli(&["keys", "*"]).unwrap();
    assert_eq!(keys.trim(), key);
    assert_eq!(redis.cli(&["get", &key]).unwrap().trim(), "d");
    let ttl: i64 = redis.cli(&["ttl", &key]).unwrap().trim().parse().unwrap();
    assert!(
        ttl > 71 * 3600,
        "delivered ids live for dedup.ttl (72h): {ttl}"
    );
}

/// A duplicate, a failed attempt and a delivery leave only the delivered ids: no lease
/// outlives its attempt.
#[tokio::test]
async fn no_lease_is_left_behind_by_duplicates_or_failures() {
    let redis = RedisServer::start().await;
    let (up, gw) = redis_gateway(&redis, "").await;
    let url = gw.url("/webhooks/acme");
    let h = signed(b"{}", NOW, "evt_a");
    assert_eq!(post(&url, &h, b"{}").await.0, 200);
    let again = post(&url, &h, b"{}").await;
    assert!(again.2.contains("duplicate"), "{}", again.2);
    up.answer(500, Duration::ZERO);
    assert_eq!(post(&url, &signed(b"{}", NOW, "evt_b"), b"{}").await.0, 500);
    let keys = redis.cli(&["keys", "*"]).unwrap();
    assert_eq!(
        keys.trim(),
        format!("hookwall:dedup:{{acme:evt_a:{EMPTY_OBJECT_SHA256_32}}}")
    );
}

/// A reservation written by an older hookwall (its token in the delivered key itself)
/// still holds the id while it lives, and the id is free once it is gone.
#[tokio::test]
async fn a_reservation_in_the_older_key_layout_reads_as_in_flight() {
    let redis = RedisServer::start().await;
    let (up, gw) = redis_gateway(&redis, "").await;
    redis
        .cli(&[
            "set",
            &format!("hookwall:dedup:{{acme:evt_old:{EMPTY_OBJECT_SHA256_32}}}"),
            "0123456789abcdef0123456789abcdef",
            "px",
            "60000",
        ])
        .unwrap();
    let h = signed(b"{}", NOW, "evt_old");
    let held = post(&gw.url("/webhooks/acme"), &h, b"{}").await;
    assert_eq!((held.0, reason(&held)), (409, "in_flight".into()));
    assert_eq!(up.hits(), 0);
    redis
        .cli(&[
            "del",
            &format!("hookwall:dedup:{{acme:evt_old:{EMPTY_OBJECT_SHA256_32}}}"),
        ])
        .unwrap();
    assert_eq!(post(&gw.url("/webhooks/acme"), &h, b"{}").await.0, 200);
    assert_eq!(up.hits(), 1);
}

#[tokio::test]
async fn redis_cluster_dedups_across_slots() {
    let cluster = RedisCluster::start().await;
    let up = Upstream::start().await;
    let dedup = format!(
        "store = \"redis\"\nredis_cluster = {}\ncall_timeout = \"1s\"",
        cluster.urls_toml()
    );
    let gw = TestGateway::start(&config_with("", &dedup, &standard_route(&up.url(), ""))).await;
    // Enough ids to land on all three masters.
    for i in 0..30 {
        let h = signed(b"{}", NOW, &format!("evt_{i}"));
        assert_eq!(
            post(&gw.url("/webhooks/acme"), &h, b"{}").await.2,
            "upstream-ok"
        );
        assert!(post(&gw.url("/webhooks/acme"), &h, b"{}")
            .await
            .2
            .contains("duplicate"));
    }
    assert_eq!(up.hits(), 30);
    assert_eq!(get(&gw.admin_url("/readyz"), &[]).await.0, 200);
}

#[tokio::test]
async fn a_shared_rate_limit_is_enforced_by_two_instances_together() {
    let redis = RedisServer::start().await;
    let up = Upstream::start().await;
    let routes = standard_route(
        &up.url(),
        "dedup = false\nrate_limit = { per_minute = 4, shared = true }",
    );
    let cfg = config_with("", &redis_dedup(&redis, ""), &routes);
    let (a, b) = (
        TestGateway::start(&cfg).await,
        TestGateway::start(&cfg).await,
    );
    let mut statuses = Vec::new();
    for i in 0..8 {
        let gw = if i % 2 == 0 { &a } else { &b };
        let resp = post(&gw.url("/webhooks/acme"), &signed(b"{}", NOW, "x"), b"{}").await;
        if resp.0 == 429 {
            let wait: u64 = resp.1["retry-after"].to_str().unwrap().parse().unwrap();
            assert!(
                (1..=15).contains(&wait),
                "one request per 15s refills: {wait}"
            );
        }
        statuses.push(resp.0);
    }
    // Burst 4 across the fleet, not 4 per instance.
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        4,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        4,
        "{statuses:?}"
    );
    assert_eq!(up.hits(), 4);
}

#[tokio::test]
async fn a_shared_rate_limit_falls_back_to_the_local_limiter_when_redis_is_down() {
    let mut redis = RedisServer::start().await;
    let up = Upstream::start().await;
    let routes = standard_route(
        &up.url(),
        "dedup = false\nrate_limit = { per_minute = 2, shared = true }",
    );
    let gw = TestGateway::start(&config_with("", &redis_dedup(&redis, ""), &routes)).await;
    redis.kill();
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(
            post(&gw.url("/webhooks/acme"), &signed(b"{}", NOW, "x"), b"{}")
                .await
                .0,
        );
    }
    assert_eq!(statuses, vec![200, 200, 429]);
}

/// The store's two-phase contract, called directly: with `SET NX GET` (Redis 7.0+) and with
/// the script older servers get.
#[tokio::test]
async fn both_ways_of_reserving_keep_the_two_phase_contract() {
    let redis = RedisServer::start().await;
    let lease = Duration::from_millis(800);
    let ttl = Duration::from_secs(60);
    for by_script in [false, true] {
        let mut store = hookwall::dedup::RedisStore::single(
            &hookwall::secret::Secret::new(redis.url()),
            Duration::from_secs(1),
        )
        .unwrap();
        if by_script {
            store = store.reserving_by_script();
        }
        let id = |s: &str| format!("r:{s}-{by_script}");
        let Reservation::Acquired(first) = store.reserve(&id("a"), lease).await.unwrap() else {
            panic!("a fresh id must be acquired ({by_script})");
        };
        match store.reserve(&id("a"), lease).await.unwrap() {
            Reservation::InFlight(left) => assert!(left <= lease && left > lease / 2, "{left:?}"),
            other => panic!("expected in flight, got {other:?} ({by_script})"),
        }
        store.commit(&id("a"), first, ttl).await.unwrap();
        assert_eq!(
            store.reserve(&id("a"), lease).await.unwrap(),
            Reservation::Delivered
        );
        // Released: the retry gets it.
        let Reservation::Acquired(t) = store.reserve(&id("b"), lease).await.unwrap() else {
            panic!("b");
        };
        store.release(&id("b"), t).await.unwrap();
        let Reservation::Acquired(_) = store.reserve(&id("b"), lease).await.unwrap() else {
            panic!("a released id must be acquired again ({by_script})");
        };
        // An expired lease is taken over; the late first owner cannot free the retry's.
        let Reservation::Acquired(old) = store.reserve(&id("c"), lease).await.unwrap() else {
            panic!("c");
        };
        tokio::time::sleep(lease + Duration::from_millis(100)).await;
        let Reservation::Acquired(new) = store.reserve(&id("c"), lease).await.unwrap() else {
            panic!("an expired lease must be taken over ({by_script})");
        };
        store.release(&id("c"), old).await.unwrap();
        assert!(matches!(
            store.reserve(&id("c"), lease).await.unwrap(),
            Reservation::InFlight(_)
        ));
        store.commit(&id("c"), new, ttl).await.unwrap();
        assert_eq!(
            store.reserve(&id("c"), lease).await.unwrap(),
            Reservation::Delivered
        );
        // A late first owner whose upstream accepted marks the id delivered, and the
        // retry's failure cannot undo that.
        let Reservation::Acquired(old) = store.reserve(&id("d"), lease).await.unwrap() else {
            panic!("d");
        };
        tokio::time::sleep(lease + Duration::from_millis(100)).await;
        let Reservation::Acquired(new) = store.reserve(&id("d"), lease).await.unwrap() else {
            panic!("an expired lease must be taken over ({by_script})");
        };
        store.commit(&id("d"), old, ttl).await.unwrap();
        store.release(&id("d"), new).await.unwrap();
        assert_eq!(
            store.reserve(&id("d"), lease).await.unwrap(),
            Reservation::Delivered
        );
    }
}
