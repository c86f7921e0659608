//! The delivery queue on a private PostgreSQL (CONTRACT §10): two instances drain one queue
//! with no double delivery; a PostgreSQL that stops makes buffered routes answer
//! `503 queue_unavailable` and loses nothing it acknowledged; it recovers without a restart.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use hookwall::config::StorageBackend;
use hookwall::secret::Secret;
use hookwall::storage::Storage;

use crate::postgres_server::PostgresServer;
use crate::support::*;

async fn open(pg: &PostgresServer) -> Arc<Storage> {
    let backend = StorageBackend::Postgres {
        url: Secret::new(pg.url()),
    };
    Arc::new(Storage::open(&backend).await.unwrap())
}

async fn gateway(up: &Upstream, storage: Arc<Storage>) -> TestGateway {
    let route = standard_route(
        &up.url(),
        "delivery = \"buffered\"\nupstream_concurrency = 4\nretry = { initial = \"100ms\", max_delay = \"500ms\" }",
    );
    let cfg =
        hookwall::config::compile_str(&config_with("", "", &route), std::path::Path::new("t.toml"))
            .unwrap();
    let stores = hookwall::dedup::build(&cfg.dedup).unwrap();
    TestGateway::start_on(cfg, stores, storage).await
}

fn delivered(up: &Upstream) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for s in up.seen() {
        if let Some(id) = s.headers.get("x-hookwall-delivery-id") {
            *counts.entry(id.to_str().unwrap().to_owned()).or_default() += 1;
        }
    }
    counts
}

async fn until_delivered(up: &Upstream, ids: &[String]) {
    for _ in 0..1500 {
        let seen = delivered(up);
        if ids.iter().all(|id| seen.contains_key(id)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seen = delivered(up);
    let missing: Vec<_> = ids.iter().filter(|id| !seen.contains_key(*id)).collect();
    panic!(
        "{} never delivered, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
}

async fn accept(gw: &TestGateway, id: &str) -> Answer {
    let body = format!(r#"{{"id":"{id}"}}"#);
    post(
        &gw.url("/webhooks/acme"),
        &signed(body.as_bytes(), NOW, id),
        body.as_bytes(),
    )
    .await
}

/// Deliveries accepted by one instance are drained by both (each claims with SKIP LOCKED),
/// and each reaches the upstream exactly once.
#[tokio::test]
async fn two_instances_drain_one_queue_without_double_delivery() {
    let pg = PostgresServer::start().await;
    let up = Upstream::start().await;
    up.answer(200, Duration::from_millis(40));
    let a = gateway(&up, open(&pg).await).await;
    let b = gateway(&up, open(&pg).await).await;
    let mut ids = Vec::new();
    for i in 0..200 {
        let id = format!("pg-q-{i}");
        assert_eq!(accept(&a, &id).await.0, 202);
        ids.push(id);
    }
    until_delivered(&up, &ids).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let counts = delivered(&up);
    let doubled: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(doubled.is_empty(), "delivered twice: {doubled:?}");
    let sample = r#"hookwall_delivery_attempts_total{route="acme",target="default",result="2xx"}"#;
    let (by_a, by_b) = (a.metric(sample).await, b.metric(sample).await);
    assert_eq!(by_a + by_b, 200.0);
    assert!(by_b > 0.0, "instance b never claimed: a {by_a}, b {by_b}");
}

/// PostgreSQL down: `503 queue_unavailable` (not a lost 202), and what was accepted before
/// is delivered once it is back; new deliveries are accepted again without a restart.
#[tokio::test]
async fn postgres_down_answers_queue_unavailable_and_loses_nothing_acknowledged() {
    let mut pg = PostgresServer::start().await;
    let up = Upstream::start().await;
    // The upstream refuses for now: the accepted deliveries stay queued.
    up.answer(503, Duration::ZERO);
    let gw = gateway(&up, open(&pg).await).await;
    let mut acknowledged = Vec::new();
    for i in 0..20 {
        let id = format!("pg-down-{i}");
        assert_eq!(accept(&gw, &id).await.0, 202);
        acknowledged.push(id);
    }
    pg.kill().await;
    let refused = accept(&gw, "pg-down-refused").await;
    assert_eq!(
        (refused.0, reason(&refused).as_str()),
        (503, "queue_unavailable"),
        "{}",
        refused.2
    );
    assert!(refused.1.contains_key("retry-after"));
    pg.restart().await;
    up.answer(200, Duration::ZERO);
    // The refused one was released by dedup: its retry is accepted now.
    let mut retried = None;
    for _ in 0..100 {
        let again = accept(&gw, "pg-down-refused").await;
        if again.0 == 202 {
            retried = Some(again);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        retried.is_some(),
        "no delivery accepted after PostgreSQL came back"
    );
    acknowledged.push("pg-down-refused".to_owned());
    until_delivered(&up, &acknowledged).await;
}
