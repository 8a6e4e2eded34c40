//! `mode tcp`: connections balanced and relayed byte for byte, `option tcplog`,
//! retries, and a TCP frontend handing over to an HTTP backend.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use support::*;

/// A TCP server that greets with its name, then echoes until EOF.
fn banner_server(name: &'static str) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            std::thread::spawn(move || {
                let mut s = s;
                let _ = s.write_all(format!("{name}\n").as_bytes());
                let mut buf = [0u8; 1024];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 || s.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    port
}

fn connect(port: u16) -> BufReader<TcpStream> {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    BufReader::new(s)
}

fn banner(r: &mut BufReader<TcpStream>) -> String {
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    line.trim_end().to_owned()
}

#[test]
fn tcp_connections_are_balanced_and_relayed_with_tcplog() {
    let (a, b) = (banner_server("a"), banner_server("b"));
    let (port, probe) = (free_port(), free_port());
    // The harness's start-up probe goes to a frontend of its own, so that it
    // takes no turn in the balancing under test.
    let cfg = format!(
        "global\n    log stdout format raw local0\n\
         defaults\n    mode tcp\n    log global\n    option tcplog\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend ft\n    bind 127.0.0.1:{port}\n    default_backend bt\n\
         frontend probe\n    bind 127.0.0.1:{probe}\n    default_backend bp\n\
         backend bt\n    server a 127.0.0.1:{a}\n    server b 127.0.0.1:{b}\n\
         backend bp\n    server p 127.0.0.1:{a}\n"
    );
    let p = Proxy::start(&cfg, probe);
    let mut names = Vec::new();
    for _ in 0..4 {
        let mut c = connect(port);
        names.push(banner(&mut c));
        c.get_mut().write_all(b"ping\n").unwrap();
        assert_eq!(banner(&mut c), "ping");
    }
    // Alternating (the harness's start-up probe connection took one turn).
    assert!(
        names[0] != names[1] && names[0] == names[2] && names[1] == names[3],
        "{names:?}"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    // Lines of the four sessions (7 bytes back each); the probe's is shorter.
    let logged = || -> Vec<String> {
        p.stdout_lines()
            .into_iter()
            .filter(|l| l.contains(" 7 -- "))
            .collect()
    };
    while logged().len() < 4 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let re = regex::Regex::new(
        r"^127\.0\.0\.1:\d+ \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d\.\d{3}\] ft bt/[ab] \d+/\d+/\d+ 7 -- \d+/\d+/\d+/\d+/0 0/0$",
    )
    .unwrap();
    let lines = logged();
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert!(lines.iter().all(|l| re.is_match(l)), "{lines:?}");
}

#[test]
fn dead_tcp_server_is_redispatched_at_once() {
    let live = banner_server("live");
    let dead = free_port();
    let port = free_port();
    let cfg = format!(
        "defaults\n    mode tcp\n    retries 3\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend ft\n    bind 127.0.0.1:{port}\n    default_backend bt\n\
         backend bt\n    option redispatch\n    server dead 127.0.0.1:{dead}\n    server live 127.0.0.1:{live}\n"
    );
    let _p = Proxy::start(&cfg, port);
    // roundrobin + redispatch: the first retry goes to the live server at once.
    let t = std::time::Instant::now();
    let mut c = connect(port);
    assert_eq!(banner(&mut c), "live");
    assert!(
        t.elapsed() < Duration::from_millis(800),
        "{:?}",
        t.elapsed()
    );
}

#[test]
fn tcp_frontend_to_http_backend_serves_http() {
    let srv = Backend::start("web");
    let port = free_port();
    let cfg = format!(
        "defaults\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend ft\n    mode tcp\n    bind 127.0.0.1:{port}\n    default_backend web\n\
         backend web\n    mode http\n    option forwardfor\n    server s {}\n",
        srv.addr()
    );
    let _p = Proxy::start(&cfg, port);
    let r = get(port, "/upgraded", "");
    assert_eq!((r.status, r.text().as_str()), (200, "web"));
    assert_eq!(srv.requests()[0].all("x-forwarded-for"), ["127.0.0.1"]);
}
