//! Fetched keys end to end: Google (JWKS and certificate map), Plaid (key API) and SNS
//! (certificate URL) against a loopback HTTPS key server whose certificate comes from the
//! test CA (trusted through the route's `fetch_tls.ca_file`), counting what reaches it.
//! Vectors: `tests/fixtures/vectors/hard_presets.json` (made and accepted by google-auth,
//! python-jose as in Plaid's docs, and AWS's sns-validator; see each entry's `source`).

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::Value;

use crate::presets_hard::{s, vectors};
use crate::support::*;
use crate::test_ca::TestCa;

/// What the key server answers on a path.
#[derive(Clone)]
struct Answer {
    status: u16,
    body: String,
    cache_control: Option<&'static str>,
}

/// One request that reached the key server.
#[derive(Clone, Debug)]
struct Hit {
    method: String,
    path: String,
    body: String,
}

/// An HTTPS server on 127.0.0.1 answering per path and recording every request.
struct KeyServer {
    addr: SocketAddr,
    answers: Arc<Mutex<HashMap<String, Answer>>>,
    hits: Arc<Mutex<Vec<Hit>>>,
    ca_file: tempfile::NamedTempFile,
}

impl KeyServer {
    async fn start() -> Self {
        let ca = TestCa::new();
        let leaf = ca.issue(&["127.0.0.1", "localhost"]);
        let chain = vec![CertificateDer::from_pem_slice(leaf.cert_pem.as_bytes()).unwrap()];
        let key = PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let answers: Arc<Mutex<HashMap<String, Answer>>> = Arc::default();
        let hits: Arc<Mutex<Vec<Hit>>> = Arc::default();
        let (a, h) = (answers.clone(), hits.clone());
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, a, h) = (acceptor.clone(), a.clone(), h.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let (a, h) = (a.clone(), h.clone());
                        async move {
                            let method = req.method().to_string();
                            let path = req.uri().path().to_owned();
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            h.lock().unwrap().push(Hit {
                                method,
                                path: path.clone(),
                                body: String::from_utf8_lossy(&body).into_owned(),
                            });
                            let answer = a.lock().unwrap().get(&path).cloned().unwrap_or(Answer {
                                status: 404,
                                body: "not found".into(),
                                cache_control: None,
                            });
                            let mut resp = Response::new(Full::new(Bytes::from(answer.body)));
                            *resp.status_mut() = StatusCode::from_u16(answer.status).unwrap();
                            if let Some(cc) = answer.cache_control {
                                resp.headers_mut()
                                    .insert("cache-control", cc.parse().unwrap());
                            }
                            Ok::<_, Infallible>(resp)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), svc)
                        .await;
                });
            }
        });
        let ca_file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(ca_file.path(), ca.pem()).unwrap();
        KeyServer {
            addr,
            answers,
            hits,
            ca_file,
        }
    }

    fn answer(&self, path: &str, status: u16, body: &str, cache_control: Option<&'static str>) {
        self.answers.lock().unwrap().insert(
            path.to_owned(),
            Answer {
                status,
                body: body.to_owned(),
                cache_control,
            },
        );
    }

    fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }

    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    fn count(&self, path: &str) -> usize {
        self.hits().iter().filter(|h| h.path == path).count()
    }

    /// `fetch_tls = { ca_file = ... }` trusting this server.
    fn fetch_tls(&self) -> String {
        format!(
            "fetch_tls = {{ ca_file = {:?} }}\n",
            self.ca_file.path().display().to_string()
        )
    }
}

fn route(up: &Upstream, name: &str, provider: &str, extra: &str) -> String {
    format!(
        "[[route]]\nname = \"{name}\"\npath = \"/{name}\"\nupstream = \"{}/hooks\"\nprovider = \"{provider}\"\ntimeout = \"2s\"\n{extra}\n",
        up.url()
    )
}

fn bearer(token: &str) -> Vec<(String, String)> {
    vec![("Authorization".to_owned(), format!("Bearer {token}"))]
}

/// A JWT with its header's `kid` replaced (the signature no longer matches; only the key
/// lookup matters).
fn with_kid(token: &str, kid: &str) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let (head, rest) = token.split_once('.').unwrap();
    let mut header: Value = serde_json::from_slice(&b64.decode(head).unwrap()).unwrap();
    header["kid"] = kid.into();
    format!("{}.{rest}", b64.encode(header.to_string()))
}

const CERTS: &str = "/oauth2/v3/certs";

async fn pubsub(keys: &KeyServer, up: &Upstream, audience: &str) -> TestGateway {
    let extra = format!(
        "google = {{ audience = {audience:?}, service_account = \"push@my-project.iam.gserviceaccount.com\", key_url = {:?} }}\n{}",
        keys.url(CERTS),
        keys.fetch_tls()
    );
    let gw = TestGateway::start(&config_with(
        "",
        "",
        &route(up, "pubsub", "google-pubsub", &extra),
    ))
    .await;
    let iat = vectors()["pubsub"]["iat"].as_i64().unwrap();
    gw.clock.set(iat + 60);
    gw
}

#[tokio::test]
async fn google_pubsub_token_is_verified_with_fetched_and_cached_keys() {
    let v = vectors();
    let keys = KeyServer::start().await;
    keys.answer(
        CERTS,
        200,
        &v["pubsub"]["jwks"].to_string(),
        Some("public, max-age=19204, must-revalidate"),
    );
    let up = Upstream::start().await;
    let gw = pubsub(&keys, &up, "https://hooks.example.com/webhooks/pubsub").await;
    let (token, body) = (s(&v, "/pubsub/token"), s(&v, "/pubsub/body"));
    let ok = post(&gw.url("/pubsub"), &bearer(token), body.as_bytes()).await;
    assert_eq!(ok.0, 200, "{}", ok.2);
    let again = post(&gw.url("/pubsub"), &bearer(token), body.as_bytes()).await;
    assert_eq!(again.0, 200, "a duplicate messageId is answered 200 too");
    assert_eq!(keys.count(CERTS), 1, "the keys are cached");
    assert_eq!(up.hits(), 1, "the second was a duplicate (messageId)");

    let altered = crate::presets_hard::altered(token);
    let bad = post(&gw.url("/pubsub"), &bearer(&altered), body.as_bytes()).await;
    assert_eq!((bad.0, reason(&bad).as_str()), (401, "invalid_signature"));
    let none = post(&gw.url("/pubsub"), &[], body.as_bytes()).await;
    assert_eq!((none.0, reason(&none).as_str()), (401, "missing_signature"));

    // Expired: an hour after iat (plus the 5 minutes of skew allowed).
    let iat = v["pubsub"]["iat"].as_i64().unwrap();
    gw.clock.set(iat + 3600 + 301);
    let late = post(&gw.url("/pubsub"), &bearer(token), body.as_bytes()).await;
    assert_eq!(
        (late.0, reason(&late).as_str()),
        (401, "timestamp_out_of_window")
    );
    gw.clock.set(iat - 301);
    let early = post(&gw.url("/pubsub"), &bearer(token), body.as_bytes()).await;
    assert_eq!(
        (early.0, reason(&early).as_str()),
        (401, "timestamp_out_of_window")
    );
}

#[tokio::test]
async fn google_pubsub_audience_and_service_account_are_checked() {
    let v = vectors();
    let keys = KeyServer::start().await;
    keys.answer(CERTS, 200, &v["pubsub"]["jwks"].to_string(), None);
    let up = Upstream::start().await;
    let gw = pubsub(&keys, &up, "https://hooks.example.com/webhooks/other").await;
    let r = post(
        &gw.url("/pubsub"),
        &bearer(s(&v, "/pubsub/token")),
        s(&v, "/pubsub/body").as_bytes(),
    )
    .await;
    assert_eq!((r.0, reason(&r).as_str()), (401, "invalid_signature"));
    let extra = format!(
        "google = {{ audience = \"https://hooks.example.com/webhooks/pubsub\", service_account = \"someone-else@p.iam.gserviceaccount.com\", key_url = {:?} }}\n{}",
        keys.url(CERTS),
        keys.fetch_tls()
    );
    let gw2 = TestGateway::start(&config_with(
        "",
        "",
        &route(&up, "pubsub", "google-pubsub", &extra),
    ))
    .await;
    gw2.clock.set(v["pubsub"]["iat"].as_i64().unwrap() + 60);
    let r2 = post(
        &gw2.url("/pubsub"),
        &bearer(s(&v, "/pubsub/token")),
        s(&v, "/pubsub/body").as_bytes(),
    )
    .await;
    assert_eq!((r2.0, reason(&r2).as_str()), (401, "invalid_signature"));
    assert_eq!(up.hits(), 0);
}

#[tokio::test]
async fn an_unknown_kid_triggers_exactly_one_fetch_and_concurrent_requests_share_it() {
    let v = vectors();
    let keys = KeyServer::start().await;
    keys.answer(
        CERTS,
        200,
        &v["pubsub"]["jwks"].to_string(),
        Some("max-age=3600"),
    );
    let up = Upstream::start().await;
    let gw = pubsub(&keys, &up, "https://hooks.example.com/webhooks/pubsub").await;
    let (token, body) = (
        s(&v, "/pubsub/token").to_owned(),
        s(&v, "/pubsub/body").to_owned(),
    );
    // Twenty requests at once on a cold cache: one fetch.
    let url = gw.url("/pubsub");
    let all = (0..20).map(|_| {
        let (url, token, body) = (url.clone(), token.clone(), body.clone());
        tokio::spawn(async move { post(&url, &bearer(&token), body.as_bytes()).await.0 })
    });
    for r in futures_join(all).await {
        assert_eq!(r, 200);
    }
    assert_eq!(
        keys.count(CERTS),
        1,
        "one fetch in flight, the others waited for it"
    );
    // A kid the set does not have: one refresh, then no more for a while.
    let unknown = with_kid(&token, "a-kid-google-never-issued");
    for _ in 0..5 {
        let r = post(&url, &bearer(&unknown), body.as_bytes()).await;
        assert_eq!((r.0, reason(&r).as_str()), (401, "invalid_signature"));
    }
    assert_eq!(
        keys.count(CERTS),
        2,
        "exactly one fetch for the unknown kid"
    );
}

/// A Pub/Sub route whose key server is down (`extra`: more route keys) and its answer to
/// the fixture's push; the key server returned is only for its CA file.
async fn push_with_the_key_server_down(
    v: &Value,
    up: &Upstream,
    extra: &str,
) -> (KeyServer, TestGateway, crate::support::Answer) {
    let dead = dead_port().await;
    let keys = KeyServer::start().await;
    let extra = format!(
        "{extra}\ngoogle = {{ audience = \"https://hooks.example.com/webhooks/pubsub\", service_account = \"push@my-project.iam.gserviceaccount.com\", key_url = \"https://{dead}/certs\" }}\n{}",
        keys.fetch_tls()
    );
    let gw = TestGateway::start(&config_with(
        "",
        "",
        &route(up, "pubsub", "google-pubsub", &extra),
    ))
    .await;
    gw.clock.set(v["pubsub"]["iat"].as_i64().unwrap() + 60);
    let r = post(
        &gw.url("/pubsub"),
        &bearer(s(v, "/pubsub/token")),
        s(v, "/pubsub/body").as_bytes(),
    )
    .await;
    (keys, gw, r)
}

#[tokio::test]
async fn a_key_server_that_is_down_is_503_with_retry_after_never_401() {
    let v = vectors();
    let up = Upstream::start().await;
    let (keys, _gw, r) = push_with_the_key_server_down(&v, &up, "").await;
    assert_eq!((r.0, reason(&r).as_str()), (503, "key_unavailable"));
    assert!(r.1.get("retry-after").is_some(), "{:?}", r.1);
    // A server that answers garbage or 500 is unavailable too.
    keys.answer(CERTS, 500, "oops", None);
    let extra = format!(
        "google = {{ audience = \"https://hooks.example.com/webhooks/pubsub\", service_account = \"push@my-project.iam.gserviceaccount.com\", key_url = {:?} }}\n{}",
        keys.url(CERTS),
        keys.fetch_tls()
    );
    let gw2 = TestGateway::start(&config_with(
        "",
        "",
        &route(&up, "pubsub", "google-pubsub", &extra),
    ))
    .await;
    gw2.clock.set(v["pubsub"]["iat"].as_i64().unwrap() + 60);
    let r2 = post(
        &gw2.url("/pubsub"),
        &bearer(s(&v, "/pubsub/token")),
        s(&v, "/pubsub/body").as_bytes(),
    )
    .await;
    assert_eq!((r2.0, reason(&r2).as_str()), (503, "key_unavailable"));
    // Backing off: the next request within the back-off does not fetch again.
    let r3 = post(
        &gw2.url("/pubsub"),
        &bearer(s(&v, "/pubsub/token")),
        s(&v, "/pubsub/body").as_bytes(),
    )
    .await;
    assert_eq!(r3.0, 503);
    assert_eq!(keys.count(CERTS), 1);
    assert_eq!(up.hits(), 0);
    assert_eq!(
        gw2.metric(r#"hookwall_rejections_total{route="pubsub",reason="key_unavailable"}"#)
            .await,
        2.0
    );
}

#[tokio::test]
async fn google_chat_token_is_verified_with_the_service_account_certificates() {
    let v = vectors();
    let keys = KeyServer::start().await;
    let path = "/service_accounts/v1/metadata/x509/chat@system.gserviceaccount.com";
    keys.answer(path, 200, &v["chat"]["certs"].to_string(), None);
    let up = Upstream::start().await;
    let extra = |aud: &str| {
        format!(
            "google = {{ audience = {aud:?}, key_url = {:?} }}\n{}",
            keys.url(path),
            keys.fetch_tls()
        )
    };
    let gw = TestGateway::start(&config_with(
        "",
        "",
        &route(&up, "chat", "google-chat", &extra("1234567890")),
    ))
    .await;
    let iat = v["chat"]["iat"].as_i64().unwrap();
    gw.clock.set(iat + 60);
    let (token, body) = (s(&v, "/chat/token"), s(&v, "/chat/body"));
    let ok = post(&gw.url("/chat"), &bearer(token), body.as_bytes()).await;
    assert_eq!(ok.0, 200, "{}", ok.2);
    let bad = post(
        &gw.url("/chat"),
        &bearer(&crate::presets_hard::altered(token)),
        body.as_bytes(),
    )
    .await;
    assert_eq!(bad.0, 401);
    let other = TestGateway::start(&config_with(
        "",
        "",
        &route(&up, "chat", "google-chat", &extra("999")),
    ))
    .await;
    other.clock.set(iat + 60);
    let r = post(&other.url("/chat"), &bearer(token), body.as_bytes()).await;
    assert_eq!((r.0, reason(&r).as_str()), (401, "invalid_signature"));
    assert_eq!(
        keys.count(path),
        1,
        "one fetch per source, shared by both routes"
    );
    assert_eq!(up.hits(), 1);
}

const PLAID: &str = "/webhook_verification_key/get";

#[tokio::test]
async fn plaid_key_is_fetched_by_kid_with_the_api_credentials() {
    let v = vectors();
    let keys = KeyServer::start().await;
    keys.answer(
        PLAID,
        200,
        &serde_json::json!({ "key": v["plaid"]["jwk"], "request_id": "Ab1" }).to_string(),
        None,
    );
    let up = Upstream::start().await;
    let extra = format!(
        "plaid = {{ client_id = \"plaid-client-id\", secret = {{ value = \"plaid-api-secret\" }}, api_base = {:?} }}\n{}",
        keys.url(""),
        keys.fetch_tls()
    );
    let gw = TestGateway::start(&config_with("", "", &route(&up, "plaid", "plaid", &extra))).await;
    let iat = v["plaid"]["iat"].as_i64().unwrap();
    gw.clock.set(iat + 10);
    let (token, body) = (s(&v, "/plaid/token"), s(&v, "/plaid/body"));
    let h = vec![("Plaid-Verification".to_owned(), token.to_owned())];
    let ok = post(&gw.url("/plaid"), &h, body.as_bytes()).await;
    assert_eq!(ok.0, 200, "{}", ok.2);
    let hits = keys.hits();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].method, "POST");
    let sent: Value = serde_json::from_str(&hits[0].body).unwrap();
    assert_eq!(
        sent,
        serde_json::json!({ "client_id": "plaid-client-id", "secret": "plaid-api-secret", "key_id": v["plaid"]["jwk"]["kid"] })
    );
    // The body's digest is signed.
    let t = post(
        &gw.url("/plaid"),
        &h,
        &crate::presets::tampered(body.as_bytes()),
    )
    .await;
    assert_eq!((t.0, reason(&t).as_str()), (401, "invalid_signature"));
    // iat older than five minutes.
    gw.clock.set(iat + 301);
    let late = post(&gw.url("/plaid"), &h, body.as_bytes()).await;
    assert_eq!(
        (late.0, reason(&late).as_str()),
        (401, "timestamp_out_of_window")
    );
    gw.clock.set(iat + 10);
    // An unknown kid: Plaid answers 400; asked once, then remembered.
    keys.answer(PLAID, 400, r#"{"error_code":"INVALID_INPUT"}"#, None);
    let unknown = vec![(
        "Plaid-Verification".to_owned(),
        with_kid(token, "never-issued"),
    )];
    for _ in 0..3 {
        let r = post(&gw.url("/plaid"), &unknown, body.as_bytes()).await;
        assert_eq!((r.0, reason(&r).as_str()), (401, "invalid_signature"));
    }
    assert_eq!(keys.count(PLAID), 2);
    // The credentials are in no answer and no route listing.
    let routes = get(&gw.admin_url("/routes"), &[]).await;
    assert!(!routes.2.contains("plaid-api-secret"));
}

#[tokio::test]
async fn plaid_expired_keys_verify_nothing() {
    let v = vectors();
    let keys = KeyServer::start().await;
    let mut jwk = v["plaid"]["jwk"].clone();
    jwk["expired_at"] = 1_700_000_000.into();
    keys.answer(
        PLAID,
        200,
        &serde_json::json!({ "key": jwk }).to_string(),
        None,
    );
    let up = Upstream::start().await;
    let extra = format!(
        "plaid = {{ client_id = \"id\", secret = \"s\", api_base = {:?} }}\n{}",
        keys.url(""),
        keys.fetch_tls()
    );
    let gw = TestGateway::start(&config_with("", "", &route(&up, "plaid", "plaid", &extra))).await;
    gw.clock.set(v["plaid"]["iat"].as_i64().unwrap() + 10);
    let h = vec![(
        "Plaid-Verification".to_owned(),
        s(&v, "/plaid/token").to_owned(),
    )];
    let r = post(&gw.url("/plaid"), &h, s(&v, "/plaid/body").as_bytes()).await;
    assert_eq!((r.0, reason(&r).as_str()), (401, "invalid_signature"));
}

const CERT: &str = "/SimpleNotificationService-0123456789abcdef.pem";

fn sns_message(v: &Value, name: &str, cert_url: &str) -> Vec<u8> {
    let mut m = v["sns"][name].clone();
    m["SigningCertURL"] = cert_url.into();
    m.to_string().into_bytes()
}

async fn sns_gateway(keys: &KeyServer, up: &Upstream, sns_extra: &str) -> TestGateway {
    let extra = format!(
        "sns = {{ topics = [\"arn:aws:sns:us-west-2:123456789012:MyTopic\"], cert_hosts = [\"127.0.0.1:{}\"]{sns_extra} }}\n{}",
        keys.addr.port(),
        keys.fetch_tls()
    );
    TestGateway::start(&config_with("", "", &route(up, "sns", "sns", &extra))).await
}

#[tokio::test]
async fn sns_messages_verify_with_the_certificate_from_an_allowed_host_only() {
    let v = vectors();
    let keys = KeyServer::start().await;
    keys.answer(CERT, 200, s(&v, "/sns/cert"), None);
    let up = Upstream::start().await;
    let gw = sns_gateway(&keys, &up, "").await;
    let url = keys.url(CERT);
    for name in ["notification_v1", "notification_v2"] {
        let r = post(&gw.url("/sns"), &[], &sns_message(&v, name, &url)).await;
        assert_eq!(r.0, 200, "{name}: {}", r.2);
    }
    assert_eq!(keys.count(CERT), 1, "cached per certificate URL");
    // MessageId is the dedup key: SNS's retry is a duplicate.
    let dup = post(
        &gw.url("/sns"),
        &[],
        &sns_message(&v, "notification_v2", &url),
    )
    .await;
    assert_eq!(dup.0, 200);
    assert_eq!(up.hits(), 2);
    // A changed message, a changed signature character, another signature version.
    let mut m = v["sns"]["notification_v2"].clone();
    m["SigningCertURL"] = url.clone().into();
    let send = |m: Value| {
        let gw_url = gw.url("/sns");
        async move { post(&gw_url, &[], m.to_string().as_bytes()).await }
    };
    let mut changed = m.clone();
    changed["Message"] = "{\"order\":43}".into();
    let mut resig = m.clone();
    resig["Signature"] = crate::presets_hard::altered(m["Signature"].as_str().unwrap()).into();
    let mut version = m.clone();
    version["SignatureVersion"] = "1".into();
    let mut unsigned = m.clone();
    unsigned.as_object_mut().unwrap().remove("Signature");
    for (what, msg, want) in [
        ("changed message", changed, "invalid_signature"),
        ("changed signature", resig, "invalid_signature"),
        ("other version", version, "invalid_signature"),
        ("no signature", unsigned, "missing_signature"),
    ] {
        let r = send(msg).await;
        assert_eq!((r.0, reason(&r).as_str()), (401, want), "{what}");
    }
    // A certificate URL on any other host is refused without a fetch.
    let elsewhere = KeyServer::start().await;
    elsewhere.answer(CERT, 200, s(&v, "/sns/cert"), None);
    for other in [
        elsewhere.url(CERT),
        format!("http://127.0.0.1:{}{CERT}", keys.addr.port()),
        "https://sns.us-west-2.amazonaws.com.evil.example/cert.pem".to_owned(),
    ] {
        let r = post(
            &gw.url("/sns"),
            &[],
            &sns_message(&v, "notification_v1", &other),
        )
        .await;
        assert_eq!(
            (r.0, reason(&r).as_str()),
            (401, "invalid_signature"),
            "{other}"
        );
    }
    assert!(
        elsewhere.hits().is_empty(),
        "no fetch from a host outside the allowlist"
    );
    assert_eq!(keys.count(CERT), 1);
}

#[tokio::test]
async fn sns_topics_not_listed_are_refused_not_forwarded() {
    let v = vectors();
    let keys = KeyServer::start().await;
    keys.answer(CERT, 200, s(&v, "/sns/cert"), None);
    let up = Upstream::start().await;
    let extra = format!(
        "sns = {{ topics = [\"arn:aws:sns:us-west-2:123456789012:OtherTopic\"], cert_hosts = [\"127.0.0.1:{}\"] }}\n{}",
        keys.addr.port(),
        keys.fetch_tls()
    );
    let gw = TestGateway::start(&config_with("", "", &route(&up, "sns", "sns", &extra))).await;
    let r = post(
        &gw.url("/sns"),
        &[],
        &sns_message(&v, "notification_v2", &keys.url(CERT)),
    )
    .await;
    assert_eq!((r.0, reason(&r).as_str()), (403, "topic_not_allowed"));
    assert_eq!(up.hits(), 0);
}

/// A SubscriptionConfirmation pointing at `subscribe_url`, signed (SignatureVersion 2) with
/// the fixture's throwaway key, as SNS signs it.
fn confirmation(v: &Value, subscribe_url: &str, cert_url: &str) -> Vec<u8> {
    use base64::Engine;
    let mut m = v["sns"]["confirmation_v2"].clone();
    m["SubscribeURL"] = subscribe_url.into();
    m["SigningCertURL"] = cert_url.into();
    let canonical: String = [
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ]
    .iter()
    .map(|k| format!("{k}\n{}\n", m[*k].as_str().unwrap()))
    .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(s(v, "/sns/key_pkcs8_b64"))
        .unwrap();
    let key = ring::signature::RsaKeyPair::from_pkcs8(&der).unwrap();
    let mut sig = vec![0; key.public().modulus_len()];
    key.sign(
        &ring::signature::RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        canonical.as_bytes(),
        &mut sig,
    )
    .unwrap();
    m["Signature"] = base64::engine::general_purpose::STANDARD.encode(sig).into();
    m.to_string().into_bytes()
}

#[tokio::test]
async fn sns_subscription_is_confirmed_only_when_the_route_allows_it() {
    let v = vectors();
    let keys = KeyServer::start().await;
    keys.answer(CERT, 200, s(&v, "/sns/cert"), None);
    keys.answer("/confirm", 200, "<ConfirmSubscriptionResponse/>", None);
    let up = Upstream::start().await;
    // The fixture's own confirmation (SignatureVersion 2, accepted by sns-validator)
    // verifies too; its SubscribeURL is not ours, so it is not fetched.
    let auto = sns_gateway(&keys, &up, ", auto_confirm = true").await;
    let theirs = post(
        &auto.url("/sns"),
        &[],
        &sns_message(&v, "confirmation_v2", &keys.url(CERT)),
    )
    .await;
    assert_eq!(
        (theirs.0, reason(&theirs).as_str()),
        (403, "handshake_refused")
    );
    let msg = confirmation(&v, &keys.url("/confirm"), &keys.url(CERT));
    let r = post(&auto.url("/sns"), &[], &msg).await;
    assert_eq!(r.0, 200, "{}", r.2);
    assert_eq!(keys.count("/confirm"), 1);
    assert_eq!(
        keys.hits()
            .iter()
            .find(|h| h.path == "/confirm")
            .unwrap()
            .method,
        "GET"
    );
    assert_eq!(
        up.hits(),
        0,
        "a confirmation handled by the gateway is not forwarded"
    );
    // The confirmation URL failing: 502, so SNS tries again.
    keys.answer("/confirm", 500, "no", None);
    let failed = post(
        &auto.url("/sns"),
        &[],
        &confirmation(&v, &keys.url("/confirm"), &keys.url(CERT)),
    )
    .await;
    assert_eq!(
        (failed.0, reason(&failed).as_str()),
        (502, "confirmation_failed")
    );
    // Without auto_confirm the application confirms: forwarded, nothing fetched.
    let manual = sns_gateway(&keys, &up, "").await;
    let before = keys.count("/confirm");
    let f = post(&manual.url("/sns"), &[], &msg).await;
    assert_eq!(f.0, 200);
    assert_eq!(up.hits(), 1);
    assert_eq!(keys.count("/confirm"), before);
}

async fn futures_join<T: Send + 'static>(
    handles: impl Iterator<Item = tokio::task::JoinHandle<T>>,
) -> Vec<T> {
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

/// Shadow mode (`enforce = false`): a key server that is down is not a reason to refuse;
/// the delivery is forwarded marked `key_unavailable`, counted as a shadow rejection only.
#[tokio::test]
async fn in_shadow_mode_an_unavailable_key_is_forwarded_marked() {
    let v = vectors();
    let up = Upstream::start().await;
    let (_keys, gw, r) = push_with_the_key_server_down(&v, &up, "enforce = false").await;
    assert_eq!(r.0, 200, "{}", r.2);
    assert_eq!(up.hits(), 1);
    let seen = &up.seen()[0];
    assert_eq!(seen.headers["x-hookwall-would-reject"], "key_unavailable");
    assert!(!seen.headers.contains_key("x-hookwall-verified"));
    assert_eq!(
        gw.metric(r#"hookwall_shadow_rejections_total{route="pubsub",reason="key_unavailable"}"#)
            .await,
        1.0
    );
    assert_eq!(
        gw.metric(r#"hookwall_rejections_total{route="pubsub",reason="key_unavailable"}"#)
            .await,
        0.0
    );
}

/// Shadow mode: a verified SNS notification of a topic the route does not list is
/// forwarded marked `topic_not_allowed`.
#[tokio::test]
async fn in_shadow_mode_a_topic_not_listed_is_forwarded_marked() {
    let v = vectors();
    let keys = KeyServer::start().await;
    keys.answer(CERT, 200, s(&v, "/sns/cert"), None);
    let up = Upstream::start().await;
    let extra = format!(
        "enforce = false\nsns = {{ topics = [\"arn:aws:sns:us-west-2:123456789012:OtherTopic\"], cert_hosts = [\"127.0.0.1:{}\"] }}\n{}",
        keys.addr.port(),
        keys.fetch_tls()
    );
    let gw = TestGateway::start(&config_with("", "", &route(&up, "sns", "sns", &extra))).await;
    let r = post(
        &gw.url("/sns"),
        &[],
        &sns_message(&v, "notification_v2", &keys.url(CERT)),
    )
    .await;
    assert_eq!(r.0, 200, "{}", r.2);
    assert_eq!(up.hits(), 1);
    assert_eq!(
        up.seen()[0].headers["x-hookwall-would-reject"],
        "topic_not_allowed"
    );
    assert_eq!(
        gw.metric(r#"hookwall_shadow_rejections_total{route="sns",reason="topic_not_allowed"}"#)
            .await,
        1.0
    );
}
