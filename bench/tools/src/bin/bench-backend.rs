//! `bench-backend`: the origin servers behind every proxy in the benchmark.
//!
//! One process serves several listeners so the harness starts the backends once per run and
//! every proxy forwards to the very same processes:
//!
//! - `--http A,B`: "http servers". `GET /16k` and `GET /1m` answer 16 KiB and 1 MiB bodies, any
//!   other path a 13-byte `Hello, world` (except `/engine.io…`, which answers 404 so that a
//!   proxy routing Engine.IO traffic to the wrong backend shows up as errors).
//! - `--socket C,D`: "socket servers". `/engine.io/` speaks the polling side of Engine.IO v4
//!   (handshake, long-poll GET, POSTed messages echoed into the pending GET, close); sessions are
//!   per listener, so a request routed to the other server without stickiness gets a 400.
//! - Either kind answers a WebSocket upgrade (any path) with a frame-for-frame echo.
//!
//! Everything is written for low, predictable cost per request: responses are pre-rendered,
//! HTTP/1.1 keep-alive is honoured, `Connection: close` closes after the response, nothing is
//! logged. `--threads N` selects the runtime (1 = current-thread).

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use switchyard_bench_tools::args::Args;
use switchyard_bench_tools::{eio, ws};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::oneshot;

/// Largest request head accepted before answering 431.
const MAX_HEAD: usize = 64 * 1024;
/// Largest request body accepted (Engine.IO POSTs are small).
const MAX_BODY: usize = 1 << 20;
/// Largest WebSocket frame echoed.
const MAX_FRAME: usize = 1 << 20;
/// How long a long-poll GET waits before answering with a ping packet, as Engine.IO's default.
const PING_INTERVAL: Duration = Duration::from_secs(25);

const SMALL_BODY: &[u8] = b"Hello, world\n";

/// What a listener serves.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Http,
    Socket,
}

/// One Engine.IO session: packets waiting for the next GET, and the GET waiting for packets.
#[derive(Default)]
struct Session {
    queue: Vec<u8>,
    waiter: Option<oneshot::Sender<()>>,
}

/// Per-listener state.
struct Site {
    role: Role,
    port: u16,
    sessions: Mutex<HashMap<String, Session>>,
    next_sid: AtomicU64,
}

/// The pre-rendered static responses.
#[derive(Clone, Copy)]
enum Static {
    Small,
    K16,
    M1,
}

fn static_response(which: Static, keep_alive: bool) -> &'static [u8] {
    static ALL: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    let all = ALL.get_or_init(|| {
        let k16: Vec<u8> = (0..16 * 1024).map(|i| b'a' + (i % 26) as u8).collect();
        let m1: Vec<u8> = (0..1024 * 1024).map(|i| b'a' + (i % 26) as u8).collect();
        let mut v = Vec::new();
        for body in [SMALL_BODY, &k16, &m1] {
            v.push(text_response("200 OK", body, true));
            v.push(text_response("200 OK", body, false));
        }
        v
    });
    &all[which as usize * 2 + usize::from(!keep_alive)]
}

/// A complete response with a Content-Length body (and `Connection: close` when closing).
fn text_response(status: &str, body: &[u8], keep_alive: bool) -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Length: {}\r\n{}\r\n",
        body.len(),
        if keep_alive { "" } else { "Connection: close\r\n" }
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

/// Where a request goes.
enum Route {
    Static(Static),
    NotFound,
    EngineIo { post: bool, target: String },
}

/// What the server needs from a request head.
struct Head {
    len: usize,
    keep_alive: bool,
    content_length: usize,
    chunked: bool,
    ws_key: Option<String>,
    route: Route,
}

fn parse_request(buf: &[u8], role: Role) -> Result<Option<Head>, httparse::Error> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf)? {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial => return Ok(None),
    };
    let http10 = req.version == Some(0);
    let mut keep_alive = !http10;
    let mut content_length = 0;
    let mut chunked = false;
    let mut upgrade_ws = false;
    let mut ws_key = None;
    for h in req.headers.iter() {
        let name = h.name;
        if name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|b| *b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    keep_alive = false;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    keep_alive = true;
                }
            }
        } else if name.eq_ignore_ascii_case("content-length") {
            content_length = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .ok_or(httparse::Error::HeaderValue)?;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = true;
        } else if name.eq_ignore_ascii_case("upgrade") {
            upgrade_ws = h.value.eq_ignore_ascii_case(b"websocket");
        } else if name.eq_ignore_ascii_case("sec-websocket-key") {
            ws_key = std::str::from_utf8(h.value).ok().map(str::to_string);
        }
    }
    let path = req.path.unwrap_or("/");
    let engine_io = path.starts_with("/engine.io");
    let route = match (role, engine_io) {
        (Role::Socket, true) => Route::EngineIo {
            post: req.method == Some("POST"),
            target: path.to_string(),
        },
        (Role::Http, false) if path.starts_with("/16k") => Route::Static(Static::K16),
        (Role::Http, false) if path.starts_with("/1m") => Route::Static(Static::M1),
        (Role::Http, false) => Route::Static(Static::Small),
        _ => Route::NotFound,
    };
    Ok(Some(Head {
        len,
        keep_alive,
        content_length,
        chunked,
        ws_key: if upgrade_ws { ws_key } else { None },
        route,
    }))
}

/// Serves one connection until the peer closes or asks to.
async fn serve(mut s: TcpStream, site: Arc<Site>) -> io::Result<()> {
    s.set_nodelay(true)?;
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    loop {
        let head = loop {
            if !buf.is_empty() {
                match parse_request(&buf, site.role) {
                    Ok(Some(h)) => break h,
                    Ok(None) if buf.len() <= MAX_HEAD => {}
                    Ok(None) => {
                        s.write_all(&text_response(
                            "431 Request Header Fields Too Large",
                            b"",
                            false,
                        ))
                        .await?;
                        return Ok(());
                    }
                    Err(_) => {
                        s.write_all(&text_response("400 Bad Request", b"", false))
                            .await?;
                        return Ok(());
                    }
                }
            }
            if s.read_buf(&mut buf).await? == 0 {
                return Ok(());
            }
        };
        buf.drain(..head.len);
        if head.chunked || head.content_length > MAX_BODY {
            // Every proxy under test forwards the client's Content-Length; chunked requests never
            // occur in the benchmark, so refuse rather than half-support them.
            s.write_all(&text_response("501 Not Implemented", b"", false))
                .await?;
            return Ok(());
        }
        while buf.len() < head.content_length {
            if s.read_buf(&mut buf).await? == 0 {
                return Ok(());
            }
        }
        let body: Vec<u8> = buf.drain(..head.content_length).collect();
        if let Some(key) = head.ws_key {
            return websocket(s, buf, &key).await;
        }
        match head.route {
            Route::Static(which) => s.write_all(static_response(which, head.keep_alive)).await?,
            Route::NotFound => {
                s.write_all(&text_response(
                    "404 Not Found",
                    b"not found\n",
                    head.keep_alive,
                ))
                .await?
            }
            Route::EngineIo { post, target } => {
                let (status, reply) = engine_io(&site, post, &target, &body).await;
                s.write_all(&text_response(status, &reply, head.keep_alive))
                    .await?;
            }
        }
        if !head.keep_alive {
            let _ = s.shutdown().await;
            return Ok(());
        }
    }
}

/// Answers the upgrade and echoes every frame back (pings get pongs, close is returned).
async fn websocket(mut s: TcpStream, mut buf: Vec<u8>, key: &str) -> io::Result<()> {
    let reply = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
        ws::accept_key(key)
    );
    s.write_all(reply.as_bytes()).await?;
    let mut out = Vec::new();
    loop {
        loop {
            let (frame, used) = match ws::decode(&buf, MAX_FRAME) {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
            };
            buf.drain(..used);
            match frame.opcode {
                ws::OP_CLOSE => {
                    ws::encode(&mut out, true, ws::OP_CLOSE, &frame.payload, None);
                    s.write_all(&out).await?;
                    let _ = s.shutdown().await;
                    return Ok(());
                }
                ws::OP_PING => ws::encode(&mut out, true, ws::OP_PONG, &frame.payload, None),
                ws::OP_PONG => {}
                op => ws::encode(&mut out, frame.fin, op, &frame.payload, None),
            }
        }
        if !out.is_empty() {
            s.write_all(&out).await?;
            out.clear();
        }
        if s.read_buf(&mut buf).await? == 0 {
            return Ok(());
        }
    }
}

/// The polling side of Engine.IO v4: returns the status line and the body.
async fn engine_io(site: &Site, post: bool, target: &str, body: &[u8]) -> (&'static str, Vec<u8>) {
    const BAD: &str = "400 Bad Request";
    let q = eio::parse_query(target);
    let unknown = || {
        (
            BAD,
            br#"{"code":1,"message":"Session ID unknown"}"#.to_vec(),
        )
    };
    match (post, q.sid) {
        (false, None) => {
            if q.transport.as_deref() != Some("polling") {
                return (BAD, br#"{"code":0,"message":"Transport unknown"}"#.to_vec());
            }
            let n = site.next_sid.fetch_add(1, Ordering::Relaxed);
            let sid = format!("b{}-{n:x}", site.port);
            let open = format!(
                r#"0{{"sid":"{sid}","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}}"#
            );
            lock(site).insert(sid, Session::default());
            ("200 OK", open.into_bytes())
        }
        (false, Some(sid)) => {
            let rx = {
                let mut sessions = lock(site);
                let Some(session) = sessions.get_mut(&sid) else {
                    return unknown();
                };
                if !session.queue.is_empty() {
                    return ("200 OK", std::mem::take(&mut session.queue));
                }
                let (tx, rx) = oneshot::channel();
                session.waiter = Some(tx);
                rx
            };
            let _ = tokio::time::timeout(PING_INTERVAL, rx).await;
            let mut sessions = lock(site);
            match sessions.get_mut(&sid) {
                None => ("200 OK", b"1".to_vec()),
                Some(s) if s.queue.is_empty() => ("200 OK", b"2".to_vec()),
                Some(s) => ("200 OK", std::mem::take(&mut s.queue)),
            }
        }
        (true, Some(sid)) => {
            let mut sessions = lock(site);
            let Some(session) = sessions.get_mut(&sid) else {
                return unknown();
            };
            let mut closed = false;
            for packet in eio::packets(body) {
                match packet[0] {
                    b'4' => {
                        if !session.queue.is_empty() {
                            session.queue.push(eio::RECORD_SEPARATOR);
                        }
                        session.queue.extend_from_slice(packet);
                    }
                    b'1' => closed = true,
                    _ => {}
                }
            }
            if closed {
                // Dropping the waiter's sender wakes the pending GET, which then sees no session.
                sessions.remove(&sid);
            } else if !session.queue.is_empty() {
                if let Some(tx) = session.waiter.take() {
                    let _ = tx.send(());
                }
            }
            ("200 OK", b"ok".to_vec())
        }
        (true, None) => unknown(),
    }
}

fn lock(site: &Site) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
    site.sessions.lock().unwrap_or_else(|e| e.into_inner())
}

async fn run(listeners: Vec<(String, Role)>) -> io::Result<()> {
    let mut accepting = Vec::new();
    let mut bound = Vec::new();
    for (addr, role) in listeners {
        let addr: std::net::SocketAddr = addr
            .parse()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{addr}: {e}")))?;
        let socket = TcpSocket::new_v4()?;
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        let listener = socket.listen(4096)?;
        let local = listener.local_addr()?;
        bound.push(format!(
            "{}={local}",
            if role == Role::Http { "http" } else { "socket" }
        ));
        let site = Arc::new(Site {
            role,
            port: local.port(),
            sessions: Mutex::new(HashMap::new()),
            next_sid: AtomicU64::new(1),
        });
        accepting.push(tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((s, _)) => {
                        tokio::spawn(serve(s, site.clone()));
                    }
                    // Out of descriptors or similar: back off instead of spinning.
                    Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                }
            }
        }));
    }
    // The harness (and the tests, which bind port 0) wait for this line.
    println!("ready {}", bound.join(" "));
    for task in accepting {
        let _ = task.await;
    }
    Ok(())
}

fn main() {
    let parsed = Args::parse(std::env::args().skip(1)).and_then(|a| {
        let mut listeners = Vec::new();
        for (flag, role) in [("http", Role::Http), ("socket", Role::Socket)] {
            for addr in a
                .optional(flag)
                .unwrap_or("")
                .split(',')
                .filter(|s| !s.is_empty())
            {
                listeners.push((addr.to_string(), role));
            }
        }
        if listeners.is_empty() {
            return Err(
                "usage: bench-backend --http ADDR[,ADDR] --socket ADDR[,ADDR] [--threads N]".into(),
            );
        }
        Ok((listeners, a.get("threads", 1usize)?))
    });
    let (listeners, threads) = match parsed {
        Ok(p) => p,
        Err(e) => {
            eprintln!("bench-backend: {e}");
            std::process::exit(2);
        }
    };
    let result =
        switchyard_bench_tools::runtime(threads).and_then(|rt| rt.block_on(run(listeners)));
    if let Err(e) = result {
        eprintln!("bench-backend: {e}");
        std::process::exit(1);
    }
}
