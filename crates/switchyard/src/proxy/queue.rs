//! Server assignment: persistence or balancing, then a `maxconn` slot, waiting
//! in the queue up to `timeout queue` (HAProxy: 503 `sQ--` on expiry).
//!
//! A slot is taken by incrementing the server's in-flight count first and
//! checking `maxconn` afterwards, so concurrent threads can never push a server
//! over its limit. Waiters are woken by [`Lease`] drops through the backend's
//! `slot_freed` notifier and simply retry the whole assignment (FIFO order among
//! waiters is not guaranteed).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::Notify;

use crate::backend::balance::PickContext;
use crate::backend::server::InflightGuard;
use crate::backend::ServerState;
use crate::snapshot::BackendRt;

/// A held server slot: counts the stream as served until dropped, then wakes
/// queued requests.
#[derive(Debug)]
pub struct Lease {
    guard: Option<InflightGuard>,
    notify: Arc<Notify>,
}

impl Lease {
    pub fn server(&self) -> &Arc<ServerState> {
        self.guard
            .as_ref()
            .expect("lease holds a guard until dropped")
            .server()
    }

    pub fn index(&self) -> usize {
        self.server().index
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        drop(self.guard.take());
        self.notify.notify_waiters();
    }
}

/// Why no server could be assigned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssignError {
    /// No usable server at all (503 `SC--`, `<NOSRV>`).
    NoServer,
    /// Waited `timeout queue` for a slot (503 `sQ--`).
    QueueTimeout,
}

/// Result of an assignment.
#[derive(Debug)]
pub struct Assigned {
    pub lease: Lease,
    /// Milliseconds spent in the queue.
    pub waited_ms: i64,
}

/// Assigns a server: `persist` (a cookie-selected server) if given, else the
/// balancer's pick; waits for a slot when the target is at `maxconn`.
pub async fn assign(
    be: &BackendRt,
    persist: Option<usize>,
    ctx: &PickContext<'_>,
) -> Result<Assigned, AssignError> {
    let start = Instant::now();
    let deadline = be.queue_timeout().map(|d| tokio::time::Instant::now() + d);
    loop {
        let notified = be.slot_freed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let target = match persist {
            Some(i) => Some(i),
            None => be.balancer.pick(&be.servers, ctx),
        };
        let waiting_on = match target {
            Some(i) => match try_take(be, i) {
                Some(lease) => {
                    return Ok(Assigned {
                        lease,
                        waited_ms: start.elapsed().as_millis() as i64,
                    })
                }
                None => i,
            },
            None => match be.servers.iter().find(|s| s.balanceable() && !s.has_room()) {
                Some(full) => full.index,
                None => return Err(AssignError::NoServer),
            },
        };
        let srv = &be.servers[waiting_on];
        srv.queued.fetch_add(1, Ordering::AcqRel);
        srv.touch();
        let woke = match deadline {
            Some(d) => tokio::time::timeout_at(d, notified).await.is_ok(),
            None => {
                notified.await;
                true
            }
        };
        srv.queued.fetch_sub(1, Ordering::AcqRel);
        srv.touch();
        if !woke {
            return Err(AssignError::QueueTimeout);
        }
    }
}

/// Takes a slot on server `i` if it has room.
pub fn try_take(be: &BackendRt, i: usize) -> Option<Lease> {
    let srv = &be.servers[i];
    let guard = srv.acquire();
    if let Some(max) = srv.maxconn {
        if srv.inflight.load(Ordering::Acquire) > max {
            drop(guard);
            return None;
        }
    }
    Some(Lease {
        guard: Some(guard),
        notify: be.slot_freed.clone(),
    })
}
