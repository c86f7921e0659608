//! The admin page: its files and headers from Rust, then the page itself in Debian's
//! headless Chromium (tests/browser/admin_page.mjs, playwright-core) against a real
//! gateway, real upstreams and a fake Stripe API, all on loopback.
//!
//! The browser script asks this side to act (`@deliver 3`, `@check-replay`, ...) on its
//! stdout and reads the answer on its stdin, so deliveries are sent and upstreams checked
//! from Rust while the page is open. With `HOOKWALL_SCREENSHOTS=docs/screenshots` it also
//! writes the README's screenshots (scripts/screenshots).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::fake_provider_api::{FakeStripe, STRIPE_KEY};
use crate::support::*;

const TOKEN: &str = "page-test-admin-token-41c9";
const STRIPE_SECRET: &str = "whsec_page_test";
/// Bytes a re-serialisation would change: spacing, key order, a non-ASCII letter, CRLF.
const EXACT_BODY: &[u8] = b"{\"id\":\"evt-exact\",  \"z\":1,\"a\":\"caf\xc3\xa9\"}\r\n";

fn bearer() -> Vec<(String, String)> {
    vec![("Authorization".into(), format!("Bearer {TOKEN}"))]
}

async fn admin_json(gw: &TestGateway, path: &str) -> Value {
    let answer = get(&gw.admin_url(path), &bearer()).await;
    assert_eq!(answer.0, 200, "{path}: {}", answer.2);
    serde_json::from_str(&answer.2).unwrap()
}

/// Polls `path` until `list` under `key` holds an item `found` accepts (5 s at most).
async fn wait_listed(gw: &TestGateway, path: &str, key: &str, found: impl Fn(&Value) -> bool) {
    for _ in 0..500 {
        let v = admin_json(gw, path).await;
        if v[key].as_array().is_some_and(|l| l.iter().any(&found)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{path} never listed what was expected");
}

/// The three routes: `acme` (sync), `orders` (buffered, to its own upstream) and `stripe`
/// (with reconcile against the fake API).
fn page_config(up: &Upstream, orders: &Upstream, api: &FakeStripe) -> String {
    let orders_route = standard_route(&orders.url(), "delivery = \"buffered\"")
        .replace("name = \"acme\"", "name = \"orders\"")
        .replace("path = \"/webhooks/acme\"", "path = \"/webhooks/orders\"");
    let stripe = preset_route(
        up,
        "stripe",
        STRIPE_SECRET,
        &format!(
            "[route.reconcile]\nsource = \"stripe\"\nevery = \"1h\"\napi_base = \"{}\"\ncredentials = {{ value = \"{STRIPE_KEY}\" }}\n",
            api.base()
        ),
    );
    config_with(
        "",
        "",
        &format!(
            "{}\n{orders_route}\n{stripe}",
            standard_route(&up.url(), "journal = { bodies = \"all\" }")
        ),
    )
    .replace(
        "[admin]\nlisten = \"127.0.0.1:0\"",
        &format!("[admin]\nlisten = \"127.0.0.1:0\"\ntoken = \"{TOKEN}\""),
    )
}

/// A gateway whose config is a real file, so the page's Reload reads it again.
async fn start_from_file(text: &str, dir: &Path) -> TestGateway {
    let file = dir.join("gateway.toml");
    std::fs::write(&file, text).unwrap();
    let cfg = hookwall::config::compile_str(text, &file).unwrap_or_else(|e| panic!("{e}"));
    let stores = hookwall::dedup::build(&cfg.dedup).unwrap();
    TestGateway::start_with(cfg, stores).await
}

#[tokio::test]
async fn the_page_loads_without_the_token_under_a_strict_policy_and_data_stays_guarded() {
    let (up, orders, api) = (
        Upstream::start().await,
        Upstream::start().await,
        FakeStripe::start().await,
    );
    let gw = TestGateway::start(&page_config(&up, &orders, &api)).await;
    let page = get(&gw.admin_url("/"), &[]).await;
    assert_eq!(page.0, 200);
    assert!(page.1["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let csp = page.1["content-security-policy"].to_str().unwrap();
    assert!(csp.starts_with("default-src 'self'"), "{csp}");
    assert_eq!(page.1["x-content-type-options"], "nosniff");
    assert_eq!(page.1["x-frame-options"], "DENY");
    assert_eq!(page.1["referrer-policy"], "no-referrer");
    assert_eq!(page.1["cache-control"], "no-cache");
    // No inline script or style for the policy to refuse, nothing from another origin.
    assert!(!page.2.contains("<style"), "inline style");
    assert!(!page.2.contains("<script>"), "inline script");
    assert!(!page.2.contains("style="), "inline style attribute");
    assert!(!page.2.contains("http://") && !page.2.contains("https://"));
    for (path, kind) in [
        ("/ui/app.js", "text/javascript"),
        ("/ui/app.css", "text/css"),
        ("/ui/icon.svg", "image/svg+xml"),
    ] {
        let answer = get(&gw.admin_url(path), &[]).await;
        assert_eq!(answer.0, 200, "{path}");
        assert!(answer.1["content-type"].to_str().unwrap().starts_with(kind));
        assert!(answer.1.contains_key("content-security-policy"));
        assert!(!answer.2.contains(TOKEN));
    }
    // The files hold no data; the data does not come without the token.
    assert_eq!(get(&gw.admin_url("/routes"), &[]).await.0, 401);
    assert_eq!(get(&gw.admin_url("/deliveries"), &[]).await.0, 401);
    assert_eq!(get(&gw.admin_url("/ui/other.js"), &[]).await.0, 401);
    assert_eq!(post(&gw.admin_url("/"), &[], b"").await.0, 405);
    // The config view's last reload: none yet, then this one.
    assert!(admin_json(&gw, "/routes").await["last_reload"].is_null());
    post(&gw.admin_url("/reload"), &bearer(), b"").await;
    let last = &admin_json(&gw, "/routes").await["last_reload"];
    assert_eq!(last["result"], "error", "test.toml does not exist: {last}");
    assert!(!last["details"].as_array().unwrap().is_empty(), "{last}");
}

/// What the browser needs, checked before it starts, with what to do when it is missing.
fn browser_setup() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "the admin page tests need Debian's chromium at /usr/bin/chromium: \
         `apt-get install chromium` (scripts/test installs it)"
    );
    assert!(
        dir.join("node_modules/playwright-core").exists(),
        "the admin page tests need playwright-core: `cd tests/browser && npm ci` \
         (scripts/test runs it)"
    );
    dir
}

/// The browser scenarios, in one Chromium launch: token prompt, overview counters,
/// a rejected delivery with its diagnosis, replay (exact bytes), bulk replay,
/// dead-letter retry, reconcile run-now, config and reload, and no foreign request.
#[tokio::test]
async fn the_page_in_chromium_shows_and_acts_on_real_deliveries() {
    let browser = browser_setup();
    let (up, orders, api) = (
        Upstream::start().await,
        Upstream::start().await,
        FakeStripe::start().await,
    );
    orders.answer(400, Duration::ZERO);
    let dir = tempfile::tempdir().unwrap();
    let gw = start_from_file(&page_config(&up, &orders, &api), dir.path()).await;

    let mut child = tokio::process::Command::new("node")
        .arg(browser.join("admin_page.mjs"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("HOOKWALL_ADMIN", gw.admin_url("/"))
        .env("HOOKWALL_TOKEN", TOKEN)
        .env("HOOKWALL_SECRET", SECRET)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs (it is on the machine)");
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut transcript = Vec::new();
    let mut next_id = 0;
    let run = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            println!("browser: {line}");
            transcript.push(line.clone());
            let Some(request) = line.strip_prefix('@') else {
                continue;
            };
            let answer = act(request, &gw, &up, &orders, &api, &mut next_id).await;
            println!("answer: {answer}");
            stdin
                .write_all(format!("{answer}\n").as_bytes())
                .await
                .unwrap();
        }
        child.wait().await.unwrap()
    };
    let status = tokio::time::timeout(Duration::from_secs(150), run)
        .await
        .expect("the browser scenarios finish within 150 s");
    assert!(
        status.success() && transcript.last().is_some_and(|l| l == "PASS"),
        "the browser scenarios failed:\n{}",
        transcript.join("\n")
    );
    // From this side too: the replay and the retried dead letter arrived.
    let replays: Vec<_> = up
        .seen()
        .into_iter()
        .filter(|s| s.headers.contains_key("x-hookwall-replay-of"))
        .collect();
    assert!(replays.iter().any(|s| s.body == EXACT_BODY));
    assert_eq!(orders.delivered_counts()["evt-dead"], 2);
}

/// One request of the browser script; the answer line it reads back.
async fn act(
    request: &str,
    gw: &TestGateway,
    up: &Upstream,
    orders: &Upstream,
    api: &FakeStripe,
    next_id: &mut usize,
) -> String {
    let acme = gw.url("/webhooks/acme");
    match request.split_once(' ').unwrap_or((request, "")) {
        ("deliver", n) => {
            for _ in 0..n.parse::<usize>().unwrap() {
                *next_id += 1;
                let id = format!("evt-{next_id}");
                let body = format!(r#"{{"id":"{id}","type":"invoice.paid"}}"#);
                let answer = post(&acme, &signed(body.as_bytes(), NOW, &id), body.as_bytes()).await;
                if answer.0 != 200 {
                    return format!("err delivery {id}: {} {}", answer.0, answer.2);
                }
            }
            "ok".into()
        }
        ("reject", _) => {
            // Signed without the newline a proxy then added.
            let body = br#"{"id":"evt-bad","type":"invoice.paid"}"#;
            let sent = [&body[..], b"\n"].concat();
            let answer = post(&acme, &signed(body, NOW, "evt-bad"), &sent).await;
            if answer.0 != 401 {
                return format!("err the bad signature was answered {}", answer.0);
            }
            wait_listed(gw, "/deliveries?outcome=rejected", "deliveries", |d| {
                d["diagnosis"] == "trailing_newline_added"
            })
            .await;
            "ok".into()
        }
        ("exact", _) => {
            let answer = post(&acme, &signed(EXACT_BODY, NOW, "evt-exact"), EXACT_BODY).await;
            if answer.0 != 200 {
                return format!("err {} {}", answer.0, answer.2);
            }
            wait_listed(gw, "/deliveries?dedup_id=evt-exact", "deliveries", |_| true).await;
            "ok".into()
        }
        ("check-replay", _) => {
            let original = up
                .seen()
                .into_iter()
                .find(|s| s.body == EXACT_BODY)
                .expect("the original delivery");
            wait_until(|| {
                up.seen()
                    .iter()
                    .any(|s| s.headers.contains_key("x-hookwall-replay-of"))
            })
            .await;
            let replay = up
                .seen()
                .into_iter()
                .find(|s| s.headers.contains_key("x-hookwall-replay-of"));
            match replay {
                Some(r)
                    if r.body == EXACT_BODY
                        && r.headers["x-hookwall-delivery-id"]
                            == original.headers["x-hookwall-delivery-id"]
                        && r.headers["x-sig"] == original.headers["x-sig"] =>
                {
                    "ok".into()
                }
                Some(r) => format!("err the replay differs: {:?} {:?}", r.body, r.headers),
                None => "err no replay reached the upstream".into(),
            }
        }
        ("count-forwarded", _) => {
            let v = admin_json(gw, "/deliveries?route=acme&outcome=forwarded&limit=500").await;
            format!("ok {}", v["deliveries"].as_array().unwrap().len())
        }
        ("dead-letter", _) => {
            let body = br#"{"id":"evt-dead","type":"order.created"}"#;
            let answer = post(
                &gw.url("/webhooks/orders"),
                &signed(body, NOW, "evt-dead"),
                body,
            )
            .await;
            if answer.0 != 202 {
                return format!("err {} {}", answer.0, answer.2);
            }
            wait_listed(gw, "/dead-letters", "dead_letters", |d| {
                d["delivery_id"] == "evt-dead"
            })
            .await;
            "ok".into()
        }
        ("upstream-back", _) => {
            orders.answer(200, Duration::ZERO);
            // Reconcile's event arrives at the provider while the page is on the queue.
            api.add("evt_missed_by_webhook", NOW - 60);
            "ok".into()
        }
        ("check-retry", _) => {
            wait_until(|| orders.delivered_counts().get("evt-dead") == Some(&2)).await;
            let seen = orders.seen();
            match seen.last() {
                Some(last)
                    if orders.delivered_counts().get("evt-dead") == Some(&2)
                        && last.headers["x-hookwall-attempt"] == "1" =>
                {
                    "ok".into()
                }
                _ => format!("err the retry did not arrive as attempt 1: {}", seen.len()),
            }
        }
        _ => format!("err unknown request {request}"),
    }
}
