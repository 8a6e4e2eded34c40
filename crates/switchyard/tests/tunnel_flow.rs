//! The tunnel after a `101` under load: bytes the peer cannot take at once
//! wait (reading that side pauses) while the other direction keeps flowing,
//! half-closes reach the other side only after the bytes before them, the
//! access log counts the 101 head plus every byte sent to the client; and
//! traffic keeps a tunnel open past its idle timeout.

mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use support::*;

const UPGRADE: &str = "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
const SWITCH: &str = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";

/// `len` bytes of a pattern that a shifted or truncated copy does not match.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i % 251) as u8 ^ seed ^ (i >> 12) as u8)
        .collect()
}

/// Reads a head (up to the blank line) byte by byte, so nothing after it is consumed.
fn read_head(s: &mut TcpStream) -> Vec<u8> {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut b).unwrap(), 1, "closed inside a head");
        head.push(b[0]);
    }
    head
}

/// A one-connection WebSocket origin: answers the upgrade with a 101, then
/// sends `to_client` and closes its sending side, and returns every byte it
/// received until the proxy's FIN.
fn origin(to_client: Vec<u8>) -> (String, thread::JoinHandle<Vec<u8>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let h = thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        read_head(&mut s);
        s.write_all(SWITCH.as_bytes()).unwrap();
        let mut w = s.try_clone().unwrap();
        let writer = thread::spawn(move || {
            w.write_all(&to_client).unwrap();
            w.shutdown(Shutdown::Write).unwrap();
        });
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        writer.join().unwrap();
        got
    });
    (addr, h)
}

#[test]
fn tunnel_moves_megabytes_both_ways_with_backpressure_and_logs_them() {
    const LEN: usize = 4 << 20;
    let down = pattern(LEN, 0x5a);
    let up = pattern(LEN, 0xa5);
    let (srv, origin) = origin(down.clone());
    let port = free_port();
    let cfg = format!(
        "global\n    log stdout format raw local0\n\
         defaults\n    mode http\n    timeout connect 1s\n    timeout client 30s\n    timeout server 30s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n    option httplog\n    log global\n    default_backend be\n\
         backend be\n    server s {srv}\n"
    );
    let p = Proxy::start(&cfg, port);
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    c.write_all(UPGRADE.as_bytes()).unwrap();
    let head = read_head(&mut c);
    assert!(head.starts_with(b"HTTP/1.1 101"), "{head:?}");
    // The client sends its 4 MiB while not reading for a while: the server's
    // bytes pile up in the proxy (socket buffers full), which must keep
    // relaying the client's direction meanwhile.
    let mut w = c.try_clone().unwrap();
    let sent = up.clone();
    let writer = thread::spawn(move || {
        w.write_all(&sent).unwrap();
        w.shutdown(Shutdown::Write).unwrap();
    });
    thread::sleep(Duration::from_millis(300));
    let mut got = Vec::new();
    c.read_to_end(&mut got).unwrap();
    writer.join().unwrap();
    assert!(
        got == down,
        "client got {} bytes, not the server's",
        got.len()
    );
    let at_origin = origin.join().unwrap();
    assert!(at_origin == up, "server got {} bytes", at_origin.len());
    // One log line once both sides closed: status 101, the 101 head plus the
    // server's bytes, ended normally (no timeout, no error).
    let line = (0..100)
        .find_map(|_| {
            let l = p.stdout_lines().into_iter().find(|l| l.contains(" 101 "));
            if l.is_none() {
                thread::sleep(Duration::from_millis(50));
            }
            l
        })
        .expect("a log line for the tunnel");
    let bytes = (head.len() + LEN).to_string();
    let fields: Vec<&str> = line.split(' ').collect();
    let at = fields.iter().position(|f| *f == "101").unwrap();
    assert_eq!(fields[at + 1], bytes, "{line}");
    assert_eq!(fields[at + 4], "----", "{line}");
}

#[test]
fn traffic_keeps_a_tunnel_open_past_its_idle_timeout() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let srv = l.local_addr().unwrap().to_string();
    // An echo origin.
    let origin = thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        read_head(&mut s);
        s.write_all(SWITCH.as_bytes()).unwrap();
        let mut buf = [0u8; 64];
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if s.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
    });
    let port = free_port();
    let cfg = format!(
        "defaults\n    mode http\n    timeout connect 1s\n    timeout client 30s\n    timeout server 30s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n    default_backend be\n\
         backend be\n    timeout tunnel 1s\n    server s {srv}\n"
    );
    let _p = Proxy::start(&cfg, port);
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    c.write_all(UPGRADE.as_bytes()).unwrap();
    assert!(read_head(&mut c).starts_with(b"HTTP/1.1 101"));
    // A byte every 150 ms for 3 s (three idle timeouts): each one comes back.
    // The gaps are far inside the 1 s timeout, so that a loaded machine's
    // scheduling delays cannot add up to an idle timeout (with 400 ms, a
    // 250 ms stall closed the tunnel: EOF instead of the echo).
    let t = Instant::now();
    let mut b = [0u8; 1];
    for i in 0..20u8 {
        c.write_all(&[i]).unwrap();
        c.read_exact(&mut b).unwrap();
        assert_eq!(b[0], i);
        thread::sleep(Duration::from_millis(150));
    }
    assert!(t.elapsed() >= Duration::from_millis(3000));
    // Then silence: closed about one idle timeout after the last byte.
    let quiet = Instant::now();
    let n = c.read(&mut b).unwrap_or(0);
    assert_eq!(n, 0, "the proxy closed the idle tunnel");
    let took = quiet.elapsed();
    assert!(
        took >= Duration::from_millis(600) && took < Duration::from_millis(2500),
        "{took:?}"
    );
    drop(c);
    origin.join().unwrap();
}
