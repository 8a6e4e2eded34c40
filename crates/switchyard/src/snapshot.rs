//! The compiled, immutable runtime form of a configuration.
//!
//! A [`Snapshot`] is built once per configuration load and shared by every
//! worker thread behind an `Arc`; a request sees exactly one snapshot from start
//! to finish. Mutable runtime state (server health, in-flight counts, counters)
//! lives in atomics inside it, never behind locks.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use switchyard_config::{
    Backend, Balance, Config, ConnMode, Frontend, LogFormat, LogTarget, Mode, Server,
};

use crate::backend::balance::{self, Balancer};
use crate::backend::ServerState;
use crate::frontend::{CompiledAcls, RequestRules, ResponseRules, Router};
use crate::observability::{Counters, LogSink};
use crate::proxy::h1::Limits;
use crate::proxy::queue::Waitlist;
use tokio::sync::Semaphore;

/// Everything the workers need to serve one configuration.
///
/// Aligned to 128 bytes so that, inside its `Arc`, the fields start two cache
/// lines after the reference counts: connections of every thread clone and
/// drop the `Arc` (each one an atomic write), and every request reads
/// `generation`, `frontends` and `backends`, which would otherwise share a
/// line with the counts and be evicted from the other threads' caches at
/// each clone (false sharing).
#[derive(Debug)]
#[repr(align(128))]
pub struct Snapshot {
    /// 0 for the configuration the process started with, +1 per reload.
    pub generation: u64,
    pub config: Arc<Config>,
    /// Request head limits from `tune.bufsize` / `tune.http.maxhdr`.
    pub limits: Limits,
    /// Global `maxconn`: open client connections of the whole process.
    pub global_conns: Option<Arc<Semaphore>>,
    pub frontends: Vec<FrontendRt>,
    pub backends: Vec<BackendRt>,
}

/// A frontend with its compiled router.
#[derive(Debug)]
pub struct FrontendRt {
    pub cfg: Frontend,
    /// The frontend's `maxconn`: excess connections wait in the kernel backlog.
    pub conns: Option<Arc<Semaphore>>,
    /// The name, shared with log records without copying.
    pub name: Arc<str>,
    /// `use_backend` rules and the frontend's compiled ACLs.
    pub router: Router,
    pub request_rules: RequestRules,
    pub response_rules: ResponseRules,
    /// Where `option httplog` lines go; empty = no per-request log.
    pub log: Vec<LogSink>,
    pub counters: Hot<Counters>,
}

/// A backend with its servers' runtime state, balancer and queue.
#[derive(Debug)]
pub struct BackendRt {
    pub index: usize,
    pub cfg: Backend,
    /// Names shared with log records without copying.
    pub name: Arc<str>,
    pub server_names: Vec<Arc<str>>,
    pub servers: Vec<Arc<ServerState>>,
    /// Resolved address of each server (same order as `servers`).
    pub addrs: Vec<SocketAddr>,
    pub balancer: Box<dyn Balancer>,
    pub acls: CompiledAcls,
    pub request_rules: RequestRules,
    pub response_rules: ResponseRules,
    /// The `maxconn` queues; shared with the previous generation when a
    /// reload kept every server of the backend (see [`Snapshot::rebuild`]).
    pub waitlist: Arc<Waitlist>,
    pub counters: Hot<Counters>,
    /// One per server.
    pub server_counters: Vec<Hot<Counters>>,
}

/// A value alone on its cache lines (128 bytes: two lines, as the adjacent-line
/// prefetcher pairs them). For the traffic counters: every request of every
/// worker thread writes them, and a counter sharing a line with the
/// read-mostly fields next to it (rules, balancer, names, another server's
/// counters) would make each write evict those fields from the other threads'
/// caches (false sharing). Reads go through `Deref`.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct Hot<T>(pub T);

impl<T> std::ops::Deref for Hot<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl BackendRt {
    /// roundrobin, static-rr and random: the algorithms for which HAProxy
    /// redispatches a non-persistent request on the first retry.
    pub fn rr_kind(&self) -> bool {
        matches!(
            self.cfg.balance,
            Balance::RoundRobin | Balance::StaticRr | Balance::Random { .. }
        )
    }

    /// Servers currently usable for balanced traffic (active, not backup).
    pub fn active_usable(&self) -> usize {
        self.servers
            .iter()
            .filter(|s| !s.backup && s.balanceable())
            .count()
    }

    /// Where server `i` is reached for a connection that arrived on port
    /// `dst_port`: a server declared without a port uses the client's
    /// destination port, as in HAProxy.
    pub fn server_addr(&self, i: usize, dst_port: u16) -> SocketAddr {
        let mut a = self.addrs[i];
        if self.cfg.servers[i].port.is_none() {
            a.set_port(dst_port);
        }
        a
    }

    /// `timeout queue`, defaulting to `timeout connect` as in HAProxy.
    pub fn queue_timeout(&self) -> Option<Duration> {
        self.cfg.timeouts.queue.or(self.cfg.timeouts.connect)
    }

    /// Effective connection mode for a request of frontend `fe` (the strongest).
    pub fn conn_mode(&self, fe: &Frontend) -> ConnMode {
        fe.conn_mode
            .unwrap_or_default()
            .max(self.cfg.conn_mode.unwrap_or_default())
    }
}

impl Snapshot {
    /// Compiles `config`. Fails on anything that cannot run: an unresolvable
    /// server address, a router that does not compile, a TCP-mode frontend.
    pub fn build(config: Config) -> Result<Arc<Snapshot>, String> {
        Self::build_with(config, false)
    }

    /// Like [`Snapshot::build`]; `debug_log` (`-d`) sends an httplog line for
    /// every request on stderr for frontends that log nowhere else.
    pub fn build_with(config: Config, debug_log: bool) -> Result<Arc<Snapshot>, String> {
        Self::compile(config, debug_log, None)
    }

    /// The snapshot that replaces `prev` on a reload (generation + 1).
    ///
    /// Runtime state survives for what did not change: a server keeps its
    /// [`ServerState`] (health verdict, drain/maintenance, in-flight and queued
    /// counts, so leastconn and `maxconn` stay exact across the swap) when its
    /// backend name, server name, position, address and identity (`id`,
    /// `cookie`, `backup`, `maxconn`) are unchanged; its weight is taken from the
    /// new file, and `disabled` only when the file changed it. A server that
    /// moved or changed identity gets a new state but keeps its health verdict
    /// when it is still checked at the same address. The global and per-frontend
    /// `maxconn` semaphores are kept when their limits are unchanged, so
    /// connections of both generations count against the same limit, and a
    /// backend whose servers were all kept keeps its `maxconn` queues.
    /// Traffic counters start from zero, as after a HAProxy reload.
    pub fn rebuild(
        config: Config,
        debug_log: bool,
        prev: &Snapshot,
    ) -> Result<Arc<Snapshot>, String> {
        Self::compile(config, debug_log, Some(prev))
    }

    fn compile(
        config: Config,
        debug_log: bool,
        prev: Option<&Snapshot>,
    ) -> Result<Arc<Snapshot>, String> {
        let mut backends = Vec::with_capacity(config.backends.len());
        for (index, be) in config.backends.iter().enumerate() {
            let old = prev.and_then(|p| p.backends.iter().find(|b| b.cfg.name == be.name));
            backends.push(build_backend(index, be, old)?);
        }
        let mut frontends = Vec::with_capacity(config.frontends.len());
        for fe in &config.frontends {
            let router = Router::build(fe).map_err(|e| format!("frontend '{}': {e}", fe.name))?;
            let mut log = log_sinks(fe, &config.global.logs);
            if log.is_empty() && debug_log {
                log.push(LogSink::stderr_raw());
            }
            let err = |e: String| format!("frontend '{}': {e}", fe.name);
            let kept_conns = prev
                .and_then(|p| p.frontends.iter().find(|f| f.cfg.name == fe.name))
                .filter(|f| f.cfg.maxconn == fe.maxconn)
                .and_then(|f| f.conns.clone());
            frontends.push(FrontendRt {
                cfg: fe.clone(),
                conns: kept_conns
                    .or_else(|| fe.maxconn.map(|m| Arc::new(Semaphore::new(m as usize)))),
                name: Arc::from(fe.name.as_str()),
                router,
                request_rules: RequestRules::build(&fe.http_request_rules).map_err(err)?,
                response_rules: ResponseRules::build(&fe.http_response_rules).map_err(err)?,
                log,
                counters: Hot::default(),
            });
        }
        let g = &config.global;
        let limits = Limits::new(g.tune_bufsize, g.tune_http_maxhdr);
        let kept_conns = prev
            .filter(|p| p.config.global.maxconn == g.maxconn)
            .and_then(|p| p.global_conns.clone());
        let global_conns =
            kept_conns.or_else(|| g.maxconn.map(|m| Arc::new(Semaphore::new(m as usize))));
        Ok(Arc::new(Snapshot {
            generation: prev.map_or(0, |p| p.generation + 1),
            limits,
            global_conns,
            config: Arc::new(config),
            frontends,
            backends,
        }))
    }
}

fn build_backend(
    index: usize,
    be: &Backend,
    prev: Option<&BackendRt>,
) -> Result<BackendRt, String> {
    let mut addrs = Vec::with_capacity(be.servers.len());
    for s in &be.servers {
        addrs.push(resolve(&s.host, s.port).map_err(|e| {
            format!(
                "[{}] : 'server {}/{}' : could not resolve address '{}' ({e}).",
                s.loc, be.name, s.name, s.host
            )
        })?);
    }
    let servers: Vec<Arc<ServerState>> = be
        .servers
        .iter()
        .enumerate()
        .map(|(i, s)| server_state(i, s, addrs[i], prev))
        .collect();
    // Requests queued for `maxconn` before a reload and after it wait in the
    // same queues when the servers are the same ones: a slot freed by either
    // generation goes to the oldest waiter. (Otherwise each generation's
    // waiters are woken by its own requests only, or give up at `timeout queue`.)
    let waitlist = match prev {
        Some(p)
            if p.servers.len() == servers.len()
                && p.servers
                    .iter()
                    .zip(&servers)
                    .all(|(a, b)| Arc::ptr_eq(a, b)) =>
        {
            p.waitlist.clone()
        }
        _ => Arc::new(Waitlist::new(be.servers.len())),
    };
    let balancer = balance::build(&be.balance, be.allbackups, &servers);
    let err = |e: String| format!("backend '{}': {e}", be.name);
    let acls = CompiledAcls::compile(&be.acls).map_err(err)?;
    let request_rules = RequestRules::build(&be.http_request_rules).map_err(err)?;
    let response_rules = ResponseRules::build(&be.http_response_rules).map_err(err)?;
    Ok(BackendRt {
        index,
        cfg: be.clone(),
        name: Arc::from(be.name.as_str()),
        server_names: be
            .servers
            .iter()
            .map(|s| Arc::from(s.name.as_str()))
            .collect(),
        server_counters: servers.iter().map(|_| Hot::default()).collect(),
        servers,
        addrs,
        balancer,
        acls,
        request_rules,
        response_rules,
        waitlist,
        counters: Hot::default(),
    })
}

/// Server `i` of a backend being built, carrying over the runtime state of the
/// previous generation's server of the same name (see [`Snapshot::rebuild`]).
fn server_state(
    i: usize,
    s: &Server,
    addr: SocketAddr,
    prev: Option<&BackendRt>,
) -> Arc<ServerState> {
    let fresh = ServerState::new(i, s);
    let Some((j, old)) = prev.and_then(|p| {
        let j = p.cfg.servers.iter().position(|o| o.name == s.name)?;
        let same_place = p.addrs[j] == addr && p.cfg.servers[j].port == s.port;
        same_place.then_some((j, p))
    }) else {
        return Arc::new(fresh);
    };
    let state = &old.servers[j];
    let old_cfg = &old.cfg.servers[j];
    let same_identity = j == i
        && state.id == fresh.id
        && state.cookie == fresh.cookie
        && state.backup == fresh.backup
        && state.maxconn == fresh.maxconn;
    let checked = s.check && old_cfg.check;
    if same_identity {
        state.weight.store(s.weight, Ordering::Relaxed);
        if old_cfg.disabled != s.disabled {
            state.maint.store(s.disabled, Ordering::Release);
        }
        if !s.check {
            // No checks any more: nothing would ever bring it back up.
            state.up.store(true, Ordering::Release);
        }
        state.touch();
        return state.clone();
    }
    if checked {
        fresh
            .up
            .store(state.up.load(Ordering::Acquire), Ordering::Release);
    }
    Arc::new(fresh)
}

/// Resolves a server address once at start-up. A server without a port gets
/// port 0 here; [`BackendRt::server_addr`] fills in the destination port.
fn resolve(host: &str, port: Option<u16>) -> Result<SocketAddr, String> {
    let port = port.unwrap_or(0);
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    (host, port)
        .to_socket_addrs()
        .map_err(|e| e.to_string())?
        .next()
        .ok_or_else(|| "no address".to_string())
}

/// The access-log destinations: an HTTP frontend with `option httplog [clf]`
/// (or a TCP one with `option tcplog`) and `log` lines (its own, or `log global` for
/// the global ones), or a custom `log-format`; every target gets each line, as in HAProxy.
fn log_sinks(fe: &Frontend, global: &[LogTarget]) -> Vec<LogSink> {
    let usable = matches!(
        (fe.mode, &fe.log_format),
        (
            Mode::Http,
            Some(LogFormat::HttpLog | LogFormat::Clf | LogFormat::Custom(_))
        ) | (Mode::Tcp, Some(LogFormat::TcpLog))
    );
    if !usable {
        return Vec::new();
    }
    fe.logs
        .iter()
        .flat_map(|t| {
            if t.target == "global" {
                global.iter().collect()
            } else {
                vec![t]
            }
        })
        .filter_map(LogSink::open)
        .collect()
}
