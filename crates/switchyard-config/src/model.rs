//! The validated configuration model: what the proxy runs.
//!
//! Everything here is plain data. Values inherited from `defaults` are already
//! applied; cross references (`use_backend`, `default_backend`, ACL names) are
//! resolved to indices. `None` for a timeout means "not set" (infinite), as in
//! HAProxy where `timeout X 0` also means unset.
//!
//! A `listen` section produces one [`Frontend`] and one [`Backend`] with the same
//! name; the frontend's `default_backend` points at that backend unless the
//! section says otherwise.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// Where a directive came from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Location {
    pub file: String,
    pub line: usize,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config {
    pub global: Global,
    pub frontends: Vec<Frontend>,
    pub backends: Vec<Backend>,
}

impl Config {
    pub fn backend_index(&self, name: &str) -> Option<usize> {
        self.backends.iter().position(|b| b.name == name)
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Global {
    /// `maxconn` in global: process-wide concurrent connection cap.
    pub maxconn: Option<u32>,
    /// `nbthread`: worker threads (one runtime per thread).
    pub nbthread: Option<u32>,
    /// `tune.bufsize` in bytes (HAProxy default 16384).
    pub tune_bufsize: Option<usize>,
    /// `tune.http.maxhdr` (HAProxy default 101).
    pub tune_http_maxhdr: Option<u32>,
    /// `stats socket <addr> ...`: the runtime API listener, as written.
    pub stats_sockets: Vec<StatsSocket>,
    /// `log` targets declared in global (`log stdout format raw local0` ...).
    pub logs: Vec<LogTarget>,
    /// Environment set by `setenv`/`presetenv` while reading (already applied to `${}`).
    pub setenv: Vec<(String, String)>,
    /// `hard-stop-after <time>`: once the process stops (soft stop or `-sf` hand-over),
    /// the longest it waits for its connections to end before closing them.
    pub hard_stop_after: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StatsSocket {
    /// `ipv4@127.0.0.1:9999`, `127.0.0.1:9999` or a filesystem path for a unix socket.
    pub address: String,
    pub level: Option<String>,
    /// `mode 600`: permissions of a unix socket (octal), else the umask's.
    pub mode: Option<u32>,
    /// `expose-fd listeners`: a new process started with `-x <this socket>`
    /// may take the listening sockets (see the switchyard crate's `handover`).
    pub expose_fd_listeners: bool,
    pub loc: Location,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LogTarget {
    /// `stdout`, `stderr`, `127.0.0.1:514`, `/dev/log`, `global` (in a proxy).
    pub target: String,
    pub format: Option<String>,
    pub facility: Option<String>,
    pub loc: Location,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    #[default]
    Tcp,
    Http,
}

/// HAProxy's HTTP connection modes; the effective mode of a stream is the
/// strongest of the frontend's and the backend's (KeepAlive < ServerClose < Close).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum ConnMode {
    #[default]
    KeepAlive,
    ServerClose,
    Close,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: Option<Duration>,
    pub client: Option<Duration>,
    pub server: Option<Duration>,
    pub tunnel: Option<Duration>,
    pub http_request: Option<Duration>,
    pub http_keep_alive: Option<Duration>,
    pub queue: Option<Duration>,
    pub check: Option<Duration>,
    pub client_fin: Option<Duration>,
    pub server_fin: Option<Duration>,
}

/// A network with a prefix length, e.g. `127.0.0.0/8`; a bare address is /32 or /128.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl IpNet {
    pub fn contains(&self, ip: IpAddr) -> bool {
        fn bits(a: IpAddr) -> (u128, u8) {
            match a {
                IpAddr::V4(v) => (u128::from(u32::from(v)), 32),
                IpAddr::V6(v) => (u128::from(v), 128),
            }
        }
        // An IPv4 client seen as ::ffff:a.b.c.d matches IPv4 networks.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        let (net, width) = bits(self.addr);
        let (addr, w2) = bits(ip);
        if width != w2 {
            return false;
        }
        let prefix = u32::from(self.prefix.min(width));
        if prefix == 0 {
            return true;
        }
        let shift = u32::from(width) - prefix;
        (net >> shift) == (addr >> shift)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardFor {
    /// Header name; `X-Forwarded-For` unless `header NAME` was given.
    pub header: String,
    pub except: Option<IpNet>,
    pub if_none: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Bind {
    /// One entry per port for ranges (`8000-8010`); `*:80` and `:80` give 0.0.0.0.
    pub addrs: Vec<SocketAddr>,
    pub name: Option<String>,
    pub maxconn: Option<u32>,
    pub loc: Location,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Frontend {
    pub name: String,
    pub loc: Location,
    pub mode: Mode,
    pub binds: Vec<Bind>,
    pub timeouts: Timeouts,
    pub maxconn: Option<u32>,
    /// From `option http-keep-alive|http-server-close|httpclose`; None = default (keep-alive).
    pub conn_mode: Option<ConnMode>,
    pub forwardfor: Option<ForwardFor>,
    /// All ACLs usable by this proxy's conditions: named ones (each declaration of
    /// the same name is one [`Acl`] entry with several criteria, OR-ed), anonymous
    /// `{ ... }` ones (named `{anon#N}`), and the predefined ones that are referenced.
    pub acls: Vec<Acl>,
    pub http_request_rules: Vec<HttpRequestRule>,
    pub http_response_rules: Vec<HttpResponseRule>,
    pub switching_rules: Vec<SwitchingRule>,
    /// Index into [`Config::backends`].
    pub default_backend: Option<usize>,
    /// `option httplog` / `option tcplog` / `log-format`.
    pub log_format: Option<LogFormat>,
    pub logs: Vec<LogTarget>,
    pub stats: Option<StatsPage>,
    /// `monitor-uri /path`: answered 200 by the proxy itself.
    pub monitor_uri: Option<String>,
    /// `http-request use-service <name> [if|unless cond]` lines, in order.
    pub services: Vec<UseService>,
    /// `option dontlognull`: no access-log line for a connection that closed
    /// before sending any byte (health probes, port scans).
    pub dontlognull: bool,
}

/// A service the proxy answers itself (`http-request use-service`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// HAProxy's built-in Prometheus exporter.
    PrometheusExporter,
}

/// `http-request use-service <service> [if|unless cond]`.
///
/// Kept apart from [`Frontend::http_request_rules`]: switchyard evaluates these
/// after the frontend's other `http-request` rules (a `deny` placed after a
/// `use-service` line still applies), where HAProxy stops at the first
/// matching rule in line order. `after_rules` records how many ordinary rules
/// preceded the line, so the difference is visible to whoever needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct UseService {
    pub service: Service,
    pub cond: Option<Condition>,
    /// Number of `http-request` rules written before this line.
    pub after_rules: usize,
    pub loc: Location,
}

#[derive(Debug, Clone, PartialEq)]
pub enum LogFormat {
    HttpLog,
    TcpLog,
    /// `option httplog clf`.
    Clf,
    Custom(String),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatsPage {
    /// `stats uri`; HAProxy's default is `/haproxy?stats`.
    pub uri: String,
    pub refresh: Option<Duration>,
    /// `stats auth user:pass` entries.
    pub auth: Vec<(String, String)>,
    pub realm: Option<String>,
    pub hide_version: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Acl {
    pub name: String,
    /// Declarations of the same name are OR-ed.
    pub criteria: Vec<AclCriterion>,
}

/// One `acl` line (or one anonymous ACL): `<fetch> [flags] [-m method] <patterns...>`.
/// Matches if the fetched sample matches any pattern.
#[derive(Debug, Clone, PartialEq)]
pub struct AclCriterion {
    pub fetch: Fetch,
    pub ignore_case: bool,
    pub method: MatchMethod,
    /// Raw pattern strings; `Reg` patterns are already checked to compile,
    /// `Ip` patterns are parsed into [`AclCriterion::nets`].
    pub patterns: Vec<String>,
    pub nets: Vec<IpNet>,
    pub loc: Location,
}

/// Sample fetches the router can evaluate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetch {
    /// URI part from the first `/` up to `?`, not decoded.
    Path,
    /// The whole request target as sent.
    Url,
    /// After `?`, without it.
    Query,
    Method,
    Src,
    /// Destination port of the accepted connection.
    DstPort,
    /// `hdr(name[,occ])`: every comma-separated value of every occurrence (occ selects one; negative from the end).
    Hdr {
        name: String,
        occ: Option<i32>,
    },
    /// `fhdr(name[,occ])`: full header values, no comma split.
    Fhdr {
        name: String,
        occ: Option<i32>,
    },
    /// `hdr_cnt(name)`.
    HdrCnt {
        name: String,
    },
    /// `url_param(name)` / `urlp(name)`.
    UrlParam {
        name: String,
    },
    /// `req.cook(name)` / `cook(name)`.
    Cookie {
        name: String,
    },
    /// `req.ver` / `req_ver`: "1.0", "1.1".
    ReqVer,
    /// Predefined/constant ACLs (`TRUE`, `FALSE`).
    Always(bool),
}

/// How a fetched sample is compared with the patterns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchMethod {
    Str,
    Beg,
    End,
    Sub,
    Reg,
    Dir,
    Dom,
    Len,
    Int,
    Ip,
    Found,
    Bool,
}

/// `if|unless` condition in disjunctive normal form: OR of AND-groups.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// `unless` inverts the whole result.
    pub unless: bool,
    pub any_of: Vec<Vec<Term>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Term {
    pub negated: bool,
    /// Index into the owning proxy's `acls`.
    pub acl: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SwitchingRule {
    /// Index into [`Config::backends`].
    pub backend: usize,
    pub cond: Option<Condition>,
    pub loc: Location,
}

#[derive(Debug, Clone, PartialEq)]
pub enum HttpRequestAction {
    Deny {
        status: u16,
    },
    Allow,
    SetHeader {
        name: String,
        value: String,
    },
    AddHeader {
        name: String,
        value: String,
    },
    DelHeader {
        name: String,
    },
    Redirect {
        kind: RedirectKind,
        target: String,
        code: u16,
    },
    NormalizeUri(NormalizeUri),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NormalizeUri {
    PathMergeSlashes,
    PathStripDotdot,
    PathStripDot,
    PercentDecodeUnreserved,
    PercentToUppercase,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedirectKind {
    Location,
    Prefix,
    Scheme,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HttpRequestRule {
    pub action: HttpRequestAction,
    pub cond: Option<Condition>,
    pub loc: Location,
}

#[derive(Debug, Clone, PartialEq)]
pub enum HttpResponseAction {
    SetHeader { name: String, value: String },
    AddHeader { name: String, value: String },
    DelHeader { name: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct HttpResponseRule {
    pub action: HttpResponseAction,
    pub cond: Option<Condition>,
    pub loc: Location,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Balance {
    #[default]
    RoundRobin,
    StaticRr,
    LeastConn,
    First,
    Source,
    /// `random [(draws)]`; default 2 draws.
    Random {
        draws: u32,
    },
    Uri {
        len: Option<u32>,
        depth: Option<u32>,
        whole: bool,
        path_only: bool,
    },
    UrlParam {
        name: String,
    },
    Hdr {
        name: String,
        use_domain_only: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CookieMode {
    /// No mode keyword: only read request cookies.
    #[default]
    Passive,
    Insert,
    Rewrite,
    Prefix,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CookieConfig {
    pub name: String,
    pub mode: CookieMode,
    pub indirect: bool,
    pub nocache: bool,
    pub postonly: bool,
    pub preserve: bool,
    pub httponly: bool,
    pub secure: bool,
    pub domains: Vec<String>,
    pub attrs: Vec<String>,
    /// Whole seconds (HAProxy's default unit for these).
    pub maxidle: Option<u32>,
    pub maxlife: Option<u32>,
    pub dynamic: bool,
    pub loc: Location,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpCheck {
    pub method: String,
    pub uri: String,
    pub version: String,
    /// From `http-check send hdr <name> <value>`.
    pub headers: Vec<(String, String)>,
}

impl Default for HttpCheck {
    fn default() -> Self {
        HttpCheck {
            method: "OPTIONS".into(),
            uri: "/".into(),
            version: "HTTP/1.0".into(),
            headers: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpCheckExpect {
    /// Inclusive ranges; `status 200` is `[(200,200)]`.
    Status {
        negate: bool,
        ranges: Vec<(u16, u16)>,
    },
    RStatus {
        negate: bool,
        regex: String,
    },
    String {
        negate: bool,
        text: String,
    },
    RString {
        negate: bool,
        regex: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Backend {
    pub name: String,
    pub loc: Location,
    pub mode: Mode,
    pub balance: Balance,
    pub cookie: Option<CookieConfig>,
    pub servers: Vec<Server>,
    /// `retries N`: extra connection attempts (default 3).
    pub retries: u32,
    /// `option redispatch [interval]`: Some(-1) is the default interval (last retry).
    pub redispatch: Option<i32>,
    /// `retry-on <events>`: which failures count as retryable (default `conn-failure`).
    pub retry_on: RetryOn,
    pub timeouts: Timeouts,
    pub conn_mode: Option<ConnMode>,
    /// `option http-pretend-keepalive`.
    pub pretend_keepalive: bool,
    pub forwardfor: Option<ForwardFor>,
    /// `option httpchk`: health checks are HTTP instead of TCP connect.
    pub httpchk: Option<HttpCheck>,
    pub http_check_expect: Vec<HttpCheckExpect>,
    pub log_health_checks: bool,
    pub allbackups: bool,
    /// `option persist`: honour a cookie naming a DOWN server.
    pub persist: bool,
    pub acls: Vec<Acl>,
    pub http_request_rules: Vec<HttpRequestRule>,
    pub http_response_rules: Vec<HttpResponseRule>,
    /// `fullconn`, kept for the stats page.
    pub fullconn: Option<u32>,
}

impl Default for Backend {
    fn default() -> Self {
        Backend {
            name: String::new(),
            loc: Location::default(),
            mode: Mode::Tcp,
            balance: Balance::RoundRobin,
            cookie: None,
            servers: Vec::new(),
            retries: 3,
            redispatch: None,
            retry_on: RetryOn::default(),
            timeouts: Timeouts::default(),
            conn_mode: None,
            pretend_keepalive: false,
            forwardfor: None,
            httpchk: None,
            http_check_expect: Vec::new(),
            log_health_checks: false,
            allbackups: false,
            persist: false,
            acls: Vec::new(),
            http_request_rules: Vec::new(),
            http_response_rules: Vec::new(),
            fullconn: None,
        }
    }
}

/// `retry-on` (HAProxy 2.6): the events after which a request may be sent
/// again, within `retries`. A set of HAProxy's keywords; `Default` is
/// `conn-failure` (HAProxy's default), [`RetryOn::NONE`] is `retry-on none`.
///
/// The set says which events are *eligible*; whether a request that already
/// reached a server is really sent again is the proxy's decision (switchyard
/// replays only idempotent requests it holds in full, see `proxy/retry.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RetryOn(u32);

impl RetryOn {
    /// `none`: not even failed connection attempts are retried.
    pub const NONE: RetryOn = RetryOn(0);
    /// `conn-failure`: the connection could not be established.
    pub const CONN_FAILURE: RetryOn = RetryOn(1);
    /// `empty-response`: the server closed after (part of) the request was
    /// sent, and nothing came back.
    pub const EMPTY_RESPONSE: RetryOn = RetryOn(1 << 1);
    /// `junk-response`: something that is not a complete HTTP response head.
    pub const JUNK_RESPONSE: RetryOn = RetryOn(1 << 2);
    /// `response-timeout`: `timeout server` expired before the response head.
    pub const RESPONSE_TIMEOUT: RetryOn = RetryOn(1 << 3);
    /// `0rtt-rejected`: TLS early data refused (no TLS here: accepted, never occurs).
    pub const ZERO_RTT_REJECTED: RetryOn = RetryOn(1 << 4);
    /// The status codes `retry-on` accepts, in HAProxy's order; bit `5 + i`.
    pub const STATUSES: [u16; 10] = [401, 403, 404, 408, 425, 500, 501, 502, 503, 504];

    /// `all-retryable-errors`: conn-failure, empty-response, junk-response,
    /// response-timeout, 0rtt-rejected, 500, 502, 503, 504.
    pub fn all_retryable_errors() -> RetryOn {
        let mut r = RetryOn(
            Self::CONN_FAILURE.0
                | Self::EMPTY_RESPONSE.0
                | Self::JUNK_RESPONSE.0
                | Self::RESPONSE_TIMEOUT.0
                | Self::ZERO_RTT_REJECTED.0,
        );
        for code in [500, 502, 503, 504] {
            r = r.with_status(code).unwrap_or(r);
        }
        r
    }

    /// The set with `code` added; None when `retry-on` does not accept that code.
    pub fn with_status(self, code: u16) -> Option<RetryOn> {
        let i = Self::STATUSES.iter().position(|&c| c == code)?;
        Some(RetryOn(self.0 | 1 << (5 + i)))
    }

    /// Union of two sets.
    pub fn union(self, other: RetryOn) -> RetryOn {
        RetryOn(self.0 | other.0)
    }

    /// Every event of `other` is in this set.
    pub fn contains(self, other: RetryOn) -> bool {
        self.0 & other.0 == other.0 && other.0 != 0
    }

    /// A response with this status is retried.
    pub fn status(self, code: u16) -> bool {
        Self::STATUSES
            .iter()
            .position(|&c| c == code)
            .is_some_and(|i| self.0 & 1 << (5 + i) != 0)
    }

    /// Anything beyond `conn-failure`: events after the request reached a
    /// server (HAProxy's "L7 retries", which need the request kept in a buffer).
    pub fn after_send(self) -> bool {
        self.0 & !Self::CONN_FAILURE.0 != 0
    }

    /// Parses one `retry-on` keyword (not `none`, which is only valid alone).
    pub fn keyword(word: &str) -> Option<RetryOn> {
        Some(match word {
            "conn-failure" => Self::CONN_FAILURE,
            "empty-response" => Self::EMPTY_RESPONSE,
            "junk-response" => Self::JUNK_RESPONSE,
            "response-timeout" => Self::RESPONSE_TIMEOUT,
            "0rtt-rejected" => Self::ZERO_RTT_REJECTED,
            "all-retryable-errors" => Self::all_retryable_errors(),
            code => Self::NONE.with_status(code.parse().ok()?)?,
        })
    }
}

impl Default for RetryOn {
    fn default() -> Self {
        Self::CONN_FAILURE
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Server {
    pub name: String,
    pub loc: Location,
    /// Host as written (IP literal or name); resolving names is the runtime's job.
    /// IPv6 literals are stored without brackets (`::1`), so they parse as `IpAddr`.
    pub host: String,
    /// None when the address has no port (then the client's destination port is used).
    pub port: Option<u16>,
    pub check: bool,
    /// Check intervals, defaults applied: inter 2000 ms; fastinter and downinter default to inter.
    pub inter: Duration,
    pub fastinter: Duration,
    pub downinter: Duration,
    /// Defaults 2 and 3.
    pub rise: u32,
    pub fall: u32,
    /// 0..=256, default 1.
    pub weight: u32,
    pub backup: bool,
    /// Starts in maintenance.
    pub disabled: bool,
    pub maxconn: Option<u32>,
    pub maxqueue: Option<u32>,
    /// `cookie <value>`.
    pub cookie: Option<String>,
    /// `port N` / `addr A` for checks.
    pub check_port: Option<u16>,
    pub check_addr: Option<String>,
    /// `id N`, or the 1-based position in the backend.
    pub id: u32,
}
