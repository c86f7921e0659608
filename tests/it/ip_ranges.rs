//! Provider IP ranges (CONTRACT §12): `@name` in `allow_ips` expands to the provider's
//! published list; `[ip_ranges] refresh` fetches it again from a fake list server on
//! loopback, swaps a good answer in and keeps the last good list when a fetch fails.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::support::*;

/// A published list on 127.0.0.1 that answers what it is told.
struct ListServer {
    url: String,
    answer: Arc<Mutex<(u16, String)>>,
}

impl ListServer {
    async fn start(status: u16, body: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/meta", listener.local_addr().unwrap());
        let answer = Arc::new(Mutex::new((status, body.to_owned())));
        let shared = answer.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let answer = shared.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |_req| {
                        let (status, body) = answer.lock().unwrap().clone();
                        async move {
                            Ok::<_, Infallible>(
                                Response::builder()
                                    .status(StatusCode::from_u16(status).unwrap())
                                    .body(Full::new(Bytes::from(body)))
                                    .unwrap(),
                            )
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        ListServer { url, answer }
    }

    fn answer(&self, status: u16, body: &str) {
        *self.answer.lock().unwrap() = (status, body.to_owned());
    }
}

/// `@name` expands to the shipped list (the test client, 127.0.0.1, is in none), listed
/// CIDRs beside it still count, and `/routes` shows what was written.
#[tokio::test]
async fn a_provider_list_expands_beside_plain_cidrs() {
    let (_up, gw) = setup(r#"allow_ips = ["@github", "@stripe"]"#).await;
    let body = br#"{"n":1}"#;
    let answer = post(&gw.url("/webhooks/acme"), &signed(body, NOW, "ip-1"), body).await;
    assert_eq!((answer.0, reason(&answer)), (403, "ip_not_allowed".into()));

    let (up, gw) = setup(r#"allow_ips = ["@github", "127.0.0.0/8"]"#).await;
    let answer = post(&gw.url("/webhooks/acme"), &signed(body, NOW, "ip-2"), body).await;
    assert_eq!(answer.0, 200, "{}", answer.2);
    assert_eq!(up.hits(), 1);
    let routes = get(&gw.admin_url("/routes"), &[]).await;
    let v: serde_json::Value = serde_json::from_str(&routes.2).unwrap();
    assert_eq!(
        v["routes"][0]["allow_ips"],
        serde_json::json!(["@github", "127.0.0.0/8"])
    );
}

async fn refreshes(gw: &TestGateway, result: &str) -> f64 {
    gw.metric(&format!(
        r#"hookwall_ip_range_refreshes_total{{list="@github",result="{result}"}}"#
    ))
    .await
}

async fn refreshes_reach(gw: &TestGateway, result: &str, n: f64) {
    for _ in 0..500 {
        if refreshes(gw, result).await >= n {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("{result} refreshes never reached {n}");
}

/// A failed fetch keeps the shipped list; a good one swaps in (the client is now allowed);
/// a failed one after it keeps the refreshed list; the next good one replaces it whole.
#[tokio::test]
async fn refresh_swaps_good_lists_in_and_keeps_the_last_good_one_on_failure() {
    let lists = ListServer::start(500, "down").await;
    let up = Upstream::start().await;
    let config = format!(
        "[ip_ranges]\nrefresh = \"50ms\"\nurls = {{ github = {:?} }}\n{}",
        lists.url,
        config_with(
            "",
            "",
            &standard_route(&up.url(), r#"allow_ips = ["@github"]"#)
        )
    );
    let gw = TestGateway::start(&config).await;
    let body = br#"{"n":2}"#;
    let send = |id: &'static str| {
        let url = gw.url("/webhooks/acme");
        async move { post(&url, &signed(body, NOW, id), body).await.0 }
    };

    refreshes_reach(&gw, "error", 1.0).await;
    assert_eq!(send("r-1").await, 403, "the shipped list stays");

    lists.answer(200, r#"{"hooks":["127.0.0.1/32","192.30.252.0/22"]}"#);
    refreshes_reach(&gw, "ok", 1.0).await;
    assert_eq!(send("r-2").await, 200, "the refreshed list is in use");
    assert_eq!(
        gw.metric(r#"hookwall_ip_range_networks{list="@github"}"#)
            .await,
        2.0
    );

    // Broken answers of every kind: the refreshed list stays.
    let errors = refreshes(&gw, "error").await;
    lists.answer(200, r#"{"hooks":[]}"#);
    refreshes_reach(&gw, "error", errors + 1.0).await;
    lists.answer(200, r#"{"hooks":["0.0.0.0/0"]}"#);
    refreshes_reach(&gw, "error", errors + 2.0).await;
    lists.answer(503, "maintenance");
    refreshes_reach(&gw, "error", errors + 3.0).await;
    assert_eq!(send("r-3").await, 200, "the last good list stays");

    let oks = refreshes(&gw, "ok").await;
    lists.answer(200, r#"{"hooks":["192.0.2.0/24"]}"#);
    refreshes_reach(&gw, "ok", oks + 1.0).await;
    assert_eq!(send("r-4").await, 403, "replaced whole, not merged");
}
