//! Connections to servers: connect under `timeout connect`, and a per-thread
//! LIFO pool of idle keep-alive connections.
//!
//! The pool is thread-local (each worker thread runs its own current-thread
//! runtime), so checkout and checkin never lock. A connection goes back to the
//! pool only after a complete, error-free exchange in keep-alive mode for a
//! request without body (a body the server did not read would desynchronise
//! the connection: the CL.0 attack); a pooled
//! connection is checked for liveness (no pending EOF or stray bytes) before reuse
//! and dropped after [`MAX_IDLE`] of inactivity.
//!
//! An idle pooled connection holds no read buffer (HAProxy's idle connections hold
//! none): its buffer, empty by then, goes back to the thread's [`bufpool`] at checkin,
//! and the connection takes one again when its next response is read. The liveness
//! check reads into a one-byte probe on the stack.

use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::net::TcpStream;

use super::bufpool;

/// Idle connections older than this are closed instead of reused (HAProxy's
/// `pool-purge-delay` default is 5 s).
pub const MAX_IDLE: Duration = Duration::from_secs(5);
/// At most this many idle connections are kept per server and thread. HAProxy's
/// `pool-max-conn` default is unlimited: the pool can only hold connections that
/// carried requests at the same time, so it is bounded by the load itself. A
/// cap of 64 made 1,000 keep-alive clients open a new server connection for
/// about half of their requests (`ka1000`: 0.46 `connect` per request against
/// HAProxy's 0.03); this one is a safety net.
const MAX_IDLE_PER_SERVER: usize = 4096;

/// A connection to a server with its read buffer.
#[derive(Debug)]
pub struct Upstream {
    pub stream: TcpStream,
    /// Without allocation until the first read, which takes a buffer from the
    /// thread's [`bufpool`] (`body::read_some*`).
    pub buf: BytesMut,
    /// Taken from the pool rather than freshly connected.
    pub reused: bool,
    pub addr: SocketAddr,
}

/// Why a connection attempt failed.
#[derive(Debug)]
pub enum ConnectError {
    /// The server answered with an error (refused, unreachable...).
    Refused(io::Error),
    /// `timeout connect` expired.
    Timeout,
}

/// An idle connection: its socket, without a read buffer.
struct Idle {
    stream: TcpStream,
    since: Instant,
}

/// Idle connections per server address. A backend has few servers, so a linear scan
/// beats hashing the address (SipHash was ~2% of the instructions per request).
type Pool = Vec<(SocketAddr, Vec<Idle>)>;

thread_local! {
    static POOL: RefCell<Pool> = const { RefCell::new(Vec::new()) };
}

fn list_mut(pool: &mut Pool, addr: SocketAddr) -> &mut Vec<Idle> {
    let i = match pool.iter().position(|(a, _)| *a == addr) {
        Some(i) => i,
        None => {
            pool.push((addr, Vec::new()));
            pool.len() - 1
        }
    };
    &mut pool[i].1
}

/// Takes a live idle connection to `addr` from this thread's pool; `now` is a clock
/// reading the caller already has.
pub fn checkout(addr: SocketAddr, now: Instant) -> Option<Upstream> {
    POOL.with(|p| {
        let mut pool = p.borrow_mut();
        let list = &mut pool.iter_mut().find(|(a, _)| *a == addr)?.1;
        while let Some(idle) = list.pop() {
            if now.saturating_duration_since(idle.since) < MAX_IDLE && is_idle_alive(&idle.stream) {
                return Some(Upstream {
                    stream: idle.stream,
                    buf: BytesMut::new(),
                    reused: true,
                    addr,
                });
            }
        }
        None
    })
}

/// Returns a connection whose last exchange completed cleanly, idle since `since` (a
/// clock reading the caller has; an earlier one only makes it expire sooner).
pub fn checkin(up: Upstream, since: Instant) {
    if !up.buf.is_empty() {
        return;
    }
    POOL.with(|p| {
        let mut pool = p.borrow_mut();
        let list = list_mut(&mut pool, up.addr);
        // LIFO: the oldest idle connections sit at the front.
        let stale = list
            .iter()
            .take_while(|i| since.saturating_duration_since(i.since) >= MAX_IDLE)
            .count();
        list.drain(..stale);
        if list.len() < MAX_IDLE_PER_SERVER {
            list.push(Idle {
                stream: up.stream,
                since,
            });
        }
    });
    bufpool::give(up.buf);
}

/// Closes this thread's idle connections that are too old or that the server
/// closed; runs forever (spawned once per worker thread).
pub async fn purge_idle() {
    let mut tick = tokio::time::interval(MAX_IDLE / 2);
    loop {
        tick.tick().await;
        let now = Instant::now();
        POOL.with(|p| {
            for (_, list) in p.borrow_mut().iter_mut() {
                list.retain(|i| now.duration_since(i.since) < MAX_IDLE && is_idle_alive(&i.stream));
            }
        });
    }
}

/// A thread's deferred closes are carried out at once when this many wait (under a load
/// that never lets the thread park).
pub const MAX_CLOSING: usize = 64;

thread_local! {
    /// Server connections done with, to close at the end of the scheduler's pass.
    static CLOSING: RefCell<Vec<TcpStream>> = const { RefCell::new(Vec::new()) };
}

/// Closes a connection that will not be reused, at the end of this thread's pass over
/// its ready tasks instead of now: [`close_deferred`] runs before the worker parks
/// (`runtime`), when [`MAX_CLOSING`] wait, and once a second (`memory::every_period`).
///
/// Why: in `http-server-close` mode a connection closes after each response, and the
/// close (the FIN, the peer's `TIME_WAIT`) is the costliest system call of the exchange.
/// Done in line, it sat between the responses of one pass, spacing their sends to the
/// clients so widely that the load generator went to sleep between two and had to be
/// woken for each (`seed`: 0.25 wake-ups of `wrk` per request against HAProxy's 0.04,
/// which sends all of a pass's responses first and closes after). The read buffer goes
/// back to the pool now.
pub fn close_later(up: Upstream) {
    bufpool::give(up.buf);
    let full = CLOSING.with(|c| {
        let mut c = c.borrow_mut();
        c.push(up.stream);
        c.len() >= MAX_CLOSING
    });
    if full {
        close_deferred();
    }
}

/// Closes the connections [`close_later`] set aside on this thread.
pub fn close_deferred() {
    CLOSING.with(|c| c.borrow_mut().clear());
}

/// Number of connections waiting in this thread's [`close_later`] list.
pub fn closing_count() -> usize {
    CLOSING.with(|c| c.borrow().len())
}

/// Number of idle pooled connections to `addr` on this thread.
pub fn idle_count(addr: SocketAddr) -> usize {
    POOL.with(|p| {
        p.borrow()
            .iter()
            .find(|(a, _)| *a == addr)
            .map_or(0, |(_, l)| l.len())
    })
}

/// An idle connection must have nothing to read: EOF or stray bytes mean it is unusable.
fn is_idle_alive(stream: &TcpStream) -> bool {
    let mut probe = [0u8; 1];
    matches!(stream.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
}

/// Opens a new connection under `timeout` (None = no limit).
pub async fn connect(
    addr: SocketAddr,
    timeout: Option<Duration>,
) -> Result<Upstream, ConnectError> {
    let attempt = open(addr);
    let stream = match timeout {
        Some(t) => match tokio::time::timeout(t, attempt).await {
            Ok(r) => r.map_err(ConnectError::Refused)?,
            Err(_) => return Err(ConnectError::Timeout),
        },
        None => attempt.await.map_err(ConnectError::Refused)?,
    };
    Ok(Upstream {
        stream,
        buf: BytesMut::new(),
        reused: false,
        addr,
    })
}

/// A connection to `addr`: a non-blocking socket with `TCP_NODELAY` set before the
/// `connect` (as HAProxy does), then the wait until it is writable. tokio's
/// `TcpStream::connect` asks the kernel for the socket's error (`getsockopt(SO_ERROR)`)
/// after every connect; here the error is fetched only when the readiness event says
/// the attempt failed (error or hang-up), which saves one system call per new server
/// connection (`seed`: 11.1 to 10.1 per request).
async fn open(addr: SocketAddr) -> io::Result<TcpStream> {
    use socket2::{Domain, Socket, Type};
    let sock = Socket::new(
        Domain::for_address(addr),
        Type::STREAM.nonblocking().cloexec(),
        None,
    )?;
    // Best effort, as before: a socket without it still works.
    let _ = sock.set_tcp_nodelay(true);
    match sock.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::INPROGRESS.raw_os_error()) => {}
        Err(e) => return Err(e),
    }
    let stream = TcpStream::from_std(std::net::TcpStream::from(sock))?;
    // Also wake for an error alone: a failed attempt normally reports a hang-up too.
    let interest = tokio::io::Interest::WRITABLE.add(tokio::io::Interest::ERROR);
    let ready = stream.ready(interest).await?;
    if ready.is_error() || ready.is_write_closed() {
        return Err(stream
            .take_error()?
            .unwrap_or_else(|| io::ErrorKind::ConnectionRefused.into()));
    }
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pooled connection holds no buffer: checkin gives it to the thread's buffer pool,
    /// checkout hands the connection back without one (its next read takes one), and the
    /// liveness check still sees a server that closed.
    #[tokio::test]
    async fn idle_pooled_connections_hold_no_read_buffer() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut up = connect(addr, None).await.unwrap();
        let (server_side, _) = listener.accept().await.unwrap();
        assert_eq!(up.buf.capacity(), 0);
        // A response was read into a pooled buffer, then consumed.
        up.buf = bufpool::take();
        let held = up.buf.as_ptr();
        up.buf.extend_from_slice(b"HTTP/1.1 200 OK\r\n\r\n");
        bytes::Buf::advance(&mut up.buf, 19);
        let now = Instant::now();
        checkin(up, now);
        assert_eq!((idle_count(addr), bufpool::pooled()), (1, 1));
        let again = checkout(addr, now).expect("a live pooled connection");
        assert!(again.reused);
        assert_eq!(again.buf.capacity(), 0);
        assert_eq!(bufpool::take().as_ptr(), held);
        // Back in the pool; the server closes: not handed out any more.
        checkin(again, now);
        drop(server_side);
        let mut closed_seen = false;
        for _ in 0..200 {
            tokio::time::sleep(Duration::from_millis(10)).await;
            match checkout(addr, now) {
                None => {
                    closed_seen = true;
                    break;
                }
                Some(c) => checkin(c, now),
            }
        }
        assert!(
            closed_seen,
            "a connection the server closed was still handed out"
        );
        assert_eq!(idle_count(addr), 0);
    }

    /// A refused connection attempt is reported as refused, with the kernel's error,
    /// though no `getsockopt(SO_ERROR)` follows a clean connect any more; a successful
    /// one comes with `TCP_NODELAY` set.
    #[tokio::test]
    async fn connect_reports_refusal_and_sets_nodelay() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let ok = connect(addr, Some(Duration::from_secs(1))).await.unwrap();
        assert!(ok.stream.nodelay().unwrap());
        drop(listener);
        match connect(addr, Some(Duration::from_secs(1))).await {
            Err(ConnectError::Refused(e)) => {
                assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{e}")
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    /// Whether the server side of a connection has seen the proxy's close (EOF), waiting
    /// up to 200 ms for the FIN.
    async fn sees_eof(server_side: &mut tokio::net::TcpStream) -> bool {
        use tokio::io::AsyncReadExt;
        let mut b = [0u8; 1];
        matches!(
            tokio::time::timeout(Duration::from_millis(200), server_side.read(&mut b)).await,
            Ok(Ok(0))
        )
    }

    /// `close_later` keeps the socket open until `close_deferred`, and gives the read
    /// buffer back at once.
    #[tokio::test]
    async fn a_deferred_close_happens_at_close_deferred() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut up = connect(addr, None).await.unwrap();
        let (mut server_side, _) = listener.accept().await.unwrap();
        up.buf = bufpool::take();
        let pooled = bufpool::pooled();
        close_later(up);
        assert_eq!((closing_count(), bufpool::pooled()), (1, pooled + 1));
        assert!(
            !sees_eof(&mut server_side).await,
            "closed before close_deferred"
        );
        close_deferred();
        assert_eq!(closing_count(), 0);
        assert!(
            sees_eof(&mut server_side).await,
            "still open after close_deferred"
        );
    }

    /// A thread that never parks still closes: the `MAX_CLOSING`th deferred close closes
    /// them all.
    #[tokio::test]
    async fn deferred_closes_are_carried_out_once_max_closing_wait() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut server_sides = Vec::new();
        for i in 0..MAX_CLOSING {
            let up = connect(addr, None).await.unwrap();
            server_sides.push(listener.accept().await.unwrap().0);
            close_later(up);
            let expected = if i + 1 == MAX_CLOSING { 0 } else { i + 1 };
            assert_eq!(closing_count(), expected);
        }
        for s in &mut server_sides {
            assert!(sees_eof(s).await);
        }
    }
}
