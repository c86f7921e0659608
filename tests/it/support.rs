//! The harness: a real upstream HTTP server on loopback that records what it receives, a
//! real gateway on a free port, a signed-request builder and a small client.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use hmac::{Hmac, Mac};
use hookwall::clock::FakeClock;
use hookwall::config::compile_str;
use hookwall::gateway::Gateway;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use sha2::Sha256;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// The HMAC secret every test route uses.
pub(crate) const SECRET: &str = "test-secret-do-not-log-7f3a";
/// A second secret for rotation tests.
pub(crate) const OLD_SECRET: &str = "old-secret-also-never-logged";
/// The fake "now" of in-process gateways.
pub(crate) const NOW: i64 = 1_800_000_000;

/// One request as the upstream saw it.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    pub(crate) method: http::Method,
    pub(crate) uri: http::Uri,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    /// When it arrived.
    pub(crate) at: std::time::Instant,
}

/// How the upstream answers.
#[derive(Debug, Clone)]
pub(crate) struct Behaviour {
    pub(crate) status: StatusCode,
    pub(crate) body: &'static str,
    pub(crate) delay: Duration,
    /// A `Retry-After` value to send.
    pub(crate) retry_after: Option<&'static str>,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            status: StatusCode::OK,
            body: "upstream-ok",
            delay: Duration::ZERO,
            retry_after: None,
        }
    }
}

/// A real HTTP server on 127.0.0.1 that records requests.
pub(crate) struct Upstream {
    pub(crate) addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    behaviour: Arc<Mutex<Behaviour>>,
    hits: Arc<AtomicUsize>,
    stop: Option<oneshot::Sender<()>>,
}

impl Upstream {
    /// Starts on a free port.
    pub(crate) async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::start_on(listener).await
    }

    /// Starts on a given listener (to come up on a port that was down).
    pub(crate) async fn start_on(listener: TcpListener) -> Self {
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let behaviour = Arc::new(Mutex::new(Behaviour::default()));
        let hits = Arc::new(AtomicUsize::new(0));
        let (tx, mut rx) = oneshot::channel();
        let (s, b, h) = (seen.clone(), behaviour.clone(), hits.clone());
        tokio::spawn(async move {
            loop {
                let stream = tokio::select! {
                    r = listener.accept() => match r { Ok((s, _)) => s, Err(_) => continue },
                    _ = &mut rx => break,
                };
                let (s, b, h) = (s.clone(), b.clone(), h.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<Incoming>| {
                        let (s, b, h) = (s.clone(), b.clone(), h.clone());
                        async move {
                            h.fetch_add(1, Ordering::SeqCst);
                            let (parts, body) = req.into_parts();
                            let body = body
                                .collect()
                                .await
                                .map(|c| c.to_bytes())
                                .unwrap_or_default();
                            s.lock().unwrap().push(Seen {
                                method: parts.method,
                                uri: parts.uri,
                                headers: parts.headers,
                                body,
                                at: std::time::Instant::now(),
                            });
                            let behaviour = b.lock().unwrap().clone();
                            tokio::time::sleep(behaviour.delay).await;
                            let mut resp = Response::new(Full::new(Bytes::from_static(
                                behaviour.body.as_bytes(),
                            )));
                            *resp.status_mut() = behaviour.status;
                            resp.headers_mut()
                                .insert("x-upstream", "yes".parse().unwrap());
                            if let Some(after) = behaviour.retry_after {
                                resp.headers_mut()
                                    .insert("retry-after", after.parse().unwrap());
                            }
                            Ok::<_, Infallible>(resp)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Upstream {
            addr,
            seen,
            behaviour,
            hits,
            stop: Some(tx),
        }
    }

    /// Changes how it answers from now on.
    pub(crate) fn answer(&self, status: u16, delay: Duration) {
        let mut b = self.behaviour.lock().unwrap();
        b.status = StatusCode::from_u16(status).unwrap();
        b.delay = delay;
        b.retry_after = None;
    }

    /// Answers with `body` from now on.
    pub(crate) fn answer_body(&self, body: &'static str) {
        self.behaviour.lock().unwrap().body = body;
    }

    /// Answers `status` with `Retry-After: retry_after` from now on.
    pub(crate) fn answer_retry_after(&self, status: u16, retry_after: &'static str) {
        let mut b = self.behaviour.lock().unwrap();
        b.status = StatusCode::from_u16(status).unwrap();
        b.delay = Duration::ZERO;
        b.retry_after = Some(retry_after);
    }

    /// Requests received so far.
    pub(crate) fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// How many requests arrived.
    /// The `X-Hookwall-Delivery-Id` of each request received, in order.
    pub(crate) fn delivery_ids(&self) -> Vec<String> {
        self.seen()
            .iter()
            .filter_map(|s| s.headers.get("x-hookwall-delivery-id"))
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }

    /// How many requests of each delivery id it received.
    pub(crate) fn delivered_counts(&self) -> std::collections::HashMap<String, usize> {
        let mut counts = std::collections::HashMap::new();
        for id in self.delivery_ids() {
            *counts.entry(id).or_default() += 1;
        }
        counts
    }

    pub(crate) fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// Stops accepting (existing connections are dropped with the runtime).
    pub(crate) fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A gateway running in this process on free ports.
pub(crate) struct TestGateway {
    pub(crate) addr: SocketAddr,
    pub(crate) admin: SocketAddr,
    pub(crate) gateway: Arc<Gateway>,
    pub(crate) clock: Arc<FakeClock>,
    /// The storage the journal writes to.
    pub(crate) storage: Arc<hookwall::storage::Storage>,
    stop: Option<tokio::sync::watch::Sender<bool>>,
    done: Option<tokio::task::JoinHandle<()>>,
    journal: Option<tokio::task::JoinHandle<()>>,
    /// The folder of its SQLite file, when it made one.
    _dir: Option<tempfile::TempDir>,
}

/// The standard route: generic HMAC over `{timestamp}.{body}`, id header, dedup on.
pub(crate) fn standard_route(upstream: &str, extra: &str) -> String {
    format!(
        r#"
[[route]]
name = "acme"
path = "/webhooks/acme"
upstream = "{upstream}/hooks/acme"
secrets = [{{ value = "{SECRET}", id = "current" }}, {{ value = "{OLD_SECRET}", id = "old" }}]
timeout = "2s"
{extra}
[route.verify]
header = "X-Sig"
prefix = "sha256="
payload = "{{timestamp}}.{{body}}"
timestamp_header = "X-Ts"
id_header = "X-Delivery"
"#
    )
}

/// A recording upstream and a gateway with the standard route (plus `route_extra`).
pub(crate) async fn setup(route_extra: &str) -> (Upstream, TestGateway) {
    let up = Upstream::start().await;
    let gw = TestGateway::start(&config_with(
        "",
        "",
        &standard_route(&up.url(), route_extra),
    ))
    .await;
    (up, gw)
}

/// `[server]`/`[admin]`/`[dedup]` tables on free ports plus `routes`.
/// A `provider` preset route at `/<provider>`, named after it, with one secret.
pub(crate) fn preset_route(up: &Upstream, provider: &str, secret: &str, extra: &str) -> String {
    format!(
        "[[route]]\nname = \"{provider}\"\npath = \"/{provider}\"\nupstream = \"{}/hooks\"\nprovider = \"{provider}\"\nsecrets = [{{ value = {secret:?} }}]\ntimeout = \"2s\"\n{extra}\n",
        up.url()
    )
}

pub(crate) fn config_with(server_extra: &str, dedup_extra: &str, routes: &str) -> String {
    // A short lease (routes use 2s timeouts) unless the test sets its own.
    let lease = if dedup_extra.contains("lease") {
        ""
    } else {
        "lease = \"5s\""
    };
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
read_timeout = "1s"
{server_extra}
[admin]
listen = "127.0.0.1:0"
[dedup]
{lease}
{dedup_extra}
{routes}
"#
    )
}

impl TestGateway {
    /// Starts a gateway for `config` with a memory store and a fake clock at [`NOW`].
    pub(crate) async fn start(config: &str) -> Self {
        let cfg = compile_str(config, std::path::Path::new("test.toml"))
            .unwrap_or_else(|e| panic!("{e}"));
        let stores = hookwall::dedup::build(&cfg.dedup).unwrap();
        Self::start_with(cfg, stores).await
    }

    /// Starts with an explicit store, and storage in a SQLite file of its own.
    pub(crate) async fn start_with(
        cfg: hookwall::config::Config,
        stores: hookwall::dedup::Stores,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let backend = hookwall::config::StorageBackend::Sqlite {
            path: dir.path().join("hookwall.db"),
        };
        let storage = Arc::new(hookwall::storage::Storage::open(&backend).await.unwrap());
        let mut gw = Self::start_on(cfg, stores, storage).await;
        gw._dir = Some(dir);
        gw
    }

    /// Starts with explicit stores and storage.
    pub(crate) async fn start_on(
        cfg: hookwall::config::Config,
        stores: hookwall::dedup::Stores,
        storage: Arc<hookwall::storage::Storage>,
    ) -> Self {
        let clock = Arc::new(FakeClock::at(NOW));
        let proxy = TcpListener::bind(cfg.server.listen).await.unwrap();
        let admin = TcpListener::bind(cfg.admin.listen).await.unwrap();
        let (addr, admin_addr) = (proxy.local_addr().unwrap(), admin.local_addr().unwrap());
        let gateway = Gateway::with_parts(cfg, stores, clock.clone()).unwrap();
        let (tx, rx) = tokio::sync::watch::channel(false);
        let wait = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let journal = gateway.attach_storage(storage.clone(), wait(rx.clone()));
        gateway.start_queue(rx.clone()).await;
        gateway.start_reconcile(rx.clone()).await;
        gateway.start_ip_ranges(rx.clone());
        tokio::spawn(hookwall::admin::run(
            admin,
            gateway.clone(),
            wait(rx.clone()),
        ));
        let done = tokio::spawn(hookwall::transport::run(proxy, gateway.clone(), wait(rx)));
        TestGateway {
            addr,
            admin: admin_addr,
            gateway,
            clock,
            storage,
            stop: Some(tx),
            done: Some(done),
            journal: Some(journal),
            _dir: None,
        }
    }

    /// Its SQLite file, when it made one.
    pub(crate) fn sqlite_file(&self) -> Option<std::path::PathBuf> {
        self._dir.as_ref().map(|d| d.path().join("hookwall.db"))
    }

    /// `http://ADDR` + path.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `http://ADMIN` + path.
    pub(crate) fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin)
    }

    /// Stops and waits for the drain.
    pub(crate) async fn shutdown(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(true);
        }
        if let Some(done) = self.done.take() {
            let _ = done.await;
        }
        self.gateway.drain_queue(Duration::from_secs(5)).await;
        if let Some(journal) = self.journal.take() {
            let _ = journal.await;
        }
    }

    /// The value of one sample in `/metrics`, e.g.
    /// `hookwall_rejections_total{route="acme",reason="invalid_signature"}`.
    pub(crate) async fn metric(&self, sample: &str) -> f64 {
        let text = get(&self.admin_url("/metrics"), &[]).await.2;
        metric_value(&text, sample).unwrap_or(0.0)
    }

    /// Waits (up to 5 s) until a sample reaches `value`: for counts made by another task
    /// after the client already saw its answer (a connection closed, then counted).
    pub(crate) async fn metric_reaches(&self, sample: &str, value: f64) -> f64 {
        let mut last = 0.0;
        for _ in 0..500 {
            last = self.metric(sample).await;
            if last >= value {
                return last;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        last
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        // Stop the listeners with the test; the runtime ends the rest.
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(true);
        }
    }
}

/// Finds a sample by name and labels (label order as written by the exposition).
pub(crate) fn metric_value(text: &str, sample: &str) -> Option<f64> {
    let (name, labels) = match sample.split_once('{') {
        Some((n, l)) => (n, l.trim_end_matches('}')),
        None => (sample, ""),
    };
    let wanted: Vec<&str> = labels.split(',').filter(|s| !s.is_empty()).collect();
    text.lines().find_map(|line| {
        let (head, value) = line.rsplit_once(' ')?;
        let (n, l) = match head.split_once('{') {
            Some((n, l)) => (n, l.trim_end_matches('}')),
            None => (head, ""),
        };
        let have: Vec<&str> = l.split(',').filter(|s| !s.is_empty()).collect();
        (n == name && wanted.iter().all(|w| have.contains(w)) && have.len() == wanted.len())
            .then(|| value.parse().ok())?
    })
}

/// HMAC-SHA256 hex, computed here independently of the gateway's code.
pub(crate) fn hmac_hex(secret: &str, parts: &[&[u8]]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    for p in parts {
        mac.update(p);
    }
    hex::encode(mac.finalize().into_bytes())
}

/// Headers of a valid delivery for the standard route.
pub(crate) fn signed(body: &[u8], ts: i64, delivery: &str) -> Vec<(String, String)> {
    signed_with(SECRET, body, ts, delivery)
}

/// Like [`signed`] with another secret.
pub(crate) fn signed_with(
    secret: &str,
    body: &[u8],
    ts: i64,
    delivery: &str,
) -> Vec<(String, String)> {
    let ts_s = ts.to_string();
    let sig = hmac_hex(secret, &[ts_s.as_bytes(), b".", body]);
    vec![
        ("X-Sig".into(), format!("sha256={sig}")),
        ("X-Ts".into(), ts_s),
        ("X-Delivery".into(), delivery.into()),
    ]
}

/// The answer to a request: status, headers, body text.
pub(crate) type Answer = (u16, HeaderMap, String);

/// A client on its own connection pool.
pub(crate) fn client() -> hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    Full<Bytes>,
> {
    hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build_http()
}

/// Sends one request and reads the whole answer (bounded: 10 s).
pub(crate) async fn send(
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Answer {
    let mut req = Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let req = req.body(Full::new(Bytes::copy_from_slice(body))).unwrap();
    let fut = async {
        let resp = client().request(req).await.expect("request failed");
        let (parts, body) = resp.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        (
            parts.status.as_u16(),
            parts.headers,
            String::from_utf8_lossy(&bytes).into_owned(),
        )
    };
    tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .expect("request timed out")
}

/// POST.
pub(crate) async fn post(url: &str, headers: &[(String, String)], body: &[u8]) -> Answer {
    send("POST", url, headers, body).await
}

/// GET.
pub(crate) async fn get(url: &str, headers: &[(String, String)]) -> Answer {
    send("GET", url, headers, b"").await
}

/// The `error` field of a gateway answer.
pub(crate) fn reason(answer: &Answer) -> String {
    serde_json::from_str::<serde_json::Value>(&answer.2)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// A loopback address nothing listens on (bound, then released).
pub(crate) async fn dead_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap()
}

/// Polls `cond` every 10 ms for up to 5 s (for events in another task, not for timing).
pub(crate) async fn wait_until(mut cond: impl FnMut() -> bool) {
    for _ in 0..500 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition not met within 5s");
}

/// Runs the `hookwall` binary with `args` against the admin listener at `admin`: exit code,
/// stdout, stderr.
pub(crate) async fn cli_against(admin: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let mut all: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    all.extend(["--admin".to_owned(), admin.to_owned()]);
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_hookwall"))
            .args(&all)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}
