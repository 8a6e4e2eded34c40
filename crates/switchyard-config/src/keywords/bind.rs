//! `bind` lines, and HAProxy's legacy environment expansion of addresses.

use super::server::split_addr;
use crate::draft::{Diags, Line};
use crate::model::*;
use crate::suggest;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// HAProxy 2.6 bind keywords (for "did you mean").
const BIND_KEYWORDS: &[&str] = &[
    "accept-netscaler-cip",
    "accept-proxy",
    "allow-0rtt",
    "alpn",
    "backlog",
    "ca-file",
    "ca-ignore-err",
    "ca-sign-file",
    "ca-sign-pass",
    "ca-verify-file",
    "ciphers",
    "ciphersuites",
    "crl-file",
    "crt",
    "crt-ignore-err",
    "crt-list",
    "curves",
    "defer-accept",
    "ecdhe",
    "expose-fd",
    "force-sslv3",
    "force-tlsv10",
    "force-tlsv11",
    "force-tlsv12",
    "force-tlsv13",
    "generate-certificates",
    "gid",
    "group",
    "id",
    "interface",
    "level",
    "maxconn",
    "mode",
    "mss",
    "name",
    "namespace",
    "nice",
    "no-ca-names",
    "no-sslv3",
    "no-tls-tickets",
    "no-tlsv10",
    "no-tlsv11",
    "no-tlsv12",
    "no-tlsv13",
    "npn",
    "prefer-client-ciphers",
    "process",
    "proto",
    "severity-output",
    "ssl",
    "ssl-max-ver",
    "ssl-min-ver",
    "strict-sni",
    "tcp-ut",
    "tfo",
    "thread",
    "tls-ticket-keys",
    "transparent",
    "uid",
    "user",
    "v4v6",
    "v6only",
    "verify",
    "quic-force-retry",
];

/// HAProxy's legacy `env_expand()` applied to addresses: `$NAME` and `${NAME}`
/// expand (to nothing when unset) even outside double quotes; `${NAME-default}`
/// is not understood there and stays literal.
pub(crate) fn env_expand(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let b = text.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    let name_len = |from: usize| {
        let first_ok = b
            .get(from)
            .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_');
        if !first_ok {
            return 0;
        }
        b[from..]
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
            .count()
    };
    while i < b.len() {
        if b[i] == b'$' {
            if b.get(i + 1) == Some(&b'{') {
                let n = name_len(i + 2);
                if n > 0 && b.get(i + 2 + n) == Some(&b'}') {
                    out.push_str(&lookup(&text[i + 2..i + 2 + n]).unwrap_or_default());
                    i += n + 3;
                    continue;
                }
            } else {
                let n = name_len(i + 1);
                if n > 0 {
                    out.push_str(&lookup(&text[i + 1..i + 1 + n]).unwrap_or_default());
                    i += n + 1;
                    continue;
                }
            }
        }
        let ch = text[i..].chars().next().unwrap_or('$');
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// `bind <addr>[,<addr>...] [params]`; `spec` is the address list after
/// [`env_expand`], `section` the section keyword (for messages).
pub(crate) fn bind(d: &mut Diags, line: &Line, spec: &str, section: &str) -> Option<Bind> {
    let loc = &line.loc;
    if spec.is_empty() {
        d.alert(
            loc,
            "bind",
            "'bind' expects {<path>|[addr1]:port1[-end1]}{,[addr]:port[-end]}... as arguments.",
        );
        return None;
    }
    let mut addrs = Vec::new();
    let raw = line.arg(1);
    for part in spec.split(',') {
        // Messages quote the text as written when there is a single address.
        let shown = if raw.contains(',') { part } else { raw };
        let a = match split_addr(part) {
            Ok(a) => a,
            Err(prefix) => {
                super::unsupported(
                    d,
                    line,
                    &format!("bind {part}"),
                    &format!("{prefix} listeners are not implemented, only TCP over IPv4/IPv6"),
                );
                return None;
            }
        };
        let ip: IpAddr = match a.host.as_str() {
            "" | "*" => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            "localhost" => IpAddr::V4(Ipv4Addr::LOCALHOST),
            h => match h.parse() {
                Ok(ip) => ip,
                // Something that looks like an IPv4 literal but is not one.
                Err(_) if h.bytes().all(|b| b.is_ascii_digit() || b == b'.') => {
                    d.alert(
                        loc,
                        "bind",
                        format!("'bind' : invalid address: '{h}' in '{part}'"),
                    );
                    return None;
                }
                Err(_) => {
                    super::unsupported(d, line, &format!("bind {part}"), "listening addresses must be IP literals (no DNS in the configuration reader)");
                    return None;
                }
            },
        };
        if a.port.is_empty() {
            d.alert(
                loc,
                "bind",
                format!("'bind' : missing port specification in '{shown}'"),
            );
            return None;
        }
        let (lo, hi) = match a.port.split_once('-') {
            Some((l, h)) => (l, h),
            None => (a.port.as_str(), a.port.as_str()),
        };
        let parse = |p: &str| p.parse::<u16>().ok().filter(|&n| n > 0);
        let (Some(lo_n), Some(hi_n)) = (parse(lo), parse(hi)) else {
            let bad = if parse(lo).is_none() { lo } else { hi };
            match bad.chars().find(|c| !c.is_ascii_digit()) {
                Some(c) => d.alert(
                    loc,
                    "bind",
                    format!("'bind' : invalid character '{c}' in port number '{bad}' in '{shown}'"),
                ),
                None => d.alert(loc, "bind", format!("'bind' : invalid port '{bad}'")),
            }
            return None;
        };
        if hi_n < lo_n {
            d.alert(
                loc,
                "bind",
                format!("'bind' : invalid port range '{}'", a.port),
            );
            return None;
        }
        addrs.extend((lo_n..=hi_n).map(|p| SocketAddr::new(ip, p)));
    }
    let mut b = Bind {
        addrs,
        name: None,
        maxconn: None,
        loc: loc.clone(),
    };
    let mut i = 2;
    while i < line.len() {
        let kw = line.arg(i);
        let val = line.arg(i + 1);
        match kw {
            "name" | "id" if val.is_empty() => {
                d.alert(
                    loc,
                    "bind",
                    format!("'bind {spec}' in section '{section}' : '{kw}' : missing {kw}"),
                );
                return None;
            }
            "name" | "id" => {
                if kw == "name" {
                    b.name = Some(val.to_string());
                }
                i += 1;
            }
            "maxconn" => {
                match val.parse::<u32>() {
                    Ok(n) => b.maxconn = Some(n),
                    Err(_) => {
                        d.alert(
                            loc,
                            "bind",
                            format!("'bind {spec}' : '{kw}' expects an integer argument."),
                        );
                        return None;
                    }
                }
                i += 1;
            }
            "v4v6" => {}
            "backlog" | "mss" | "tcp-ut" | "process" | "thread" | "nice" | "user" | "uid"
            | "group" | "gid" | "mode" | "level" | "severity-output" => {
                d.warn(
                    loc,
                    "bind",
                    format!("'bind {spec}' : '{kw}' is ignored by switchyard."),
                );
                i += 1;
            }
            "tfo" | "defer-accept" | "v6only" | "expose-fd" => {
                d.warn(
                    loc,
                    "bind",
                    format!("'bind {spec}' : '{kw}' is ignored by switchyard."),
                );
                if kw == "expose-fd" {
                    i += 1;
                }
            }
            k if BIND_KEYWORDS.contains(&k) => {
                d.alert(loc, "bind", format!("'bind {spec}' : '{k}' is not supported by switchyard (no TLS, PROXY protocol or socket options)."));
                return None;
            }
            k => {
                let hint = suggest::hint(k, BIND_KEYWORDS.iter().copied());
                d.alert(
                    loc,
                    "bind",
                    format!("'bind {spec}' in section '{section}': unknown keyword '{k}'{hint}."),
                );
                return None;
            }
        }
        i += 1;
    }
    Some(b)
}
