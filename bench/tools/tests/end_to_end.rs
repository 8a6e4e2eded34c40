//! The two programs against each other on loopback: the backend answers what the harness
//! expects, and every client scenario completes without errors. No timing is asserted.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

/// Kills the backend when the test ends, however it ends.
struct Backend {
    child: Child,
    http: String,
    socket: String,
}

impl Drop for Backend {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_backend() -> Backend {
    let mut child = Command::new(env!("CARGO_BIN_EXE_bench-backend"))
        .args(["--http", "127.0.0.1:0", "--socket", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start bench-backend");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("ready line");
    let addr = |kind: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{kind}=")))
            .unwrap_or_else(|| panic!("no {kind} address in {line:?}"))
            .to_string()
    };
    let (http, socket) = (addr("http"), addr("socket"));
    Backend {
        child,
        http,
        socket,
    }
}

fn get(addr: &str, path: &str) -> (String, usize) {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let split = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = String::from_utf8_lossy(&out[..split]).to_string();
    (head, out.len() - split)
}

fn client(args: &[&str], stdin: Option<&str>) -> Vec<String> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_bench-client"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start bench-client");
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "bench-client {args:?} failed");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn field(line: &str, name: &str) -> u64 {
    let start = line.find(&format!("\"{name}\":")).unwrap() + name.len() + 3;
    line[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap()
}

#[test]
fn static_responses_and_routing() {
    let b = start_backend();
    let (head, len) = get(&b.http, "/");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(len, 13);
    assert_eq!(get(&b.http, "/16k").1, 16 * 1024);
    assert_eq!(get(&b.http, "/1m").1, 1024 * 1024);
    // Engine.IO on an http server, or plain pages on a socket server: misrouted, so 404.
    assert!(get(&b.http, "/engine.io/?EIO=4&transport=polling")
        .0
        .contains(" 404 "));
    assert!(get(&b.socket, "/").0.contains(" 404 "));
    let (head, _) = get(&b.socket, "/engine.io/?EIO=4&transport=polling");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        get(&b.socket, "/engine.io/?EIO=4&transport=polling&sid=nope")
            .0
            .contains(" 400 ")
    );
}

#[test]
fn client_scenarios_run_clean() {
    let b = start_backend();
    for (kind, count_flag) in [("ws-echo", "--conns"), ("eio", "--sessions")] {
        let lines = client(
            &[
                kind,
                "--addr",
                &b.socket,
                count_flag,
                "4",
                "--warmup",
                "0.1",
                "--duration",
                "0.3",
            ],
            None,
        );
        assert_eq!(lines[0], r#"{"event":"measure-start"}"#);
        assert_eq!(lines[1], r#"{"event":"measure-end"}"#);
        let result = &lines[2];
        assert_eq!(field(result, "errors"), 0, "{result}");
        assert!(field(result, "ops") > 0, "{result}");
    }
    let lines = client(
        &["ws-idle", "--addr", &b.socket, "--conns", "50"],
        Some("close\n"),
    );
    assert_eq!(field(&lines[0], "open"), 50, "{}", lines[0]);
    assert_eq!(field(&lines[0], "failed"), 0);
    assert_eq!(field(&lines[1], "closed"), 50, "{}", lines[1]);
}
