//! Per-server runtime state shared by balancers, health checks and the proxy.
//! Mutable state lives only in atomics here; readers never lock.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use switchyard_config::Server;

/// Global sequence stamped on every change of a server's in-flight count, so that
/// leastconn can break ties by "re-inserted earliest" as HAProxy's tree does.
static CHANGE_SEQ: AtomicU64 = AtomicU64::new(0);

#[derive(Debug)]
pub struct ServerState {
    /// Index of the server in its backend (declaration order).
    pub index: usize,
    /// `id N` from the configuration, else the 1-based position (`balance first` order).
    pub id: u32,
    pub name: String,
    pub cookie: Option<String>,
    pub backup: bool,
    pub maxconn: Option<u32>,
    /// Effective weight (0..=256); 0 takes the server out of balancing.
    pub weight: AtomicU32,
    /// Health-check verdict; true when the server has no `check`.
    pub up: AtomicBool,
    /// Administrative maintenance (`disabled`, runtime API).
    pub maint: AtomicBool,
    /// Administrative drain: no new balanced traffic, persistence still honoured.
    pub drain: AtomicBool,
    /// Streams currently assigned: requests in progress and open tunnels.
    pub inflight: AtomicU32,
    /// Requests waiting for a `maxconn` slot.
    pub queued: AtomicU32,
    /// CHANGE_SEQ value at the last change of `inflight`/`queued`/state.
    pub last_change: AtomicU64,
}

impl ServerState {
    pub fn new(index: usize, cfg: &Server) -> Self {
        ServerState {
            index,
            id: if cfg.id == 0 {
                index as u32 + 1
            } else {
                cfg.id
            },
            name: cfg.name.clone(),
            cookie: cfg.cookie.clone(),
            backup: cfg.backup,
            maxconn: cfg.maxconn,
            weight: AtomicU32::new(cfg.weight),
            up: AtomicBool::new(true),
            maint: AtomicBool::new(cfg.disabled),
            drain: AtomicBool::new(false),
            inflight: AtomicU32::new(0),
            queued: AtomicU32::new(0),
            last_change: AtomicU64::new(CHANGE_SEQ.fetch_add(1, Ordering::Relaxed)),
        }
    }

    /// Running: UP by checks and not in maintenance (a cookie may still target it in drain).
    pub fn running(&self) -> bool {
        self.up.load(Ordering::Acquire) && !self.maint.load(Ordering::Acquire)
    }

    /// Eligible for balanced (non-persistent) traffic.
    pub fn balanceable(&self) -> bool {
        self.running()
            && !self.drain.load(Ordering::Acquire)
            && self.weight.load(Ordering::Relaxed) > 0
    }

    /// Below `maxconn` (always true without one).
    pub fn has_room(&self) -> bool {
        match self.maxconn {
            Some(m) => self.inflight.load(Ordering::Acquire) < m,
            None => true,
        }
    }

    pub fn touch(&self) {
        self.last_change.store(
            CHANGE_SEQ.fetch_add(1, Ordering::Relaxed),
            Ordering::Relaxed,
        );
    }

    /// Counts a stream as served by this server until the guard drops.
    pub fn acquire(self: &std::sync::Arc<Self>) -> InflightGuard {
        self.inflight.fetch_add(1, Ordering::AcqRel);
        self.touch();
        InflightGuard(self.clone())
    }
}

/// Decrements the server's in-flight count when dropped.
#[derive(Debug)]
pub struct InflightGuard(std::sync::Arc<ServerState>);

impl InflightGuard {
    pub fn server(&self) -> &std::sync::Arc<ServerState> {
        &self.0
    }
}

impl Drop for InflightGuard {
    fn drop(&mut self) {
        self.0.inflight.fetch_sub(1, Ordering::AcqRel);
        self.0.touch();
    }
}
