//! Balancing algorithms, one file per algorithm.
//!
//! Contract: `pick` chooses among `servers` (the backend's servers in declaration
//! order) and returns an index into that slice. It considers only servers that
//! are `balanceable()` and `has_room()`, skips `ctx.avoid` unless it is the only
//! candidate, and falls back to backup servers (first usable one, or all with
//! `option allbackups`) only when no active server is usable.

use std::net::IpAddr;
use std::sync::Arc;

use super::ServerState;

/// What a hash-based algorithm may look at.
pub struct PickContext<'a> {
    pub src: IpAddr,
    /// The request target as sent (`/path?query` or absolute form).
    pub uri: &'a str,
    pub headers: &'a http::HeaderMap,
    /// The server that just failed (retry with redispatch).
    pub avoid: Option<usize>,
}

pub trait Balancer: Send + Sync + std::fmt::Debug {
    fn pick(&self, servers: &[Arc<ServerState>], ctx: &PickContext<'_>) -> Option<usize>;
}

/// Builds the algorithm for a backend.
pub fn build(
    balance: &switchyard_config::Balance,
    allbackups: bool,
    servers: &[Arc<ServerState>],
) -> Box<dyn Balancer> {
    let _ = (balance, allbackups, servers);
    unimplemented!("balancers: being written")
}
