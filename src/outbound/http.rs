//! The HTTPS client for calls hookwall makes itself to provider services: key servers,
//! certificate URLs, provider APIs (Plaid's key endpoint, SNS subscription confirmation),
//! and the reconcile pollers.
//!
//! Mechanism: hyper-util's pooled client over `hyper-rustls`, built from the same rustls
//! [`ClientConfig`] as https upstreams (system roots plus an optional `ca_file`), with
//! `https_only`: a plain `http://` URL is refused by the connector before any connection
//! is made (the reconcile pollers' client also allows `http://` to loopback addresses, for
//! an `api_base` pointed at a local fake or proxy). Every call has a deadline for the whole exchange (connect, head and body) and
//! reads at most a given number of body bytes; a larger answer is an error, never
//! truncated data.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls::ClientConfig;

/// Why an outbound call gave no usable answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    /// The URL is not an absolute `https://` URL.
    #[error("not an https:// URL")]
    NotHttps,
    /// Connecting, sending or reading failed.
    #[error("request failed: {0}")]
    Transport(String),
    /// The exchange did not finish in time.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The body is larger than the caller accepts.
    #[error("answer larger than {0} bytes")]
    TooLarge(usize),
}

/// An answer, with its body read whole (and bounded).
#[derive(Debug, Clone)]
pub(crate) struct Fetched {
    /// Status.
    pub(crate) status: StatusCode,
    /// Headers.
    pub(crate) headers: HeaderMap,
    /// Body bytes.
    pub(crate) body: Bytes,
}

impl Fetched {
    /// `Cache-Control: max-age`, if the answer has one (`no-store`/`no-cache` read as 0).
    pub(crate) fn max_age(&self) -> Option<Duration> {
        let value = self
            .headers
            .get(http::header::CACHE_CONTROL)?
            .to_str()
            .ok()?;
        let mut age = None;
        for directive in value.split(',').map(str::trim) {
            let lower = directive.to_ascii_lowercase();
            if lower == "no-store" || lower == "no-cache" {
                return Some(Duration::ZERO);
            }
            if let Some(n) = lower.strip_prefix("max-age=") {
                age = n
                    .trim_matches('"')
                    .parse::<u64>()
                    .ok()
                    .map(Duration::from_secs);
            }
        }
        age
    }
}

/// One outbound call.
#[derive(Debug, Clone)]
pub(crate) struct Call<'a> {
    /// GET or POST (any method works).
    pub(crate) method: Method,
    /// The absolute https URL.
    pub(crate) url: &'a str,
    /// Extra request headers.
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    /// The request body (empty for GET).
    pub(crate) body: Bytes,
    /// Deadline for the whole exchange.
    pub(crate) timeout: Duration,
    /// Most body bytes accepted.
    pub(crate) max_body: usize,
}

impl<'a> Call<'a> {
    /// A GET with the default deadline and size bound.
    pub(crate) fn get(url: &'a str) -> Self {
        Call {
            method: Method::GET,
            url,
            headers: Vec::new(),
            body: Bytes::new(),
            timeout: DEFAULT_TIMEOUT,
            max_body: DEFAULT_MAX_BODY,
        }
    }

    /// A POST of a JSON document.
    pub(crate) fn post_json(url: &'a str, body: &serde_json::Value) -> Self {
        Call {
            method: Method::POST,
            headers: vec![(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body: Bytes::from(body.to_string()),
            ..Call::get(url)
        }
    }
}

/// Deadline of a call unless the caller sets one: key servers answer in well under a
/// second; the provider is waiting for our answer meanwhile.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Body bound unless the caller sets one: a JWKS or a certificate is a few KiB.
pub(crate) const DEFAULT_MAX_BODY: usize = 64 * 1024;

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// Where a client may speak plain HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PlainHttp {
    Refused,
    LoopbackOnly,
    /// The OTLP exporter: collectors commonly listen on plain http inside a network.
    Anywhere,
}

/// A pooled HTTPS-only client (plain HTTP to loopback only where built to allow it).
#[derive(Clone)]
pub(crate) struct HttpClient {
    client: Client<Connector, Full<Bytes>>,
    plain: PlainHttp,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HttpClient")
    }
}

impl HttpClient {
    /// A client trusting what `tls` trusts.
    pub(crate) fn new(tls: Arc<ClientConfig>) -> Self {
        Self::build(tls, PlainHttp::Refused)
    }

    /// A client that also speaks plain HTTP to loopback addresses: provider APIs whose
    /// `api_base` a test (or a local proxy) points at 127.0.0.1. Any other `http://` URL
    /// is still refused before connecting.
    pub(crate) fn allowing_loopback_http(tls: Arc<ClientConfig>) -> Self {
        Self::build(tls, PlainHttp::LoopbackOnly)
    }

    /// A client for a URL the operator wrote as `http://` on purpose (the OTLP collector's
    /// `otlp_endpoint`): plain HTTP to any host, https as usual.
    pub(crate) fn allowing_http(tls: Arc<ClientConfig>) -> Self {
        Self::build(tls, PlainHttp::Anywhere)
    }

    fn build(tls: Arc<ClientConfig>, plain: PlainHttp) -> Self {
        let mut http = HttpConnector::new();
        // The https connector checks the scheme; the inner one must let https through.
        http.enforce_http(false);
        http.set_connect_timeout(Some(DEFAULT_TIMEOUT));
        // hyper-rustls sets ALPN itself (and refuses a config that already has it).
        let mut tls = (*tls).clone();
        tls.alpn_protocols.clear();
        let builder = hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls);
        let builder = if plain != PlainHttp::Refused {
            // The scheme is checked again per call in `send`.
            builder.https_or_http()
        } else {
            builder.https_only()
        };
        let connector = builder.enable_http1().wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(2)
            .build(connector);
        HttpClient { client, plain }
    }

    /// Runs `call`: the answer (any status) with its body, or why there is none.
    pub(crate) async fn send(&self, call: Call<'_>) -> Result<Fetched, FetchError> {
        let uri: Uri = call.url.parse().map_err(|_| FetchError::NotHttps)?;
        let allowed = uri.scheme_str() == Some("https")
            || match self.plain {
                PlainHttp::Refused => false,
                PlainHttp::LoopbackOnly => is_loopback_http(&uri),
                PlainHttp::Anywhere => uri.scheme_str() == Some("http"),
            };
        if !allowed || uri.authority().is_none() {
            return Err(FetchError::NotHttps);
        }
        let mut req = Request::builder().method(call.method).uri(uri);
        for (name, value) in call.headers {
            req = req.header(name, value);
        }
        let req = req
            .header(
                http::header::USER_AGENT,
                concat!("hookwall/", env!("CARGO_PKG_VERSION")),
            )
            .body(Full::new(call.body))
            .map_err(|e| FetchError::Transport(e.to_string()))?;
        let max_body = call.max_body;
        let exchange = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| FetchError::Transport(error_chain(&e)))?;
            let (parts, mut body) = resp.into_parts();
            let mut buf = BytesMut::new();
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| FetchError::Transport(e.to_string()))?;
                if let Ok(data) = frame.into_data() {
                    if buf.len() + data.len() > max_body {
                        return Err(FetchError::TooLarge(max_body));
                    }
                    buf.extend_from_slice(&data);
                }
            }
            Ok(Fetched {
                status: parts.status,
                headers: parts.headers,
                body: buf.freeze(),
            })
        };
        tokio::time::timeout(call.timeout, exchange)
            .await
            .map_err(|_| FetchError::Timeout(call.timeout))?
    }
}

/// Whether `uri` is `http://` to a loopback address (`127.0.0.0/8`, `::1`, `localhost`).
pub(crate) fn is_loopback_http(uri: &Uri) -> bool {
    uri.scheme_str() == Some("http")
        && uri.host().is_some_and(|h| {
            let h = h.trim_start_matches('[').trim_end_matches(']');
            h.eq_ignore_ascii_case("localhost")
                || h.parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        })
}

/// An error and its sources on one line (hyper-util's own message is only "client error").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_cache_control(v: &str) -> Fetched {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::CACHE_CONTROL,
            HeaderValue::from_str(v).unwrap(),
        );
        Fetched {
            status: StatusCode::OK,
            headers,
            body: Bytes::new(),
        }
    }

    #[test]
    fn max_age_is_read_from_cache_control() {
        assert_eq!(
            with_cache_control("public, max-age=19204, must-revalidate, no-transform").max_age(),
            Some(Duration::from_secs(19204))
        );
        assert_eq!(
            with_cache_control("no-store").max_age(),
            Some(Duration::ZERO)
        );
        assert_eq!(with_cache_control("public").max_age(), None);
        assert_eq!(with_cache_control("max-age=abc").max_age(), None);
    }

    #[tokio::test]
    async fn plain_http_is_refused_before_connecting() {
        let tls = crate::outbound::tls::client_config(&Default::default()).unwrap();
        let client = HttpClient::new(tls);
        let err = client
            .send(Call::get("http://127.0.0.1:9/"))
            .await
            .unwrap_err();
        assert!(matches!(err, FetchError::NotHttps), "{err}");
    }

    #[tokio::test]
    async fn loopback_http_is_allowed_only_to_loopback() {
        let tls = crate::outbound::tls::client_config(&Default::default()).unwrap();
        let client = HttpClient::allowing_loopback_http(tls);
        let err = client
            .send(Call::get("http://192.0.2.1:9/"))
            .await
            .unwrap_err();
        assert!(matches!(err, FetchError::NotHttps), "{err}");
        for ok in [
            "http://127.0.0.1:9/",
            "http://[::1]:9/",
            "http://localhost:9/",
        ] {
            assert!(is_loopback_http(&ok.parse().unwrap()), "{ok}");
        }
        assert!(!is_loopback_http(
            &"http://127.0.0.1.example:9/".parse().unwrap()
        ));
        assert!(!is_loopback_http(&"https://127.0.0.1:9/".parse().unwrap()));
    }
}
