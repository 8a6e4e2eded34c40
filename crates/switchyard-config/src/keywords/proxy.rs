//! Keywords of `defaults`, `frontend`, `backend` and `listen` sections.

use super::{ignored, ms, time_arg, uint_arg, unsupported, TimeWording};
use crate::acl;
use crate::diag::Shape;
use crate::draft::{Diags, Kind, Line, PendingSwitch, Proxy};
use crate::model::*;
use crate::parser::Parser;
use crate::suggest;
use crate::units::TimeUnit;

/// The words HAProxy 2.6 compares an unknown proxy keyword with, in its order:
/// keywords registered by modules first, then its `common_kw_list` (order
/// matters: the first of equally close words wins). Checked against 2.6.12 by
/// `tests/hints.rs`.
pub(crate) const PROXY_KEYWORDS: &[&str] = &[
    "timeout",
    "clitimeout",
    "contimeout",
    "srvtimeout",
    "rate-limit",
    "max-keep-alive-queue",
    "declare",
    "retry-on",
    "tcp-request",
    "tcp-response",
    "errorloc",
    "errorloc302",
    "errorloc303",
    "errorfile",
    "errorfiles",
    "http-error",
    "compression",
    "http-check",
    "tcp-check",
    "use-fcgi-app",
    "filter",
    "bind-process",
    // common_kw_list
    "listen",
    "frontend",
    "backend",
    "defaults",
    "server",
    "default-server",
    "server-template",
    "bind",
    "monitor-net",
    "monitor-uri",
    "mode",
    "id",
    "description",
    "disabled",
    "enabled",
    "acl",
    "dynamic-cookie-key",
    "cookie",
    "email-alert",
    "persist",
    "appsession",
    "load-server-state-from-file",
    "server-state-file-name",
    "max-session-srv-conns",
    "capture",
    "retries",
    "http-request",
    "http-response",
    "http-after-response",
    "http-send-name-header",
    "block",
    "redirect",
    "use_backend",
    "use-server",
    "force-persist",
    "ignore-persist",
    "force-persist",
    "stick-table",
    "stick",
    "stats",
    "option",
    "default_backend",
    "http-reuse",
    "monitor",
    "transparent",
    "maxconn",
    "backlog",
    "fullconn",
    "dispatch",
    "balance",
    "hash-type",
    "hash-balance-factor",
    "unique-id-format",
    "unique-id-header",
    "log-format",
    "log-format-sd",
    "log-tag",
    "log",
    "source",
    "usesrc",
    "error-log-format",
];

/// Keywords HAProxy removed, with 2.6.12's message (typos included: people
/// search for these exact words).
fn removed(line: &Line) -> Option<(Shape, String)> {
    let kw = line.arg(0);
    let since21 = |rest: &str| {
        format!("The '{kw}' directive is not supported anymore since HAProxy 2.1.{rest}")
    };
    let msg = match kw {
        "reqrep" => since21(" Use 'http-request replace-path', 'http-request replace-uri' or 'http-request replace-header' instead."),
        "reqirep" | "rsprep" | "rspirep" => {
            let side = if kw.starts_with("req") { "request" } else { "response" };
            since21(&format!(" Use 'http-{side} replace-header' instead."))
        }
        "reqdel" | "reqidel" => since21(" Use 'http-request del-header' instead."),
        "reqdeny" => format!("The '{kw}' not supported anymore since HAProxy 2.1. Use 'http-request deny' instead."),
        "reqideny" => since21(" Use 'http-request deny' instead."),
        "reqpass" => format!("The '{kw}' not supported anymore since HAProxy 2.1."),
        "reqipass" => since21(""),
        "reqallow" | "reqiallow" => since21(" Use 'http-request allow' instead."),
        "reqtarpit" | "reqitarpit" => since21(" Use 'http-request tarpit' instead."),
        "reqadd" => since21(" Use 'http-request add-header' instead."),
        "rspdel" => since21(" Use 'http-response del-header' ."),
        "rspidel" => since21(" Use 'http-response del-header' instead."),
        "rspdeny" | "rspideny" => since21(" Use 'http-response deny' instead."),
        "rspadd" => since21(" Use 'http-response add-header' instead."),
        "block" => since21(" Use 'http-request deny' which uses the exact same syntax."),
        "contimeout" | "clitimeout" | "srvtimeout" => {
            let t = match kw {
                "contimeout" => "connect",
                "clitimeout" => "client",
                _ => "server",
            };
            format!("the '{kw}' directive is not supported anymore since HAProxy 2.1. Use 'timeout {t}'.")
        }
        "redispatch" => "keyword 'redispatch' directive is not supported anymore since HAProxy 2.1. Use 'option redispatch'.".to_string(),
        "monitor-net" => format!(
            "'monitor-net' doesn't exist anymore. Please use 'http-request return status 200 if {{ src {} }}' instead.",
            line.arg(1)
        ),
        "appsession" => "'appsession' is not supported anymore since HAProxy 1.6.".to_string(),
        "grace" => {
            return Some((
                Shape::ParsingTight,
                "the 'grace' keyword is not supported any more since HAProxy version 2.5.".to_string(),
            ))
        }
        _ => return None,
    };
    Some((Shape::Parsing, msg))
}

/// Keywords HAProxy knows that switchyard refuses (they change routing,
/// balancing, persistence or access control in ways the model cannot express).
fn refused(kw: &str) -> Option<&'static str> {
    Some(match kw {
        "stick" | "stick-table" => "stick tables are not implemented; use 'cookie' persistence",
        "tcp-request" | "tcp-response" => "TCP-level rules are not implemented",
        "tcp-check" => {
            "TCP check sequences are not implemented; use 'option httpchk' or plain 'check'"
        }
        "http-after-response" => "not implemented; use 'http-response'",
        "use-server" | "force-persist" | "ignore-persist" | "persist" => {
            "server pinning rules are not implemented"
        }
        "dispatch"
        | "source"
        | "use-fcgi-app"
        | "filter"
        | "rate-limit"
        | "hash-balance-factor"
        | "dynamic-cookie-key"
        | "monitor"
        | "disabled" => "not implemented",
        _ => return None,
    })
}

/// Keywords accepted without effect, with the reason given in the warning.
fn without_effect(kw: &str) -> Option<&'static str> {
    Some(match kw {
        "description" | "id" | "log-tag" | "declare" | "email-alert" => "informational only",
        "capture" | "error-log-format" | "log-format-sd" => "not part of switchyard's log line",
        "errorfile" | "errorfiles" | "errorloc" | "errorloc302" | "errorloc303" | "http-error" => {
            "switchyard serves its built-in error pages"
        }
        "compression" => "responses are forwarded uncompressed as the server sent them",
        "unique-id-format" | "unique-id-header" | "http-send-name-header" => {
            "no request id header is added"
        }
        "backlog" | "max-keep-alive-queue" | "http-reuse" | "max-session-srv-conns" => {
            "switchyard uses its own connection handling"
        }
        "load-server-state-from-file" | "server-state-file-name" => {
            "server state is not carried across restarts"
        }
        _ => return None,
    })
}

pub(crate) fn keyword(p: &mut Parser<'_>, px: &mut Proxy, line: &Line) {
    let kw = line.arg(0);
    let loc = &line.loc;
    let d = &mut p.diags;
    if let Some((shape, msg)) = removed(line) {
        d.alert_shaped(loc, kw, shape, msg);
        return;
    }
    if matches!(kw, "mode" | "maxconn" | "fullconn" | "retries") && line.len() > 2 {
        d.alert(
            loc,
            kw,
            format!(
                "'{kw}' cannot handle unexpected argument '{}'.",
                line.arg(2)
            ),
        );
        return;
    }
    if kw == "log-format" && line.len() > 2 {
        d.alert(
            loc,
            kw,
            "log-format expects only one argument, don't forget to escape spaces!",
        );
        return;
    }
    match kw {
        "mode" => match line.arg(1) {
            "http" => px.mode = Mode::Http,
            "tcp" => px.mode = Mode::Tcp,
            "health" => d.alert(loc, kw, "'mode health' doesn't exist anymore. Please use 'http-request return status 200' instead."),
            other => d.alert(loc, kw, format!("unknown proxy mode '{other}'.")),
        },
        "timeout" => timeout(p, px, line),
        "retry-on" => retry_on(&mut p.diags, px, line),
        "retries" => {
            if !be(&mut p.diags, px, line) {
                return;
            }
            if line.arg(1).is_empty() {
                p.diags.alert(loc, kw, "'retries' expects an integer argument (dispatch counts for one).");
                return;
            }
            if let Some(v) = uint_arg(&mut p.diags, line, 1, "retries", i32::MAX as u64) {
                px.retries = v as u32;
            }
        }
        "maxconn" => {
            if px.kind == Kind::Backend {
                p.diags.warn(loc, kw, format!("'maxconn' ignored because {} has no frontend capability. Maybe you want 'fullconn' instead ?", px.what()));
                return;
            }
            if let Some(v) = uint_arg(&mut p.diags, line, 1, "maxconn", u32::MAX as u64) {
                px.maxconn = Some(v as u32);
            }
        }
        "fullconn" => {
            if !be(&mut p.diags, px, line) {
                return;
            }
            if let Some(v) = uint_arg(&mut p.diags, line, 1, "fullconn", u32::MAX as u64) {
                px.fullconn = Some(v as u32);
            }
        }
        "bind" => {
            if !fe(d, px, line) {
                return;
            }
            if px.kind == Kind::Defaults {
                d.alert(loc, kw, "'bind' not allowed in 'defaults' section.");
                return;
            }
            let spec = super::bind::env_expand(line.arg(1), &|n| p.getenv(n));
            if let Some(b) = super::bind::bind(&mut p.diags, line, &spec, px.kind.word()) {
                px.binds.push(b);
            }
        }
        "server" | "default-server" => super::server::server(p, px, line),
        "server-template" => super::server::template(p, px, line),
        "balance" => {
            if be(&mut p.diags, px, line) {
                super::lb::balance(p, px, line);
            }
        }
        "hash-type" => {
            if be(&mut p.diags, px, line) {
                match (line.arg(1), line.arg(2)) {
                    ("map-based", "" | "sdbm") => {}
                    _ => unsupported(&mut p.diags, line, "hash-type", "only 'map-based' hashing (the default) is implemented"),
                }
            }
        }
        "cookie" => {
            if be(&mut p.diags, px, line) {
                super::lb::cookie(p, px, line);
            }
        }
        "option" | "no" | "default" => super::option::option(p, px, line),
        "acl" => {
            if px.kind == Kind::Defaults && px.name.is_empty() {
                d.alert(loc, kw, "'acl' not allowed in anonymous 'defaults' section.");
                return;
            }
            acl::acl_line(&mut p.diags, px, line);
        }
        "use_backend" => {
            if !fe(d, px, line) {
                return;
            }
            if px.kind == Kind::Defaults {
                d.alert(loc, kw, "'use_backend' not allowed in 'defaults' section.");
                return;
            }
            if line.arg(1).is_empty() {
                d.alert(loc, kw, "'use_backend' expects a backend name.");
                return;
            }
            if line.arg(1).contains("%[") {
                unsupported(
                    d,
                    line,
                    &format!("use_backend {}", line.arg(1)),
                    "backend names computed per request are not implemented; list one use_backend rule per backend",
                );
                return;
            }
            let cond = match line.arg(2) {
                "" => None,
                "if" | "unless" => match acl::condition(
                    &mut p.diags,
                    px,
                    line,
                    2,
                    "error detected while parsing switching rule : ",
                ) {
                    Some(c) => Some(c),
                    None => return,
                },
                other => {
                    d.alert(loc, kw, format!("unexpected keyword '{other}' after switching rule, only 'if' and 'unless' are allowed."));
                    return;
                }
            };
            px.switching.push(PendingSwitch { backend: line.arg(1).to_string(), cond, loc: loc.clone() });
        }
        "default_backend" => {
            if !fe(d, px, line) {
                return;
            }
            if line.arg(1).is_empty() {
                d.alert(loc, kw, "'default_backend' expects a backend name.");
                return;
            }
            if line.len() > 2 {
                d.alert(loc, kw, format!("'default_backend' cannot handle unexpected argument '{}'.", line.arg(2)));
                return;
            }
            px.default_backend = Some((line.arg(1).to_string(), loc.clone()));
        }
        "http-request" | "http-response" | "redirect" => {
            if px.kind == Kind::Defaults && px.name.is_empty() {
                d.alert(loc, kw, format!("'{kw}' not allowed in anonymous 'defaults' section."));
                return;
            }
            super::rules::rule(&mut p.diags, px, line, p.expose_experimental);
        }
        "http-check" => {
            if be(&mut p.diags, px, line) {
                super::rules::http_check(&mut p.diags, px, line);
            }
        }
        "monitor-uri" => {
            if !fe(d, px, line) {
                return;
            }
            if line.arg(1).is_empty() {
                d.alert(loc, kw, "'monitor-uri' expects an URI.");
                return;
            }
            if line.len() > 2 {
                d.alert(loc, kw, format!("'monitor-uri' cannot handle unexpected argument '{}'.", line.arg(2)));
                return;
            }
            px.monitor_uri = Some(line.arg(1).to_string());
        }
        "stats" => super::rules::stats(&mut p.diags, px, line),
        "log" if px.kind == Kind::Backend => ignored(
            d,
            line,
            "log",
            "requests are logged by the frontend that received them; health checks log to stderr",
        ),
        "log" => {
            if line.arg(1) == "global" {
                px.logs.extend(p.global.logs.iter().cloned());
            } else if let Some(t) = super::global::log_target(&mut p.diags, line) {
                px.logs.push(t);
            }
        }
        "log-format" => {
            if !fe(d, px, line) {
                return;
            }
            if line.arg(1).is_empty() {
                d.alert(loc, kw, "'log-format' expects a format string as argument.");
                return;
            }
            if let Err(e) = crate::logformat::parse_log_format(line.arg(1)) {
                d.alert(loc, kw, e);
                return;
            }
            px.log_format = Some(LogFormat::Custom(line.arg(1).to_string()));
            px.log_format_loc = Some(loc.clone());
        }
        "enabled" => {}
        "bind-process" => d.warn_shaped(
            loc,
            kw,
            Shape::ParsingTight,
            "'bind-process' has no effect, is deprecated, and will be removed in version 2.7.",
        ),
        _ => {
            if let Some(why) = refused(kw) {
                unsupported(d, line, kw, why);
            } else if let Some(why) = without_effect(kw) {
                ignored(d, line, kw, why);
            } else {
                let hint = suggest::hint(kw, PROXY_KEYWORDS.iter().copied());
                d.alert(loc, kw, format!("unknown keyword '{kw}' in '{}' section{hint}", px.kind.word()));
            }
        }
    }
}

/// Checks the backend capability; warns like HAProxy when missing.
/// `retry-on <keyword>...` (HAProxy 2.6 `proxy_parse_retry_on`): replaces
/// the previous set (not cumulative); `none` only alone; an alert, as in
/// HAProxy, for a frontend or an unknown word.
fn retry_on(d: &mut Diags, px: &mut Proxy, line: &Line) {
    let loc = &line.loc;
    if line.arg(1).is_empty() {
        d.alert(
            loc,
            "retry-on",
            "'retry-on' needs at least one keyword to specify when to retry",
        );
        return;
    }
    if !px.kind.be() {
        d.alert(
            loc,
            "retry-on",
            "'retry-on' only available in backend or listen section",
        );
        return;
    }
    let mut set = RetryOn::NONE;
    for i in 1..line.len() {
        let word = line.arg(i);
        if word == "none" {
            if i != 1 || line.len() > 2 {
                d.alert(
                    loc,
                    "retry-on",
                    "'retry-on' 'none' keyworld only usable alone",
                );
                return;
            }
            continue;
        }
        match RetryOn::keyword(word) {
            Some(r) => set = set.union(r),
            None => {
                d.alert(
                    loc,
                    "retry-on",
                    format!("'retry-on': unknown keyword '{word}'"),
                );
                return;
            }
        }
    }
    px.retry_on = set;
}

pub(crate) fn be(d: &mut Diags, px: &Proxy, line: &Line) -> bool {
    if px.kind.be() {
        return true;
    }
    if line.arg(0) == "server" {
        d.alert(
            &line.loc,
            "server",
            format!(
                "'server' not allowed because {} has no backend capability.",
                px.what()
            ),
        );
        return false;
    }
    d.warn(
        &line.loc,
        line.arg(0),
        format!(
            "'{}' ignored because {} has no backend capability.",
            line.arg(0),
            px.what()
        ),
    );
    false
}

/// Checks the frontend capability; warns like HAProxy when missing.
pub(crate) fn fe(d: &mut Diags, px: &Proxy, line: &Line) -> bool {
    if px.kind.fe() {
        return true;
    }
    d.warn(
        &line.loc,
        line.arg(0),
        format!(
            "'{}' ignored because {} has no frontend capability.",
            line.arg(0),
            px.what()
        ),
    );
    false
}

fn timeout(p: &mut Parser<'_>, px: &mut Proxy, line: &Line) {
    let name = line.arg(1);
    let fe_only = matches!(
        name,
        "client" | "http-request" | "http-keep-alive" | "client-fin"
    );
    let known = fe_only
        || matches!(
            name,
            "server" | "connect" | "check" | "queue" | "tunnel" | "server-fin" | "tarpit"
        );
    if !known {
        p.diags.alert(
            &line.loc,
            "timeout",
            format!("'timeout' supports 'client', 'server', 'connect', 'check', 'queue', 'http-keep-alive', 'http-request', 'tunnel', 'tarpit', 'client-fin' and 'server-fin' (got '{name}')"),
        );
        return;
    }
    let what = format!("timeout {name}");
    let (ok, cap) = if fe_only {
        (px.kind.fe(), "frontend")
    } else {
        (px.kind.be(), "backend")
    };
    let Some(v) = time_arg(
        &mut p.diags,
        line,
        2,
        &what,
        TimeUnit::Ms,
        TimeWording::Value,
    ) else {
        return;
    };
    if line.len() > 3 {
        p.diags.alert(
            &line.loc,
            "timeout",
            format!(
                "'{what}' : unexpected extra argument '{}' after value '{}'.",
                line.arg(3),
                line.arg(2)
            ),
        );
        return;
    }
    if !ok {
        p.diags.warn(
            &line.loc,
            "timeout",
            format!(
                "'{what}' will be ignored because {} has no {cap} capability",
                px.what()
            ),
        );
        return;
    }
    // 0 means "not set" (infinite), as in HAProxy.
    let v = (v > 0).then(|| ms(v));
    let t = &mut px.timeouts;
    match name {
        "client" => t.client = v,
        "http-request" => t.http_request = v,
        "http-keep-alive" => t.http_keep_alive = v,
        "client-fin" => t.client_fin = v,
        "server" => t.server = v,
        "connect" => t.connect = v,
        "check" => t.check = v,
        "queue" => t.queue = v,
        "tunnel" => t.tunnel = v,
        "server-fin" => t.server_fin = v,
        _ => ignored(
            &mut p.diags,
            line,
            "timeout tarpit",
            "'http-request tarpit' is not implemented",
        ),
    }
}
