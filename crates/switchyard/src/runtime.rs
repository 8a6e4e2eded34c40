//! Process runtime: listeners, worker threads, health checks, signals,
//! reloads, shutdown.
//!
//! Thread model: `nbthread` event loops (`Worker`), each a current-thread
//! tokio runtime on one OS thread with its own `SO_REUSEPORT` listening
//! socket per bind address. Worker 0 runs on the main thread, next to the
//! signal handlers, the health checks, the runtime API and reloads; workers
//! 1.. get a thread each (`switchyard-w1`...). So `nbthread 1` is one thread,
//! as in HAProxy, and a process runs `nbthread` threads. No work stealing,
//! and nothing on a request's path wakes another thread: what the threads
//! share is read-mostly (the `Arc<Snapshot>`) or atomics (server state,
//! counters). The main thread tells the workers about listeners to open or
//! close on a reload through a command channel. With `nbthread 1` the one
//! event loop pauses while a SIGHUP reload reads and compiles the files
//! (milliseconds; the sockets keep queueing meanwhile).
//!
//! Connections are spread over the workers by their count of open
//! connections, not only by the kernel's hash (`Spread`): a worker that
//! accepts a connection while it has more than one connection more than the
//! least loaded worker hands it over (once per connection).
//!
//! Runtime settings: worker threads enable I/O and timers only (signals are
//! the main thread's); `event_interval` (61 tasks between two non-blocking
//! polls of epoll when tasks keep coming) and `max_io_events_per_tick` (1024)
//! keep tokio's defaults. Measured with 64 keep-alive connections on one
//! thread (`epoll_wait` calls per request, load-dependent): 0.05-0.11 at 61,
//! 0.07-0.08 at 256, 0.15-0.18 at 16 (HAProxy: 0.07); at most 64 sockets
//! are ready at once, far below 1024. Before a worker parks (its ready tasks all
//! ran), it closes the server connections its pass set aside
//! (`proxy::upstream::close_later`), so a pass's responses leave together.
//!
//! `nbthread` defaults to the number of CPUs the process may use, like
//! HAProxy 2.6.
//!
//! Signals:
//! * SIGHUP: in-process reload ([`Reloaded`]): the `-f` files are read again;
//!   an invalid configuration is refused and the running one keeps serving.
//!   Otherwise the new snapshot is published ([`crate::reload`]) for new
//!   connections and for the next request of open ones; listeners whose
//!   (frontend, address) is unchanged stay open (no accept gap), new ones are
//!   bound before anything else changes (a bind failure refuses the reload),
//!   removed ones stop accepting and drain (below). Health checks restart on
//!   the new snapshot, server state carried over (`Snapshot::rebuild`).
//! * SIGUSR1 (soft stop, sent by a newer process started with `-sf`) and
//!   SIGTERM/SIGINT: every listener stops accepting and drains; the process
//!   exits 0 once all connections are gone or after the grace period
//!   ([`grace`]: `hard-stop-after`, else [`GRACE`]); what is still open then is
//!   closed.
//!
//! Draining a listener (stop, or removed by a reload), so that no connection
//! the kernel already completed is reset: the backlog is shrunk to zero with
//! `listen(fd, 0)` (Linux then completes at most one more connection into
//! this socket; further SYNs are dropped and retransmitted by the client, by
//! then to a sibling `SO_REUSEPORT` socket of the newer process or
//! generation, instead of being completed into a queue nobody will read),
//! then the accept queue is emptied with non-blocking `accept` until
//! `EAGAIN`, and only then is the socket closed. What remains: a connection
//! completed into the queue between the last `EAGAIN` and `close()` (a few
//! microseconds) is reset, unless `net.ipv4.tcp_migrate_req=1` (Linux 5.14+)
//! lets the kernel move it to a sibling socket. A process started with `-sf`
//! takes the old process's sockets instead ([`crate::handover`]): the old
//! process then closes a handed-over socket without shrinking or draining
//! it, and nothing queued is lost. Connections taken from the
//! queue are served like any other. Connections of a draining listener finish
//! the request in flight and answer it with `connection: close`; an idle
//! keep-alive connection waits up to [`IDLE_LINGER`] for a next request, which
//! it serves with `connection: close` (closing idle connections at once makes
//! a client that is just sending its next request fail); a tunnel (WebSocket,
//! `mode tcp`) goes on until it ends or the grace period expires.

use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener as StdListener, TcpStream as StdStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Protocol, SockRef, Socket, Type};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch, OwnedSemaphorePermit};

use crate::observability;
use crate::proxy::{self, ConnCtx};
use crate::reload;
use crate::snapshot::Snapshot;

/// Longest wait for in-flight requests and tunnels once the process stops, when the
/// configuration has no `hard-stop-after` (HAProxy then waits with no limit; a
/// process that never exits after a reload is the surprise `hard-stop-after`
/// exists to prevent, so switchyard bounds it by default).
pub const GRACE: Duration = Duration::from_secs(10);

/// The grace period of a stopping process: the running configuration's
/// `hard-stop-after` (read when the stop begins, so a reload that changed it
/// counts), else [`GRACE`].
pub fn grace() -> Duration {
    reload::current()
        .and_then(|s| s.config.global.hard_stop_after)
        .unwrap_or(GRACE)
}
/// How long an idle keep-alive connection of a draining listener waits for a
/// next request (served with `connection: close`) before it is closed.
pub const IDLE_LINGER: Duration = Duration::from_secs(1);
const BACKLOG: i32 = 4096;

/// A listening socket's identity across reloads: kept when a new
/// configuration binds the same address in a frontend of the same name and
/// mode (connections follow a reload only into a frontend of the same name
/// and mode, see [`reload::follow`]; a changed mode rebinds).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Key {
    fe: String,
    mode: switchyard_config::Mode,
    addr: SocketAddr,
}

/// One bound listening socket and the frontend it serves.
struct Bound {
    key: Key,
    /// Index of the frontend in the snapshot it was bound for.
    fe: usize,
    snap: Arc<Snapshot>,
    listener: StdListener,
}

/// What the main thread asks of a worker on a reload.
///
/// A reload: accept on the `listen` sockets; stop accepting on the `close`
/// ones, drain and close them (their connections then know they are
/// closing); then answer `done`, so that the reload is complete on every
/// worker when its log line is written.
struct Cmd {
    listen: Vec<Bound>,
    close: Vec<Key>,
    done: oneshot::Sender<()>,
}

/// A configuration read again on SIGHUP.
#[derive(Debug)]
pub struct Reloaded {
    pub snap: Arc<Snapshot>,
    /// The files it was read from (for the log line).
    pub files: Vec<PathBuf>,
}

/// Number of worker threads: `nbthread`, else the CPUs available.
pub fn thread_count(snap: &Snapshot) -> usize {
    snap.config
        .global
        .nbthread
        .map(|n| n.max(1) as usize)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Binds every listener, calls `on_bound`, starts the workers and health
/// checks, and runs until SIGTERM, SIGINT or SIGUSR1 (soft stop, sent by a
/// newer process started with `-sf`). On SIGHUP, `reload` is asked for the
/// next configuration (it prints its own diagnostics and returns `None` when
/// the files are invalid). Bind failures at start are reported HAProxy-style
/// and returned.
pub fn run(
    snap: Arc<Snapshot>,
    on_bound: impl FnOnce(),
    mut reload: impl FnMut(&Arc<Snapshot>) -> Option<Reloaded>,
) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .on_thread_park(crate::proxy::upstream::close_deferred)
        .build()
        .map_err(|e| format!("cannot start runtime: {e}"))?;
    // Signal handlers first: once a listener is bound, clients (and service
    // managers) may already talk to us, and a signal must never find the
    // default action (death) in place.
    let mut signals = {
        let _guard = rt.enter();
        Signals::register()
    };
    let threads = thread_count(&snap);
    let keys = keys(&snap);
    {
        let _guard = rt.enter();
        crate::handover::serve();
    }
    crate::handover::fetch(&keys.iter().map(|k| k.addr).collect::<Vec<_>>())?;
    let mut per_thread = Vec::with_capacity(threads);
    for _ in 0..threads {
        per_thread.push(bind_keys(&snap, &keys).map_err(|e| {
            let exit =
                "[switchyard.main()] Some protocols failed to start their listeners! Exiting.";
            observability::alert(&e);
            observability::alert(exit);
            exit.to_string()
        })?);
    }
    // Sockets of the old process beyond one per thread (it had more threads).
    for (t, addr, listener) in crate::handover::leftovers(threads) {
        if let Some(b) = per_thread[t].iter().find(|b| b.key.addr == addr) {
            let (key, fe, snap) = (b.key.clone(), b.fe, b.snap.clone());
            per_thread[t].push(Bound {
                key,
                fe,
                snap,
                listener,
            });
        }
    }
    let cli = crate::admin::socket::bind(&snap)?;
    crate::handover::commit();
    on_bound();
    reload::publish(snap.clone());
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut workers = Vec::with_capacity(threads);
    let mut commands = Vec::with_capacity(threads);
    // Worker 0 runs on this thread's runtime, the others on threads of their own.
    let mut first = None;
    let spreads = Spread::for_workers(threads);
    for (i, (bound, (spread, inbox))) in per_thread.into_iter().zip(spreads).enumerate() {
        let (tx, rx) = mpsc::unbounded_channel();
        commands.push(tx);
        let w = Worker {
            bound,
            commands: rx,
            stop: stop_rx.clone(),
            spread,
            inbox,
        };
        if i == 0 {
            first = Some(w);
            continue;
        }
        let handle = w
            .start_thread(i)
            .map_err(|e| format!("cannot start worker thread: {e}"))?;
        workers.push(handle);
    }
    let mut live = Live {
        snap,
        keys,
        threads,
        commands,
        health: watch::channel(false).0,
    };
    rt.block_on(async {
        let first = first.take().map(|w| tokio::spawn(w.serve()));
        live.health = start_health(&live.snap);
        crate::admin::socket::spawn(cli, live.snap.clone(), stop_rx.clone());
        loop {
            match signals.next().await {
                Event::Reload => live.reload(&mut reload).await,
                Event::Soft => {
                    report_stopped_proxies(&live.snap);
                    break;
                }
                Event::Hard => break,
            }
        }
        let _ = live.health.send(true);
        crate::handover::stop();
        let _ = stop_tx.send(true);
        if let Some(first) = first {
            let _ = first.await;
        }
    });
    for w in workers {
        let _ = w.join();
    }
    Ok(())
}

/// The main thread's view of the running configuration.
struct Live {
    snap: Arc<Snapshot>,
    /// The listeners every worker has (one socket each per key).
    keys: Vec<Key>,
    threads: usize,
    commands: Vec<mpsc::UnboundedSender<Cmd>>,
    /// Stops the current generation's health checks.
    health: watch::Sender<bool>,
}

impl Live {
    /// SIGHUP: read, validate, bind, then swap. Nothing changes unless every
    /// step up to the swap succeeded.
    async fn reload(&mut self, read: &mut impl FnMut(&Arc<Snapshot>) -> Option<Reloaded>) {
        const REFUSED: &str = "reload refused, keeping the running configuration";
        let Some(Reloaded { snap, files }) = read(&self.snap) else {
            observability::warning(REFUSED);
            return;
        };
        let new_keys = keys(&snap);
        let added: Vec<Key> = new_keys
            .iter()
            .filter(|k| !self.keys.contains(k))
            .cloned()
            .collect();
        let removed: Vec<Key> = self
            .keys
            .iter()
            .filter(|k| !new_keys.contains(k))
            .cloned()
            .collect();
        let mut per_thread = Vec::with_capacity(self.threads);
        for _ in 0..self.threads {
            match bind_keys(&snap, &added) {
                Ok(b) => per_thread.push(b),
                Err(e) => {
                    // Sockets bound so far close when `per_thread` drops.
                    observability::alert(&e);
                    observability::warning(REFUSED);
                    return;
                }
            }
        }
        if thread_count(&snap) != self.threads {
            observability::warning(&format!(
                "nbthread cannot change on a reload: keeping {} threads (restart with -sf to change it).",
                self.threads
            ));
        }
        reload::publish(snap.clone());
        let _ = self.health.send(true);
        self.health = start_health(&snap);
        let mut acks = Vec::with_capacity(self.threads);
        for (tx, listen) in self.commands.iter().zip(per_thread) {
            let (done, ack) = oneshot::channel();
            let close = removed.clone();
            if tx
                .send(Cmd {
                    listen,
                    close,
                    done,
                })
                .is_ok()
            {
                acks.push(ack);
            }
        }
        for ack in acks {
            // A worker's drain of a closed listener is a few accept() calls.
            let _ = tokio::time::timeout(Duration::from_secs(5), ack).await;
        }
        let files: Vec<String> = files
            .iter()
            .map(|f| f.to_string_lossy().into_owned())
            .collect();
        observability::notice(&format!(
            "reloaded configuration from {} (generation {}): {} listener(s) kept, {} added, {} closed.",
            files.join(", "),
            snap.generation,
            new_keys.len() - added.len(),
            added.len(),
            removed.len()
        ));
        self.snap = snap;
        self.keys = new_keys;
    }
}

/// Starts the health checks of `snap`; sending `true` stops them.
fn start_health(snap: &Arc<Snapshot>) -> watch::Sender<bool> {
    let (tx, rx) = watch::channel(false);
    crate::health::start(snap, rx);
    tx
}

/// Every (frontend, address) the snapshot listens on, in declaration order.
fn keys(snap: &Snapshot) -> Vec<Key> {
    let mut out: Vec<Key> = Vec::new();
    for fe in &snap.frontends {
        for bind in &fe.cfg.binds {
            for addr in &bind.addrs {
                let key = Key {
                    fe: fe.cfg.name.clone(),
                    mode: fe.cfg.mode,
                    addr: *addr,
                };
                if !out.contains(&key) {
                    out.push(key);
                }
            }
        }
    }
    out
}

/// Binds one socket per key; the error is HAProxy's alert for the first
/// address that cannot be bound.
fn bind_keys(snap: &Arc<Snapshot>, keys: &[Key]) -> Result<Vec<Bound>, String> {
    let mut out = Vec::with_capacity(keys.len());
    for key in keys {
        let Some((fe_index, fe)) = snap
            .frontends
            .iter()
            .enumerate()
            .find(|(_, f)| f.cfg.name == key.fe && f.cfg.mode == key.mode)
        else {
            continue;
        };
        let listener = match crate::handover::take(key.addr) {
            Some(inherited) => Ok(inherited),
            None => bind_one(key.addr),
        };
        let listener = listener.map_err(|e| {
            let text = e.to_string();
            let reason = text.split(" (os error").next().unwrap_or(&text);
            let loc = fe
                .cfg
                .binds
                .iter()
                .find(|b| b.addrs.contains(&key.addr))
                .map(|b| b.loc.to_string())
                .unwrap_or_default();
            format!(
                "Binding [{loc}] for frontend {}: cannot bind socket ({reason}) for [{}]",
                fe.cfg.name, key.addr
            )
        })?;
        out.push(Bound {
            key: key.clone(),
            fe: fe_index,
            snap: snap.clone(),
            listener,
        });
    }
    Ok(out)
}

fn bind_one(addr: SocketAddr) -> std::io::Result<StdListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(false)?;
    }
    socket.set_tcp_nodelay(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// An open listener of a worker: its key, its close switch, its accept loop.
type Closer = (Key, watch::Sender<bool>, tokio::task::JoinHandle<()>);

/// One event loop: its listeners, its connections, its share of the load.
struct Worker {
    bound: Vec<Bound>,
    commands: mpsc::UnboundedReceiver<Cmd>,
    stop: watch::Receiver<bool>,
    /// With `nbthread` > 1: the other workers' loads and inboxes.
    spread: Option<Spread>,
    /// Connections handed over by the other workers.
    inbox: Option<mpsc::UnboundedReceiver<Accepted>>,
}

impl Worker {
    /// Worker `i` (>= 1) on an OS thread of its own with its own
    /// current-thread runtime (see the module docs for the settings).
    fn start_thread(self, i: usize) -> std::io::Result<std::thread::JoinHandle<()>> {
        std::thread::Builder::new()
            .name(format!("switchyard-w{i}"))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_io()
                    .enable_time()
                    .on_thread_park(crate::proxy::upstream::close_deferred)
                    .build();
                match rt {
                    Ok(rt) => rt.block_on(self.serve()),
                    Err(e) => observability::alert(&format!("cannot start worker runtime: {e}")),
                }
            })
    }

    /// Serves on the current runtime until the process stops, then waits (at
    /// most [`grace`]) for its connections to end.
    async fn serve(self) {
        let Worker {
            bound,
            mut commands,
            stop,
            spread,
            inbox,
        } = self;
        let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
        if let Some(inbox) = inbox {
            // Holds a `done` sender until every worker has stopped accepting
            // (the inboxes close then), so no handed-over connection is lost.
            tokio::spawn(receive(inbox, done_tx.clone()));
        }
        let home = Home {
            done: done_tx,
            spread,
        };
        // One "close" switch per open listener.
        let mut closers: Vec<Closer> = Vec::new();
        let listen = |bound: Vec<Bound>, closers: &mut Vec<Closer>| {
            for b in bound {
                let Ok(listener) = TcpListener::from_std(b.listener) else {
                    continue;
                };
                let (close_tx, close_rx) = watch::channel(false);
                let task = tokio::spawn(accept_loop(
                    listener,
                    b.snap,
                    b.fe,
                    [stop.clone(), close_rx],
                    home.clone(),
                ));
                closers.push((b.key, close_tx, task));
            }
        };
        listen(bound, &mut closers);
        // Not tracked by `done`: it ends with the worker.
        let purge = tokio::spawn(crate::proxy::upstream::purge_idle());
        let memory = tokio::spawn(crate::memory::every_period());
        let mut stop_wait = stop.clone();
        loop {
            let cmd = tokio::select! {
                cmd = commands.recv() => cmd,
                _ = stop_wait.wait_for(|s| *s) => None,
            };
            let Some(Cmd {
                listen: bound,
                close,
                done,
            }) = cmd
            else {
                break;
            };
            listen(bound, &mut closers);
            let (closing, open) = std::mem::take(&mut closers)
                .into_iter()
                .partition::<Vec<_>, _>(|(k, _, _)| close.contains(k));
            closers = open;
            for (_, tx, _) in &closing {
                let _ = tx.send(true);
            }
            for (_, _, task) in closing {
                let _ = task.await;
            }
            let _ = done.send(());
        }
        drop(home);
        // Every accept loop and connection task holds a sender: recv() returns
        // None once they are all gone.
        let _ = tokio::time::timeout(grace(), done_rx.recv()).await;
        drop(closers);
        purge.abort();
        memory.abort();
    }
}

/// Starts the connections other workers hand to this one.
async fn receive(mut inbox: mpsc::UnboundedReceiver<Accepted>, done: mpsc::Sender<()>) {
    while let Some(conn) = inbox.recv().await {
        conn.start(&done);
    }
}

/// What an accept loop needs from its worker.
#[derive(Clone)]
struct Home {
    /// Held by every task of the worker (see [`Worker::serve`]).
    done: mpsc::Sender<()>,
    spread: Option<Spread>,
}

impl Home {
    /// Runs `conn` here, or hands it to a less loaded worker ([`Spread::place`]).
    fn dispatch(&self, mut conn: Accepted) {
        if let Some(spread) = &self.spread {
            let counted = spread.place();
            let target = counted.worker;
            conn.counted = Some(counted);
            if target != spread.me {
                // Out of this runtime's reactor, into the target's (by `start`).
                conn.stream = match conn.stream {
                    Sock::Registered(s) => match s.into_std() {
                        Ok(s) => Sock::Moving(s),
                        Err(_) => return,
                    },
                    moving => moving,
                };
                match spread.inboxes[target].send(conn) {
                    Ok(()) => return,
                    // That worker has stopped: serve it here.
                    Err(mpsc::error::SendError(back)) => {
                        conn = back;
                        conn.counted = Some(spread.count(spread.me));
                    }
                }
            }
        }
        conn.start(&self.done);
    }

    /// Runs `conn` here (a draining listener's queue: no hand-over).
    fn keep(&self, mut conn: Accepted) {
        conn.counted = self.spread.as_ref().map(|s| s.count(s.me));
        conn.start(&self.done);
    }
}

/// How `nbthread` > 1 workers share connections.
///
/// Each worker accepts on its own `SO_REUSEPORT` socket, and the kernel
/// picks the socket by a hash of the connection's addresses: with 64
/// connections, two threads got 40 and 24 in one measured run, so one thread
/// had two thirds of the work while the other idled (HAProxy 2.6 instead
/// accepts on one socket and queues each connection to the less loaded of
/// two threads). So an accepted connection runs on the worker with the
/// fewest open connections, unless the accepting worker has at most one
/// more: the counts stay within two of each other, and a connection changes
/// threads (one cross-thread wake-up, once per connection, never per
/// request) only when the kernel's spread is uneven.
#[derive(Clone)]
struct Spread {
    /// This worker's index.
    me: usize,
    /// Open connections per worker.
    loads: Arc<[Load]>,
    /// Each worker's inbox of connections accepted by another one.
    inboxes: Arc<[mpsc::UnboundedSender<Accepted>]>,
}

/// A worker's open connection count, alone on its cache line(s).
#[derive(Default)]
#[repr(align(128))]
struct Load(AtomicUsize);

/// Counts a connection in its worker's load until dropped.
struct Counted {
    loads: Arc<[Load]>,
    worker: usize,
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.loads[self.worker].0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Spread {
    /// One `Spread` and inbox per worker; none for a single worker.
    fn for_workers(n: usize) -> Vec<(Option<Spread>, Option<mpsc::UnboundedReceiver<Accepted>>)> {
        if n < 2 {
            return (0..n).map(|_| (None, None)).collect();
        }
        let loads: Arc<[Load]> = (0..n).map(|_| Load::default()).collect();
        let (senders, receivers): (Vec<_>, Vec<_>) =
            (0..n).map(|_| mpsc::unbounded_channel()).unzip();
        let inboxes: Arc<[_]> = senders.into();
        receivers
            .into_iter()
            .enumerate()
            .map(|(me, rx)| {
                let spread = Spread {
                    me,
                    loads: loads.clone(),
                    inboxes: inboxes.clone(),
                };
                (Some(spread), Some(rx))
            })
            .collect()
    }

    /// The worker a new connection runs on, already counted in its load.
    fn place(&self) -> Counted {
        let mine = self.loads[self.me].0.load(Ordering::Relaxed);
        let (least, target) = least_loaded(&self.loads);
        self.count(if mine > least + 1 { target } else { self.me })
    }

    fn count(&self, worker: usize) -> Counted {
        self.loads[worker].0.fetch_add(1, Ordering::Relaxed);
        Counted {
            loads: self.loads.clone(),
            worker,
        }
    }
}

/// (load, index) of the least loaded worker, the first one on ties.
fn least_loaded(loads: &[Load]) -> (usize, usize) {
    let mut best = (usize::MAX, 0);
    for (i, l) in loads.iter().enumerate() {
        let n = l.0.load(Ordering::Relaxed);
        if n < best.0 {
            best = (n, i);
        }
    }
    best
}

/// Accepts until the process stops or the listener is closed by a reload,
/// then drains the accept queue (see the module docs) and closes the socket.
/// `ends`: the process stop and this listener's close switch.
async fn accept_loop(
    listener: TcpListener,
    mut snap: Arc<Snapshot>,
    mut fe: usize,
    ends: [watch::Receiver<bool>; 2],
    home: Home,
) {
    // Connections of this listener learn through `drain` that it is closing;
    // every connection task holds the sender so that it stays readable.
    let (drain_tx, drain_rx) = watch::channel(false);
    let drain_tx = Arc::new(drain_tx);
    let [mut stop, mut close] = ends;
    let held = crate::handover::Held::new(&listener);
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = stop.wait_for(|s| *s) => break,
            _ = close.wait_for(|s| *s) => break,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(_) => {
                // Out of file descriptors and the like: back off briefly.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        reload::follow(&mut snap, &mut fe);
        // `maxconn` (frontend, then global): the accepted connection is not
        // served, and this listener accepts nothing more, until a slot frees
        // up. (HAProxy leaves them in the backlog instead; with one listener
        // per thread, holding a slot while waiting in accept() would strand
        // slots on idle listeners.) While it waits, the connection of this
        // worker that has waited longest for a request head gives up its
        // slot (`proxy::pressure`). A connection already accepted when the
        // listener starts draining is served without waiting.
        let limits = [snap.frontends[fe].conns.clone(), snap.global_conns.clone()];
        let mut permits = Vec::with_capacity(2);
        let mut ending = false;
        'limits: for sem in limits.into_iter().flatten() {
            loop {
                match sem.clone().try_acquire_owned() {
                    Ok(p) => {
                        permits.push(p);
                        break;
                    }
                    Err(tokio::sync::TryAcquireError::Closed) => break,
                    Err(tokio::sync::TryAcquireError::NoPermits) => {}
                }
                let again = proxy::pressure::relieve(&sem, std::time::Instant::now());
                tokio::select! {
                    p = sem.clone().acquire_owned() => {
                        permits.extend(p.ok());
                        break;
                    }
                    _ = tokio::time::sleep_until(again.into()) => {}
                    _ = stop.wait_for(|s| *s) => { ending = true; break 'limits }
                    _ = close.wait_for(|s| *s) => { ending = true; break 'limits }
                }
            }
        }
        if ending {
            let _ = drain_tx.send(true);
        }
        let conn = Accepted {
            stream: Sock::Registered(stream),
            peer,
            snap: snap.clone(),
            fe,
            drain: (drain_tx.clone(), drain_rx.clone()),
            permits,
            counted: None,
        };
        if ending {
            home.keep(conn);
            break;
        }
        home.dispatch(conn);
    }
    let _ = drain_tx.send(true);
    if held.release() {
        // Handed over: the queue belongs to the newer process's socket.
        return;
    }
    let Ok(listener) = listener.into_std() else {
        return;
    };
    // No new connection may be completed into this socket's queue from now on.
    let _ = SockRef::from(&listener).listen(0);
    loop {
        match listener.accept() {
            Ok((stream, peer)) => {
                if stream.set_nonblocking(true).is_err() {
                    continue;
                }
                reload::follow(&mut snap, &mut fe);
                home.keep(Accepted {
                    stream: Sock::Moving(stream),
                    peer,
                    snap: snap.clone(),
                    fe,
                    drain: (drain_tx.clone(), drain_rx.clone()),
                    permits: Vec::new(),
                    counted: None,
                });
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == ErrorKind::ConnectionAborted => continue,
            Err(_) => break,
        }
    }
    drop(listener);
}

/// A client socket, registered with the accepting worker's runtime or
/// on its way to another worker's (non-blocking, registered by [`Accepted::start`]).
enum Sock {
    Registered(TcpStream),
    Moving(StdStream),
}

/// An accepted client connection and everything its task needs; `Send`, so
/// that a worker can hand it to another one.
struct Accepted {
    stream: Sock,
    peer: SocketAddr,
    snap: Arc<Snapshot>,
    fe: usize,
    /// The listener's drain switch; the connection holds the sender so that
    /// the receiver stays readable.
    drain: (Arc<watch::Sender<bool>>, watch::Receiver<bool>),
    /// `maxconn` slots, held until the connection ends.
    permits: Vec<OwnedSemaphorePermit>,
    /// Its place in the worker loads (`nbthread` > 1).
    counted: Option<Counted>,
}

impl Accepted {
    /// Starts the connection's task on the current runtime; `done` (its
    /// worker's) is held until the task ends.
    fn start(self, done: &mpsc::Sender<()>) {
        let stream = match self.stream {
            Sock::Registered(s) => s,
            Sock::Moving(s) => match TcpStream::from_std(s) {
                Ok(s) => s,
                Err(_) => return,
            },
        };
        let local = stream.local_addr().unwrap_or(self.peer);
        let cx = ConnCtx {
            snap: self.snap,
            fe: self.fe,
            peer: self.peer,
            local,
            shutdown: self.drain.1,
        };
        // Registered on the worker that runs the connection.
        let slot = proxy::pressure::Guard::register(&self.permits);
        let held = (self.permits, self.drain.0, self.counted, done.clone());
        tokio::spawn(async move {
            proxy::serve(stream, cx, slot).await;
            drop(held);
        });
    }
}

/// HAProxy's soft-stop messages: one line per proxy, a frontend and a backend
/// of the same name (a `listen` section) on one line.
fn report_stopped_proxies(snap: &Snapshot) {
    use std::sync::atomic::Ordering::Relaxed;
    let mut shown: Vec<&str> = Vec::new();
    for fe in &snap.frontends {
        let be = snap.backends.iter().find(|b| b.cfg.name == fe.cfg.name);
        let fe_conns = fe.counters.connections.load(Relaxed);
        let be_conns = be.map_or(0, |b| b.counters.requests.load(Relaxed));
        observability::warning(&format!(
            "Proxy {} stopped (cumulated conns: FE: {fe_conns}, BE: {be_conns}).",
            fe.cfg.name
        ));
        shown.push(&fe.cfg.name);
    }
    for be in snap
        .backends
        .iter()
        .filter(|b| !shown.contains(&b.cfg.name.as_str()))
    {
        let be_conns = be.counters.requests.load(Relaxed);
        observability::warning(&format!(
            "Proxy {} stopped (cumulated conns: FE: 0, BE: {be_conns}).",
            be.cfg.name
        ));
    }
}

/// What a signal asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    /// SIGTERM / SIGINT.
    Hard,
    /// SIGUSR1 (`-sf` from a newer process).
    Soft,
    /// SIGHUP.
    Reload,
}

/// SIGTERM, SIGINT, SIGUSR1 and SIGHUP handlers, installed before anything
/// listens.
struct Signals(Option<[tokio::signal::unix::Signal; 4]>);

impl Signals {
    fn register() -> Self {
        use tokio::signal::unix::{signal, SignalKind};
        let kinds = [
            SignalKind::terminate(),
            SignalKind::interrupt(),
            SignalKind::user_defined1(),
            SignalKind::hangup(),
        ];
        let [a, b, c, d] = kinds.map(signal);
        match (a, b, c, d) {
            (Ok(a), Ok(b), Ok(c), Ok(d)) => Signals(Some([a, b, c, d])),
            _ => Signals(None),
        }
    }

    async fn next(&mut self) -> Event {
        let Some([term, int, usr1, hup]) = self.0.as_mut() else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => Event::Hard,
            _ = int.recv() => Event::Hard,
            _ = usr1.recv() => Event::Soft,
            _ = hup.recv() => Event::Reload,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loads(
        spreads: &[(Option<Spread>, Option<mpsc::UnboundedReceiver<Accepted>>)],
    ) -> Vec<usize> {
        let s = spreads[0].0.as_ref().unwrap();
        s.loads
            .iter()
            .map(|l| l.0.load(Ordering::Relaxed))
            .collect()
    }

    #[test]
    fn one_worker_has_no_spread() {
        let spreads = Spread::for_workers(1);
        assert_eq!(spreads.len(), 1);
        assert!(spreads[0].0.is_none() && spreads[0].1.is_none());
    }

    #[test]
    fn a_burst_on_one_socket_is_shared_within_two() {
        // The kernel's hash can send every connection to one socket.
        let spreads = Spread::for_workers(2);
        let accepting = spreads[0].0.as_ref().unwrap();
        let held: Vec<Counted> = (0..64).map(|_| accepting.place()).collect();
        let l = loads(&spreads);
        assert_eq!(l.iter().sum::<usize>(), 64);
        assert!(l[0].abs_diff(l[1]) <= 2, "{l:?}");
        drop(held);
        assert_eq!(loads(&spreads), vec![0, 0], "counts return to zero");
    }

    #[test]
    fn arrivals_even_out_what_departures_unbalanced() {
        let spreads = Spread::for_workers(3);
        let place = |at: usize| spreads[at].0.as_ref().unwrap().place();
        let mut rng = fastrand::Rng::with_seed(7);
        let mut open: Vec<Counted> = Vec::new();
        for _ in 0..5000 {
            // Two thirds of the arrivals land on worker 0's socket, the rest
            // on worker 2's, none on worker 1's; a quarter of the steps end
            // a random connection.
            open.push(place(if rng.u8(0..3) < 2 { 0 } else { 2 }));
            if rng.u8(0..4) == 0 {
                open.swap_remove(rng.usize(..open.len()));
            }
            assert_eq!(loads(&spreads).iter().sum::<usize>(), open.len());
        }
        // Whatever the departures left, arrivals on one socket close the gap.
        for _ in 0..500 {
            open.push(place(0));
        }
        let l = loads(&spreads);
        assert!(
            l.iter().max().unwrap() - l.iter().min().unwrap() <= 2,
            "{l:?}"
        );
        assert!(
            l[1] > 0,
            "worker 1 gets connections without a socket of its own"
        );
    }

    #[test]
    fn least_loaded_prefers_the_first_on_ties() {
        let loads: Vec<Load> = [3, 1, 1, 2]
            .into_iter()
            .map(|n| Load(AtomicUsize::new(n)))
            .collect();
        assert_eq!(least_loaded(&loads), (1, 1));
    }
}
