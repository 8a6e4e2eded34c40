//! `balance random [(draws)]`: power of N random choices. Each draw picks a
//! server with a probability proportional to its weight; among the drawn
//! servers the one with the lowest `load / weight` wins (HAProxy compares
//! `served * other_weight`). Default 2 draws.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::{eweight, Balancer, Group, PickContext};
use crate::backend::ServerState;

#[derive(Debug)]
pub struct Random {
    allbackups: bool,
    draws: u32,
}

impl Random {
    pub fn new(allbackups: bool, draws: u32) -> Self {
        Random {
            allbackups,
            draws: draws.max(1),
        }
    }
}

fn load(s: &ServerState) -> u64 {
    u64::from(s.inflight.load(Ordering::Acquire)) + u64::from(s.queued.load(Ordering::Acquire))
}

impl Balancer for Random {
    fn pick(&self, servers: &[Arc<ServerState>], ctx: &PickContext<'_>) -> Option<usize> {
        let group = Group::select(servers, self.allbackups)?;
        let ok = |i: usize| group.contains(i, &servers[i]) && servers[i].has_room();
        let weight_of = |i: usize, skip: Option<usize>| {
            if ok(i) && Some(i) != skip {
                u64::from(eweight(&servers[i]))
            } else {
                0
            }
        };
        let mut skip = ctx.avoid;
        let mut total: u64 = (0..servers.len()).map(|i| weight_of(i, skip)).sum();
        if total == 0 {
            skip = None;
            total = (0..servers.len()).map(|i| weight_of(i, skip)).sum();
            if total == 0 {
                return None;
            }
        }
        let mut best: Option<usize> = None;
        for _ in 0..self.draws {
            let mut r = fastrand::u64(0..total);
            let mut drawn = None;
            for i in 0..servers.len() {
                let w = weight_of(i, skip);
                if r < w {
                    drawn = Some(i);
                    break;
                }
                r -= w;
            }
            let Some(cur) = drawn else { continue };
            best = match best {
                Some(prev) if prev != cur => {
                    let (p, c) = (&servers[prev], &servers[cur]);
                    if load(c) * u64::from(eweight(p)) > load(p) * u64::from(eweight(c)) {
                        Some(prev)
                    } else {
                        Some(cur)
                    }
                }
                _ => Some(cur),
            };
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    #[test]
    fn follows_weights_and_skips_unusable() {
        let s = servers(&[3, 1, 0]);
        let b = Random::new(false, 1);
        let h = http::HeaderMap::new();
        let mut counts = [0u32; 3];
        for _ in 0..4000 {
            counts[b.pick(&s, &ctx("/", &h)).unwrap()] += 1;
        }
        assert_eq!(counts[2], 0);
        assert!((2700..3300).contains(&counts[0]), "{counts:?}");
    }

    #[test]
    fn two_draws_prefer_the_less_loaded() {
        let s = servers(&[1, 1]);
        let b = Random::new(false, 2);
        let h = http::HeaderMap::new();
        let _busy: Vec<_> = (0..5).map(|_| s[0].acquire()).collect();
        let mut to_b = 0;
        for _ in 0..1000 {
            if b.pick(&s, &ctx("/", &h)) == Some(1) {
                to_b += 1;
            }
        }
        // b wins unless both draws hit a (probability 1/4).
        assert!(to_b > 650, "{to_b}");
    }

    #[test]
    fn avoid_unless_alone_and_backups() {
        let s = servers_with(&[1, 1, 1], |i, c| c.backup = i == 2);
        let b = Random::new(false, 2);
        let h = http::HeaderMap::new();
        let mut c = ctx("/", &h);
        c.avoid = Some(0);
        for _ in 0..50 {
            assert_eq!(b.pick(&s, &c), Some(1));
        }
        set_up(&s[1], false);
        assert_eq!(b.pick(&s, &c), Some(0));
        set_up(&s[0], false);
        assert_eq!(b.pick(&s, &c), Some(2));
    }
}
