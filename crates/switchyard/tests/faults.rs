//! Backends that fail under the proxy (issue 6, "Faults"): connections reset
//! after the request was read, reused connections reset, a backend killed
//! under load, and `retry-on` events. Idempotent requests are never lost;
//! a POST that reached a server is never delivered twice (retry.rs).

mod support;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use support::{free_port, Client, Proxy};

/// What a [`Faulty`] backend does with a request: `conn` is the connection's
/// sequence number, `nth` the request's number on it (both from 0).
#[derive(Clone, Copy, Debug)]
enum Act {
    /// 200, body = backend name, keep-alive.
    Ok,
    /// Close with an RST (SO_LINGER 0) without answering.
    Reset,
    /// Close (FIN) without answering.
    Close,
    /// Answer this status (keep-alive).
    Status(u16),
    /// Bytes that are not HTTP, then close.
    Junk,
    /// Answer 200 after this many milliseconds.
    Slow(u64),
}

type Policy = dyn Fn(usize, usize, &str) -> Act + Send + Sync;

/// A backend that records `METHOD path x-id` per request and acts per policy;
/// `kill` closes its listener and every connection (a request being handled
/// gets no answer), as `kill -9` would.
struct Faulty {
    name: String,
    port: u16,
    seen: Arc<Mutex<Vec<String>>>,
    dead: Arc<AtomicBool>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl Faulty {
    fn start(
        name: &str,
        port: u16,
        policy: impl Fn(usize, usize, &str) -> Act + Send + Sync + 'static,
    ) -> Faulty {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind faulty backend");
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let dead: Arc<AtomicBool> = Arc::default();
        let policy: Arc<Policy> = Arc::new(policy);
        let (s, d, n) = (seen.clone(), dead.clone(), name.to_owned());
        let accept = thread::spawn(move || {
            let conns = AtomicUsize::new(0);
            let mut workers = Vec::new();
            while !d.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let id = conns.fetch_add(1, Ordering::SeqCst);
                        let (s, d, p, n) = (s.clone(), d.clone(), policy.clone(), n.clone());
                        workers.push(thread::spawn(move || serve(stream, id, &n, &s, &d, &*p)));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(2)),
                }
            }
            drop(listener);
            for w in workers {
                let _ = w.join();
            }
        });
        Faulty {
            name: name.to_owned(),
            port,
            seen,
            dead,
            threads: vec![accept],
        }
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }

    fn kill(&mut self) {
        self.dead.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Faulty {
    fn drop(&mut self) {
        self.kill();
    }
}

fn serve(
    stream: TcpStream,
    id: usize,
    name: &str,
    seen: &Mutex<Vec<String>>,
    dead: &AtomicBool,
    policy: &Policy,
) {
    // Short read timeouts so that a kill is seen at once.
    stream
        .set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = stream;
    for nth in 0.. {
        let Some((line, xid)) = read_request(&mut reader, dead) else {
            return;
        };
        let method = line.split(' ').next().unwrap_or("").to_owned();
        let path = line.split(' ').nth(1).unwrap_or("").to_owned();
        seen.lock().unwrap().push(format!("{method} {path} {xid}"));
        let act = policy(id, nth, &method);
        let reply = |status: u16, out: &mut TcpStream| {
            let r = format!(
                "HTTP/1.1 {status} X\r\ncontent-length: {}\r\n\r\n{name}",
                name.len()
            );
            out.write_all(r.as_bytes()).is_ok()
        };
        let ok = match act {
            Act::Ok => reply(200, &mut out),
            Act::Status(s) => reply(s, &mut out),
            Act::Slow(ms) => {
                let until = Instant::now() + Duration::from_millis(ms);
                while Instant::now() < until {
                    if dead.load(Ordering::SeqCst) {
                        return;
                    }
                    thread::sleep(Duration::from_millis(1));
                }
                reply(200, &mut out)
            }
            Act::Reset => {
                let _ = socket2::SockRef::from(&out).set_linger(Some(Duration::ZERO));
                return;
            }
            Act::Close => return,
            Act::Junk => {
                let _ = out.write_all(b"\x00\x01 this is not http\r\n\r\n");
                return;
            }
        };
        if !ok || dead.load(Ordering::SeqCst) {
            return;
        }
    }
}

/// Reads one request head (and a `content-length` body); returns the request
/// line and the `x-id` header. None on EOF, error or kill.
fn read_request(reader: &mut BufReader<TcpStream>, dead: &AtomicBool) -> Option<(String, String)> {
    let mut head = String::new();
    let mut line = Vec::new();
    loop {
        if dead.load(Ordering::SeqCst) {
            return None;
        }
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => return None,
            Ok(_) if line.ends_with(b"\n") => {
                let l = String::from_utf8_lossy(&line).into_owned();
                line.clear();
                if l == "\r\n" && !head.is_empty() {
                    break;
                }
                head.push_str(&l);
            }
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return None,
        }
    }
    let mut lines = head.lines();
    let request_line = lines.next()?.to_owned();
    let (mut xid, mut len) = (String::new(), 0usize);
    for h in lines {
        let (n, v) = h.split_once(':')?;
        match n.to_ascii_lowercase().as_str() {
            "x-id" => xid = v.trim().to_owned(),
            "content-length" => len = v.trim().parse().ok()?,
            _ => {}
        }
    }
    let mut body = vec![0u8; len];
    let mut got = 0;
    while got < len {
        match reader.read(&mut body[got..]) {
            Ok(0) => return None,
            Ok(n) => got += n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                if dead.load(Ordering::SeqCst) {
                    return None;
                }
            }
            Err(_) => return None,
        }
    }
    Some((request_line, xid))
}

fn config(port: u16, backend_lines: &str, servers: &[&Faulty]) -> String {
    let mut s = format!(
        "global\n    nbthread 1\n\
         defaults\n    mode http\n    timeout connect 1s\n    timeout client 10s\n    timeout server 10s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n    default_backend be\n\
         backend be\n{backend_lines}"
    );
    for f in servers {
        s.push_str(&format!("    server {} {}\n", f.name, f.addr()));
    }
    s
}

fn request(c: &mut Client, method: &str, path: &str, id: &str, body: &str) -> u16 {
    let len = if method == "POST" || !body.is_empty() {
        format!("content-length: {}\r\n", body.len())
    } else {
        String::new()
    };
    let raw = format!("{method} {path} HTTP/1.1\r\nhost: t\r\nx-id: {id}\r\n{len}\r\n{body}");
    if c.reader.get_mut().write_all(raw.as_bytes()).is_err() {
        return 0;
    }
    c.read_response(false).map_or(0, |r| r.status)
}

fn one(port: u16, method: &str, path: &str, id: &str, body: &str) -> u16 {
    request(&mut Client::connect(port), method, path, id, body)
}

/// Counts per request id over the given backends.
fn deliveries(backends: &[&Faulty]) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for b in backends {
        for s in b.seen() {
            *m.entry(s.rsplit(' ').next().unwrap_or("").to_owned())
                .or_default() += 1;
        }
    }
    m
}

const RETRY_ON: &str = "    retries 3\n    option redispatch 1\n    retry-on conn-failure empty-response response-timeout\n";

#[test]
fn reset_after_reading_get_is_retried_elsewhere_post_is_not() {
    let resetter = Faulty::start("resetter", 0, |_, _, _| Act::Reset);
    let live = Faulty::start("live", 0, |_, _, _| Act::Ok);
    let port = free_port();
    let _p = Proxy::start(&config(port, RETRY_ON, &[&resetter, &live]), port);
    for i in 0..6 {
        assert_eq!(one(port, "GET", "/g", &format!("g{i}"), ""), 200, "GET {i}");
    }
    // Round robin sent some GETs to the resetter first: each reached it once,
    // then went to the live server.
    let reset_gets = resetter.seen().len();
    assert!(reset_gets >= 2, "{:?}", resetter.seen());
    assert_eq!(live.seen().len(), 6);
    let mut statuses = Vec::new();
    for i in 0..6 {
        statuses.push(one(port, "POST", "/p", &format!("p{i}"), "body"));
    }
    let posts_reset = resetter.seen().len() - reset_gets;
    assert!(posts_reset >= 2, "{:?}", resetter.seen());
    // A POST the resetter read is answered 502 and never sent elsewhere.
    assert_eq!(
        statuses.iter().filter(|&&s| s == 502).count(),
        posts_reset,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|&&s| s == 200).count(),
        6 - posts_reset,
        "{statuses:?}"
    );
    for (id, n) in deliveries(&[&resetter, &live]) {
        if id.starts_with('p') {
            assert_eq!(n, 1, "POST {id} delivered {n} times");
        }
    }
}

#[test]
fn reused_connection_reset_after_write_is_retried_without_retry_on() {
    // Default retry-on (conn-failure), no redispatch: only the keep-alive race
    // rule applies. The server answers the first request of a connection and
    // resets the connection when it has read the second.
    let srv = Faulty::start(
        "s",
        0,
        |_, nth, _| if nth == 0 { Act::Ok } else { Act::Reset },
    );
    let port = free_port();
    let _p = Proxy::start(&config(port, "    retries 0\n", &[&srv]), port);
    let mut c = Client::connect(port);
    assert_eq!(request(&mut c, "GET", "/1", "a", ""), 200);
    // On the pooled connection: reset after the server read it; sent once more
    // on a fresh connection.
    assert_eq!(request(&mut c, "GET", "/2", "b", ""), 200);
    assert_eq!(srv.seen(), ["GET /1 a", "GET /2 b", "GET /2 b"]);
    // A POST (even without body) is not replayed: 502, delivered once.
    let mut c = Client::connect(port);
    c.send(b"POST /3 HTTP/1.1\r\nhost: t\r\nx-id: c\r\n\r\n");
    assert_eq!(c.read_response(false).map(|r| r.status), Some(502));
    assert_eq!(deliveries(&[&srv]).get("c"), Some(&1));
}

#[test]
fn retry_on_empty_response_junk_status_and_timeout() {
    let port = free_port();
    // empty-response: the first connection closes without answering.
    let srv = Faulty::start(
        "s",
        0,
        |conn, _, _| if conn == 0 { Act::Close } else { Act::Ok },
    );
    let p = Proxy::start(
        &config(port, "    retry-on empty-response\n", &[&srv]),
        port,
    );
    assert_eq!(one(port, "GET", "/e", "e", ""), 200);
    assert_eq!(srv.seen().len(), 2);
    drop((p, srv));

    // Not listed: junk is not retried (502); listed: it is.
    let port = free_port();
    let srv = Faulty::start(
        "s",
        0,
        |conn, _, _| if conn == 0 { Act::Junk } else { Act::Ok },
    );
    let p = Proxy::start(
        &config(port, "    retry-on empty-response\n", &[&srv]),
        port,
    );
    assert_eq!(one(port, "GET", "/j", "j", ""), 502);
    drop((p, srv));
    let port = free_port();
    let srv = Faulty::start(
        "s",
        0,
        |conn, _, _| if conn == 0 { Act::Junk } else { Act::Ok },
    );
    let p = Proxy::start(&config(port, "    retry-on junk-response\n", &[&srv]), port);
    assert_eq!(one(port, "GET", "/j", "j", ""), 200);
    drop((p, srv));

    // A listed status: GET sent again; a POST gets the status as it was.
    let port = free_port();
    let srv = Faulty::start("s", 0, |conn, _, m| {
        if m == "POST" || conn == 0 {
            Act::Status(503)
        } else {
            Act::Ok
        }
    });
    let p = Proxy::start(&config(port, "    retry-on 503\n", &[&srv]), port);
    assert_eq!(one(port, "GET", "/s", "s1", ""), 200);
    assert_eq!(one(port, "POST", "/s", "s2", "x"), 503);
    assert_eq!(deliveries(&[&srv]).get("s2"), Some(&1));
    drop((p, srv));

    // `retries` bounds the attempts: always 503, retries 2 -> 3 attempts, 503 relayed.
    let port = free_port();
    let srv = Faulty::start("s", 0, |_, _, _| Act::Status(503));
    let p = Proxy::start(
        &config(port, "    retries 2\n    retry-on 503\n", &[&srv]),
        port,
    );
    assert_eq!(one(port, "GET", "/s", "s3", ""), 503);
    assert_eq!(srv.seen().len(), 3);
    drop((p, srv));

    // response-timeout: the first attempt is slower than `timeout server`.
    let port = free_port();
    let srv = Faulty::start(
        "s",
        0,
        |conn, _, _| if conn == 0 { Act::Slow(3000) } else { Act::Ok },
    );
    let cfg = config(
        port,
        "    timeout server 300ms\n    retry-on response-timeout\n",
        &[&srv],
    );
    let p = Proxy::start(&cfg, port);
    let t = Instant::now();
    assert_eq!(one(port, "GET", "/t", "t", ""), 200);
    assert!(
        t.elapsed() < Duration::from_millis(2500),
        "{:?}",
        t.elapsed()
    );
    drop((p, srv));

    // retry-on none: not even a refused connection is retried.
    let port = free_port();
    let dead = free_port();
    let cfg = format!(
        "defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n    default_backend be\n\
         backend be\n    retry-on none\n    server d 127.0.0.1:{dead}\n"
    );
    let _p = Proxy::start(&cfg, port);
    let t = Instant::now();
    assert_eq!(one(port, "GET", "/n", "n", ""), 503);
    // Without retries there is no 1 s turn-around.
    assert!(
        t.elapsed() < Duration::from_millis(900),
        "{:?}",
        t.elapsed()
    );
}

#[test]
fn backend_killed_under_load_loses_no_get() {
    let mut victim = Faulty::start("victim", 0, |_, _, _| Act::Slow(2));
    let vport = victim.port;
    let stable = Faulty::start("stable", 0, |_, _, _| Act::Slow(2));
    let port = free_port();
    let lines = format!("{RETRY_ON}    default-server check inter 100ms fall 2 rise 2\n");
    let _p = Proxy::start(&config(port, &lines, &[&victim, &stable]), port);
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(Mutex::new(Vec::new())),
    );
    let clients: Vec<_> = (0..8)
        .map(|t| {
            let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
            thread::spawn(move || {
                let mut c = Client::connect(port);
                let deadline = Instant::now() + Duration::from_secs(15);
                let mut i = 0;
                while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                    let id = format!("t{t}-{i}");
                    i += 1;
                    match request(&mut c, "GET", "/load", &id, "") {
                        200 => {
                            ok.fetch_add(1, Ordering::SeqCst);
                        }
                        s => {
                            failed.lock().unwrap().push(format!("{id}: {s}"));
                            c = Client::connect(port);
                        }
                    }
                }
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(700));
    let before_kill = ok.load(Ordering::SeqCst);
    victim.kill();
    thread::sleep(Duration::from_millis(900));
    let victim = Faulty::start("victim", vport, |_, _, _| Act::Slow(2));
    thread::sleep(Duration::from_millis(900));
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.join().unwrap();
    }
    let failed = failed.lock().unwrap().clone();
    assert!(
        failed.is_empty(),
        "{} failed GETs: {failed:?}",
        failed.len()
    );
    assert!(
        before_kill > 20,
        "too little load before the kill: {before_kill}"
    );
    // After the restart (rise 2 x inter 100ms), traffic reaches it again.
    assert!(
        !victim.seen().is_empty(),
        "restarted backend got no traffic"
    );
    assert!(ok.load(Ordering::SeqCst) > before_kill);
}
