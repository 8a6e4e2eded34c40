//! HAProxy's map table (`lb_map.c`), shared by `static-rr` and the
//! map-based hashing algorithms (`source`, `uri`, `url_param`, `hdr`).
//!
//! The table has `Σ(weight / gcd)` slots over the group's servers; slot `o`
//! goes to the server with the highest `(wscore + tot) / tot` after every
//! server's `wscore` grew by its weight (first declared wins ties), and the
//! winner's score then drops by `tot`. Weights 3/2/1 give `a a b a b c`.
//! Round robin walks the table cyclically; hashing uses `table[h % size]`.
//!
//! The table is rebuilt whenever the group's membership or weights change,
//! detected on each pick by comparing the servers' weights with a snapshot
//! (no allocation unless a rebuild happens). State sits behind a `Mutex`.

use std::sync::{Arc, Mutex};

use super::{Group, PickContext};
use crate::backend::ServerState;

#[derive(Debug)]
pub(crate) struct MapTable {
    allbackups: bool,
    state: Mutex<MapState>,
}

#[derive(Debug)]
struct MapState {
    group: Option<Group>,
    /// User weight per server the table was built from; 0 = not in it.
    weights: Vec<u32>,
    table: Vec<usize>,
    rr_idx: usize,
    built: bool,
    wscore: Vec<i64>,
}

impl MapTable {
    pub(crate) fn new(allbackups: bool, n: usize) -> Self {
        MapTable {
            allbackups,
            state: Mutex::new(MapState {
                group: None,
                weights: vec![0; n],
                table: Vec::new(),
                rr_idx: 0,
                built: false,
                wscore: vec![0; n],
            }),
        }
    }

    /// Next server in table order (static-rr, and the hash fallback).
    pub(crate) fn next_rr(
        &self,
        servers: &[Arc<ServerState>],
        ctx: &PickContext<'_>,
    ) -> Option<usize> {
        self.with_table(servers, |st| {
            let size = st.table.len();
            let start = st.rr_idx;
            let found = walk(st, servers, ctx.avoid, start)?;
            st.rr_idx = (start + found.1 + 1) % size;
            Some(found.0)
        })
    }

    /// The server for hash `h` (`table[h % size]`). When that server is full,
    /// or is the server to avoid, the next acceptable one in table order is
    /// used instead: a deliberate difference from HAProxy, which would queue
    /// on the hashed server even when other servers have room.
    pub(crate) fn by_hash(
        &self,
        servers: &[Arc<ServerState>],
        ctx: &PickContext<'_>,
        h: u32,
    ) -> Option<usize> {
        self.with_table(servers, |st| {
            let start = (h as usize) % st.table.len();
            walk(st, servers, ctx.avoid, start).map(|f| f.0)
        })
    }

    fn with_table(
        &self,
        servers: &[Arc<ServerState>],
        f: impl FnOnce(&mut MapState) -> Option<usize>,
    ) -> Option<usize> {
        let group = Group::select(servers, self.allbackups)?;
        if let Group::FirstBackup(i) = group {
            return servers[i].has_room().then_some(i);
        }
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.sync(servers, group);
        if st.table.is_empty() {
            return None;
        }
        f(&mut st)
    }
}

/// Walks the table from `start`; returns the server and its offset from `start`.
fn walk(
    st: &MapState,
    servers: &[Arc<ServerState>],
    avoid: Option<usize>,
    start: usize,
) -> Option<(usize, usize)> {
    let size = st.table.len();
    let mut avoided = None;
    for off in 0..size {
        let i = st.table[(start + off) % size];
        if !servers[i].has_room() {
            continue;
        }
        if Some(i) == avoid {
            avoided.get_or_insert((i, off));
            continue;
        }
        return Some((i, off));
    }
    avoided
}

impl MapState {
    fn sync(&mut self, servers: &[Arc<ServerState>], group: Group) {
        let weight = |i: usize, s: &ServerState| {
            if group.contains(i, s) {
                s.weight.load(std::sync::atomic::Ordering::Relaxed).min(256)
            } else {
                0
            }
        };
        let unchanged = self.built
            && self.group == Some(group)
            && self.weights.len() == servers.len()
            && servers
                .iter()
                .enumerate()
                .all(|(i, s)| weight(i, s) == self.weights[i]);
        if unchanged {
            return;
        }
        self.weights.clear();
        self.weights
            .extend(servers.iter().enumerate().map(|(i, s)| weight(i, s)));
        self.group = Some(group);
        self.built = true;
        self.rebuild();
    }

    fn rebuild(&mut self) {
        let gcd = self
            .weights
            .iter()
            .filter(|&&w| w > 0)
            .fold(0u32, |g, &w| gcd(g, w))
            .max(1);
        let ew: Vec<i64> = self.weights.iter().map(|&w| i64::from(w / gcd)).collect();
        let tot: i64 = ew.iter().sum();
        self.table.clear();
        self.rr_idx = 0;
        self.wscore.clear();
        self.wscore.resize(ew.len(), 0);
        for _ in 0..tot {
            let mut best: Option<(usize, i64)> = None;
            for (i, &w) in ew.iter().enumerate() {
                if w == 0 {
                    continue;
                }
                self.wscore[i] += w;
                let v = (self.wscore[i] + tot) / tot;
                if best.is_none_or(|(_, max)| v > max) {
                    best = Some((i, v));
                }
            }
            if let Some((i, _)) = best {
                self.wscore[i] -= tot;
                self.table.push(i);
            }
        }
    }
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    fn table(weights: &[u32]) -> Vec<usize> {
        let s = servers(weights);
        let m = MapTable::new(false, s.len());
        let h = http::HeaderMap::new();
        m.next_rr(&s, &ctx("/", &h));
        let st = m.state.lock().unwrap();
        st.table.clone()
    }

    #[test]
    fn table_layout() {
        assert_eq!(table(&[3, 2, 1]), vec![0, 0, 1, 0, 1, 2]);
        assert_eq!(table(&[1, 1, 1]), vec![0, 1, 2]);
        assert_eq!(table(&[2, 2, 4]), vec![0, 2, 1, 2]);
        assert_eq!(table(&[0, 5]), vec![1]);
    }

    #[test]
    fn hash_lookup_is_modulo_table_size() {
        let s = servers(&[1, 1, 1, 1]);
        let m = MapTable::new(false, 4);
        let h = http::HeaderMap::new();
        let c = ctx("/", &h);
        assert_eq!(m.by_hash(&s, &c, 4103199409), Some(1));
        assert_eq!(m.by_hash(&s, &c, 4103199412), Some(0));
    }

    #[test]
    fn hashed_server_full_or_avoided_moves_to_next_slot() {
        let s = servers_with(&[1, 1, 1], |_, c| c.maxconn = Some(1));
        let m = MapTable::new(false, 3);
        let h = http::HeaderMap::new();
        let mut c = ctx("/", &h);
        let g = s[1].acquire();
        assert_eq!(m.by_hash(&s, &c, 1), Some(2));
        drop(g);
        c.avoid = Some(1);
        assert_eq!(m.by_hash(&s, &c, 1), Some(2));
    }
}
