//! One health check: TCP connect, or an HTTP exchange with `option httpchk`
//! judged by `http-check expect` (default: any 2xx or 3xx status).
//!
//! Time limits as HAProxy: with `timeout check`, the connect is bounded by
//! min(`timeout connect`, `inter`) and the response by `timeout check`;
//! without it, `inter` bounds the whole check.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use regex::Regex;
use switchyard_config::{HttpCheck, HttpCheckExpect};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::snapshot::BackendRt;

/// Largest response part examined by `expect string`.
const MAX_CHECK_RESPONSE: usize = 16384;

/// What to probe and how.
#[derive(Debug)]
pub struct Probe {
    addr: SocketAddr,
    http: Option<(Vec<u8>, Vec<Expect>)>,
    connect_timeout: Duration,
    read_timeout: Duration,
    whole: Option<Duration>,
}

#[derive(Debug)]
enum Expect {
    Status {
        negate: bool,
        ranges: Vec<(u16, u16)>,
    },
    RStatus {
        negate: bool,
        re: Option<Regex>,
    },
    Text {
        negate: bool,
        text: String,
    },
    RText {
        negate: bool,
        re: Option<Regex>,
    },
}

/// The result of one check, with HAProxy's wording.
#[derive(Debug, Clone)]
pub struct CheckOutcome {
    pub passed: bool,
    /// `Layer4 check passed`, `Layer4 connection problem`, `Layer7 wrong status`...
    pub reason: &'static str,
    pub code: Option<u16>,
    pub info: Option<String>,
    pub duration: Duration,
}

impl CheckOutcome {
    /// `reason: X[, code: N][, info: "I"], check duration: Nms`.
    pub fn describe(&self) -> String {
        let mut s = format!("reason: {}", self.reason);
        if let Some(c) = self.code {
            s.push_str(&format!(", code: {c}"));
        }
        if let Some(i) = &self.info {
            s.push_str(&format!(", info: \"{i}\""));
        }
        s.push_str(&format!(
            ", check duration: {}ms",
            self.duration.as_millis()
        ));
        s
    }
}

impl Probe {
    pub fn new(be: &BackendRt, si: usize) -> Self {
        let srv = &be.cfg.servers[si];
        let mut addr = be.addrs[si];
        if let Some(a) = srv.check_addr.as_deref().and_then(|a| a.parse().ok()) {
            addr.set_ip(a);
        }
        if let Some(p) = srv.check_port {
            addr.set_port(p);
        }
        let http = be
            .cfg
            .httpchk
            .as_ref()
            .map(|c| (request_bytes(c), compile(&be.cfg.http_check_expect)));
        let (connect_timeout, read_timeout, whole) = match be.cfg.timeouts.check {
            Some(check) => (
                be.cfg
                    .timeouts
                    .connect
                    .map_or(srv.inter, |c| c.min(srv.inter)),
                check,
                None,
            ),
            None => (srv.inter, srv.inter, Some(srv.inter)),
        };
        Probe {
            addr,
            http,
            connect_timeout,
            read_timeout,
            whole,
        }
    }

    /// Runs one check.
    pub async fn run(&self) -> CheckOutcome {
        let start = Instant::now();
        let fut = self.run_inner(start);
        let mut out = match self.whole {
            Some(limit) => match tokio::time::timeout(limit, fut).await {
                Ok(o) => o,
                Err(_) => fail(
                    if self.http.is_some() {
                        "Layer7 timeout"
                    } else {
                        "Layer4 timeout"
                    },
                    None,
                    None,
                    start,
                ),
            },
            None => fut.await,
        };
        out.duration = start.elapsed();
        out
    }

    async fn run_inner(&self, start: Instant) -> CheckOutcome {
        let mut stream =
            match tokio::time::timeout(self.connect_timeout, TcpStream::connect(self.addr)).await {
                Err(_) => return fail("Layer4 timeout", None, None, start),
                Ok(Err(e)) => {
                    return fail("Layer4 connection problem", None, Some(io_info(&e)), start)
                }
                Ok(Ok(s)) => s,
            };
        let Some((request, expects)) = &self.http else {
            return CheckOutcome {
                passed: true,
                reason: "Layer4 check passed",
                code: None,
                info: None,
                duration: start.elapsed(),
            };
        };
        if stream.write_all(request).await.is_err() {
            return fail(
                "Layer7 invalid response",
                None,
                Some("Connection reset".into()),
                start,
            );
        }
        let mut buf = Vec::with_capacity(4096);
        let read = async {
            let mut chunk = [0u8; 4096];
            while buf.len() < MAX_CHECK_RESPONSE {
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
                if response_complete(&buf) {
                    break;
                }
            }
        };
        if tokio::time::timeout(self.read_timeout, read).await.is_err() && buf.is_empty() {
            return fail("Layer7 timeout", None, None, start);
        }
        judge(&buf, expects, start)
    }
}

fn fail(
    reason: &'static str,
    code: Option<u16>,
    info: Option<String>,
    start: Instant,
) -> CheckOutcome {
    CheckOutcome {
        passed: false,
        reason,
        code,
        info,
        duration: start.elapsed(),
    }
}

fn io_info(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "Connection refused".into(),
        std::io::ErrorKind::TimedOut => "Connection timed out".into(),
        _ => e.to_string(),
    }
}

/// The check request: `METHOD URI VERSION`, then configured headers; HTTP/1.1
/// checks also say `connection: close` (HTTP/1.0 ones send no header at all).
fn request_bytes(c: &HttpCheck) -> Vec<u8> {
    let mut r = format!("{} {} {}\r\n", c.method, c.uri, c.version);
    for (n, v) in &c.headers {
        r.push_str(&format!("{}: {v}\r\n", n.to_ascii_lowercase()));
    }
    if c.version.eq_ignore_ascii_case("HTTP/1.1") {
        r.push_str("connection: close\r\n");
    }
    r.push_str("\r\n");
    r.into_bytes()
}

fn compile(expects: &[HttpCheckExpect]) -> Vec<Expect> {
    expects
        .iter()
        .map(|e| match e {
            HttpCheckExpect::Status { negate, ranges } => Expect::Status {
                negate: *negate,
                ranges: ranges.clone(),
            },
            HttpCheckExpect::RStatus { negate, regex } => Expect::RStatus {
                negate: *negate,
                re: Regex::new(regex).ok(),
            },
            HttpCheckExpect::String { negate, text } => Expect::Text {
                negate: *negate,
                text: text.clone(),
            },
            HttpCheckExpect::RString { negate, regex } => Expect::RText {
                negate: *negate,
                re: Regex::new(regex).ok(),
            },
        })
        .collect()
}

/// Head complete and, with a `content-length`, the body too.
fn response_complete(buf: &[u8]) -> bool {
    let Some(end) = memchr::memmem::find(buf, b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    let len = head.lines().find_map(|l| {
        l.strip_prefix("content-length:")
            .and_then(|v| v.trim().parse::<usize>().ok())
    });
    len.is_some_and(|l| buf.len() >= end + 4 + l)
}

fn judge(buf: &[u8], expects: &[Expect], start: Instant) -> CheckOutcome {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    let (code, reason, body_at) = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => (
            resp.code.unwrap_or(0),
            resp.reason.unwrap_or("").to_owned(),
            n,
        ),
        _ => return fail("Layer7 invalid response", None, None, start),
    };
    let body = String::from_utf8_lossy(&buf[body_at..]);
    let ok = |code: u16, reason: &str| CheckOutcome {
        passed: true,
        reason: "Layer7 check passed",
        code: Some(code),
        info: Some(reason.to_owned()),
        duration: start.elapsed(),
    };
    if expects.is_empty() {
        return if (200..400).contains(&code) {
            ok(code, &reason)
        } else {
            fail(
                "Layer7 wrong status",
                Some(code),
                Some(reason.to_owned()),
                start,
            )
        };
    }
    for (step, e) in expects.iter().enumerate() {
        let (matched, negate, status_kind, what) = match e {
            Expect::Status { negate, ranges } => (
                ranges.iter().any(|(a, b)| (*a..=*b).contains(&code)),
                *negate,
                true,
                String::new(),
            ),
            Expect::RStatus { negate, re } => (
                re.as_ref().is_some_and(|r| r.is_match(&code.to_string())),
                *negate,
                true,
                String::new(),
            ),
            Expect::Text { negate, text } => {
                (body.contains(text.as_str()), *negate, false, text.clone())
            }
            Expect::RText { negate, re } => (
                re.as_ref().is_some_and(|r| r.is_match(&body)),
                *negate,
                false,
                re.as_ref().map_or(String::new(), |r| r.as_str().to_owned()),
            ),
        };
        if matched == negate {
            return if status_kind {
                fail(
                    "Layer7 wrong status",
                    Some(code),
                    Some(reason.to_owned()),
                    start,
                )
            } else {
                let info = format!("TCPCHK did not match content '{what}' at step {}", step + 2);
                fail("Layer7 invalid response", Some(code), Some(info), start)
            };
        }
    }
    ok(code, &reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_request_and_judging() {
        assert_eq!(
            request_bytes(&HttpCheck::default()),
            b"OPTIONS / HTTP/1.0\r\n\r\n"
        );
        let c = HttpCheck {
            method: "GET".into(),
            uri: "/health".into(),
            version: "HTTP/1.1".into(),
            headers: vec![("Host".into(), "www.example.com".into())],
        };
        assert_eq!(
            request_bytes(&c),
            b"GET /health HTTP/1.1\r\nhost: www.example.com\r\nconnection: close\r\n\r\n"
        );
        let t = Instant::now();
        let ok = judge(b"HTTP/1.1 204 No Content\r\n\r\n", &[], t);
        assert!(ok.passed);
        let bad = judge(b"HTTP/1.1 503 Service Unavailable\r\n\r\n", &[], t);
        assert!(!bad.passed);
        assert!(bad.describe().starts_with("reason: Layer7 wrong status, code: 503, info: \"Service Unavailable\", check duration: "));
        let want = compile(&[HttpCheckExpect::String {
            negate: false,
            text: "alive".into(),
        }]);
        assert!(judge(b"HTTP/1.1 200 OK\r\n\r\nI am alive", &want, t).passed);
        assert!(!judge(b"HTTP/1.1 200 OK\r\n\r\nzombie", &want, t).passed);
        let st = compile(&[HttpCheckExpect::Status {
            negate: false,
            ranges: vec![(200, 200)],
        }]);
        assert!(!judge(b"HTTP/1.1 302 Found\r\n\r\n", &st, t).passed);
    }
}
