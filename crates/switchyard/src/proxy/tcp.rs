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
use std::time::{Instant, SystemTime};

use bytes::BytesMut;
use http::{HeaderMap, Method, Uri, Version};
use switchyard_config::Mode;
use tokio::net::TcpStream;

use super::queue;
use super::retry::connect_retries;
use super::tunnel;
use super::ConnCtx;
use crate::backend::balance::PickContext;
use crate::frontend::RequestInfo;
use crate::observability::{LogRecord, ACTIVE_CONNS};

/// Serves one connection accepted by a `mode tcp` frontend.
pub async fn serve(mut stream: TcpStream, cx: ConnCtx) {
    let snap = cx.snap.clone();
    let fe = &snap.frontends[cx.fe];
    let (method, uri, headers) = (Method::GET, Uri::from_static("/"), HeaderMap::new());
    let info = RequestInfo {
        method: &method,
        uri: &uri,
        version: Version::HTTP_11,
        headers: &headers,
        src: cx.peer.ip(),
        dst: cx.local,
    };
    let route = fe.router.route(&info);
    if route.is_some_and(|bi| snap.backends[bi].cfg.mode == Mode::Http) {
        return super::serve_connection(stream, cx).await;
    }
    let started = Instant::now();
    let mut rec = LogRecord::new(cx.peer, SystemTime::now(), &fe.name);
    ACTIVE_CONNS.fetch_add(1, Ordering::Relaxed);
    fe.counters.current.fetch_add(1, Ordering::Relaxed);
    fe.counters.connections.fetch_add(1, Ordering::Relaxed);
    let _ = stream.set_nodelay(true);
    if let Some(bi) = route {
        relay(&mut stream, &cx, bi, &mut rec).await;
    } else {
        rec.term[..2].copy_from_slice(b"SC");
    }
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

/// Assigns a server, connects and runs the tunnel; fills the log record.
async fn relay(stream: &mut TcpStream, cx: &ConnCtx, bi: usize, rec: &mut LogRecord) {
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
            return;
        }
    };
    rec.t_queue = queued.elapsed().as_millis() as i64;
    let connecting = Instant::now();
    let (mut up, lease) =
        match connect_retries(be, lease, false, &ctx, rec, false, cx.local.port()).await {
            Ok(x) => x,
            Err(e) => {
                let timeout = matches!(e, super::upstream::ConnectError::Timeout);
                rec.term[..2].copy_from_slice(if timeout { b"sC" } else { b"SC" });
                return;
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
    let mut client_buf = BytesMut::new();
    let stats = tunnel::run(stream, &mut client_buf, &mut up.stream, &mut up.buf, idle).await;
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
    drop(lease);
    rec.srvconn = be.servers[si].inflight.load(Ordering::Relaxed) as usize;
    rec.beconn = be
        .servers
        .iter()
        .map(|s| s.inflight.load(Ordering::Relaxed) as usize)
        .sum();
}
