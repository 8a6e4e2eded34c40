//! `http-request`, `http-response`, `redirect`, `http-check` and `stats`.

use super::{ignored, ms};
use crate::acl;
use crate::diag::Shape;
use crate::draft::{Diags, Line, Proxy};
use crate::model::*;
use crate::units::TimeUnit;

const HTTP_REQUEST_ACTIONS: &str = "'wait-for-handshake', 'ot-group', 'set-log-level', 'set-nice', 'use-service', 'sc-inc-gpc(*)', 'sc-inc-gpc0(*)', 'sc-inc-gpc1(*)', 'sc-set-gpt(*)', 'sc-set-gpt0(*)', 'send-spoe-group', 'do-resolve(*)', 'cache-use', 'add-acl(*)', 'add-header', 'allow', 'auth', 'capture', 'del-acl(*)', 'del-header', 'del-map(*)', 'deny', 'disable-l7-retry', 'early-hint', 'normalize-uri', 'redirect', 'reject', 'replace-header', 'replace-path', 'replace-pathq', 'replace-uri', 'replace-value', 'return', 'set-header', 'set-map(*)', 'set-method', 'set-path', 'set-pathq', 'set-query', 'set-uri', 'strict-mode', 'tarpit', 'track-sc(*)', 'set-timeout', 'wait-for-body', 'set-var-fmt(*)', 'set-var(*)', 'unset-var(*)', 'set-dst', 'set-dst-port', 'set-mark', 'set-src', 'set-src-port', 'set-tos', 'silent-drop', 'set-priority-class', 'set-priority-offset'";

const HTTP_RESPONSE_ACTIONS: &str = "'ot-group', 'set-log-level', 'set-nice', 'sc-inc-gpc(*)', 'sc-inc-gpc0(*)', 'sc-inc-gpc1(*)', 'sc-set-gpt(*)', 'sc-set-gpt0(*)', 'send-spoe-group', 'cache-store', 'add-acl(*)', 'add-header', 'allow', 'capture', 'del-acl(*)', 'del-header', 'del-map(*)', 'deny', 'redirect', 'replace-header', 'replace-value', 'return', 'set-header', 'set-map(*)', 'set-status', 'strict-mode', 'track-sc(*)', 'wait-for-body', 'set-var-fmt(*)', 'set-var(*)', 'unset-var(*)', 'set-mark', 'set-tos', 'silent-drop'";

/// Is `action` in one of HAProxy's lists above (`(*)` entries match by prefix)?
fn known(list: &str, action: &str) -> bool {
    list.split(", ").any(|item| {
        let item = item.trim_matches('\'');
        match item.strip_suffix("(*)") {
            Some(prefix) => action.starts_with(prefix),
            None => item == action,
        }
    })
}

/// Status codes HAProxy can generate a response for.
const ERR_CODES: &[u16] = &[
    200, 400, 401, 403, 404, 405, 407, 408, 410, 413, 425, 429, 500, 501, 502, 503, 504,
];

/// `http-request ...`, `http-response ...` and `redirect ...` lines.
/// `experimental`: `expose-experimental-directives` was given in `global`.
pub(crate) fn rule(d: &mut Diags, px: &mut Proxy, line: &Line, experimental: bool) {
    let kw = line.arg(0);
    let (action, first) = if kw == "redirect" {
        ("redirect", 0)
    } else {
        (line.arg(1), 1)
    };
    // Split the words into the action's arguments and the condition.
    let cond_at = line
        .words
        .iter()
        .skip(first + 1)
        .position(|w| w == "if" || w == "unless")
        .map(|p| p + first + 1);
    let end = cond_at.unwrap_or(line.len());
    let args: Vec<&str> = line
        .words
        .get(first + 1..end)
        .unwrap_or(&[])
        .iter()
        .map(String::as_str)
        .collect();
    let (rule_ctx, cond_ctx) = if kw == "redirect" {
        let r = format!(
            "error detected in proxy '{}' while parsing redirect rule",
            px.name
        );
        let c = format!("{r} : error in condition: ");
        (r, c)
    } else {
        (
            format!(
                "error detected in proxy '{}' while parsing '{kw} {action}' rule",
                px.name
            ),
            format!("error detected while parsing an '{kw} {action}' condition : "),
        )
    };
    let rule_err =
        |d: &mut Diags, msg: String| d.alert(&line.loc, kw, format!("{rule_ctx} : {msg}"));
    let list = if kw == "http-response" {
        HTTP_RESPONSE_ACTIONS
    } else {
        HTTP_REQUEST_ACTIONS
    };
    if kw != "redirect" && !known(list, action) {
        let missing = if action.is_empty() {
            " (missing argument)"
        } else {
            ""
        };
        d.alert_shaped(
            &line.loc,
            kw,
            Shape::ParsingTight,
            format!("'{kw}' expects {list}, but got '{action}'{missing}."),
        );
        return;
    }
    let cond = match cond_at {
        Some(at) => match acl::condition(d, px, line, at, &cond_ctx) {
            Some(c) => Some(c),
            None => return,
        },
        None => None,
    };
    let header_pair = |d: &mut Diags| -> Option<(String, String)> {
        if args.len() != 2 {
            rule_err(d, "expects exactly 2 arguments.".into());
            return None;
        }
        Some((args[0].to_string(), args[1].to_string()))
    };
    let del_header = |d: &mut Diags| -> Option<String> {
        match args.as_slice() {
            [name] | [name, "-m", "str"] => Some(name.to_string()),
            [_, "-m", _] => {
                rule_err(
                    d,
                    "only '-m str' is supported by switchyard for del-header.".into(),
                );
                None
            }
            [] => {
                rule_err(d, "expects at least 1 argument.".into());
                None
            }
            _ => {
                rule_err(d, "expects exactly 1 argument.".into());
                None
            }
        }
    };
    let loc = line.loc.clone();
    if kw == "http-response" {
        let act = match action {
            "set-header" | "add-header" => {
                let Some((name, value)) = header_pair(d) else {
                    return;
                };
                if action == "set-header" {
                    HttpResponseAction::SetHeader { name, value }
                } else {
                    HttpResponseAction::AddHeader { name, value }
                }
            }
            "del-header" => {
                let Some(name) = del_header(d) else { return };
                HttpResponseAction::DelHeader { name }
            }
            "capture" | "set-log-level" => {
                super::ignored(
                    d,
                    line,
                    &format!("http-response {action}"),
                    "not part of switchyard's log line",
                );
                return;
            }
            other => {
                super::unsupported(
                    d,
                    line,
                    &format!("http-response {other}"),
                    "only set-header, add-header and del-header are implemented",
                );
                return;
            }
        };
        px.http_response_rules.push(HttpResponseRule {
            action: act,
            cond,
            loc,
        });
        return;
    }
    let act = match action {
        "allow" if args.is_empty() => HttpRequestAction::Allow,
        "deny" => {
            let mut status = 403;
            let mut i = 0;
            while i < args.len() {
                match args[i] {
                    "deny_status" => {
                        let v = args.get(i + 1).copied().unwrap_or("");
                        if v.is_empty() {
                            rule_err(d, "'status' expects <status_code> as argument.".into());
                            return;
                        }
                        match v.parse::<u16>() {
                            Ok(c) if ERR_CODES.contains(&c) => status = c,
                            _ => {
                                rule_err(d, format!("Unexpected status code '{v}'."));
                                return;
                            }
                        }
                        i += 2;
                    }
                    other @ ("content-type" | "string" | "lf-string" | "file" | "lf-file"
                    | "errorfile" | "errorfiles" | "hdr") => {
                        rule_err(
                            d,
                            format!(
                                "'{other}' is not supported by switchyard (only 'deny_status' is)."
                            ),
                        );
                        return;
                    }
                    other => {
                        d.alert_shaped(
                            &line.loc,
                            kw,
                            Shape::ParsingTight,
                            format!("'{kw} deny' expects either 'if' or 'unless' followed by a condition but found '{other}'."),
                        );
                        return;
                    }
                }
            }
            HttpRequestAction::Deny { status }
        }
        "set-header" | "add-header" => {
            let Some((name, value)) = header_pair(d) else {
                return;
            };
            if action == "set-header" {
                HttpRequestAction::SetHeader { name, value }
            } else {
                HttpRequestAction::AddHeader { name, value }
            }
        }
        "del-header" => {
            let Some(name) = del_header(d) else { return };
            HttpRequestAction::DelHeader { name }
        }
        "redirect" => match redirect(&args) {
            Ok(a) => a,
            Err(e) => {
                rule_err(d, e);
                return;
            }
        },
        "normalize-uri" if !experimental => {
            d.alert(
                &line.loc,
                kw,
                "'normalize-uri' action is experimental, must be allowed via a global 'expose-experimental-directives'",
            );
            return;
        }
        "normalize-uri" => {
            let n = match args.as_slice() {
                ["path-merge-slashes"] => NormalizeUri::PathMergeSlashes,
                ["path-strip-dotdot"] => NormalizeUri::PathStripDotdot,
                ["path-strip-dot"] => NormalizeUri::PathStripDot,
                ["percent-decode-unreserved"] => NormalizeUri::PercentDecodeUnreserved,
                ["percent-to-uppercase"] => NormalizeUri::PercentToUppercase,
                _ => {
                    rule_err(d, format!("'{}' is not supported by switchyard (path-merge-slashes, path-strip-dotdot, path-strip-dot, percent-decode-unreserved, percent-to-uppercase without options are).", args.join(" ")));
                    return;
                }
            };
            HttpRequestAction::NormalizeUri(n)
        }
        "use-service" => {
            match args.as_slice() {
                ["prometheus-exporter"] => {}
                [] => {
                    rule_err(d, "expects a service name.".into());
                    return;
                }
                [name] => {
                    rule_err(d, format!("'use-service {name}' is not supported by switchyard (only 'prometheus-exporter' is)."));
                    return;
                }
                _ => {
                    rule_err(d, "expects exactly 1 argument.".into());
                    return;
                }
            }
            if !px.kind.fe() {
                rule_err(d, "'use-service prometheus-exporter' is only supported by switchyard in a frontend or listen section.".into());
                return;
            }
            px.services.push(UseService {
                service: Service::PrometheusExporter,
                cond,
                after_rules: px.http_request_rules.len(),
                loc,
            });
            return;
        }
        "capture" | "set-log-level" => {
            super::ignored(
                d,
                line,
                &format!("{kw} {action}"),
                "not part of switchyard's log line",
            );
            return;
        }
        other => {
            super::unsupported(d, line, &format!("{kw} {other}"), "only allow, deny, set-header, add-header, del-header, redirect, normalize-uri and use-service prometheus-exporter are implemented");
            return;
        }
    };
    let r = HttpRequestRule {
        action: act,
        cond,
        loc,
    };
    if kw == "redirect" {
        px.redirect_rules.push(r);
    } else {
        px.http_request_rules.push(r);
    }
}

fn redirect(args: &[&str]) -> Result<HttpRequestAction, String> {
    let kind = match args.first().copied() {
        Some("location") => RedirectKind::Location,
        Some("prefix") => RedirectKind::Prefix,
        Some("scheme") => RedirectKind::Scheme,
        Some(other) => return Err(format!("expects 'code', 'prefix', 'location', 'scheme', 'set-cookie', 'clear-cookie', 'drop-query', 'ignore-empty' or 'append-slash' (was '{other}').")),
        None => return Err("redirection type expected ('prefix', 'location', or 'scheme').".into()),
    };
    let Some(target) = args.get(1) else {
        return Err(format!("missing argument for '{}'.", args[0]));
    };
    let mut code = 302;
    let mut i = 2;
    while i < args.len() {
        match args[i] {
            "code" => {
                let v = args.get(i + 1).copied().unwrap_or("");
                code = match v.parse::<u16>() {
                    Ok(c @ (301 | 302 | 303 | 307 | 308)) => c,
                    _ => {
                        return Err(format!(
                            "'code': unsupported HTTP code '{v}' (must be one of 301, 302, 303, 307 or 308)."
                        ))
                    }
                };
                i += 2;
            }
            other => {
                return Err(format!(
                    "redirect option '{other}' is not supported by switchyard (only 'code' is)."
                ))
            }
        }
    }
    Ok(HttpRequestAction::Redirect {
        kind,
        target: target.to_string(),
        code,
    })
}

/// `http-check expect ...`, `http-check send ...`.
pub(crate) fn http_check(d: &mut Diags, px: &mut Proxy, line: &Line) {
    let loc = &line.loc;
    match line.arg(1) {
        "expect" => {
            let mut i = 2;
            let negate = line.arg(i) == "!";
            if negate {
                i += 1;
            }
            let kind = line.arg(i);
            let pat = line.arg(i + 1).to_string();
            let err = |d: &mut Diags, m: String| d.alert(loc, "http-check", format!("'http-check expect' : {m}"));
            if kind.is_empty() {
                err(d, "expects at least a matching pattern as arguments.".to_string());
                return;
            }
            if matches!(kind, "status" | "rstatus" | "string" | "rstring") && pat.is_empty() {
                err(d, format!("'{kind}' expects a <pattern> as argument."));
                return;
            }
            let e = match kind {
                "status" => {
                    let mut ranges = Vec::new();
                    for part in pat.split(',') {
                        let (a, b) = part.split_once('-').unwrap_or((part, part));
                        match (a.parse::<u16>(), b.parse::<u16>()) {
                            (Ok(a), Ok(b)) if a <= b => ranges.push((a, b)),
                            _ => {
                                let c = part.chars().find(|c| !c.is_ascii_digit() && *c != '-').unwrap_or('-');
                                err(d, format!("invalid character '{c}' in the list of status codes."));
                                return;
                            }
                        }
                    }
                    HttpCheckExpect::Status { negate, ranges }
                }
                "rstatus" | "rstring" => {
                    if let Err(e) = regex::Regex::new(&pat) {
                        let short = e.to_string().lines().last().unwrap_or("").trim().to_string();
                        err(d, format!("regex '{pat}' is invalid ({short})."));
                        return;
                    }
                    if kind == "rstatus" {
                        HttpCheckExpect::RStatus { negate, regex: pat }
                    } else {
                        HttpCheckExpect::RString { negate, regex: pat }
                    }
                }
                "string" => HttpCheckExpect::String { negate, text: pat },
                "min-recv" | "string-lf" | "hdr" | "fhdr" | "comment" => {
                    super::unsupported(d, line, &format!("http-check expect {kind}"), "status, rstatus, string and rstring are implemented");
                    return;
                }
                other => {
                    err(d, format!("'only supports min-recv, [!]string', '[!]rstring', '[!]string-lf', '[!]status', '[!]rstatus', [!]hdr, [!]fhdr or comment but got '{other}' as argument."));
                    return;
                }
            };
            if line.len() > i + 2 {
                err(d, format!("'{}' is not supported by switchyard.", line.arg(i + 2)));
                return;
            }
            px.http_check_expect.push(e);
        }
        "send" => {
            // Applied over `option httpchk` once the section is complete (the
            // option may come later); see `validate`.
            let mut i = 2;
            while i < line.len() {
                let v = line.arg(i + 1).to_string();
                match line.arg(i) {
                    "meth" => px.check_send.push(("meth", v, String::new())),
                    "uri" => px.check_send.push(("uri", v, String::new())),
                    "ver" => px.check_send.push(("ver", v, String::new())),
                    "hdr" => {
                        px.check_send.push(("hdr", v, line.arg(i + 2).to_string()));
                        i += 1;
                    }
                    other @ ("comment" | "uri-lf" | "body" | "body-lf") => {
                        super::unsupported(d, line, &format!("http-check send {other}"), "meth, uri, ver and hdr are implemented");
                        return;
                    }
                    other => {
                        d.alert(loc, "http-check", format!("'http-check send' : expects 'comment', 'meth', 'uri', 'uri-lf', 'ver', 'hdr', 'body' or 'body-lf' but got '{other}' as argument.."));
                        return;
                    }
                }
                if line.arg(i + 1).is_empty() {
                    d.alert(loc, "http-check", format!("'http-check send' : '{}' expects a string as argument..", line.arg(i)));
                    return;
                }
                i += 2;
            }
        }
        "comment" => ignored(d, line, "http-check comment", "informational only"),
        "" => d.alert(
            loc,
            "http-check",
            "'http-check' only supports 'disable-on-404', 'send-state', 'comment', 'connect', 'send', 'expect', 'set-var-fmt(*)', 'set-var(*)', 'unset-var(*)'. but got ''",
        ),
        other => super::unsupported(d, line, &format!("http-check {other}"), "only 'expect' and 'send' are implemented"),
    }
}

/// `stats ...` in a proxy section.
///
/// In a `backend`, HAProxy answers the stats URI instead of forwarding to the
/// servers; switchyard serves stats from frontends only, so it refuses rather
/// than forward those requests.
pub(crate) fn stats(d: &mut Diags, px: &mut Proxy, line: &Line) {
    let loc = &line.loc;
    let sub = line.arg(1);
    if px.kind == crate::draft::Kind::Backend
        && !matches!(sub, "socket" | "timeout" | "maxconn" | "bind-process")
    {
        super::unsupported(
            d,
            line,
            &format!("stats {sub}"),
            "the stats page is served by frontends; move the 'stats' lines to the frontend or a listen section",
        );
        return;
    }
    match sub {
        "enable" => {
            page(px);
        }
        "uri" | "realm" => {
            if line.arg(2).is_empty() {
                let what = if sub == "uri" { "an URI prefix" } else { "an realm name" };
                d.alert(loc, "stats", format!("'{sub}' needs {what}."));
                return;
            }
            let v = line.arg(2).to_string();
            if sub == "uri" { page(px).uri = v } else { page(px).realm = Some(v) }
        }
        "auth" => {
            let Some((u, p)) = line.arg(2).split_once(':') else {
                d.alert(loc, "stats", "'stats auth' needs a user:password account.");
                return;
            };
            page(px).auth.push((u.to_string(), p.to_string()));
        }
        "refresh" => match crate::units::parse_time(line.arg(2), TimeUnit::S) {
            Ok(t) => page(px).refresh = Some(ms(t.value.saturating_mul(1000))),
            Err(crate::units::TimeError::Unexpected(c)) => d.alert_shaped(
                loc,
                "stats",
                Shape::ParsingTight,
                format!("unexpected character '{c}' in argument to stats refresh interval."),
            ),
            Err(_) => d.alert(loc, "stats", "'refresh' needs a refresh interval."),
        },
        "hide-version" => page(px).hide_version = true,
        "show-legends" | "show-node" | "show-desc" | "show-modules" | "scope" | "admin"
        | "http-request" => {
            page(px);
            ignored(d, line, &format!("stats {sub}"), "switchyard's stats page is read-only and shows every proxy");
        }
        "socket" | "timeout" | "maxconn" | "bind-process" => {
            d.alert(loc, "stats", format!("'stats {sub}' is only allowed in 'global' section"));
        }
        other => d.alert_shaped(
            loc,
            "stats",
            Shape::ParsingTight,
            format!("unknown stats parameter '{other}', expects 'admin', 'uri', 'realm', 'auth', 'scope', 'enable', 'hide-version', 'show-node', 'show-desc' or 'show-legends'."),
        ),
    }
}

fn page(px: &mut Proxy) -> &mut StatsPage {
    px.stats.get_or_insert_with(|| StatsPage {
        uri: "/haproxy?stats".into(),
        ..StatsPage::default()
    })
}
