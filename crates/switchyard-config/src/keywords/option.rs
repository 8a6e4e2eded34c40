//! `option X`, `no option X`, `default option X`.

use super::{ignored, unsupported};
use crate::diag::Shape;
use crate::draft::{Kind, Line, Proxy};
use crate::model::*;
use crate::parser::Parser;
use crate::suggest;

/// Every option HAProxy 2.6 knows (for "did you mean").
const OPTIONS: &[&str] = &[
    "abortonclose",
    "accept-invalid-http-request",
    "accept-invalid-http-response",
    "allbackups",
    "checkcache",
    "clitcpka",
    "contstats",
    "disable-h2-upgrade",
    "dontlog-normal",
    "dontlognull",
    "forwardfor",
    "h1-case-adjust-bogus-client",
    "h1-case-adjust-bogus-server",
    "http-buffer-request",
    "http-ignore-probes",
    "http-keep-alive",
    "http-no-delay",
    "http-pretend-keepalive",
    "http-server-close",
    "http-use-proxy-header",
    "httpchk",
    "httpclose",
    "httplog",
    "http_proxy",
    "independent-streams",
    "ldap-check",
    "external-check",
    "log-health-checks",
    "log-separate-errors",
    "logasap",
    "mysql-check",
    "nolinger",
    "originalto",
    "persist",
    "pgsql-check",
    "prefer-last-server",
    "redispatch",
    "redis-check",
    "smtpchk",
    "socket-stats",
    "splice-auto",
    "splice-request",
    "splice-response",
    "spop-check",
    "srvtcpka",
    "ssl-hello-chk",
    "tcp-check",
    "tcp-smart-accept",
    "tcp-smart-connect",
    "tcpka",
    "tcplog",
    "transparent",
    "idle-close-on-response",
];

/// Where an option is meaningful: (frontend, backend).
fn caps(name: &str) -> (bool, bool) {
    match name {
        "httplog"
        | "tcplog"
        | "dontlognull"
        | "dontlog-normal"
        | "log-separate-errors"
        | "logasap"
        | "clitcpka"
        | "http-ignore-probes"
        | "tcp-smart-accept"
        | "accept-invalid-http-request"
        | "socket-stats"
        | "h1-case-adjust-bogus-client"
        | "http-buffer-request"
        | "idle-close-on-response" => (true, false),
        "redispatch"
        | "httpchk"
        | "http-pretend-keepalive"
        | "allbackups"
        | "persist"
        | "log-health-checks"
        | "srvtcpka"
        | "tcp-smart-connect"
        | "accept-invalid-http-response"
        | "checkcache"
        | "prefer-last-server"
        | "h1-case-adjust-bogus-server"
        | "abortonclose"
        | "ssl-hello-chk"
        | "smtpchk"
        | "mysql-check"
        | "pgsql-check"
        | "redis-check"
        | "ldap-check"
        | "spop-check"
        | "tcp-check"
        | "external-check"
        | "transparent"
        | "http_proxy" => (false, true),
        _ => (true, true),
    }
}

pub(crate) fn option(p: &mut Parser<'_>, px: &mut Proxy, line: &Line) {
    let loc = &line.loc;
    let (neg, reset, base) = match line.arg(0) {
        "no" => (true, false, 1),
        "default" => (false, true, 1),
        _ => (false, false, 0),
    };
    if base == 1 && line.arg(1) != "option" {
        p.diags.alert_shaped(
            loc,
            line.arg(0),
            Shape::ParsingTight,
            "negation/default currently supported only for options, log, busy-polling, set-dumpable, strict-limits, insecure-fork-wanted and numa-cpu-mapping.",
        );
        return;
    }
    let name = line.arg(base + 1);
    let args = &line.words[(base + 2).min(line.len())..];
    let d = &mut p.diags;
    if name.is_empty() {
        d.alert_shaped(
            loc,
            "option",
            Shape::ParsingTight,
            "'option' expects an option name.",
        );
        return;
    }
    if name == "forceclose" {
        d.alert_shaped(loc, "option", Shape::ParsingTight, "option 'forceclose' is not supported any more since HAProxy 2.0, please just remove it, or use 'option httpclose' if absolutely needed.");
        return;
    }
    if name == "http_proxy" {
        d.alert_shaped(loc, "option", Shape::ParsingTight, "option 'http_proxy' is not supported any more since HAProxy 2.5. This option stopped working in HAProxy 1.9 and usually had nasty side effects. It can be more reliably implemented with combinations of 'http-request set-dst' and 'http-request set-uri', and even 'http-request do-resolve' if DNS resolution is desired.");
        return;
    }
    if name == "http-tunnel" {
        d.alert_shaped(loc, "option", Shape::ParsingTight, "option 'http-tunnel' is not supported any more since HAProxy 2.1, please just remove it, it shouldn't be needed.");
        return;
    }
    if !OPTIONS.contains(&name) {
        let hint = suggest::hint(name, OPTIONS.iter().copied());
        d.alert(
            loc,
            "option",
            format!(
                "unknown option '{name}'{hint}{}",
                if hint.is_empty() { "." } else { "" }
            ),
        );
        return;
    }
    if name == "httplog" && px.kind == Kind::Backend {
        d.warn(
            loc,
            "option",
            format!(
                "backend '{}' : 'option httplog' directive is ignored in backends.",
                px.name
            ),
        );
        return;
    }
    let (fe_ok, be_ok) = caps(name);
    if !(fe_ok && px.kind.fe() || be_ok && px.kind.be()) {
        let cap = if fe_ok { "frontend" } else { "backend" };
        d.warn(
            loc,
            "option",
            format!(
                "'{name}' ignored because {} has no {cap} capability.",
                px.what()
            ),
        );
        return;
    }
    let takes_args = matches!(
        name,
        "forwardfor" | "httpchk" | "redispatch" | "httplog" | "originalto"
    );
    if !takes_args {
        if let Some(a) = args.first() {
            d.alert(
                loc,
                "option",
                format!("'option {name}' cannot handle unexpected argument '{a}'."),
            );
            return;
        }
    }
    let on = !neg;
    let _ = reset; // `default option X` restores the built-in value, which is "off" for every bool below.
    let boolean = |b: &mut bool| *b = on;
    match name {
        "http-keep-alive" | "http-server-close" | "httpclose" => {
            let mode = match name {
                "http-keep-alive" => ConnMode::KeepAlive,
                "http-server-close" => ConnMode::ServerClose,
                _ => ConnMode::Close,
            };
            if on {
                px.conn_mode = Some(mode);
            } else if px.conn_mode == Some(mode) {
                px.conn_mode = None;
            }
        }
        "http-pretend-keepalive" => boolean(&mut px.pretend_keepalive),
        "allbackups" => boolean(&mut px.allbackups),
        "persist" => boolean(&mut px.persist),
        "log-health-checks" => boolean(&mut px.log_health_checks),
        "dontlognull" => boolean(&mut px.dontlognull),
        "redispatch" => {
            if !on || reset {
                px.redispatch = None;
                return;
            }
            px.redispatch = match args.first().map(String::as_str) {
                None => Some(-1),
                Some(a) => match a.parse::<i32>() {
                    Ok(v) => Some(v),
                    Err(_) => {
                        d.alert(
                            loc,
                            "option",
                            format!("'option redispatch' expects an integer argument (got '{a}')."),
                        );
                        return;
                    }
                },
            };
        }
        "forwardfor" => {
            if neg || reset {
                d.alert_shaped(
                    loc,
                    "option",
                    Shape::ParsingTight,
                    "negation/default is not supported for option 'forwardfor'.",
                );
                return;
            }
            forwardfor(p, px, line, args);
        }
        "httplog" | "tcplog" => {
            if neg || reset {
                px.log_format = None;
                return;
            }
            px.log_format_loc = Some(loc.clone());
            px.log_format = Some(match (name, args.first().map(String::as_str)) {
                ("tcplog", _) => LogFormat::TcpLog,
                (_, None) => LogFormat::HttpLog,
                (_, Some("clf")) => LogFormat::Clf,
                (_, Some(a)) => {
                    d.alert(loc, "option", {
                        let _ = a;
                        "keyword 'httplog' only supports option 'clf'.".to_string()
                    });
                    return;
                }
            });
        }
        "httpchk" => {
            if neg || reset {
                px.httpchk = None;
                return;
            }
            let mut chk = HttpCheck::default();
            match args.len() {
                0 => {}
                1 => chk.uri = args[0].clone(),
                _ => {
                    chk.method = args[0].clone();
                    chk.uri = args[1].clone();
                    if let Some(v) = args.get(2) {
                        // Pre-2.2 style `HTTP/1.1\r\nHost:\ x`: keep the version, turn the rest into headers.
                        let mut parts = v.split("\r\n");
                        chk.version = parts.next().unwrap_or("HTTP/1.0").to_string();
                        for h in parts {
                            if let Some((n, val)) = h.split_once(':') {
                                chk.headers
                                    .push((n.trim().to_string(), val.trim().to_string()));
                            }
                        }
                    }
                    if args.len() > 3 {
                        d.alert(
                            loc,
                            "option",
                            format!(
                                "'option httpchk' cannot handle unexpected argument '{}'.",
                                args[3]
                            ),
                        );
                        return;
                    }
                }
            }
            px.httpchk = Some(chk);
        }
        "dontlog-normal" | "log-separate-errors" | "logasap" | "contstats" | "socket-stats" => {
            ignored(
                d,
                line,
                &format!("option {name}"),
                "not part of switchyard's logging",
            )
        }
        // A soft preference for the server of the previous request on a
        // keep-alive connection; switchyard balances every request on its own.
        "prefer-last-server" => {
            if on {
                ignored(
                    d,
                    line,
                    "option prefer-last-server",
                    "every request is balanced on its own",
                )
            }
        }
        "clitcpka"
        | "srvtcpka"
        | "tcpka"
        | "splice-auto"
        | "splice-request"
        | "splice-response"
        | "tcp-smart-accept"
        | "tcp-smart-connect"
        | "http-no-delay"
        | "nolinger"
        | "independent-streams"
        | "idle-close-on-response"
        | "disable-h2-upgrade"
        | "http-ignore-probes"
        | "http-buffer-request"
        | "abortonclose"
        | "checkcache"
        | "h1-case-adjust-bogus-client"
        | "h1-case-adjust-bogus-server"
        | "http-use-proxy-header"
        | "accept-invalid-http-request"
        | "accept-invalid-http-response" => {
            if on {
                ignored(
                    d,
                    line,
                    &format!("option {name}"),
                    "switchyard uses its own socket and HTTP handling",
                )
            }
        }
        // Without `tcp-check` rules (which are refused) this is a plain connect
        // check, what `check` does by default.
        "tcp-check" => {}
        _ => {
            if on {
                unsupported(d, line, &format!("option {name}"), "not implemented")
            }
        }
    }
}

fn forwardfor(p: &mut Parser<'_>, px: &mut Proxy, line: &Line, args: &[String]) {
    let d = &mut p.diags;
    let loc = &line.loc;
    let mut ff = ForwardFor {
        header: "X-Forwarded-For".to_string(),
        except: None,
        if_none: false,
    };
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "except" => {
                let Some(net) = args.get(i + 1).and_then(|a| crate::acl::parse_net(a)) else {
                    d.alert(
                        loc,
                        "option",
                        "'option forwardfor except' expects <address>[/mask] as argument.",
                    );
                    return;
                };
                ff.except = Some(net);
                i += 2;
            }
            "header" => {
                match args.get(i + 1) {
                    Some(h) if !h.is_empty() => ff.header = h.clone(),
                    _ => {
                        d.alert(
                            loc,
                            "option",
                            "'option forwardfor header' expects <header_name> as argument.",
                        );
                        return;
                    }
                }
                i += 2;
            }
            "if-none" => {
                ff.if_none = true;
                i += 1;
            }
            other => {
                d.alert(
                    loc,
                    "option",
                    format!("'option forwardfor' only supports optional values 'except', 'header' and 'if-none' (got '{other}')."),
                );
                return;
            }
        }
    }
    px.forwardfor = Some(ff);
}
