//! The `option httplog` line, HAProxy's format:
//!
//! ```text
//! %ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %CC %CS %tsc %ac/%fc/%bc/%sc/%rc %sq/%bq %{+Q}r
//! 127.0.0.1:49790 [26/Nov/2026:12:04:54.906] all http-servers/node-1 0/0/0/4/4 200 270 - - ---- 1/1/0/0/0 0/0 "GET /foo HTTP/1.1"
//! ```
//!
//! Dates are printed in UTC (HAProxy prints local time; the two agree on
//! machines running in UTC, as servers usually do). Captured cookies are not
//! supported yet and print `-`.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use switchyard_config::logformat::{parse_log_format, LogItem};
use switchyard_config::LogFormat;

/// Everything one httplog line says about a request. Times are milliseconds,
/// -1 for a phase that was not reached.
#[derive(Debug, Clone)]
pub struct LogRecord {
    pub client: SocketAddr,
    pub accept: SystemTime,
    pub frontend: Arc<str>,
    /// The frontend's name until a backend is chosen. The HTTP request path fills
    /// `backend` and `server` only when `enabled` (nothing else reads them).
    pub backend: Arc<str>,
    /// `<NOSRV>` when no server was assigned.
    pub server: Arc<str>,
    pub t_request: i64,
    pub t_queue: i64,
    pub t_connect: i64,
    pub t_response: i64,
    pub t_total: i64,
    pub status: u16,
    pub bytes: u64,
    /// Termination state: cause, phase, request cookie flag, response cookie flag.
    pub term: [u8; 4],
    pub actconn: usize,
    pub feconn: usize,
    pub beconn: usize,
    pub srvconn: usize,
    pub retries: u32,
    pub redispatched: bool,
    pub srv_queue: usize,
    pub be_queue: usize,
    /// The request line, or `<BADREQ>`; only filled when `enabled`.
    pub request_line: String,
    /// A line will be written: worth formatting the request line.
    pub enabled: bool,
    /// Where the request went (not printed; used to read connection counts at log time).
    pub backend_index: Option<usize>,
    pub server_index: Option<usize>,
}

impl LogRecord {
    pub fn new(client: SocketAddr, accept: SystemTime, frontend: &Arc<str>) -> Self {
        LogRecord {
            client,
            accept,
            frontend: frontend.clone(),
            backend: frontend.clone(),
            server: nosrv().clone(),
            t_request: -1,
            t_queue: -1,
            t_connect: -1,
            t_response: -1,
            t_total: 0,
            status: 0,
            bytes: 0,
            term: *b"----",
            actconn: 0,
            feconn: 0,
            beconn: 0,
            srvconn: 0,
            retries: 0,
            redispatched: false,
            srv_queue: 0,
            be_queue: 0,
            request_line: String::new(),
            enabled: false,
            backend_index: None,
            server_index: None,
        }
    }

    /// Makes the record a new one for the next request of the same client connection
    /// (as [`LogRecord::new`] with the same client and frontend), keeping its
    /// allocations. The names are reference-counted: they are replaced only when the
    /// last request changed them, which the request path does only when a line will be
    /// written (`enabled`); so a connection that logs nothing costs no reference-count
    /// update per request (there were about ten: three clones here, two replaced names,
    /// three drops).
    pub fn reset(&mut self, accept: SystemTime) {
        let LogRecord {
            client: _,
            accept: a,
            frontend,
            backend,
            server,
            t_request,
            t_queue,
            t_connect,
            t_response,
            t_total,
            status,
            bytes,
            term,
            actconn,
            feconn,
            beconn,
            srvconn,
            retries,
            redispatched,
            srv_queue,
            be_queue,
            request_line,
            enabled,
            backend_index,
            server_index,
        } = self;
        *a = accept;
        if !Arc::ptr_eq(backend, frontend) {
            *backend = frontend.clone();
        }
        let nosrv = nosrv();
        if !Arc::ptr_eq(server, nosrv) {
            *server = nosrv.clone();
        }
        (*t_request, *t_queue, *t_connect, *t_response, *t_total) = (-1, -1, -1, -1, 0);
        (*status, *bytes, *term) = (0, 0, *b"----");
        (*actconn, *feconn, *beconn, *srvconn) = (0, 0, 0, 0);
        (*retries, *redispatched, *srv_queue, *be_queue) = (0, false, 0, 0);
        request_line.clear();
        *enabled = false;
        (*backend_index, *server_index) = (None, None);
    }

    /// Renders the httplog line (without newline).
    pub fn format(&self) -> String {
        let term = String::from_utf8_lossy(&self.term);
        format!(
            "{}:{} [{}] {} {}/{} {}/{}/{}/{}/{} {} {} - - {} {}/{}/{}/{}/{}{} {}/{} \"{}\"",
            self.client.ip(),
            self.client.port(),
            log_date(self.accept),
            self.frontend,
            self.backend,
            self.server,
            self.t_request,
            self.t_queue,
            self.t_connect,
            self.t_response,
            self.t_total,
            self.status,
            self.bytes,
            term,
            self.actconn,
            self.feconn,
            self.beconn,
            self.srvconn,
            if self.redispatched { "+" } else { "" },
            self.retries,
            self.srv_queue,
            self.be_queue,
            self.request_or_badreq(),
        )
    }
}

impl LogRecord {
    /// The request line as logged: HAProxy writes `<BADREQ>` when none was parsed.
    fn request_or_badreq(&self) -> &str {
        if self.request_line.is_empty() {
            "<BADREQ>"
        } else {
            &self.request_line
        }
    }

    /// Renders the `option httplog clf` line (Common Log Format followed by
    /// HAProxy's fields, all dates in GMT; the empty captured-header fields
    /// leave a trailing space, as in HAProxy):
    /// `%{+Q}o %{-Q}ci - - [%trg] %r %ST %B "" "" %cp %ms %ft %b %s %TR %Tw %Tc %Tr %Ta %tsc %ac %fc %bc %sc %rc %sq %bq %CC %CS`.
    pub fn format_clf(&self) -> String {
        let d = self.accept.duration_since(UNIX_EPOCH).unwrap_or_default();
        let date = log_date(self.accept);
        let request = self.request_or_badreq();
        format!(
            "{} - - [{} +0000] \"{}\" {} {} \"\" \"\" {} {} \"{}\" \"{}\" \"{}\" {} {} {} {} {} {} {} {} {} {} {}{} {} {} \"\" \"\" ",
            self.client.ip(),
            &date[..date.len() - 4],
            request,
            self.status,
            self.bytes,
            self.client.port(),
            d.subsec_millis(),
            self.frontend,
            self.backend,
            self.server,
            self.t_request,
            self.t_queue,
            self.t_connect,
            self.t_response,
            self.t_total,
            String::from_utf8_lossy(&self.term),
            self.actconn,
            self.feconn,
            self.beconn,
            self.srvconn,
            if self.redispatched { "+" } else { "" },
            self.retries,
            self.srv_queue,
            self.be_queue,
        )
    }

    /// Renders the `option tcplog` line:
    /// `%ci:%cp [%t] %ft %b/%s %Tw/%Tc/%Tt %B %ts %ac/%fc/%bc/%sc/%rc %sq/%bq`.
    pub fn format_tcp(&self) -> String {
        let term = String::from_utf8_lossy(&self.term[..2]);
        format!(
            "{}:{} [{}] {} {}/{} {}/{}/{} {} {} {}/{}/{}/{}/{}{} {}/{}",
            self.client.ip(),
            self.client.port(),
            log_date(self.accept),
            self.frontend,
            self.backend,
            self.server,
            self.t_queue,
            self.t_connect,
            self.t_total,
            self.bytes,
            term,
            self.actconn,
            self.feconn,
            self.beconn,
            self.srvconn,
            if self.redispatched { "+" } else { "" },
            self.retries,
            self.srv_queue,
            self.be_queue,
        )
    }
}

impl LogRecord {
    /// The line for the frontend's log format: `option httplog` (also when
    /// none is set), `option httplog clf`, or a custom `log-format`.
    pub fn render(&self, format: Option<&LogFormat>) -> String {
        match format {
            Some(LogFormat::Clf) => self.format_clf(),
            Some(LogFormat::TcpLog) => self.format_tcp(),
            Some(LogFormat::Custom(f)) => self.format_custom(f),
            Some(LogFormat::HttpLog) | None => self.format(),
        }
    }

    /// Renders a custom `log-format`. The configuration reader refused every
    /// variable [`switchyard_config::logformat`] does not list, so each one
    /// here has a value; dates are UTC as in [`LogRecord::format`].
    pub fn format_custom(&self, fmt: &str) -> String {
        let Ok(items) = parse_log_format(fmt) else {
            return self.format();
        };
        let mut out = String::with_capacity(fmt.len() + 96);
        for item in &items {
            match item {
                LogItem::Text(t) => out.push_str(t),
                LogItem::Var { name, quote } => {
                    if *quote {
                        out.push('"');
                    }
                    self.var(name, &mut out);
                    if *quote {
                        out.push('"');
                    }
                }
            }
        }
        out
    }

    fn var(&self, name: &str, out: &mut String) {
        use std::fmt::Write as _;
        let request = self.request_or_badreq();
        let mut parts = self.request_line.splitn(3, ' ');
        let (method, uri, version) = (
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
        );
        let date = log_date(self.accept);
        let _ = match name {
            "ci" => write!(out, "{}", self.client.ip()),
            "cp" => write!(out, "{}", self.client.port()),
            "t" | "tr" | "trg" => write!(out, "{date}"),
            "T" | "Tl" | "trl" => write!(out, "{} +0000", &date[..date.len() - 4]),
            "ms" => write!(out, "{}", &date[date.len() - 3..]),
            "ft" | "f" => write!(out, "{}", self.frontend),
            "b" => write!(out, "{}", self.backend),
            "s" => write!(out, "{}", self.server),
            "TR" | "Tq" => write!(out, "{}", self.t_request),
            "Tw" => write!(out, "{}", self.t_queue),
            "Tc" => write!(out, "{}", self.t_connect),
            "Tr" => write!(out, "{}", self.t_response),
            "Ta" | "Tt" => write!(out, "{}", self.t_total),
            "ST" => write!(out, "{}", self.status),
            "B" => write!(out, "{}", self.bytes),
            "CC" | "CS" => write!(out, "-"),
            "tsc" => write!(out, "{}", String::from_utf8_lossy(&self.term)),
            "ts" => write!(out, "{}", String::from_utf8_lossy(&self.term[..2])),
            "ac" => write!(out, "{}", self.actconn),
            "fc" => write!(out, "{}", self.feconn),
            "bc" => write!(out, "{}", self.beconn),
            "sc" => write!(out, "{}", self.srvconn),
            "rc" => write!(
                out,
                "{}{}",
                if self.redispatched { "+" } else { "" },
                self.retries
            ),
            "sq" => write!(out, "{}", self.srv_queue),
            "bq" => write!(out, "{}", self.be_queue),
            // No `capture` support: the captured header blocks are empty.
            "hr" | "hs" | "hrl" | "hsl" => Ok(()),
            "r" => write!(out, "{request}"),
            "HM" => write!(out, "{method}"),
            "HU" => write!(out, "{uri}"),
            "HP" => write!(out, "{}", uri.split('?').next().unwrap_or("")),
            "HQ" => write!(out, "{}", uri.find('?').map_or("", |i| &uri[i..])),
            "HV" => write!(out, "{version}"),
            "pid" => write!(out, "{}", std::process::id()),
            "H" => write!(out, "{}", hostname()),
            _ => write!(out, "-"),
        };
    }
}

/// The server name of a request no server was assigned to.
fn nosrv() -> &'static Arc<str> {
    static NOSRV: OnceLock<Arc<str>> = OnceLock::new();
    NOSRV.get_or_init(|| Arc::from("<NOSRV>"))
}

/// The machine's name (`%H`), read once.
fn hostname() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "localhost".into())
    })
}

pub(crate) const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `26/Nov/2026:12:04:54.906` in UTC.
pub fn log_date(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (y, m, day) = civil_from_days((secs / 86400) as i64);
    let rem = secs % 86400;
    format!(
        "{:02}/{}/{}:{:02}:{:02}:{:02}.{:03}",
        day,
        MONTHS[(m - 1) as usize],
        y,
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// Days since 1970-01-01 to (year, month, day) (Howard Hinnant's algorithm).
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn dates_and_line_shape() {
        // 2026-11-26T12:04:54.906Z
        let t = UNIX_EPOCH + Duration::from_millis(1_795_694_694_906);
        assert_eq!(log_date(t), "26/Nov/2026:12:04:54.906");
        let mut r = LogRecord::new("127.0.0.1:49790".parse().unwrap(), t, &Arc::from("all"));
        r.backend = "http-servers".into();
        r.server = "node-1".into();
        (r.t_request, r.t_queue, r.t_connect, r.t_response, r.t_total) = (0, 0, 0, 4, 4);
        (r.status, r.bytes, r.actconn, r.feconn) = (200, 270, 1, 1);
        r.request_line = "GET /foo HTTP/1.1".into();
        assert_eq!(
            r.format(),
            "127.0.0.1:49790 [26/Nov/2026:12:04:54.906] all http-servers/node-1 0/0/0/4/4 200 270 - - ---- 1/1/0/0/0 0/0 \"GET /foo HTTP/1.1\""
        );
        assert_eq!(
            r.format_custom("%ci:%cp %{+Q}r %HM %HP%HQ %ST %B %tsc %b/%s %ms %rc 100%%"),
            "127.0.0.1:49790 \"GET /foo HTTP/1.1\" GET /foo 200 270 ---- http-servers/node-1 906 0 100%"
        );
        assert_eq!(r.render(None), r.format());
        r.retries = 3;
        r.redispatched = true;
        assert!(r.format().contains(" 1/1/0/0/+3 "));
        (r.retries, r.redispatched) = (0, false);
        assert_eq!(
            r.format_clf(),
            "127.0.0.1 - - [26/Nov/2026:12:04:54 +0000] \"GET /foo HTTP/1.1\" 200 270 \"\" \"\" 49790 906 \"all\" \"http-servers\" \"node-1\" 0 0 0 4 4 ---- 1 1 0 0 0 0 0 \"\" \"\" "
        );
    }

    #[test]
    fn reset_is_a_new_record() {
        let t = UNIX_EPOCH + Duration::from_millis(1_795_694_694_906);
        let later = t + Duration::from_millis(1500);
        let fe: Arc<str> = Arc::from("all");
        let mut r = LogRecord::new("127.0.0.1:49790".parse().unwrap(), t, &fe);
        r.backend = "http-servers".into();
        r.server = "node-1".into();
        (r.t_request, r.t_queue, r.t_connect, r.t_response, r.t_total) = (1, 2, 3, 4, 5);
        (r.status, r.bytes, r.term, r.retries, r.redispatched) = (502, 9, *b"SH--", 2, true);
        (
            r.actconn,
            r.feconn,
            r.beconn,
            r.srvconn,
            r.srv_queue,
            r.be_queue,
        ) = (1, 2, 3, 4, 5, 6);
        (r.backend_index, r.server_index, r.enabled) = (Some(1), Some(0), true);
        r.request_line = "GET /foo HTTP/1.1".into();
        r.reset(later);
        let fresh = LogRecord::new("127.0.0.1:49790".parse().unwrap(), later, &fe);
        assert_eq!(format!("{r:?}"), format!("{fresh:?}"));
        assert_eq!(r.format(), fresh.format());
        assert!(r
            .format()
            .contains(" all all/<NOSRV> -1/-1/-1/-1/0 0 0 - - ---- "));
        // Names left as they were are not replaced (no reference-count update).
        let server = r.server.clone();
        r.reset(later);
        assert!(Arc::ptr_eq(&r.server, &server) && Arc::ptr_eq(&r.backend, &r.frontend));
    }
}
