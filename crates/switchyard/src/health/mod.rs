//! Active health checks: one task per server with `check`, HAProxy 2.6 semantics.
//!
//! Counter model (behaviour doc §2.6): `health ∈ [0, rise+fall-1]`, UP iff
//! `health >= rise`; a server starts UP with `health = rise`, so the first
//! failed check takes it DOWN, a fully UP server needs `fall` consecutive
//! failures and a DOWN one `rise` consecutive passes. Intervals: `inter` when
//! fully UP, `downinter` when fully DOWN, `fastinter` in between. First checks
//! are spread evenly over the first `inter`.
//!
//! This module is the only writer of `ServerState::up`; state changes are
//! printed in HAProxy's words on stderr (`[WARNING]`/`[ALERT]` lines).

mod check;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

pub use check::{CheckOutcome, Probe};

use crate::observability;
use crate::snapshot::{BackendRt, Snapshot};

/// Spawns the check tasks of every checked server on the current runtime.
pub fn start(snap: &Arc<Snapshot>, stop: watch::Receiver<bool>) {
    let checked: Vec<(usize, usize)> = snap
        .backends
        .iter()
        .flat_map(|be| {
            be.cfg
                .servers
                .iter()
                .enumerate()
                .filter(|(_, s)| s.check)
                .map(move |(i, _)| (be.index, i))
        })
        .collect();
    let n = checked.len() as u32;
    for (k, (bi, si)) in checked.into_iter().enumerate() {
        let inter = snap.backends[bi].cfg.servers[si].inter;
        let first = inter * k as u32 / n.max(1);
        tokio::spawn(run_server(snap.clone(), bi, si, first, stop.clone()));
    }
}

/// The rise/fall counter of one server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Health {
    pub value: u32,
    pub rise: u32,
    pub fall: u32,
}

impl Health {
    /// Start-up state: UP, but one failure away from DOWN.
    pub fn new(rise: u32, fall: u32) -> Self {
        let (rise, fall) = (rise.max(1), fall.max(1));
        Health {
            value: rise,
            rise,
            fall,
        }
    }

    fn max(&self) -> u32 {
        self.rise + self.fall - 1
    }

    pub fn is_up(&self) -> bool {
        self.value >= self.rise
    }

    pub fn pass(&mut self) {
        if self.value < self.max() {
            self.value += 1;
            if self.value >= self.rise {
                self.value = self.max();
            }
        }
    }

    pub fn fail(&mut self) {
        if self.value > self.rise {
            self.value -= 1;
        } else {
            self.value = 0;
        }
    }

    /// `3/3 UP`, `1/2 DOWN`: HAProxy's status text.
    pub fn status(&self) -> String {
        if self.is_up() {
            format!("{}/{} UP", self.value - self.rise + 1, self.fall)
        } else {
            format!("{}/{} DOWN", self.value, self.rise)
        }
    }

    /// Which interval applies next.
    pub fn next_interval(
        &self,
        inter: Duration,
        fastinter: Duration,
        downinter: Duration,
    ) -> Duration {
        if self.value == 0 {
            downinter
        } else if self.value == self.max() {
            inter
        } else {
            fastinter
        }
    }
}

async fn run_server(
    snap: Arc<Snapshot>,
    bi: usize,
    si: usize,
    first: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let be = &snap.backends[bi];
    let srv = &be.cfg.servers[si];
    let probe = Probe::new(be, si);
    let mut health = Health::new(srv.rise, srv.fall);
    if !be.servers[si].up.load(Ordering::Acquire) {
        // Restarted by a reload on a server found DOWN: it needs `rise` passes.
        health.value = 0;
    }
    let mut delay = first;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let outcome = probe.run().await;
        let was_up = health.is_up();
        let before = health;
        if outcome.passed {
            health.pass();
        } else {
            health.fail();
        }
        if be.cfg.log_health_checks && health != before {
            let verdict = if outcome.passed {
                "succeeded"
            } else {
                "failed"
            };
            observability::notice(&format!(
                "Health check for server {}/{} {verdict}, {}, status: {}.",
                be.cfg.name,
                srv.name,
                outcome.describe(),
                health.status()
            ));
        }
        if health.is_up() != was_up {
            set_state(be, si, health.is_up(), &outcome);
        }
        delay = health.next_interval(srv.inter, srv.fastinter, srv.downinter);
    }
}

/// Flips the server's state and prints HAProxy's transition messages.
fn set_state(be: &BackendRt, si: usize, up: bool, outcome: &CheckOutcome) {
    let state = &be.servers[si];
    state.up.store(up, Ordering::Release);
    state.touch();
    be.waitlist.wake();
    let (active, backup) = usable_counts(be);
    let name = format!("{}/{}", be.cfg.name, be.cfg.servers[si].name);
    if up {
        observability::warning(&format!(
            "Server {name} is UP, {}. {active} active and {backup} backup servers online. 0 sessions requeued, 0 total in queue.",
            outcome.describe()
        ));
    } else {
        let sessions = state.inflight.load(Ordering::Relaxed);
        let queued = state.queued.load(Ordering::Relaxed);
        observability::warning(&format!(
            "Server {name} is DOWN, {}. {active} active and {backup} backup servers left. {sessions} sessions active, 0 requeued, {queued} remaining in queue.",
            outcome.describe()
        ));
        if active == 0 && backup == 0 {
            observability::alert(&format!(
                "backend '{}' has no server available!",
                be.cfg.name
            ));
        }
    }
}

fn usable_counts(be: &BackendRt) -> (usize, usize) {
    let running = be.servers.iter().filter(|s| s.running());
    let (mut a, mut b) = (0, 0);
    for s in running {
        if s.backup {
            b += 1;
        } else {
            a += 1;
        }
    }
    (a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_model_matches_haproxy() {
        let mut h = Health::new(2, 3);
        assert!(h.is_up());
        h.fail();
        assert!(
            !h.is_up(),
            "first failure from start-up takes the server down"
        );
        assert_eq!(h.status(), "0/2 DOWN");
        h.pass();
        assert_eq!(h.status(), "1/2 DOWN");
        h.pass();
        assert_eq!(h.status(), "3/3 UP");
        h.fail();
        assert_eq!(h.status(), "2/3 UP");
        h.fail();
        assert_eq!(h.status(), "1/3 UP");
        h.fail();
        assert_eq!(h.status(), "0/2 DOWN");
        let mut fresh = Health::new(2, 3);
        fresh.pass();
        assert_eq!(fresh.status(), "3/3 UP");
        let (i, f, d) = (
            Duration::from_secs(2),
            Duration::from_secs(1),
            Duration::from_secs(5),
        );
        assert_eq!(fresh.next_interval(i, f, d), i);
        fresh.fail();
        assert_eq!(fresh.next_interval(i, f, d), f);
        fresh.value = 0;
        assert_eq!(fresh.next_interval(i, f, d), d);
    }
}
