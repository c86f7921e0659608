//! Reconcile (CONTRACT §11) against fake Stripe and GitHub APIs on loopback: missed events
//! are delivered once, webhooked ones never again, a late webhook is a duplicate; GitHub's
//! failed deliveries are redelivered once per GUID; the cursor survives restarts, stays
//! behind a failed delivery, and pages are bounded; 429 slows the poller down.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::fake_provider_api::{
    FakeGeneric, FakeGithub, FakeStripe, GENERIC_KEY, GITHUB_TOKEN, STRIPE_KEY,
};
use crate::support::*;

const STRIPE_SECRET: &str = "whsec_reconcile_test";
const GITHUB_SECRET: &str = "github-hook-secret";

fn stripe_route(up: &Upstream, api: &FakeStripe, extra: &str, reconcile_extra: &str) -> String {
    preset_route(
        up,
        "stripe",
        STRIPE_SECRET,
        &format!(
            "{extra}\n[route.reconcile]\nsource = \"stripe\"\nevery = \"1h\"\napi_base = \"{}\"\ncredentials = {{ value = \"{STRIPE_KEY}\" }}\n{reconcile_extra}\n",
            api.base()
        ),
    )
}

async fn stripe_gateway(up: &Upstream, api: &FakeStripe, reconcile_extra: &str) -> TestGateway {
    TestGateway::start(&config_with(
        "",
        "",
        &stripe_route(up, api, "", reconcile_extra),
    ))
    .await
}

/// A Stripe webhook of `body`, signed at the gateway's clock.
async fn webhook(gw: &TestGateway, body: &str) -> Answer {
    let sig = hmac_hex(
        STRIPE_SECRET,
        &[NOW.to_string().as_bytes(), b".", body.as_bytes()],
    );
    post(
        &gw.url("/stripe"),
        &[("Stripe-Signature".into(), format!("t={NOW},v1={sig}"))],
        body.as_bytes(),
    )
    .await
}

/// `POST /reconcile/{route}/run`: status and summary.
async fn run_now(gw: &TestGateway, route: &str) -> (u16, Value) {
    let (status, _, body) = post(&gw.admin_url(&format!("/reconcile/{route}/run")), &[], b"").await;
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

async fn status(gw: &TestGateway) -> Value {
    let (s, _, body) = get(&gw.admin_url("/reconcile"), &[]).await;
    assert_eq!(s, 200, "{body}");
    serde_json::from_str::<Value>(&body).unwrap()["routes"][0].clone()
}

#[tokio::test]
async fn stripe_events_the_webhooks_missed_are_delivered_once_and_late_webhooks_are_duplicates() {
    let up = Upstream::start().await;
    let api = FakeStripe::start().await;
    let gw = stripe_gateway(&up, &api, "").await;
    let missed_1 = api.add("evt_missed_1", NOW - 3600);
    let webhooked = api.add("evt_webhooked", NOW - 1800);
    let missed_2 = api.add("evt_missed_2", NOW - 60);
    // Older than the lookback: not this run's business.
    api.add("evt_ancient", NOW - 4 * 86_400);
    assert_eq!(webhook(&gw, &webhooked).await.0, 200);

    let (code, summary) = run_now(&gw, "stripe").await;
    assert_eq!(code, 200, "{summary}");
    assert_eq!(summary["result"], "ok", "{summary}");
    assert_eq!(summary["recovered"], 2, "{summary}");
    let counts = up.delivered_counts();
    assert_eq!(counts.get("evt_missed_1"), Some(&1));
    assert_eq!(counts.get("evt_missed_2"), Some(&1));
    assert_eq!(
        counts.get("evt_webhooked"),
        Some(&1),
        "webhooked once, not again"
    );
    assert_eq!(counts.get("evt_ancient"), None);

    // The upstream gets the event document exactly as listed, marked as polled.
    let seen = up.seen();
    let polled = seen
        .iter()
        .find(|s| s.headers["x-hookwall-delivery-id"] == "evt_missed_1")
        .unwrap();
    assert_eq!(polled.body, missed_1.as_bytes());
    assert_eq!(polled.headers["x-hookwall-verified"], "reconcile:stripe");
    assert_eq!(polled.headers["x-hookwall-route"], "stripe");
    let call = &api.list_calls()[0];
    assert_eq!(
        call.authorization.as_deref(),
        Some(&*format!("Bearer {STRIPE_KEY}"))
    );
    assert_eq!(call.query["limit"], "100");
    assert_eq!(call.query["created[gte]"], (NOW - 72 * 3600).to_string());

    // The real webhook of a reconciled event arrives late: duplicate, not delivered again.
    let late = webhook(&gw, &missed_2).await;
    assert_eq!(late.0, 200);
    assert!(late.2.contains("duplicate"), "{}", late.2);
    assert_eq!(up.delivered_counts().get("evt_missed_2"), Some(&1));

    // A second run finds nothing new and lists from the newest event seen.
    let (_, again) = run_now(&gw, "stripe").await;
    assert_eq!(again["recovered"], 0, "{again}");
    assert_eq!(
        api.list_calls()[1].query["created[gte]"],
        (NOW - 60).to_string()
    );
    assert_eq!(up.hits(), 3);

    let st = status(&gw).await;
    assert_eq!(st["route"], "stripe");
    assert_eq!(st["source"], "stripe");
    assert_eq!(st["result"], "ok");
    assert_eq!(st["recovered"], 2);
    assert_eq!(st["cursor"], (NOW - 60).to_string());
    assert_eq!(st["lag_seconds"], 60);
    assert!(st["last_run"].as_str().is_some());
    assert_eq!(
        gw.metric("hookwall_reconcile_recovered_total{route=\"stripe\"}")
            .await,
        2.0
    );
    assert_eq!(
        gw.metric("hookwall_reconcile_runs_total{route=\"stripe\",result=\"ok\"}")
            .await,
        2.0
    );
    assert_eq!(
        gw.metric("hookwall_reconcile_lag_seconds{route=\"stripe\"}")
            .await,
        60.0
    );

    // Journaled, marked as polled.
    // The journal has its own writer task: wait for the entry rather than race it.
    let list = crate::journal::entries(&gw, "dedup_id=evt_missed_1", 1).await;
    let entry = crate::journal::entry(&gw, list[0]["id"].as_str().unwrap()).await;
    assert_eq!(entry["outcome"], "forwarded", "{entry}");
    assert!(
        entry["headers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h[0] == "x-hookwall-verified" && h[1] == "reconcile:stripe"),
        "{entry}"
    );
    assert_eq!(entry["body_text"], missed_1.as_str());
}

#[tokio::test]
async fn an_upstream_failure_leaves_the_cursor_behind_and_the_next_run_delivers() {
    let up = Upstream::start().await;
    let api = FakeStripe::start().await;
    let gw = stripe_gateway(&up, &api, "").await;
    api.add("evt_a", NOW - 300);
    api.add("evt_b", NOW - 200);
    api.add("evt_c", NOW - 100);
    // evt_a gets through; then the upstream fails.
    up.answer(200, Duration::ZERO);
    let (_, first) = run_now(&gw, "stripe").await;
    assert_eq!(first["recovered"], 3, "{first}");
    api.add("evt_d", NOW - 50);
    api.add("evt_e", NOW - 40);
    up.answer(503, Duration::ZERO);
    let (_, failed) = run_now(&gw, "stripe").await;
    assert_eq!(failed["result"], "error", "{failed}");
    assert_eq!(failed["recovered"], 0, "{failed}");
    assert!(
        failed["error"].as_str().unwrap().contains("503"),
        "{failed}"
    );
    let st = status(&gw).await;
    assert_eq!(st["result"], "error");
    assert_eq!(
        st["cursor"],
        (NOW - 100).to_string(),
        "the cursor stays behind evt_d"
    );
    assert_eq!(
        gw.metric("hookwall_reconcile_runs_total{route=\"stripe\",result=\"error\"}")
            .await,
        1.0
    );

    up.answer(200, Duration::ZERO);
    let (_, recovered) = run_now(&gw, "stripe").await;
    assert_eq!(recovered["result"], "ok", "{recovered}");
    assert_eq!(recovered["recovered"], 2, "{recovered}");
    let counts = up.delivered_counts();
    for id in ["evt_a", "evt_b", "evt_c", "evt_e"] {
        assert_eq!(counts.get(id), Some(&1), "{id}: {counts:?}");
    }
    // evt_d reached the upstream twice: the 503 attempt, then the delivery.
    assert_eq!(counts.get("evt_d"), Some(&2), "{counts:?}");
    assert_eq!(status(&gw).await["cursor"], (NOW - 40).to_string());
}

#[tokio::test]
async fn bounded_pages_and_a_restart_resume_from_the_stored_cursor_with_nothing_skipped() {
    let up = Upstream::start().await;
    let api = FakeStripe::start().await;
    for i in 0..250 {
        api.add(&format!("evt_{i:03}"), NOW - 10_000 + i);
    }
    let dir = tempfile::tempdir().unwrap();
    let config = config_with("", "", &stripe_route(&up, &api, "", "max_pages = 1"));
    let start = || async {
        let cfg = hookwall::config::compile_str(&config, std::path::Path::new("t.toml")).unwrap();
        let stores = hookwall::dedup::build(&cfg.dedup).unwrap();
        let backend = hookwall::config::StorageBackend::Sqlite {
            path: dir.path().join("hookwall.db"),
        };
        let storage = Arc::new(hookwall::storage::Storage::open(&backend).await.unwrap());
        TestGateway::start_on(cfg, stores, storage).await
    };

    let gw = start().await;
    let (_, first) = run_now(&gw, "stripe").await;
    assert_eq!(first["recovered"], 100, "one page of 100: {first}");
    let st = status(&gw).await;
    assert_eq!(
        st["cursor"],
        (NOW - 72 * 3600).to_string(),
        "an unfinished walk does not move the cursor"
    );
    // The process dies in the middle of a run: its lease is still in the file.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64;
    assert!(gw
        .storage
        .take_reconcile_lease(
            "stripe",
            "stripe",
            "the-dead-process",
            now,
            now + 600_000_000
        )
        .await
        .unwrap());
    gw.shutdown().await;

    // A new process (a fresh dedup store, the same storage) continues the walk at once:
    // on SQLite the previous process's lease is void.
    let gw = start().await;
    let (_, second) = run_now(&gw, "stripe").await;
    assert_eq!(second["recovered"], 100, "{second}");
    assert!(api.list_calls()[1].query.contains_key("starting_after"));
    let (_, third) = run_now(&gw, "stripe").await;
    assert_eq!(third["recovered"], 50, "{third}");
    let counts = up.delivered_counts();
    assert_eq!(counts.len(), 250, "nothing skipped");
    assert!(
        counts.values().all(|n| *n == 1),
        "nothing twice: {counts:?}"
    );
    assert_eq!(
        status(&gw).await["cursor"],
        (NOW - 10_000 + 249).to_string()
    );
    // Finished: the next run lists from the newest event.
    let (_, fourth) = run_now(&gw, "stripe").await;
    assert_eq!(fourth["recovered"], 0, "{fourth}");
    assert_eq!(
        api.list_calls().last().unwrap().query["created[gte]"],
        (NOW - 10_000 + 249).to_string()
    );
    assert!(!api
        .list_calls()
        .last()
        .unwrap()
        .query
        .contains_key("starting_after"));
}

#[tokio::test]
async fn a_429_with_retry_after_slows_the_poller_down() {
    let up = Upstream::start().await;
    let api = FakeStripe::start().await;
    let gw = stripe_gateway(&up, &api, "").await;
    api.add("evt_slow", NOW - 10);
    api.common.throttle(1);
    let (_, summary) = run_now(&gw, "stripe").await;
    assert_eq!(summary["result"], "ok", "{summary}");
    assert_eq!(summary["recovered"], 1);
    let calls = api.list_calls();
    assert_eq!(calls.len(), 2, "asked again after the wait");
    let gap = calls[1].at - calls[0].at;
    assert!(
        gap >= Duration::from_millis(950),
        "waited {gap:?}, Retry-After was 1 s"
    );

    // Throttled past what a run waits for: the run fails, nothing moves.
    api.add("evt_later", NOW - 5);
    api.common.throttle(100);
    let (_, throttled) = run_now(&gw, "stripe").await;
    assert_eq!(throttled["result"], "error", "{throttled}");
    assert!(
        throttled["error"].as_str().unwrap().contains("429"),
        "{throttled}"
    );
    assert_eq!(up.delivered_counts().get("evt_later"), None);
}

#[tokio::test]
async fn polled_events_of_a_buffered_route_are_queued_and_delivered_by_the_workers() {
    let up = Upstream::start().await;
    let api = FakeStripe::start().await;
    let route = stripe_route(
        &up,
        &api,
        "delivery = \"buffered\"\nretry = { initial = \"100ms\", max_delay = \"200ms\" }",
        "",
    );
    let gw = TestGateway::start(&config_with("", "", &route)).await;
    let body = api.add("evt_buffered", NOW - 30);
    let (_, summary) = run_now(&gw, "stripe").await;
    assert_eq!(summary["recovered"], 1, "{summary}");
    wait_until(|| up.hits() == 1).await;
    let seen = &up.seen()[0];
    assert_eq!(seen.body, body.as_bytes());
    assert_eq!(seen.headers["x-hookwall-verified"], "reconcile:stripe");
    assert_eq!(seen.headers["x-hookwall-attempt"], "1");
    // The webhook, late: already taken.
    assert!(webhook(&gw, &body).await.2.contains("duplicate"));
}

#[tokio::test]
async fn a_lease_held_by_a_live_instance_refuses_a_run_and_a_dead_ones_is_taken_over() {
    let up = Upstream::start().await;
    let api = FakeStripe::start().await;
    let gw = stripe_gateway(&up, &api, "").await;
    api.add("evt_leased", NOW - 30);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64;
    let storage = gw.storage.clone();
    assert!(storage
        .take_reconcile_lease("stripe", "stripe", "other-instance", now, now + 60_000_000)
        .await
        .unwrap());
    let (code, busy) = run_now(&gw, "stripe").await;
    assert_eq!(code, 409, "{busy}");
    assert_eq!(busy["error"], "reconcile_running");
    assert_eq!(up.hits(), 0);
    // The holder stopped renewing: its lease ends and this instance takes over.
    assert!(storage
        .take_reconcile_lease("stripe", "stripe", "other-instance", now, now - 1)
        .await
        .unwrap());
    let (code, ran) = run_now(&gw, "stripe").await;
    assert_eq!(code, 200, "{ran}");
    assert_eq!(ran["recovered"], 1);
}

#[tokio::test]
async fn github_failed_deliveries_are_redelivered_once_per_guid_and_successful_ones_never() {
    let up = Upstream::start().await;
    // The fake redelivers to the gateway and the gateway polls the fake: the gateway's
    // port is chosen first.
    let gw_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gw_addr = gw_listener.local_addr().unwrap();
    drop(gw_listener);
    let gh = FakeGithub::start(format!("http://{gw_addr}/github"), GITHUB_SECRET, NOW).await;
    let route = preset_route(
        &up,
        "github",
        GITHUB_SECRET,
        &format!(
            "[route.reconcile]\nsource = \"github\"\nevery = \"1h\"\nrepo = \"acme/shop\"\nhook_id = 77\napi_base = \"{}\"\ncredentials = {{ value = \"{GITHUB_TOKEN}\" }}\nmax_pages = 2\n",
            gh.base()
        ),
    );
    let config = config_with("", "", &route).replace(
        "listen = \"127.0.0.1:0\"\nread_timeout",
        &format!("listen = \"{gw_addr}\"\nread_timeout"),
    );
    let gw = TestGateway::start(&config).await;
    assert_eq!(gw.addr, gw_addr);

    gh.attempt("guid-ok", NOW - 500, 200);
    gh.attempt("guid-failed", NOW - 400, 503);
    gh.attempt("guid-flaky", NOW - 300, 502);
    gh.attempt("guid-flaky", NOW - 290, 200);
    gh.attempt("guid-twice", NOW - 200, 0);
    gh.attempt("guid-twice", NOW - 100, 504);
    let twice_newest = gh.log().last().unwrap().id;

    let (code, summary) = run_now(&gw, "github").await;
    assert_eq!(code, 200, "{summary}");
    assert_eq!(summary["result"], "ok", "{summary}");
    assert_eq!(summary["recovered"], 2, "{summary}");
    let asked = gh.redelivery_requests();
    assert_eq!(asked.len(), 2, "{asked:?}");
    assert!(
        asked.contains(&twice_newest),
        "the newest attempt of a GUID is redelivered"
    );
    // GitHub redelivers; the deliveries arrive signed, through dedup, to the upstream.
    wait_until(|| up.hits() == 2).await;
    let mut got: Vec<String> = up
        .seen()
        .iter()
        .map(|s| s.headers["x-github-delivery"].to_str().unwrap().to_owned())
        .collect();
    got.sort();
    assert_eq!(got, ["guid-failed", "guid-twice"]);
    assert_eq!(up.seen()[0].headers["x-hookwall-verified"], "github");
    wait_until(|| gh.log().iter().filter(|d| d.redelivery).count() == 2).await;

    // Later runs never ask again for those GUIDs, nor for the successful ones.
    let (_, again) = run_now(&gw, "github").await;
    assert_eq!(again["recovered"], 0, "{again}");
    assert_eq!(gh.redelivery_requests().len(), 2);
    // A new failure is picked up by the next run.
    gh.attempt("guid-new", NOW - 10, 500);
    let (_, third) = run_now(&gw, "github").await;
    assert_eq!(third["recovered"], 1, "{third}");
    assert_eq!(gh.redelivery_requests().len(), 3);
    wait_until(|| up.hits() == 3).await;
    let st = status(&gw).await;
    assert_eq!(st["source"], "github");
    assert_eq!(st["recovered"], 3);
    assert_eq!(st["lag_seconds"], 0);
}

#[tokio::test]
async fn the_cli_shows_the_status_and_runs_a_route_now() {
    let up = Upstream::start().await;
    let api = FakeStripe::start().await;
    let gw = stripe_gateway(&up, &api, "").await;
    api.add("evt_cli", NOW - 20);
    let admin = gw.admin_url("");
    let (code, out, err) = cli_against(&admin, &["reconcile", "run", "stripe"]).await;
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, "stripe: ok, 1 listed, 1 recovered\n");
    let (code, table, _) = cli_against(&admin, &["reconcile", "status"]).await;
    assert_eq!(code, Some(0));
    let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(
        (row[0], row[1], row[3], row[5]),
        ("stripe", "stripe", "ok", "1"),
        "{table}"
    );
    let (_, json, _) = cli_against(&admin, &["reconcile", "status", "--json"]).await;
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["routes"][0]["recovered"], 1);
    // A route that does not reconcile, and a failing run, are failed commands.
    let (code, _, err) = cli_against(&admin, &["reconcile", "run", "nope"]).await;
    assert_eq!(code, Some(1));
    assert!(err.contains("404"), "{err}");
    up.answer(500, Duration::ZERO);
    api.add("evt_cli_2", NOW - 10);
    let (code, out, _) = cli_against(&admin, &["reconcile", "run", "stripe"]).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.starts_with(
            "stripe: error, 2 listed, 0 recovered (event evt_cli_2: the upstream answered 500)"
        ),
        "{out}"
    );
}

#[tokio::test]
async fn a_generic_source_follows_its_next_pointer_and_keeps_the_cursor_as_the_api_wrote_it() {
    let up = Upstream::start().await;
    let api = FakeGeneric::start().await;
    for (i, id) in ["g1", "g2", "g3", "g4", "g5"].iter().enumerate() {
        api.add(id, NOW - 500 + i as i64 * 100);
    }
    // The route's webhooks carry the same id in a signed-over header.
    let route = standard_route(
        &up.url(),
        &format!(
            "[route.reconcile]\nsource = \"generic\"\nurl = \"http://{}/v2/events?since={{cursor}}\"\nitems = \"json:/items\"\nid = \"json:/event_id\"\ncreated = \"json:/occurred_at\"\nnext = \"json:/links/next\"\ncredentials = {{ value = \"{GENERIC_KEY}\" }}\ncredentials_header = \"X-Api-Key\"\ncursor_format = \"rfc3339\"\nlookback = \"1h\"\n",
            api.addr
        ),
    );
    let gw = TestGateway::start(&config_with("", "", &route)).await;
    // g2 came as a webhook.
    let body = br#"{"event_id":"g2"}"#;
    assert_eq!(
        post(&gw.url("/webhooks/acme"), &signed(body, NOW, "g2"), body)
            .await
            .0,
        200
    );

    let (_, summary) = run_now(&gw, "acme").await;
    assert_eq!(summary["result"], "ok", "{summary}");
    assert_eq!(summary["recovered"], 4, "{summary}");
    let calls = api.common.calls();
    assert_eq!(calls.len(), 3, "three pages of two");
    assert_eq!(
        calls[0].query["since"], "2027-01-15T07:00:00Z",
        "now - lookback, as RFC 3339"
    );
    assert_eq!(calls[1].query["offset"], "2");
    let counts = up.delivered_counts();
    assert_eq!(counts.len(), 5, "{counts:?}");
    assert!(counts.values().all(|n| *n == 1), "{counts:?}");
    let polled = up
        .seen()
        .into_iter()
        .find(|s| s.headers["x-hookwall-delivery-id"] == "g5")
        .unwrap();
    assert_eq!(polled.headers["x-hookwall-verified"], "reconcile:generic");
    let doc: Value = serde_json::from_slice(&polled.body).unwrap();
    assert_eq!(doc["kind"], "order.paid");
    assert_eq!(status(&gw).await["cursor"], "2027-01-15T07:58:20Z");
    // The next run asks from the newest time, and sends nothing again.
    let (_, again) = run_now(&gw, "acme").await;
    assert_eq!(again["recovered"], 0, "{again}");
    assert_eq!(api.common.calls()[3].query["since"], "2027-01-15T07:58:20Z");
    assert_eq!(up.hits(), 5);
}
