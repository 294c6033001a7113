//! hookgate: a webhook verification gateway.
//!
//! Each request goes through these stages, in order, and only a request that passes all of
//! them opens a connection to the upstream:
//!
//! ```text
//! client ──▶ route ──▶ body ──▶ verify ──▶ forward ──▶ upstream
//!            (route)   (proxy::body)  (provider)  (proxy::forward)
//!   404/405/400 ◀┘  413/408/400 ◀┘  400/401 ◀┘   502/504 ◀┘
//! ```
//!
//! A route with `delivery: async` replaces the forward stage: `proxy::enqueue` stores the
//! verified request in the `delivery` queue and responds 202, and the delivery workers send
//! it to the upstream later, with retries.
//!
//! `config` turns `gateway.yaml` into the validated model these stages use, `reject` contains
//! every rejection, and `metrics` every Prometheus series.

pub mod admin;
pub mod cli;
pub mod clock;
pub mod config;
pub mod connection;
pub mod delivery;
pub mod demo;
pub mod guard;
pub mod metrics;
pub mod provider;
pub mod proxy;
pub mod reject;
pub mod reload;
pub mod route;
pub mod server;
pub mod sign_command;
pub mod store;
pub mod telemetry;
pub mod tls;
