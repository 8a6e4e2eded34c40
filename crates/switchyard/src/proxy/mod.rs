//! Moving HTTP/1.x traffic: one task per client connection.
//!
//! [`serve`] (its HTTP phase, `http_phase`) reads request heads one after the other (keep-alive,
//! pipelining) and hands each to [`forward::handle`], which routes, assigns a
//! server, connects (with retries), relays the exchange and answers errors.
//! Each request is routed and balanced on its own: nothing is pinned to the
//! client connection.
//!
//! Client-side timeouts, as HAProxy 2.6 applies them:
//! - first request: `timeout http-request` (else `timeout client`) from accept;
//!   expiry gives the raw 408, even when nothing was received;
//! - later requests: idle wait `timeout http-keep-alive` (else `http-request`,
//!   else `client`) ends the connection silently; once a byte arrived,
//!   `timeout http-request` bounds the rest of the head (408);
//! - without `timeout http-request`, every read is bounded by `timeout client`.
//!
//! Under `maxconn` pressure, a connection waiting for a head may be closed
//! early to give its slot to a new one, as if these timeouts had expired
//! ([`pressure`]).

pub mod body;
pub mod bufpool;
pub mod error;
mod exchange;
pub mod forward;
pub mod h1;
pub mod headers;
mod local;
pub mod pressure;
pub mod queue;
mod retry;
mod tcp;
pub mod tunnel;
pub mod upstream;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::{Buf, BytesMut};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Sleep;

use crate::observability::{LogRecord, ACTIVE_CONNS};
use crate::runtime::IDLE_LINGER;
use crate::snapshot::{FrontendRt, Snapshot};
use body::IoError;
use h1::RequestHead;
use switchyard_config::Mode;

/// What a connection task knows about its connection.
#[derive(Debug, Clone)]
pub struct ConnCtx {
    pub snap: Arc<Snapshot>,
    /// Index into `snap.frontends`.
    pub fe: usize,
    pub peer: SocketAddr,
    pub local: SocketAddr,
    /// Becomes true when the process is stopping.
    pub shutdown: watch::Receiver<bool>,
}

impl ConnCtx {
    pub fn stopping(&self) -> bool {
        *self.shutdown.borrow()
    }
}

/// The client side of a connection: the socket and bytes read but not yet used.
#[derive(Debug)]
pub struct Client {
    pub stream: TcpStream,
    pub buf: BytesMut,
    /// The peer's address formatted for `X-Forwarded-For`, once per connection.
    pub xff: Option<http::HeaderValue>,
    /// Set by [`forward::handle`] when the request switched protocols: the
    /// tunnel this connection becomes.
    pub handoff: Option<Box<tunnel::Handoff>>,
    /// The buffer the last request's head and response head were written into, kept
    /// for the next request (no allocation per request); empty until the first one.
    pub out: BytesMut,
}

/// The largest [`Client::out`] a connection keeps between requests (a response whose
/// body left with its head may have grown it).
pub const KEEP_OUT: usize = 4096;

enum HeadRead {
    /// A head, and whether it was complete in the bytes at hand when the
    /// request started (later requests: no read after the first bytes).
    Head(Box<RequestHead>, bool),
    /// Idle keep-alive expiry or close, or shutdown: end silently.
    Closed,
    /// The client closed before sending a complete head (on its first request,
    /// even before sending anything): logged as HAProxy does without
    /// `option dontlognull` (400 `CR--`, nothing sent).
    Aborted,
    /// `timeout http-request` / `timeout client` while waiting for a head: 408.
    Timeout,
    Invalid,
    /// The raw head broke a line-level rule of `crate::hardening::check_head_bytes`
    /// (bare CR/LF, request-line syntax, CTLs in fields, unsupported version): answered
    /// with the refusal's status, then closed.
    Rejected(crate::hardening::Reject),
}

/// Serves one accepted connection according to its frontend's mode.
///
/// A connection lives in two phases. The first (HTTP requests, or a `mode
/// tcp` connection's routing, queueing and connecting: several KiB of future
/// state) runs in its own heap allocation, made here. When the connection
/// becomes a tunnel (a `101`, or a connected `mode tcp` session), that
/// allocation is freed and the returned future holds only the [`Tunnel`]: an
/// idle WebSocket costs its two sockets, its server slot, the idle timer and
/// its log record (issue 5, BENCHMARKS.md "ws-idle").
///
/// `slot`: the connection's place in its worker's [`pressure`] registry
/// (when it holds a `maxconn` slot); only HTTP head waits use it.
pub fn serve(
    stream: TcpStream,
    cx: ConnCtx,
    slot: Option<pressure::Guard>,
) -> impl Future<Output = ()> + Send {
    let tcp_route = (cx.snap.frontends[cx.fe].cfg.mode == switchyard_config::Mode::Tcp)
        .then(|| tcp::route(&cx));
    let setup: Pin<Box<dyn Future<Output = Option<Tunnel>> + Send>> = match tcp_route {
        // A TCP frontend whose backend is in `mode http` serves HTTP.
        Some(route) if !route.is_some_and(|bi| cx.snap.backends[bi].cfg.mode == Mode::Http) => {
            drop(slot);
            Box::pin(tcp::open(stream, cx, route))
        }
        _ => Box::pin(http_phase(stream, cx, slot)),
    };
    async move {
        if let Some(t) = setup.await {
            t.run().await;
        }
    }
}

/// A connection in its tunnel phase: what relaying and its end need.
struct Tunnel {
    client: TcpStream,
    server: TcpStream,
    lease: queue::Lease,
    idle: Option<Duration>,
    snap: Arc<Snapshot>,
    fe: usize,
    started: Instant,
    rec: Box<LogRecord>,
    /// A `mode tcp` session (ends with `option tcplog`), else a switched
    /// HTTP connection.
    tcp: bool,
}

impl Tunnel {
    /// Relays until the tunnel ends, then logs and counts it and closes the
    /// connection, as [`http_phase`] does for other requests.
    async fn run(mut self) {
        let mut stats = tunnel::TunnelStats::default();
        tunnel::relay(&self.client, &self.server, self.idle, &mut stats).await;
        if self.tcp {
            return tcp::end(self, stats);
        }
        let rec = &mut self.rec;
        rec.bytes += stats.server_to_client;
        if stats.timed_out {
            rec.term[..2].copy_from_slice(b"cD");
        }
        drop(self.server);
        drop(self.lease);
        rec.t_total = self.started.elapsed().as_millis() as i64;
        let fe = &self.snap.frontends[self.fe];
        account(&self.snap, fe, rec);
        let _ = self.client.shutdown().await;
        fe.counters.current.fetch_sub(1, Ordering::Relaxed);
        ACTIVE_CONNS.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Requests one after the other until the connection closes (`None`) or
/// switches protocols (the tunnel it becomes).
async fn http_phase(
    stream: TcpStream,
    mut cx: ConnCtx,
    slot: Option<pressure::Guard>,
) -> Option<Tunnel> {
    let accepted = Instant::now();
    let fe = &cx.snap.clone().frontends[cx.fe];
    // The wall clock is only printed in log lines.
    let accepted_at = wall_clock(fe);
    let _ = stream.set_nodelay(true);
    ACTIVE_CONNS.fetch_add(1, Ordering::Relaxed);
    fe.counters.current.fetch_add(1, Ordering::Relaxed);
    fe.counters.connections.fetch_add(1, Ordering::Relaxed);
    let mut client = Client {
        stream,
        // No buffer until the first bytes arrive (`head_bytes`).
        buf: BytesMut::new(),
        xff: None,
        handoff: None,
        out: BytesMut::new(),
    };
    let mut first = true;
    // The connection's one timer for the waits of `read_head` (see `body::read_some_lazy`).
    let mut timer = pin!(None::<Sleep>);
    // And one for the waits for response heads (`timeout server`): a separate one, as
    // deadlines of the two kinds alternate and a timer is cheap to keep only while its
    // deadlines do not move earlier.
    let mut wait_timer = pin!(None::<Sleep>);
    let mut stop_wait = pin!(stop_signal(cx.shutdown.clone()));
    let mut stop = WokenOnly::new(stop_wait.as_mut());
    // When the wait for the next head began (for `pressure`): the accept,
    // then the end of each response.
    let mut idle_since = accepted;
    // One record per connection, made new for each request (`LogRecord::reset`).
    let mut rec = LogRecord::new(cx.peer, accepted_at, &fe.name);
    loop {
        if let Some(s) = &slot {
            s.waiting(idle_since);
        }
        let (read, started, started_at) = read_head(
            &mut client,
            &cx,
            first,
            (accepted, accepted_at, idle_since),
            (timer.as_mut(), slot.as_ref()),
            &mut stop,
        )
        .await;
        if let Some(s) = &slot {
            s.busy();
        }
        rec.reset(started_at);
        rec.enabled = !fe.log.is_empty();
        let keep = match read {
            HeadRead::Closed => false,
            HeadRead::Aborted => {
                // `option dontlognull`: a connection that sent nothing is not logged.
                rec.enabled &= !(fe.cfg.dontlognull && client.buf.is_empty());
                finish_raw(&mut rec, 400, *b"CR--", started);
                false
            }
            HeadRead::Timeout => {
                let _ = client.stream.write_all(error::RAW_408).await;
                finish_raw(&mut rec, 408, *b"cR--", started);
                false
            }
            HeadRead::Invalid => {
                let _ = client.stream.write_all(error::RAW_400).await;
                finish_raw(&mut rec, 400, *b"PR--", started);
                false
            }
            HeadRead::Rejected(r) => {
                local::raw_reject(&mut client, &mut rec, r).await;
                rec.term = *b"PR--";
                rec.t_total = started.elapsed().as_millis() as i64;
                false
            }
            HeadRead::Head(head, at_once) => {
                // Parsed right after its first bytes arrived: microseconds,
                // 0 ms without reading the clock.
                rec.t_request = if at_once {
                    0
                } else {
                    started.elapsed().as_millis() as i64
                };
                // A reload since the last request: route this one by the new configuration.
                crate::reload::refresh(&mut cx);
                let keep = forward::handle(
                    &cx,
                    (&mut client, wait_timer.as_mut()),
                    head,
                    &mut rec,
                    started,
                )
                .await;
                if let Some(h) = client.handoff.take() {
                    let mut h = *h;
                    rec.bytes = h.head_len;
                    let mut stats = tunnel::TunnelStats::default();
                    let flushed = tunnel::flush(
                        &mut client.stream,
                        &mut client.buf,
                        &mut h.up.stream,
                        &mut h.up.buf,
                        &mut stats,
                    )
                    .await;
                    rec.bytes += stats.server_to_client;
                    if flushed.is_ok() {
                        return Some(Tunnel {
                            client: client.stream,
                            server: h.up.stream,
                            lease: h.lease,
                            idle: h.idle,
                            snap: cx.snap,
                            fe: cx.fe,
                            started,
                            rec: Box::new(rec),
                            tcp: false,
                        });
                    }
                    drop(h);
                    rec.t_total = started.elapsed().as_millis() as i64;
                    false
                } else {
                    // One clock reading for the next wait's start (pressure) and the log.
                    idle_since = Instant::now();
                    if rec.enabled {
                        rec.t_total =
                            idle_since.saturating_duration_since(started).as_millis() as i64;
                    }
                    // A stop that began while this response was written: the
                    // response went out without `connection: close`, so the
                    // connection stays for `read_head`'s linger, which answers
                    // a request already on its way with `connection: close`.
                    keep
                }
            }
        };
        account(&cx.snap, fe, &mut rec);
        if !keep {
            break;
        }
        first = false;
    }
    bufpool::release(&mut client.buf);
    let _ = client.stream.shutdown().await;
    fe.counters.current.fetch_sub(1, Ordering::Relaxed);
    ACTIVE_CONNS.fetch_sub(1, Ordering::Relaxed);
    None
}

/// Counts a finished request's answer and writes its log line (when the
/// frontend logs). Nothing for a request that got no answer (status 0).
fn account(snap: &Snapshot, fe: &FrontendRt, rec: &mut LogRecord) {
    if rec.status == 0 {
        return;
    }
    fe.counters.count_response(rec.status);
    fe.counters
        .bytes_out
        .fetch_add(rec.bytes, Ordering::Relaxed);
    if let Some(be) = rec.backend_index.map(|i| &snap.backends[i]) {
        be.counters
            .bytes_out
            .fetch_add(rec.bytes, Ordering::Relaxed);
        if let Some(si) = rec.server_index {
            be.server_counters[si]
                .bytes_out
                .fetch_add(rec.bytes, Ordering::Relaxed);
        }
    }
    if rec.enabled {
        rec.actconn = ACTIVE_CONNS.load(Ordering::Relaxed);
        rec.feconn = fe.counters.current.load(Ordering::Relaxed);
        if let Some(be) = rec.backend_index.map(|i| &snap.backends[i]) {
            let load =
                |s: &crate::backend::ServerState| s.inflight.load(Ordering::Relaxed) as usize;
            rec.beconn = be.servers.iter().map(|s| load(s)).sum();
            rec.srvconn = rec.server_index.map_or(0, |i| load(&be.servers[i]));
        }
        let line = rec.render(fe.cfg.log_format.as_ref());
        for sink in &fe.log {
            sink.write(&line);
        }
    }
}

/// HAProxy logs 0 bytes for the raw answers of its H1 layer.
fn finish_raw(rec: &mut LogRecord, status: u16, term: [u8; 4], started: Instant) {
    rec.status = status;
    rec.bytes = 0;
    rec.term = term;
    rec.t_total = started.elapsed().as_millis() as i64;
}

/// Waits for and parses the next request head. Returns the result and when the
/// request started (accept for the first one, first byte for later ones).
/// `idle_since`: when the wait began (a clock reading just taken: the first wait's
/// deadline counts from it without reading the clock again).
///
/// `stop`: the connection's [`stop_signal`], polled only while the process is not
/// stopping (it completes when stopping begins).
async fn read_head(
    client: &mut Client,
    cx: &ConnCtx,
    first: bool,
    (accepted, accepted_at, idle_since): (Instant, SystemTime, Instant),
    (mut timer, slot): (Pin<&mut Option<Sleep>>, Option<&pressure::Guard>),
    stop: &mut WokenOnly<'_, impl Future<Output = ()>>,
) -> (HeadRead, Instant, SystemTime) {
    let t = &cx.snap.frontends[cx.fe].cfg.timeouts;
    let (http_request, client_to) = (t.http_request, t.client);
    let idle = if first {
        http_request.or(client_to)
    } else {
        t.http_keep_alive.or(http_request).or(client_to)
    };
    let (mut start, mut start_at) = (accepted, accepted_at);
    let mut at_once = !first;
    if client.buf.is_empty() {
        // Draining (process stop, or the listener closed by a reload): the
        // first request of a connection accepted before is still awaited; an
        // idle keep-alive connection waits up to IDLE_LINGER for its next
        // request, answered with `connection: close` (closing it at once
        // fails a client that is sending one right now).
        let linger = Some(idle.map_or(IDLE_LINGER, |d| d.min(IDLE_LINGER)));
        let now = Some(idle_since);
        let wait = if first {
            head_bytes(client, idle, (timer.as_mut(), now), slot).await
        } else if cx.stopping() {
            head_bytes(client, linger, (timer.as_mut(), now), slot).await
        } else {
            // Bytes first when both are ready: the request is then answered with
            // `connection: close` (`forward::handle` sees `stopping`).
            let r = tokio::select! {
                biased;
                r = head_bytes(client, idle, (timer.as_mut(), now), slot) => Some(r),
                _ = stop => None,
            };
            match r {
                Some(r) => r,
                None => head_bytes(client, linger, (timer.as_mut(), None), slot).await,
            }
        };
        match wait {
            Ok(0) | Err(IoError::Io(_)) if first => return (HeadRead::Aborted, start, start_at),
            Ok(0) | Err(IoError::Io(_)) => return (HeadRead::Closed, start, start_at),
            Err(IoError::Timeout) if first => return (HeadRead::Timeout, start, start_at),
            Err(IoError::Timeout) => return (HeadRead::Closed, start, start_at),
            Ok(_) => {}
        }
        if !first {
            (start, start_at) = (Instant::now(), wall_clock(&cx.snap.frontends[cx.fe]));
        }
    } else if !first {
        (start, start_at) = (Instant::now(), wall_clock(&cx.snap.frontends[cx.fe]));
    }
    let deadline = http_request.map(|d| start + d);
    loop {
        match h1::parse_request_plain_or_not(&client.buf, cx.snap.limits) {
            Ok(Some((head, len, plain))) => {
                // A head of the one-pass reader already meets every line-level rule.
                if !plain {
                    if let Err(r) = crate::hardening::check_head_bytes(&client.buf[..len]) {
                        return (HeadRead::Rejected(r), start, start_at);
                    }
                }
                client.buf.advance(len);
                // Nothing pipelined behind the head: the buffer goes back to the pool
                // while the request is handled (a body's reads take one again).
                bufpool::release(&mut client.buf);
                return (HeadRead::Head(head, at_once), start, start_at);
            }
            Ok(None) => {}
            Err(h1::ParseError::TooLarge) => {
                let r = too_large(&client.buf, cx.snap.limits.max_head);
                return (HeadRead::Rejected(r), start, start_at);
            }
            Err(_) => return (HeadRead::Invalid, start, start_at),
        }
        let limit = match (deadline, client_to) {
            (Some(d), c) => {
                let left = d.saturating_duration_since(Instant::now());
                Some(c.map_or(left, |c| c.min(left)))
            }
            (None, c) => c,
        };
        if limit == Some(Duration::ZERO) {
            return (HeadRead::Timeout, start, start_at);
        }
        at_once = false;
        match head_bytes(client, limit, (timer.as_mut(), None), slot).await {
            Ok(0) | Err(IoError::Io(_)) => return (HeadRead::Aborted, start, start_at),
            Err(IoError::Timeout) => return (HeadRead::Timeout, start, start_at),
            Ok(_) => {}
        }
    }
}

/// Completes when the connection's listener drains or the process stops
/// ([`ConnCtx::stopping`] is then true). One such wait serves all the idle waits of a
/// connection: a `changed()` future per request registered and removed a waiter on the
/// watch each time (~400 instructions per request in `ka64`).
async fn stop_signal(mut shutdown: watch::Receiver<bool>) {
    if shutdown.wait_for(|s| *s).await.is_err() {
        // No sender any more (every connection holds one, so not in practice): no stop
        // will come.
        std::future::pending::<()>().await;
    }
}

/// A future polled again only when a waker it was given was woken: a future that stays
/// pending for the life of a connection (its [`stop_signal`]) costs one atomic swap per
/// poll of the task instead of a poll. (Polling `watch::Receiver::wait_for` again takes
/// the watch's lock and compares the stored waker: ~180 instructions per request in
/// `ka64`.) The inner future is polled with a waker of its own, which records the wake
/// and wakes the task; made once per connection (again if the task's waker changed).
struct WokenOnly<'a, F> {
    inner: Pin<&'a mut F>,
    flag: Option<Arc<WakeFlag>>,
}

/// A wake of a [`WokenOnly`]'s inner future, forwarded to the task.
struct WakeFlag {
    woken: std::sync::atomic::AtomicBool,
    task: std::task::Waker,
}

impl std::task::Wake for WakeFlag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.task.wake_by_ref();
    }
}

impl<'a, F: Future> WokenOnly<'a, F> {
    fn new(inner: Pin<&'a mut F>) -> Self {
        WokenOnly { inner, flag: None }
    }
}

impl<F: Future> Future for WokenOnly<'_, F> {
    type Output = F::Output;

    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        let this = &mut *self;
        let flag = match &this.flag {
            Some(f) if f.task.will_wake(cx.waker()) => {
                if !f.woken.swap(false, Ordering::Acquire) {
                    return std::task::Poll::Pending;
                }
                f.clone()
            }
            _ => {
                let f = Arc::new(WakeFlag {
                    woken: std::sync::atomic::AtomicBool::new(false),
                    task: cx.waker().clone(),
                });
                this.flag = Some(f.clone());
                f
            }
        };
        let waker = std::task::Waker::from(flag);
        this.inner
            .as_mut()
            .poll(&mut std::task::Context::from_waker(&waker))
    }
}

/// One wait for head bytes: a read on the connection's one timer
/// ([`body::read_pooled_lazy_from`], the deadline counted from `now` when given), ended as
/// a timeout by an eviction under `maxconn` pressure ([`pressure::read_or_evicted`]).
/// A connection waiting with an empty buffer holds none: it takes one from the
/// thread's [`bufpool`] when its socket becomes readable.
async fn head_bytes(
    client: &mut Client,
    limit: Option<Duration>,
    (timer, now): (Pin<&mut Option<Sleep>>, Option<Instant>),
    slot: Option<&pressure::Guard>,
) -> Result<usize, IoError> {
    let read = pin!(body::read_pooled_lazy_from(
        &mut client.stream,
        &mut client.buf,
        limit,
        timer,
        now
    ));
    pressure::read_or_evicted(slot, read).await
}

/// Now, for a frontend that writes log lines (the only place the wall clock
/// is shown); else the epoch, without reading the clock.
fn wall_clock(fe: &FrontendRt) -> SystemTime {
    if fe.log.is_empty() {
        SystemTime::UNIX_EPOCH
    } else {
        SystemTime::now()
    }
}

/// A head over the limits: 414 when the request line alone does not fit,
/// else 431 (header section too large, or more fields than `tune.http.maxhdr`).
/// HAProxy 2.6 answers 400 to both; the precise codes are a deliberate
/// divergence (issue 6, RELIABILITY.md).
fn too_large(buf: &[u8], max_head: usize) -> crate::hardening::Reject {
    let line_fits = memchr::memchr(b'\n', buf).is_some_and(|end| end < max_head);
    if line_fits {
        crate::hardening::Reject {
            status: 431,
            reason: "request header fields too large",
        }
    } else {
        crate::hardening::Reject {
            status: 414,
            reason: "request line too long",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::task::{Context, Poll, Wake, Waker};

    /// Counts its polls, keeps the last waker it was given, ready once `ready` is set.
    struct Probe<'a> {
        polls: &'a AtomicUsize,
        waker: &'a std::sync::Mutex<Option<Waker>>,
        ready: &'a std::sync::atomic::AtomicBool,
    }

    impl Future for Probe<'_> {
        type Output = ();
        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            self.polls.fetch_add(1, Ordering::Relaxed);
            *self.waker.lock().unwrap() = Some(cx.waker().clone());
            if self.ready.load(Ordering::Relaxed) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        }
    }

    struct CountWakes(AtomicUsize);
    impl Wake for CountWakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn woken_only_polls_the_inner_future_after_its_wake() {
        let (polls, waker, ready) = (
            AtomicUsize::new(0),
            std::sync::Mutex::new(None),
            std::sync::atomic::AtomicBool::new(false),
        );
        let mut inner = pin!(Probe {
            polls: &polls,
            waker: &waker,
            ready: &ready,
        });
        let mut gate = WokenOnly::new(inner.as_mut());
        let task = Arc::new(CountWakes(AtomicUsize::new(0)));
        let task_waker = Waker::from(task.clone());
        let mut cx = Context::from_waker(&task_waker);
        // The first poll reaches the inner future; later ones do not until it is woken.
        assert!(Pin::new(&mut gate).poll(&mut cx).is_pending());
        assert!(Pin::new(&mut gate).poll(&mut cx).is_pending());
        assert!(Pin::new(&mut gate).poll(&mut cx).is_pending());
        assert_eq!(polls.load(Ordering::Relaxed), 1);
        // A wake of the inner future's waker wakes the task and lets the next poll through.
        ready.store(true, Ordering::Relaxed);
        waker.lock().unwrap().take().unwrap().wake();
        assert_eq!(task.0.load(Ordering::Relaxed), 1);
        assert!(Pin::new(&mut gate).poll(&mut cx).is_ready());
        assert_eq!(polls.load(Ordering::Relaxed), 2);
        // Another task's waker: polled through at once (the wake goes to the new task).
        ready.store(false, Ordering::Relaxed);
        let other = Arc::new(CountWakes(AtomicUsize::new(0)));
        let other_waker = Waker::from(other.clone());
        let mut cx2 = Context::from_waker(&other_waker);
        assert!(Pin::new(&mut gate).poll(&mut cx2).is_pending());
        assert_eq!(polls.load(Ordering::Relaxed), 3);
        waker.lock().unwrap().take().unwrap().wake();
        assert_eq!(
            (
                task.0.load(Ordering::Relaxed),
                other.0.load(Ordering::Relaxed)
            ),
            (1, 1)
        );
    }
}
