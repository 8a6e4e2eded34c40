//! WebSocket / Upgrade through the seed topology's socket-servers: tunnel both
//! ways, cookie on the 101, 502 without Sec-WebSocket-Accept, 400 without a key,
//! half-close, tunnel idle timeout.

mod support;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use support::*;

const UPGRADE: &str = "GET /engine.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

fn upgrade_reply(accept: bool) -> impl Fn(&Seen) -> Reply + Send + Sync + Clone + 'static {
    move |s: &Seen| {
        if s.header("upgrade").is_some() {
            Reply::Upgrade {
                accept,
                extra_headers: String::new(),
            }
        } else {
            Reply::Ok
        }
    }
}

#[test]
fn websocket_tunnel_carries_bytes_both_ways_and_gets_the_cookie() {
    let seed = Seed::start_with(Engine::Switchyard, upgrade_reply(true));
    let mut c = Client::connect(seed.port);
    c.send(UPGRADE.as_bytes());
    let r = c.read_response(false).unwrap();
    assert_eq!(r.status, 101);
    let cookie = r.header("set-cookie").expect("cookie inserted on the 101");
    assert!(
        cookie == "SRVNAME=S1; path=/" || cookie == "SRVNAME=S2; path=/",
        "{cookie}"
    );
    assert_eq!(
        r.header("sec-websocket-accept").as_deref(),
        Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    );
    // The server saw the upgrade headers intact and no `connection: close`.
    let seen = seed
        .socket
        .iter()
        .flat_map(|b| b.requests())
        .next()
        .unwrap();
    assert_eq!(seen.header("connection").as_deref(), Some("Upgrade"));
    assert_eq!(seen.header("upgrade").as_deref(), Some("websocket"));
    assert_eq!(seen.all("x-forwarded-for"), ["127.0.0.1"]);
    // Echo through the tunnel.
    let s = c.reader.get_mut();
    s.write_all(b"ping-frame").unwrap();
    let mut buf = [0u8; 10];
    s.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"ping-frame");
    // Half-close: our FIN reaches the server while the other direction stays
    // open, so what the server sends after it still arrives, then its FIN.
    s.shutdown(std::net::Shutdown::Write).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).unwrap();
    assert_eq!(rest, b"after-eof");
}

#[test]
fn upgrade_response_without_accept_key_is_502() {
    let seed = Seed::start_with(Engine::Switchyard, upgrade_reply(false));
    let mut c = Client::connect(seed.port);
    c.send(UPGRADE.as_bytes());
    let r = c.read_response(false).unwrap();
    assert_eq!(r.status, 502);
}

#[test]
fn tunnel_timeout_closes_an_idle_tunnel() {
    let srv = Backend::with("ws", upgrade_reply(true));
    let port = free_port();
    let cfg = format!(
        "defaults\n    mode http\n    timeout connect 1s\n    timeout client 30s\n    timeout server 30s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n    default_backend be\n\
         backend be\n    timeout tunnel 700ms\n    server s {}\n",
        srv.addr()
    );
    let _p = Proxy::start(&cfg, port);
    let mut c = Client::connect(port);
    c.send(UPGRADE.as_bytes());
    assert_eq!(c.read_response(false).unwrap().status, 101);
    let t = Instant::now();
    assert!(c.is_closed(Duration::from_secs(3)));
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(600) && took < Duration::from_millis(2000),
        "{took:?}"
    );
}
