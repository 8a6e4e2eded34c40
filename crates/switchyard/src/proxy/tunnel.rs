//! Bidirectional byte tunnel after a `101 Switching Protocols` (WebSocket or
//! any other upgrade).
//!
//! Bytes already buffered on either side (sent right after the heads) are
//! flushed first. A half-close is propagated: when one side finishes sending,
//! the other side's write half is shut down and the opposite direction keeps
//! flowing. The tunnel ends when both directions are done, on an error, or when
//! no byte moved in either direction for the idle timeout (`timeout tunnel`,
//! else the smaller of `timeout client` and `timeout server`, as HAProxy does).

use std::cell::RefCell;
use std::io;
use std::net::Shutdown;
use std::time::Duration;

use bytes::BytesMut;
use socket2::SockRef;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::Instant;

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

/// Runs the tunnel to completion.
pub async fn run(
    client: &mut TcpStream,
    client_buf: &mut BytesMut,
    server: &mut TcpStream,
    server_buf: &mut BytesMut,
    idle: Option<Duration>,
) -> TunnelStats {
    let mut stats = TunnelStats::default();
    if !client_buf.is_empty() {
        if server.write_all(client_buf).await.is_err() {
            return stats;
        }
        stats.client_to_server += client_buf.len() as u64;
        client_buf.clear();
    }
    if !server_buf.is_empty() {
        if client.write_all(server_buf).await.is_err() {
            return stats;
        }
        stats.server_to_client += server_buf.len() as u64;
        server_buf.clear();
    }
    // Idle tunnels hold no buffer: each side waits for readiness, then the
    // ready bytes go through this thread's scratch buffer; only what the peer
    // does not take at once is copied to the heap until written.
    *client_buf = BytesMut::new();
    *server_buf = BytesMut::new();
    let (mut up_open, mut down_open) = (true, true);
    let mut last = Instant::now();
    while up_open || down_open {
        let sleep = async {
            match idle {
                Some(d) => tokio::time::sleep_until(last + d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = client.readable(), if up_open => match relay(r, client, server).await {
                Moved::Bytes(n) => {
                    stats.client_to_server += n as u64;
                    last = Instant::now();
                }
                Moved::Nothing => {}
                Moved::Eof => {
                    up_open = false;
                    let _ = SockRef::from(&*server).shutdown(Shutdown::Write);
                }
                Moved::Failed => break,
            },
            r = server.readable(), if down_open => match relay(r, server, client).await {
                Moved::Bytes(n) => {
                    stats.server_to_client += n as u64;
                    last = Instant::now();
                }
                Moved::Nothing => {}
                Moved::Eof => {
                    down_open = false;
                    let _ = SockRef::from(&*client).shutdown(Shutdown::Write);
                }
                Moved::Failed => break,
            },
            _ = sleep => {
                stats.timed_out = true;
                break;
            }
        }
    }
    stats
}

/// Size of the per-thread scratch buffer one read goes through.
const SCRATCH_LEN: usize = 16384;

thread_local! {
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0u8; SCRATCH_LEN].into_boxed_slice());
}

/// What one relay step did.
enum Moved {
    Bytes(usize),
    /// A spurious readiness: nothing to read yet.
    Nothing,
    Eof,
    Failed,
}

/// After `from` became readable (`ready`): reads what is there into the
/// scratch buffer and writes it to `to`, waiting (outside the scratch buffer)
/// for the part `to` did not accept at once. Not cancelled midway: it runs
/// in a `select!` arm body, as the copy loop did before.
async fn relay(ready: io::Result<()>, from: &TcpStream, to: &TcpStream) -> Moved {
    if ready.is_err() {
        return Moved::Failed;
    }
    let step = SCRATCH.with(|s| {
        let mut s = s.borrow_mut();
        let n = match from.try_read(&mut s) {
            Ok(0) => return Ok((0, None)),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Err(None),
            Err(e) => return Err(Some(e)),
        };
        let mut sent = 0;
        while sent < n {
            match to.try_write(&s[sent..n]) {
                Ok(w) => sent += w,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(Some(e)),
            }
        }
        Ok((n, (sent < n).then(|| s[sent..n].to_vec())))
    });
    let (n, rest) = match step {
        Ok((0, _)) => return Moved::Eof,
        Ok(x) => x,
        Err(None) => return Moved::Nothing,
        Err(Some(_)) => return Moved::Failed,
    };
    if let Some(rest) = rest {
        let mut off = 0;
        while off < rest.len() {
            if to.writable().await.is_err() {
                return Moved::Failed;
            }
            match to.try_write(&rest[off..]) {
                Ok(w) => off += w,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return Moved::Failed,
            }
        }
    }
    Moved::Bytes(n)
}
