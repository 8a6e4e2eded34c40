//! Server assignment: persistence or balancing, then a `maxconn` slot, waiting
//! in a FIFO queue up to `timeout queue` (HAProxy: 503 `sQ--` on expiry).
//!
//! A slot is taken by incrementing the server's in-flight count first and
//! checking `maxconn` afterwards, so concurrent threads can never push a server
//! over its limit. As in HAProxy, there is one queue per server (requests a
//! cookie pinned to it) and one per backend (requests for any server); once a
//! queue is non-empty, newcomers line up behind it, and only the head of a queue
//! may take a free slot. Waiters are woken by [`Lease`] drops, by a head
//! leaving its queue, and by server state changes.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::Notify;

use crate::backend::balance::PickContext;
use crate::backend::server::InflightGuard;
use crate::backend::ServerState;
use crate::snapshot::BackendRt;

/// A backend's queues.
#[derive(Debug)]
pub struct Waitlist {
    notify: Arc<Notify>,
    /// Requests waiting in any of the queues (fast path: 0 means no lock needed).
    waiting: AtomicUsize,
    inner: Mutex<Queues>,
}

#[derive(Debug, Default)]
struct Queues {
    next_ticket: u64,
    /// Index 0: the backend queue; index i+1: server i's queue.
    lines: Vec<VecDeque<u64>>,
}

impl Waitlist {
    pub fn new(servers: usize) -> Self {
        Waitlist {
            notify: Arc::new(Notify::new()),
            waiting: AtomicUsize::new(0),
            inner: Mutex::new(Queues {
                next_ticket: 0,
                lines: vec![VecDeque::new(); servers + 1],
            }),
        }
    }

    /// Wakes every waiter so that queue heads re-check (a slot or a server freed up).
    pub fn wake(&self) {
        self.notify.notify_waiters();
    }

    /// Requests currently queued in the backend queue (not pinned to a server).
    pub fn backend_queued(&self) -> usize {
        self.inner.lock().map_or(0, |q| q.lines[0].len())
    }

    fn join(&self, line: usize) -> u64 {
        let mut q = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let t = q.next_ticket;
        q.next_ticket += 1;
        q.lines[line].push_back(t);
        self.waiting.fetch_add(1, Ordering::AcqRel);
        t
    }

    fn is_head(&self, line: usize, ticket: u64) -> bool {
        let q = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        q.lines[line].front() == Some(&ticket)
    }

    fn leave(&self, line: usize, ticket: u64) {
        let mut q = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(pos) = q.lines[line].iter().position(|t| *t == ticket) {
            q.lines[line].remove(pos);
            self.waiting.fetch_sub(1, Ordering::AcqRel);
        }
        drop(q);
        self.notify.notify_waiters();
    }
}

/// A place in a queue; leaving (slot taken, timeout, client gone) wakes the others.
struct Ticket<'a> {
    list: &'a Waitlist,
    line: usize,
    id: u64,
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        self.list.leave(self.line, self.id);
    }
}

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
    /// Waited `timeout queue` for a slot, or the server queue was full
    /// (`maxqueue`): 503 `sQ--`.
    QueueTimeout,
}

/// Result of an assignment.
#[derive(Debug)]
pub struct Assigned {
    pub lease: Lease,
    /// Milliseconds spent in the queue.
    pub waited_ms: i64,
}

enum Try {
    Took(Lease),
    Full,
    NoServer,
}

fn attempt(be: &BackendRt, persist: Option<usize>, ctx: &PickContext<'_>) -> Try {
    let target = match persist {
        Some(i) => Some(i),
        None => be.balancer.pick(&be.servers, ctx),
    };
    match target {
        Some(i) => match try_take(be, i) {
            Some(lease) => Try::Took(lease),
            None => Try::Full,
        },
        None => match be.servers.iter().any(|s| s.balanceable() && !s.has_room()) {
            true => Try::Full,
            false => Try::NoServer,
        },
    }
}

/// Assigns a server: `persist` (a cookie-selected server) if given, else the
/// balancer's pick; queues when the target is at `maxconn`.
pub async fn assign(
    be: &BackendRt,
    persist: Option<usize>,
    ctx: &PickContext<'_>,
) -> Result<Assigned, AssignError> {
    assign_timed(be, persist, ctx).await.map_err(|(e, _)| e)
}

/// [`assign`], the error with the milliseconds spent waiting in the queue (0 when the
/// request was refused without queueing): the clock is read only when a request waits.
pub async fn assign_timed(
    be: &BackendRt,
    persist: Option<usize>,
    ctx: &PickContext<'_>,
) -> Result<Assigned, (AssignError, i64)> {
    match assign_now(be, persist, ctx) {
        Some(done) => done,
        None => assign_queued(be, persist, ctx).await,
    }
}

/// The first step of [`assign_timed`], without waiting: `None` when the request has to
/// queue (then [`assign_queued`] does the rest). The usual request is assigned here,
/// without making a future for the queue.
pub fn assign_now(
    be: &BackendRt,
    persist: Option<usize>,
    ctx: &PickContext<'_>,
) -> Option<Result<Assigned, (AssignError, i64)>> {
    if be.waitlist.waiting.load(Ordering::Acquire) != 0 {
        return None;
    }
    match attempt(be, persist, ctx) {
        Try::Took(lease) => Some(Ok(Assigned {
            lease,
            waited_ms: 0,
        })),
        Try::NoServer => Some(Err((AssignError::NoServer, 0))),
        Try::Full => None,
    }
}

/// [`assign_timed`] after [`assign_now`] returned `None`: the request queues.
pub async fn assign_queued(
    be: &BackendRt,
    persist: Option<usize>,
    ctx: &PickContext<'_>,
) -> Result<Assigned, (AssignError, i64)> {
    let list = &be.waitlist;
    // The request queues. `maxqueue`: when a persisted request's server queue is full,
    // HAProxy answers 503, or with `option redispatch` balances it to another server. The
    // place is taken atomically with the check: with several threads, two requests could
    // otherwise both see room for one and both join.
    let persist = match persist {
        Some(i) if !reserve_place(be, i) => match be.cfg.redispatch {
            Some(r) if r != 0 => None,
            _ => return Err((AssignError::QueueTimeout, 0)),
        },
        p => p,
    };
    // The clock is read only when the request has to wait.
    let start = Instant::now();
    let line = persist.map_or(0, |i| i + 1);
    let ticket = Ticket {
        list,
        line,
        id: list.join(line),
    };
    let deadline = be.queue_timeout().map(|d| tokio::time::Instant::now() + d);
    let counted = persist.map(|i| &be.servers[i]);
    if let Some(s) = counted {
        s.touch();
    }
    let result = loop {
        let notified = list.notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if list.is_head(line, ticket.id) {
            match attempt(be, persist, ctx) {
                Try::Took(lease) => {
                    break Ok(Assigned {
                        lease,
                        waited_ms: start.elapsed().as_millis() as i64,
                    })
                }
                Try::NoServer => break Err((AssignError::NoServer, 0)),
                Try::Full => {}
            }
        }
        let woke = match deadline {
            Some(d) => tokio::time::timeout_at(d, notified).await.is_ok(),
            None => {
                notified.await;
                true
            }
        };
        if !woke {
            break Err((
                AssignError::QueueTimeout,
                start.elapsed().as_millis() as i64,
            ));
        }
    };
    if let Some(s) = counted {
        s.queued.fetch_sub(1, Ordering::AcqRel);
        s.touch();
    }
    drop(ticket);
    result
}

/// Counts one more request in server `i`'s queue, unless that queue already holds
/// `maxqueue` requests (then `false`, and nothing is counted).
fn reserve_place(be: &BackendRt, i: usize) -> bool {
    let queued = &be.servers[i].queued;
    match be.cfg.servers[i].maxqueue.filter(|m| *m > 0) {
        None => {
            queued.fetch_add(1, Ordering::AcqRel);
            true
        }
        Some(m) => queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |q| {
                (q < m).then_some(q + 1)
            })
            .is_ok(),
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
        notify: be.waitlist.notify.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::Snapshot;

    fn snapshot(server_opts: &str) -> Arc<Snapshot> {
        let text = format!(
            "defaults\n    mode http\n    timeout connect 1s\n    timeout client 1s\n    timeout server 1s\n\
             frontend f\n    bind 127.0.0.1:1\n    default_backend b\n\
             backend b\n    server one 127.0.0.1:2 maxconn 1 {server_opts}\n"
        );
        let out = switchyard_config::parse(
            &[switchyard_config::Source {
                name: "t.cfg",
                text: &text,
            }],
            &|_| None,
        );
        Snapshot::build(out.config.expect("valid configuration")).unwrap()
    }

    #[test]
    fn racing_threads_never_fill_a_queue_past_maxqueue() {
        let snap = snapshot("maxqueue 3");
        let be = &snap.backends[0];
        let won = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..100 {
                        if reserve_place(be, 0) {
                            won.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                });
            }
        });
        assert_eq!(won.load(Ordering::SeqCst), 3);
        assert_eq!(be.servers[0].queued.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn without_maxqueue_every_request_gets_a_place() {
        let snap = snapshot("");
        let be = &snap.backends[0];
        for _ in 0..10 {
            assert!(reserve_place(be, 0));
        }
        assert_eq!(be.servers[0].queued.load(Ordering::SeqCst), 10);
    }
}
