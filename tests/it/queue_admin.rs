//! The queue's admin endpoints (CONTRACT §10): `GET /queue`, `GET /dead-letters` with its
//! filters, single and bulk retry, discard (journaled), and the errors of each.

use std::time::Duration;

use crate::support::*;

fn json(answer: &Answer) -> serde_json::Value {
    serde_json::from_str(&answer.2).unwrap_or_else(|_| panic!("not JSON: {}", answer.2))
}

async fn dead_letters(gw: &TestGateway, query: &str) -> serde_json::Value {
    let answer = get(&gw.admin_url(&format!("/dead-letters{query}")), &[]).await;
    assert_eq!(answer.0, 200, "{}", answer.2);
    json(&answer)
}

/// Three deliveries the upstream refuses for good (400) become three dead letters; the
/// endpoints list, page, filter, retry and discard them.
#[tokio::test]
async fn dead_letters_are_listed_retried_and_discarded() {
    let up = Upstream::start().await;
    up.answer(400, Duration::ZERO);
    let config = config_with(
        "",
        "",
        &standard_route(&up.url(), "delivery = \"buffered\""),
    );
    let gw = TestGateway::start(&config).await;
    for n in 1..=3 {
        let body = format!(r#"{{"id":"d{n}"}}"#);
        let answer = post(
            &gw.url("/webhooks/acme"),
            &signed(body.as_bytes(), NOW, &format!("evt-d{n}")),
            body.as_bytes(),
        )
        .await;
        assert_eq!(answer.0, 202, "{}", answer.2);
    }
    let mut listed = serde_json::Value::Null;
    for _ in 0..500 {
        listed = dead_letters(&gw, "").await;
        if listed["dead_letters"].as_array().map_or(0, Vec::len) == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let all = listed["dead_letters"].as_array().expect("a list").clone();
    assert_eq!(all.len(), 3, "{listed}");
    for d in &all {
        assert_eq!(d["route"], "acme");
        assert_eq!(d["target"], "default");
        assert_eq!(d["last_status"], 400);
        assert_eq!(d["attempts"], 1);
        assert_eq!(d["reason"], "status");
        assert!(
            d["dead_lettered_at"].as_str().unwrap().ends_with('Z'),
            "{d}"
        );
    }
    assert_eq!(all[0]["delivery_id"], "evt-d3", "newest first");

    let queue = json(&get(&gw.admin_url("/queue"), &[]).await);
    let row = &queue["routes"][0];
    assert_eq!(row["route"], "acme");
    assert_eq!(row["target"], "default");
    assert_eq!(row["dead_lettered"], 3);
    assert_eq!(row["queued"], 0);
    assert_eq!(row["in_flight"], 0);
    assert_eq!(row["oldest_seconds"], 0.0);

    // Pages: two, then the rest from the cursor.
    let page = dead_letters(&gw, "?limit=2").await;
    assert_eq!(page["dead_letters"].as_array().unwrap().len(), 2);
    let next = page["next"].as_str().expect("a cursor");
    let rest = dead_letters(&gw, &format!("?limit=2&before={next}")).await;
    assert_eq!(rest["dead_letters"][0]["delivery_id"], "evt-d1");
    assert!(rest["next"].is_null());
    assert_eq!(
        dead_letters(&gw, "?route=other").await["dead_letters"],
        serde_json::json!([])
    );
    let bad = get(&gw.admin_url("/dead-letters?since=yesterday"), &[]).await;
    assert_eq!((bad.0, reason(&bad)), (400, "bad_query".to_owned()));
    let bad = get(&gw.admin_url("/dead-letters?limit=0"), &[]).await;
    assert_eq!(bad.0, 400);

    // Discard the oldest: gone, journaled in the delivery's history; twice is 404.
    let oldest = all[2]["id"].as_str().unwrap();
    let url = gw.admin_url(&format!("/dead-letters/{oldest}"));
    let answer = send("DELETE", &url, &[], b"").await;
    assert_eq!(answer.0, 200, "{}", answer.2);
    assert_eq!(json(&answer)["discarded"]["delivery_id"], "evt-d1");
    assert_eq!(send("DELETE", &url, &[], b"").await.0, 404);
    let mut history = serde_json::Value::Null;
    for _ in 0..300 {
        history = json(&get(&gw.admin_url("/deliveries?dedup_id=evt-d1"), &[]).await);
        let entries = history["deliveries"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if entries.iter().any(|e| e["outcome"] == "discarded") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let discarded = history["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["outcome"] == "discarded")
        .unwrap_or_else(|| panic!("no discarded entry: {history}"));
    assert_eq!(discarded["target"], "default");

    // Bulk retry: a filter that matches nothing, a bad one, then all of them.
    let none = post(
        &gw.admin_url("/dead-letters/retry"),
        &[],
        br#"{"route":"other"}"#,
    )
    .await;
    assert_eq!((none.0, json(&none)["requeued"].clone()), (200, 0.into()));
    let bad = post(&gw.admin_url("/dead-letters/retry"), &[], b"[1]").await;
    assert_eq!(bad.0, 400);
    let bad = post(
        &gw.admin_url("/dead-letters/retry"),
        &[],
        br#"{"since":"soon"}"#,
    )
    .await;
    assert_eq!(bad.0, 400, "{}", bad.2);
    up.answer(200, Duration::ZERO);
    let all = post(
        &gw.admin_url("/dead-letters/retry"),
        &[],
        br#"{"route":"acme","since":"1h"}"#,
    )
    .await;
    assert_eq!((all.0, json(&all)["requeued"].clone()), (200, 2.into()));
    wait_until(|| up.hits() == 5).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let delivered: Vec<String> = up.seen()[3..]
        .iter()
        .map(|s| {
            s.headers["x-hookwall-delivery-id"]
                .to_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert!(delivered.contains(&"evt-d2".to_owned()) && delivered.contains(&"evt-d3".to_owned()));
    assert_eq!(up.hits(), 5, "the discarded one is not delivered");

    // Unknown ids and wrong methods.
    let missing = post(&gw.admin_url("/dead-letters/nope/retry"), &[], b"").await;
    assert_eq!(missing.0, 404);
    assert_eq!(send("PUT", &gw.admin_url("/queue"), &[], b"").await.0, 405);
}

/// With an admin token, the queue's endpoints need it like the others.
#[tokio::test]
async fn queue_endpoints_need_the_admin_token() {
    let up = Upstream::start().await;
    let config = config_with(
        "",
        "",
        &standard_route(&up.url(), "delivery = \"buffered\""),
    )
    .replace("[admin]\n", "[admin]\ntoken = \"t0ken-for-tests\"\n");
    assert!(
        config.contains("t0ken-for-tests"),
        "the config has an [admin] table"
    );
    let gw = TestGateway::start(&config).await;
    assert_eq!(get(&gw.admin_url("/queue"), &[]).await.0, 401);
    assert_eq!(get(&gw.admin_url("/dead-letters"), &[]).await.0, 401);
    assert_eq!(
        send("DELETE", &gw.admin_url("/dead-letters/x"), &[], b"")
            .await
            .0,
        401
    );
    let auth = [(
        "authorization".to_owned(),
        "Bearer t0ken-for-tests".to_owned(),
    )];
    assert_eq!(get(&gw.admin_url("/queue"), &auth).await.0, 200);
}

/// `hookwall queue` and `hookwall dead-letters list|retry|discard` against a running
/// gateway (`--admin` alone: no config needed).
#[tokio::test]
async fn the_queue_and_dead_letter_commands() {
    let up = Upstream::start().await;
    up.answer(422, Duration::ZERO);
    let config = config_with(
        "",
        "",
        &standard_route(&up.url(), "delivery = \"buffered\""),
    );
    let gw = TestGateway::start(&config).await;
    for n in 1..=2 {
        let body = format!(r#"{{"id":"c{n}"}}"#);
        let headers = signed(body.as_bytes(), NOW, &format!("evt-c{n}"));
        assert_eq!(
            post(&gw.url("/webhooks/acme"), &headers, body.as_bytes())
                .await
                .0,
            202
        );
    }
    for _ in 0..500 {
        if dead_letters(&gw, "").await["dead_letters"]
            .as_array()
            .map_or(0, Vec::len)
            == 2
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let admin = gw.admin_url("");
    let (code, table, _) = cli_against(&admin, &["queue"]).await;
    assert_eq!(code, Some(0));
    let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(&row[..5], ["acme", "default", "0", "0", "2"], "{table}");

    let (code, list, _) = cli_against(&admin, &["dead-letters", "list", "--route", "acme"]).await;
    assert_eq!(code, Some(0));
    assert!(list.starts_with("DEAD SINCE (UTC)"), "{list}");
    assert!(list.contains("evt-c1") && list.contains("422"), "{list}");
    let (_, json_list, _) = cli_against(&admin, &["dead-letters", "list", "--json"]).await;
    let v: serde_json::Value = serde_json::from_str(&json_list).unwrap();
    let newest = v["dead_letters"][0]["id"].as_str().unwrap().to_owned();
    let oldest = v["dead_letters"][1]["id"].as_str().unwrap().to_owned();

    let (code, out, _) = cli_against(&admin, &["dead-letters", "discard", &oldest]).await;
    assert_eq!(code, Some(0));
    assert!(out.contains("evt-c1"), "{out}");
    let (code, _, err) = cli_against(&admin, &["dead-letters", "discard", &oldest]).await;
    assert_eq!(code, Some(1), "a second discard finds nothing");
    assert!(err.contains("404"), "{err}");
    let (code, _, err) = cli_against(&admin, &["dead-letters", "retry"]).await;
    assert_eq!(code, Some(1), "no id, no filter, no --all");
    assert!(err.contains("--all"), "{err}");

    up.answer(200, Duration::ZERO);
    let (code, out, _) = cli_against(&admin, &["dead-letters", "retry", &newest]).await;
    assert_eq!(code, Some(0));
    assert_eq!(out, "1 put back in the queue\n");
    wait_until(|| up.hits() == 3).await;
    let last = &up.seen()[2];
    assert_eq!(last.headers["x-hookwall-delivery-id"], "evt-c2");
    let (_, out, _) = cli_against(&admin, &["dead-letters", "retry", "--all"]).await;
    assert_eq!(out, "0 put back in the queue\n");
}
