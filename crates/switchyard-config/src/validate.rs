//! Cross-checks once every section is read, and conversion of the drafts into
//! the model: backend references resolved to indices, names unique, binds
//! distinct, modes compatible, plus HAProxy's post-parse warnings.

use crate::diag::{Level, Shape};
use crate::draft::{Diags, Kind, Proxy};
use crate::model::*;
use crate::parser::type_str;

/// Builds the model. Returns `None` when an alert was raised.
pub(crate) fn finish(global: Global, mut proxies: Vec<Proxy>, d: &mut Diags) -> Option<Config> {
    let mut cfg = Config {
        global,
        frontends: Vec::new(),
        backends: Vec::new(),
    };
    for p in proxies.iter_mut() {
        if p.mode == Mode::Tcp {
            ignore_http_in_tcp(p, d);
        }
        apply_check_send(p, d);
        // HTTP log formats need HTTP: 2.6 falls back to the TCP format.
        if p.kind.fe()
            && p.mode == Mode::Tcp
            && matches!(p.log_format, Some(LogFormat::HttpLog | LogFormat::Clf))
        {
            let loc = p.log_format_loc.clone().unwrap_or_else(|| p.loc.clone());
            d.push(
                Level::Warning,
                Some(&loc),
                "option",
                format!(
                    "'option httplog' not usable with {} '{}' (needs 'mode http'). Falling back to 'option tcplog'.",
                    type_str(p.kind),
                    p.name
                ),
                Shape::Parsing,
            );
            p.log_format = Some(LogFormat::TcpLog);
        }
        // switchyard renders custom formats for HTTP frontends only.
        if p.kind.fe() && p.mode == Mode::Tcp && matches!(p.log_format, Some(LogFormat::Custom(_)))
        {
            let loc = p.log_format_loc.clone().unwrap_or_else(|| p.loc.clone());
            d.push(
                Level::Warning,
                Some(&loc),
                "log-format",
                format!(
                    "custom 'log-format' is not supported by switchyard for {} '{}' (mode tcp). Falling back to 'option tcplog'.",
                    type_str(p.kind),
                    p.name
                ),
                Shape::Parsing,
            );
            p.log_format = Some(LogFormat::TcpLog);
        }
        if p.kind.fe() && p.log_format.is_some() && p.logs.is_empty() {
            d.push(
                Level::Warning,
                Some(&p.loc),
                "log-format",
                format!(
                    "log format ignored for {} '{}' since it has no log address.",
                    type_str(p.kind),
                    p.name
                ),
                Shape::Unlocated,
            );
        }
    }
    // Backend indices follow declaration order of backend-capable proxies.
    let be_index: Vec<Option<usize>> = {
        let mut n = 0;
        proxies
            .iter()
            .map(|p| {
                p.kind.be().then(|| {
                    n += 1;
                    n - 1
                })
            })
            .collect()
    };
    let find_be = |name: &str| proxies.iter().position(|p| p.kind.be() && p.name == name);

    for p in &proxies {
        // Duplicate servers.
        for (i, s) in p.servers.iter().enumerate() {
            if let Some(prev) = p.servers[..i].iter().find(|o| o.name == s.name) {
                d.push(Level::Alert, Some(&s.loc), "server", format!(
                    "{} '{}', another server named '{}' was already defined at line {}, please use distinct names.",
                    type_str(p.kind), p.name, s.name, prev.loc.line
                ), Shape::Parsing);
            }
            if let Some(prev) = p.servers[..i].iter().find(|o| o.id == s.id) {
                d.push(
                    Level::Alert,
                    Some(&s.loc),
                    "server",
                    format!(
                        "{} '{}': server '{}' has the same ID ({}) as server '{}'.",
                        type_str(p.kind),
                        p.name,
                        s.name,
                        s.id,
                        prev.name
                    ),
                    Shape::Unlocated,
                );
            }
        }
        if p.kind.fe() && p.binds.is_empty() {
            d.push(Level::Warning, Some(&p.loc), "bind", format!(
                "{} '{}' has no 'bind' directive. Please declare it as a backend if this was intended.",
                type_str(p.kind), p.name
            ), Shape::Unlocated);
        }
        let t = &p.timeouts;
        if (p.kind.fe() && t.client.is_none())
            || (p.kind.be()
                && !p.servers.is_empty()
                && (t.connect.is_none()
                    || (t.server.is_none() && (p.mode == Mode::Http || t.tunnel.is_none()))))
        {
            d.push(Level::Warning, Some(&p.loc), "timeout", format!(
                "missing timeouts for {} '{}'.\n   | While not properly invalid, you will certainly encounter various problems\n   | with such a configuration. To fix this, please ensure that all following\n   | timeouts are set to a non-zero value: 'client', 'connect', 'server'.",
                type_str(p.kind), p.name
            ), Shape::Unlocated);
        }
    }

    // Binds must not clash (HAProxy would fail at startup or share the port).
    // A hash map: a port range may bind thousands of addresses. One alert per
    // bind line (its first clashing address).
    let mut seen: std::collections::HashMap<std::net::SocketAddr, (&Proxy, &Location)> =
        std::collections::HashMap::new();
    for p in &proxies {
        for b in &p.binds {
            let mut clash = None;
            for a in &b.addrs {
                match seen.get(a) {
                    Some(&(other, oloc)) => {
                        clash.get_or_insert((*a, other, oloc));
                    }
                    None => {
                        seen.insert(*a, (p, &b.loc));
                    }
                }
            }
            if let Some((a, other, oloc)) = clash {
                d.push(
                    Level::Alert,
                    Some(&b.loc),
                    "bind",
                    format!(
                        "'bind {a}' of {} '{}' clashes with the same address bound at [{oloc}] by {} '{}'.",
                        type_str(p.kind),
                        p.name,
                        type_str(other.kind),
                        other.name
                    ),
                    Shape::Parsing,
                );
            }
        }
    }

    for (pi, p) in proxies.iter().enumerate() {
        if p.kind.fe() {
            let target = |d: &mut Diags, name: &str, what: &str, rule: &str| -> Option<usize> {
                let Some(ti) = find_be(name) else {
                    d.push(
                        Level::Alert,
                        Some(&p.loc),
                        what,
                        format!(
                            "Proxy '{}': unable to find required {what}: '{name}'.",
                            p.name
                        ),
                        Shape::Unlocated,
                    );
                    return None;
                };
                if ti == pi {
                    d.push(
                        Level::Alert,
                        Some(&p.loc),
                        what,
                        format!("Proxy '{}': loop detected for {what}: '{name}'.", p.name),
                        Shape::Unlocated,
                    );
                    return None;
                }
                let t = &proxies[ti];
                if p.mode == Mode::Http && t.mode == Mode::Tcp {
                    d.push(Level::Alert, Some(&p.loc), what, format!(
                        "http {} '{}' ({}) tries to use incompatible tcp backend '{}' ({}) {rule} (see 'mode').",
                        type_str(p.kind), p.name, p.loc, t.name, t.loc
                    ), Shape::Unlocated);
                    return None;
                }
                be_index[ti]
            };
            let mut fe = Frontend {
                name: p.name.clone(),
                loc: p.loc.clone(),
                mode: p.mode,
                binds: p.binds.clone(),
                timeouts: p.timeouts.clone(),
                maxconn: p.maxconn,
                conn_mode: p.conn_mode,
                forwardfor: p.forwardfor.clone(),
                acls: p.acls.clone(),
                http_request_rules: p
                    .http_request_rules
                    .iter()
                    .chain(&p.redirect_rules)
                    .cloned()
                    .collect(),
                http_response_rules: p.http_response_rules.clone(),
                switching_rules: Vec::new(),
                default_backend: None,
                log_format: p.log_format.clone(),
                logs: p.logs.clone(),
                stats: p.stats.clone(),
                monitor_uri: p.monitor_uri.clone(),
                services: p.services.clone(),
                dontlognull: p.dontlognull,
            };
            for s in &p.switching {
                if let Some(b) = target(d, &s.backend, "use_backend", "in a 'use_backend' rule") {
                    fe.switching_rules.push(SwitchingRule {
                        backend: b,
                        cond: s.cond.clone(),
                        loc: s.loc.clone(),
                    });
                }
            }
            if let Some((name, _)) = &p.default_backend {
                fe.default_backend = target(d, name, "default_backend", "as its default backend");
            }
            if p.kind == Kind::Listen && fe.default_backend.is_none() && p.default_backend.is_none()
            {
                fe.default_backend = be_index[pi];
            }
            cfg.frontends.push(fe);
        }
        if p.kind.be() {
            // A listen's rules run once, in its frontend part.
            let own_rules = p.kind == Kind::Backend;
            cfg.backends.push(Backend {
                name: p.name.clone(),
                loc: p.loc.clone(),
                mode: p.mode,
                balance: p.balance.clone(),
                cookie: p.cookie.clone(),
                servers: p.servers.clone(),
                retries: p.retries,
                redispatch: p.redispatch,
                retry_on: p.retry_on,
                timeouts: p.timeouts.clone(),
                conn_mode: p.conn_mode,
                pretend_keepalive: p.pretend_keepalive,
                forwardfor: p.forwardfor.clone(),
                httpchk: p.httpchk.clone(),
                http_check_expect: p.http_check_expect.clone(),
                log_health_checks: p.log_health_checks,
                allbackups: p.allbackups,
                persist: p.persist,
                acls: if own_rules {
                    p.acls.clone()
                } else {
                    Vec::new()
                },
                http_request_rules: if own_rules {
                    p.http_request_rules
                        .iter()
                        .chain(&p.redirect_rules)
                        .cloned()
                        .collect()
                } else {
                    Vec::new()
                },
                http_response_rules: if own_rules {
                    p.http_response_rules.clone()
                } else {
                    Vec::new()
                },
                fullconn: p.fullconn,
            });
        }
    }
    (!d.has_alerts()).then_some(cfg)
}

/// HTTP features in a `mode tcp` proxy: HAProxy 2.6 ignores each with a
/// warning; they are removed from the model so nothing acts on them.
fn ignore_http_in_tcp(p: &mut Proxy, d: &mut Diags) {
    let what = format!("{} '{}'", type_str(p.kind), p.name);
    let loc = p.loc.clone();
    let mut warn =
        |kw: &str, m: String| d.push(Level::Warning, Some(&loc), kw, m, Shape::Unlocated);
    if p.kind.fe() && p.monitor_uri.take().is_some() {
        warn(
            "monitor-uri",
            format!("monitor-uri will be ignored for {what} (needs 'mode http')."),
        );
    }
    if p.kind.be() && p.cookie.take().is_some() {
        warn(
            "cookie",
            format!("cookie will be ignored for {what} (needs 'mode http')."),
        );
    }
    if p.kind.be() && p.balance_l7 {
        warn("balance", format!("Layer 7 hash not possible for {what} (needs 'mode http'). Falling back to round robin."));
        p.balance = Balance::RoundRobin;
        p.balance_l7 = false;
    }
    if p.stats.take().is_some() {
        warn(
            "stats",
            format!("'stats' statement ignored for {what} as it requires HTTP mode."),
        );
    }
    let services = !std::mem::take(&mut p.services).is_empty();
    if !std::mem::take(&mut p.http_request_rules).is_empty() || services {
        warn(
            "http-request",
            format!("'http-request' rules ignored for {what} as they require HTTP mode."),
        );
    }
    if !std::mem::take(&mut p.http_response_rules).is_empty() {
        warn(
            "http-response",
            format!("'http-response' rules ignored for {what} as they require HTTP mode."),
        );
    }
    if !std::mem::take(&mut p.redirect_rules).is_empty() {
        warn(
            "redirect",
            format!("'redirect' rules ignored for {what} as they require HTTP mode."),
        );
    }
    if p.forwardfor.take().is_some() {
        warn(
            "option",
            format!("'option forwardfor' ignored for {what} as it requires HTTP mode."),
        );
    }
    if std::mem::take(&mut p.pretend_keepalive) && p.kind.be() {
        warn(
            "option",
            format!("'option http-pretend-keepalive' ignored for {what} as it requires HTTP mode."),
        );
    }
}

/// `http-check send/expect` only mean something with `option httpchk`:
/// otherwise 2.6 warns and ignores them.
fn apply_check_send(p: &mut Proxy, d: &mut Diags) {
    if !p.kind.be() {
        return;
    }
    let parts = std::mem::take(&mut p.check_send);
    match &mut p.httpchk {
        Some(chk) => {
            for (k, v, h) in parts {
                match k {
                    "meth" => chk.method = v,
                    "uri" => chk.uri = v,
                    "ver" => chk.version = v,
                    _ => chk.headers.push((v, h)),
                }
            }
        }
        None if !parts.is_empty() || !p.http_check_expect.is_empty() => {
            p.http_check_expect.clear();
            d.push(
                Level::Warning,
                Some(&p.loc),
                "http-check",
                format!(
                    "{} '{}' uses http-check rules without 'option httpchk', so the rules are ignored.",
                    type_str(p.kind),
                    p.name
                ),
                Shape::Unlocated,
            );
        }
        None => {}
    }
}
