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
use std::io::{self, Read};
use std::net::Shutdown;
use std::pin::{pin, Pin};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::BytesMut;
use socket2::SockRef;
use tokio::io::{AsyncWriteExt, Interest};
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
    // Freed (the relay reads through its scratch buffer).
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

/// Reads into `buf` once `from` is readable. A read that does not fill `buf` drained
/// the socket: the readiness tokio saw is then cleared (as its own `poll_read` does; an
/// event that arrived since is kept), so the next turn waits for the next event instead
/// of trying a read that fails with `EAGAIN`: one `recv` per message instead of two.
fn read_draining(from: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    let r = from.try_io(Interest::READABLE, || {
        got = (&*SockRef::from(from)).read(buf)?;
        if got > 0 && got < buf.len() {
            // Not an error: tells `try_io` to clear the readiness.
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(got)
    });
    match r {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock && got > 0 => Ok(got),
        r => r,
    }
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
            let n = match read_draining(from, &mut s) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Waker;

    fn ready_now(s: &TcpStream) -> bool {
        s.poll_read_ready(&mut Context::from_waker(Waker::noop()))
            .is_ready()
    }

    #[tokio::test]
    async fn a_short_read_clears_readiness_and_the_next_bytes_are_seen() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut peer = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (s, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 64];
        peer.write_all(b"hello").await.unwrap();
        s.readable().await.unwrap();
        assert_eq!(read_draining(&s, &mut buf).unwrap(), 5);
        assert_eq!(&buf[..5], b"hello");
        // Drained: no second read is tried (it would fail with EAGAIN).
        assert!(!ready_now(&s));
        // Bytes sent afterwards make it readable again.
        peer.write_all(b"again").await.unwrap();
        s.readable().await.unwrap();
        assert_eq!(read_draining(&s, &mut buf).unwrap(), 5);
        // A read that fills the buffer keeps the readiness: more may be waiting.
        peer.write_all(&[7u8; 100]).await.unwrap();
        let mut small = [0u8; 10];
        s.readable().await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(read_draining(&s, &mut small).unwrap(), 10);
        assert!(ready_now(&s));
        // EOF is a read of 0.
        let mut rest = [0u8; 200];
        assert_eq!(read_draining(&s, &mut rest).unwrap(), 90);
        drop(peer);
        s.readable().await.unwrap();
        assert_eq!(read_draining(&s, &mut rest).unwrap(), 0);
    }
}
