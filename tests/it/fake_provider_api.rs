//! Fake provider APIs for reconcile, real HTTP servers on 127.0.0.1 that follow the
//! providers' documented paging and field names:
//!
//! - [`FakeStripe`]: `GET /v1/events` with `created[gte]`, `limit`, `starting_after`,
//!   newest first, `{"object":"list","data":[...],"has_more":..}`; Bearer auth.
//! - [`FakeGithub`]: `GET /repos/{o}/{n}/hooks/{id}/deliveries` (newest first, `per_page`,
//!   `cursor` paging in the `Link` header) and `POST .../deliveries/{id}/attempts`, which
//!   redelivers: it sends the delivery's payload, signed, to the webhook URL, and lists the
//!   attempt with the status it got.
//!
//! Both record every request, can answer the next N calls `429` with `Retry-After`, can
//! hold each answer a while, and count how many calls were in flight at once.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::support::{hmac_hex, post};

/// A request the fake received.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub(crate) method: http::Method,
    pub(crate) path: String,
    pub(crate) query: HashMap<String, String>,
    pub(crate) authorization: Option<String>,
    pub(crate) api_key: Option<String>,
    pub(crate) at: Instant,
}

/// What every fake shares: the record, throttling, delays, concurrency.
#[derive(Default)]
pub(crate) struct Common {
    calls: Mutex<Vec<Call>>,
    throttle_next: AtomicUsize,
    delay: Mutex<Duration>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

impl Common {
    /// Calls so far.
    pub(crate) fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }
    /// Answers the next `n` calls `429 Retry-After: 1`.
    pub(crate) fn throttle(&self, n: usize) {
        self.throttle_next.store(n, Ordering::SeqCst);
    }
    /// Holds every answer this long.
    pub(crate) fn delay(&self, d: Duration) {
        *self.delay.lock().unwrap() = d;
    }
    /// The most calls that were in flight at once.
    pub(crate) fn max_in_flight(&self) -> usize {
        self.max_in_flight.load(Ordering::SeqCst)
    }
}

type Handler = Arc<
    dyn Fn(Call, Bytes) -> Pin<Box<dyn Future<Output = Response<Full<Bytes>>> + Send>>
        + Send
        + Sync,
>;

fn json_answer(status: StatusCode, v: &Value) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(v.to_string())));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    resp
}

/// Serves the handler `make` builds (told its own address) on a free loopback port,
/// recording calls in `common`.
async fn serve(common: Arc<Common>, make: impl FnOnce(SocketAddr) -> Handler) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handler = make(addr);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let (common, handler) = (common.clone(), handler.clone());
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<Incoming>| {
                    let (common, handler) = (common.clone(), handler.clone());
                    async move {
                        let (parts, body) = req.into_parts();
                        let body = body
                            .collect()
                            .await
                            .map(|c| c.to_bytes())
                            .unwrap_or_default();
                        let query =
                            form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
                                .into_owned()
                                .collect();
                        let call = Call {
                            method: parts.method.clone(),
                            path: parts.uri.path().to_owned(),
                            query,
                            authorization: parts
                                .headers
                                .get("authorization")
                                .map(|v| v.to_str().unwrap().to_owned()),
                            api_key: parts
                                .headers
                                .get("x-api-key")
                                .map(|v| v.to_str().unwrap().to_owned()),
                            at: Instant::now(),
                        };
                        common.calls.lock().unwrap().push(call.clone());
                        let now = common.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                        common.max_in_flight.fetch_max(now, Ordering::SeqCst);
                        let delay = *common.delay.lock().unwrap();
                        tokio::time::sleep(delay).await;
                        let throttled = common
                            .throttle_next
                            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                            .is_ok();
                        let resp = if throttled {
                            let mut r = json_answer(
                                StatusCode::TOO_MANY_REQUESTS,
                                &json!({"error": {"type": "rate_limit"}}),
                            );
                            r.headers_mut().insert("retry-after", "1".parse().unwrap());
                            r
                        } else {
                            handler(call, body).await
                        };
                        common.in_flight.fetch_sub(1, Ordering::SeqCst);
                        Ok::<_, Infallible>(resp)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

/// The restricted key the fake Stripe accepts.
pub(crate) const STRIPE_KEY: &str = "rk_test_reconcile_only";

/// A fake Stripe events API.
pub(crate) struct FakeStripe {
    pub(crate) addr: SocketAddr,
    pub(crate) common: Arc<Common>,
    events: Arc<Mutex<Vec<Value>>>,
}

impl FakeStripe {
    pub(crate) async fn start() -> Self {
        let common = Arc::new(Common::default());
        let events: Arc<Mutex<Vec<Value>>> = Arc::default();
        let list = events.clone();
        let handler: Handler = Arc::new(move |call, _| {
            let list = list.clone();
            Box::pin(async move { stripe_answer(&call, &list.lock().unwrap()) })
        });
        let addr = serve(common.clone(), |_| handler).await;
        FakeStripe {
            addr,
            common,
            events,
        }
    }

    /// `http://127.0.0.1:PORT`, for `api_base`.
    pub(crate) fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Adds an event created at `created`; returns its JSON (the bytes Stripe sends).
    pub(crate) fn add(&self, id: &str, created: i64) -> String {
        let event = json!({
            "id": id,
            "object": "event",
            "api_version": "2024-06-20",
            "created": created,
            "data": {"object": {"id": format!("in_{id}"), "object": "invoice", "amount_paid": 1200}},
            "livemode": false,
            "pending_webhooks": 1,
            "request": {"id": null, "idempotency_key": null},
            "type": "invoice.paid"
        });
        let text = event.to_string();
        self.events.lock().unwrap().push(event);
        text
    }

    /// The `/v1/events` calls made.
    pub(crate) fn list_calls(&self) -> Vec<Call> {
        self.common
            .calls()
            .into_iter()
            .filter(|c| c.path == "/v1/events")
            .collect()
    }
}

fn stripe_answer(call: &Call, events: &[Value]) -> Response<Full<Bytes>> {
    if call.authorization.as_deref() != Some(&format!("Bearer {STRIPE_KEY}")) {
        return json_answer(
            StatusCode::UNAUTHORIZED,
            &json!({"error": {"type": "invalid_request_error"}}),
        );
    }
    if call.method != http::Method::GET || call.path != "/v1/events" {
        return json_answer(StatusCode::NOT_FOUND, &json!({"error": {}}));
    }
    let gte: i64 = call
        .query
        .get("created[gte]")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let limit: usize = call
        .query
        .get("limit")
        .and_then(|v| v.parse().ok())
        .unwrap_or(10)
        .clamp(1, 100);
    // Newest first; among equal times, the later added first (Stripe's order).
    let mut listed: Vec<(usize, &Value)> = events
        .iter()
        .enumerate()
        .filter(|(_, e)| e["created"].as_i64().unwrap() >= gte)
        .collect();
    listed.sort_by_key(|(i, e)| std::cmp::Reverse((e["created"].as_i64().unwrap(), *i)));
    let start = match call.query.get("starting_after") {
        Some(after) => match listed.iter().position(|(_, e)| e["id"] == after.as_str()) {
            Some(p) => p + 1,
            None => {
                return json_answer(
                    StatusCode::BAD_REQUEST,
                    &json!({"error": {"message": "No such event"}}),
                )
            }
        },
        None => 0,
    };
    let page: Vec<Value> = listed
        .iter()
        .skip(start)
        .take(limit)
        .map(|(_, e)| (*e).clone())
        .collect();
    let has_more = listed.len() > start + page.len();
    json_answer(
        StatusCode::OK,
        &json!({"object": "list", "data": page, "has_more": has_more, "url": "/v1/events"}),
    )
}

/// The token the fake GitHub accepts.
pub(crate) const GITHUB_TOKEN: &str = "github_pat_reconcile_hooks_read_write";
/// The hook the fake GitHub serves.
pub(crate) const HOOK: &str = "/repos/acme/shop/hooks/77/deliveries";

/// A delivery in the fake GitHub's log.
#[derive(Debug, Clone)]
pub(crate) struct Delivery {
    pub(crate) id: u64,
    pub(crate) guid: String,
    pub(crate) delivered_at: i64,
    pub(crate) status_code: u16,
    pub(crate) redelivery: bool,
    pub(crate) payload: Bytes,
}

/// A fake GitHub hook-deliveries API that redelivers to a webhook URL.
pub(crate) struct FakeGithub {
    pub(crate) addr: SocketAddr,
    pub(crate) common: Arc<Common>,
    log: Arc<Mutex<Vec<Delivery>>>,
}

impl FakeGithub {
    /// Redeliveries go to `webhook_url`, signed with `secret`; deliveries are dated from
    /// `now` (the gateway's clock).
    pub(crate) async fn start(webhook_url: String, secret: &'static str, now: i64) -> Self {
        let common = Arc::new(Common::default());
        let log: Arc<Mutex<Vec<Delivery>>> = Arc::default();
        let state = log.clone();
        let addr = serve(common.clone(), move |own: SocketAddr| -> Handler {
            Arc::new(move |call, _| {
                let (state, url) = (state.clone(), webhook_url.clone());
                Box::pin(async move { github_answer(call, state, url, own, secret, now).await })
            })
        })
        .await;
        FakeGithub { addr, common, log }
    }

    pub(crate) fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Logs a delivery attempt of `guid` that got `status_code`.
    pub(crate) fn attempt(&self, guid: &str, delivered_at: i64, status_code: u16) {
        let mut log = self.log.lock().unwrap();
        let id = log.iter().map(|d| d.id).max().unwrap_or(1000) + 1;
        let payload =
            Bytes::from(json!({"action": "opened", "number": id, "guid": guid}).to_string());
        log.push(Delivery {
            id,
            guid: guid.to_owned(),
            delivered_at,
            status_code,
            redelivery: false,
            payload,
        });
    }

    /// The log as it is now.
    pub(crate) fn log(&self) -> Vec<Delivery> {
        self.log.lock().unwrap().clone()
    }

    /// The delivery ids redelivery was asked for, in order.
    pub(crate) fn redelivery_requests(&self) -> Vec<u64> {
        self.common
            .calls()
            .iter()
            .filter(|c| c.method == http::Method::POST)
            .filter_map(|c| {
                c.path
                    .strip_prefix(&format!("{HOOK}/"))?
                    .strip_suffix("/attempts")?
                    .parse()
                    .ok()
            })
            .collect()
    }
}

async fn github_answer(
    call: Call,
    log: Arc<Mutex<Vec<Delivery>>>,
    webhook_url: String,
    own: SocketAddr,
    secret: &'static str,
    now: i64,
) -> Response<Full<Bytes>> {
    if call.authorization.as_deref() != Some(&format!("Bearer {GITHUB_TOKEN}")) {
        return json_answer(
            StatusCode::UNAUTHORIZED,
            &json!({"message": "Requires authentication"}),
        );
    }
    if call.method == http::Method::GET && call.path == HOOK {
        let per_page: usize = call
            .query
            .get("per_page")
            .and_then(|v| v.parse().ok())
            .unwrap_or(30)
            .clamp(1, 100);
        let offset: usize = call
            .query
            .get("cursor")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut all = log.lock().unwrap().clone();
        all.sort_by_key(|d| std::cmp::Reverse(d.id));
        let page: Vec<Value> = all
            .iter()
            .skip(offset)
            .take(per_page)
            .map(|d| {
                json!({
                    "id": d.id,
                    "guid": d.guid,
                    "delivered_at": humantime::format_rfc3339_seconds(
                        std::time::UNIX_EPOCH + Duration::from_secs(d.delivered_at as u64)
                    ).to_string(),
                    "redelivery": d.redelivery,
                    "duration": 0.27,
                    "status": if (200..300).contains(&d.status_code) { "OK" } else { "Invalid HTTP Response: 503" },
                    "status_code": d.status_code,
                    "event": "pull_request",
                    "action": "opened",
                    "installation_id": null,
                    "repository_id": 42
                })
            })
            .collect();
        let mut resp = json_answer(StatusCode::OK, &Value::Array(page));
        if all.len() > offset + per_page {
            let next = format!(
                "<http://{own}{HOOK}?per_page={per_page}&cursor={c}>; rel=\"next\"",
                c = offset + per_page
            );
            resp.headers_mut().insert("link", next.parse().unwrap());
        }
        return resp;
    }
    let attempt = call
        .path
        .strip_prefix(&format!("{HOOK}/"))
        .and_then(|p| p.strip_suffix("/attempts"))
        .and_then(|id| id.parse::<u64>().ok());
    if let (true, Some(id)) = (call.method == http::Method::POST, attempt) {
        let Some(original) = log.lock().unwrap().iter().find(|d| d.id == id).cloned() else {
            return json_answer(StatusCode::NOT_FOUND, &json!({"message": "Not Found"}));
        };
        // GitHub answers at once and redelivers on its own time.
        tokio::spawn(async move {
            let sig = hmac_hex(secret, &[&original.payload]);
            let answer = post(
                &webhook_url,
                &[
                    ("X-Hub-Signature-256".into(), format!("sha256={sig}")),
                    ("X-GitHub-Delivery".into(), original.guid.clone()),
                    ("X-GitHub-Event".into(), "pull_request".into()),
                    ("Content-Type".into(), "application/json".into()),
                ],
                &original.payload,
            )
            .await;
            let mut log = log.lock().unwrap();
            let id = log.iter().map(|d| d.id).max().unwrap_or(1000) + 1;
            log.push(Delivery {
                id,
                guid: original.guid,
                delivered_at: now,
                status_code: answer.0,
                redelivery: true,
                payload: original.payload,
            });
        });
        return json_answer(StatusCode::ACCEPTED, &json!({}));
    }
    json_answer(StatusCode::NOT_FOUND, &json!({"message": "Not Found"}))
}

/// The key the fake generic API takes in `X-Api-Key`.
pub(crate) const GENERIC_KEY: &str = "events-read-only";

/// A fake generic events API: `GET /v2/events?since=<RFC 3339>` lists events created at or
/// after `since`, oldest first, two per page, `{"items":[...],"links":{"next":"/v2/..."}}`.
pub(crate) struct FakeGeneric {
    pub(crate) addr: SocketAddr,
    pub(crate) common: Arc<Common>,
    events: Arc<Mutex<Vec<(String, i64)>>>,
}

impl FakeGeneric {
    pub(crate) async fn start() -> Self {
        let common = Arc::new(Common::default());
        let events: Arc<Mutex<Vec<(String, i64)>>> = Arc::default();
        let list = events.clone();
        let handler: Handler = Arc::new(move |call, _| {
            let list = list.clone();
            Box::pin(async move { generic_answer(&call, &list.lock().unwrap()) })
        });
        let addr = serve(common.clone(), |_| handler).await;
        FakeGeneric {
            addr,
            common,
            events,
        }
    }

    pub(crate) fn add(&self, id: &str, created: i64) {
        self.events.lock().unwrap().push((id.to_owned(), created));
    }
}

fn rfc3339(secs: i64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_secs(secs as u64))
        .to_string()
}

fn generic_answer(call: &Call, events: &[(String, i64)]) -> Response<Full<Bytes>> {
    if call.api_key.as_deref() != Some(GENERIC_KEY) {
        return json_answer(StatusCode::UNAUTHORIZED, &json!({"error": "no key"}));
    }
    if call.path != "/v2/events" {
        return json_answer(StatusCode::NOT_FOUND, &json!({}));
    }
    let since = call
        .query
        .get("since")
        .and_then(|s| humantime::parse_rfc3339(s).ok())
        .map(|t| t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64)
        .unwrap_or(0);
    let skip: usize = call
        .query
        .get("offset")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut listed: Vec<&(String, i64)> = events.iter().filter(|(_, c)| *c >= since).collect();
    listed.sort_by_key(|(_, c)| *c);
    let page: Vec<Value> = listed
        .iter()
        .skip(skip)
        .take(2)
        .map(|(id, c)| json!({"event_id": id, "occurred_at": rfc3339(*c), "kind": "order.paid"}))
        .collect();
    let next = (listed.len() > skip + 2).then(|| {
        format!(
            "/v2/events?since={}&offset={}",
            call.query.get("since").cloned().unwrap_or_default(),
            skip + 2
        )
    });
    json_answer(
        StatusCode::OK,
        &json!({"items": page, "links": {"next": next}}),
    )
}
