//! `acl` lines, anonymous `{ ... }` ACLs and `if`/`unless` conditions.
//!
//! A condition becomes a [`Condition`] in disjunctive normal form whose terms
//! index the proxy's `acls`. Predefined ACLs (`TRUE`, `METH_GET`, `LOCALHOST`...)
//! are added to `acls` the first time a condition names them.

use crate::draft::{Diags, Line, Proxy};
use crate::model::*;
use std::net::IpAddr;

/// Fetches HAProxy knows that switchyard does not evaluate (for a precise refusal).
const KNOWN_FETCHES: &[&str] = &[
    "ssl_fc_sni",
    "ssl_c_used",
    "ssl_fc_has_sni",
    "ssl_fc_alpn",
    "base",
    "base_beg",
    "base_sub",
    "base_reg",
    "base_end",
    "base_dom",
    "base_dir",
    "base32",
    "nbsrv",
    "srv_is_up",
    "be_conn",
    "fe_conn",
    "connslots",
    "sc_http_req_rate",
    "sc0_http_req_rate",
    "sc1_http_req_rate",
    "sc2_http_req_rate",
    "src_http_req_rate",
    "src_conn_rate",
    "src_conn_cur",
    "sc_conn_rate",
    "var",
    "req.ssl_sni",
    "req_ssl_sni",
    "req.ssl_hello_type",
    "req_ssl_hello_type",
    "req.len",
    "req_len",
    "req.payload",
    "req.proto_http",
    "http_auth",
    "http_auth_group",
    "status",
    "res.hdr",
    "shdr",
    "capture.req.hdr",
    "dst",
    "dst_conn",
    "src_port",
    "so_id",
    "wait_end",
    "req.body",
    "req.body_param",
    "req.rdp_cookie",
    "rdp_cookie",
    "stopping",
    "env",
    "int",
    "str",
    "bool",
    "str_beg",
    "http_first_req",
    "hdr_names",
    "req.hdr_names",
    "url_ip",
    "url_port",
    "cookie",
    "scook",
    "set-cookie",
    "req.cook_cnt",
    "cook_cnt",
    "req.cook_val",
    "cook_val",
    "urlp_val",
    "url_param_val",
    "req.ver",
    "path_len",
    "query_len",
];

/// How a criterion's fetch keyword maps to the model: (fetch, default match method).
fn fetch(word: &str) -> Result<(Fetch, MatchMethod), String> {
    let (base, arg) = match word.find('(') {
        Some(i) if word.ends_with(')') => (&word[..i], Some(&word[i + 1..word.len() - 1])),
        Some(i) => return Err(format!("ACL keyword '{}' : expected ')'", &word[..i])),
        None => (word, None),
    };
    let need_arg = |a: Option<&str>| -> Result<String, String> {
        match a {
            Some(s) if !s.is_empty() => Ok(s.to_string()),
            _ => Err(format!(
                "fetch method '{base}' : missing arguments (got 0/1)"
            )),
        }
    };
    let suffix_method = |s: &str| -> Option<MatchMethod> {
        Some(match s {
            "" => MatchMethod::Str,
            "_beg" => MatchMethod::Beg,
            "_end" => MatchMethod::End,
            "_sub" => MatchMethod::Sub,
            "_reg" => MatchMethod::Reg,
            "_dir" => MatchMethod::Dir,
            "_dom" => MatchMethod::Dom,
            "_len" => MatchMethod::Len,
            _ => return None,
        })
    };
    for (prefix, f) in [("path", Fetch::Path), ("url", Fetch::Url)] {
        if let Some(m) = base.strip_prefix(prefix).and_then(suffix_method) {
            if arg.is_some() {
                return Err(format!("fetch method '{base}' does not take arguments"));
            }
            return Ok((f, m));
        }
    }
    let hdr_args = |a: Option<&str>| -> Result<(String, Option<i32>), String> {
        let s = need_arg(a)?;
        match s.split_once(',') {
            None => Ok((s, None)),
            Some((n, occ)) => occ
                .trim()
                .parse::<i32>()
                .map(|o| (n.to_string(), Some(o)))
                .map_err(|_| format!("invalid occurrence '{occ}' in fetch '{word}'")),
        }
    };
    let plain = |m: MatchMethod| -> Result<(), String> {
        if arg.is_some() {
            Err(format!("fetch method '{base}' does not take arguments"))
        } else {
            let _ = m;
            Ok(())
        }
    };
    let r = match base {
        // switchyard has no TLS listener: no connection is ever SSL.
        "ssl_fc" => {
            plain(MatchMethod::Bool)?;
            (Fetch::Always(false), MatchMethod::Bool)
        }
        "query" => {
            plain(MatchMethod::Str)?;
            (Fetch::Query, MatchMethod::Str)
        }
        "method" => {
            plain(MatchMethod::Str)?;
            (Fetch::Method, MatchMethod::Str)
        }
        "src" => {
            plain(MatchMethod::Ip)?;
            (Fetch::Src, MatchMethod::Ip)
        }
        "dst_port" => {
            plain(MatchMethod::Int)?;
            (Fetch::DstPort, MatchMethod::Int)
        }
        "req.ver" | "req_ver" => {
            plain(MatchMethod::Str)?;
            (Fetch::ReqVer, MatchMethod::Str)
        }
        "always_true" => (Fetch::Always(true), MatchMethod::Bool),
        "always_false" => (Fetch::Always(false), MatchMethod::Bool),
        "hdr_cnt" | "req.hdr_cnt" => (
            Fetch::HdrCnt {
                name: need_arg(arg)?,
            },
            MatchMethod::Int,
        ),
        "hdr_val" | "req.hdr_val" => {
            let (name, occ) = hdr_args(arg)?;
            (Fetch::Hdr { name, occ }, MatchMethod::Int)
        }
        "hdr_ip" | "req.hdr_ip" => {
            let (name, occ) = hdr_args(arg)?;
            (Fetch::Hdr { name, occ }, MatchMethod::Ip)
        }
        "req.hdr" | "req.fhdr" | "fhdr" => {
            let (name, occ) = hdr_args(arg)?;
            if base == "req.hdr" {
                (Fetch::Hdr { name, occ }, MatchMethod::Str)
            } else {
                (Fetch::Fhdr { name, occ }, MatchMethod::Str)
            }
        }
        "req.cook" | "cook" => (
            Fetch::Cookie {
                name: need_arg(arg)?,
            },
            MatchMethod::Str,
        ),
        "url_param" | "urlp" => (
            Fetch::UrlParam {
                name: need_arg(arg)?,
            },
            MatchMethod::Str,
        ),
        b => {
            if let Some(m) = b.strip_prefix("hdr").and_then(suffix_method) {
                let (name, occ) = hdr_args(arg)?;
                (Fetch::Hdr { name, occ }, m)
            } else if let Some(m) = b.strip_prefix("cook").and_then(suffix_method) {
                (
                    Fetch::Cookie {
                        name: need_arg(arg)?,
                    },
                    m,
                )
            } else if let Some(m) = b.strip_prefix("urlp").and_then(suffix_method) {
                (
                    Fetch::UrlParam {
                        name: need_arg(arg)?,
                    },
                    m,
                )
            } else if KNOWN_FETCHES.contains(&b)
                || b.starts_with("sc")
                || b.starts_with("ssl_")
                || b.starts_with("req.")
                || b.starts_with("res.")
            {
                return Err(format!(
                    "__unsupported__fetch method '{b}' is not supported by switchyard"
                ));
            } else {
                return Err(format!(
                    "unknown fetch method '{b}' in ACL expression '{b}'"
                ));
            }
        }
    };
    Ok(r)
}

fn method_name(word: &str) -> Option<MatchMethod> {
    Some(match word {
        "str" => MatchMethod::Str,
        "beg" => MatchMethod::Beg,
        "end" => MatchMethod::End,
        "sub" => MatchMethod::Sub,
        "reg" => MatchMethod::Reg,
        "dir" => MatchMethod::Dir,
        "dom" => MatchMethod::Dom,
        "len" => MatchMethod::Len,
        "int" => MatchMethod::Int,
        "ip" => MatchMethod::Ip,
        "found" => MatchMethod::Found,
        "bool" => MatchMethod::Bool,
        _ => return None,
    })
}

/// Parses `a.b.c.d[/len]`, `a.b.c.d/mask` or an IPv6 network.
pub(crate) fn parse_net(text: &str) -> Option<IpNet> {
    let (addr, prefix) = match text.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (text, None),
    };
    let addr: IpAddr = addr.parse().ok()?;
    let width = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => width,
        Some(p) => match p.parse::<u8>() {
            Ok(n) if n <= width => n,
            Ok(_) => return None,
            Err(_) => {
                // Dotted mask (255.255.255.0): must be contiguous.
                let m: std::net::Ipv4Addr = p.parse().ok()?;
                let bits = u32::from(m);
                if bits.leading_ones() + bits.trailing_zeros() != 32 || !addr.is_ipv4() {
                    return None;
                }
                bits.leading_ones() as u8
            }
        },
    };
    Some(IpNet { addr, prefix })
}

fn check_int_pattern(p: &str) -> bool {
    let num = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match p.split_once(':') {
        Some((a, b)) => (a.is_empty() || num(a)) && (b.is_empty() || num(b)),
        None => num(p),
    }
}

/// Parses `<fetch> [flags] [-m method] <patterns...>` from `words`.
/// Errors are HAProxy's text after `error detected while parsing ACL 'x' : `.
pub(crate) fn criterion(
    words: &[String],
    loc: &Location,
    warn: &mut Vec<String>,
) -> Result<AclCriterion, String> {
    let Some(first) = words.first() else {
        return Err("missing fetch method in ACL expression ''".into());
    };
    let mut depth = 0i32;
    let has_converter = first.chars().any(|c| {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ => {}
        }
        c == ',' && depth == 0
    });
    if has_converter {
        return Err(format!(
            "__unsupported__converters ('{first}') are not supported by switchyard"
        ));
    }
    let (fetch, mut method) = fetch(first)?;
    let mut ignore_case = false;
    let mut i = 1;
    let mut int_ops: Option<&str> = None;
    while i < words.len() && words[i].starts_with('-') {
        match words[i].as_str() {
            "-i" => ignore_case = true,
            "-n" | "-u" if words[i] == "-n" => {}
            "-m" => {
                let m = words.get(i + 1).map(String::as_str).unwrap_or("");
                method = match method_name(m) {
                    Some(m) => m,
                    None if m == "bin" => return Err("__unsupported__'-m bin' is not supported by switchyard".into()),
                    None => return Err(format!("unknown matching method '{m}' when parsing ACL expression")),
                };
                i += 1;
            }
            "-f" => return Err("__unsupported__pattern files ('-f') are not supported by switchyard; list the patterns inline".into()),
            "-M" => return Err("__unsupported__map patterns ('-M') are not supported by switchyard".into()),
            "-u" => i += 1,
            "--" => {
                i += 1;
                break;
            }
            other => return Err(format!("'{other}' is not a valid pattern flag")),
        }
        i += 1;
    }
    let mut patterns: Vec<String> = Vec::new();
    let mut nets = Vec::new();
    for w in &words[i..] {
        let is_op = matches!(w.as_str(), "eq" | "ge" | "gt" | "le" | "lt");
        if matches!(method, MatchMethod::Int | MatchMethod::Len) && is_op && int_ops.is_none() {
            int_ops = Some(w.as_str());
            continue;
        }
        let pat = match int_ops.take() {
            Some(op) => format!("{op} {w}"),
            None => w.clone(),
        };
        match method {
            MatchMethod::Reg => {
                let re = if ignore_case {
                    format!("(?i){w}")
                } else {
                    w.clone()
                };
                if let Err(e) = regex::Regex::new(&re) {
                    let short = e
                        .to_string()
                        .lines()
                        .last()
                        .unwrap_or("")
                        .trim()
                        .to_string();
                    return Err(format!("regex '{w}' is invalid ({short})"));
                }
            }
            MatchMethod::Ip => match parse_net(w) {
                Some(n) => nets.push(n),
                None => return Err(format!("'{w}' is not a valid IPv4 or IPv6 address")),
            },
            MatchMethod::Int | MatchMethod::Len => {
                let num = pat.rsplit(' ').next().unwrap_or("");
                if !check_int_pattern(num) {
                    return Err(format!("'{w}' is not a number"));
                }
            }
            MatchMethod::Found | MatchMethod::Bool if method == MatchMethod::Found => {
                return Err(format!("'-m found' takes no pattern (got '{w}')"));
            }
            _ => {}
        }
        patterns.push(pat);
    }
    if let Some(op) = int_ops {
        return Err(format!("missing value after operator '{op}'"));
    }
    if patterns.is_empty()
        && !matches!(method, MatchMethod::Found | MatchMethod::Bool)
        && !matches!(fetch, Fetch::Always(_))
        && !words.iter().any(|w| w == "--")
    {
        warn.push(format!(
            "parsing acl keyword '{first}' :\n  no pattern to match against were provided, so this ACL will never match.\n  If this is what you intended, please add '--' to get rid of this warning.\n  If you intended to match only for existence, please use '-m found'.\n  If you wanted to force an int to match as a bool, please use '-m bool'."
        ));
    }
    Ok(AclCriterion {
        fetch,
        ignore_case,
        method,
        patterns,
        nets,
        loc: loc.clone(),
    })
}

fn report(d: &mut Diags, line: &Line, context: &str, e: String) {
    match e.strip_prefix("__unsupported__") {
        Some(msg) => d.alert(&line.loc, line.arg(0), format!("{context} : {msg}.")),
        None => d.alert(&line.loc, line.arg(0), format!("{context} : {e}.")),
    }
}

/// `acl <name> <criterion...>`.
pub(crate) fn acl_line(d: &mut Diags, px: &mut Proxy, line: &Line) {
    let name = line.arg(1);
    if name.is_empty() {
        d.alert(&line.loc, "acl", "'acl' expects an ACL name.");
        return;
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "_.:-".contains(*c)))
    {
        d.alert(
            &line.loc,
            "acl",
            format!("character '{c}' is not permitted in acl name '{name}'."),
        );
        return;
    }
    let mut warns = Vec::new();
    match criterion(&line.words[2..], &line.loc, &mut warns) {
        Ok(c) => {
            for w in warns {
                d.push(
                    crate::diag::Level::Warning,
                    Some(&line.loc),
                    "acl",
                    w,
                    crate::diag::Shape::Unlocated,
                );
            }
            match px.acls.iter_mut().find(|a| a.name == name) {
                Some(a) => a.criteria.push(c),
                None => px.acls.push(Acl {
                    name: name.to_string(),
                    criteria: vec![c],
                }),
            }
        }
        Err(e) => report(
            d,
            line,
            &format!("error detected while parsing ACL '{name}'"),
            e,
        ),
    }
}

/// The predefined ACLs switchyard can evaluate, as criterion words.
fn predefined(name: &str) -> Option<&'static [&'static str]> {
    Some(match name {
        "TRUE" => &["always_true"],
        "FALSE" => &["always_false"],
        "HTTP" => &["always_true"],
        "HTTP_1.0" => &["req.ver", "1.0"],
        "HTTP_1.1" => &["req.ver", "1.1"],
        "HTTP_2.0" => &["req.ver", "2.0"],
        "HTTP_CONTENT" => &["hdr_val(content-length)", "gt", "0"],
        "HTTP_URL_ABS" => &["url_reg", "^[^/:]*://"],
        "HTTP_URL_SLASH" => &["url_beg", "/"],
        "HTTP_URL_STAR" => &["url", "*"],
        "LOCALHOST" => &["src", "127.0.0.1/8", "::1"],
        "METH_CONNECT" => &["method", "CONNECT"],
        "METH_DELETE" => &["method", "DELETE"],
        "METH_GET" => &["method", "GET", "HEAD"],
        "METH_HEAD" => &["method", "HEAD"],
        "METH_OPTIONS" => &["method", "OPTIONS"],
        "METH_POST" => &["method", "POST"],
        "METH_PUT" => &["method", "PUT"],
        "METH_TRACE" => &["method", "TRACE"],
        _ => return None,
    })
}

/// Parses `if|unless <cond>` starting at word `at` (the `if`/`unless` word).
/// `context` starts the error messages, separator included
/// (`"error detected while parsing switching rule : "`).
pub(crate) fn condition(
    d: &mut Diags,
    px: &mut Proxy,
    line: &Line,
    at: usize,
    context: &str,
) -> Option<Condition> {
    let ctx = context;
    let unless = line.arg(at) == "unless";
    let words = &line.words[at + 1..];
    let mut any_of: Vec<Vec<Term>> = vec![Vec::new()];
    let mut i = 0;
    while i < words.len() {
        let w = words[i].as_str();
        if w == "||" || w == "or" {
            any_of.push(Vec::new());
            i += 1;
            continue;
        }
        let (negated, rest) = match w.strip_prefix('!') {
            Some(r) => (true, r),
            None => (false, w),
        };
        let (negated, rest) = if rest.is_empty() && negated {
            // `! name` with a space.
            i += 1;
            match words.get(i) {
                Some(n) => (true, n.as_str()),
                None => {
                    d.alert(
                        &line.loc,
                        line.arg(0),
                        format!("{ctx}missing ACL name after '!'."),
                    );
                    return None;
                }
            }
        } else {
            (negated, rest)
        };
        let idx = if rest == "{" {
            let Some(close) = words[i + 1..].iter().position(|w| w == "}") else {
                d.alert(
                    &line.loc,
                    line.arg(0),
                    format!("{ctx}missing closing '}}' in condition."),
                );
                return None;
            };
            let inner = &words[i + 1..i + 1 + close];
            let mut warns = Vec::new();
            let crit = match criterion(inner, &line.loc, &mut warns) {
                Ok(c) => c,
                Err(e) => {
                    // `ctx` ends with " : ", which `report` adds back.
                    report(d, line, ctx.trim_end_matches(" : "), e);
                    return None;
                }
            };
            for w in warns {
                d.push(
                    crate::diag::Level::Warning,
                    Some(&line.loc),
                    line.arg(0),
                    w,
                    crate::diag::Shape::Unlocated,
                );
            }
            px.anon_acls += 1;
            px.acls.push(Acl {
                name: format!("{{anon#{}}}", px.anon_acls),
                criteria: vec![crit],
            });
            i += close + 1;
            px.acls.len() - 1
        } else if let Some(pos) = px.acls.iter().position(|a| a.name == rest) {
            pos
        } else if let Some(words) = predefined(rest) {
            let words: Vec<String> = words.iter().map(|s| s.to_string()).collect();
            let crit = criterion(&words, &line.loc, &mut Vec::new()).ok()?;
            px.acls.push(Acl {
                name: rest.to_string(),
                criteria: vec![crit],
            });
            px.acls.len() - 1
        } else {
            d.alert(
                &line.loc,
                line.arg(0),
                format!("{ctx}no such ACL : '{rest}'."),
            );
            return None;
        };
        if let Some(g) = any_of.last_mut() {
            g.push(Term { negated, acl: idx });
        }
        i += 1;
    }
    // Empty groups (`if a ||`, a bare `if`) are dropped as HAProxy does; an empty
    // condition is always true.
    any_of.retain(|g| !g.is_empty());
    Some(Condition { unless, any_of })
}

#[cfg(test)]
#[path = "acl_tests.rs"]
mod tests;
