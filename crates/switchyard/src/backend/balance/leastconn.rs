//! `balance leastconn`: HAProxy's `lb_fwlc.c` without the tree.
//!
//! HAProxy keeps servers in a tree keyed by
//! `load == 0 ? 0 : (load + 1) * 4096 / (weight * 16)` with `load = served +
//! queued`, and re-inserts a server at the end of its key's duplicates every
//! time its load changes; the pick is the first entry. Here every server
//! stamps `last_change` from a global sequence whenever its load changes, so
//! the same order is the minimum of `(key, last_change)` over the servers, found
//! by one lock-free scan of the atomics. Consequences, as observed on HAProxy:
//! idle servers rotate strictly (`a b c a b c`), and weights only matter once
//! servers carry load.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::{first_acceptable, Balancer, Group, PickContext};
use crate::backend::ServerState;

#[derive(Debug)]
pub struct LeastConn {
    allbackups: bool,
}

impl LeastConn {
    pub fn new(allbackups: bool) -> Self {
        LeastConn { allbackups }
    }
}

/// The tree key of HAProxy's leastconn for a server.
pub(crate) fn key(s: &ServerState) -> u64 {
    let load =
        u64::from(s.inflight.load(Ordering::Acquire)) + u64::from(s.queued.load(Ordering::Acquire));
    let w = u64::from(super::eweight(s));
    if load == 0 {
        0
    } else {
        ((load + 1) * 4096).checked_div(w).unwrap_or(u64::MAX)
    }
}

impl Balancer for LeastConn {
    fn pick(&self, servers: &[Arc<ServerState>], ctx: &PickContext<'_>) -> Option<usize> {
        let group = Group::select(servers, self.allbackups)?;
        let ok = |i: usize| group.contains(i, &servers[i]) && servers[i].has_room();
        // Best and second best by (key, last_change): the second is used when
        // the best is the server to avoid.
        let mut best: Option<(u64, u64, usize)> = None;
        let mut second: Option<(u64, u64, usize)> = None;
        for (i, s) in servers.iter().enumerate() {
            if !ok(i) {
                continue;
            }
            let cand = (key(s), s.last_change.load(Ordering::Relaxed), i);
            if best.is_none_or(|b| (cand.0, cand.1) < (b.0, b.1)) {
                second = best;
                best = Some(cand);
            } else if second.is_none_or(|b| (cand.0, cand.1) < (b.0, b.1)) {
                second = Some(cand);
            }
        }
        let order = best.into_iter().chain(second).map(|c| c.2);
        first_acceptable(order, ctx.avoid, |_| true)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    #[test]
    fn key_formula() {
        let s = servers(&[1, 2]);
        assert_eq!(key(&s[0]), 0);
        let _g = s[0].acquire();
        assert_eq!(key(&s[0]), 2 * 4096 / 16);
        let _g2 = s[1].acquire();
        let _g3 = s[1].acquire();
        assert_eq!(key(&s[1]), 3 * 4096 / 32);
        s[1].queued.store(1, Ordering::Release);
        assert_eq!(key(&s[1]), 4 * 4096 / 32);
    }

    #[test]
    fn idle_servers_rotate() {
        let s = servers(&[1, 1, 1]);
        let b = LeastConn::new(false);
        assert_eq!(sequence(&b, &s, 7), "a b c a b c a");
        // Weights do not matter while idle.
        let s = servers(&[3, 1, 1]);
        assert_eq!(sequence(&b, &s, 6), "a b c a b c");
    }

    #[test]
    fn busy_servers_observed_order() {
        // a, b, c busy with one long request each plus a second one on a:
        // the next short sequential requests go b, c, b.
        let s = servers(&[1, 1, 1]);
        let b = LeastConn::new(false);
        let _long = [
            s[0].acquire(),
            s[1].acquire(),
            s[2].acquire(),
            s[0].acquire(),
        ];
        assert_eq!(sequence(&b, &s, 3), "b c b");
    }

    #[test]
    fn weighted_concurrent_long_requests() {
        let s = servers(&[2, 1]);
        let b = LeastConn::new(false);
        let h = http::HeaderMap::new();
        let mut guards = Vec::new();
        let mut names = Vec::new();
        for _ in 0..6 {
            let i = b.pick(&s, &ctx("/", &h)).unwrap();
            names.push(s[i].name.clone());
            guards.push(s[i].acquire());
        }
        assert_eq!(names.join(" "), "a b a a b a");
    }

    #[test]
    fn weight_zero_down_and_full_are_skipped() {
        let s = servers_with(&[0, 1, 1], |i, c| {
            if i == 2 {
                c.maxconn = Some(1)
            }
        });
        let b = LeastConn::new(false);
        let h = http::HeaderMap::new();
        let _g = s[2].acquire();
        assert_eq!(b.pick(&s, &ctx("/", &h)), Some(1));
        set_up(&s[1], false);
        assert_eq!(b.pick(&s, &ctx("/", &h)), None);
    }

    #[test]
    fn avoid_takes_the_next_best_unless_alone() {
        let s = servers(&[1, 1, 1]);
        let b = LeastConn::new(false);
        let h = http::HeaderMap::new();
        let mut c = ctx("/", &h);
        c.avoid = Some(0);
        assert_eq!(b.pick(&s, &c), Some(1));
        set_up(&s[1], false);
        set_up(&s[2], false);
        assert_eq!(b.pick(&s, &c), Some(0));
    }

    #[test]
    fn backups_and_allbackups() {
        let s = servers_with(&[1, 1, 1], |i, c| c.backup = i > 0);
        let b = LeastConn::new(false);
        assert_eq!(sequence(&b, &s, 2), "a a");
        set_up(&s[0], false);
        assert_eq!(sequence(&b, &s, 3), "b b b");
        let b = LeastConn::new(true);
        // b served last above, so the idle rotation resumes with c.
        assert_eq!(sequence(&b, &s, 4), "c b c b");
    }
}
