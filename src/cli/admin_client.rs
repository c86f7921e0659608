//! Talks to a running gateway's admin listener, for the commands that ask it something
//! (`check --against-running`, and the journal, queue and reconcile commands).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{Method, Request, StatusCode};
use http_body_util::Full;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::config::AdminConfig;
use crate::layers::body_limit::read_capped;
use crate::secret::Secret;

/// How long one admin call may take.
const ADMIN_CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest admin answer read.
const MAX_ANSWER: usize = 64 * 1024 * 1024;

/// Why an admin call got no answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AdminCallError {
    /// The URL is not an http URL.
    #[error("invalid admin URL {0:?}: write e.g. http://127.0.0.1:9090")]
    Url(String),
    /// Nothing answered.
    #[error("cannot reach the admin listener at {url}: {detail}")]
    Unreachable {
        /// Where.
        url: String,
        /// Why.
        detail: String,
    },
    /// It answered, but not in time or not in full.
    #[error("the admin listener at {0} did not answer in time")]
    Timeout(String),
}

/// The admin listener of one gateway.
pub(crate) struct AdminClient {
    base: String,
    token: Option<Secret>,
    client: Client<HttpConnector, Full<Bytes>>,
}

/// A listen address as an address to connect to: a wildcard means this host.
fn connectable(addr: SocketAddr) -> SocketAddr {
    let ip = match addr.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, addr.port())
}

impl AdminClient {
    /// The admin listener `admin` names (or `url`), with its token.
    pub(crate) fn new(admin: &AdminConfig, url: Option<&str>) -> Result<Self, AdminCallError> {
        match url {
            Some(u) => Self::at(u, admin.token.clone()),
            None => Self::at(
                &format!("http://{}", connectable(admin.listen)),
                admin.token.clone(),
            ),
        }
    }

    /// The admin listener at `url` (`http://host:port`), sending `token` if there is one.
    pub(crate) fn at(url: &str, token: Option<Secret>) -> Result<Self, AdminCallError> {
        if !url.starts_with("http://") {
            return Err(AdminCallError::Url(url.to_owned()));
        }
        Ok(AdminClient {
            base: url.trim_end_matches('/').to_owned(),
            token,
            client: Client::builder(TokioExecutor::new()).build_http(),
        })
    }

    /// Where it is.
    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    /// One call: the status and the body as JSON (`null` if it is not JSON).
    pub(crate) async fn call(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<(&'static str, Vec<u8>)>,
    ) -> Result<(StatusCode, serde_json::Value), AdminCallError> {
        let url = format!("{}{path_and_query}", self.base);
        let mut req = Request::builder().method(method).uri(&url);
        if let Some(token) = &self.token {
            let value = format!("Bearer {}", String::from_utf8_lossy(token.expose()));
            req = req.header(AUTHORIZATION, value);
        }
        let (content_type, bytes) = body.unwrap_or(("application/json", Vec::new()));
        req = req.header(CONTENT_TYPE, content_type);
        let req = req
            .body(Full::new(Bytes::from(bytes)))
            .map_err(|_| AdminCallError::Url(url.clone()))?;
        let call = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| AdminCallError::Unreachable {
                    url: self.base.clone(),
                    detail: e.to_string(),
                })?;
            let status = resp.status();
            let bytes = read_capped(resp.into_body(), MAX_ANSWER)
                .await
                .map_err(|_| AdminCallError::Timeout(self.base.clone()))?;
            let value = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
            Ok((status, value))
        };
        tokio::time::timeout(ADMIN_CALL_TIMEOUT, call)
            .await
            .unwrap_or_else(|_| Err(AdminCallError::Timeout(self.base.clone())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_listen_addresses_connect_to_this_host() {
        let c = |s: &str| connectable(s.parse().unwrap()).to_string();
        assert_eq!(c("0.0.0.0:9090"), "127.0.0.1:9090");
        assert_eq!(c("[::]:9090"), "[::1]:9090");
        assert_eq!(c("10.1.2.3:9090"), "10.1.2.3:9090");
    }
}
