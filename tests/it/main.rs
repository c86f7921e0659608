//! One integration binary (ripgrep/tower style): real gateway, real upstream, loopback only.

mod support;

mod admin;
mod cli;
mod dedup;
mod forward;
mod pipeline;
mod properties;
