//! The live configuration: which [`Snapshot`] new requests use.
//!
//! A reload (SIGHUP, see [`crate::runtime`]) builds a new snapshot and
//! [`publish`]es it. Connections keep the `Arc<Snapshot>` they were accepted
//! with, and [`refresh`] moves them to the newest one between two requests, so
//! a keep-alive client follows the new routing from its next request on.
//!
//! Cost on the hot path: one atomic load per request (the published
//! generation compared with the connection's snapshot's); the lock is taken
//! only by the first request of a connection after a reload.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use crate::proxy::ConnCtx;
use crate::snapshot::Snapshot;

/// Generation of the published snapshot (0: the one the process started with).
static GENERATION: AtomicU64 = AtomicU64::new(0);
static CURRENT: RwLock<Option<Arc<Snapshot>>> = RwLock::new(None);

/// Makes `snap` the configuration of every new connection and of the next
/// request of every open one.
pub fn publish(snap: Arc<Snapshot>) {
    let generation = snap.generation;
    *CURRENT.write().unwrap_or_else(|e| e.into_inner()) = Some(snap);
    GENERATION.store(generation, Ordering::Release);
}

/// The published snapshot, if any.
pub fn current() -> Option<Arc<Snapshot>> {
    CURRENT.read().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Whether a snapshot newer than `snap` has been published.
pub fn is_stale(snap: &Snapshot) -> bool {
    GENERATION.load(Ordering::Acquire) != snap.generation
}

/// Between two requests of a connection: switch `cx` to the published
/// snapshot. The connection's frontend is found again by name (indices may
/// change across configurations); when the new configuration no longer has a
/// frontend of that name and mode, the connection stays on its snapshot (its
/// listener is being closed, and the connection with it after the response).
pub fn refresh(cx: &mut ConnCtx) {
    follow(&mut cx.snap, &mut cx.fe);
}

/// Moves (`snap`, frontend index `fe`) to the published snapshot when it is
/// newer and still has that frontend (same name and mode); else leaves them.
pub fn follow(snap: &mut Arc<Snapshot>, fe: &mut usize) {
    if !is_stale(snap) {
        return;
    }
    let Some(new) = current() else { return };
    let old = &snap.frontends[*fe].cfg;
    if let Some(i) = new
        .frontends
        .iter()
        .position(|f| f.cfg.name == old.name && f.cfg.mode == old.mode)
    {
        *fe = i;
        *snap = new;
    }
}
