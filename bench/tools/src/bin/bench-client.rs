//! `bench-client`: the load for the scenarios `wrk` cannot drive.
//!
//! ```text
//! bench-client ws-echo --addr HOST:PORT [--path P] [--conns 64] [--size 32] [--warmup 1] [--duration 5]
//! bench-client ws-idle --addr HOST:PORT [--path P] [--conns 5000] [--concurrency 200]
//! bench-client eio     --addr HOST:PORT [--sessions 64] [--warmup 1] [--duration 5]
//! ```
//!
//! Output is one JSON object per line on stdout. Timed scenarios print
//! `{"event":"measure-start"}` and `{"event":"measure-end"}` at the edges of the measured window
//! (after every connection is up and the warm-up is over), so the harness can sample the proxy's
//! CPU time exactly around it, then `{"event":"result",…}`. Only operations that complete inside
//! the window are counted. `ws-idle` prints `{"event":"open",…}` once every connection is up and
//! has echoed one message, waits for a line on stdin, closes them all cleanly and prints
//! `{"event":"closed",…}`.

use std::io::{self, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchyard_bench_tools::args::Args;
use switchyard_bench_tools::http1::Conn;
use switchyard_bench_tools::stats::percentiles;
use switchyard_bench_tools::{eio, ws};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// A syntactically valid key; proxies check its presence and length, not its randomness.
const WS_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const MAX_FRAME: usize = 1 << 20;

fn emit(line: &str) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn other(msg: impl Into<String>) -> io::Error {
    io::Error::other(msg.into())
}

/// The measured window shared by every task of a timed scenario.
#[derive(Clone, Copy)]
struct Window {
    start: Instant,
    end: Instant,
}

impl Window {
    fn contains(&self, t: Instant) -> bool {
        t >= self.start && t < self.end
    }
}

/// What one task of a timed scenario recorded.
#[derive(Default)]
struct Tally {
    latencies_us: Vec<u64>,
    errors: u64,
    first_error: Option<String>,
}

impl Tally {
    /// Records one operation that started at `t0`: its latency when it completed inside the
    /// window, or the error. Returns whether it succeeded.
    fn record(&mut self, window: &Window, t0: Instant, result: io::Result<()>) -> bool {
        if let Err(e) = result {
            self.errors += 1;
            self.first_error = Some(e.to_string());
            return false;
        }
        let t1 = Instant::now();
        if window.contains(t1) {
            self.latencies_us.push((t1 - t0).as_micros() as u64);
        }
        true
    }
}

/// Opens a WebSocket through the proxy; returns the socket and any bytes read past the 101.
async fn ws_connect(addr: &str, path: &str) -> io::Result<(TcpStream, Vec<u8>)> {
    let mut c = Conn::connect(addr).await?;
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {WS_KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    c.send(req.as_bytes()).await?;
    let r = c.recv().await?;
    if r.status != 101 {
        return Err(other(format!("upgrade answered {}", r.status)));
    }
    Ok(c.into_parts())
}

/// Reads one whole frame.
async fn read_frame(s: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<ws::Frame> {
    loop {
        match ws::decode(buf, MAX_FRAME) {
            Ok(Some((frame, used))) => {
                buf.drain(..used);
                return Ok(frame);
            }
            Ok(None) => {}
            Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
        }
        if s.read_buf(buf).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
    }
}

/// Sends one masked message and checks that the echo carries the same payload.
async fn echo_once(
    s: &mut TcpStream,
    buf: &mut Vec<u8>,
    frame: &[u8],
    payload: &[u8],
) -> io::Result<()> {
    s.write_all(frame).await?;
    let echo = read_frame(s, buf).await?;
    if echo.payload != payload {
        return Err(other("echo payload differs"));
    }
    Ok(())
}

/// Sends a close frame and waits (bounded) for the peer's close or EOF.
async fn ws_close(mut s: TcpStream, mut buf: Vec<u8>) -> bool {
    let mut close = Vec::new();
    ws::encode(
        &mut close,
        true,
        ws::OP_CLOSE,
        &1000u16.to_be_bytes(),
        Some([7, 7, 7, 7]),
    );
    if s.write_all(&close).await.is_err() {
        return false;
    }
    let wait = async {
        loop {
            match read_frame(&mut s, &mut buf).await {
                Ok(f) if f.opcode == ws::OP_CLOSE => return true,
                Ok(_) => {}
                Err(e) => return e.kind() == io::ErrorKind::UnexpectedEof,
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), wait)
        .await
        .unwrap_or(false)
}

fn masked_message(size: usize) -> (Vec<u8>, Vec<u8>) {
    let payload: Vec<u8> = (0..size).map(|i| b'a' + (i % 26) as u8).collect();
    let mut frame = Vec::new();
    ws::encode(
        &mut frame,
        true,
        ws::OP_TEXT,
        &payload,
        Some([0x12, 0x34, 0x56, 0x78]),
    );
    (payload, frame)
}

/// Runs `tasks` (already connected) over a warm-up and a measured window, printing the window
/// edges, and merges their tallies.
async fn timed<F, Fut>(count: usize, warmup: f64, duration: f64, task: F) -> Tally
where
    F: Fn(usize, Window) -> Fut,
    Fut: std::future::Future<Output = Tally> + Send + 'static,
{
    let start = Instant::now() + Duration::from_secs_f64(warmup);
    let window = Window {
        start,
        end: start + Duration::from_secs_f64(duration),
    };
    let mut set = JoinSet::new();
    for i in 0..count {
        set.spawn(task(i, window));
    }
    tokio::time::sleep_until(window.start.into()).await;
    emit(r#"{"event":"measure-start"}"#);
    tokio::time::sleep_until(window.end.into()).await;
    emit(r#"{"event":"measure-end"}"#);
    let mut all = Tally::default();
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(t) => {
                all.latencies_us.extend(t.latencies_us);
                all.errors += t.errors;
                if all.first_error.is_none() {
                    all.first_error = t.first_error;
                }
            }
            Err(e) => {
                all.errors += 1;
                all.first_error.get_or_insert(e.to_string());
            }
        }
    }
    all
}

fn report(scenario: &str, duration: f64, conns: usize, mut tally: Tally) {
    let p = percentiles(&mut tally.latencies_us);
    let err = tally
        .first_error
        .map(|e| format!(",\"first_error\":{:?}", e))
        .unwrap_or_default();
    emit(&format!(
        "{{\"event\":\"result\",\"scenario\":\"{scenario}\",\"connections\":{conns},\"ops\":{},\"seconds\":{duration},\"ops_per_s\":{:.1},\"errors\":{},{}{err}}}",
        p.count,
        p.count as f64 / duration,
        tally.errors,
        p.json_members()
    ));
}

async fn ws_echo(a: &Args) -> Result<(), String> {
    let addr = a.required("addr")?.to_string();
    let path = a.get("path", "/engine.io/?EIO=4&transport=websocket".to_string())?;
    let conns: usize = a.get("conns", 64)?;
    let size: usize = a.get("size", 32)?;
    let warmup: f64 = a.get("warmup", 1.0)?;
    let duration: f64 = a.get("duration", 5.0)?;
    let mut sockets = Vec::with_capacity(conns);
    for _ in 0..conns {
        let c = ws_connect(&addr, &path)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        sockets.push(tokio::sync::Mutex::new(Some(c)));
    }
    let sockets = Arc::new(sockets);
    let (payload, frame) = masked_message(size);
    let (payload, frame) = (Arc::new(payload), Arc::new(frame));
    let tally = timed(conns, warmup, duration, |i, window| {
        let (sockets, payload, frame) = (sockets.clone(), payload.clone(), frame.clone());
        async move {
            let mut tally = Tally::default();
            let Some((mut s, mut buf)) = sockets[i].lock().await.take() else {
                return tally;
            };
            while Instant::now() < window.end {
                let t0 = Instant::now();
                let result = echo_once(&mut s, &mut buf, &frame, &payload).await;
                if !tally.record(&window, t0, result) {
                    return tally;
                }
            }
            ws_close(s, buf).await;
            tally
        }
    })
    .await;
    report("ws-echo", duration, conns, tally);
    Ok(())
}

async fn ws_idle(a: &Args) -> Result<(), String> {
    let addr = Arc::new(a.required("addr")?.to_string());
    let path = Arc::new(a.get("path", "/engine.io/?EIO=4&transport=websocket".to_string())?);
    let conns: usize = a.get("conns", 5000)?;
    let concurrency: usize = a.get("concurrency", 200)?;
    let started = Instant::now();
    let gate = Arc::new(Semaphore::new(concurrency.max(1)));
    let (payload, frame) = masked_message(16);
    let (payload, frame) = (Arc::new(payload), Arc::new(frame));
    let mut set = JoinSet::new();
    for _ in 0..conns {
        let (addr, path, gate) = (addr.clone(), path.clone(), gate.clone());
        let (payload, frame) = (payload.clone(), frame.clone());
        set.spawn(async move {
            let _permit = gate
                .acquire_owned()
                .await
                .map_err(|e| other(e.to_string()))?;
            let (mut s, mut buf) = ws_connect(&addr, &path).await?;
            echo_once(&mut s, &mut buf, &frame, &payload).await?;
            buf.shrink_to_fit();
            Ok::<_, io::Error>((s, buf))
        });
    }
    let mut open = Vec::with_capacity(conns);
    let mut failed = 0usize;
    let mut first_error = None;
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(Ok(c)) => open.push(c),
            Ok(Err(e)) => {
                failed += 1;
                first_error.get_or_insert(e.to_string());
            }
            Err(e) => {
                failed += 1;
                first_error.get_or_insert(e.to_string());
            }
        }
    }
    let err = first_error
        .map(|e| format!(",\"first_error\":{e:?}"))
        .unwrap_or_default();
    emit(&format!(
        "{{\"event\":\"open\",\"open\":{},\"failed\":{failed},\"seconds\":{:.3}{err}}}",
        open.len(),
        started.elapsed().as_secs_f64()
    ));
    // Hold every connection idle until the harness has measured, then close them all cleanly.
    let mut line = String::new();
    let _ = tokio::io::BufReader::new(tokio::io::stdin())
        .read_line(&mut line)
        .await;
    let mut closing = JoinSet::new();
    for (s, buf) in open {
        let gate = gate.clone();
        closing.spawn(async move {
            let _permit = gate.acquire_owned().await.ok();
            ws_close(s, buf).await
        });
    }
    let mut closed = 0usize;
    while let Some(r) = closing.join_next().await {
        closed += usize::from(matches!(r, Ok(true)));
    }
    emit(&format!("{{\"event\":\"closed\",\"closed\":{closed}}}"));
    Ok(())
}

/// One Engine.IO polling session: the long-poll connection and the POST connection.
struct EioSession {
    addr: String,
    sid: String,
    cookie: String,
    poll: Conn,
    post: Conn,
}

impl EioSession {
    async fn open(addr: &str) -> io::Result<EioSession> {
        let mut poll = Conn::connect(addr).await?;
        poll.send(
            format!("GET /engine.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: {addr}\r\n\r\n")
                .as_bytes(),
        )
        .await?;
        let r = poll.recv().await?;
        if r.status != 200 {
            return Err(other(format!("handshake answered {}", r.status)));
        }
        let sid =
            eio::sid_from_open_packet(&r.body).ok_or_else(|| other("no sid in open packet"))?;
        // Keep `name=value` of each Set-Cookie (the proxy's stickiness cookie).
        let cookie = r
            .set_cookie
            .iter()
            .filter_map(|c| c.split(';').next())
            .collect::<Vec<_>>()
            .join("; ");
        if r.close {
            poll = Conn::connect(addr).await?;
        }
        let post = Conn::connect(addr).await?;
        Ok(EioSession {
            addr: addr.to_string(),
            sid,
            cookie,
            poll,
            post,
        })
    }

    fn request(&self, method: &str, body: &[u8]) -> Vec<u8> {
        let mut r = format!(
            "{method} /engine.io/?EIO=4&transport=polling&sid={} HTTP/1.1\r\nHost: {}\r\n",
            self.sid, self.addr
        );
        if !self.cookie.is_empty() {
            r.push_str(&format!("Cookie: {}\r\n", self.cookie));
        }
        if method == "POST" {
            r.push_str(&format!(
                "Content-Type: text/plain;charset=UTF-8\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        r.push_str("\r\n");
        let mut r = r.into_bytes();
        r.extend_from_slice(body);
        r
    }

    /// One round trip: long-poll GET pending, POST a message, the GET returns it.
    async fn round_trip(&mut self, message: &[u8]) -> io::Result<()> {
        let get = self.request("GET", b"");
        self.poll.send(&get).await?;
        let post = self.request("POST", message);
        self.post.send(&post).await?;
        let posted = self.post.recv().await?;
        if posted.status != 200 {
            return Err(other(format!("POST answered {}", posted.status)));
        }
        if posted.close {
            self.post = Conn::connect(&self.addr).await?;
        }
        let polled = self.poll.recv().await?;
        if polled.status != 200 || polled.body != message {
            return Err(other(format!(
                "long-poll answered {} {:?}",
                polled.status,
                String::from_utf8_lossy(&polled.body)
            )));
        }
        if polled.close {
            self.poll = Conn::connect(&self.addr).await?;
        }
        Ok(())
    }
}

async fn eio_round_trips(a: &Args) -> Result<(), String> {
    let addr = a.required("addr")?.to_string();
    let sessions: usize = a.get("sessions", 64)?;
    let warmup: f64 = a.get("warmup", 1.0)?;
    let duration: f64 = a.get("duration", 5.0)?;
    let mut opened = Vec::with_capacity(sessions);
    for _ in 0..sessions {
        let s = EioSession::open(&addr)
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        opened.push(tokio::sync::Mutex::new(Some(s)));
    }
    let opened = Arc::new(opened);
    let tally = timed(sessions, warmup, duration, |i, window| {
        let opened = opened.clone();
        async move {
            let mut tally = Tally::default();
            let Some(mut session) = opened[i].lock().await.take() else {
                return tally;
            };
            let mut n = 0u64;
            while Instant::now() < window.end {
                n += 1;
                let message = format!("4[\"msg\",{i},{n}]").into_bytes();
                let t0 = Instant::now();
                let result = session.round_trip(&message).await;
                if !tally.record(&window, t0, result) {
                    return tally;
                }
            }
            // Close the session so the backend forgets it.
            let close = session.request("POST", b"1");
            if session.post.send(&close).await.is_ok() {
                let _ = session.post.recv().await;
            }
            tally
        }
    })
    .await;
    report("eio", duration, sessions, tally);
    Ok(())
}

fn main() {
    let mut argv = std::env::args().skip(1);
    let command = argv.next().unwrap_or_default();
    let result = Args::parse(argv).and_then(|a| {
        let rt =
            switchyard_bench_tools::runtime(a.get("threads", 1)?).map_err(|e| e.to_string())?;
        rt.block_on(async {
            match command.as_str() {
                "ws-echo" => ws_echo(&a).await,
                "ws-idle" => ws_idle(&a).await,
                "eio" => eio_round_trips(&a).await,
                _ => {
                    Err("usage: bench-client ws-echo|ws-idle|eio --addr HOST:PORT [options]".into())
                }
            }
        })
    });
    if let Err(e) = result {
        emit(&format!("{{\"event\":\"error\",\"error\":{e:?}}}"));
        std::process::exit(1);
    }
}
