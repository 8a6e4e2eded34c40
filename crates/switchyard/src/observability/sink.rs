//! Where log lines go: `log <target> [format <fmt>] <facility>`.
//!
//! Targets: `stdout`, `stderr`, a UDP syslog address (`127.0.0.1`,
//! `127.0.0.1:514`, `udp@host:port`) or a unix datagram socket path
//! (`/dev/log`). Formats as HAProxy: `rfc3164` (default)
//! `<PRI>Mmm dd hh:mm:ss haproxy[pid]: line`, `rfc5424`, `short` (`<PRI>line`)
//! and `raw` (the line alone). The tag is `haproxy`, HAProxy's default
//! `log-tag`, so existing syslog filters keep matching. Lines are sent at level
//! `info`. Sending never blocks the proxy: a full socket buffer drops the line.

use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use switchyard_config::LogTarget;

/// A log destination with its format.
#[derive(Debug, Clone)]
pub struct LogSink {
    dest: Dest,
    format: Format,
    /// Syslog priority: facility * 8 + level (info).
    pri: u8,
}

#[derive(Debug, Clone)]
enum Dest {
    Stdout,
    Stderr,
    Udp(Arc<UdpSocket>, SocketAddr),
    Unix(Arc<UnixDatagram>, String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Raw,
    Short,
    Rfc3164,
    Rfc5424,
}

const FACILITIES: [&str; 24] = [
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "auth2",
    "ftp", "ntp", "audit", "alert", "cron2", "local0", "local1", "local2", "local3", "local4",
    "local5", "local6", "local7",
];
const LEVEL_INFO: u8 = 6;

impl LogSink {
    /// Plain lines on stderr (`-d`).
    pub fn stderr_raw() -> Self {
        LogSink {
            dest: Dest::Stderr,
            format: Format::Raw,
            pri: 0,
        }
    }

    /// Opens a configured target; None when it cannot be used.
    pub fn open(t: &LogTarget) -> Option<Self> {
        let format = match t.format.as_deref() {
            Some("raw") => Format::Raw,
            Some("short") => Format::Short,
            Some("rfc5424") => Format::Rfc5424,
            _ => Format::Rfc3164,
        };
        let facility = t
            .facility
            .as_deref()
            .and_then(|f| FACILITIES.iter().position(|x| *x == f))
            .unwrap_or(16);
        let pri = facility as u8 * 8 + LEVEL_INFO;
        let dest = match t.target.as_str() {
            "stdout" => Dest::Stdout,
            "stderr" => Dest::Stderr,
            path if path.starts_with('/') => {
                let sock = UnixDatagram::unbound().ok()?;
                sock.set_nonblocking(true).ok()?;
                Dest::Unix(Arc::new(sock), path.to_owned())
            }
            addr => {
                let addr = addr
                    .strip_prefix("udp@")
                    .or(addr.strip_prefix("udp4@"))
                    .unwrap_or(addr);
                let addr = if addr.contains(':') {
                    addr.to_owned()
                } else {
                    format!("{addr}:514")
                };
                let to = addr.to_socket_addrs().ok()?.next()?;
                let bind: SocketAddr = if to.is_ipv4() {
                    ([0, 0, 0, 0], 0).into()
                } else {
                    ([0u16; 8], 0).into()
                };
                let sock = UdpSocket::bind(bind).ok()?;
                sock.set_nonblocking(true).ok()?;
                Dest::Udp(Arc::new(sock), to)
            }
        };
        Some(LogSink { dest, format, pri })
    }

    /// Sends one line.
    pub fn write(&self, line: &str) {
        let msg = self.frame(line, SystemTime::now());
        let _ = match &self.dest {
            Dest::Stdout => std::io::stdout().lock().write_all(&msg),
            Dest::Stderr => std::io::stderr().lock().write_all(&msg),
            Dest::Udp(sock, to) => sock.send_to(&msg, to).map(|_| ()),
            Dest::Unix(sock, path) => sock.send_to(&msg, path).map(|_| ()),
        };
    }

    /// The bytes sent for `line`: syslog header per format; a newline for streams.
    fn frame(&self, line: &str, now: SystemTime) -> Vec<u8> {
        let pid = std::process::id();
        let mut out = match self.format {
            Format::Raw => String::new(),
            Format::Short => format!("<{}>", self.pri),
            Format::Rfc3164 => format!("<{}>{} haproxy[{pid}]: ", self.pri, rfc3164_date(now)),
            Format::Rfc5424 => {
                format!("<{}>1 {} - haproxy {pid} - - ", self.pri, rfc5424_date(now))
            }
        };
        out.push_str(line);
        if matches!(self.dest, Dest::Stdout | Dest::Stderr) {
            out.push('\n');
        }
        out.into_bytes()
    }
}

fn split(now: SystemTime) -> (i64, u32, u32, u64, u32) {
    let d = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let (y, m, day) = super::access_log::civil_from_days((d.as_secs() / 86400) as i64);
    (y, m, day, d.as_secs() % 86400, d.subsec_millis())
}

/// `Nov 26 12:04:54` (day space-padded), UTC.
fn rfc3164_date(now: SystemTime) -> String {
    let (_, m, d, rem, _) = split(now);
    let month = super::access_log::MONTHS[(m - 1) as usize];
    format!(
        "{month} {d:>2} {:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// `2026-11-26T12:04:54.906Z`.
fn rfc5424_date(now: SystemTime) -> String {
    let (y, m, d, rem, ms) = split(now);
    format!(
        "{y}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn target(t: &str, format: Option<&str>, facility: &str) -> LogTarget {
        LogTarget {
            target: t.into(),
            format: format.map(str::to_owned),
            facility: Some(facility.into()),
            loc: Default::default(),
        }
    }

    #[test]
    fn syslog_framing() {
        let now = UNIX_EPOCH + Duration::from_millis(1_796_645_094_906); // 2026-12-07T12:04:54.906Z
        let sink = LogSink::open(&target("127.0.0.1", None, "local0")).unwrap();
        let line = String::from_utf8(sink.frame("hello", now)).unwrap();
        assert_eq!(
            line,
            format!(
                "<134>Dec  7 12:04:54 haproxy[{}]: hello",
                std::process::id()
            )
        );
        let raw = LogSink::open(&target("stdout", Some("raw"), "local0")).unwrap();
        assert_eq!(raw.frame("hello", now), b"hello\n");
        let short = LogSink::open(&target("127.0.0.1:5514", Some("short"), "local7")).unwrap();
        assert_eq!(short.frame("x", now), b"<190>x");
        let r5424 = LogSink::open(&target("127.0.0.1", Some("rfc5424"), "daemon")).unwrap();
        let l = String::from_utf8(r5424.frame("x", now)).unwrap();
        assert!(
            l.starts_with("<30>1 2026-12-07T12:04:54.906Z - haproxy "),
            "{l}"
        );
    }

    #[test]
    fn udp_target_receives_lines() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let addr = rx.local_addr().unwrap().to_string();
        let sink = LogSink::open(&target(&addr, Some("raw"), "local0")).unwrap();
        sink.write("one line");
        let mut buf = [0u8; 64];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"one line");
    }
}
