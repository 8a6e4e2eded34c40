//! Bidirectional byte tunnel after a `101 Switching Protocols` (WebSocket or
//! any other upgrade).
//!
//! Bytes already buffered on either side (sent right after the heads) are
//! flushed first. A half-close is propagated: when one side finishes sending,
//! the other side's write half is shut down and the opposite direction keeps
//! flowing. The tunnel ends when both directions are done, on an error, or when
//! no byte moved in either direction for the idle timeout (`timeout tunnel`,
//! else the smaller of `timeout client` and `timeout server`, as HAProxy does).

use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

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
    let (mut cr, mut cw) = client.split();
    let (mut sr, mut sw) = server.split();
    let mut up = vec![0u8; 16384];
    let mut down = vec![0u8; 16384];
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
            r = cr.read(&mut up), if up_open => match r {
                Ok(0) | Err(_) => {
                    up_open = false;
                    let _ = sw.shutdown().await;
                    if r.is_err() { break; }
                }
                Ok(n) => {
                    if sw.write_all(&up[..n]).await.is_err() { break; }
                    stats.client_to_server += n as u64;
                    last = Instant::now();
                }
            },
            r = sr.read(&mut down), if down_open => match r {
                Ok(0) | Err(_) => {
                    down_open = false;
                    let _ = cw.shutdown().await;
                    if r.is_err() { break; }
                }
                Ok(n) => {
                    if cw.write_all(&down[..n]).await.is_err() { break; }
                    stats.server_to_client += n as u64;
                    last = Instant::now();
                }
            },
            _ = sleep => {
                stats.timed_out = true;
                break;
            }
        }
    }
    stats
}
