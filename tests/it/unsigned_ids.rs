//! Routes whose signature does not cover the dedup id (issue 18, item 4): the id is bound
//! to the body, so a captured body and signature resent under another id cannot claim that
//! id, while the provider's own retries (same id, same bytes) still dedup. For the generic
//! scheme signing `{timestamp}.{body}` (the standard test route) and for GitHub, whose
//! `X-GitHub-Delivery` is not signed.

use crate::support::*;

/// Headers of a delivery of `body` with id `id`.
type Sign = fn(&[u8], &str) -> Vec<(String, String)>;

/// How one provider's deliveries are made for these scenarios.
struct Provider {
    path: &'static str,
    id_header: &'static str,
    sign: Sign,
}

const GITHUB_SECRET: &str = "it's-a-github-secret";

fn generic() -> Provider {
    Provider {
        path: "/webhooks/acme",
        id_header: "X-Delivery",
        sign: |body, id| signed(body, NOW, id),
    }
}

fn github() -> Provider {
    Provider {
        path: "/github",
        id_header: "X-GitHub-Delivery",
        sign: |body, id| {
            vec![
                (
                    "X-Hub-Signature-256".into(),
                    format!("sha256={}", hmac_hex(GITHUB_SECRET, &[body])),
                ),
                ("X-GitHub-Event".into(), "push".into()),
                ("X-GitHub-Delivery".into(), id.into()),
            ]
        },
    }
}

async fn gateway(p: &Provider) -> (Upstream, TestGateway) {
    let up = Upstream::start().await;
    let routes = if p.path == "/github" {
        preset_route(&up, "github", GITHUB_SECRET, "")
    } else {
        standard_route(&up.url(), "")
    };
    let gw = TestGateway::start(&config_with("", "", &routes)).await;
    (up, gw)
}

/// The headers of `sign(body, from)`, with the id header saying `to` instead.
fn with_id(p: &Provider, headers: Vec<(String, String)>, to: &str) -> Vec<(String, String)> {
    headers
        .into_iter()
        .map(|(k, v)| match k.eq_ignore_ascii_case(p.id_header) {
            true => (k, to.to_owned()),
            false => (k, v),
        })
        .collect()
}

fn is_duplicate(answer: &Answer) -> bool {
    answer.0 == 200 && answer.2.contains("\"status\":\"duplicate\"")
}

/// A captured delivery resent ahead under the id the provider will use next does not make
/// that real delivery a duplicate; the real one's retry still is.
async fn a_resent_capture_cannot_burn_a_future_id(p: Provider) {
    let (up, gw) = gateway(&p).await;
    let url = gw.url(p.path);
    let captured = br#"{"n":1}"#;
    let headers = (p.sign)(captured, "delivery-1");
    assert_eq!(post(&url, &headers, captured).await.0, 200);
    // The attacker guesses the next id and sends the captured bytes under it first.
    let burn = post(&url, &with_id(&p, headers, "delivery-2"), captured).await;
    assert!(!is_duplicate(&burn), "{burn:?}");
    // The real delivery-2 has its own body: it is forwarded, not answered `duplicate`.
    let real = br#"{"n":2}"#;
    let real_headers = (p.sign)(real, "delivery-2");
    let answer = post(&url, &real_headers, real).await;
    assert_eq!(answer.2, "upstream-ok", "{answer:?}");
    assert!(up.seen().iter().any(|s| s.body.as_ref() == real));
    // The provider's retry of it (same id, same bytes) is a duplicate, upstream not called.
    let hits = up.hits();
    assert!(is_duplicate(&post(&url, &real_headers, real).await));
    assert_eq!(up.hits(), hits);
}

/// A capture resent under a new id is a new key, forwarded under that id (the upstream sees
/// the same body twice, under two ids: a timestamp window is what bounds this, see the
/// README); it never claims the original id, whose retry stays a duplicate.
async fn a_capture_resent_under_a_new_id_leaves_the_original_alone(p: Provider) {
    let (up, gw) = gateway(&p).await;
    let url = gw.url(p.path);
    let body = br#"{"n":1}"#;
    let headers = (p.sign)(body, "delivery-1");
    assert_eq!(post(&url, &headers, body).await.0, 200);
    let resent = post(&url, &with_id(&p, headers.clone(), "other-id"), body).await;
    assert_eq!(resent.2, "upstream-ok", "{resent:?}");
    assert_eq!(up.delivery_ids(), ["delivery-1", "other-id"]);
    assert!(is_duplicate(&post(&url, &headers, body).await));
    assert_eq!(up.hits(), 2);
}

/// `X-Id: A, zzz` and two id headers name no single delivery: 400, nothing forwarded.
async fn an_id_header_with_several_values_is_400(p: Provider) {
    let (up, gw) = gateway(&p).await;
    let url = gw.url(p.path);
    let body = b"{}";
    let listed = with_id(&p, (p.sign)(body, "A"), "A, zzz");
    let answer = post(&url, &listed, body).await;
    assert_eq!(
        (answer.0, reason(&answer)),
        (400, "missing_dedup_key".into())
    );
    let mut twice = (p.sign)(body, "A");
    twice.push((p.id_header.into(), "A".into()));
    let answer = post(&url, &twice, body).await;
    assert_eq!(
        (answer.0, reason(&answer)),
        (400, "missing_dedup_key".into())
    );
    assert_eq!(up.hits(), 0);
    // The same delivery with one id is fine.
    assert_eq!(post(&url, &(p.sign)(body, "A"), body).await.0, 200);
}

macro_rules! for_each_provider {
    ($($name:ident),* $(,)?) => {
        mod generic {
            $( #[tokio::test] async fn $name() { super::$name(super::generic()).await } )*
        }
        mod github {
            $( #[tokio::test] async fn $name() { super::$name(super::github()).await } )*
        }
    };
}

for_each_provider!(
    a_resent_capture_cannot_burn_a_future_id,
    a_capture_resent_under_a_new_id_leaves_the_original_alone,
    an_id_header_with_several_values_is_400,
);

/// On the generic route the timestamp window bounds how long a capture can be resent.
#[tokio::test]
async fn a_timestamp_window_bounds_resending_a_capture() {
    let (up, gw) = gateway(&generic()).await;
    let url = gw.url("/webhooks/acme");
    let body = b"{}";
    assert_eq!(post(&url, &signed(body, NOW, "w-1"), body).await.0, 200);
    gw.clock.set(NOW + 301);
    let late = post(&url, &signed(body, NOW, "w-2"), body).await;
    assert_eq!(reason(&late), "timestamp_out_of_window");
    assert_eq!(up.hits(), 1);
}

/// A route whose signature covers the id keeps the id alone as its key.
#[tokio::test]
async fn a_signed_id_is_not_bound_to_the_body() {
    let up = Upstream::start().await;
    let routes =
        standard_route(&up.url(), "").replace("{timestamp}.{body}", "{id}.{timestamp}.{body}");
    let gw = TestGateway::start(&config_with("", "", &routes)).await;
    let url = gw.url("/webhooks/acme");
    let sign = |body: &[u8]| {
        let sig = hmac_hex(SECRET, &[b"s-1.", NOW.to_string().as_bytes(), b".", body]);
        vec![
            ("X-Sig".to_owned(), format!("sha256={sig}")),
            ("X-Ts".to_owned(), NOW.to_string()),
            ("X-Delivery".to_owned(), "s-1".to_owned()),
        ]
    };
    assert_eq!(post(&url, &sign(b"{}"), b"{}").await.0, 200);
    // Another body under the same, signed, id: the same delivery as far as dedup goes.
    assert!(is_duplicate(&post(&url, &sign(b"[]"), b"[]").await));
    assert_eq!(up.hits(), 1);
}
