//! Event filters on a route (CONTRACT §12): `events = [...]` forwards the verified
//! deliveries it wants; the rest are answered `200 ignored` after dedup committed their id,
//! counted as `outcome="ignored"` and journaled.

use crate::journal::entries;
use crate::support::*;

/// The standard route, filtering on `json:/type`.
async fn filtered(events: &str) -> (Upstream, TestGateway) {
    setup(&format!("event = \"json:/type\"\nevents = {events}")).await
}

fn body_of(id: &str, kind: &str) -> Vec<u8> {
    format!(r#"{{"id":"{id}","type":"{kind}"}}"#).into_bytes()
}

async fn send(gw: &TestGateway, id: &str, kind: &str) -> Answer {
    let body = body_of(id, kind);
    post(&gw.url("/webhooks/acme"), &signed(&body, NOW, id), &body).await
}

fn status_field(answer: &Answer) -> String {
    serde_json::from_str::<serde_json::Value>(&answer.2).unwrap()["status"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn wanted_events_are_forwarded_and_the_rest_ignored_then_duplicate() {
    let (up, gw) = filtered(r#"["invoice.*", "charge.refunded"]"#).await;
    let paid = send(&gw, "e1", "invoice.paid").await;
    assert_eq!((paid.0, paid.2.as_str()), (200, "upstream-ok"));
    let refunded = send(&gw, "e2", "charge.refunded").await;
    assert_eq!(refunded.2, "upstream-ok");
    assert_eq!(up.hits(), 2);

    let ignored = send(&gw, "e3", "customer.created").await;
    assert_eq!(ignored.0, 200, "{}", ignored.2);
    let v: serde_json::Value = serde_json::from_str(&ignored.2).unwrap();
    assert_eq!(v["status"], "ignored");
    assert!(v["request_id"].as_str().is_some_and(|r| !r.is_empty()));
    assert_eq!(ignored.1["content-type"], "application/json");
    assert_eq!(
        up.hits(),
        2,
        "an ignored delivery never reaches the upstream"
    );

    // Dedup committed the ignored id: the provider's retry is a duplicate.
    let retry = send(&gw, "e3", "customer.created").await;
    assert_eq!((retry.0, status_field(&retry).as_str()), (200, "duplicate"));
    assert_eq!(
        gw.metric(r#"hookwall_requests_total{route="acme",outcome="ignored"}"#)
            .await,
        1.0
    );
    assert_eq!(
        gw.metric(r#"hookwall_requests_total{route="acme",outcome="forwarded"}"#)
            .await,
        2.0
    );
    let journaled = entries(&gw, "route=acme&outcome=ignored", 1).await;
    assert_eq!(journaled.len(), 1);
    assert_eq!(journaled[0]["dedup_id"], "e3");
    assert_eq!(journaled[0]["status"], 200);
}

/// The filter runs after verification: a forged request with an unwanted event is refused,
/// and does not burn the real delivery's id.
#[tokio::test]
async fn an_unverified_request_is_rejected_before_the_filter_and_burns_nothing() {
    let (up, gw) = filtered(r#"["invoice.*"]"#).await;
    let body = body_of("e9", "customer.created");
    let forged = signed_with("not-the-secret", &body, NOW, "e9");
    let refused = post(&gw.url("/webhooks/acme"), &forged, &body).await;
    assert_eq!(
        (refused.0, reason(&refused).as_str()),
        (401, "invalid_signature")
    );
    let real = send(&gw, "e9", "customer.created").await;
    assert_eq!(status_field(&real), "ignored", "{}", real.2);
    assert_eq!(up.hits(), 0);
}

/// A delivery without an event type is wanted only by `*`; `*` alone wants everything;
/// a pattern is matched as a whole, not as a prefix.
#[tokio::test]
async fn glob_edge_cases_through_the_route() {
    let (up, gw) = filtered(r#"["*.created", "charge.refunded"]"#).await;
    assert_eq!(send(&gw, "g1", "customer.created").await.2, "upstream-ok");
    assert_eq!(
        status_field(&send(&gw, "g2", "charge.refunded.x").await),
        "ignored"
    );
    assert_eq!(
        status_field(&send(&gw, "g3", "customer.creat").await),
        "ignored"
    );
    assert_eq!(status_field(&send(&gw, "g4", "").await), "ignored");
    let untyped = br#"{"id":"g5"}"#;
    let answer = post(
        &gw.url("/webhooks/acme"),
        &signed(untyped, NOW, "g5"),
        untyped,
    )
    .await;
    assert_eq!(status_field(&answer), "ignored");
    assert_eq!(up.hits(), 1);

    let (up, gw) = filtered(r#"["*"]"#).await;
    let answer = post(
        &gw.url("/webhooks/acme"),
        &signed(b"not json", NOW, "s1"),
        b"not json",
    )
    .await;
    assert_eq!(answer.2, "upstream-ok");
    assert_eq!(send(&gw, "s2", "anything.at.all").await.2, "upstream-ok");
    assert_eq!(up.hits(), 2);
}

/// A generic route names its event header; the match is on the header's value.
#[tokio::test]
async fn a_generic_route_filters_on_a_header() {
    let (up, gw) = setup("event = \"header:X-Event\"\nevents = [\"push\"]").await;
    let body = b"{}";
    let mut push = signed(body, NOW, "h1");
    push.push(("X-Event".into(), "push".into()));
    assert_eq!(
        post(&gw.url("/webhooks/acme"), &push, body).await.2,
        "upstream-ok"
    );
    let mut issue = signed(body, NOW, "h2");
    issue.push(("X-Event".into(), "issues".into()));
    assert_eq!(
        status_field(&post(&gw.url("/webhooks/acme"), &issue, body).await),
        "ignored"
    );
    assert_eq!(up.hits(), 1);
}

/// On a buffered route the route's own `events` decide before anything is queued.
#[tokio::test]
async fn a_buffered_route_with_events_queues_only_what_it_wants() {
    let (up, gw) =
        setup("delivery = \"buffered\"\nevent = \"json:/type\"\nevents = [\"invoice.*\"]").await;
    let queued = send(&gw, "b1", "invoice.paid").await;
    assert_eq!((queued.0, status_field(&queued).as_str()), (202, "queued"));
    let ignored = send(&gw, "b2", "customer.created").await;
    assert_eq!(
        (ignored.0, status_field(&ignored).as_str()),
        (200, "ignored")
    );
    wait_until(|| up.hits() == 1).await;
    assert_eq!(up.seen()[0].headers["x-hookwall-delivery-id"], "b1");
    assert_eq!(
        status_field(&send(&gw, "b2", "customer.created").await),
        "duplicate"
    );
}

/// Preset, headers, body, the event type expected.
type Case = (
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static str,
    &'static str,
);

/// Every preset that knows its event field finds the event type in the shape its provider
/// sends (payloads as documented by each provider).
#[test]
fn preset_event_fields_read_the_providers_payloads() {
    let cases: &[Case] = &[
        (
            "stripe",
            &[],
            r#"{"id":"evt_1","object":"event","type":"invoice.paid"}"#,
            "invoice.paid",
        ),
        (
            "github",
            &[("X-GitHub-Event", "pull_request")],
            r#"{"action":"opened","number":1}"#,
            "pull_request.opened",
        ),
        (
            "github",
            &[("X-GitHub-Event", "push")],
            r#"{"ref":"refs/heads/main"}"#,
            "push",
        ),
        (
            "standard-webhooks",
            &[],
            r#"{"type":"user.created","data":{}}"#,
            "user.created",
        ),
        (
            "svix",
            &[],
            r#"{"type":"user.created","data":{}}"#,
            "user.created",
        ),
        (
            "clerk",
            &[],
            r#"{"type":"user.created","data":{}}"#,
            "user.created",
        ),
        (
            "resend",
            &[],
            r#"{"type":"email.sent","data":{}}"#,
            "email.sent",
        ),
        (
            "shopify",
            &[("X-Shopify-Topic", "orders/create")],
            r#"{"id":1}"#,
            "orders/create",
        ),
        (
            "shopify",
            &[("shopify-topic", "orders/paid")],
            r#"{"id":1}"#,
            "orders/paid",
        ),
        (
            "slack",
            &[],
            r#"{"type":"event_callback","event_id":"Ev1","event":{"type":"app_mention"}}"#,
            "app_mention",
        ),
        (
            "paddle",
            &[],
            r#"{"event_id":"evt_1","event_type":"subscription.created","data":{}}"#,
            "subscription.created",
        ),
        (
            "zoom",
            &[],
            r#"{"event":"meeting.started","payload":{"account_id":"abc"},"event_ts":1700000000000}"#,
            "meeting.started",
        ),
        (
            "linear",
            &[],
            r#"{"action":"create","type":"Issue","webhookTimestamp":1700000000000}"#,
            "Issue",
        ),
        (
            "gitlab",
            &[("X-Gitlab-Event", "Push Hook")],
            r#"{"object_kind":"push"}"#,
            "Push Hook",
        ),
        (
            "square",
            &[],
            r#"{"merchant_id":"MLEFBHHSJGVHD","type":"webhooks.test_notification","event_id":"ac3ac95b"}"#,
            "webhooks.test_notification",
        ),
        (
            "intercom",
            &[],
            r#"{"type":"notification_event","id":"notif_1","topic":"ping"}"#,
            "ping",
        ),
        (
            "hubspot",
            &[],
            r#"[{"eventId":1,"subscriptionType":"contact.creation","objectId":123}]"#,
            "contact.creation",
        ),
        (
            "typeform",
            &[],
            r#"{"event_id":"01HXYZ","event_type":"form_response"}"#,
            "form_response",
        ),
        (
            "calendly",
            &[],
            r#"{"event":"invitee.created","payload":{}}"#,
            "invitee.created",
        ),
        (
            "twitch",
            &[("Twitch-Eventsub-Subscription-Type", "channel.follow")],
            r#"{"subscription":{}}"#,
            "channel.follow",
        ),
        (
            "woocommerce",
            &[("X-WC-Webhook-Topic", "order.created")],
            r#"{"id":1}"#,
            "order.created",
        ),
        (
            "mailgun",
            &[],
            r#"{"signature":{},"event-data":{"event":"delivered","id":"x"}}"#,
            "delivered",
        ),
        (
            "sentry",
            &[("Sentry-Hook-Resource", "issue")],
            r#"{"action":"created"}"#,
            "issue",
        ),
        (
            "vercel",
            &[],
            r#"{"id":"e1","type":"deployment.created"}"#,
            "deployment.created",
        ),
        (
            "mux",
            &[],
            r#"{"id":"e1","type":"video.asset.ready"}"#,
            "video.asset.ready",
        ),
        (
            "bitbucket",
            &[("X-Event-Key", "repo:push")],
            r#"{"event":"repo:push"}"#,
            "repo:push",
        ),
        (
            "pagerduty",
            &[],
            r#"{"event":{"id":"01","event_type":"incident.triggered"}}"#,
            "incident.triggered",
        ),
        (
            "postmark",
            &[],
            r#"{"RecordType":"Bounce","MessageID":"m1"}"#,
            "Bounce",
        ),
        (
            "discord",
            &[],
            r#"{"version":1,"application_id":"1","type":1,"event":{"type":"APPLICATION_AUTHORIZED","timestamp":"t","data":{}}}"#,
            "APPLICATION_AUTHORIZED",
        ),
        (
            "sendgrid",
            &[],
            "[{\"email\":\"hello@world.com\",\"event\":\"dropped\",\"sg_event_id\":\"Z\"}]\r\n",
            "dropped",
        ),
    ];
    for (provider, headers, body, want) in cases {
        let route = crate::presets::valid_route(provider, "public_url = \"https://h.example/x\"");
        let source = route
            .event
            .as_ref()
            .unwrap_or_else(|| panic!("{provider} names no event field"));
        let mut map = http::HeaderMap::new();
        for (k, v) in *headers {
            map.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        assert_eq!(
            hookwall::events::event_type(source, &map, body.as_bytes()).as_deref(),
            Some(*want),
            "{provider}"
        );
    }
}

/// Through a running gateway, for every preset hookwall can sign for and that names an
/// event field: the wanted event is forwarded, another one ignored.
#[tokio::test]
async fn every_signable_preset_filters_on_its_event_field() {
    use hookwall::config::EventSource;
    let up = Upstream::start().await;
    let mut routes = String::new();
    let mut cases = Vec::new();
    for provider in hookwall::verify::presets::NAMES {
        if crate::presets::public_key_only(provider)
            || crate::presets::table_for(provider).is_some()
            || matches!(*provider, "asana" | "mailgun" | "microsoft-graph")
        {
            continue; // hookwall cannot sign these (checked by the field table above)
        }
        let extra = "public_url = \"https://h.example/x\"";
        let route = crate::presets::valid_route(provider, extra);
        let Some(source) = route.event.clone() else {
            continue;
        };
        let secret = crate::presets::secret_for(provider);
        routes.push_str(&preset_route(
            &up,
            provider,
            secret,
            &format!("{extra}\ndedup = false\nevents = [\"wanted.event\"]"),
        ));
        cases.push((*provider, route, source));
    }
    let gw = TestGateway::start(&config_with("", "", &routes)).await;
    let mut forwarded = 0;
    for (provider, route, source) in &cases {
        for (event, wanted) in [("wanted.event", true), ("other.event", false)] {
            let (header, body) = match source {
                EventSource::Json(p) => (None, json_at(p, event)),
                EventSource::Header(h) => (Some((h.to_string(), event.to_owned())), b"{}".to_vec()),
                EventSource::AnyHeader(hs) => {
                    (Some((hs[0].to_string(), event.to_owned())), b"{}".to_vec())
                }
                EventSource::HeaderDotJson(h, _) => {
                    (Some((h.to_string(), event.to_owned())), b"{}".to_vec())
                }
            };
            // Linear signs its timestamp inside the body (milliseconds).
            let body = match (*provider, serde_json::from_slice(&body)) {
                ("linear", Ok(serde_json::Value::Object(mut doc))) => {
                    doc.insert("webhookTimestamp".into(), (NOW * 1000).into());
                    serde_json::Value::Object(doc).to_string().into_bytes()
                }
                _ => body,
            };
            let input = hookwall::verify::SignInput {
                body: &body,
                timestamp: NOW,
                id: "msg_42",
                url: Some("https://h.example/x"),
                method: &http::Method::POST,
            };
            let mut headers: Vec<(String, String)> = route
                .verifier
                .sign(&input)
                .unwrap_or_else(|e| panic!("{provider}: {e}"))
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
            headers.extend(header);
            headers.push(("Content-Type".into(), "application/json".into()));
            let answer = post(&gw.url(&format!("/{provider}")), &headers, &body).await;
            if wanted {
                forwarded += 1;
                assert_eq!(answer.2, "upstream-ok", "{provider}: {}", answer.2);
            } else {
                assert_eq!(status_field(&answer), "ignored", "{provider}: {}", answer.2);
            }
        }
    }
    assert!(cases.len() >= 30, "{}", cases.len());
    assert_eq!(up.hits(), forwarded);
}

/// A JSON body with `value` at `pointer`; numeric steps make arrays (`/0/event`).
fn json_at(pointer: &str, value: &str) -> Vec<u8> {
    let mut doc = serde_json::Value::from(value);
    for key in pointer.trim_start_matches('/').split('/').rev() {
        doc = match key.parse::<usize>() {
            Ok(0) => serde_json::json!([doc]),
            _ => serde_json::json!({ key: doc }),
        };
    }
    doc.to_string().into_bytes()
}
