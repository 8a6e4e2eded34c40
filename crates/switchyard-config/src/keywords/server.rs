//! `server`, `default-server` and `bind` lines, and the address syntax they share.

use super::ms;
use crate::diag::Shape;
use crate::draft::{Diags, Kind, Line, Proxy, ServerOpts};
use crate::parser::Parser;
use crate::suggest;
use crate::units::TimeUnit;
use std::net::Ipv6Addr;

/// HAProxy 2.6 server keywords (for "did you mean").
const SERVER_KEYWORDS: &[&str] = &[
    // TLS keywords (registered first in HAProxy), then the others, then the "no-" forms:
    // on equal distance HAProxy suggests the earlier one.
    "allow-0rtt",
    "alpn",
    "ca-file",
    "check-alpn",
    "check-sni",
    "check-ssl",
    "ciphers",
    "ciphersuites",
    "crl-file",
    "crt",
    "force-sslv3",
    "force-tlsv10",
    "force-tlsv11",
    "force-tlsv12",
    "force-tlsv13",
    "npn",
    "sni",
    "ssl",
    "ssl-max-ver",
    "ssl-min-ver",
    "ssl-reuse",
    "tls-tickets",
    "verify",
    "verifyhost",
    "addr",
    "agent-check",
    "agent-addr",
    "agent-inter",
    "agent-port",
    "agent-send",
    "backup",
    "check",
    "check-proto",
    "check-send-proxy",
    "check-via-socks4",
    "cookie",
    "disabled",
    "downinter",
    "enabled",
    "error-limit",
    "fall",
    "fastinter",
    "id",
    "init-addr",
    "inter",
    "log-proto",
    "maxconn",
    "maxqueue",
    "max-reuse",
    "minconn",
    "namespace",
    "observe",
    "on-error",
    "on-marked-down",
    "on-marked-up",
    "pool-low-conn",
    "pool-max-conn",
    "pool-purge-delay",
    "port",
    "proto",
    "redir",
    "rise",
    "resolve-net",
    "resolve-opts",
    "resolve-prefer",
    "resolvers",
    "send-proxy",
    "send-proxy-v2",
    "send-proxy-v2-ssl",
    "send-proxy-v2-ssl-cn",
    "slowstart",
    "source",
    "stick",
    "socks4",
    "tcp-ut",
    "tfo",
    "track",
    "weight",
    "ws",
    "no-agent-check",
    "no-backup",
    "no-check",
    "no-check-ssl",
    "no-send-proxy",
    "no-send-proxy-v2",
    "no-ssl",
    "no-ssl-reuse",
    "no-sslv3",
    "no-tls-tickets",
    "no-tlsv10",
    "no-tlsv11",
    "no-tlsv12",
    "no-tlsv13",
    "no-verifyhost",
    "no-tfo",
];

/// A host/port pair as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Addr {
    pub host: String,
    /// The text after the last `:` (empty when absent).
    pub port: String,
}

/// Splits `[ipv4@|ipv6@|tcp@...]host[:port]`. Returns the unsupported prefix on error.
pub(crate) fn split_addr(text: &str) -> Result<Addr, String> {
    let mut t = text;
    if let Some(at) = t.find('@') {
        let family = &t[..at];
        match family {
            "ipv4" | "ipv6" | "tcp" | "tcp4" | "tcp6" => t = &t[at + 1..],
            _ => return Err(format!("{family}@")),
        }
    }
    if t.starts_with('/') {
        return Err("unix socket path".into());
    }
    if let Some(rest) = t.strip_prefix('[') {
        let Some(close) = rest.find(']') else {
            return Err("unterminated '['".into());
        };
        let host = rest[..close].to_string();
        let port = rest[close + 1..]
            .strip_prefix(':')
            .unwrap_or("")
            .to_string();
        return Ok(Addr { host, port });
    }
    match t.rfind(':') {
        // Two or more colons without brackets: an IPv6 literal, port after the last colon
        // only if the remainder still parses as IPv6 (HAProxy's behaviour for `::1:80`).
        Some(i) if t[..i].contains(':') => {
            if t.parse::<Ipv6Addr>().is_ok() && t[..i].parse::<Ipv6Addr>().is_err() {
                Ok(Addr {
                    host: t.to_string(),
                    port: String::new(),
                })
            } else {
                Ok(Addr {
                    host: t[..i].to_string(),
                    port: t[i + 1..].to_string(),
                })
            }
        }
        Some(i) => Ok(Addr {
            host: t[..i].to_string(),
            port: t[i + 1..].to_string(),
        }),
        None => Ok(Addr {
            host: t.to_string(),
            port: String::new(),
        }),
    }
}

/// `server` and `default-server`.
pub(crate) fn server(p: &mut Parser<'_>, px: &mut Proxy, line: &Line) {
    let loc = &line.loc;
    let is_default = line.arg(0) == "default-server";
    if !is_default {
        if px.kind == Kind::Defaults {
            p.diags.alert_shaped(
                loc,
                "server",
                Shape::Bracket,
                "'server' not allowed in 'defaults' section.",
            );
            return;
        }
        if !super::proxy::be(&mut p.diags, px, line) {
            return;
        }
    } else if !px.kind.be() {
        super::proxy::be(&mut p.diags, px, line);
        return;
    }
    let addr_text = super::bind::env_expand(line.arg(2), &|n| p.getenv(n));
    let d = &mut p.diags;
    let (name, addr, first_opt) = if is_default {
        (String::new(), None, 1)
    } else {
        if line.arg(1).is_empty() || line.arg(2).is_empty() {
            d.alert_shaped(
                loc,
                "server",
                Shape::Bracket,
                "'server' expects <name> and <addr>[:<port>] as arguments.",
            );
            return;
        }
        (line.arg(1).to_string(), Some(addr_text.as_str()), 3)
    };
    let who = if is_default {
        "'default-server'".to_string()
    } else {
        format!("'server {}/{name}'", px.name)
    };
    let err = |d: &mut Diags, msg: String| {
        d.alert_shaped(loc, line.arg(0), Shape::Bracket, format!("{who} : {msg}"))
    };
    let (host, port) = match addr {
        None => (String::new(), None),
        Some("") => {
            err(
                d,
                format!(
                    "'{}' resolves to an empty address (environment variable missing?)",
                    line.arg(2)
                ),
            );
            return;
        }
        Some(text) => {
            let a = match split_addr(text) {
                Ok(a) => a,
                Err(prefix) => {
                    err(
                        d,
                        format!("{prefix} server addresses are not supported by switchyard."),
                    );
                    return;
                }
            };
            if a.host.is_empty() || a.host == "*" {
                err(d, format!("address '{text}' has no host: transparent servers are not supported by switchyard (environment variable missing?)."));
                return;
            }
            let port = if a.port.is_empty() {
                None
            } else if a.port.starts_with(['+', '-']) {
                err(
                    d,
                    format!("relative port '{}' is not supported by switchyard.", a.port),
                );
                return;
            } else {
                match a.port.parse::<u16>() {
                    Ok(n) if n > 0 => Some(n),
                    _ => {
                        match a.port.chars().find(|c| !c.is_ascii_digit()) {
                            Some(c) => err(
                                d,
                                format!(
                                    "invalid character '{c}' in port number '{}' in '{text}'",
                                    a.port
                                ),
                            ),
                            None => err(d, format!("invalid port '{}'", a.port)),
                        }
                        return;
                    }
                }
            };
            (a.host, port)
        }
    };
    let mut o = ServerOpts::default();
    let mut i = first_opt;
    while i < line.len() {
        let kw = line.arg(i);
        let val = line.arg(i + 1);
        let mut takes = 1;
        match kw {
            "check" => o.check = Some(true),
            "no-check" => o.check = Some(false),
            "backup" => o.backup = Some(true),
            "no-backup" => o.backup = Some(false),
            "disabled" => o.disabled = Some(true),
            "enabled" => o.disabled = Some(false),
            "inter" | "fastinter" | "downinter" => {
                match crate::units::parse_time(val, TimeUnit::Ms) {
                    Ok(t) if t.value > 0 => {
                        if let Some(c) = t.trailing {
                            let msg = crate::units::trailing_warning(c, val);
                            d.push(
                                crate::diag::Level::Warning,
                                Some(loc),
                                kw,
                                msg,
                                Shape::Unlocated,
                            );
                        }
                        let v = Some(ms(t.value));
                        match kw {
                            "inter" => o.inter = v,
                            "fastinter" => o.fastinter = v,
                            _ => o.downinter = v,
                        }
                    }
                    Ok(_) => {
                        err(
                            d,
                            format!("invalid value 0 for argument '{kw}' of server {name}.."),
                        );
                        return;
                    }
                    Err(crate::units::TimeError::Unexpected(c)) => {
                        err(
                            d,
                            format!(
                                "unexpected character '{c}' in '{kw}' argument of server {name}.."
                            ),
                        );
                        return;
                    }
                    Err(crate::units::TimeError::Empty) => {
                        err(d, format!("'{kw}' expects a delay as argument.."));
                        return;
                    }
                    Err(crate::units::TimeError::Overflow) => {
                        err(d, format!("timer overflow in argument <{val}> to <{kw}> of server {name}, maximum value is 2147483647 ms (~24.8 days).."));
                        return;
                    }
                }
            }
            "rise" | "fall" | "weight" | "maxconn" | "maxqueue" | "id" | "port" => {
                let n = match val.parse::<i64>() {
                    Ok(n) => n,
                    // 2.6 reads rise/fall with atoi(): garbage is 0, refused below.
                    Err(_) if matches!(kw, "rise" | "fall") && !val.is_empty() => 0,
                    Err(_) => {
                        err(d, format!("'{kw}' expects an integer argument.."));
                        return;
                    }
                };
                match kw {
                    "rise" | "fall" if n <= 0 => {
                        err(d, format!("'{kw}' has to be > 0.."));
                        return;
                    }
                    "rise" => o.rise = Some(n.min(u32::MAX as i64) as u32),
                    "fall" => o.fall = Some(n.min(u32::MAX as i64) as u32),
                    "weight" => {
                        if !(0..=256).contains(&n) {
                            err(
                                d,
                                format!("weight of server {name} is not within 0 and 256 ({n}).."),
                            );
                            return;
                        }
                        o.weight = Some(n as u32);
                    }
                    "maxconn" | "maxqueue" => {
                        if !(0..=i64::from(i32::MAX)).contains(&n) {
                            err(d, format!("'{kw}' value out of range ({n}).."));
                            return;
                        }
                        if kw == "maxconn" {
                            o.maxconn = Some(n as u32)
                        } else {
                            o.maxqueue = Some(n as u32)
                        }
                    }
                    "id" => {
                        if n <= 0 || n > i64::from(i32::MAX) {
                            err(d, "'id' : custom id has to be > 0.".to_string());
                            return;
                        }
                        o.id = Some(n as u32);
                    }
                    _ => {
                        if !(1..=65535).contains(&n) {
                            err(d, format!("invalid port '{val}'"));
                            return;
                        }
                        o.check_port = Some(n as u16);
                    }
                }
            }
            "cookie" => {
                if val.is_empty() {
                    err(d, "'cookie' expects <value> as argument..".to_string());
                    return;
                }
                o.cookie = Some(val.to_string());
            }
            "addr" => {
                if val.is_empty() {
                    err(d, "'addr' expects <ipv4|ipv6> as argument..".to_string());
                    return;
                }
                o.check_addr = Some(val.to_string());
            }
            "init-addr" | "resolvers" | "resolve-prefer" | "resolve-net" | "resolve-opts"
            | "pool-low-conn" | "pool-max-conn" | "pool-purge-delay" | "max-reuse" | "tcp-ut"
            | "log-proto" | "error-limit" | "on-marked-up" => {
                d.warn(loc, kw, format!("{who} : '{kw}' is ignored by switchyard (server names are resolved once at startup, connections are not pooled)."));
                takes = 2;
            }
            "tfo" | "no-tfo" | "no-ssl" | "no-check-ssl" | "no-send-proxy" | "no-send-proxy-v2"
            | "no-agent-check" | "no-ssl-reuse" | "no-tls-tickets" | "no-verifyhost"
            | "no-sslv3" | "no-tlsv10" | "no-tlsv11" | "no-tlsv12" | "no-tlsv13" => {
                // Negations of features switchyard does not have: what they ask is what happens.
            }
            k if SERVER_KEYWORDS.contains(&k) => {
                err(d, format!("'{k}' is not supported by switchyard (no TLS, PROXY protocol, agent checks, slow start or tracking)."));
                return;
            }
            k => {
                let hint = suggest::hint(k, SERVER_KEYWORDS.iter().copied());
                // HAProxy ends the message with a dot only when there is no hint.
                let end = if hint.is_empty() { "." } else { "" };
                if is_default && i == first_opt {
                    // 2.6 reads the first word of default-server as a possible address.
                    d.alert_shaped(
                        loc,
                        k,
                        Shape::Bracket,
                        format!("unknown keyword '{k}'{hint}{end} Hint: no address was expected for this server."),
                    );
                } else {
                    err(d, format!("unknown keyword '{k}'{hint}{end}"));
                }
                return;
            }
        }
        if matches!(
            kw,
            "inter"
                | "fastinter"
                | "downinter"
                | "rise"
                | "fall"
                | "weight"
                | "maxconn"
                | "maxqueue"
                | "id"
                | "port"
                | "cookie"
                | "addr"
        ) {
            takes = 2;
        }
        i += takes;
    }
    if is_default {
        px.default_server = o.over(&px.default_server);
        return;
    }
    let merged = o.over(&px.default_server);
    let pos = px.servers.len() as u32 + 1;
    px.servers
        .push(merged.build(name, loc.clone(), host, port, pos));
}

/// `server-template <prefix> <num>|<first>-<last> <addr>[:port] [params]`:
/// servers `<prefix><n>` sharing one address. Without `resolvers` HAProxy also
/// resolves the address once at startup, so this is exactly equivalent; with
/// `resolvers` (DNS discovery filling each slot) it is refused.
pub(crate) fn template(p: &mut Parser<'_>, px: &mut Proxy, line: &Line) {
    let loc = &line.loc;
    let (prefix, range, addr) = (line.arg(1), line.arg(2), line.arg(3));
    if prefix.is_empty() || range.is_empty() || addr.is_empty() {
        p.diags.alert_shaped(
            loc,
            "server-template",
            Shape::Bracket,
            "'server-template' expects <prefix> <nb | range> <addr>[:<port>] as arguments.",
        );
        return;
    }
    let bounds = match range.split_once('-') {
        Some((a, b)) => a.parse::<u32>().ok().zip(b.parse::<u32>().ok()),
        None => range.parse::<u32>().ok().map(|n| (1, n)),
    };
    let Some((first, last)) = bounds.filter(|(a, b)| *a >= 1 && a <= b && b - a < 4096) else {
        p.diags.alert_shaped(
            loc,
            "server-template",
            Shape::Bracket,
            format!("Wrong server-template number or range arg '{range}'."),
        );
        return;
    };
    if line.words.iter().skip(4).any(|w| w == "resolvers") {
        super::unsupported(
            &mut p.diags,
            line,
            "server-template ... resolvers",
            "servers discovered through DNS at run time are not implemented",
        );
        return;
    }
    for n in first..=last {
        let mut words = vec![
            "server".to_string(),
            format!("{prefix}{n}"),
            addr.to_string(),
        ];
        words.extend(line.words.iter().skip(4).cloned());
        server(
            p,
            px,
            &Line {
                words,
                loc: loc.clone(),
            },
        );
    }
}
