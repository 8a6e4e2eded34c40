//! Balancing algorithms, one file per algorithm.
//!
//! Contract: `pick` chooses among `servers` (the backend's servers in declaration
//! order) and returns an index into that slice. It considers only servers that
//! are `balanceable()` and `has_room()`, skips `ctx.avoid` unless it is the only
//! candidate, and falls back to backup servers (first usable one, or all with
//! `option allbackups`) only when no active server is usable.
//!
//! Group selection follows HAProxy: the backup group takes over only when no
//! active server is *balanceable* (UP, not MAINT/DRAIN, weight > 0). Active
//! servers that are merely full (`maxconn` reached) do not send traffic to the
//! backups; `pick` then returns `None` and [`all_full`] tells the caller that
//! the request should wait in the queue rather than fail with a 503.
//!
//! Cost: every pick reads the servers' atomics once (state changes need no
//! notification), so it is O(servers): 15-70 ns with 3 servers and 40-530 ns
//! with 50 depending on the algorithm (release build, loaded 2-core machine).
//! No pick allocates once the schedule or table exists.
//!
//! Layout:
//! - `roundrobin`: HAProxy's FWRR (dynamic weighted round robin).
//! - `static_rr`, and the hash-based `source`, `uri`, `url_param`, `hdr`, all
//!   built on the map table of `map` (HAProxy's `lb_map.c`).
//! - `leastconn`, `first`, `random`: stateless scans over the server atomics.

use std::net::IpAddr;
use std::sync::Arc;

use switchyard_config::Balance;

use super::ServerState;

mod first;
mod hdr;
mod leastconn;
mod map;
mod random;
mod roundrobin;
mod source;
mod static_rr;
mod uri;
mod url_param;

pub use first::First;
pub use hdr::Hdr;
pub use leastconn::LeastConn;
pub use random::Random;
pub use roundrobin::RoundRobin;
pub use source::Source;
pub use static_rr::StaticRr;
pub use uri::Uri;
pub use url_param::UrlParam;

/// What a hash-based algorithm may look at.
pub struct PickContext<'a> {
    pub src: IpAddr,
    /// The request target as sent (`/path?query` or absolute form).
    pub uri: &'a str,
    pub headers: &'a http::HeaderMap,
    /// The server that just failed (retry with redispatch).
    pub avoid: Option<usize>,
}

pub trait Balancer: Send + Sync + std::fmt::Debug {
    fn pick(&self, servers: &[Arc<ServerState>], ctx: &PickContext<'_>) -> Option<usize>;
}

/// Builds the algorithm for a backend.
///
/// `servers` is only used to size internal tables; every `pick` reads the
/// current state of the servers it is given.
pub fn build(
    balance: &Balance,
    allbackups: bool,
    servers: &[Arc<ServerState>],
) -> Box<dyn Balancer> {
    let n = servers.len();
    match balance {
        Balance::RoundRobin => Box::new(RoundRobin::new(allbackups, n)),
        Balance::StaticRr => Box::new(StaticRr::new(allbackups, n)),
        Balance::LeastConn => Box::new(LeastConn::new(allbackups)),
        Balance::First => Box::new(First::new(allbackups)),
        Balance::Source => Box::new(Source::new(allbackups, n)),
        Balance::Random { draws } => Box::new(Random::new(allbackups, *draws)),
        Balance::Uri {
            len,
            depth,
            whole,
            path_only,
        } => Box::new(Uri::new(
            allbackups,
            n,
            uri::UriOptions {
                len: *len,
                depth: *depth,
                whole: *whole,
                path_only: *path_only,
            },
        )),
        Balance::UrlParam { name } => Box::new(UrlParam::new(allbackups, n, name)),
        Balance::Hdr {
            name,
            use_domain_only,
        } => Box::new(Hdr::new(allbackups, n, name, *use_domain_only)),
    }
}

/// True when at least one server of the group that would serve balanced
/// traffic exists but every one of them is at `maxconn`: the caller should
/// queue the request instead of answering 503.
pub fn all_full(servers: &[Arc<ServerState>], allbackups: bool) -> bool {
    match Group::select(servers, allbackups) {
        None => false,
        Some(g) => !servers
            .iter()
            .enumerate()
            .any(|(i, s)| g.contains(i, s) && s.has_room()),
    }
}

/// The set of servers balanced traffic may go to right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Group {
    /// Every balanceable active server.
    Active,
    /// Every balanceable backup server (`option allbackups`).
    Backups,
    /// Only this backup server: the first balanceable one in declaration order.
    FirstBackup(usize),
}

impl Group {
    /// Chooses the group: actives when any is balanceable, else the backups.
    pub(crate) fn select(servers: &[Arc<ServerState>], allbackups: bool) -> Option<Group> {
        let mut first_backup = None;
        for (i, s) in servers.iter().enumerate() {
            if !s.balanceable() {
                continue;
            }
            if !s.backup {
                return Some(Group::Active);
            }
            if first_backup.is_none() {
                first_backup = Some(i);
            }
        }
        let first = first_backup?;
        Some(if allbackups {
            Group::Backups
        } else {
            Group::FirstBackup(first)
        })
    }

    /// Whether server `i` belongs to the group (ignoring `maxconn`).
    pub(crate) fn contains(self, i: usize, s: &ServerState) -> bool {
        match self {
            Group::Active => !s.backup && s.balanceable(),
            Group::Backups => s.backup && s.balanceable(),
            Group::FirstBackup(f) => i == f,
        }
    }

    /// True for the two groups an algorithm balances over (not `FirstBackup`).
    pub(crate) fn is_backup(self) -> bool {
        !matches!(self, Group::Active)
    }
}

/// Effective weight of a server in HAProxy's units (user weight * 16).
pub(crate) fn eweight(s: &ServerState) -> u32 {
    s.weight.load(std::sync::atomic::Ordering::Relaxed).min(256) * 16
}

/// Applies the `avoid` rule to a candidate walk: returns the first index of
/// `order` accepted by `ok` that is not `avoid`, or `avoid` itself when it is
/// the only accepted one.
pub(crate) fn first_acceptable(
    order: impl Iterator<Item = usize>,
    avoid: Option<usize>,
    mut ok: impl FnMut(usize) -> bool,
) -> Option<usize> {
    let mut avoided = None;
    for i in order {
        if !ok(i) {
            continue;
        }
        if Some(i) == avoid {
            avoided = Some(i);
            continue;
        }
        return Some(i);
    }
    avoided
}

/// HAProxy's default string hash for `hash-type map-based` (`sdbm`, no avalanche).
pub(crate) fn sdbm(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0u32, |h, &c| {
        u32::from(c)
            .wrapping_add(h << 6)
            .wrapping_add(h << 16)
            .wrapping_sub(h)
    })
}

#[cfg(test)]
pub(crate) mod testutil {
    //! Fixtures shared by the algorithm tests.

    use std::net::{IpAddr, Ipv4Addr};
    use std::sync::atomic::Ordering;
    use std::sync::Arc;

    use switchyard_config::{Location, Server};

    use super::{Balancer, PickContext};
    use crate::backend::ServerState;
    use switchyard_config::Balance;

    pub fn server_cfg(name: &str, weight: u32) -> Server {
        Server {
            name: name.to_string(),
            loc: Location::default(),
            host: "127.0.0.1".into(),
            port: Some(4000),
            check: false,
            inter: std::time::Duration::from_secs(2),
            fastinter: std::time::Duration::from_secs(2),
            downinter: std::time::Duration::from_secs(2),
            rise: 2,
            fall: 3,
            weight,
            backup: false,
            disabled: false,
            maxconn: None,
            maxqueue: None,
            cookie: None,
            check_port: None,
            check_addr: None,
            id: 0,
        }
    }

    /// Servers named a, b, c... with the given weights.
    pub fn servers(weights: &[u32]) -> Vec<Arc<ServerState>> {
        servers_with(weights, |_, _| {})
    }

    pub fn servers_with(
        weights: &[u32],
        mut tweak: impl FnMut(usize, &mut Server),
    ) -> Vec<Arc<ServerState>> {
        weights
            .iter()
            .enumerate()
            .map(|(i, &w)| {
                let name = ((b'a' + i as u8) as char).to_string();
                let mut cfg = server_cfg(&name, w);
                cfg.id = i as u32 + 1;
                tweak(i, &mut cfg);
                Arc::new(ServerState::new(i, &cfg))
            })
            .collect()
    }

    pub fn ctx<'a>(uri: &'a str, headers: &'a http::HeaderMap) -> PickContext<'a> {
        PickContext {
            src: IpAddr::V4(Ipv4Addr::LOCALHOST),
            uri,
            headers,
            avoid: None,
        }
    }

    /// Names of `n` sequential picks (each request completes before the next).
    pub fn sequence(b: &dyn Balancer, servers: &[Arc<ServerState>], n: usize) -> String {
        let h = http::HeaderMap::new();
        let c = ctx("/", &h);
        (0..n)
            .map(|_| match b.pick(servers, &c) {
                Some(i) => {
                    let _guard = servers[i].acquire();
                    servers[i].name.clone()
                }
                None => "-".into(),
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// One of each algorithm (`hdr` reads `x-k`, `url_param` reads `u`).
    pub fn all_algorithms() -> Vec<Balance> {
        vec![
            Balance::RoundRobin,
            Balance::StaticRr,
            Balance::LeastConn,
            Balance::First,
            Balance::Source,
            Balance::Random { draws: 2 },
            Balance::Uri {
                len: None,
                depth: None,
                whole: false,
                path_only: false,
            },
            Balance::UrlParam { name: "u".into() },
            Balance::Hdr {
                name: "x-k".into(),
                use_domain_only: false,
            },
        ]
    }

    pub fn set_up(s: &ServerState, up: bool) {
        s.up.store(up, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::*;
    use super::*;
    use std::sync::atomic::Ordering;

    #[test]
    fn sdbm_vectors_from_the_reference() {
        assert_eq!(sdbm(b"/url1"), 4103199409);
        assert_eq!(sdbm(b"/url2"), 4103199410);
        assert_eq!(sdbm(b"/url3"), 4103199411);
        assert_eq!(sdbm(b"/url4"), 4103199412);
        assert_eq!(sdbm(b"/x"), 3083273);
        assert_eq!(sdbm(b"/y"), 3083274);
        assert_eq!(sdbm(b""), 0);
    }

    #[test]
    fn group_prefers_actives_then_first_backup() {
        let s = servers_with(&[1, 1, 1], |i, c| c.backup = i > 0);
        assert_eq!(Group::select(&s, false), Some(Group::Active));
        s[0].maint.store(true, Ordering::Release);
        assert_eq!(Group::select(&s, false), Some(Group::FirstBackup(1)));
        assert_eq!(Group::select(&s, true), Some(Group::Backups));
        set_up(&s[1], false);
        assert_eq!(Group::select(&s, false), Some(Group::FirstBackup(2)));
        set_up(&s[2], false);
        assert_eq!(Group::select(&s, false), None);
    }

    #[test]
    fn all_full_only_when_every_group_member_is_at_maxconn() {
        let s = servers_with(&[1, 1], |_, c| c.maxconn = Some(1));
        assert!(!all_full(&s, false));
        let _a = s[0].acquire();
        assert!(!all_full(&s, false));
        let _b = s[1].acquire();
        assert!(all_full(&s, false));
        s[0].maint.store(true, Ordering::Release);
        s[1].maint.store(true, Ordering::Release);
        assert!(!all_full(&s, false), "no server at all is not 'full'");
    }

    #[test]
    fn build_covers_every_algorithm() {
        let s = servers(&[1, 1, 1]);
        let all = all_algorithms();
        for b in &all {
            let bal = build(b, false, &s);
            let seq = sequence(bal.as_ref(), &s, 6);
            assert!(!seq.contains('-'), "{b:?} gave {seq}");
            // Weight 0 everywhere: nothing to pick.
            for srv in &s {
                srv.weight.store(0, Ordering::Relaxed);
            }
            assert_eq!(sequence(bal.as_ref(), &s, 2), "- -", "{b:?}");
            for srv in &s {
                srv.weight.store(1, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod observed;
#[cfg(test)]
mod props;
