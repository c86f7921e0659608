//! One integration binary (ripgrep/tower style): real gateway, real upstream, loopback only.

// The harness may panic on setup failures and read the small bodies it sent itself.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

mod fake_provider_api;
mod postgres_server;
mod redis_server;
mod support;
mod test_ca;

mod admin;
mod admin_page;
mod attest;
mod cli;
mod connections;
mod dedup;
mod deploy;
mod descriptors;
mod diagnosis;
mod events;
mod forward;
mod handshakes;
mod handshakes_hard;
mod ip_ranges;
mod journal;
mod journal_postgres;
mod key_fetch;
mod layer_order;
mod pipeline;
mod presets;
mod presets_hard;
mod presets_more;
mod properties;
mod queue;
mod queue_admin;
mod queue_crash;
mod queue_postgres;
mod reconcile;
mod reconcile_postgres;
mod redis;
mod reload;
mod shadow;
mod tls;
mod tracing;
mod unsigned_ids;
mod upstream_tls;
