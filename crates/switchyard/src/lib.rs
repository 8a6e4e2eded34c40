//! switchyard: a load balancer that runs HAProxy configuration files.
//!
//! # Layout
//! - [`runtime`]: listeners, worker threads, signals, shutdown (the only place
//!   that binds sockets or spawns top-level tasks).
//! - [`snapshot`]: the compiled, immutable runtime form of a configuration.
//! - [`reload`]: the published snapshot that new requests use (SIGHUP reloads).
//! - [`frontend`]: routing decisions (ACLs, `use_backend`), pure and synchronous.
//! - [`backend`]: server runtime state, balancing algorithms, cookie stickiness.
//! - [`proxy`]: moving HTTP/1.x bytes: client connections, forwarding,
//!   upstream pool, tunnels, error pages.
//! - [`health`]: active health checks (the only writer of server health).
//! - [`observability`]: counters, access log, HAProxy-style messages.
//! - [`admin`]: the statistics page.
//! - [`memory`]: giving memory back to the OS after connections close.

pub mod admin;
pub mod backend;
pub mod cli;
pub mod frontend;
pub mod handover;
pub mod hardening;
pub mod health;
pub mod memory;
pub mod observability;
pub mod proxy;
pub mod reload;
pub mod runtime;
pub mod snapshot;
