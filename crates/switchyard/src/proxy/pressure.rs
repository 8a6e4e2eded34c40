//! Connection-slot pressure: when `maxconn` is full, the connection that has
//! waited longest for a request head gives its slot to a new one (issue 6,
//! RELIABILITY.md row R1).
//!
//! HAProxy 2.6 leaves new connections in the kernel backlog until a slot
//! frees up; with the cap full of slowloris connections, legitimate clients
//! wait there until `timeout http-request` expires. This is a deliberate
//! difference, adapted from nginx's `ngx_drain_connections` (which closes
//! the oldest "reusable" connections when it runs out of connection slots):
//! when the accept loop holds a new connection and its frontend's or the
//! global `maxconn` has no slot, it closes the connection of its own worker
//! that has waited longest for a request head and holds a slot of that
//! limit, and the freed slot goes to the new connection.
//!
//! What may be evicted: a connection waiting for its first head (nothing or
//! part of it received), or an idle keep-alive connection between requests
//! (or one whose next head has started). It gets what `timeout
//! http-request` expiry gives it: a started first request (or a started
//! later one) is answered with the raw 408 and closed, logged `cR--`; an
//! idle keep-alive connection is closed silently. Never evicted: a
//! connection whose request is being forwarded or whose response is being
//! written (its state is "busy" from the moment its head is parsed until
//! its next wait begins), a tunnel (WebSocket, `mode tcp`: never waiting
//! for a head), a connection of another worker.
//!
//! [`MIN_WAIT`]: a connection is evicted only once it has waited 250 ms.
//! A legitimate client sends its head right after the handshake, so it
//! reaches the proxy about half a round trip after the accept: 250 ms
//! covers the round trips of intercontinental paths (100-250 ms), so a
//! client whose request is on its way is not mistaken for an idle one,
//! while a new client still gets its slot far within the 2 s a user or a
//! probe waits (R1: 40 probes with a 2 s deadline). An idle keep-alive
//! connection closed under pressure may race with a next request its client
//! is sending: the same race as any keep-alive timeout, which HTTP clients
//! handle by retrying idempotent requests on a fresh connection.
//!
//! Cost: a connection of a frontend under a `maxconn` (frontend or global)
//! is registered once, in its worker's thread-local registry, when its task
//! starts, and removed when it ends; per request, the task stores the start
//! of its wait and "busy" with relaxed atomic stores into its own entry (no
//! lock, no cross-thread traffic: only its worker's thread reads it), and
//! its head reads check one flag. The task's waker is stored once per
//! connection. The registry is scanned only when a limit is full. A worker
//! with no connection to evict (none of its own holds a slot of the full
//! limit, e.g. they are all busy) waits for a slot as before, scanning
//! again every [`MIN_WAIT`].

use std::cell::RefCell;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::body::IoError;

/// How long a connection must have waited for a head before it may be evicted.
pub const MIN_WAIT: Duration = Duration::from_millis(250);

/// After an eviction, how long before scanning again if the freed slot went
/// to another worker's waiting connection.
const RETRY: Duration = Duration::from_millis(50);

/// A connection's state, shared by its task and its worker's registry.
struct Entry {
    /// Time origin of `since` (the accept, roughly).
    base: Instant,
    /// 0: busy; else 1 + nanoseconds from `base` to the start of the wait.
    since: AtomicU64,
    evicted: AtomicBool,
    /// The task's waker, stored on its first wait.
    waker: Mutex<Option<Waker>>,
    has_waker: AtomicBool,
    /// The semaphores (their addresses) whose slots the connection holds.
    limits: [usize; 2],
}

#[derive(Default)]
struct Registry {
    slots: Vec<Option<Arc<Entry>>>,
    free: Vec<usize>,
}

thread_local! {
    static REGISTRY: RefCell<Registry> = RefCell::new(Registry::default());
}

fn key(sem: &Arc<Semaphore>) -> usize {
    Arc::as_ptr(sem) as usize
}

/// A connection's place in its worker's registry, removed on drop. Created
/// and dropped on the worker thread that runs the connection.
pub struct Guard {
    entry: Arc<Entry>,
    index: usize,
}

impl Guard {
    /// Registers a connection holding `permits` on the current thread; none
    /// for a connection under no limit.
    pub fn register(permits: &[OwnedSemaphorePermit]) -> Option<Guard> {
        if permits.is_empty() {
            return None;
        }
        let mut limits = [0; 2];
        for (l, p) in limits.iter_mut().zip(permits) {
            *l = key(p.semaphore());
        }
        let entry = Arc::new(Entry {
            base: Instant::now(),
            since: AtomicU64::new(0),
            evicted: AtomicBool::new(false),
            waker: Mutex::new(None),
            has_waker: AtomicBool::new(false),
            limits,
        });
        let index = REGISTRY.with_borrow_mut(|r| match r.free.pop() {
            Some(i) => {
                r.slots[i] = Some(entry.clone());
                i
            }
            None => {
                r.slots.push(Some(entry.clone()));
                r.slots.len() - 1
            }
        });
        Some(Guard { entry, index })
    }

    /// The connection waits for a request head since `since`.
    pub fn waiting(&self, since: Instant) {
        let nanos = since.saturating_duration_since(self.entry.base).as_nanos() as u64;
        self.entry.since.store(nanos.saturating_add(1), Relaxed);
    }

    /// The connection has a head (or is ending): not evictable.
    pub fn busy(&self) {
        self.entry.since.store(0, Relaxed);
    }

    /// Whether the connection was evicted.
    #[cfg(test)]
    fn evicted(&self) -> bool {
        self.entry.evicted.load(Relaxed)
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = REGISTRY.try_with(|r| {
            let mut r = r.borrow_mut();
            if let Some(slot) = r.slots.get_mut(self.index) {
                *slot = None;
                r.free.push(self.index);
            }
        });
    }
}

/// `read`, unless the connection is evicted first: then `Err(Timeout)`, so
/// that the head wait ends as if `timeout http-request` (or the keep-alive
/// timeout) had expired.
///
/// `read` is pinned by the caller: moving the read future in and pinning it here copied it.
pub async fn read_or_evicted(
    guard: Option<&Guard>,
    mut read: Pin<&mut impl Future<Output = Result<usize, IoError>>>,
) -> Result<usize, IoError> {
    let Some(g) = guard else {
        return read.await;
    };
    let e = &g.entry;
    poll_fn(|cx| {
        if e.evicted.load(Relaxed) {
            return Poll::Ready(Err(IoError::Timeout));
        }
        if !e.has_waker.load(Relaxed) {
            // A task's waker stays the same for its life: stored once.
            if let Ok(mut w) = e.waker.lock() {
                *w = Some(cx.waker().clone());
                e.has_waker.store(true, Relaxed);
            }
        }
        read.as_mut().poll(cx)
    })
    .await
}

/// A limit (`sem`) is full and a new connection waits for one of its slots:
/// evicts the connection of this worker, holding a slot of `sem`, that has
/// waited longest for a head, if it waited at least [`MIN_WAIT`]. Returns
/// when to look again if no slot has come by then.
pub fn relieve(sem: &Arc<Semaphore>, now: Instant) -> Instant {
    let k = key(sem);
    REGISTRY.with_borrow(|r| {
        let oldest = r
            .slots
            .iter()
            .flatten()
            .filter(|e| e.limits.contains(&k) && !e.evicted.load(Relaxed))
            .filter_map(|e| {
                let s = e.since.load(Relaxed);
                (s != 0).then(|| (e.base + Duration::from_nanos(s - 1), e))
            })
            .min_by_key(|(since, _)| *since);
        match oldest {
            Some((since, e)) if now.saturating_duration_since(since) >= MIN_WAIT => {
                e.evicted.store(true, Relaxed);
                if let Ok(w) = e.waker.lock() {
                    if let Some(w) = w.as_ref() {
                        w.wake_by_ref();
                    }
                }
                now + RETRY
            }
            Some((since, _)) => since + MIN_WAIT,
            None => now + MIN_WAIT,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn permits(sem: &Arc<Semaphore>, n: usize) -> Vec<Vec<OwnedSemaphorePermit>> {
        (0..n)
            .map(|_| vec![sem.clone().try_acquire_owned().unwrap()])
            .collect()
    }

    #[test]
    fn evicts_the_longest_waiting_after_the_minimum() {
        let sem = Arc::new(Semaphore::new(3));
        let held = permits(&sem, 3);
        let guards: Vec<Guard> = held.iter().map(|p| Guard::register(p).unwrap()).collect();
        let t0 = Instant::now();
        guards[0].waiting(t0 + Duration::from_millis(20));
        guards[1].waiting(t0 + Duration::from_millis(10));
        guards[2].busy();
        // Too recent: nothing evicted, look again when the oldest qualifies.
        let at = relieve(&sem, t0 + Duration::from_millis(100));
        assert_eq!(at, t0 + Duration::from_millis(10) + MIN_WAIT);
        assert!(guards.iter().all(|g| !g.evicted()));
        relieve(&sem, t0 + Duration::from_millis(400));
        assert!(guards[1].evicted(), "the longest waiting one");
        assert!(!guards[0].evicted() && !guards[2].evicted());
        relieve(&sem, t0 + Duration::from_millis(400));
        assert!(guards[0].evicted());
        relieve(&sem, t0 + Duration::from_secs(10));
        assert!(!guards[2].evicted(), "a busy connection is never evicted");
    }

    #[test]
    fn only_holders_of_the_full_limit_are_candidates() {
        let full = Arc::new(Semaphore::new(1));
        let other = Arc::new(Semaphore::new(1));
        let p = permits(&other, 1);
        let g = Guard::register(&p[0]).unwrap();
        let t0 = Instant::now();
        g.waiting(t0);
        relieve(&full, t0 + Duration::from_secs(1));
        assert!(!g.evicted());
        drop(g);
        // A dropped guard leaves the registry; its slot is reused.
        let g2 = Guard::register(&p[0]).unwrap();
        g2.waiting(t0);
        relieve(&other, t0 + Duration::from_secs(1));
        assert!(g2.evicted());
    }
}
