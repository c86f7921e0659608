//! Tracing (CONTRACT §13): one delivery is one trace, exported over OTLP/HTTP to a
//! receiver on loopback that decodes what hookwall sends (protobuf, `POST /v1/traces`);
//! the upstream gets a `traceparent` in that trace whose parent is the `forward` span.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use tokio::net::TcpListener;

use crate::support::*;

/// An OTLP/HTTP receiver: decodes every `POST /v1/traces` and keeps the spans.
struct Collector {
    url: String,
    spans: Arc<Mutex<Vec<Span>>>,
    /// `service.name` of the resources received.
    services: Arc<Mutex<Vec<String>>>,
}

impl Collector {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let spans = Arc::new(Mutex::new(Vec::new()));
        let services = Arc::new(Mutex::new(Vec::new()));
        let (s, r) = (spans.clone(), services.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (spans, services) = (s.clone(), r.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<Incoming>| {
                        let (spans, services) = (spans.clone(), services.clone());
                        async move {
                            let ok = req.method() == http::Method::POST
                                && req.uri().path() == "/v1/traces"
                                && req.headers()["content-type"] == "application/x-protobuf";
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            let status = match ExportTraceServiceRequest::decode(body) {
                                Ok(export) if ok => {
                                    for rs in export.resource_spans {
                                        for kv in rs.resource.iter().flat_map(|r| &r.attributes) {
                                            if kv.key == "service.name" {
                                                services.lock().unwrap().push(text(kv));
                                            }
                                        }
                                        for ss in rs.scope_spans {
                                            spans.lock().unwrap().extend(ss.spans);
                                        }
                                    }
                                    200
                                }
                                _ => 400,
                            };
                            Ok::<_, Infallible>(
                                Response::builder()
                                    .status(status)
                                    .header("content-type", "application/x-protobuf")
                                    .body(Full::new(Bytes::new()))
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
        Collector {
            url,
            spans,
            services,
        }
    }

    fn spans_of(&self, trace: &[u8]) -> Vec<Span> {
        let all = self.spans.lock().unwrap();
        all.iter()
            .filter(|s| s.trace_id == trace)
            .cloned()
            .collect()
    }
}

fn text(kv: &opentelemetry_proto::tonic::common::v1::KeyValue) -> String {
    match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::BoolValue(b)) => b.to_string(),
        other => format!("{other:?}"),
    }
}

fn attributes(span: &Span) -> HashMap<String, String> {
    span.attributes
        .iter()
        .map(|kv| (kv.key.clone(), text(kv)))
        .collect()
}

/// `00-<trace>-<span>-<flags>` → (trace, span).
fn ids(traceparent: &str) -> (Vec<u8>, Vec<u8>) {
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts.len(), 4, "{traceparent}");
    (
        hex::decode(parts[1]).unwrap(),
        hex::decode(parts[2]).unwrap(),
    )
}

fn telemetry_table(collector: &Collector) -> String {
    format!(
        "[telemetry]\notlp_endpoint = {:?}\nexport_interval = \"100ms\"\nservice_name = \"hookwall-test\"\n",
        collector.url
    )
}

/// One delivery that continues the provider's trace: `receive` is the child of the
/// provider's span; `verify`, `dedup` and `forward` are children of `receive`, with their
/// attributes; the upstream's `traceparent` is in the same trace, under `forward`.
#[tokio::test]
async fn one_delivery_is_one_trace_and_the_upstream_joins_it() {
    let collector = Collector::start().await;
    let up = Upstream::start().await;
    let config = format!(
        "{}{}",
        telemetry_table(&collector),
        config_with("", "", &standard_route(&up.url(), ""))
    );
    let gw = TestGateway::start(&config).await;
    let provider_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let provider_span = "00f067aa0ba902b7";
    let body = br#"{"id":"evt_t1"}"#;
    let mut headers = signed(body, NOW, "evt-t1");
    headers.push((
        "traceparent".into(),
        format!("00-{provider_trace}-{provider_span}-01"),
    ));
    let answer = post(&gw.url("/webhooks/acme"), &headers, body).await;
    assert_eq!(answer.0, 200, "{}", answer.2);

    let upstream_tp = up.seen()[0].headers["traceparent"]
        .to_str()
        .unwrap()
        .to_owned();
    let (trace, parent_of_upstream) = ids(&upstream_tp);
    assert_eq!(hex::encode(&trace), provider_trace, "the provider's trace");
    assert!(upstream_tp.ends_with("-01"), "{upstream_tp}");

    wait_until(|| collector.spans_of(&trace).len() >= 4).await;
    let spans = collector.spans_of(&trace);
    let by_name: HashMap<&str, &Span> = spans.iter().map(|s| (s.name.as_str(), s)).collect();
    let mut names: Vec<&str> = by_name.keys().copied().collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["dedup", "forward", "receive", "verify"],
        "{spans:#?}"
    );
    assert_eq!(spans.len(), 4, "one span each");

    let receive = by_name["receive"];
    assert_eq!(hex::encode(&receive.parent_span_id), provider_span);
    assert_eq!(receive.kind, 2, "server");
    let a = attributes(receive);
    assert_eq!(a["hookwall.route"], "acme");
    assert_eq!(a["http.request.method"], "POST");
    assert_eq!(a["url.path"], "/webhooks/acme");
    assert_eq!(a["http.response.status_code"], "200");
    assert_eq!(a["hookwall.outcome"], "forwarded");
    assert_eq!(a["hookwall.dedup_id"], "evt-t1");
    assert!(a.contains_key("hookwall.request_id"));

    for child in ["verify", "dedup", "forward"] {
        assert_eq!(
            by_name[child].parent_span_id, receive.span_id,
            "{child} is a child of receive"
        );
    }
    assert_eq!(attributes(by_name["verify"])["hookwall.outcome"], "passed");
    assert_eq!(attributes(by_name["dedup"])["hookwall.dedup_id"], "evt-t1");
    let forward = by_name["forward"];
    assert_eq!(forward.kind, 3, "client");
    assert_eq!(forward.span_id, parent_of_upstream, "the upstream's parent");
    let f = attributes(forward);
    assert_eq!(f["http.response.status_code"], "200");
    assert_eq!(f["server.address"], up.addr.to_string());
    assert!(collector
        .services
        .lock()
        .unwrap()
        .iter()
        .all(|s| s == "hookwall-test"));
}

/// Without a `traceparent` a trace starts; a rejected delivery's `verify` span says why,
/// and nothing is forwarded.
#[tokio::test]
async fn a_trace_starts_and_a_refusal_is_recorded() {
    let collector = Collector::start().await;
    let up = Upstream::start().await;
    let config = format!(
        "{}{}",
        telemetry_table(&collector),
        config_with("", "", &standard_route(&up.url(), ""))
    );
    let gw = TestGateway::start(&config).await;
    let body = br#"{"id":"evt_t2"}"#;
    let answer = post(
        &gw.url("/webhooks/acme"),
        &signed(body, NOW, "evt-t2"),
        body,
    )
    .await;
    assert_eq!(answer.0, 200, "{}", answer.2);
    let (trace, _) = ids(up.seen()[0].headers["traceparent"].to_str().unwrap());
    wait_until(|| collector.spans_of(&trace).len() >= 4).await;
    let receive = collector
        .spans_of(&trace)
        .into_iter()
        .find(|s| s.name == "receive")
        .unwrap();
    assert!(receive.parent_span_id.is_empty(), "a root");

    let forged = signed_with("wrong-secret", body, NOW, "evt-t3");
    let answer = post(&gw.url("/webhooks/acme"), &forged, body).await;
    assert_eq!(answer.0, 401);
    let refused = || {
        let all = collector.spans.lock().unwrap();
        all.iter()
            .find(|s| s.name == "verify" && attributes(s).contains_key("hookwall.reason"))
            .cloned()
    };
    wait_until(|| refused().is_some()).await;
    let verify = refused().unwrap();
    assert_eq!(attributes(&verify)["hookwall.reason"], "invalid_signature");
    assert_eq!(verify.status.as_ref().unwrap().code, 2, "error status");
    let trace = verify.trace_id.clone();
    assert!(
        collector
            .spans_of(&trace)
            .iter()
            .all(|s| s.name != "forward"),
        "nothing forwarded"
    );
    assert_eq!(up.hits(), 1);
}

/// A buffered delivery: `receive` answers `queued`; each attempt is a `queue attempt`
/// span in the provider's trace, with its number, and its `forward` under it.
#[tokio::test]
async fn queued_attempts_continue_the_providers_trace() {
    let collector = Collector::start().await;
    let up = Upstream::start().await;
    let config = format!(
        "{}{}",
        telemetry_table(&collector),
        config_with(
            "",
            "",
            &standard_route(&up.url(), "delivery = \"buffered\"")
        )
    );
    let gw = TestGateway::start(&config).await;
    let provider_trace = "0af7651916cd43dd8448eb211c80319c";
    let body = br#"{"id":"evt_q"}"#;
    let mut headers = signed(body, NOW, "evt-q");
    headers.push((
        "traceparent".into(),
        format!("00-{provider_trace}-b7ad6b7169203331-01"),
    ));
    let answer = post(&gw.url("/webhooks/acme"), &headers, body).await;
    assert_eq!(answer.0, 202, "{}", answer.2);
    wait_until(|| up.hits() == 1).await;
    let (trace, parent_of_upstream) = ids(up.seen()[0].headers["traceparent"].to_str().unwrap());
    assert_eq!(hex::encode(&trace), provider_trace);
    let named = |name: &str| {
        collector
            .spans_of(&trace)
            .into_iter()
            .find(|s| s.name == name)
    };
    wait_until(|| named("forward").is_some() && named("receive").is_some()).await;
    let attempt = named("queue attempt").unwrap();
    assert_eq!(hex::encode(&attempt.parent_span_id), "b7ad6b7169203331");
    let a = attributes(&attempt);
    assert_eq!(a["hookwall.attempt"], "1");
    assert_eq!(a["hookwall.dedup_id"], "evt-q");
    assert_eq!(a["http.response.status_code"], "200");
    let forward = named("forward").unwrap();
    assert_eq!(forward.parent_span_id, attempt.span_id);
    assert_eq!(forward.span_id, parent_of_upstream);
    assert_eq!(
        attributes(&named("receive").unwrap())["hookwall.outcome"],
        "queued"
    );
}

/// Export off: the upstream still gets a `traceparent`, continuing the provider's trace
/// (a hop of hookwall's own) or starting one.
#[tokio::test]
async fn without_export_the_traceparent_is_still_passed_on() {
    let (up, gw) = setup("").await;
    let body = br#"{"id":"evt_o"}"#;
    let mut headers = signed(body, NOW, "evt-o1");
    headers.push((
        "traceparent".into(),
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into(),
    ));
    assert_eq!(post(&gw.url("/webhooks/acme"), &headers, body).await.0, 200);
    assert_eq!(
        post(
            &gw.url("/webhooks/acme"),
            &signed(body, NOW, "evt-o2"),
            body
        )
        .await
        .0,
        200
    );
    let seen = up.seen();
    let (t1, s1) = ids(seen[0].headers["traceparent"].to_str().unwrap());
    assert_eq!(hex::encode(t1), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_ne!(hex::encode(s1), "00f067aa0ba902b7", "hookwall's own hop");
    let (t2, s2) = ids(seen[1].headers["traceparent"].to_str().unwrap());
    assert_eq!((t2.len(), s2.len()), (16, 8));
    assert_ne!(hex::encode(t2), "4bf92f3577b34da6a3ce929d0e0e4736");
}

/// A replay continues the trace the stored request came in.
#[tokio::test]
async fn a_replay_continues_the_stored_requests_trace() {
    let (up, gw) = setup("").await;
    up.answer(500, std::time::Duration::ZERO);
    let body = br#"{"id":"evt_r"}"#;
    let mut headers = signed(body, NOW, "evt-r1");
    headers.push((
        "traceparent".into(),
        "00-5bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into(),
    ));
    assert_eq!(post(&gw.url("/webhooks/acme"), &headers, body).await.0, 500);
    up.answer(200, std::time::Duration::ZERO);
    let mut entry = None;
    for _ in 0..200 {
        let list = get(&gw.admin_url("/deliveries?dedup_id=evt-r1"), &[]).await;
        let v: serde_json::Value = serde_json::from_str(&list.2).unwrap();
        if let Some(id) = v["deliveries"][0]["id"].as_str() {
            entry = Some(id.to_owned());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let entry = entry.expect("the journal entry");
    let replay = post(
        &gw.admin_url(&format!("/deliveries/{entry}/replay")),
        &[],
        b"",
    )
    .await;
    assert_eq!(replay.0, 200, "{}", replay.2);
    let seen = up.seen();
    let (trace, _) = ids(seen.last().unwrap().headers["traceparent"]
        .to_str()
        .unwrap());
    assert_eq!(hex::encode(trace), "5bf92f3577b34da6a3ce929d0e0e4736");
}
