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

/// One route of `name` at `/webhooks/<name>` with the standard scheme.
pub(crate) fn named_route(upstream: &str, name: &str, extra: &str) -> String {
    standard_route(upstream, extra)
        .replace("name = \"acme\"", &format!("name = \"{name}\""))
        .replace("/webhooks/acme\"", &format!("/webhooks/{name}\""))
}

/// Every way a request can end is journaled with its outcome, reason and status; a path
/// that matches no route is not.
#[tokio::test]
async fn every_outcome_and_reason_is_journaled() {
    let up = Upstream::start().await;
    let dead = dead_port().await;
    let routes = [
        named_route(&up.url(), "acme", "max_body = \"64\""),
        named_route(&format!("http://{dead}"), "down", ""),
        named_route(&up.url(), "fenced", "allow_ips = [\"203.0.113.0/24\"]"),
        named_route(&up.url(), "limited", "rate_limit = { per_minute = 1 }"),
    ]
    .concat();
    let gw = TestGateway::start(&config_with("", "", &routes)).await;
    let acme = gw.url("/webhooks/acme");
    let body: &[u8] = b"{}";
    // (method, headers, body, outcome, reason, status)
    type Case = (
        &'static str,
        Vec<(String, String)>,
        Vec<u8>,
        &'static str,
        &'static str,
        u16,
    );
    let cases: Vec<Case> = vec![
        (
            "POST",
            signed(body, NOW, "o1"),
            body.to_vec(),
            "forwarded",
            "",
            200,
        ),
        (
            "POST",
            signed(body, NOW, "o1"),
            body.to_vec(),
            "duplicate",
            "",
            200,
        ),
        (
            "POST",
            signed_with("wrong", body, NOW, "o2"),
            body.to_vec(),
            "rejected",
            "invalid_signature",
            401,
        ),
        (
            "POST",
            vec![],
            body.to_vec(),
            "rejected",
            "missing_signature",
            401,
        ),
        (
            "POST",
            signed(body, NOW - 3600, "o3"),
            body.to_vec(),
            "rejected",
            "timestamp_out_of_window",
            401,
        ),
        (
            "POST",
            vec![],
            vec![b'x'; 100],
            "rejected",
            "body_too_large",
            413,
        ),
        ("GET", vec![], vec![], "rejected", "method_not_allowed", 405),
    ];
    for (method, headers, body, ..) in &cases {
        send(method, &acme, headers, body).await;
    }
    post(&gw.url("/webhooks/down"), &signed(b"{}", NOW, "d1"), b"{}").await;
    post(
        &gw.url("/webhooks/fenced"),
        &signed(b"{}", NOW, "f1"),
        b"{}",
    )
    .await;
    for id in ["l1", "l2"] {
        post(&gw.url("/webhooks/limited"), &signed(b"{}", NOW, id), b"{}").await;
    }
    post(&gw.url("/nowhere"), &[], b"{}").await;

    let acme_entries = entries(&gw, "route=acme&limit=500", cases.len()).await;
    // Newest first: the cases in reverse.
    for (e, case) in acme_entries.iter().rev().zip(&cases) {
        let (_, _, _, outcome, reason, status) = case;
        assert_eq!(e["outcome"], *outcome, "{e}");
        assert_eq!(e["reason"].as_str().unwrap_or(""), *reason, "{e}");
        assert_eq!(e["status"], *status, "{e}");
    }
    let one = |route: &str, reason: &str| {
        let gw = &gw;
        let q = format!("route={route}&reason={reason}");
        async move { entries(gw, &q, 1).await }
    };
    assert_eq!(one("down", "upstream_unreachable").await[0]["status"], 502);
    assert_eq!(one("fenced", "ip_not_allowed").await[0]["status"], 403);
    assert_eq!(one("limited", "rate_limited").await[0]["status"], 429);
    // Filters by outcome and dedup id.
    let dup = entries(&gw, "outcome=duplicate", 1).await;
    assert_eq!(dup.len(), 1);
    assert_eq!(dup[0]["dedup_id"], "o1");
    assert_eq!(entries(&gw, "dedup_id=o1", 2).await.len(), 2);
    // Nothing was journaled for the unknown path: every entry has a route.
    let all = entries(&gw, "limit=500", 11).await;
    assert!(all.iter().all(|e| e["route"] != "_unknown"), "{all:?}");
    assert_eq!(
        gw.metric(r#"hookwall_journal_entries_total{route="acme"}"#)
            .await,
        cases.len() as f64
    );
}

/// `bodies = "accepted"` (the default) keeps the bodies of deliveries that passed the
/// checks, not those refused for their signature; `"all"` keeps them too; `"none"` none.
/// Longer bodies are cut at `max_stored_body` and marked.
#[tokio::test]
async fn bodies_policy_and_max_stored_body_are_honoured() {
    let up = Upstream::start().await;
    let routes = [
        named_route(&up.url(), "acme", ""),
        named_route(&up.url(), "every", "journal = { bodies = \"all\" }"),
        named_route(&up.url(), "nobody", "journal = { bodies = \"none\" }"),
        named_route(&up.url(), "quiet", "journal = false"),
    ]
    .concat();
    let cfg = config_with("", "", &routes)
        .replace("[dedup]", "[journal]\nmax_stored_body = \"8\"\n[dedup]");
    let gw = TestGateway::start(&cfg).await;
    let long = br#"{"k":"0123456789"}"#;
    for route in ["acme", "every", "nobody", "quiet"] {
        let url = gw.url(&format!("/webhooks/{route}"));
        post(&url, &signed(long, NOW, &format!("{route}-ok")), long).await;
        post(&url, &signed_with("wrong", b"{}", NOW, "x"), b"{}").await;
    }
    let body_of = |e: &serde_json::Value| e["body_text"].clone();
    for (route, accepted, refused) in [
        (
            "acme",
            serde_json::json!("{\"k\":\"01"),
            serde_json::Value::Null,
        ),
        (
            "every",
            serde_json::json!("{\"k\":\"01"),
            serde_json::json!("{}"),
        ),
        ("nobody", serde_json::Value::Null, serde_json::Value::Null),
    ] {
        let list = entries(&gw, &format!("route={route}"), 2).await;
        let ok = entry(&gw, list[1]["id"].as_str().unwrap()).await;
        let bad = entry(&gw, list[0]["id"].as_str().unwrap()).await;
        assert_eq!(body_of(&ok), accepted, "{route}");
        assert_eq!(body_of(&bad), refused, "{route}");
        assert_eq!(
            ok["body_size"],
            long.len(),
            "{route}: the size is of the body received"
        );
        if accepted.is_string() {
            assert_eq!(ok["truncated"], true);
        }
    }
    let quiet = get(&gw.admin_url("/deliveries?route=quiet"), &[]).await;
    assert!(quiet.2.contains("\"deliveries\":[]"), "{}", quiet.2);
}

/// No secret is ever stored: not the route's secrets, not `Authorization`, not a token
/// scheme's header, not what `redact_headers` and `redact_json` name. The SQLite file
/// itself is searched for the bytes.
#[tokio::test]
async fn no_secret_reaches_the_sqlite_file() {
    let up = Upstream::start().await;
    let redact = "journal = { bodies = \"all\", redact_headers = [\"X-Api-Key\"], redact_json = [\"/customer/email\"] }";
    let gitlab = format!(
        "[[route]]\nname = \"gitlab\"\npath = \"/gitlab\"\nupstream = \"{}/hooks\"\nprovider = \"gitlab\"\nsecrets = [{{ value = \"gitlab-token-never-stored\" }}]\ntimeout = \"2s\"\njournal = {{ bodies = \"all\" }}\n",
        up.url()
    );
    let dir = tempfile::tempdir().unwrap();
    // Handshakes that carry a secret: Meta's verify token in the query, Asana's signing
    // secret in X-Hook-Secret.
    let handshakes = format!(
        "[[route]]\nname = \"meta\"\npath = \"/meta\"\nupstream = \"{0}/hooks\"\nprovider = \"meta\"\nsecrets = [{{ value = \"meta-app-secret\" }}]\nmeta = {{ verify_token = {{ value = \"meta-verify-never-stored\" }} }}\n\
         [[route]]\nname = \"asana\"\npath = \"/asana\"\nupstream = \"{0}/hooks\"\nprovider = \"asana\"\nsecrets = [{{ file = {1:?} }}]\n",
        up.url(),
        dir.path().join("asana.secret").display().to_string()
    );
    let cfg = config_with(
        "",
        "",
        &format!(
            "{}{gitlab}{handshakes}",
            named_route(&up.url(), "acme", redact)
        ),
    );
    let path = dir.path().join("journal.db");
    let storage = std::sync::Arc::new(
        hookwall::storage::Storage::open(&hookwall::config::StorageBackend::Sqlite {
            path: path.clone(),
        })
        .await
        .unwrap(),
    );
    let compiled = hookwall::config::compile_str(&cfg, std::path::Path::new("t.toml")).unwrap();
    let stores = hookwall::dedup::build(&compiled.dedup).unwrap();
    let gw = TestGateway::start_on(compiled, stores, storage).await;
    let body = br#"{"id":"e1","customer":{"email":"person@secret.example"}}"#;
    let mut headers = signed(body, NOW, "e1");
    headers.push((
        "Authorization".into(),
        "Bearer auth-token-never-stored".into(),
    ));
    headers.push(("X-Api-Key".into(), "api-key-never-stored".into()));
    headers.push(("Cookie".into(), "session=cookie-never-stored".into()));
    post(&gw.url("/webhooks/acme"), &headers, body).await;
    // A forged one, signed with a secret that happens to be the old one's look-alike.
    post(
        &gw.url("/webhooks/acme"),
        &signed_with("wrong", body, NOW, "e2"),
        body,
    )
    .await;
    let token = [(
        "X-Gitlab-Token".to_owned(),
        "gitlab-token-never-stored".to_owned(),
    )];
    post(&gw.url("/gitlab"), &token, b"{}").await;
    let meta = get(
        &gw.url(
            "/meta?hub.mode=subscribe&hub.verify_token=meta-verify-never-stored&hub.challenge=77",
        ),
        &[],
    )
    .await;
    assert_eq!((meta.0, meta.2.as_str()), (200, "77"));
    let asana = [(
        "X-Hook-Secret".to_owned(),
        "asana-hook-secret-never-stored".to_owned(),
    )];
    assert_eq!(post(&gw.url("/asana"), &asana, b"").await.0, 200);
    let listed = entries(&gw, "limit=500", 5).await;
    let meta_entry = listed.iter().find(|e| e["route"] == "meta").unwrap();
    assert_eq!(
        meta_entry["path"],
        "/meta?hub.mode=subscribe&hub.verify_token=%5Bredacted%5D&hub.challenge=77"
    );
    gw.shutdown().await;
    let mut bytes = std::fs::read(&path).unwrap();
    if let Ok(wal) = std::fs::read(dir.path().join("journal.db-wal")) {
        bytes.extend(wal);
    }
    let stored = String::from_utf8_lossy(&bytes);
    assert!(
        stored.contains("X-Sig") || stored.contains("x-sig"),
        "the journal was written"
    );
    for secret in [
        SECRET,
        OLD_SECRET,
        "auth-token-never-stored",
        "api-key-never-stored",
        "cookie-never-stored",
        "gitlab-token-never-stored",
        "person@secret.example",
        "meta-verify-never-stored",
        "asana-hook-secret-never-stored",
    ] {
        assert!(!stored.contains(secret), "{secret} was stored");
    }
}

#[tokio::test]
async fn entries_survive_a_restart() {
    let up = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let backend = hookwall::config::StorageBackend::Sqlite {
        path: dir.path().join("hookwall.db"),
    };
    let start = || async {
        let cfg = hookwall::config::compile_str(
            &config_with("", "", &standard_route(&up.url(), "")),
            std::path::Path::new("t.toml"),
        )
        .unwrap();
        let stores = hookwall::dedup::build(&cfg.dedup).unwrap();
        let storage =
            std::sync::Arc::new(hookwall::storage::Storage::open(&backend).await.unwrap());
        TestGateway::start_on(cfg, stores, storage).await
    };
    let first = start().await;
    post(
        &first.url("/webhooks/acme"),
        &signed(b"{}", NOW, "kept"),
        b"{}",
    )
    .await;
    entries(&first, "", 1).await;
    first.shutdown().await;
    let second = start().await;
    let list = entries(&second, "dedup_id=kept", 1).await;
    assert_eq!(list[0]["outcome"], "forwarded");
}

/// A delivery the app lost (the upstream answered 500) is replayed: the exact bytes and
/// headers reach the current upstream with `X-Hookwall-Replay-Of` and the delivery id, and
/// the 2xx marks the id delivered, so the provider's late retry is a duplicate.
#[tokio::test]
async fn replay_sends_the_exact_bytes_again_and_marks_the_id_delivered() {
    let (up, gw) = setup("").await;
    up.answer(500, Duration::ZERO);
    let body = b"{ \"id\" : \"lost\",\n  \"n\": 1 }\xff";
    let headers = signed(body, NOW, "lost-1");
    assert_eq!(post(&gw.url("/webhooks/acme"), &headers, body).await.0, 500);
    let e = entries(&gw, "dedup_id=lost-1", 1).await[0].clone();
    assert_eq!(e["upstream_status"], 500);
    up.answer(200, Duration::ZERO);
    let id = e["id"].as_str().unwrap();
    let replay = post(&gw.admin_url(&format!("/deliveries/{id}/replay")), &[], b"").await;
    assert_eq!(replay.0, 200, "{}", replay.2);
    let v: serde_json::Value = serde_json::from_str(&replay.2).unwrap();
    assert_eq!(v["upstream_status"], 200);
    let seen = up.seen();
    let last = seen.last().unwrap();
    assert_eq!(&last.body[..], &body[..], "the exact bytes");
    assert_eq!(last.headers["x-hookwall-replay-of"], id);
    assert_eq!(last.headers["x-hookwall-delivery-id"], "lost-1");
    assert_eq!(last.headers["x-sig"], headers[0].1.as_str());
    // The provider's retry of the same delivery is now a duplicate.
    let retry = post(&gw.url("/webhooks/acme"), &headers, body).await;
    assert!(retry.2.contains("duplicate"), "{}", retry.2);
    let whole = entry(&gw, id).await;
    assert_eq!(whole["replays"].as_array().unwrap().len(), 1);
    assert_eq!(whole["replays"][0]["upstream_status"], 200);
    assert_eq!(
        gw.metric(r#"hookwall_replays_total{route="acme",result="ok"}"#)
            .await,
        1.0
    );
}

/// "We had the wrong secret for an hour": deliveries refused for their signature are not
/// replayed as they are (409 not_verified), but with `reverify=true` once the right secret
/// is configured; re-verification judges the window at the time they arrived.
#[tokio::test]
async fn reverify_replays_what_the_current_secret_accepts() {
    let up = Upstream::start().await;
    let route = |secret: &str| {
        named_route(&up.url(), "acme", "journal = { bodies = \"all\" }").replace(SECRET, secret)
    };
    let cfg = config_with("", "", &route("the-wrong-one"));
    let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    std::io::Write::write_all(&mut file, cfg.as_bytes()).unwrap();
    let compiled = hookwall::config::compile_file(file.path()).unwrap();
    let stores = hookwall::dedup::build(&compiled.dedup).unwrap();
    let gw = TestGateway::start_with(compiled, stores).await;
    let body = br#"{"id":"late"}"#;
    let refused = post(
        &gw.url("/webhooks/acme"),
        &signed(body, NOW, "late-1"),
        body,
    )
    .await;
    assert_eq!(reason(&refused), "invalid_signature");
    let e = entries(&gw, "reason=invalid_signature", 1).await[0].clone();
    let id = e["id"].as_str().unwrap().to_owned();
    let replay = |q: &'static str| {
        let url = gw.admin_url(&format!("/deliveries/{id}/replay{q}"));
        async move { post(&url, &[], b"").await }
    };
    let not_verified = replay("").await;
    assert_eq!(
        (not_verified.0, reason(&not_verified).as_str()),
        (409, "not_verified")
    );
    let still_wrong = replay("?reverify=true").await;
    assert_eq!(still_wrong.0, 409);
    assert!(
        still_wrong.2.contains("\"reason\":\"invalid_signature\""),
        "{}",
        still_wrong.2
    );
    assert_eq!(up.hits(), 0);
    // The right secret now; the clock moved on an hour, but the window is judged at arrival.
    std::fs::write(file.path(), config_with("", "", &route(SECRET))).unwrap();
    assert_eq!(post(&gw.admin_url("/reload"), &[], b"").await.0, 200);
    gw.clock.set(NOW + 3600);
    let ok = replay("?reverify=true").await;
    assert_eq!(ok.0, 200, "{}", ok.2);
    assert_eq!(up.hits(), 1);
    assert_eq!(&up.seen()[0].body[..], &body[..]);
    // Refused at the signature, it never reached dedup; the replay reads its id now, sends
    // it, and marks it delivered: the provider's own (re-signed) retry is a duplicate.
    assert_eq!(up.seen()[0].headers["x-hookwall-delivery-id"], "late-1");
    let retry = post(
        &gw.url("/webhooks/acme"),
        &signed(body, NOW + 3600, "late-1"),
        body,
    )
    .await;
    assert!(retry.2.contains("\"status\":\"duplicate\""), "{}", retry.2);
    assert_eq!(up.hits(), 1);
}

/// `POST /replays`: every match, paced at `rate`, with its progress.
#[tokio::test]
async fn bulk_replay_paces_and_reports_progress() {
    let dead = dead_port().await;
    let cfg = config_with("", "", &standard_route(&format!("http://{dead}"), ""));
    let gw = TestGateway::start(&cfg).await;
    for i in 0..5 {
        let id = format!("bulk-{i}");
        post(&gw.url("/webhooks/acme"), &signed(b"{}", NOW, &id), b"{}").await;
    }
    entries(&gw, "reason=upstream_unreachable", 5).await;
    // The upstream comes back on its address.
    let listener = tokio::net::TcpListener::bind(dead).await.unwrap();
    let up = Upstream::start_on(listener).await;
    let dry = post(
        &gw.admin_url("/replays"),
        &[],
        br#"{"route":"acme","reason":"upstream_unreachable","dry_run":true}"#,
    )
    .await;
    assert_eq!(dry.0, 202, "{}", dry.2);
    assert!(dry.2.contains("\"matched\":5"), "{}", dry.2);
    let started = std::time::Instant::now();
    let job = post(
        &gw.admin_url("/replays"),
        &[],
        br#"{"route":"acme","reason":"upstream_unreachable","rate":20}"#,
    )
    .await;
    assert_eq!(job.0, 202, "{}", job.2);
    let v: serde_json::Value = serde_json::from_str(&job.2).unwrap();
    let url = gw.admin_url(&format!("/replays/{}", v["job"].as_str().unwrap()));
    let mut progress = serde_json::Value::Null;
    for _ in 0..500 {
        progress = serde_json::from_str(&get(&url, &[]).await.2).unwrap();
        if progress["done"] == true {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(progress["done"], true, "{progress}");
    assert_eq!(
        (
            progress["matched"].clone(),
            progress["sent"].clone(),
            progress["succeeded"].clone()
        ),
        (5.into(), 5.into(), 5.into()),
        "{progress}"
    );
    assert_eq!(up.hits(), 5);
    // Five at 20 a second: the last goes out at least 200 ms after the first.
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "{:?}",
        started.elapsed()
    );
    // Oldest first, each marked as the replay of its entry.
    let ids: Vec<String> = up
        .seen()
        .iter()
        .map(|s| {
            s.headers["x-hookwall-delivery-id"]
                .to_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(ids, ["bulk-0", "bulk-1", "bulk-2", "bulk-3", "bulk-4"]);

    // A job can be cancelled: at one a second, it is stopped after its first replay.
    let slow = post(
        &gw.admin_url("/replays"),
        &[],
        br#"{"route":"acme","reason":"upstream_unreachable","rate":1}"#,
    )
    .await;
    let v: serde_json::Value = serde_json::from_str(&slow.2).unwrap();
    let url = gw.admin_url(&format!("/replays/{}", v["job"].as_str().unwrap()));
    wait_until(|| up.hits() == 6).await;
    let cancelled = send("DELETE", &url, &[], b"").await;
    assert_eq!(cancelled.0, 200, "{}", cancelled.2);
    assert!(
        cancelled.2.contains("\"cancelled\":true"),
        "{}",
        cancelled.2
    );
    for _ in 0..500 {
        progress = serde_json::from_str(&get(&url, &[]).await.2).unwrap();
        if progress["done"] == true {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(progress["done"], true, "{progress}");
    assert_eq!(progress["sent"], 1, "{progress}");
    assert_eq!(up.hits(), 6);
}

/// Paging with `before` visits every entry that was there when paging began exactly once,
/// while new entries keep arriving.
#[tokio::test]
async fn cursor_paging_never_skips_or_repeats_under_concurrent_inserts() {
    let (_up, gw) = setup("").await;
    let make = |i: usize, at: std::time::SystemTime| hookwall::storage::journal::StoredEntry {
        id: {
            let since = at.duration_since(std::time::UNIX_EPOCH).unwrap();
            let ts =
                uuid::Timestamp::from_unix(uuid::NoContext, since.as_secs(), since.subsec_nanos());
            uuid::Uuid::new_v7(ts).to_string()
        },
        request_id: format!("r{i}"),
        received_at: at
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros() as i64,
        route: "acme".into(),
        method: "POST".into(),
        path: "/webhooks/acme".into(),
        client_ip: "127.0.0.1".into(),
        headers: vec![],
        body: None,
        body_size: 0,
        body_sha256: None,
        truncated: false,
        body_redacted: false,
        outcome: "forwarded".into(),
        reason: None,
        status: 200,
        upstream_status: Some(200),
        upstream_ms: None,
        dedup_id: Some(format!("page-{i}")),
        key_id: None,
        diagnosis: None,
        verified: true,
        attempt: None,
        target: None,
        would_reject: None,
    };
    let base = std::time::SystemTime::now() - Duration::from_secs(3600);
    let old: Vec<_> = (0..300)
        .map(|i| make(i, base + Duration::from_millis(i as u64)))
        .collect();
    gw.storage.append_entries(&old).await.unwrap();
    let storage = gw.storage.clone();
    let writer = tokio::spawn(async move {
        for batch in 0..20 {
            let now = std::time::SystemTime::now();
            let fresh: Vec<_> = (0..10).map(|i| make(1000 + batch * 10 + i, now)).collect();
            storage.append_entries(&fresh).await.unwrap();
            tokio::task::yield_now().await;
        }
    });
    let mut seen = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let q = match &before {
            Some(b) => format!("/deliveries?limit=50&before={b}"),
            None => "/deliveries?limit=50".to_owned(),
        };
        let v: serde_json::Value =
            serde_json::from_str(&get(&gw.admin_url(&q), &[]).await.2).unwrap();
        for e in v["deliveries"].as_array().unwrap() {
            seen.push(e["dedup_id"].as_str().unwrap().to_owned());
        }
        match v["next"].as_str() {
            Some(n) => before = Some(n.to_owned()),
            None => break,
        }
    }
    writer.await.unwrap();
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "an entry was listed twice");
    for e in &old {
        assert!(
            seen.contains(e.dedup_id.as_ref().unwrap()),
            "skipped {:?}",
            e.dedup_id
        );
    }
}

/// Retention deletes by age, then the oldest until the journal is under its size.
#[tokio::test]
async fn retention_deletes_by_age_and_by_size() {
    let (_up, gw) = setup("").await;
    for i in 0..6 {
        post(
            &gw.url("/webhooks/acme"),
            &signed(b"{}", NOW, &format!("ret-{i}")),
            b"{}",
        )
        .await;
    }
    let oldest = entries(&gw, "", 6).await[5]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let replayed = post(
        &gw.admin_url(&format!("/deliveries/{oldest}/replay")),
        &[],
        b"",
    )
    .await;
    assert_eq!(replayed.0, 200, "{}", replayed.2);
    assert_eq!(gw.storage.replays_of(&oldest).await.unwrap().len(), 1);
    // The gateway's clock is the test's: entries were received at NOW.
    let now = NOW * 1_000_000;
    // Nothing is old yet; a size that holds about three of them.
    let bytes = gw.storage.journal_bytes().await.unwrap();
    let pruned = gw
        .storage
        .prune(now - 3_600_000_000, bytes / 2)
        .await
        .unwrap();
    assert_eq!(pruned.expired, 0);
    assert!(
        pruned.over_size >= 3 && pruned.bytes <= bytes / 2,
        "{pruned:?}"
    );
    let left = entries(&gw, "", 1).await;
    assert_eq!(left[0]["dedup_id"], "ret-5", "the newest are kept");
    let replays = gw.storage.replays_of(&oldest).await.unwrap();
    assert!(replays.is_empty(), "replays outlived their entry");
    // Everything is older than a retention of zero.
    let pruned = gw.storage.prune(now + 1, u64::MAX).await.unwrap();
    assert_eq!(pruned.bytes, 0);
    let empty = get(&gw.admin_url("/deliveries"), &[]).await;
    assert!(empty.2.contains("\"deliveries\":[]"), "{}", empty.2);
}

/// `hookwall deliveries list|show` and `hookwall replay` talk to the admin API: a table a
/// person reads, `--json` for scripts.
#[tokio::test]
async fn the_cli_lists_shows_and_replays() {
    let (up, gw) = setup("").await;
    up.answer(500, Duration::ZERO);
    post(
        &gw.url("/webhooks/acme"),
        &signed(b"{\"a\":1}", NOW, "cli-1"),
        b"{\"a\":1}",
    )
    .await;
    let id = entries(&gw, "", 1).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    up.answer(200, Duration::ZERO);
    // The operator's shell may not hold every route's secret: only [admin] is read.
    let unset = standard_route(&up.url(), "")
        .replace("name = \"acme\"", "name = \"other\"")
        .replace("/webhooks/acme\"", "/webhooks/other\"")
        .replace(
            &format!("{{ value = \"{SECRET}\", id = \"current\" }}"),
            "{ env = \"HOOKWALL_TEST_NEVER_SET\" }",
        );
    assert!(unset.contains("HOOKWALL_TEST_NEVER_SET"), "{unset}");
    let cfg = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    std::fs::write(
        cfg.path(),
        config_with("", "", &format!("{}{unset}", standard_route(&up.url(), ""))),
    )
    .unwrap();
    let admin = gw.admin_url("");
    let run = |args: Vec<String>| {
        let (admin, cfg) = (admin.clone(), cfg.path().to_owned());
        tokio::task::spawn_blocking(move || {
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_hookwall"))
                .args(&args)
                .arg("--config")
                .arg(cfg)
                .args(["--admin", &admin])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).into_owned()
        })
    };
    let s = |v: &[&str]| v.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>();
    let table = run(s(&["deliveries", "list", "--route", "acme"]))
        .await
        .unwrap();
    let mut lines = table.lines();
    assert!(
        lines.next().unwrap().starts_with("RECEIVED (UTC)"),
        "{table}"
    );
    let row = lines.next().unwrap();
    assert!(
        row.contains("acme")
            && row.contains("forwarded")
            && row.contains("cli-1")
            && row.contains(&id),
        "{table}"
    );
    let json = run(s(&["deliveries", "list", "--json", "--since", "10000d"]))
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["deliveries"][0]["id"], id.as_str());
    let shown = run(s(&["deliveries", "show", &id])).await.unwrap();
    assert!(shown.contains("dedup_id         cli-1"), "{shown}");
    assert!(shown.contains("\"a\": 1"), "pretty JSON body: {shown}");
    let replayed = run(s(&["replay", &id])).await.unwrap();
    assert!(replayed.contains("upstream answered 200"), "{replayed}");
    let dry = run(s(&["replay", "--route", "acme", "--dry-run"]))
        .await
        .unwrap();
    assert!(dry.starts_with("1 entries match"), "{dry}");
    assert_eq!(up.hits(), 2);
    // `--admin` alone: no config needed.
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_hookwall"))
            .args(["deliveries", "list", "--json", "--admin", &admin])
            .env_remove("HOOKWALL_CONFIG")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&id));
}
