//! `mode tcp`: a connection is balanced to a server and relayed byte for byte.
//!
//! As in HAProxy: `use_backend` rules are evaluated with layer-4 information
//! only (`src`, `dst_port`; HTTP fetches find nothing), then `default_backend`;
//! a TCP frontend whose chosen backend is in `mode http` serves HTTP instead
//! (HAProxy's implicit upgrade). The server is assigned with the backend's
//! algorithm and `maxconn` queue, connected with `retries`/`redispatch`, and
//! the tunnel ends on either side's close or after `timeout tunnel` (else the
//! smaller of `timeout client` and `timeout server`) without traffic.
//! `option tcplog` writes one line per connection when it ends.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use http::{HeaderMap, Method, Uri, Version};
use tokio::net::TcpStream;

use super::queue;
use super::retry::connect_retries;
use super::tunnel;
use super::{ConnCtx, Tunnel};
use crate::backend::balance::PickContext;
use crate::frontend::RequestInfo;
use crate::observability::{LogRecord, ACTIVE_CONNS};
use crate::snapshot::FrontendRt;

/// `use_backend` with layer-4 information only, then `default_backend`.
pub(super) fn route(cx: &ConnCtx) -> Option<usize> {
    let (method, uri, headers) = (Method::GET, Uri::from_static("/"), HeaderMap::new());
    let info = RequestInfo {
        method: &method,
        uri: &uri,
        version: Version::HTTP_11,
        headers: &headers,
        src: cx.peer.ip(),
        dst: cx.local,
    };
    cx.snap.frontends[cx.fe].router.route(&info)
}

/// The end of a `mode tcp` tunnel: bytes counted, server slot released,
/// then the `option tcplog` line.
pub(super) fn end(mut t: Tunnel, stats: tunnel::TunnelStats) {
    let rec = &mut t.rec;
    let (bi, si) = (rec.backend_index.unwrap_or(0), t.lease.index());
    let be = &t.snap.backends[bi];
    rec.bytes = stats.server_to_client;
    be.counters
        .bytes_out
        .fetch_add(stats.server_to_client, Ordering::Relaxed);
    be.server_counters[si]
        .bytes_out
        .fetch_add(stats.server_to_client, Ordering::Relaxed);
    if stats.timed_out {
        rec.term[..2].copy_from_slice(b"cD");
    }
    drop(t.lease);
    rec.srvconn = be.servers[si].inflight.load(Ordering::Relaxed) as usize;
    rec.beconn = be
        .servers
        .iter()
        .map(|s| s.inflight.load(Ordering::Relaxed) as usize)
        .sum();
    finish(&t.snap.frontends[t.fe], rec, t.started);
}

/// Serves one connection accepted by a `mode tcp` frontend routed to a `mode
/// tcp` backend (`route`, from [`route`]) until its tunnel runs: counts the
/// connection, assigns a server and connects. `None` when the connection
/// already ended (no server, queue timeout, connection failure).
pub(super) async fn open(stream: TcpStream, cx: ConnCtx, route: Option<usize>) -> Option<Tunnel> {
    let fe = &cx.snap.frontends[cx.fe];
    let started = Instant::now();
    let mut rec = Box::new(LogRecord::new(cx.peer, SystemTime::now(), &fe.name));
    ACTIVE_CONNS.fetch_add(1, Ordering::Relaxed);
    fe.counters.current.fetch_add(1, Ordering::Relaxed);
    fe.counters.connections.fetch_add(1, Ordering::Relaxed);
    let _ = stream.set_nodelay(true);
    let Some(bi) = route else {
        rec.term[..2].copy_from_slice(b"SC");
        finish(fe, &mut rec, started);
        return None;
    };
    let Some((server, lease, idle)) = connect(&cx, bi, &mut rec).await else {
        finish(fe, &mut rec, started);
        return None;
    };
    Some(Tunnel {
        client: stream,
        server,
        lease,
        idle,
        fe: cx.fe,
        snap: cx.snap,
        started,
        rec,
        tcp: true,
    })
}

/// The end of a connection: `option tcplog` line, counters.
fn finish(fe: &FrontendRt, rec: &mut LogRecord, started: Instant) {
    rec.t_total = started.elapsed().as_millis() as i64;
    fe.counters
        .bytes_out
        .fetch_add(rec.bytes, Ordering::Relaxed);
    if !fe.log.is_empty() {
        rec.actconn = ACTIVE_CONNS.load(Ordering::Relaxed);
        rec.feconn = fe.counters.current.load(Ordering::Relaxed);
        let line = rec.format_tcp();
        for sink in &fe.log {
            sink.write(&line);
        }
    }
    fe.counters.current.fetch_sub(1, Ordering::Relaxed);
    ACTIVE_CONNS.fetch_sub(1, Ordering::Relaxed);
}

/// Assigns a server and connects; fills the log record. Returns the server
/// connection, its slot and the tunnel's idle timeout.
async fn connect(
    cx: &ConnCtx,
    bi: usize,
    rec: &mut LogRecord,
) -> Option<(TcpStream, queue::Lease, Option<Duration>)> {
    let be = &cx.snap.backends[bi];
    rec.backend = be.name.clone();
    rec.backend_index = Some(bi);
    be.counters.requests.fetch_add(1, Ordering::Relaxed);
    let headers = HeaderMap::new();
    let ctx = PickContext {
        src: cx.peer.ip(),
        uri: "",
        headers: &headers,
        avoid: None,
    };
    let queued = Instant::now();
    let lease = match queue::assign(be, None, &ctx).await {
        Ok(a) => a.lease,
        Err(e) => {
            let timeout = e == queue::AssignError::QueueTimeout;
            rec.t_queue = if timeout {
                queued.elapsed().as_millis() as i64
            } else {
                -1
            };
            rec.term[..2].copy_from_slice(if timeout { b"sQ" } else { b"SC" });
            return None;
        }
    };
    rec.t_queue = queued.elapsed().as_millis() as i64;
    let connecting = Instant::now();
    let (up, lease) =
        match connect_retries(be, lease, false, &ctx, rec, false, cx.local.port()).await {
            Ok(x) => x,
            Err(e) => {
                let timeout = matches!(e, super::upstream::ConnectError::Timeout);
                rec.term[..2].copy_from_slice(if timeout { b"sC" } else { b"SC" });
                return None;
            }
        };
    rec.t_connect = connecting.elapsed().as_millis() as i64;
    let si = lease.index();
    rec.server = be.server_names[si].clone();
    rec.server_index = Some(si);
    be.server_counters[si]
        .requests
        .fetch_add(1, Ordering::Relaxed);
    let (client_to, t) = (
        cx.snap.frontends[cx.fe].cfg.timeouts.client,
        &be.cfg.timeouts,
    );
    let idle = t.tunnel.or(match (client_to, t.server) {
        (Some(c), Some(s)) => Some(c.min(s)),
        (c, s) => c.or(s),
    });
    // Nothing was read from the server yet: its read buffer is not needed.
    Some((up.stream, lease, idle))
}
