//! One provider API as the pollers call it: the credential on every call, a deadline per
//! call, bounded answers, and throttling honoured. A `429` (or a `503` with `Retry-After`)
//! makes the poller wait what the provider asks (capped) and ask again, a few times, before
//! the run gives up: a poller must never make the provider's rate limit worse.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method};

use crate::outbound::http::{Call, Fetched, HttpClient};
use crate::queue::backoff::retry_after;

/// A page of 100 Stripe events with their objects is a few MiB at most.
const MAX_ANSWER: usize = 16 * 1024 * 1024;
/// The longest single wait a `Retry-After` can impose; a longer one ends the run (the
/// next run, `every` later, asks again).
const MAX_WAIT: Duration = Duration::from_secs(60);
/// Throttled answers one call accepts before the run gives up.
const MAX_THROTTLED: u32 = 5;
/// The wait when a 429 says nothing about how long.
const DEFAULT_WAIT: Duration = Duration::from_secs(1);

/// Why a call gave no usable answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    /// No answer (connect, TLS, deadline, size).
    #[error("{0}")]
    Transport(String),
    /// An answer that is not a success.
    #[error("{url} answered {status}: {excerpt}")]
    Status {
        /// The URL called (no credentials in it).
        url: String,
        /// Its status.
        status: u16,
        /// The start of its body, for the operator.
        excerpt: String,
    },
    /// Throttled past what one run waits for.
    #[error("{url} kept answering 429 (rate limited); the next run asks again")]
    Throttled {
        /// The URL called.
        url: String,
    },
    /// The answer is not what the source documents.
    #[error("{0}")]
    Unexpected(String),
}

/// A provider API with its credential.
#[derive(Debug, Clone)]
pub(crate) struct Api {
    client: HttpClient,
    headers: Vec<(HeaderName, HeaderValue)>,
    timeout: Duration,
}

impl Api {
    /// Calls made with `headers` (the credential first) and `timeout` each.
    pub(crate) fn new(
        client: HttpClient,
        headers: Vec<(HeaderName, HeaderValue)>,
        timeout: Duration,
    ) -> Self {
        Api {
            client,
            headers,
            timeout,
        }
    }

    /// `GET url`.
    pub(crate) async fn get(&self, url: &str) -> Result<Fetched, ApiError> {
        self.call(Method::GET, url).await
    }

    /// `POST url` with an empty body.
    pub(crate) async fn post(&self, url: &str) -> Result<Fetched, ApiError> {
        self.call(Method::POST, url).await
    }

    async fn call(&self, method: Method, url: &str) -> Result<Fetched, ApiError> {
        let mut throttled = 0;
        loop {
            let call = Call {
                method: method.clone(),
                url,
                headers: self.headers.clone(),
                body: Bytes::new(),
                timeout: self.timeout,
                max_body: MAX_ANSWER,
            };
            let answer = self
                .client
                .send(call)
                .await
                .map_err(|e| ApiError::Transport(format!("{url}: {e}")))?;
            let status = answer.status.as_u16();
            if answer.status.is_success() {
                return Ok(answer);
            }
            let wait =
                retry_after(status, &answer.headers).or((status == 429).then_some(DEFAULT_WAIT));
            match wait {
                Some(wait) if wait <= MAX_WAIT && throttled < MAX_THROTTLED => {
                    throttled += 1;
                    tracing::info!(
                        url,
                        status,
                        wait_ms = wait.as_millis() as u64,
                        "provider API asks to slow down; waiting"
                    );
                    tokio::time::sleep(wait).await;
                }
                Some(_) => {
                    return Err(ApiError::Throttled {
                        url: url.to_owned(),
                    })
                }
                None => {
                    let excerpt =
                        String::from_utf8_lossy(&answer.body[..answer.body.len().min(200)])
                            .into_owned();
                    return Err(ApiError::Status {
                        url: url.to_owned(),
                        status,
                        excerpt,
                    });
                }
            }
        }
    }
}

/// The `rel="next"` URL of a `Link` header (RFC 8288), as GitHub pages its lists.
pub(crate) fn link_next(headers: &http::HeaderMap) -> Option<String> {
    headers
        .get_all(http::header::LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|link| {
            let (target, params) = link.split_once(';')?;
            let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
            params
                .split(';')
                .any(|p| {
                    let p = p.trim().replace(' ', "");
                    p == "rel=\"next\"" || p == "rel=next"
                })
                .then(|| target.to_owned())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_next_finds_the_next_page() {
        let mut h = http::HeaderMap::new();
        h.insert(
            http::header::LINK,
            HeaderValue::from_static(
                "<https://api.github.com/x?cursor=abc&per_page=100>; rel=\"next\", <https://api.github.com/x?per_page=100>; rel=\"first\"",
            ),
        );
        assert_eq!(
            link_next(&h).as_deref(),
            Some("https://api.github.com/x?cursor=abc&per_page=100")
        );
        h.insert(
            http::header::LINK,
            HeaderValue::from_static("<https://a/x>; rel=\"prev\""),
        );
        assert_eq!(link_next(&h), None);
        assert_eq!(link_next(&http::HeaderMap::new()), None);
    }
}
