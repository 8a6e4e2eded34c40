//! Bidirectional byte tunnel after a `101 Switching Protocols` (WebSocket or
//! any other upgrade).
//!
//! Bytes already buffered on either side (sent right after the heads) are
//! flushed first. A half-close is propagated: when one side finishes sending,
//! the other side's write half is shut down and the opposite direction keeps
//! flowing. The tunnel ends when both directions are done, on an error, or when
//! no byte moved in either direction for the idle timeout (`timeout tunnel`,
//! else the smaller of `timeout client` and `timeout server`, as HAProxy does).
//!
//! An idle tunnel holds no buffer and no per-read future: [`relay`] polls the
//! two sockets' readiness directly, reads through a per-thread scratch buffer,
//! and keeps on the heap only what a peer did not take at once (reading from
//! that side waits until it has). One timer serves the idle timeout: traffic
//! only moves the time of the last byte, and the timer is re-armed when it
//! fires early, not on every read.

use std::cell::RefCell;
use std::future::{poll_fn, Future};
use std::io;
use std::net::Shutdown;
use std::pin::{pin, Pin};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::BytesMut;
use socket2::SockRef;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

/// What a request that switched protocols hands to its connection task: the
/// upstream connection, the server slot it holds, the idle timeout and the
/// size of the 101 head already sent to the client.
#[derive(Debug)]
pub struct Handoff {
    pub up: super::upstream::Upstream,
    pub lease: super::queue::Lease,
    pub idle: Option<Duration>,
    pub head_len: u64,
}

/// Bytes moved in each direction.
#[derive(Debug, Default, Clone, Copy)]
pub struct TunnelStats {
    pub client_to_server: u64,
    pub server_to_client: u64,
    /// Ended by the idle timeout.
    pub timed_out: bool,
}

/// Writes the bytes each side sent right after the heads to the other side,
/// then releases both buffers. `Err` when a write failed (the tunnel is over).
pub async fn flush(
    client: &mut TcpStream,
    client_buf: &mut BytesMut,
    server: &mut TcpStream,
    server_buf: &mut BytesMut,
    stats: &mut TunnelStats,
) -> Result<(), ()> {
    if !client_buf.is_empty() {
        server.write_all(client_buf).await.map_err(drop)?;
        stats.client_to_server += client_buf.len() as u64;
    }
    if !server_buf.is_empty() {
        client.write_all(server_buf).await.map_err(drop)?;
        stats.server_to_client += server_buf.len() as u64;
    }
    *client_buf = BytesMut::new();
    *server_buf = BytesMut::new();
    Ok(())
}

/// Relays bytes both ways until both directions ended, an error, or the idle
/// timeout (then `stats.timed_out`). Counts the bytes written to each side.
pub async fn relay(
    client: &TcpStream,
    server: &TcpStream,
    idle: Option<Duration>,
    stats: &mut TunnelStats,
) {
    let mut sleep = pin!(idle.map(tokio::time::sleep));
    let mut state = Relay {
        up: Direction::default(),
        down: Direction::default(),
        last: Instant::now(),
    };
    poll_fn(|cx| state.poll(cx, client, server, idle, sleep.as_mut(), stats)).await
}

/// One direction of the tunnel.
#[derive(Default)]
struct Direction {
    /// The source sent its FIN (propagated to the destination).
    done: bool,
    /// Bytes the destination did not accept yet, from `sent` on.
    pending: Vec<u8>,
    sent: usize,
}

struct Relay {
    /// Client to server.
    up: Direction,
    /// Server to client.
    down: Direction,
    /// When a byte last moved.
    last: Instant,
}

/// What moving one direction as far as possible did.
enum Step {
    /// Waiting for readiness (the waker is registered), or the direction is done.
    Idle {
        moved: bool,
    },
    Failed,
}

impl Relay {
    fn poll(
        &mut self,
        cx: &mut Context<'_>,
        client: &TcpStream,
        server: &TcpStream,
        idle: Option<Duration>,
        sleep: Pin<&mut Option<Sleep>>,
        stats: &mut TunnelStats,
    ) -> Poll<()> {
        let up = pump(
            cx,
            client,
            server,
            &mut self.up,
            &mut stats.client_to_server,
        );
        let down = pump(
            cx,
            server,
            client,
            &mut self.down,
            &mut stats.server_to_client,
        );
        let moved = match (up, down) {
            (Step::Failed, _) | (_, Step::Failed) => return Poll::Ready(()),
            (Step::Idle { moved: a }, Step::Idle { moved: b }) => a || b,
        };
        if self.up.done && self.down.done {
            return Poll::Ready(());
        }
        if moved {
            self.last = Instant::now();
        }
        let (Some(mut sleep), Some(idle)) = (sleep.as_pin_mut(), idle) else {
            return Poll::Pending;
        };
        while sleep.as_mut().poll(cx).is_ready() {
            let due = self.last + idle;
            if due <= sleep.deadline() {
                stats.timed_out = true;
                return Poll::Ready(());
            }
            sleep.as_mut().reset(due);
        }
        Poll::Pending
    }
}

/// Size of the per-thread scratch buffer one read goes through.
const SCRATCH_LEN: usize = 16384;

thread_local! {
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0u8; SCRATCH_LEN].into_boxed_slice());
}

/// Moves bytes from `from` to `to` until one of them would block: first what
/// `to` did not take before, then fresh reads. Registers the task's waker for
/// the readiness it waits for. `count` grows by the bytes written to `to`.
fn pump(
    cx: &mut Context<'_>,
    from: &TcpStream,
    to: &TcpStream,
    dir: &mut Direction,
    count: &mut u64,
) -> Step {
    let mut moved = false;
    loop {
        if dir.sent < dir.pending.len() {
            match to.poll_write_ready(cx) {
                Poll::Pending => return Step::Idle { moved },
                Poll::Ready(Err(_)) => return Step::Failed,
                Poll::Ready(Ok(())) => {}
            }
            match to.try_write(&dir.pending[dir.sent..]) {
                Ok(w) => {
                    dir.sent += w;
                    *count += w as u64;
                    moved = true;
                    if dir.sent == dir.pending.len() {
                        dir.pending = Vec::new();
                        dir.sent = 0;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return Step::Failed,
            }
            continue;
        }
        if dir.done {
            return Step::Idle { moved };
        }
        match from.poll_read_ready(cx) {
            Poll::Pending => return Step::Idle { moved },
            Poll::Ready(Err(_)) => return Step::Failed,
            Poll::Ready(Ok(())) => {}
        }
        let step = SCRATCH.with(|s| {
            let mut s = s.borrow_mut();
            let n = match from.try_read(&mut s) {
                Ok(0) => return Ok(None),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Some(0)),
                Err(e) => return Err(e),
            };
            let mut sent = 0;
            while sent < n {
                match to.try_write(&s[sent..n]) {
                    Ok(w) => sent += w,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e),
                }
            }
            if sent < n {
                dir.pending = s[sent..n].to_vec();
            }
            Ok(Some(sent))
        });
        match step {
            Ok(None) => {
                dir.done = true;
                let _ = SockRef::from(to).shutdown(Shutdown::Write);
                return Step::Idle { moved };
            }
            Ok(Some(sent)) => {
                if sent > 0 || !dir.pending.is_empty() {
                    moved = true;
                }
                *count += sent as u64;
            }
            Err(_) => return Step::Failed,
        }
    }
}
