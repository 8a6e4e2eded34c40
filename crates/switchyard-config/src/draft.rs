//! Proxies while they are being read: one type for `defaults`, `frontend`,
//! `backend` and `listen`, turned into model [`Frontend`]/[`Backend`] values by
//! [`crate::validate`] once every section is known.

use crate::diag::{Diagnostic, Level, Shape};
use crate::model::*;
use std::time::Duration;

/// What a section can do, as HAProxy's `PR_CAP_FE`/`PR_CAP_BE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Defaults,
    Frontend,
    Backend,
    Listen,
}

impl Kind {
    pub(crate) fn word(self) -> &'static str {
        match self {
            Kind::Defaults => "defaults",
            Kind::Frontend => "frontend",
            Kind::Backend => "backend",
            Kind::Listen => "listen",
        }
    }
    pub(crate) fn fe(self) -> bool {
        !matches!(self, Kind::Backend)
    }
    pub(crate) fn be(self) -> bool {
        !matches!(self, Kind::Frontend)
    }
}

/// Server settings that `default-server` can preset; `None` means "not said".
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ServerOpts {
    pub check: Option<bool>,
    pub inter: Option<Duration>,
    pub fastinter: Option<Duration>,
    pub downinter: Option<Duration>,
    pub rise: Option<u32>,
    pub fall: Option<u32>,
    pub weight: Option<u32>,
    pub backup: Option<bool>,
    pub disabled: Option<bool>,
    pub maxconn: Option<u32>,
    pub maxqueue: Option<u32>,
    pub cookie: Option<String>,
    pub check_port: Option<u16>,
    pub check_addr: Option<String>,
    pub id: Option<u32>,
}

impl ServerOpts {
    /// `self` over `base`: values said here win.
    pub(crate) fn over(&self, base: &ServerOpts) -> ServerOpts {
        ServerOpts {
            check: self.check.or(base.check),
            inter: self.inter.or(base.inter),
            fastinter: self.fastinter.or(base.fastinter),
            downinter: self.downinter.or(base.downinter),
            rise: self.rise.or(base.rise),
            fall: self.fall.or(base.fall),
            weight: self.weight.or(base.weight),
            backup: self.backup.or(base.backup),
            disabled: self.disabled.or(base.disabled),
            maxconn: self.maxconn.or(base.maxconn),
            maxqueue: self.maxqueue.or(base.maxqueue),
            cookie: self.cookie.clone().or_else(|| base.cookie.clone()),
            check_port: self.check_port.or(base.check_port),
            check_addr: self.check_addr.clone().or_else(|| base.check_addr.clone()),
            // `id` is never inherited: ids must be unique.
            id: self.id,
        }
    }

    /// The model server, HAProxy's defaults applied: inter 2000 ms, fastinter and
    /// downinter = inter, rise 2, fall 3, weight 1.
    pub(crate) fn build(
        &self,
        name: String,
        loc: Location,
        host: String,
        port: Option<u16>,
        pos: u32,
    ) -> Server {
        let inter = self.inter.unwrap_or(Duration::from_millis(2000));
        Server {
            name,
            loc,
            host,
            port,
            check: self.check.unwrap_or(false),
            inter,
            fastinter: self.fastinter.unwrap_or(inter),
            downinter: self.downinter.unwrap_or(inter),
            rise: self.rise.unwrap_or(2),
            fall: self.fall.unwrap_or(3),
            weight: self.weight.unwrap_or(1),
            backup: self.backup.unwrap_or(false),
            disabled: self.disabled.unwrap_or(false),
            maxconn: self.maxconn.filter(|&m| m > 0),
            maxqueue: self.maxqueue.filter(|&m| m > 0),
            cookie: self.cookie.clone(),
            check_port: self.check_port,
            check_addr: self.check_addr.clone(),
            id: self.id.unwrap_or(pos),
        }
    }
}

/// A `use_backend` rule before backend names are resolved.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PendingSwitch {
    pub backend: String,
    pub cond: Option<Condition>,
    pub loc: Location,
}

/// Everything a proxy section can say. Cloned from the defaults it inherits from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Proxy {
    pub kind: Kind,
    pub name: String,
    pub loc: Location,
    pub mode: Mode,
    pub timeouts: Timeouts,
    pub maxconn: Option<u32>,
    pub conn_mode: Option<ConnMode>,
    pub pretend_keepalive: bool,
    pub forwardfor: Option<ForwardFor>,
    pub balance: Balance,
    /// Where `balance` was said (for the "needs mode http" warning).
    pub balance_l7: bool,
    pub cookie: Option<CookieConfig>,
    pub retries: u32,
    pub redispatch: Option<i32>,
    pub retry_on: RetryOn,
    pub httpchk: Option<HttpCheck>,
    pub http_check_expect: Vec<HttpCheckExpect>,
    /// `http-check send` parts, in order: (`meth`|`uri`|`ver`|`hdr`, value, header value).
    pub check_send: Vec<(&'static str, String, String)>,
    pub log_health_checks: bool,
    pub allbackups: bool,
    pub persist: bool,
    pub fullconn: Option<u32>,
    pub log_format: Option<LogFormat>,
    /// Where the log format was chosen (for the "needs mode http" warning).
    pub log_format_loc: Option<Location>,
    pub logs: Vec<LogTarget>,
    pub stats: Option<StatsPage>,
    pub monitor_uri: Option<String>,
    pub services: Vec<UseService>,
    pub dontlognull: bool,
    pub default_server: ServerOpts,
    pub default_backend: Option<(String, Location)>,
    pub binds: Vec<Bind>,
    pub servers: Vec<Server>,
    pub acls: Vec<Acl>,
    pub http_request_rules: Vec<HttpRequestRule>,
    /// `redirect` lines: evaluated after all `http-request` rules, as in HAProxy.
    pub redirect_rules: Vec<HttpRequestRule>,
    pub http_response_rules: Vec<HttpResponseRule>,
    pub switching: Vec<PendingSwitch>,
    /// Counter for anonymous ACL names.
    pub anon_acls: usize,
    /// For defaults sections: used by name (`from`), used implicitly, and
    /// which proxy kind inherited its rules.
    pub explicit_ref: bool,
    pub implicit_ref: bool,
    pub rules_used_by: Option<Kind>,
}

impl Proxy {
    /// HAProxy's built-in defaults.
    pub(crate) fn builtin(kind: Kind, name: String, loc: Location) -> Proxy {
        Proxy {
            kind,
            name,
            loc,
            mode: Mode::Tcp,
            timeouts: Timeouts::default(),
            maxconn: None,
            conn_mode: None,
            pretend_keepalive: false,
            forwardfor: None,
            balance: Balance::RoundRobin,
            balance_l7: false,
            cookie: None,
            retries: 3,
            redispatch: None,
            retry_on: RetryOn::default(),
            httpchk: None,
            http_check_expect: Vec::new(),
            check_send: Vec::new(),
            log_health_checks: false,
            allbackups: false,
            persist: false,
            fullconn: None,
            log_format: None,
            log_format_loc: None,
            logs: Vec::new(),
            stats: None,
            monitor_uri: None,
            services: Vec::new(),
            dontlognull: false,
            default_server: ServerOpts::default(),
            default_backend: None,
            binds: Vec::new(),
            servers: Vec::new(),
            acls: Vec::new(),
            http_request_rules: Vec::new(),
            redirect_rules: Vec::new(),
            http_response_rules: Vec::new(),
            switching: Vec::new(),
            anon_acls: 0,
            explicit_ref: false,
            implicit_ref: false,
            rules_used_by: None,
        }
    }

    /// A new section initialised from `defaults` (which keeps its settings,
    /// and for named defaults its ACLs and rules).
    pub(crate) fn inherit(defaults: &Proxy, kind: Kind, name: String, loc: Location) -> Proxy {
        let mut p = defaults.clone();
        p.kind = kind;
        p.name = name;
        p.loc = loc;
        p.binds.clear();
        p.servers.clear();
        p.switching.clear();
        p.explicit_ref = false;
        p.implicit_ref = false;
        p.rules_used_by = None;
        p
    }

    /// `"frontend 'all'"` as HAProxy words it.
    pub(crate) fn what(&self) -> String {
        format!("{} '{}'", self.kind.word(), self.name)
    }
}

/// Collects diagnostics.
#[derive(Debug, Default)]
pub(crate) struct Diags {
    pub list: Vec<Diagnostic>,
}

impl Diags {
    pub(crate) fn push(
        &mut self,
        level: Level,
        loc: Option<&Location>,
        keyword: &str,
        message: String,
        shape: Shape,
    ) {
        self.list.push(Diagnostic {
            level,
            file: loc.map(|l| l.file.clone()),
            line: loc.map(|l| l.line),
            // A line's first word may be empty (`""`): it is still the keyword.
            keyword: (loc.is_some() || !keyword.is_empty()).then(|| keyword.to_string()),
            message,
            shape,
        });
    }
    pub(crate) fn alert(&mut self, loc: &Location, keyword: &str, message: impl Into<String>) {
        self.push(
            Level::Alert,
            Some(loc),
            keyword,
            message.into(),
            Shape::Parsing,
        );
    }
    pub(crate) fn alert_shaped(
        &mut self,
        loc: &Location,
        keyword: &str,
        shape: Shape,
        message: impl Into<String>,
    ) {
        self.push(Level::Alert, Some(loc), keyword, message.into(), shape);
    }
    pub(crate) fn warn(&mut self, loc: &Location, keyword: &str, message: impl Into<String>) {
        self.push(
            Level::Warning,
            Some(loc),
            keyword,
            message.into(),
            Shape::Parsing,
        );
    }
    pub(crate) fn warn_shaped(
        &mut self,
        loc: &Location,
        keyword: &str,
        shape: Shape,
        message: impl Into<String>,
    ) {
        self.push(Level::Warning, Some(loc), keyword, message.into(), shape);
    }
    pub(crate) fn alerts(&self) -> usize {
        self.list.iter().filter(|d| d.level == Level::Alert).count()
    }
    pub(crate) fn has_alerts(&self) -> bool {
        self.list.iter().any(|d| d.level == Level::Alert)
    }
}

/// One configuration line, split.
#[derive(Debug, Clone)]
pub(crate) struct Line {
    pub words: Vec<String>,
    pub loc: Location,
}

impl Line {
    /// Word `i`, or `""` when missing (HAProxy's `*args[i] == 0` checks).
    pub(crate) fn arg(&self, i: usize) -> &str {
        self.words.get(i).map(String::as_str).unwrap_or("")
    }
    pub(crate) fn len(&self) -> usize {
        self.words.len()
    }
}
