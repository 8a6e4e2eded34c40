//! In-process tests of the two tiers sharing one session store: the HTTP tier writes the
//! session, the socket tier reads it at the Engine.IO handshake. Requests are raw HTTP/1.1 over
//! loopback so that what is checked is what a client sees on the wire.

use std::net::SocketAddr;

use serde_json::Value;
use switchyard_app::http_tier::{self, ClientJs};
use switchyard_app::socket_tier::{self, SocketOptions, SocketTier};
use switchyard_app::store::Backend;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A response as read off the wire.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {:?}", self.body))
    }
}

fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&tail[..n]);
        rest = &tail[n + 2..];
    }
    out
}

async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    cookie: Option<&str>,
    body: &str,
) -> Reply {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let cookie = cookie
        .map(|c| format!("cookie: {c}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n{cookie}content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    let mut raw = String::new();
    let read = stream.read_to_string(&mut raw);
    tokio::time::timeout(std::time::Duration::from_secs(10), read)
        .await
        .expect("response within 10 s")
        .expect("read");
    let (head, body) = raw.split_once("\r\n\r\n").expect("header end");
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Reply {
        status,
        headers,
        body,
    }
}

/// An HTTP node and a socket node in this process, sharing `backend`'s store.
struct Pair {
    http: SocketAddr,
    socket: SocketAddr,
    tier_connected: Box<dyn Fn() -> usize>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Pair {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn serve(router: axum::Router) -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    (addr, task)
}

async fn pair() -> Pair {
    let backend = Backend::memory();
    let (http, t1) = serve(
        http_tier::router(
            "h-test",
            &backend,
            ClientJs::new(switchyard_app::cli::DEFAULT_CLIENT_JS),
        )
        .unwrap(),
    )
    .await;
    let tier: SocketTier = socket_tier::build("s-test", &backend, SocketOptions::default())
        .await
        .unwrap();
    let (socket, t2) = serve(tier.router.clone()).await;
    Pair {
        http,
        socket,
        tier_connected: Box::new(move || tier.connected()),
        tasks: vec![t1, t2],
    }
}

async fn login(http: SocketAddr, user: &str) -> String {
    let reply = request(
        http,
        "POST",
        "/api/login",
        None,
        &format!(r#"{{"user":"{user}"}}"#),
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let set_cookie = reply.header("set-cookie").expect("session cookie");
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    set_cookie.split(';').next().unwrap().to_owned()
}

/// Opens an Engine.IO session, connects to `ns`, and returns the sid and the server's packets
/// answering the CONNECT (split on the record separator).
async fn socket_connect(
    socket: SocketAddr,
    ns: &str,
    cookie: Option<&str>,
) -> (String, Vec<String>) {
    let open = request(
        socket,
        "GET",
        "/engine.io/?EIO=4&transport=polling",
        cookie,
        "",
    )
    .await;
    assert_eq!(open.status, 200, "{open:?}");
    let handshake: Value = serde_json::from_str(&open.body[1..]).unwrap();
    let sid = handshake["sid"].as_str().unwrap().to_owned();
    let path = format!("/engine.io/?EIO=4&transport=polling&sid={sid}");
    let connect = if ns == "/" {
        "40".to_owned()
    } else {
        format!("40{ns},")
    };
    let post = request(socket, "POST", &path, None, &connect).await;
    assert_eq!(post.body, "ok");
    // Engine.IO pings ("2") may come first or share the poll; they are not the answer to
    // CONNECT, which may need another poll while the connect middleware reads the session.
    let mut packets = Vec::new();
    for _ in 0..5 {
        let poll = request(socket, "GET", &path, None, "").await;
        packets.extend(
            poll.body
                .split('\u{1e}')
                .filter(|p| !p.is_empty() && *p != "2")
                .map(str::to_owned),
        );
        if !packets.is_empty() {
            break;
        }
    }
    (sid, packets)
}

#[tokio::test]
async fn a_login_on_the_http_tier_is_known_to_the_socket_tier() {
    let p = pair().await;
    let cookie = login(p.http, "alice").await;
    let me = request(p.http, "GET", "/api/me", Some(&cookie), "").await;
    assert_eq!(me.json()["user"], "alice");
    assert_eq!(me.header("x-node"), Some("h-test"));

    let (sid, mut packets) = socket_connect(p.socket, "/chat", Some(&cookie)).await;
    assert!(packets[0].starts_with("40/chat,{\"sid\""), "{packets:?}");
    // The welcome event follows the CONNECT answer, in the same poll or the next one.
    let path = format!("/engine.io/?EIO=4&transport=polling&sid={sid}");
    for _ in 0..3 {
        if packets.iter().any(|p| p.contains("welcome")) {
            break;
        }
        let poll = request(p.socket, "GET", &path, None, "").await.body;
        packets.extend(poll.split('\u{1e}').map(str::to_owned));
    }
    let welcome = packets
        .iter()
        .find(|p| p.contains("welcome"))
        .expect("welcome");
    assert!(welcome.contains(r#""user":"alice""#), "{welcome}");
    assert!(welcome.contains(r#""node":"s-test""#), "{welcome}");

    // The public namespace reports the same user in whoami.
    let (sid, _) = socket_connect(p.socket, "/", Some(&cookie)).await;
    let path = format!("/engine.io/?EIO=4&transport=polling&sid={sid}");
    assert_eq!(
        request(p.socket, "POST", &path, None, r#"421["whoami"]"#)
            .await
            .body,
        "ok"
    );
    let poll = request(p.socket, "GET", &path, None, "").await.body;
    // A ping ("2") may share the poll with the ack.
    let ack = poll
        .split('\u{1e}')
        .find(|p| p.starts_with("431["))
        .unwrap_or_else(|| panic!("no ack in {poll:?}"));
    assert!(ack.contains(r#""user":"alice""#), "{ack}");
    assert!(ack.contains(r#""transport":"polling""#), "{ack}");
}

#[tokio::test]
async fn chat_refuses_anonymous_and_logged_out_clients() {
    let p = pair().await;
    let (_, packets) = socket_connect(p.socket, "/chat", None).await;
    assert_eq!(packets, [r#"44/chat,{"message":"unauthorized"}"#]);
    let (_, packets) = socket_connect(p.socket, "/chat", Some("session=not-a-session-id")).await;
    assert_eq!(packets, [r#"44/chat,{"message":"unauthorized"}"#]);

    let cookie = login(p.http, "bob").await;
    let (_, packets) = socket_connect(p.socket, "/chat", Some(&cookie)).await;
    assert!(packets[0].starts_with("40/chat,"), "{packets:?}");
    let out = request(p.http, "POST", "/api/logout", Some(&cookie), "").await;
    assert_eq!(out.status, 200);
    let (_, packets) = socket_connect(p.socket, "/chat", Some(&cookie)).await;
    assert_eq!(packets, [r#"44/chat,{"message":"unauthorized"}"#]);
    // The anonymous public namespace still works, with no user.
    let (_, packets) = socket_connect(p.socket, "/", Some(&cookie)).await;
    assert!(packets[0].starts_with("40{\"sid\""), "{packets:?}");
}

#[tokio::test]
async fn health_routes_create_neither_sessions_nor_sockets() {
    let p = pair().await;
    for _ in 0..5 {
        let h = request(p.http, "GET", "/health", None, "").await;
        assert_eq!((h.status, h.header("set-cookie")), (200, None), "{h:?}");
        let s = request(p.socket, "GET", "/health", None, "").await;
        assert_eq!((s.status, s.header("set-cookie")), (200, None), "{s:?}");
        assert_eq!(s.json()["connected"], 0);
    }
    assert_eq!((p.tier_connected)(), 0);
    // The count does move when a real client connects, so the zero above means something.
    socket_connect(p.socket, "/", None).await;
    let s = request(p.socket, "GET", "/health", None, "").await;
    assert_eq!(s.json()["connected"], 1);
}

#[tokio::test]
async fn the_session_counter_needs_a_login_and_counts() {
    let p = pair().await;
    let anon = request(p.http, "POST", "/api/counter", None, "").await;
    assert_eq!(anon.status, 401);
    assert_eq!(
        anon.header("set-cookie"),
        None,
        "a refused request creates no session"
    );
    let cookie = login(p.http, "carol").await;
    for expected in 1..=3 {
        let r = request(p.http, "POST", "/api/counter", Some(&cookie), "").await;
        assert_eq!(r.json()["value"], expected);
    }
    let bad = request(
        p.http,
        "POST",
        "/api/login",
        None,
        r#"{"user":"no spaces"}"#,
    )
    .await;
    assert_eq!(bad.status, 400);
}

/// The browser client is npm's file, not a copy in the repository: served as found, a 503 with
/// the command that installs it while it is missing, and picked up once installed without a
/// restart.
#[tokio::test]
async fn the_browser_client_is_served_from_npm_or_explained() {
    let dir = std::env::temp_dir().join(format!("switchyard-app-clientjs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("socket.io.min.js");
    let _ = std::fs::remove_file(&file);
    let backend = Backend::memory();
    let (http, task) =
        serve(http_tier::router("h-js", &backend, ClientJs::new(&file)).unwrap()).await;

    let missing = request(http, "GET", http_tier::CLIENT_JS_ROUTE, None, "").await;
    assert_eq!(missing.status, 503, "{missing:?}");
    assert!(
        missing.body.contains(http_tier::CLIENT_JS_INSTALL),
        "{missing:?}"
    );
    assert!(
        missing.body.contains(&file.display().to_string()),
        "{missing:?}"
    );
    assert_eq!(missing.header("x-node"), Some("h-js"));

    let script = "/* not socket.io, just a stand-in for this test */ window.io = 1;";
    std::fs::write(&file, script).unwrap();
    let served = request(http, "GET", http_tier::CLIENT_JS_ROUTE, None, "").await;
    assert_eq!(served.status, 200, "{served:?}");
    assert_eq!(served.header("content-type"), Some("text/javascript"));
    assert_eq!(served.body, script);

    task.abort();
    let _ = std::fs::remove_dir_all(&dir);
}

/// The default `--client-js` is where `npm ci --prefix crates/switchyard-app/web` puts the
/// pinned socket.io-client, so a node started from this tree serves it.
#[test]
fn the_default_client_path_is_the_pinned_npm_dependency() {
    let web = concat!(env!("CARGO_MANIFEST_DIR"), "/web");
    let package: Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{web}/package.json")).unwrap())
            .unwrap();
    let pinned = package["dependencies"]["socket.io-client"]
        .as_str()
        .unwrap();
    assert!(
        pinned.chars().all(|c| c.is_ascii_digit() || c == '.'),
        "socket.io-client must be pinned to an exact version, got {pinned}"
    );
    assert!(switchyard_app::cli::DEFAULT_CLIENT_JS.starts_with(web));
    assert!(switchyard_app::cli::DEFAULT_CLIENT_JS
        .ends_with("/node_modules/socket.io-client/dist/socket.io.min.js"));
    let lock: Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{web}/package-lock.json")).unwrap())
            .unwrap();
    assert_eq!(
        lock["packages"]["node_modules/socket.io-client"]["version"].as_str(),
        Some(pinned),
        "package-lock.json is out of date: run npm install in {web}"
    );
}
