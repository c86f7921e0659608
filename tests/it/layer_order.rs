//! The order of checks (CONTRACT §3), as a matrix: a request that fails two checks is
//! answered by the one that runs first, so the reason given is always the earliest true one
//! and nothing forged can reach state (dedup) it must not touch.

use crate::support::*;

/// Several routes on one gateway, each set up to fail in a different way.
fn routes(up: &Upstream) -> String {
    let route = |name: &str, extra: &str| {
        standard_route(&up.url(), extra)
            .replace("name = \"acme\"", &format!("name = \"{name}\""))
            .replace("/webhooks/acme\"", &format!("/webhooks/{name}\""))
    };
    [
        route(
            "fenced",
            "allow_ips = [\"203.0.113.0/24\"]\nrate_limit = { per_minute = 1 }",
        ),
        route(
            "limited",
            "rate_limit = { per_minute = 1 }\nmax_body = \"16\"",
        ),
        route("small", "max_body = \"16\""),
        route("open", ""),
    ]
    .concat()
}

/// What to send: headers (signed or not), the body, and the method.
struct Case {
    name: &'static str,
    route: &'static str,
    method: &'static str,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    want: (u16, &'static str),
}

#[tokio::test]
async fn a_request_failing_two_checks_gets_the_earlier_ones_answer() {
    let up = Upstream::start().await;
    let gw = TestGateway::start(&config_with("", "", &routes(&up))).await;
    let big = vec![b'x'; 64];
    let stale = NOW - 3600;
    let cases = vec![
        Case {
            name: "unknown path, unsigned",
            route: "nowhere",
            method: "POST",
            headers: vec![],
            body: b"{}".to_vec(),
            want: (404, "unknown_route"),
        },
        Case {
            name: "wrong method, unsigned",
            route: "open",
            method: "PUT",
            headers: vec![],
            body: b"{}".to_vec(),
            want: (405, "method_not_allowed"),
        },
        Case {
            name: "unsigned + disallowed IP",
            route: "fenced",
            method: "POST",
            headers: vec![],
            body: b"{}".to_vec(),
            want: (403, "ip_not_allowed"),
        },
        Case {
            name: "disallowed IP + oversized",
            route: "fenced",
            method: "POST",
            headers: signed(&big, NOW, "f1"),
            body: big.clone(),
            want: (403, "ip_not_allowed"),
        },
        // The first request of "limited" spends its one token; this one is over the limit.
        Case {
            name: "spend the rate limit",
            route: "limited",
            method: "POST",
            headers: signed(b"{}", NOW, "l0"),
            body: b"{}".to_vec(),
            want: (200, ""),
        },
        Case {
            name: "rate-limited + oversized",
            route: "limited",
            method: "POST",
            headers: signed(&big, NOW, "l1"),
            body: big.clone(),
            want: (429, "rate_limited"),
        },
        Case {
            name: "oversized + unsigned",
            route: "small",
            method: "POST",
            headers: vec![],
            body: big.clone(),
            want: (413, "body_too_large"),
        },
        Case {
            name: "unsigned + stale timestamp header",
            route: "open",
            method: "POST",
            headers: vec![
                ("X-Ts".into(), stale.to_string()),
                ("X-Delivery".into(), "o1".into()),
            ],
            body: b"{}".to_vec(),
            want: (401, "missing_signature"),
        },
        Case {
            name: "bad signature + stale",
            route: "open",
            method: "POST",
            headers: signed_with("wrong-secret", b"{}", stale, "o2"),
            body: b"{}".to_vec(),
            want: (401, "invalid_signature"),
        },
        Case {
            name: "deliver o3",
            route: "open",
            method: "POST",
            headers: signed(b"{}", NOW, "o3"),
            body: b"{}".to_vec(),
            want: (200, ""),
        },
        // Delivered already, but stale: the window runs before dedup.
        Case {
            name: "stale + duplicate id",
            route: "open",
            method: "POST",
            headers: signed(b"{}", stale, "o3"),
            body: b"{}".to_vec(),
            want: (401, "timestamp_out_of_window"),
        },
        // Delivered already, and forged: the signature runs before dedup.
        Case {
            name: "forged + duplicate id",
            route: "open",
            method: "POST",
            headers: signed_with("wrong-secret", b"{}", NOW, "o3"),
            body: b"{}".to_vec(),
            want: (401, "invalid_signature"),
        },
        Case {
            name: "authentic duplicate",
            route: "open",
            method: "POST",
            headers: signed(b"{}", NOW, "o3"),
            body: b"{}".to_vec(),
            want: (200, ""),
        },
    ];
    for case in cases {
        let url = gw.url(&format!("/webhooks/{}", case.route));
        let answer = send(case.method, &url, &case.headers, &case.body).await;
        assert_eq!(
            (answer.0, reason(&answer).as_str()),
            case.want,
            "{}: {answer:?}",
            case.name
        );
    }
    // Forwarded: l0 and o3 once each; the authentic duplicate was answered by dedup.
    assert_eq!(up.hits(), 2);
}
