//! Connections hookwall opens itself: to `https://` upstreams (CONTRACT §13), and the
//! client the provider-API pollers and key fetchers build on ([`http`]).
//!
//! TLS is rustls over the system's trust store (`rustls-native-certs`: the roots the
//! operator's OS manages, corporate CAs included, updated with the OS), plus the route's
//! `upstream_tls.ca_file`, and a client certificate for mTLS when `client_cert`/`client_key`
//! are set. Only HTTP/1.1 is offered (ALPN), which is what the upstream pool speaks.

pub(crate) mod http;
pub(crate) mod tls;
