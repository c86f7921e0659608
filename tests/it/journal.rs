//! The delivery journal (CONTRACT §9) on SQLite: every request that matched a route is
//! kept with the fields of §9, searchable and pageable over the admin API, without
//! secrets; replays send the stored bytes again.

use std::time::Duration;

use crate::support::*;

/// Waits until the journal holds `n` entries matching `query` (written by its own task).
pub(crate) async fn entries(gw: &TestGateway, query: &str, n: usize) -> Vec<serde_json::Value> {
    let url = gw.admin_url(&format!("/deliveries?{query}"));
    for _ in 0..500 {
        let answer = get(&url, &[]).await;
        assert_eq!(answer.0, 200, "{}", answer.2);
        let v: serde_json::Value = serde_json::from_str(&answer.2).unwrap();
        let list = v["deliveries"].as_array().unwrap().clone();
        if list.len() >= n {
            return list;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the journal never held {n} entries for {query:?}");
}

pub(crate) async fn entry(gw: &TestGateway, id: &str) -> serde_json::Value {
    let answer = get(&gw.admin_url(&format!("/deliveries/{id}")), &[]).await;
    assert_eq!(answer.0, 200, "{}", answer.2);
    serde_json::from_str(&answer.2).unwrap()
}

#[tokio::test]
async fn a_forwarded_delivery_is_journaled_with_every_field() {
    let (_up, gw) = setup("").await;
    let body = br#"{"id":"evt_1","amount":5}"#;
    let mut headers = signed(body, NOW, "evt_1");
    headers.push(("Authorization".into(), "Bearer do-not-keep".into()));
    let answer = post(&gw.url("/webhooks/acme?x=1"), &headers, body).await;
    assert_eq!(answer.0, 200);
    let listed = entries(&gw, "route=acme", 1).await;
    let e = &listed[0];
    assert_eq!(e["route"], "acme");
    assert_eq!(e["outcome"], "forwarded");
    assert_eq!(e["status"], 200);
    assert_eq!(e["upstream_status"], 200);
    assert_eq!(e["dedup_id"], "evt_1");
    assert_eq!(e["key_id"], "current");
    assert_eq!(e["method"], "POST");
    assert_eq!(e["path"], "/webhooks/acme?x=1");
    assert_eq!(e["client_ip"], "127.0.0.1");
    assert_eq!(e["body_size"], body.len());
    assert!(e["upstream_ms"].as_f64().is_some());
    assert!(e.get("headers").is_none(), "the list leaves headers out");
    let whole = entry(&gw, e["id"].as_str().unwrap()).await;
    assert_eq!(whole["body_text"], std::str::from_utf8(body).unwrap());
    let sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(body))
    };
    assert_eq!(whole["body_sha256"], sha);
    let headers = whole["headers"].as_array().unwrap();
    let header = |name: &str| {
        headers
            .iter()
            .find(|h| h[0] == name)
            .map(|h| h[1].as_str().unwrap().to_owned())
    };
    assert_eq!(header("authorization").as_deref(), Some("[redacted]"));
    assert!(
        header("x-sig").unwrap().starts_with("sha256="),
        "MACs are kept"
    );
    assert_eq!(whole["request_id"], e["request_id"]);
    assert_eq!(whole["replays"], serde_json::json!([]));
}
