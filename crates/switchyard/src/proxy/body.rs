//! Moving message bodies between the two sides, under inactivity timeouts.
//!
//! Bodies pass through unchanged (chunked bodies keep their chunking); the
//! framing decides where a body ends, so bytes of a pipelined next message stay
//! in the source buffer.

use std::future::{poll_fn, Future};
use std::io;
use std::pin::{pin, Pin};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Sleep;

use super::bufpool;
use super::h1::{BodyKind, Chunked};
use crate::hardening::chunked::StrictChunked;

/// The chunked-framing scanner for a body kind.
enum Scanner {
    Lenient(Chunked),
    Strict(StrictChunked),
}

impl Scanner {
    fn for_kind(kind: BodyKind) -> Self {
        match kind {
            BodyKind::StrictChunked => Scanner::Strict(StrictChunked::new()),
            _ => Scanner::Lenient(Chunked::new()),
        }
    }

    fn scan(&mut self, buf: &[u8]) -> Result<usize, ()> {
        match self {
            Scanner::Lenient(c) => c.scan(buf).map_err(|_| ()),
            Scanner::Strict(c) => c.scan(buf).map_err(|_| ()),
        }
    }

    fn done(&self) -> bool {
        match self {
            Scanner::Lenient(c) => *c == Chunked::Done,
            Scanner::Strict(c) => c.is_done(),
        }
    }
}

/// True when the bytes already buffered after a head contain a framing
/// error (checked before anything is forwarded).
pub fn early_framing_error(buf: &[u8], kind: BodyKind) -> bool {
    matches!(kind, BodyKind::Chunked | BodyKind::StrictChunked)
        && Scanner::for_kind(kind).scan(buf).is_err()
}

/// Read buffer growth step.
pub const READ_CHUNK: usize = 16384;
/// Largest read of a long body: once a read has filled the buffer (more is
/// waiting), the body is moved in reads and writes of up to this size instead of
/// [`READ_CHUNK`]. A 1 MiB response then takes 16 `recv` + 16 `send` instead of
/// about 70 of each, and each `send` is one 64 KiB segment on loopback (HAProxy
/// and nginx move 16 KiB at a time). The buffer shrinks back once the body is
/// through, so idle and pooled connections keep their usual size.
pub const BIG_READ: usize = 65536;

/// Which side failed while a body was moving.
#[derive(Debug)]
pub enum XferError {
    /// The source closed before the end of the body, or a read failed.
    SrcClosed,
    /// No byte from the source within its timeout.
    SrcTimeout,
    /// Writing to the destination failed.
    DstClosed,
    /// The destination did not accept bytes within its timeout.
    DstTimeout,
    /// Malformed chunked framing.
    Framing,
}

/// Outcome of a bounded I/O step.
#[derive(Debug)]
pub enum IoError {
    Io(io::Error),
    Timeout,
}

/// Reads more bytes into `buf` under an inactivity timeout. `Ok(0)` is EOF.
pub async fn read_some<R: AsyncRead + Unpin>(
    src: &mut R,
    buf: &mut BytesMut,
    timeout: Option<Duration>,
) -> Result<usize, IoError> {
    // An empty buffer reads at the start of its allocation, whose lines are cached
    // (helper K's measurement, PERF_NOTES.md "kernel time"); a connection without one
    // takes the pool's hottest.
    bufpool::make_room(buf);
    bounded(src.read_buf(buf), timeout).await
}

/// [`read_some`] under a timer the caller keeps across waits (one per
/// connection) instead of a new one per wait. Data already there costs no
/// clock read and no timer. Else the wait's deadline is now + `timeout`, as
/// with `read_some`; a timer due earlier (left by an earlier wait: deadlines
/// of later waits are later) is kept and, if it fires, re-armed for this
/// deadline; only a timer due later is moved. So a keep-alive connection
/// re-arms its timer about once per timeout period instead of inserting and
/// removing a timer per request (tokio's timer wheel: ~2% of the instructions
/// per request in `ka64`). A kept timer may wake the task once when it fires
/// outside a wait; nothing else happens then.
pub async fn read_some_lazy<R: AsyncRead + Unpin>(
    src: &mut R,
    buf: &mut BytesMut,
    timeout: Option<Duration>,
    timer: Pin<&mut Option<Sleep>>,
) -> Result<usize, IoError> {
    read_some_lazy_from(src, buf, timeout, timer, None).await
}

/// [`read_some_lazy`], with the wait's deadline counted from `now` when the caller
/// has just read the clock (`None`: read it if the wait begins).
///
/// The read is polled with the task's context from the start: a socket with nothing
/// to read registers the task's waker once. (A first poll with a no-op waker, to
/// learn whether data was there before building the wait, registered a waker twice
/// per wait: ~190 instructions, twice per request in `ka64`.) The clock is read and
/// the timer armed only once that poll found nothing.
pub async fn read_some_lazy_from<R: AsyncRead + Unpin>(
    src: &mut R,
    buf: &mut BytesMut,
    timeout: Option<Duration>,
    mut timer: Pin<&mut Option<Sleep>>,
    now: Option<std::time::Instant>,
) -> Result<usize, IoError> {
    bufpool::make_room(buf);
    let mut io = pin!(src.read_buf(buf));
    let mut deadline = None;
    poll_fn(|cx| {
        if let Poll::Ready(r) = io.as_mut().poll(cx) {
            return Poll::Ready(r.map_err(IoError::Io));
        }
        poll_lazy_deadline(cx, timer.as_mut(), timeout, &mut deadline, now)
    })
    .await
}

/// [`read_some_lazy_from`] for a connection that holds no buffer while it waits: an
/// empty `buf` goes back to the thread's [`bufpool`] first, and a buffer is taken
/// from it only once the socket is readable, for the read itself (one `recv`, as
/// with `read_some_lazy_from`). A read that finds nothing after all (readiness
/// already consumed: `EAGAIN`) or the end of the stream gives it back at once. So
/// an idle keep-alive connection holds no read buffer, and the reads of all the
/// connections of a thread go to the same few buffers, hot in the caches. A `buf`
/// holding bytes (a head in pieces) is read into as it is.
///
/// Returns the bytes read, `Ok(0)` at the end of the stream; the same timer rules as
/// [`read_some_lazy`].
pub async fn read_pooled_lazy_from(
    src: &mut TcpStream,
    buf: &mut BytesMut,
    timeout: Option<Duration>,
    mut timer: Pin<&mut Option<Sleep>>,
    now: Option<std::time::Instant>,
) -> Result<usize, IoError> {
    if buf.is_empty() {
        bufpool::release(buf);
    } else {
        bufpool::make_room(buf);
    }
    let mut deadline = None;
    poll_fn(|cx| {
        if let Poll::Ready(ready) = src.poll_read_ready(cx) {
            if let Err(e) = ready {
                return Poll::Ready(Err(IoError::Io(e)));
            }
            if buf.capacity() == 0 {
                *buf = bufpool::take();
            }
            // tokio's own read: a read that does not fill the buffer clears the
            // readiness (the socket is drained), so the next wait registers the
            // task's waker without a `recv` that fails with `EAGAIN`; a read that
            // would block clears it too and registers the waker.
            let r = pin!(src.read_buf(&mut *buf)).poll(cx);
            bufpool::release(buf);
            if let Poll::Ready(r) = r {
                return Poll::Ready(r.map_err(IoError::Io));
            }
        }
        poll_lazy_deadline(cx, timer.as_mut(), timeout, &mut deadline, now)
    })
    .await
}

/// The timer part of a lazy wait ([`read_some_lazy`]): pending until the wait's
/// deadline (now + `timeout`, fixed on the first call, from `now` when given), on
/// the connection's one `timer`, re-armed only when it was due later or fired early.
#[inline(always)]
fn poll_lazy_deadline(
    cx: &mut Context<'_>,
    mut timer: Pin<&mut Option<Sleep>>,
    timeout: Option<Duration>,
    deadline: &mut Option<tokio::time::Instant>,
    now: Option<std::time::Instant>,
) -> Poll<Result<usize, IoError>> {
    let Some(timeout) = timeout else {
        return Poll::Pending;
    };
    let deadline = *deadline.get_or_insert_with(|| {
        now.map_or_else(tokio::time::Instant::now, tokio::time::Instant::from_std) + timeout
    });
    loop {
        let Some(mut sleep) = timer.as_mut().as_pin_mut() else {
            timer.set(Some(tokio::time::sleep_until(deadline)));
            continue;
        };
        if sleep.deadline() > deadline {
            sleep.as_mut().reset(deadline);
        }
        if sleep.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        if sleep.deadline() >= deadline {
            return Poll::Ready(Err(IoError::Timeout));
        }
        sleep.as_mut().reset(deadline);
    }
}

/// Writes all of `data` under a timeout.
pub async fn write_all<W: AsyncWrite + Unpin>(
    dst: &mut W,
    data: &[u8],
    timeout: Option<Duration>,
) -> Result<(), IoError> {
    bounded(dst.write_all(data), timeout).await
}

/// [`write_all`], also telling whether the bytes left at once (written by the first
/// attempt, without waiting: a clock reading taken just before is then still current).
pub async fn write_all_at_once<W: AsyncWrite + Unpin>(
    dst: &mut W,
    data: &[u8],
    timeout: Option<Duration>,
) -> Result<bool, IoError> {
    let mut io = pin!(dst.write_all(data));
    if let Poll::Ready(r) = io.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        return r.map(|()| true).map_err(IoError::Io);
    }
    bounded(io, timeout).await.map(|()| false)
}

/// Runs an I/O future under a timeout. The future is polled once first: when
/// it completes at once (the usual case for writes, and for reads of data
/// already there), no timer is armed at all.
async fn bounded<T, F>(io: F, timeout: Option<Duration>) -> Result<T, IoError>
where
    F: Future<Output = std::io::Result<T>>,
{
    let mut io = pin!(io);
    if let Poll::Ready(r) = io.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        return r.map_err(IoError::Io);
    }
    match timeout {
        Some(t) => match tokio::time::timeout(t, io).await {
            Ok(r) => r.map_err(IoError::Io),
            Err(_) => Err(IoError::Timeout),
        },
        None => io.await.map_err(IoError::Io),
    }
}

/// When the whole body of `kind` is already in `buf`, moves it out (so that
/// it can leave with the head in one write). Returns its length, or None when
/// more bytes must be read (then `buf` is untouched).
pub fn take_buffered(buf: &mut BytesMut, kind: BodyKind, out: &mut BytesMut) -> Option<u64> {
    let n = match kind {
        BodyKind::None => 0,
        BodyKind::Length(n) if (buf.len() as u64) >= n => n as usize,
        BodyKind::Chunked | BodyKind::StrictChunked => {
            let mut scan = Scanner::for_kind(kind);
            let n = scan.scan(buf).ok()?;
            if !scan.done() {
                return None;
            }
            n
        }
        _ => return None,
    };
    out.extend_from_slice(&buf[..n]);
    buf.advance(n);
    Some(n as u64)
}

/// Copies one body of `kind` from `src` (with already-read bytes in `buf`) to
/// `dst`. Returns the number of body bytes written.
pub async fn transfer<R, W>(
    src: &mut R,
    buf: &mut BytesMut,
    dst: &mut W,
    kind: BodyKind,
    src_timeout: Option<Duration>,
    dst_timeout: Option<Duration>,
) -> Result<u64, XferError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut sent = 0u64;
    let mut chunked = Scanner::for_kind(kind);
    let mut left = match kind {
        BodyKind::None => return Ok(0),
        BodyKind::Length(n) => n,
        _ => u64::MAX,
    };
    // Reads fill the buffer: the body is long, read it in bigger pieces.
    let mut long = false;
    // The buffer was enlarged for that (its allocation, which `capacity` does
    // not show once the bytes were consumed).
    let mut grown = false;
    loop {
        if buf.is_empty() {
            // The whole allocation, so that `room` below is what the read may fill.
            bufpool::rewind(buf);
            if long {
                // Never more than the rest of a sized body (`left` is u64::MAX otherwise).
                let want = left.min(BIG_READ as u64) as usize;
                if buf.capacity() < want {
                    buf.reserve(want);
                    grown |= want > READ_CHUNK;
                }
            }
            let room = buf.capacity().max(READ_CHUNK);
            match read_some(src, buf, src_timeout).await {
                Ok(0) if kind == BodyKind::UntilClose => break,
                Ok(0) | Err(IoError::Io(_)) => return Err(XferError::SrcClosed),
                Err(IoError::Timeout) => return Err(XferError::SrcTimeout),
                Ok(n) => long |= n >= room,
            }
        }
        let n = match kind {
            BodyKind::Length(_) => (left.min(buf.len() as u64)) as usize,
            BodyKind::Chunked | BodyKind::StrictChunked => {
                chunked.scan(buf).map_err(|_| XferError::Framing)?
            }
            _ => buf.len(),
        };
        write_all(dst, &buf[..n], dst_timeout)
            .await
            .map_err(|e| match e {
                IoError::Timeout => XferError::DstTimeout,
                IoError::Io(_) => XferError::DstClosed,
            })?;
        buf.advance(n);
        sent += n as u64;
        match kind {
            BodyKind::Length(_) => {
                left -= n as u64;
                if left == 0 {
                    break;
                }
            }
            BodyKind::Chunked | BodyKind::StrictChunked if chunked.done() => break,
            _ => {}
        }
    }
    if grown && buf.is_empty() {
        // Back to no buffer: the next read takes one of the usual size from the pool.
        *buf = BytesMut::new();
    } else if grown {
        // Back to the usual size (bytes after the body, if any, kept).
        let mut usual = BytesMut::with_capacity(READ_CHUNK.max(buf.len()));
        usual.extend_from_slice(buf);
        *buf = usual;
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::bufpool::rewind;

    async fn run(input: &[u8], kind: BodyKind) -> (Result<u64, XferError>, Vec<u8>, Vec<u8>) {
        let mut src = input;
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        let r = transfer(&mut src, &mut buf, &mut out, kind, None, None).await;
        (r, out, buf.to_vec())
    }

    #[tokio::test]
    async fn lazy_reads_keep_one_timer_and_time_out_at_each_waits_deadline() {
        use std::time::Instant;
        use tokio::io::AsyncWriteExt;
        let (mut peer, mut src) = tokio::io::duplex(64);
        let mut timer = pin!(None::<Sleep>);
        let mut buf = BytesMut::new();
        let ms = Duration::from_millis;
        // Bytes already there: read at once, no timer made.
        peer.write_all(b"abc").await.unwrap();
        let n = read_some_lazy(&mut src, &mut buf, Some(ms(30)), timer.as_mut()).await;
        assert_eq!(n.unwrap(), 3);
        assert!(timer.is_none());
        // A wait that data ends: the timer stays, due at its deadline.
        let writer = async {
            tokio::time::sleep(ms(5)).await;
            peer.write_all(b"d").await.unwrap();
        };
        let (n, ()) = tokio::join!(
            read_some_lazy(&mut src, &mut buf, Some(ms(40)), timer.as_mut()),
            writer
        );
        assert_eq!(n.unwrap(), 1);
        assert!(timer.is_some());
        // A later, longer wait: the earlier timer fires first and is re-armed,
        // so this wait times out after its own 150 ms, not the 40 ms left over.
        let t = Instant::now();
        let r = read_some_lazy(&mut src, &mut buf, Some(ms(150)), timer.as_mut()).await;
        assert!(matches!(r, Err(IoError::Timeout)));
        assert!(t.elapsed() >= ms(145), "{:?}", t.elapsed());
        // A shorter wait than the timer's deadline moves it earlier.
        timer
            .as_mut()
            .as_pin_mut()
            .unwrap()
            .reset(tokio::time::Instant::now() + ms(5000));
        let t = Instant::now();
        let r = read_some_lazy(&mut src, &mut buf, Some(ms(50)), timer.as_mut()).await;
        assert!(matches!(r, Err(IoError::Timeout)));
        assert!(
            t.elapsed() >= ms(45) && t.elapsed() < ms(2000),
            "{:?}",
            t.elapsed()
        );
        // EOF is a read of 0.
        drop(peer);
        let n = read_some_lazy(&mut src, &mut buf, Some(ms(50)), timer.as_mut()).await;
        assert_eq!(n.unwrap(), 0);
        assert_eq!(&buf[..], b"abcd");
    }

    /// A destination that records the size of every write.
    #[derive(Default)]
    struct Sizes {
        data: Vec<u8>,
        writes: Vec<usize>,
    }

    impl AsyncWrite for Sizes {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            b: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.data.extend_from_slice(b);
            self.writes.push(b.len());
            Poll::Ready(Ok(b.len()))
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn long_bodies_move_in_big_reads_and_the_buffer_shrinks_back() {
        let body: Vec<u8> = (0..(1usize << 20) + 777).map(|i| (i % 253) as u8).collect();
        for kind in [BodyKind::Length(body.len() as u64), BodyKind::UntilClose] {
            let mut input = body.clone();
            if kind != BodyKind::UntilClose {
                input.extend_from_slice(b"NEXT");
            }
            let mut src = &input[..];
            let mut buf = BytesMut::with_capacity(READ_CHUNK);
            let mut dst = Sizes::default();
            let n = transfer(&mut src, &mut buf, &mut dst, kind, None, None).await;
            assert_eq!(n.unwrap(), body.len() as u64, "{kind:?}");
            assert!(dst.data == body, "{kind:?}: body differs");
            // The first read fills 16 KiB, then reads of 64 KiB: 17 writes, not 65.
            assert_eq!(dst.writes[0], READ_CHUNK, "{kind:?}");
            assert!(dst.writes.contains(&BIG_READ), "{kind:?}");
            assert!(
                dst.writes.len() <= 18,
                "{kind:?}: {} writes",
                dst.writes.len()
            );
            // The bytes after a sized body stay, in a buffer of the usual size again.
            let rest: &[u8] = if kind == BodyKind::UntilClose {
                b""
            } else {
                b"NEXT"
            };
            assert_eq!(&buf[..], rest);
            assert!(buf.capacity() < BIG_READ, "{kind:?}: {}", buf.capacity());
        }
    }

    #[tokio::test]
    async fn reads_into_an_empty_buffer_start_at_its_first_byte() {
        let mut buf = BytesMut::with_capacity(READ_CHUNK);
        let start = buf.as_ptr();
        for _ in 0..3 {
            buf.extend_from_slice(&[b'x'; 93]);
            buf.advance(93);
        }
        let mut src = &b"next"[..];
        assert_eq!(read_some(&mut src, &mut buf, None).await.unwrap(), 4);
        assert_eq!((&buf[..], buf.as_ptr()), (&b"next"[..], start));
    }

    #[tokio::test]
    async fn short_bodies_keep_the_usual_reads() {
        let body = vec![7u8; READ_CHUNK - 100];
        let mut src = &body[..];
        let mut buf = BytesMut::with_capacity(READ_CHUNK);
        let mut dst = Sizes::default();
        let kind = BodyKind::Length(body.len() as u64);
        let n = transfer(&mut src, &mut buf, &mut dst, kind, None, None).await;
        assert_eq!(n.unwrap(), body.len() as u64);
        assert_eq!(dst.writes, [READ_CHUNK - 100]);
        // Not enlarged (the room left after the consumed bytes).
        assert!(buf.capacity() <= READ_CHUNK, "{}", buf.capacity());
    }

    #[tokio::test]
    async fn length_body_leaves_pipelined_bytes() {
        let (r, out, rest) = run(b"helloGET /", BodyKind::Length(5)).await;
        assert_eq!(r.unwrap(), 5);
        assert_eq!(out, b"hello");
        assert_eq!(rest, b"GET /");
    }

    #[tokio::test]
    async fn chunked_body_passes_through_with_trailers() {
        let body = b"5;ext=1\r\nhello\r\n0\r\nx-t: 1\r\n\r\n";
        let mut input = body.to_vec();
        input.extend_from_slice(b"NEXT");
        let (r, out, rest) = run(&input, BodyKind::Chunked).await;
        assert_eq!(r.unwrap(), body.len() as u64);
        assert_eq!(out, body);
        assert_eq!(rest, b"NEXT");
    }

    #[test]
    fn buffered_bodies_are_taken_only_when_complete() {
        let mut out = BytesMut::new();
        let mut buf = BytesMut::from(&b"abcNEXT"[..]);
        assert_eq!(
            take_buffered(&mut buf, BodyKind::Length(3), &mut out),
            Some(3)
        );
        assert_eq!((&out[..], &buf[..]), (&b"abc"[..], &b"NEXT"[..]));
        let mut partial = BytesMut::from(&b"5\r\nab"[..]);
        assert_eq!(
            take_buffered(&mut partial, BodyKind::Chunked, &mut out),
            None
        );
        assert_eq!(&partial[..], b"5\r\nab");
        let mut whole = BytesMut::from(&b"2\r\nab\r\n0\r\n\r\nX"[..]);
        assert_eq!(
            take_buffered(&mut whole, BodyKind::Chunked, &mut out),
            Some(12)
        );
        assert_eq!(&whole[..], b"X");
        assert_eq!(
            take_buffered(&mut whole, BodyKind::UntilClose, &mut out),
            None
        );
    }

    #[tokio::test]
    async fn request_chunks_are_checked_strictly() {
        let bare_lf_ext = b"3;a=b\nabc\r\n0\r\n\r\n";
        assert!(early_framing_error(bare_lf_ext, BodyKind::StrictChunked));
        let bad_ext = b"3;=\r\nabc\r\n0\r\n\r\n";
        assert!(early_framing_error(bad_ext, BodyKind::StrictChunked));
        assert!(
            !early_framing_error(bad_ext, BodyKind::Chunked),
            "responses stay lenient"
        );
        assert!(
            !early_framing_error(b"3\r\nab", BodyKind::StrictChunked),
            "incomplete is not an error"
        );
        let (r, out, _) = run(b"3;x=1\r\nabc\r\n0\r\n\r\n", BodyKind::StrictChunked).await;
        assert_eq!((r.unwrap(), out.len()), (17, 17));
    }

    #[tokio::test]
    async fn bad_chunk_size_and_truncation_are_errors() {
        assert!(matches!(
            run(b"zz\r\n", BodyKind::Chunked).await.0,
            Err(XferError::Framing)
        ));
        assert!(matches!(
            run(b"5\nhello", BodyKind::Chunked).await.0,
            Err(XferError::Framing)
        ));
        assert!(matches!(
            run(b"abc", BodyKind::Length(5)).await.0,
            Err(XferError::SrcClosed)
        ));
        let (r, out, _) = run(b"abc", BodyKind::UntilClose).await;
        assert_eq!((r.unwrap(), out.as_slice()), (3, &b"abc"[..]));
    }

    #[test]
    fn rewind_moves_an_empty_buffer_back_to_its_start() {
        let mut buf = BytesMut::with_capacity(16384);
        let start = buf.as_ptr();
        for _ in 0..3 {
            buf.extend_from_slice(&[b'x'; 93]);
            buf.advance(93);
        }
        assert_eq!(buf.capacity(), 16384 - 3 * 93);
        rewind(&mut buf);
        assert_eq!(buf.capacity(), 16384);
        assert_eq!(buf.as_ptr(), start, "same allocation, at its start");
    }

    #[test]
    fn rewind_leaves_data_and_fresh_buffers_alone() {
        let mut buf = BytesMut::with_capacity(1024);
        let start = buf.as_ptr();
        rewind(&mut buf);
        assert_eq!(
            (buf.as_ptr(), buf.capacity()),
            (start, 1024),
            "no allocation"
        );
        buf.extend_from_slice(b"abcdef");
        buf.advance(2);
        rewind(&mut buf);
        assert_eq!(&buf[..], b"cdef", "unread bytes are kept where they are");
        assert_eq!(buf.capacity(), 1022);
        let mut empty = BytesMut::new();
        rewind(&mut empty);
        assert_eq!(empty.capacity(), 0);
    }

    #[tokio::test]
    async fn pooled_reads_hold_no_buffer_while_waiting() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut peer = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (mut conn, _) = listener.accept().await.unwrap();
        let mut timer = pin!(None::<Sleep>);
        let mut buf = bufpool::take();
        let held = buf.as_ptr();
        {
            let mut read = pin!(read_pooled_lazy_from(
                &mut conn,
                &mut buf,
                Some(Duration::from_secs(20)),
                timer.as_mut(),
                None
            ));
            // Nothing to read: the empty buffer went back to the pool.
            let noop = &mut Context::from_waker(Waker::noop());
            assert!(read.as_mut().poll(noop).is_pending());
            assert_eq!(bufpool::pooled(), 1);
            peer.write_all(b"GET / HT").await.unwrap();
            assert_eq!(read.await.unwrap(), 8);
        }
        // The read took the pool's buffer, and keeps it while it holds bytes.
        assert_eq!(
            (&buf[..], buf.as_ptr(), bufpool::pooled()),
            (&b"GET / HT"[..], held, 0)
        );
        peer.write_all(b"TP/1.1").await.unwrap();
        let n = read_pooled_lazy_from(&mut conn, &mut buf, None, timer.as_mut(), None).await;
        assert_eq!((n.unwrap(), &buf[..]), (6, &b"GET / HTTP/1.1"[..]));
        buf.advance(14);
        // End of stream: the buffer is back in the pool, none is held.
        peer.shutdown().await.unwrap();
        let n = read_pooled_lazy_from(&mut conn, &mut buf, None, timer.as_mut(), None).await;
        assert_eq!((n.unwrap(), buf.capacity(), bufpool::pooled()), (0, 0, 1));
        // A wait that times out holds none either.
        let mut peer2 = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (mut conn2, _) = listener.accept().await.unwrap();
        let r = read_pooled_lazy_from(
            &mut conn2,
            &mut buf,
            Some(Duration::from_millis(20)),
            timer.as_mut(),
            None,
        )
        .await;
        assert!(matches!(r, Err(IoError::Timeout)), "{r:?}");
        assert_eq!((buf.capacity(), bufpool::pooled()), (0, 1));
        peer2.write_all(b"x").await.unwrap();
    }

    #[tokio::test]
    async fn write_all_at_once_tells_whether_it_waited() {
        let (mut a, mut b) = tokio::io::duplex(64);
        assert!(write_all_at_once(&mut a, b"short", None).await.unwrap());
        let mut got = [0u8; 5];
        b.read_exact(&mut got).await.unwrap();
        let reader = tokio::spawn(async move {
            let mut all = Vec::new();
            let mut chunk = [0u8; 64];
            while all.len() < 1000 {
                let n = b.read(&mut chunk).await.unwrap();
                all.extend_from_slice(&chunk[..n]);
            }
            all
        });
        let long = [7u8; 1000];
        let waited = write_all_at_once(&mut a, &long, Some(Duration::from_secs(5)));
        assert!(!waited.await.unwrap());
        assert_eq!(reader.await.unwrap(), long);
    }
}
