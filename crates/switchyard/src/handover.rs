//! Listener hand-over between an old and a new process (`-sf`, `-st`, `-x`):
//! the new process accepts on the old process's very listening sockets
//! instead of binding sockets of its own, so that no connection queued in an
//! old socket is reset when the old process stops.
//!
//! Why: with two `SO_REUSEPORT` groups of sockets, the kernel spreads new
//! connections over the old process's sockets as well as the new one's; when
//! the old process stops it must shrink and empty its queues and close them,
//! and a connection completed into one of them between the last `accept` and
//! the `close` is reset (HAProxy's legacy `-sf` has the same window; HAProxy
//! closes it with `-x` and `stats socket ... expose-fd listeners`). A socket
//! passed with `SCM_RIGHTS` is one kernel object held by both processes: its
//! queue belongs to whoever still holds it, so the old process just closes
//! its descriptor and the new one keeps serving the queue.
//!
//! Design:
//! * Every running process listens on a private abstract unix socket,
//!   `@switchyard.handover.<pid>` (`SOCK_SEQPACKET`, so that each message and
//!   the descriptor it carries arrive together). Zero configuration: a user
//!   who only passes `-sf PID` (or `-st PID`) gets the hand-over, because the
//!   new process can find the old one's socket from its pid alone. An
//!   abstract name needs no writable directory and disappears with the
//!   process (no stale file to clean up after a crash).
//! * `-x <path>` (HAProxy's spelling): `path` is the old process's `stats
//!   socket`. The new process connects to it only to learn, with
//!   `SO_PEERCRED`, which process serves it; it then asks that process's
//!   private socket, telling it the path, and the old process agrees only if
//!   one of its `stats socket` lines at that path has `expose-fd listeners`
//!   (HAProxy's opt-in). As in HAProxy, a failing `-x` is fatal (exit 1);
//!   `-x /dev/null` turns the hand-over off. The descriptors travel over the
//!   private socket rather than the stats socket itself, so the runtime API's
//!   command loop stays free of descriptor passing (HAProxy's `_getsocks`
//!   command is not served: a switchyard process cannot take over from a
//!   HAProxy one, nor the reverse).
//! * Safety: the old process serves only peers of its own effective uid
//!   (`SO_PEERCRED` on the accepted connection, checked before anything is
//!   read); the new process checks that the socket it reached is held by the
//!   pid it asked and by its own uid (no other user can squat the name and
//!   feed it sockets). Every received descriptor must be a listening TCP
//!   socket, and only those whose local address equals a `bind` address of
//!   the new configuration are kept; the others are closed at once (the old
//!   process still holds and drains them). Every wait is bounded:
//!   [`ANSWER_WAIT`] for each answer, [`COMMIT_WAIT`] for the old process to
//!   hear that the new one is listening.
//! * Fallback: when no old process answers (not a switchyard process, too old
//!   a version, stopping, silent), the new process warns and binds fresh
//!   sockets, which is the behaviour without hand-over.
//! * Threads: the old process's sockets for an address are taken one per
//!   worker thread in order; with fewer threads than the old process the
//!   extra sockets are spread over the threads (a thread then accepts on two
//!   sockets of one address: every socket of a `SO_REUSEPORT` group gets
//!   connections and must be accepted on); with more, the missing ones are
//!   bound fresh and join the same group.
//! * Old process: a socket is marked handed over when it is sent, and stays
//!   so if the new process confirms it kept it (`DONE`, sent before the new
//!   process signals `-sf`); when the confirmation does not come, it becomes
//!   the old process's alone again. On stop, a handed-over socket is closed
//!   without `listen(fd, 0)` and without draining its queue (both would act
//!   on the shared socket that the new process serves); the others drain as
//!   before (see [`crate::runtime`]).
//!
//! Protocol (text messages, one descriptor per `FD` message):
//! `switchyard-handover 1` [`\nstats <path>`] ->; <- `COUNT n` | `ERR <why>`;
//! <- n x `FD <id> <addr>` + descriptor; -> `DONE <id>...`; <- `OK`.
//!
//! Known limits: a new process that confirmed and later dies leaves the old
//! one believing the sockets are shared, so a later stop of the old process
//! does not drain them. Processes in different pid namespaces sharing a
//! network namespace may collide on the name; the pid check then refuses the
//! hand-over and the new process binds fresh sockets.

use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use rustix::net::sockopt::{self, Timeout};
use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, SocketAddrUnix, SocketFlags, SocketType,
};

use crate::observability;

/// Longest wait for each answer of the other process.
pub const ANSWER_WAIT: Duration = Duration::from_secs(1);
/// How long the old process waits for the new one to say which sockets it
/// kept (the new process binds its other addresses in between).
pub const COMMIT_WAIT: Duration = Duration::from_secs(5);

const PROTOCOL: &str = "switchyard-handover 1";
const MAX_MESSAGE: usize = 4096;

/// Where the new process takes its sockets from, as given on the command
/// line ([`crate::cli::parse_args`] records it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sources {
    /// `-sf` and `-st` pids, asked in order.
    pub pids: Vec<u32>,
    /// `-x <path>`: the old process's stats socket (`/dev/null`: no hand-over).
    pub stats_socket: Option<PathBuf>,
}

static SOURCES: OnceLock<Sources> = OnceLock::new();

/// Records the command line's sources (first call wins).
pub fn set_sources(sources: Sources) {
    let _ = SOURCES.set(sources);
}

/// The abstract name of process `pid`'s hand-over socket.
fn name(pid: u32) -> io::Result<SocketAddrUnix> {
    Ok(SocketAddrUnix::new_abstract_name(
        format!("switchyard.handover.{pid}").as_bytes(),
    )?)
}

fn seqpacket() -> io::Result<OwnedFd> {
    Ok(rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )?)
}

fn set_waits(conn: &OwnedFd, wait: Duration) {
    let _ = sockopt::set_socket_timeout(conn, Timeout::Recv, Some(wait));
    let _ = sockopt::set_socket_timeout(conn, Timeout::Send, Some(wait));
}

/// Sends one message, with `fd` attached when given.
fn send(conn: &OwnedFd, text: &str, fd: Option<&OwnedFd>) -> io::Result<()> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    let fds;
    if let Some(fd) = fd {
        fds = [fd.as_fd()];
        control.push(SendAncillaryMessage::ScmRights(&fds));
    }
    rustix::net::sendmsg(
        conn,
        &[IoSlice::new(text.as_bytes())],
        &mut control,
        SendFlags::NOSIGNAL,
    )?;
    Ok(())
}

/// Receives one message and the descriptors it carries; end of stream and
/// time-outs are errors.
fn recv(conn: &OwnedFd) -> io::Result<(String, Vec<OwnedFd>)> {
    let mut buf = [0u8; MAX_MESSAGE];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(4))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let got = rustix::net::recvmsg(
        conn,
        &mut [IoSliceMut::new(&mut buf)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )?;
    let mut fds = Vec::new();
    for msg in control.drain() {
        if let RecvAncillaryMessage::ScmRights(received) = msg {
            fds.extend(received);
        }
    }
    if got.bytes == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    let text = String::from_utf8_lossy(&buf[..got.bytes.min(buf.len())]).into_owned();
    Ok((text, fds))
}

/// A time-out reads better as such than as EAGAIN.
fn why(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            format!("no answer within {} ms", ANSWER_WAIT.as_millis())
        }
        io::ErrorKind::UnexpectedEof => "connection closed".into(),
        _ => e.to_string(),
    }
}

// === The old process: listeners it may hand over ===

/// The socket is this process's alone.
const OURS: u8 = 0;
/// Sent to a new process that has not confirmed yet.
const OFFERED: u8 = 1;
/// The new process confirmed it accepts on it.
const GIVEN: u8 = 2;

struct Entry {
    id: u64,
    addr: SocketAddr,
    /// A duplicate of the listener's descriptor, to send.
    fd: OwnedFd,
    state: Arc<AtomicU8>,
}

static REGISTRY: Mutex<Vec<Entry>> = Mutex::new(Vec::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(1);
static STOPPING: AtomicBool = AtomicBool::new(false);

fn registry() -> std::sync::MutexGuard<'static, Vec<Entry>> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// A listening socket this process accepts on, offered to a successor while
/// it is held (from the start of its accept loop until [`Held::release`]).
#[derive(Debug)]
pub struct Held {
    id: u64,
    state: Arc<AtomicU8>,
}

impl Held {
    /// Registers `listener` (a duplicate of its descriptor is kept to be sent).
    pub fn new(listener: &impl AsFd) -> Held {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let state = Arc::new(AtomicU8::new(OURS));
        let entry = listener
            .as_fd()
            .try_clone_to_owned()
            .map(StdListener::from)
            .and_then(|l| Ok((l.local_addr()?, OwnedFd::from(l))));
        if let Ok((addr, fd)) = entry {
            registry().push(Entry {
                id,
                addr,
                fd,
                state: state.clone(),
            });
        }
        Held { id, state }
    }

    /// Ends the registration. `true` when the socket was handed over to a
    /// newer process: its queue is that process's, so the caller must close
    /// its descriptor without shrinking the backlog or draining the queue.
    pub fn release(self) -> bool {
        let mut reg = registry();
        reg.retain(|e| e.id != self.id);
        self.state.load(Ordering::Acquire) != OURS
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        registry().retain(|e| e.id != self.id);
    }
}

/// Starts answering hand-over requests on `@switchyard.handover.<pid>`: a
/// task on the current (main) runtime waits for them, and each request is
/// served on tokio's blocking pool (its waits are bounded), so the process
/// runs no thread of its own for this while nobody asks (`nbthread 1` is one
/// thread). Must be called inside a runtime context.
/// A failure is a warning: this process then cannot hand its sockets over.
pub fn serve() {
    let listener = seqpacket().and_then(|fd| {
        rustix::net::bind(&fd, &name(std::process::id())?)?;
        rustix::net::listen(&fd, 16)?;
        rustix::io::ioctl_fionbio(&fd, true)?;
        Ok(fd)
    });
    // `AsyncFd::new` is deprecated because a borrowed descriptor could be
    // closed while registered; here the `OwnedFd` moves into the `AsyncFd` and
    // lives exactly as long as the registration (its replacement,
    // `AsyncFd::register`, is `unsafe`, which this crate forbids).
    #[allow(deprecated)]
    let listener = match listener.and_then(tokio::io::unix::AsyncFd::new) {
        Ok(l) => l,
        Err(e) => {
            observability::warning(&format!(
                "cannot listen for listener hand-over requests (@switchyard.handover.{}): {e}; a process started with -sf will bind new sockets.",
                std::process::id()
            ));
            return;
        }
    };
    tokio::spawn(async move {
        loop {
            let Ok(mut ready) = listener.readable().await else {
                return;
            };
            match rustix::net::accept_with(listener.get_ref(), SocketFlags::CLOEXEC) {
                // Accepted sockets do not inherit O_NONBLOCK: `serve_one`
                // uses blocking calls bounded by SO_RCVTIMEO/SO_SNDTIMEO.
                Ok(conn) => {
                    let served = tokio::task::spawn_blocking(move || serve_one(&conn));
                    // One request at a time, as before: a second new process
                    // waits until the first one's exchange is over.
                    let _ = served.await;
                }
                Err(rustix::io::Errno::WOULDBLOCK) => ready.clear_ready(),
                Err(rustix::io::Errno::INTR | rustix::io::Errno::CONNABORTED) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
}

/// The process stops: requests are refused from now on.
pub fn stop() {
    STOPPING.store(true, Ordering::SeqCst);
}

fn serve_one(conn: &OwnedFd) {
    set_waits(conn, ANSWER_WAIT);
    let Ok(peer) = sockopt::socket_peercred(conn) else {
        return;
    };
    let peer_pid = peer.pid.as_raw_pid();
    if peer.uid != rustix::process::geteuid() {
        observability::warning(&format!(
            "refused to hand listening sockets over to process {peer_pid} of uid {}: not our user.",
            peer.uid.as_raw()
        ));
        let _ = send(conn, "ERR not the same user", None);
        return;
    }
    let Ok((hello, _)) = recv(conn) else { return };
    let mut lines = hello.lines();
    if lines.next() != Some(PROTOCOL) {
        let _ = send(conn, "ERR unknown protocol", None);
        return;
    }
    if STOPPING.load(Ordering::SeqCst) {
        let _ = send(conn, "ERR stopping", None);
        return;
    }
    if let Some(path) = lines.find_map(|l| l.strip_prefix("stats ")) {
        if !exposes(Path::new(path)) {
            let text = format!(
                "ERR the stats socket '{path}' of process {} has no 'expose-fd listeners'",
                std::process::id()
            );
            let _ = send(conn, &text, None);
            return;
        }
    }
    let offered: Vec<(u64, SocketAddr, OwnedFd, Arc<AtomicU8>)> = registry()
        .iter()
        .filter_map(|e| {
            let fd = e.fd.try_clone().ok()?;
            e.state.store(OFFERED, Ordering::Release);
            Some((e.id, e.addr, fd, e.state.clone()))
        })
        .collect();
    let sent = send(conn, &format!("COUNT {}", offered.len()), None).and_then(|()| {
        offered
            .iter()
            .try_for_each(|(id, addr, fd, _)| send(conn, &format!("FD {id} {addr}"), Some(fd)))
    });
    let kept: Vec<u64> = match sent {
        Ok(()) => {
            set_waits(conn, COMMIT_WAIT);
            match recv(conn) {
                Ok((done, _)) => done
                    .strip_prefix("DONE")
                    .map(|ids| ids.split_whitespace().filter_map(|i| i.parse().ok()))
                    .into_iter()
                    .flatten()
                    .collect(),
                Err(_) => Vec::new(),
            }
        }
        Err(_) => Vec::new(),
    };
    for (id, _, _, state) in &offered {
        let now = if kept.contains(id) { GIVEN } else { OURS };
        state.store(now, Ordering::Release);
    }
    if !kept.is_empty() {
        let _ = send(conn, "OK", None);
        observability::notice(&format!(
            "handed {} listening socket(s) over to process {peer_pid}.",
            kept.len()
        ));
    }
}

/// Whether a `stats socket` at `path` of the running configuration has
/// `expose-fd listeners`.
fn exposes(path: &Path) -> bool {
    let Some(snap) = crate::reload::current() else {
        return false;
    };
    let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let wanted = canonical(path);
    snap.config.global.stats_sockets.iter().any(|s| {
        let own = s.address.strip_prefix("unix@").unwrap_or(&s.address);
        s.expose_fd_listeners && canonical(Path::new(own)) == wanted
    })
}

// === The new process: sockets it took ===

struct Taken {
    id: u64,
    addr: SocketAddr,
    listener: Option<StdListener>,
}

struct Inherited {
    conn: OwnedFd,
    pid: u32,
    socks: Vec<Taken>,
    kept: Vec<u64>,
}

static INHERITED: Mutex<Option<Inherited>> = Mutex::new(None);

fn inherited() -> std::sync::MutexGuard<'static, Option<Inherited>> {
    INHERITED.lock().unwrap_or_else(|e| e.into_inner())
}

/// Before binding: takes the listening sockets of the old process (from
/// [`set_sources`]) whose address is one of `addrs`. With `-x`, a failure is
/// reported as HAProxy does and returned (the process must exit 1); with
/// `-sf`/`-st` it is a warning and the process binds new sockets.
pub fn fetch(addrs: &[SocketAddr]) -> Result<(), String> {
    let Some(sources) = SOURCES.get() else {
        return Ok(());
    };
    if let Some(path) = &sources.stats_socket {
        if path == Path::new("/dev/null") {
            return Ok(());
        }
        return match ask_via(path, addrs) {
            Ok(got) => {
                *inherited() = Some(got);
                Ok(())
            }
            Err(e) => {
                const FAILED: &str = "Failed to get the sockets from the old process!";
                observability::warning(&e);
                observability::alert(FAILED);
                Err(FAILED.into())
            }
        };
    }
    let mut reasons = Vec::new();
    for &pid in &sources.pids {
        match ask(pid, None, addrs) {
            Ok(got) => {
                *inherited() = Some(got);
                return Ok(());
            }
            Err(e) => reasons.push(format!("process {pid}: {e}")),
        }
    }
    if !reasons.is_empty() {
        observability::warning(&format!(
            "could not take the listening sockets over ({}): binding new ones; connections still queued in the old process's sockets when it stops may be reset.",
            reasons.join("; ")
        ));
    }
    Ok(())
}

/// `-x`: finds the process serving the stats socket at `path`, then asks it.
fn ask_via(path: &Path, addrs: &[SocketAddr]) -> Result<Inherited, String> {
    let stats = UnixStream::connect(path).map_err(|_| {
        format!(
            "Failed to connect to the old process socket '{}'",
            path.display()
        )
    })?;
    let cred = sockopt::socket_peercred(&stats).map_err(|e| {
        format!(
            "cannot identify the process serving '{}': {e}",
            path.display()
        )
    })?;
    drop(stats);
    if cred.uid != rustix::process::geteuid() {
        return Err(format!(
            "the old process socket '{}' belongs to uid {}, not to ours",
            path.display(),
            cred.uid.as_raw()
        ));
    }
    let pid = u32::try_from(cred.pid.as_raw_pid()).unwrap_or(0);
    ask(pid, Some(path), addrs).map_err(|e| {
        format!(
            "Failed to get the listening sockets of process {pid} through '{}': {e}",
            path.display()
        )
    })
}

/// Asks process `pid` for its listening sockets; keeps those bound to one of
/// `addrs`.
fn ask(pid: u32, via: Option<&Path>, addrs: &[SocketAddr]) -> Result<Inherited, String> {
    let conn = seqpacket().map_err(|e| e.to_string())?;
    set_waits(&conn, ANSWER_WAIT);
    let target = name(pid).map_err(|e| e.to_string())?;
    rustix::net::connect(&conn, &target)
        .map_err(|e| format!("no hand-over socket ({e}): not a running switchyard process"))?;
    let cred = sockopt::socket_peercred(&conn).map_err(|e| e.to_string())?;
    let ours = rustix::process::geteuid();
    if cred.uid != ours {
        return Err(format!(
            "its hand-over socket belongs to uid {}, not to ours ({})",
            cred.uid.as_raw(),
            ours.as_raw()
        ));
    }
    if i64::from(cred.pid.as_raw_pid()) != i64::from(pid) {
        return Err(format!(
            "its hand-over socket is held by process {}",
            cred.pid.as_raw_pid()
        ));
    }
    let mut hello = PROTOCOL.to_string();
    if let Some(path) = via {
        hello.push_str(&format!("\nstats {}", path.display()));
    }
    send(&conn, &hello, None).map_err(|e| why(&e))?;
    let (answer, _) = recv(&conn).map_err(|e| why(&e))?;
    if let Some(reason) = answer.strip_prefix("ERR ") {
        return Err(reason.to_string());
    }
    let count: usize = answer
        .strip_prefix("COUNT ")
        .and_then(|n| n.trim().parse().ok())
        .ok_or_else(|| format!("unexpected answer '{answer}'"))?;
    let mut socks = Vec::with_capacity(count);
    for _ in 0..count {
        let (text, mut fds) = recv(&conn).map_err(|e| why(&e))?;
        let id = text
            .strip_prefix("FD ")
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|id| id.parse::<u64>().ok())
            .ok_or_else(|| format!("unexpected message '{text}'"))?;
        let Some(fd) = fds.pop() else {
            return Err(format!("message '{text}' came without a descriptor"));
        };
        if let Some((addr, listener)) = listening_tcp(fd).filter(|(a, _)| addrs.contains(a)) {
            socks.push(Taken {
                id,
                addr,
                listener: Some(listener),
            });
        }
    }
    Ok(Inherited {
        conn,
        pid,
        socks,
        kept: Vec::new(),
    })
}

/// `fd` as a listening TCP socket and its address; `None` (and closed) if it
/// is anything else.
fn listening_tcp(fd: OwnedFd) -> Option<(SocketAddr, StdListener)> {
    let stream = sockopt::socket_type(&fd).ok()? == SocketType::STREAM;
    if !stream || !sockopt::socket_acceptconn(&fd).ok()? {
        return None;
    }
    let listener = StdListener::from(fd);
    let addr = listener.local_addr().ok()?;
    listener.set_nonblocking(true).ok()?;
    Some((addr, listener))
}

/// The next inherited socket bound to `addr` (one call per worker thread).
pub fn take(addr: SocketAddr) -> Option<StdListener> {
    let mut guard = inherited();
    let got = guard.as_mut()?;
    let t = got
        .socks
        .iter_mut()
        .find(|t| t.addr == addr && t.listener.is_some())?;
    got.kept.push(t.id);
    t.listener.take()
}

/// The inherited sockets [`take`] did not give out (the old process had more
/// threads), each with the worker thread (of `threads`) to accept on it.
pub fn leftovers(threads: usize) -> Vec<(usize, SocketAddr, StdListener)> {
    let mut guard = inherited();
    let Some(got) = guard.as_mut() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut per_addr: Vec<(SocketAddr, usize)> = Vec::new();
    for t in &mut got.socks {
        let Some(listener) = t.listener.take() else {
            continue;
        };
        let n = match per_addr.iter_mut().find(|(a, _)| *a == t.addr) {
            Some((_, n)) => {
                *n += 1;
                *n
            }
            None => {
                per_addr.push((t.addr, 0));
                0
            }
        };
        got.kept.push(t.id);
        out.push((n % threads.max(1), t.addr, listener));
    }
    out
}

/// Once every listener is bound, before the old processes are signalled:
/// tells the old process which sockets this one kept (from then on it closes
/// them without draining), waits for its acknowledgement (bounded), and
/// forgets the hand-over.
pub fn commit() {
    let Some(got) = inherited().take() else {
        return;
    };
    let ids: Vec<String> = got.kept.iter().map(u64::to_string).collect();
    let done = format!("DONE {}", ids.join(" "));
    if got.kept.is_empty() {
        let _ = send(&got.conn, &done, None);
        return;
    }
    let acked = send(&got.conn, &done, None)
        .and_then(|()| recv(&got.conn))
        .map(|(ok, _)| ok == "OK");
    match acked {
        Ok(true) => observability::notice(&format!(
            "took over {} listening socket(s) from process {}.",
            got.kept.len(),
            got.pid
        )),
        Ok(false) | Err(_) => observability::warning(&format!(
            "process {} did not acknowledge the hand-over of {} listening socket(s): it may reset what is queued in them when it stops.",
            got.pid,
            got.kept.len()
        )),
    }
}
