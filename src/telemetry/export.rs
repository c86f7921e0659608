//! The OTLP/HTTP exporter over the project's own client, and the tracer provider.
//!
//! `opentelemetry-otlp` encodes the spans (protobuf) and POSTs them through any
//! `opentelemetry_http::HttpClient`; ours is the outbound hyper client (`outbound/http.rs`,
//! rustls with the system roots), allowed plain `http://` because collectors commonly
//! listen so. The SDK's batch processor runs the export on its own thread with a blocking
//! executor, so each request is handed to the tokio runtime hookwall started on and
//! awaited from there.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use opentelemetry_http::{HttpClient, HttpError};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider};
use opentelemetry_sdk::Resource;

use crate::outbound::http::{Call, HttpClient as Outbound};

/// Deadline of one export request.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// Most bytes of a collector's answer read (it is a small status message).
const MAX_ANSWER: usize = 64 * 1024;

/// The project's client, seen as the SDK wants it.
#[derive(Clone)]
struct OtlpClient {
    client: Outbound,
    runtime: tokio::runtime::Handle,
}

impl std::fmt::Debug for OtlpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OtlpClient")
    }
}

type Answer<'a> = Pin<Box<dyn Future<Output = Result<Response<Bytes>, HttpError>> + Send + 'a>>;

impl HttpClient for OtlpClient {
    // `async_trait`'s form of `async fn send_bytes`, written out.
    fn send_bytes<'life0, 'async_trait>(
        &'life0 self,
        request: Request<Bytes>,
    ) -> Answer<'async_trait>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        let client = self.client.clone();
        let running = self.runtime.spawn(async move {
            let (parts, body) = request.into_parts();
            let url = parts.uri.to_string();
            let call = Call {
                method: parts.method,
                url: &url,
                headers: parts
                    .headers
                    .iter()
                    .map(|(n, v)| (n.clone(), v.clone()))
                    .collect(),
                body,
                timeout: EXPORT_TIMEOUT,
                max_body: MAX_ANSWER,
            };
            client.send(call).await
        });
        Box::pin(async move {
            let answer = running
                .await
                .map_err(|e| -> HttpError { Box::new(e) })?
                .map_err(|e| -> HttpError { Box::new(e) })?;
            let mut resp = Response::new(answer.body);
            *resp.status_mut() = answer.status;
            *resp.headers_mut() = answer.headers;
            Ok(resp)
        })
    }
}

/// A tracer provider exporting to `url` (the whole `/v1/traces` URL) every `interval`.
pub(super) fn provider(
    url: &str,
    service_name: &str,
    interval: Duration,
) -> Result<SdkTracerProvider, String> {
    let runtime = tokio::runtime::Handle::try_current()
        .map_err(|_| "span export needs the tokio runtime".to_owned())?;
    let tls =
        crate::outbound::tls::client_config(&Default::default()).map_err(|e| e.to_string())?;
    let client = OtlpClient {
        client: Outbound::allowing_http(tls),
        runtime,
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(client)
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(url)
        .with_timeout(EXPORT_TIMEOUT)
        .build()
        .map_err(|e| e.to_string())?;
    let batch = BatchSpanProcessor::builder(exporter)
        .with_batch_config(
            BatchConfigBuilder::default()
                .with_scheduled_delay(interval)
                .build(),
        )
        .build();
    Ok(SdkTracerProvider::builder()
        .with_span_processor(batch)
        .with_resource(
            Resource::builder()
                .with_service_name(service_name.to_owned())
                .build(),
        )
        .build())
}
