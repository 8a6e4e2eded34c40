//! Support code for the benchmark harness's two programs.
//!
//! # Layout
//! - [`ws`]: the few RFC 6455 pieces both sides need (frame codec, `Sec-WebSocket-Accept`).
//! - [`http1`]: a minimal HTTP/1.1 response reader for the load client (Content-Length, chunked,
//!   close-delimited), enough to drive Engine.IO long-polling through a proxy.
//! - [`eio`]: Engine.IO v4 query and payload helpers shared by backend and client.
//! - [`stats`]: latency percentiles.
//! - [`args`]: a tiny `--flag value` parser, so the tools build without extra dependencies.
//!
//! The binaries are `bench-backend` (the origin servers every proxy forwards to) and
//! `bench-client` (WebSocket echo, idle WebSockets and Engine.IO round trips). HTTP load itself
//! comes from `wrk`.

pub mod args;
pub mod eio;
pub mod http1;
pub mod stats;
pub mod ws;

/// A tokio runtime with `threads` workers; one means a current-thread runtime (no work
/// stealing, no cross-thread wake-ups), which is the cheapest for a single core.
pub fn runtime(threads: usize) -> std::io::Result<tokio::runtime::Runtime> {
    if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    }
}
