//! Attempts at a server: `retries`, `retry-on`, the turn-around delay and
//! `option redispatch` (HAProxy 2.6 rules, behaviour reference §2.7).
//!
//! Two kinds of retries share the `retries` budget:
//!
//! * **Connection failures** (`retry-on conn-failure`, the default; `retry-on
//!   none` turns them off): nothing was sent, so any request may be retried,
//!   1 s (or `timeout connect`) apart after an error, unless redispatched
//!   under a round-robin-kind algorithm.
//! * **Failures after the request reached a server** (HAProxy's "L7 retries":
//!   `empty-response`, `junk-response`, `response-timeout`, a listed status
//!   code), sent again at once on a fresh connection, redispatched per
//!   `option redispatch` as HAProxy's `do_l7_retry` does. HAProxy needs the
//!   whole request in one buffer for these; switchyard additionally replays
//!   only **idempotent** requests (RFC 9110 §9.2.2: GET, HEAD, OPTIONS, TRACE,
//!   PUT, DELETE) whose head and body it holds in full, within the head limit
//!   (`tune.bufsize` less the rewrite reserve). HAProxy does not look at the
//!   method and replays a POST the server may have executed; switchyard never
//!   sends a POST (PATCH, ...) twice: a deliberate divergence, see
//!   RELIABILITY.md ("no POST delivered twice").
//!
//! Independently of `retry-on` and `retries`: a request sent on a connection
//! taken from the idle pool that fails before any response byte (the server
//! closed or reset it, the write failed) is sent once more on a fresh
//! connection when it is idempotent and has no body. This is the keep-alive
//! race (the server closed an idle connection just as it was reused); the
//! retry goes to another server when `option redispatch` is on and health
//! checks have marked the first one down meanwhile.

use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use http::Method;
use switchyard_config::RetryOn;
use tokio::time::Sleep;

use super::exchange::{exchange, Fail};
use super::h1::{BodyKind, ResponseHead};
use super::queue::{self, Lease};
use super::upstream::{self, ConnectError, Upstream};
use super::Client;
use crate::backend::balance::PickContext;
use crate::observability::LogRecord;
use crate::snapshot::BackendRt;

/// Attempts so far for one request.
struct Tries {
    /// Retries used (0 on the first attempt): compared with `retries`.
    attempt: u32,
    /// The server came from a persistence cookie (redispatch rules differ).
    persistent: bool,
}

/// Connects to the leased server, retrying failed attempts (`retries`,
/// `retry-on conn-failure`) and redispatching per `option redispatch`.
pub(super) async fn connect_retries(
    be: &BackendRt,
    lease: Lease,
    persistent: bool,
    ctx: &PickContext<'_>,
    rec: &mut LogRecord,
    reuse: bool,
    dst_port: u16,
) -> Result<(Upstream, Lease), ConnectError> {
    let mut tries = Tries {
        attempt: 0,
        persistent,
    };
    let now = Instant::now();
    connect_counted(be, lease, &mut tries, ctx, rec, reuse, dst_port, now).await
}

#[allow(clippy::too_many_arguments)]
async fn connect_counted(
    be: &BackendRt,
    mut lease: Lease,
    tries: &mut Tries,
    ctx: &PickContext<'_>,
    rec: &mut LogRecord,
    reuse: bool,
    dst_port: u16,
    mut now: Instant,
) -> Result<(Upstream, Lease), ConnectError> {
    loop {
        let addr = be.server_addr(lease.index(), dst_port);
        if reuse {
            if let Some(up) = upstream::checkout(addr, now) {
                return Ok((up, lease));
            }
        }
        let err = match upstream::connect(addr, be.cfg.timeouts.connect).await {
            Ok(up) => return Ok((up, lease)),
            Err(e) => e,
        };
        be.server_counters[lease.index()]
            .connect_errors
            .fetch_add(1, Ordering::Relaxed);
        if !be.cfg.retry_on.contains(RetryOn::CONN_FAILURE) || tries.attempt >= be.cfg.retries {
            return Err(err);
        }
        count_retry(be, lease.index(), tries, rec);
        let redispatch = should_redispatch(be, &lease, tries.attempt, tries.persistent);
        let quick = redispatch && be.rr_kind() && be.active_usable() > 1;
        if matches!(err, ConnectError::Refused(_)) && !quick {
            let pause = be
                .cfg
                .timeouts
                .connect
                .map_or(Duration::from_secs(1), |c| c.min(Duration::from_secs(1)));
            tokio::time::sleep(pause).await;
        }
        if redispatch {
            // The failed server's slot is given up before waiting for another.
            let avoid = lease.index();
            drop(lease);
            match reassign(be, avoid, ctx, rec, tries).await {
                Some(l) => lease = l,
                None => return Err(err),
            }
        }
        now = Instant::now();
    }
}

/// Counts one retry of a request that was on server `server` (log field,
/// backend and server counters).
fn count_retry(be: &BackendRt, server: usize, tries: &mut Tries, rec: &mut LogRecord) {
    tries.attempt += 1;
    rec.retries = tries.attempt;
    be.counters.retries.fetch_add(1, Ordering::Relaxed);
    be.server_counters[server]
        .retries
        .fetch_add(1, Ordering::Relaxed);
}

/// Balances again, avoiding server `avoid` (the caller still holds its
/// lease, dropped when the new one replaces it). None when no assignment is
/// possible (no usable server, queue timeout).
async fn reassign(
    be: &BackendRt,
    avoid: usize,
    ctx: &PickContext<'_>,
    rec: &mut LogRecord,
    tries: &mut Tries,
) -> Option<Lease> {
    let ctx = PickContext {
        src: ctx.src,
        uri: ctx.uri,
        headers: ctx.headers,
        avoid: Some(avoid),
    };
    let lease = queue::assign(be, None, &ctx).await.ok()?.lease;
    rec.redispatched = true;
    be.counters.redispatches.fetch_add(1, Ordering::Relaxed);
    tries.persistent = false;
    Some(lease)
}

/// HAProxy's `stream_choose_redispatch` for retry number `attempt` (1-based).
pub(super) fn should_redispatch(
    be: &BackendRt,
    lease: &Lease,
    attempt: u32,
    persistent: bool,
) -> bool {
    let Some(interval) = be.cfg.redispatch else {
        return false;
    };
    if interval == 0 {
        return false;
    }
    if !lease.server().running() {
        return true;
    }
    let attempt = attempt as i64;
    let interval = interval as i64;
    if interval > 0 && attempt % interval == 0 {
        return true;
    }
    let period = be.cfg.retries as i64 + 1 + interval;
    if interval < 0 && period > 0 && attempt % period == 0 {
        return true;
    }
    !persistent && be.active_usable() > 1 && be.rr_kind()
}

/// A request ready to leave, and what may be done with it again.
pub(super) struct Outgoing<'a> {
    /// The serialised head, followed by the whole body when the client had
    /// already sent all of it.
    pub bytes: &'a [u8],
    /// The body still to relay from the client (`None` when all in `bytes`).
    pub pending: BodyKind,
    pub method: &'a Method,
    /// The request has no body at all.
    pub bodiless: bool,
    /// An idle pooled connection may carry it.
    pub reuse: bool,
    /// The server came from a persistence cookie.
    pub persistent: bool,
    /// The client connection's destination port (servers without a port).
    pub dst_port: u16,
    /// Largest request kept for a replay (HAProxy: one buffer).
    pub max_replay: usize,
    pub client_timeout: Option<Duration>,
    pub server_timeout: Option<Duration>,
}

impl Outgoing<'_> {
    fn idempotent(&self) -> bool {
        matches!(
            *self.method,
            Method::GET
                | Method::HEAD
                | Method::OPTIONS
                | Method::TRACE
                | Method::PUT
                | Method::DELETE
        )
    }

    /// May be sent again after it reached a server: idempotent, and every
    /// byte of it is in `bytes` (nothing was streamed from the client).
    fn replayable(&self) -> bool {
        self.idempotent() && self.pending == BodyKind::None && self.bytes.len() <= self.max_replay
    }
}

/// The last attempt's outcome.
pub(super) struct Sent {
    /// The server of the last attempt.
    pub server: usize,
    /// Milliseconds from the first attempt until the last connection was ready.
    pub t_connect: i64,
    /// When the last attempt's request left.
    pub sent_at: Instant,
    /// The connection, the lease, the final response head and whether the
    /// request body was sent in full; or how the last attempt failed.
    pub outcome: Result<(Upstream, Lease, ResponseHead, bool), Fail>,
}

/// Which `retry-on` event a failed exchange is; None for failures on the
/// client's side, which are never retried.
fn event(fail: Fail) -> Option<RetryOn> {
    match fail {
        Fail::ServerClosed { got_bytes: false } => Some(RetryOn::EMPTY_RESPONSE),
        Fail::ServerClosed { got_bytes: true } | Fail::BadResponse => Some(RetryOn::JUNK_RESPONSE),
        Fail::ServerTimeout => Some(RetryOn::RESPONSE_TIMEOUT),
        Fail::ClientAborted | Fail::ClientTimeout | Fail::BadRequestBody => None,
    }
}

/// Steps 7 and 8: connects (pooled when allowed), sends the request and reads
/// the response head, with the retries described in the module comment.
/// `Err` when no connection could be made at all (503). `wait`: the client
/// connection's timer for response waits.
pub(super) async fn send(
    be: &BackendRt,
    mut lease: Lease,
    ctx: &PickContext<'_>,
    rec: &mut LogRecord,
    (client, mut wait): (&mut Client, Pin<&mut Option<Sleep>>),
    out: &Outgoing<'_>,
) -> Result<Sent, ConnectError> {
    let started = Instant::now();
    let mut tries = Tries {
        attempt: 0,
        persistent: out.persistent,
    };
    let mut reuse = out.reuse;
    let mut stale_retried = false;
    let mut first_clock = Some(started);
    loop {
        let now = first_clock.take().unwrap_or_else(Instant::now);
        // A pooled connection (the usual case in keep-alive mode) is taken here, as
        // `connect_counted` would first do, without making and polling its future. When
        // there is none, `connect_counted` looks again (synchronously: still none).
        let pooled = if reuse {
            upstream::checkout(be.server_addr(lease.index(), out.dst_port), now)
        } else {
            None
        };
        let (mut up, l) = match pooled {
            Some(up) => (up, lease),
            None => {
                connect_counted(be, lease, &mut tries, ctx, rec, reuse, out.dst_port, now).await?
            }
        };
        lease = l;
        // A pooled connection was ready at once (no wait since `now`): that reading
        // stands for the send time.
        let sent_at = if up.reused { now } else { Instant::now() };
        let t_connect = if sent_at == started {
            0
        } else {
            sent_at.duration_since(started).as_millis() as i64
        };
        let result = exchange(
            client,
            &mut up,
            out.bytes,
            out.pending,
            (out.client_timeout, out.server_timeout),
            (wait.as_mut(), sent_at),
        )
        .await;
        let server = lease.index();
        let done = |outcome| Sent {
            server,
            t_connect,
            sent_at,
            outcome,
        };
        let (fail, ev) = match result {
            Ok((resp, body_done)) => {
                if !be.cfg.retry_on.status(resp.status.as_u16())
                    || !out.replayable()
                    || tries.attempt >= be.cfg.retries
                {
                    return Ok(done(Ok((up, lease, resp, body_done))));
                }
                // A status listed in `retry-on`: sent again. When the retry
                // should go elsewhere but no server can take it, the
                // response is relayed as it is.
                if should_redispatch(be, &lease, tries.attempt + 1, tries.persistent) {
                    let Some(l) = reassign(be, server, ctx, rec, &mut tries).await else {
                        return Ok(done(Ok((up, lease, resp, body_done))));
                    };
                    lease = l;
                }
                drop(up);
                count_retry(be, server, &mut tries, rec);
                reuse = false;
                continue;
            }
            Err(fail) => match event(fail) {
                Some(ev) => (fail, ev),
                None => return Ok(done(Err(fail))),
            },
        };
        // Every further attempt uses a fresh connection.
        reuse = false;
        let stale = up.reused
            && ev == RetryOn::EMPTY_RESPONSE
            && out.bodiless
            && out.idempotent()
            && !stale_retried;
        drop(up);
        if stale {
            // The keep-alive race: outside `retries` and `retry-on`.
            stale_retried = true;
            let may_redispatch = be.cfg.redispatch.is_some_and(|i| i != 0);
            if may_redispatch && !lease.server().running() {
                let Some(l) = reassign(be, server, ctx, rec, &mut tries).await else {
                    return Ok(done(Err(fail)));
                };
                lease = l;
            }
            continue;
        }
        if !out.replayable() || !be.cfg.retry_on.contains(ev) || tries.attempt >= be.cfg.retries {
            return Ok(done(Err(fail)));
        }
        count_retry(be, server, &mut tries, rec);
        if should_redispatch(be, &lease, tries.attempt, tries.persistent) {
            let Some(l) = reassign(be, server, ctx, rec, &mut tries).await else {
                return Ok(done(Err(fail)));
            };
            lease = l;
        }
    }
}
