//! hookwall: a receiving-side webhook gateway.
//!
//! A reverse proxy in front of applications that consume webhooks. Every delivery passes a
//! per-route tower stack; only authentic, fresh, unique deliveries reach the internal
//! handler, byte for byte, and every answer is chosen so the provider's retries do the
//! right thing.
//!
//! # Layer order
//!
//! `front.rs` matches the route (404/405) and sheds load (503, `shedding.rs`), then the route's stack
//! (`stack.rs`) runs, each check in its own module under `layers/`:
//!
//! 1. `ip_allow` — 403 `ip_not_allowed`
//! 2. `rate_limit` — 429 `rate_limited`
//! 3. `body` — 413 `body_too_large`, 408 `read_timeout`
//! 4. `signature` — 401 `missing_signature` / `invalid_signature`
//! 5. `timestamp` — 401 `timestamp_out_of_window`
//! 6. `dedup` — 200 duplicate, 409 `in_flight`, 400 `missing_dedup_key`, 503 `dedup_unavailable`
//! 7. `event_filter` — the route's `events`: 200 `ignored` (dedup commits the id)
//! 8. `forward` — upstream answer, or 502/504 (buffered routes: the queue, 202)
//!
//! A route with `enforce = false` (shadow mode) runs the same stack; its checks record
//! what they would answer and let the request through (`layers::shadowed`).
//!
//! Config goes through one compile step (`config/compile.rs`) shared by `check`, `run`
//! and reload. `respond.rs` is the only place gateway answers are built; `metrics.rs`
//! holds every metric family.

// Unit tests read back small bodies they built themselves.
#![cfg_attr(test, allow(clippy::disallowed_methods))]

pub(crate) mod access_log;
pub mod admin;
pub mod attest;
pub mod cli;
pub mod client_ip;
pub mod clock;
pub mod config;
pub(crate) mod context;
pub mod dedup;
pub(crate) mod demo;
pub(crate) mod echo;
pub(crate) mod error;
pub mod events;
pub(crate) mod forward;
pub(crate) mod front;
pub mod gateway;
pub mod ip_ranges;
pub(crate) mod journal;
pub mod layers;
pub mod metrics;
pub(crate) mod outbound;
pub(crate) mod queue;
pub(crate) mod reconcile;
pub(crate) mod redis_client;
pub(crate) mod respond;
pub(crate) mod router;
pub mod secret;
pub(crate) mod shedding;
pub(crate) mod stack;
pub mod storage;
pub mod telemetry;
pub mod transport;
pub mod verify;
