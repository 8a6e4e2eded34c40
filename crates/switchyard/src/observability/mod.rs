//! Counters, the access log and HAProxy-style process messages.
//!
//! - [`Counters`]: per frontend/backend/server atomics, read by the stats and
//!   metrics pages.
//! - [`access_log`]: one `option httplog` line per request.
//! - [`notice`]/[`warning`]/[`alert`]: `[LEVEL]   (pid) : message` lines on
//!   stderr, the way HAProxy prints them in foreground mode.

pub mod access_log;
pub mod sink;

use std::io::Write;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

pub use access_log::LogRecord;
pub use sink::LogSink;

/// Process-wide count of open client connections (HAProxy's `actconn`).
pub static ACTIVE_CONNS: AtomicUsize = AtomicUsize::new(0);

/// Traffic counters of one proxy or server.
#[derive(Debug, Default)]
pub struct Counters {
    /// Open client connections (frontends) or streams being served (backends).
    pub current: AtomicUsize,
    /// Client connections accepted (frontends).
    pub connections: AtomicU64,
    pub requests: AtomicU64,
    /// Responses by class: 1xx, 2xx, 3xx, 4xx, 5xx, other.
    pub responses: [AtomicU64; 6],
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub connect_errors: AtomicU64,
    pub response_errors: AtomicU64,
    pub retries: AtomicU64,
    pub redispatches: AtomicU64,
}

impl Counters {
    pub fn count_response(&self, status: u16) {
        let class = match status {
            100..=199 => 0,
            200..=299 => 1,
            300..=399 => 2,
            400..=499 => 3,
            500..=599 => 4,
            _ => 5,
        };
        self.responses[class].fetch_add(1, Ordering::Relaxed);
    }
}

fn message(level: &str, text: &str) {
    let tag = format!("[{level}]");
    let line = format!("{tag:<11}({}) : {text}\n", std::process::id());
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// `[NOTICE]   (pid) : text` on stderr.
pub fn notice(text: &str) {
    message("NOTICE", text);
}

/// `[WARNING]  (pid) : text` on stderr.
pub fn warning(text: &str) {
    message("WARNING", text);
}

/// `[ALERT]    (pid) : text` on stderr.
pub fn alert(text: &str) {
    message("ALERT", text);
}
