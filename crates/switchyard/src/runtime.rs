//! Process runtime: listeners, worker threads, health checks, signals, shutdown.
//!
//! Layout: `nbthread` worker OS threads, each with a current-thread tokio
//! runtime and its own `SO_REUSEPORT` listening socket per bind address (the
//! kernel spreads connections across them); no work stealing, no cross-thread
//! wake-up on the hot path. The main thread runs a small runtime for health
//! checks and signal handling.
//!
//! `nbthread` defaults to the number of CPUs the process may use, like
//! HAProxy 2.6. SIGTERM or SIGINT: every listener closes at once, idle
//! keep-alive connections close, requests in flight finish (their connection
//! closes after the response), and the process exits 0 once all connections are
//! gone or after [`GRACE`], whichever comes first.

use std::net::{SocketAddr, TcpListener as StdListener};
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use crate::observability;
use crate::proxy::{self, ConnCtx};
use crate::snapshot::Snapshot;

/// Longest wait for in-flight requests after SIGTERM/SIGINT.
pub const GRACE: Duration = Duration::from_secs(10);
const BACKLOG: i32 = 4096;

/// One bound listening socket and the frontend it serves.
struct Bound {
    fe: usize,
    listener: StdListener,
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
/// newer process started with `-sf`). Bind failures are reported HAProxy-style
/// and returned.
pub fn run(snap: Arc<Snapshot>, on_bound: impl FnOnce()) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start runtime: {e}"))?;
    // Signal handlers first: once a listener is bound, clients (and service
    // managers) may already talk to us, and a signal must never find the
    // default action (death) in place.
    let signals = {
        let _guard = rt.enter();
        Signals::register()
    };
    let threads = thread_count(&snap);
    let mut per_thread = Vec::with_capacity(threads);
    for _ in 0..threads {
        per_thread.push(bind_all(&snap)?);
    }
    on_bound();
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut workers = Vec::with_capacity(threads);
    for (i, bound) in per_thread.into_iter().enumerate() {
        let snap = snap.clone();
        let stop = stop_rx.clone();
        let handle = std::thread::Builder::new()
            .name(format!("switchyard-w{i}"))
            .spawn(move || worker(snap, bound, stop))
            .map_err(|e| format!("cannot start worker thread: {e}"))?;
        workers.push(handle);
    }
    rt.block_on(async {
        crate::health::start(&snap, stop_rx.clone());
        if signals.wait().await == Stop::Soft {
            report_stopped_proxies(&snap);
        }
        let _ = stop_tx.send(true);
    });
    for w in workers {
        let _ = w.join();
    }
    Ok(())
}

fn bind_all(snap: &Snapshot) -> Result<Vec<Bound>, String> {
    let mut out = Vec::new();
    for (fe_index, fe) in snap.frontends.iter().enumerate() {
        for bind in &fe.cfg.binds {
            for addr in &bind.addrs {
                let listener = bind_one(*addr).map_err(|e| {
                    let text = e.to_string();
                    let reason = text.split(" (os error").next().unwrap_or(&text);
                    observability::alert(&format!(
                        "Binding [{}] for frontend {}: cannot bind socket ({reason}) for [{addr}]",
                        bind.loc, fe.cfg.name
                    ));
                    let exit = "[switchyard.main()] Some protocols failed to start their listeners! Exiting.";
                    observability::alert(exit);
                    exit.to_string()
                })?;
                out.push(Bound {
                    fe: fe_index,
                    listener,
                });
            }
        }
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

fn worker(snap: Arc<Snapshot>, bound: Vec<Bound>, stop: watch::Receiver<bool>) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            observability::alert(&format!("cannot start worker runtime: {e}"));
            return;
        }
    };
    rt.block_on(async move {
        let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
        for b in bound {
            let Ok(listener) = TcpListener::from_std(b.listener) else {
                continue;
            };
            tokio::spawn(accept_loop(
                listener,
                snap.clone(),
                b.fe,
                stop.clone(),
                done_tx.clone(),
            ));
        }
        drop(done_tx);
        // Not tracked by `done`: it ends with the runtime.
        let purge = tokio::spawn(crate::proxy::upstream::purge_idle());
        // Every accept loop and connection task holds a sender: recv() returns
        // None once they are all gone.
        let mut stop_wait = stop.clone();
        let _ = stop_wait.wait_for(|s| *s).await;
        let _ = tokio::time::timeout(GRACE, done_rx.recv()).await;
        purge.abort();
    });
}

async fn accept_loop(
    listener: TcpListener,
    snap: Arc<Snapshot>,
    fe: usize,
    mut stop: watch::Receiver<bool>,
    done: mpsc::Sender<()>,
) {
    let limits = [snap.frontends[fe].conns.clone(), snap.global_conns.clone()];
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = stop.wait_for(|s| *s) => break,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(_) => {
                // Out of file descriptors and the like: back off briefly.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        // `maxconn` (frontend, then global): the accepted connection is not
        // served, and this listener accepts nothing more, until a slot frees
        // up. (HAProxy leaves them in the backlog instead; with one listener
        // per thread, holding a slot while waiting in accept() would strand
        // slots on idle listeners.)
        let mut permits = Vec::with_capacity(2);
        for sem in limits.iter().flatten() {
            tokio::select! {
                p = sem.clone().acquire_owned() => permits.extend(p.ok()),
                _ = stop.wait_for(|s| *s) => return,
            }
        }
        let local = stream.local_addr().unwrap_or(peer);
        let cx = ConnCtx {
            snap: snap.clone(),
            fe,
            peer,
            local,
            shutdown: stop.clone(),
        };
        let done = done.clone();
        tokio::spawn(async move {
            proxy::serve(stream, cx).await;
            drop(permits);
            drop(done);
        });
    }
}

/// How the process was asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// SIGTERM / SIGINT.
    Hard,
    /// SIGUSR1 (`-sf` from a newer process).
    Soft,
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

/// SIGTERM, SIGINT and SIGUSR1 handlers, installed before anything listens.
struct Signals(Option<[tokio::signal::unix::Signal; 3]>);

impl Signals {
    fn register() -> Self {
        use tokio::signal::unix::{signal, SignalKind};
        let kinds = [
            SignalKind::terminate(),
            SignalKind::interrupt(),
            SignalKind::user_defined1(),
        ];
        let [a, b, c] = kinds.map(signal);
        match (a, b, c) {
            (Ok(a), Ok(b), Ok(c)) => Signals(Some([a, b, c])),
            _ => Signals(None),
        }
    }

    async fn wait(self) -> Stop {
        let Some([mut term, mut int, mut usr1]) = self.0 else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => Stop::Hard,
            _ = int.recv() => Stop::Hard,
            _ = usr1.recv() => Stop::Soft,
        }
    }
}
