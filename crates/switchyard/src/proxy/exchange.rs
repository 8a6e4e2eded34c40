//! One exchange with a server: the request head (and any body already
//! received) out, the rest of the body relayed while the response head comes
//! back; interim 1xx responses relayed to the client.

use std::pin::Pin;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Sleep;

use super::body::{self, IoError, XferError};
use super::h1::{self, BodyKind, ResponseHead};
use super::upstream::Upstream;
use super::Client;

/// How an exchange with a server failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fail {
    /// Server closed or reset before a complete response head (502 `SH--`).
    ServerClosed {
        got_bytes: bool,
    },
    /// `timeout server` before the response head (504 `sH--`).
    ServerTimeout,
    /// Unparsable response head (502 `PH--`).
    BadResponse,
    /// The client went away or stalled while sending its body.
    ClientAborted,
    ClientTimeout,
    /// Malformed chunked request body (400).
    BadRequestBody,
}

/// Sends the request head, then relays the body while waiting for the
/// response head. Interim 1xx responses (except 101) are relayed to the
/// client. Returns the final head and whether the request body was complete.
///
/// `wait`: the client connection's timer for response waits (see
/// [`read_response_head`]); `sent_at`: a clock reading taken just before (the response
/// wait counts from it when the request left at once).
pub(super) async fn exchange(
    client: &mut Client,
    up: &mut Upstream,
    head: &[u8],
    body_kind: BodyKind,
    (client_timeout, server_timeout): (Option<Duration>, Option<Duration>),
    (wait, sent_at): (Pin<&mut Option<Sleep>>, Instant),
) -> Result<(ResponseHead, bool), Fail> {
    // A request body already received in full leaves with the head, in one write;
    // without a body the head is written as it is (no copy).
    let mut body_kind = body_kind;
    let mut first = BytesMut::new();
    if body_kind != BodyKind::None {
        first.reserve(head.len() + client.buf.len());
        first.extend_from_slice(head);
        if body::take_buffered(&mut client.buf, body_kind, &mut first).is_some() {
            body_kind = BodyKind::None;
        }
    }
    let out: &[u8] = if first.is_empty() { head } else { &first };
    let Ok(at_once) = body::write_all_at_once(&mut up.stream, out, server_timeout).await else {
        return Err(Fail::ServerClosed { got_bytes: false });
    };
    if body_kind == BodyKind::None {
        // Nothing to relay while waiting (the usual request): no second future to
        // build, pin and poll beside the response head's.
        let head = read_response_head(
            &mut up.stream,
            &mut up.buf,
            &mut client.stream,
            (server_timeout, client_timeout),
            (wait, at_once.then_some(sent_at)),
        );
        return head.await.map(|h| (h, true));
    }
    let (mut cr, mut cw) = client.stream.split();
    let (mut sr, mut sw) = up.stream.split();
    let body_fut = body::transfer(
        &mut cr,
        &mut client.buf,
        &mut sw,
        body_kind,
        client_timeout,
        server_timeout,
    );
    let head_fut = read_response_head(
        &mut sr,
        &mut up.buf,
        &mut cw,
        (server_timeout, client_timeout),
        (wait, None),
    );
    tokio::pin!(body_fut, head_fut);
    let mut body_done = body_kind == BodyKind::None;
    let mut body_failed = false;
    loop {
        tokio::select! {
            biased;
            r = &mut body_fut, if !body_done && !body_failed => match r {
                Ok(_) => body_done = true,
                Err(XferError::SrcClosed) => return Err(Fail::ClientAborted),
                Err(XferError::SrcTimeout) => return Err(Fail::ClientTimeout),
                Err(XferError::Framing) => return Err(Fail::BadRequestBody),
                // The server stopped reading: its response (if any) tells why.
                Err(XferError::DstClosed | XferError::DstTimeout) => body_failed = true,
            },
            h = &mut head_fut => return h.map(|h| (h, body_done)),
        }
    }
}

/// Reads the final response head (relaying interim 1xx heads to `cw`). Each wait for
/// bytes runs under `timeout server` on `timer`, a timer the client connection keeps
/// for all its response waits ([`body::read_some_lazy`]): a keep-alive connection
/// does not arm and remove a timer per request. The first wait's deadline counts from
/// `sent_at` when given (a reading taken just before the request left at once: no second
/// reading); else from the wait's start, as the later waits' do.
pub(super) async fn read_response_head<R, W>(
    sr: &mut R,
    buf: &mut BytesMut,
    cw: &mut W,
    (server_timeout, client_timeout): (Option<Duration>, Option<Duration>),
    (mut timer, sent_at): (Pin<&mut Option<Sleep>>, Option<Instant>),
) -> Result<ResponseHead, Fail>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut now = sent_at;
    loop {
        // Nothing read yet (the usual first pass: the server has not answered within
        // microseconds): no parse of an empty buffer, which can only ask for more.
        let parsed = if buf.is_empty() {
            Ok(None)
        } else {
            h1::parse_response(buf)
        };
        match parsed {
            Ok(Some((head, len))) => {
                buf.advance(len);
                let code = head.status.as_u16();
                if (100..200).contains(&code) && code != 101 {
                    let mut out = BytesMut::with_capacity(128);
                    h1::write_response_head(
                        &mut out,
                        head.version,
                        head.status,
                        &head.reason,
                        &head.headers,
                    );
                    if body::write_all(cw, &out, client_timeout).await.is_err() {
                        return Err(Fail::ClientAborted);
                    }
                    continue;
                }
                return Ok(head);
            }
            Ok(None) => {}
            Err(_) => return Err(Fail::BadResponse),
        }
        let read = body::read_some_lazy_from(sr, buf, server_timeout, timer.as_mut(), now.take());
        match read.await {
            Ok(0) | Err(IoError::Io(_)) => {
                return Err(Fail::ServerClosed {
                    got_bytes: !buf.is_empty(),
                })
            }
            Err(IoError::Timeout) => return Err(Fail::ServerTimeout),
            Ok(_) => {}
        }
    }
}
