//! `balance static-rr`: weighted round robin over HAProxy's map table
//! (see `map`). Weights 3/2/1 give `a a b a b c`. Weight changes rebuild the
//! table (HAProxy only allows 0% / 100% changes at run time; we accept any).

use std::sync::Arc;

use super::map::MapTable;
use super::{Balancer, PickContext};
use crate::backend::ServerState;

#[derive(Debug)]
pub struct StaticRr {
    map: MapTable,
}

impl StaticRr {
    pub fn new(allbackups: bool, nservers: usize) -> Self {
        StaticRr {
            map: MapTable::new(allbackups, nservers),
        }
    }
}

impl Balancer for StaticRr {
    fn pick(&self, servers: &[Arc<ServerState>], ctx: &PickContext<'_>) -> Option<usize> {
        self.map.next_rr(servers, ctx)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;
    use std::sync::atomic::Ordering;

    #[test]
    fn weights_3_2_1() {
        let s = servers(&[3, 2, 1]);
        let b = StaticRr::new(false, 3);
        assert_eq!(sequence(&b, &s, 12), "a a b a b c a a b a b c");
    }

    #[test]
    fn down_server_leaves_the_table() {
        let s = servers(&[1, 1, 1]);
        let b = StaticRr::new(false, 3);
        assert_eq!(sequence(&b, &s, 2), "a b");
        set_up(&s[0], false);
        assert_eq!(sequence(&b, &s, 4), "b c b c");
        s[2].weight.store(0, Ordering::Relaxed);
        assert_eq!(sequence(&b, &s, 2), "b b");
    }

    #[test]
    fn full_and_avoided_servers_are_skipped() {
        let s = servers_with(&[1, 1, 1], |_, c| c.maxconn = Some(1));
        let b = StaticRr::new(false, 3);
        let g = s[1].acquire();
        assert_eq!(sequence(&b, &s, 4), "a c a c");
        drop(g);
        let h = http::HeaderMap::new();
        let mut c = ctx("/", &h);
        c.avoid = Some(0);
        let picks: Vec<_> = (0..4).map(|_| b.pick(&s, &c).unwrap()).collect();
        assert!(!picks.contains(&0), "{picks:?}");
    }

    #[test]
    fn backups() {
        let s = servers_with(&[1, 1, 1], |i, c| {
            c.backup = i > 0;
            c.disabled = i == 0;
        });
        assert_eq!(sequence(&StaticRr::new(false, 3), &s, 3), "b b b");
        assert_eq!(sequence(&StaticRr::new(true, 3), &s, 4), "b c b c");
    }
}
