//! Amazon SNS after its signature is verified: which topics may deliver, and the
//! subscription handshake.
//!
//! - A message whose `TopicArn` is not in the route's `sns.topics` is refused with
//!   `403 topic_not_allowed` (a real, signed SNS message, just not for this route; SNS
//!   does not retry a 4xx).
//! - A `SubscriptionConfirmation` is confirmed by the gateway only when the route says
//!   `sns.auto_confirm = true`: it GETs the message's `SubscribeURL` (an https URL on one of
//!   `sns.cert_hosts`, else `403 handshake_refused`) and answers `200` (outcome
//!   `handshake`), or `502 confirmation_failed` if the confirmation did not succeed, so
//!   SNS tries again. Without `auto_confirm` it is forwarded like any delivery, for the
//!   application to confirm.
//! - Notifications and `UnsubscribeConfirmation`s are forwarded.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, StatusCode};
use serde_json::Value;
use tower::{Layer, Service};

use super::{reject, shadowed, ResponseFuture};
use crate::config::{defaults, SnsSettings};
use crate::context::WouldReject;
use crate::error::Rejection;
use crate::outbound::http::{Call, HttpClient};
use crate::respond::{self, HttpResponse};

/// SNS topic and subscription rules of one route.
#[derive(Debug, Clone)]
pub struct SnsControlLayer {
    settings: Arc<SnsSettings>,
    client: HttpClient,
    route: Arc<str>,
}

impl SnsControlLayer {
    /// For a route's `sns` settings.
    pub fn new(settings: SnsSettings, route: &str) -> Self {
        let client = HttpClient::new(settings.tls.clone());
        SnsControlLayer {
            settings: Arc::new(settings),
            client,
            route: route.into(),
        }
    }
}

impl<S> Layer<S> for SnsControlLayer {
    type Service = SnsControl<S>;
    fn layer(&self, inner: S) -> Self::Service {
        SnsControl {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service built by [`SnsControlLayer`].
#[derive(Debug, Clone)]
pub struct SnsControl<S> {
    inner: S,
    layer: SnsControlLayer,
}

impl<S> Service<Request<Bytes>> for SnsControl<S>
where
    S: Service<Request<Bytes>, Response = HttpResponse, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = HttpResponse;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Bytes>) -> Self::Future {
        let msg = crate::verify::sns::message(req.body()).unwrap_or_default();
        let text = |name: &str| msg.get(name).and_then(Value::as_str).map(str::to_owned);
        let topic_ok = text("TopicArn").is_some_and(|t| self.layer.settings.topics.contains(&t));
        if !topic_ok {
            if shadowed(&req, WouldReject::Rejected(Rejection::TopicNotAllowed)) {
                return Box::pin(self.inner.call(req));
            }
            return reject(&req, Rejection::TopicNotAllowed);
        }
        let confirm = text("Type").as_deref() == Some("SubscriptionConfirmation")
            && self.layer.settings.auto_confirm;
        if !confirm {
            return Box::pin(self.inner.call(req));
        }
        let Some(url) = text("SubscribeURL").filter(|u| self.layer.settings.hosts.allows(u)) else {
            // Shadow mode: the app behind may confirm the subscription itself.
            if shadowed(&req, WouldReject::Rejected(Rejection::HandshakeRefused)) {
                return Box::pin(self.inner.call(req));
            }
            return reject(&req, Rejection::HandshakeRefused);
        };
        let layer = self.layer.clone();
        let topic = text("TopicArn").unwrap_or_default();
        Box::pin(async move {
            let call = Call {
                timeout: defaults::SNS_CONFIRM_TIMEOUT,
                ..Call::get(&url)
            };
            match layer.client.send(call).await {
                Ok(answer) if answer.status.is_success() => {
                    tracing::info!(route = %layer.route, topic = %topic, "sns subscription confirmed");
                    Ok(respond::handshake(
                        StatusCode::OK,
                        "application/json",
                        r#"{"status":"confirmed"}"#,
                    ))
                }
                Ok(answer) => {
                    tracing::warn!(route = %layer.route, status = %answer.status, "sns subscription confirmation refused by SubscribeURL");
                    reject(&req, Rejection::ConfirmationFailed).await
                }
                Err(e) => {
                    tracing::warn!(route = %layer.route, error = %e, "sns subscription confirmation failed");
                    reject(&req, Rejection::ConfirmationFailed).await
                }
            }
        })
    }
}
