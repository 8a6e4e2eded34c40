//! `balance first`: the first server (lowest `id`, i.e. declaration order
//! unless ids were set) that still has a free `maxconn` slot. Meant for
//! servers with `maxconn`: 5 concurrent requests over 3 servers with
//! `maxconn 2` go `a a b b c`.

use std::sync::Arc;

use super::{first_acceptable, Balancer, Group, PickContext};
use crate::backend::ServerState;

#[derive(Debug)]
pub struct First {
    allbackups: bool,
}

impl First {
    pub fn new(allbackups: bool) -> Self {
        First { allbackups }
    }
}

impl Balancer for First {
    fn pick(&self, servers: &[Arc<ServerState>], ctx: &PickContext<'_>) -> Option<usize> {
        let group = Group::select(servers, self.allbackups)?;
        let ok = |i: usize| group.contains(i, &servers[i]) && servers[i].has_room();
        let sorted_by_id = servers.windows(2).all(|w| w[0].id <= w[1].id);
        if sorted_by_id {
            return first_acceptable(0..servers.len(), ctx.avoid, ok);
        }
        // Explicit ids out of declaration order: visit by increasing id
        // without allocating (server counts are small).
        let mut avoided = None;
        let mut last: Option<(u32, usize)> = None;
        for _ in 0..servers.len() {
            let next = servers
                .iter()
                .enumerate()
                .filter(|(i, s)| last.is_none_or(|l| (s.id, *i) > l))
                .min_by_key(|(i, s)| (s.id, *i));
            let Some((i, s)) = next else { break };
            last = Some((s.id, i));
            if ok(i) {
                if Some(i) != ctx.avoid {
                    return Some(i);
                }
                avoided = Some(i);
            }
        }
        avoided
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    #[test]
    fn fills_servers_in_order() {
        let s = servers_with(&[1, 1, 1], |_, c| c.maxconn = Some(2));
        let b = First::new(false);
        let h = http::HeaderMap::new();
        let mut guards = Vec::new();
        let mut names = Vec::new();
        for _ in 0..5 {
            let i = b.pick(&s, &ctx("/", &h)).unwrap();
            names.push(s[i].name.clone());
            guards.push(s[i].acquire());
        }
        assert_eq!(names.join(" "), "a a b b c");
        guards.push(s[2].acquire());
        assert_eq!(b.pick(&s, &ctx("/", &h)), None);
    }

    #[test]
    fn explicit_ids_order_the_servers() {
        let s = servers_with(&[1, 1, 1], |i, c| c.id = [30, 10, 20][i]);
        let b = First::new(false);
        assert_eq!(sequence(&b, &s, 2), "b b");
        set_up(&s[1], false);
        assert_eq!(sequence(&b, &s, 1), "c");
        let h = http::HeaderMap::new();
        let mut c = ctx("/", &h);
        c.avoid = Some(2);
        assert_eq!(b.pick(&s, &c), Some(0));
    }

    #[test]
    fn avoid_and_weight_zero() {
        let s = servers(&[0, 1, 1]);
        let b = First::new(false);
        let h = http::HeaderMap::new();
        let mut c = ctx("/", &h);
        assert_eq!(b.pick(&s, &c), Some(1));
        c.avoid = Some(1);
        assert_eq!(b.pick(&s, &c), Some(2));
        set_up(&s[2], false);
        assert_eq!(b.pick(&s, &c), Some(1));
    }
}
