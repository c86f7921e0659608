//! The journal on a private PostgreSQL (CONTRACT §8–§9): two instances share one journal
//! and either replays the other's entries; no secret reaches the table; a PostgreSQL that
//! stops loses entries (counted) but never an answer, and the journal resumes by itself.

use std::sync::Arc;

use hookwall::config::StorageBackend;
use hookwall::secret::Secret;
use hookwall::storage::Storage;

use crate::journal::{entries, entry};
use crate::postgres_server::PostgresServer;
use crate::support::*;

async fn open(pg: &PostgresServer) -> Arc<Storage> {
    let backend = StorageBackend::Postgres {
        url: Secret::new(pg.url()),
    };
    Arc::new(Storage::open(&backend).await.unwrap())
}

async fn gateway(up: &Upstream, storage: Arc<Storage>, extra: &str) -> TestGateway {
    let cfg = hookwall::config::compile_str(
        &config_with("", "", &standard_route(&up.url(), extra)),
        std::path::Path::new("t.toml"),
    )
    .unwrap();
    let stores = hookwall::dedup::build(&cfg.dedup).unwrap();
    TestGateway::start_on(cfg, stores, storage).await
}

#[tokio::test]
async fn two_instances_share_one_journal_and_either_replays() {
    let pg = PostgresServer::start().await;
    let up = Upstream::start().await;
    let a = gateway(&up, open(&pg).await, "").await;
    let b = gateway(&up, open(&pg).await, "").await;
    up.answer(503, std::time::Duration::ZERO);
    post(
        &a.url("/webhooks/acme"),
        &signed(b"{\"n\":1}", NOW, "pg-1"),
        b"{\"n\":1}",
    )
    .await;
    // Instance b sees a's entry, whole, and replays it.
    let listed = entries(&b, "dedup_id=pg-1", 1).await;
    let id = listed[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(entry(&b, &id).await["body_text"], "{\"n\":1}");
    up.answer(200, std::time::Duration::ZERO);
    let replay = post(&b.admin_url(&format!("/deliveries/{id}/replay")), &[], b"").await;
    assert_eq!(replay.0, 200, "{}", replay.2);
    assert_eq!(up.hits(), 2);
    assert_eq!(&up.seen()[1].body[..], b"{\"n\":1}");
    // And a sees the replay b made.
    let whole = entry(&a, &id).await;
    assert_eq!(whole["replays"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn no_secret_reaches_the_postgres_table() {
    let pg = PostgresServer::start().await;
    let up = Upstream::start().await;
    let storage = open(&pg).await;
    let gw = gateway(
        &up,
        storage,
        "journal = { bodies = \"all\", redact_headers = [\"X-Api-Key\"], redact_json = [\"/card\"] }",
    )
    .await;
    let body = br#"{"id":"e","card":"4242-secret-card"}"#;
    let mut headers = signed(body, NOW, "pgs-1");
    headers.push(("Authorization".into(), "Bearer pg-auth-secret".into()));
    headers.push(("X-Api-Key".into(), "pg-api-key-secret".into()));
    post(&gw.url("/webhooks/acme"), &headers, body).await;
    post(
        &gw.url("/webhooks/acme"),
        &signed_with("wrong", body, NOW, "pgs-2"),
        body,
    )
    .await;
    entries(&gw, "", 2).await;
    let pool = sqlx::PgPool::connect(&pg.url()).await.unwrap();
    let rows: Vec<(String,)> = sqlx::query_as("SELECT journal::text FROM journal")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    let dump: String = rows.into_iter().map(|(r,)| r).collect();
    assert!(dump.contains("pgs-1"), "the table holds the entries");
    for secret in [
        SECRET,
        OLD_SECRET,
        "pg-auth-secret",
        "pg-api-key-secret",
        "4242-secret-card",
    ] {
        // Bodies are bytea (hex in text form): look for the hex too.
        assert!(!dump.contains(secret), "{secret} stored");
        assert!(
            !dump.contains(&hex::encode(secret)),
            "{secret} stored (in a body)"
        );
    }
}

/// PostgreSQL down: deliveries keep their normal answers while the journal drops (and
/// counts) what it cannot write; back up, it writes again without a restart.
#[tokio::test]
async fn a_stopped_postgres_costs_journal_entries_not_answers() {
    let mut pg = PostgresServer::start().await;
    let up = Upstream::start().await;
    let gw = gateway(&up, open(&pg).await, "").await;
    post(
        &gw.url("/webhooks/acme"),
        &signed(b"{}", NOW, "before"),
        b"{}",
    )
    .await;
    entries(&gw, "", 1).await;
    pg.kill().await;
    for i in 0..3 {
        let answer = post(
            &gw.url("/webhooks/acme"),
            &signed(b"{}", NOW, &format!("down-{i}")),
            b"{}",
        )
        .await;
        assert_eq!((answer.0, answer.2.as_str()), (200, "upstream-ok"));
    }
    let dropped = gw
        .metric_reaches(
            r#"hookwall_journal_dropped_total{reason="storage_error"}"#,
            3.0,
        )
        .await;
    assert_eq!(dropped, 3.0);
    let ready: serde_json::Value =
        serde_json::from_str(&get(&gw.admin_url("/readyz"), &[]).await.2).unwrap();
    assert_eq!(ready["storage"]["status"], "unavailable", "{ready}");
    pg.restart().await;
    post(
        &gw.url("/webhooks/acme"),
        &signed(b"{}", NOW, "after"),
        b"{}",
    )
    .await;
    let after = entries(&gw, "dedup_id=after", 1).await;
    assert_eq!(after[0]["outcome"], "forwarded");
}

/// A database migrated by a newer hookwall is refused with a clear error.
#[tokio::test]
async fn a_newer_schema_is_refused() {
    let pg = PostgresServer::start().await;
    drop(open(&pg).await);
    let pool = sqlx::PgPool::connect(&pg.url()).await.unwrap();
    sqlx::query("INSERT INTO hookwall_schema (version) VALUES (9999)")
        .execute(&pool)
        .await
        .unwrap();
    let backend = StorageBackend::Postgres {
        url: Secret::new(pg.url()),
    };
    let err = Storage::open(&backend).await.unwrap_err().to_string();
    assert!(
        err.contains("schema is version 9999, newer than this hookwall"),
        "{err}"
    );
}
