//! End-to-end test harness: the `switchyard` binary (or HAProxy) started on a
//! generated configuration, recording backends on loopback, raw-socket clients.
//!
//! Everything binds 127.0.0.1 port 0 (or a port just found free that way);
//! every process and thread started here stops when its handle drops.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// A port for a proxy to listen on, free a moment ago. Chosen below 32768,
/// outside Linux's ephemeral range, so that no port-0 bind elsewhere (our
/// backends, other tests) can be handed the same port before the proxy binds
/// it; spread by process id so that concurrent test binaries rarely meet.
pub fn free_port() -> u16 {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let start = (std::process::id() as usize * 7919) % 12000;
    for _ in 0..12000 {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let port = 20000 + ((start + n * 13) % 12000) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port between 20000 and 32000");
}

// === Recording backends ===

/// One request as a backend received it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Sequence number of the TCP connection it arrived on (per backend).
    pub conn: usize,
    pub request_line: String,
    /// Headers exactly as received (name case kept), in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Seen {
    /// All values of a header (case-insensitive name).
    pub fn all(&self, name: &str) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.all(name).into_iter().next()
    }

    pub fn path(&self) -> &str {
        self.request_line.split(' ').nth(1).unwrap_or("")
    }

    /// The head as lines `name: value` with names lower-cased (for comparisons).
    pub fn normalised_headers(&self) -> Vec<String> {
        self.headers
            .iter()
            .map(|(n, v)| format!("{}: {v}", n.to_ascii_lowercase()))
            .collect()
    }
}

/// What a backend does with a request.
pub enum Reply {
    /// 200 with body = backend name, keep-alive unless the request said close.
    Ok,
    /// A full raw response, then keep the connection open for more requests.
    Raw(Vec<u8>),
    /// Wait, then answer.
    After(Duration, Box<Reply>),
    /// Close the connection without answering.
    Close,
    /// Answer 101 (with or without `Sec-WebSocket-Accept`), echo bytes until
    /// EOF, then send `after-eof` and close.
    Upgrade { accept: bool, extra_headers: String },
}

type Handler = dyn Fn(&Seen) -> Reply + Send + Sync;

/// A recording HTTP/1.1 server on 127.0.0.1.
pub struct Backend {
    pub name: String,
    pub port: u16,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    pub connections: Arc<AtomicUsize>,
    /// Requests being processed right now.
    pub active: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Backend {
    pub fn start(name: &str) -> Backend {
        Self::with(name, |_| Reply::Ok)
    }

    pub fn on_port(name: &str, port: u16) -> Backend {
        Self::bind(
            name,
            TcpListener::bind(("127.0.0.1", port)).expect("bind backend"),
            Arc::new(|_: &Seen| Reply::Ok),
        )
    }

    pub fn with(name: &str, handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Backend {
        Self::bind(
            name,
            TcpListener::bind("127.0.0.1:0").unwrap(),
            Arc::new(handler),
        )
    }

    pub fn with_on_port(
        name: &str,
        port: u16,
        handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static,
    ) -> Backend {
        Self::bind(
            name,
            TcpListener::bind(("127.0.0.1", port)).expect("bind backend"),
            Arc::new(handler),
        )
    }

    fn bind(name: &str, listener: TcpListener, handler: Arc<Handler>) -> Backend {
        let port = listener.local_addr().unwrap().port();
        let b = Backend {
            name: name.to_owned(),
            port,
            seen: Arc::default(),
            connections: Arc::default(),
            active: Arc::default(),
            stop: Arc::default(),
        };
        let (seen, conns, active, stop, name) = (
            b.seen.clone(),
            b.connections.clone(),
            b.active.clone(),
            b.stop.clone(),
            b.name.clone(),
        );
        thread::spawn(move || {
            for stream in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let id = conns.fetch_add(1, Ordering::SeqCst);
                let (seen, active, handler, name) =
                    (seen.clone(), active.clone(), handler.clone(), name.clone());
                thread::spawn(move || serve(stream, id, &name, &seen, &active, &*handler));
            }
        });
        b
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn serve(
    stream: TcpStream,
    id: usize,
    name: &str,
    seen: &Mutex<Vec<Seen>>,
    active: &AtomicUsize,
    handler: &Handler,
) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = stream;
    loop {
        let Some(req) = read_request(&mut reader, id) else {
            return;
        };
        let close = req
            .header("connection")
            .is_some_and(|c| c.eq_ignore_ascii_case("close"))
            || (req.request_line.ends_with("HTTP/1.0") && req.header("connection").is_none());
        seen.lock().unwrap().push(req.clone());
        active.fetch_add(1, Ordering::SeqCst);
        let keep = respond(&mut out, &mut reader, name, handler(&req), close);
        active.fetch_sub(1, Ordering::SeqCst);
        if !keep {
            let _ = out.shutdown(Shutdown::Both);
            return;
        }
    }
}

fn respond(
    out: &mut TcpStream,
    reader: &mut BufReader<TcpStream>,
    name: &str,
    reply: Reply,
    close: bool,
) -> bool {
    match reply {
        Reply::Ok => {
            let conn = if close { "connection: close\r\n" } else { "" };
            let r = format!("HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n{conn}\r\n{name}", name.len());
            out.write_all(r.as_bytes()).is_ok() && !close
        }
        Reply::Raw(bytes) => out.write_all(&bytes).is_ok() && !close,
        Reply::After(d, inner) => {
            thread::sleep(d);
            respond(out, reader, name, *inner, close)
        }
        Reply::Close => false,
        Reply::Upgrade {
            accept,
            extra_headers,
        } => {
            let mut r = String::from(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n",
            );
            if accept {
                r.push_str("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n");
            }
            r.push_str(&extra_headers);
            r.push_str("\r\n");
            if out.write_all(r.as_bytes()).is_err() {
                return false;
            }
            let buffered = reader.buffer().to_vec();
            reader.consume(buffered.len());
            let _ = out.write_all(&buffered);
            let mut buf = [0u8; 4096];
            loop {
                match reader.get_mut().read(&mut buf) {
                    Ok(0) => {
                        // Half-close seen: one last message after the client's FIN.
                        let _ = out.write_all(b"after-eof");
                        break;
                    }
                    Err(_) => break,
                    Ok(n) => {
                        if out.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                }
            }
            let _ = out.shutdown(Shutdown::Write);
            false
        }
    }
}

fn read_request(reader: &mut BufReader<TcpStream>, conn: usize) -> Option<Seen> {
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if !line.trim().is_empty() {
            break;
        }
    }
    let request_line = line.trim_end().to_owned();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (n, v) = h.split_once(':')?;
        headers.push((n.to_owned(), v.trim().to_owned()));
    }
    let mut seen = Seen {
        conn,
        request_line,
        headers,
        body: Vec::new(),
    };
    if let Some(len) = seen
        .header("content-length")
        .and_then(|l| l.parse::<usize>().ok())
    {
        let mut body = vec![0u8; len];
        reader.read_exact(&mut body).ok()?;
        seen.body = body;
    } else if seen
        .header("transfer-encoding")
        .is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
    {
        seen.body = read_chunked(reader)?;
    }
    Some(seen)
}

fn read_chunked(reader: &mut BufReader<TcpStream>) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut size = String::new();
        reader.read_line(&mut size).ok()?;
        let n = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
        if n == 0 {
            loop {
                let mut t = String::new();
                reader.read_line(&mut t).ok()?;
                if t.trim().is_empty() {
                    return Some(body);
                }
            }
        }
        let mut chunk = vec![0u8; n + 2];
        reader.read_exact(&mut chunk).ok()?;
        body.extend_from_slice(&chunk[..n]);
    }
}

/// A gate that a test opens: backend handlers wait on it instead of sleeping
/// for a fixed time, so that "the server is busy" lasts exactly as long as
/// the test needs however slowly a loaded machine runs it. Every wait is
/// bounded by its `limit`, so a failing test cannot hang.
#[derive(Default)]
pub struct Gate {
    open: Mutex<bool>,
    cv: std::sync::Condvar,
    /// Handlers waiting at the gate right now.
    pub waiting: AtomicUsize,
}

impl Gate {
    /// Blocks until the gate is open, at most `limit`.
    pub fn wait(&self, limit: Duration) {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let open = self.open.lock().unwrap();
        let _ = self.cv.wait_timeout_while(open, limit, |o| !*o).unwrap();
        self.waiting.fetch_sub(1, Ordering::SeqCst);
    }

    /// Opens (`true`: waiters go on) or closes the gate.
    pub fn set(&self, open: bool) {
        *self.open.lock().unwrap() = open;
        self.cv.notify_all();
    }
}

// === The proxy under test ===

/// Which program runs the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Switchyard,
    Haproxy,
}

/// A running proxy process; killed on drop.
pub struct Proxy {
    pub child: Child,
    pub engine: Engine,
    pub stdout: Arc<Mutex<Vec<String>>>,
    pub stderr: Arc<Mutex<Vec<String>>>,
    pub config_path: std::path::PathBuf,
}

static CONFIGS: AtomicUsize = AtomicUsize::new(0);

pub const HAPROXY: &str = "/usr/sbin/haproxy";

impl Proxy {
    /// Waits until `accepts` (a connect to `what`), panicking with the proxy's stderr
    /// if the proxy exits first or `deadline` passes.
    fn wait_accepting(&mut self, what: &str, deadline: Instant, accepts: impl Fn() -> bool) {
        while !accepts() {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{:?} exited with {status} at start; stderr: {:?}",
                    self.engine,
                    self.stderr_lines()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{:?} did not listen on {what}; stderr: {:?}",
                self.engine,
                self.stderr_lines()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts switchyard on `config` and waits until `port` accepts connections.
    pub fn start(config: &str, port: u16) -> Proxy {
        Self::start_engine(Engine::Switchyard, config, port)
    }

    pub fn start_engine(engine: Engine, config: &str, port: u16) -> Proxy {
        Self::start_args(engine, config, port, &[])
    }

    /// Starts with extra command-line arguments; waits for `port` to accept.
    pub fn start_args(engine: Engine, config: &str, port: u16, args: &[String]) -> Proxy {
        let n = CONFIGS.fetch_add(1, Ordering::SeqCst);
        let path =
            std::env::temp_dir().join(format!("switchyard-test-{}-{n}.cfg", std::process::id()));
        std::fs::write(&path, config).unwrap();
        let program = match engine {
            Engine::Switchyard => env!("CARGO_BIN_EXE_switchyard"),
            Engine::Haproxy => HAPROXY,
        };
        let mut child = Command::new(program)
            .arg("-f")
            .arg(&path)
            .arg("-db")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
        let stdout = collect_lines(child.stdout.take().unwrap());
        let stderr = collect_lines(child.stderr.take().unwrap());
        let mut p = Proxy {
            child,
            engine,
            stdout,
            stderr,
            config_path: path,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        p.wait_accepting(&port.to_string(), deadline, || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        // The port accepting does not mean that everything is bound:
        // switchyard binds its runtime API socket after the frontends, so a
        // test talking to it at once could find no socket yet (seen as
        // ENOENT/ECONNREFUSED on a loaded machine). Wait for each unix
        // `stats socket` of the configuration to accept as well.
        for path in unix_stats_sockets(config) {
            p.wait_accepting(&path, deadline, || {
                std::os::unix::net::UnixStream::connect(&path).is_ok()
            });
        }
        p
    }

    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }

    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until a stderr line contains `needle`; returns how long it took.
    pub fn wait_stderr(&self, needle: &str, limit: Duration) -> Option<Duration> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if self.stderr_lines().iter().any(|l| l.contains(needle)) {
                return Some(start.elapsed());
            }
            thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Sends a signal by name (`TERM`, `INT`).
    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for exit up to `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.config_path);
    }
}

/// The unix-socket paths of the `stats socket` lines of a configuration
/// (`ipv4@`/`ipv6@` addresses are left out: the tests probe those themselves).
fn unix_stats_sockets(config: &str) -> Vec<String> {
    config
        .lines()
        .filter_map(|l| l.trim().strip_prefix("stats socket "))
        .filter_map(|rest| rest.split_whitespace().next())
        .filter(|a| !a.starts_with("ipv4@") && !a.starts_with("ipv6@"))
        .map(|a| a.strip_prefix("unix@").unwrap_or(a).to_owned())
        .collect()
}

fn collect_lines(r: impl Read + Send + 'static) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let l2 = lines.clone();
    thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            l2.lock().unwrap().push(line);
        }
    });
    lines
}

/// True when HAProxy-based tests should run; panics with a clear message when
/// HAProxy is missing unless `SWITCHYARD_SKIP_HAPROXY=1`.
pub fn haproxy_available() -> bool {
    if std::path::Path::new(HAPROXY).exists() {
        return true;
    }
    if std::env::var("SWITCHYARD_SKIP_HAPROXY").as_deref() == Ok("1") {
        eprintln!("HAProxy not found at {HAPROXY}: skipped (SWITCHYARD_SKIP_HAPROXY=1)");
        return false;
    }
    panic!("HAProxy 2.6 is required at {HAPROXY} for differential tests (apt-get install haproxy), or set SWITCHYARD_SKIP_HAPROXY=1");
}

// === Clients ===

/// A parsed response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub status_line: String,
    /// Headers as received, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The exact bytes of the head.
    pub raw_head: String,
}

impl Response {
    pub fn all(&self, name: &str) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.all(name).into_iter().next()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A client connection that can send several requests (keep-alive).
pub struct Client {
    pub reader: BufReader<TcpStream>,
}

impl Client {
    pub fn connect(port: u16) -> Client {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect to proxy");
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        Client {
            reader: BufReader::new(s),
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.reader.get_mut().write_all(bytes).unwrap();
    }

    /// `GET <path> HTTP/1.1` with Host and the extra header lines.
    pub fn get(&mut self, path: &str, extra: &str) -> Response {
        self.send(format!("GET {path} HTTP/1.1\r\nHost: test\r\n{extra}\r\n").as_bytes());
        self.read_response(false).expect("response")
    }

    /// Reads one response (`head_only` for HEAD requests). None on EOF.
    pub fn read_response(&mut self, head_only: bool) -> Option<Response> {
        let mut raw_head = String::new();
        let mut status_line = String::new();
        if self.reader.read_line(&mut status_line).ok()? == 0 {
            return None;
        }
        raw_head.push_str(&status_line);
        let status_line = status_line.trim_end().to_owned();
        let status = status_line.split(' ').nth(1)?.parse().ok()?;
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            self.reader.read_line(&mut h).ok()?;
            raw_head.push_str(&h);
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (n, v) = h.split_once(':')?;
            headers.push((n.to_owned(), v.trim().to_owned()));
        }
        let mut r = Response {
            status,
            status_line,
            headers,
            body: Vec::new(),
            raw_head,
        };
        if head_only || status == 101 || status == 204 || status == 304 {
            return Some(r);
        }
        if let Some(len) = r
            .header("content-length")
            .and_then(|l| l.parse::<usize>().ok())
        {
            let mut body = vec![0u8; len];
            self.reader.read_exact(&mut body).ok()?;
            r.body = body;
        } else if r
            .header("transfer-encoding")
            .is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
        {
            r.body = read_chunked(&mut self.reader)?;
        } else {
            let _ = self.reader.read_to_end(&mut r.body);
        }
        Some(r)
    }

    /// True when the proxy closed the connection (EOF within `limit`).
    pub fn is_closed(&mut self, limit: Duration) -> bool {
        self.reader.get_ref().set_read_timeout(Some(limit)).unwrap();
        let mut b = [0u8; 1];
        let r = matches!(self.reader.read(&mut b), Ok(0))
            || matches!(self.reader.read(&mut b), Err(ref e) if e.kind() == std::io::ErrorKind::ConnectionReset);
        self.reader
            .get_ref()
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        r
    }
}

/// One request on a fresh connection; returns the response.
pub fn get(port: u16, path: &str, extra: &str) -> Response {
    Client::connect(port).get(path, extra)
}

/// Sends raw bytes on a fresh connection and returns everything read until EOF or `wait`.
pub fn raw_exchange(port: u16, bytes: &[u8], wait: Duration) -> (Vec<u8>, Duration) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let start = Instant::now();
    s.write_all(bytes).unwrap();
    s.set_read_timeout(Some(wait)).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    (out, start.elapsed())
}

/// Backend names of the responses' bodies (the default `Reply::Ok` body).
pub fn names(responses: &[Response]) -> Vec<String> {
    responses.iter().map(Response::text).collect()
}

/// Counts per key.
pub fn tally(items: &[String]) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for i in items {
        *m.entry(i.clone()).or_insert(0) += 1;
    }
    m
}

// === The seed topology ===

/// The reference topology's file, `../shared/seed/haproxy.cfg` from the repository root.
pub fn seed_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/seed/haproxy.cfg")
}

/// Ports of one seed run: the balancer, http-servers node-1/2, socket-servers node-1/2.
pub struct SeedPorts {
    pub lb: u16,
    pub http: [u16; 2],
    pub socket: [u16; 2],
}

/// The seed configuration verbatim except for its five ports.
pub fn seed_config(p: &SeedPorts) -> String {
    let text = std::fs::read_to_string(seed_path()).expect("seed configuration");
    text.replace("127.0.0.1:3000", &format!("127.0.0.1:{}", p.lb))
        .replace("127.0.0.1:4000", &format!("127.0.0.1:{}", p.http[0]))
        .replace("127.0.0.1:4001", &format!("127.0.0.1:{}", p.http[1]))
        .replace("127.0.0.1:5000", &format!("127.0.0.1:{}", p.socket[0]))
        .replace("127.0.0.1:5001", &format!("127.0.0.1:{}", p.socket[1]))
}

/// The seed topology with four recording backends.
pub struct Seed {
    pub http: [Backend; 2],
    pub socket: [Backend; 2],
    pub proxy: Proxy,
    pub port: u16,
}

impl Seed {
    pub fn start() -> Seed {
        Self::start_with(Engine::Switchyard, |_| Reply::Ok)
    }

    /// `socket_reply` scripts the socket-servers (both nodes).
    pub fn start_with(
        engine: Engine,
        socket_reply: impl Fn(&Seen) -> Reply + Send + Sync + Clone + 'static,
    ) -> Seed {
        let http = [Backend::start("http-1"), Backend::start("http-2")];
        let socket = [
            Backend::with("socket-1", socket_reply.clone()),
            Backend::with("socket-2", socket_reply),
        ];
        let port = free_port();
        let ports = SeedPorts {
            lb: port,
            http: [http[0].port, http[1].port],
            socket: [socket[0].port, socket[1].port],
        };
        let proxy = Proxy::start_engine(engine, &seed_config(&ports), port);
        Seed {
            http,
            socket,
            proxy,
            port,
        }
    }
}
