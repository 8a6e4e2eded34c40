//! `balance` and `cookie`: how a backend picks a server and keeps a client on it.

use super::unsupported;
use crate::diag::Shape;
use crate::draft::{Diags, Line, Proxy};
use crate::model::*;
use crate::parser::Parser;
use crate::units::TimeUnit;

const BALANCE_ERR: &str = "balance only supports 'roundrobin', 'static-rr', 'leastconn', 'source', 'uri', 'url_param', 'hdr(name)' and 'rdp-cookie(name)' options.";

pub(crate) fn balance(p: &mut Parser<'_>, px: &mut Proxy, line: &Line) {
    let d = &mut p.diags;
    let loc = &line.loc;
    let algo = line.arg(1);
    let extra = |d: &mut Diags, from: usize| {
        if line.len() > from {
            d.alert(
                loc,
                "balance",
                format!("balance {algo} : unexpected argument '{}'.", line.arg(from)),
            );
            true
        } else {
            false
        }
    };
    let (b, l7) = match algo {
        "roundrobin" | "static-rr" | "leastconn" | "first" | "source" if extra(d, 2) => return,
        "roundrobin" => (Balance::RoundRobin, false),
        "static-rr" => (Balance::StaticRr, false),
        "leastconn" => (Balance::LeastConn, false),
        "first" => (Balance::First, false),
        "source" => (Balance::Source, false),
        "" => return, // HAProxy 2.6 accepts a bare `balance` and keeps the algorithm.
        a if a == "random" || a.starts_with("random(") => {
            let draws = match a.strip_prefix("random(") {
                None => 2,
                Some(rest) => {
                    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                    let after = &rest[digits.len()..];
                    match (digits.parse::<u32>(), after) {
                        (Ok(0), ")") => {
                            d.alert(
                                loc,
                                "balance",
                                "balance random : number of draws must be at least 1.",
                            );
                            return;
                        }
                        (Ok(n), ")") => n,
                        _ => {
                            let c = after.chars().next().unwrap_or(')');
                            d.alert(
                                loc,
                                "balance",
                                format!(
                                    "balance random : unexpected character '{c}' after argument."
                                ),
                            );
                            return;
                        }
                    }
                }
            };
            if extra(d, 2) {
                return;
            }
            (Balance::Random { draws }, false)
        }
        "uri" => {
            let (mut len, mut depth, mut whole, mut path_only) = (None, None, false, false);
            let mut i = 2;
            while i < line.len() {
                match line.arg(i) {
                    w @ ("len" | "depth") => {
                        let v = line.arg(i + 1);
                        match v.parse::<u32>() {
                            Ok(n) if n > 0 => {
                                if w == "len" {
                                    len = Some(n)
                                } else {
                                    depth = Some(n)
                                }
                            }
                            _ => {
                                d.alert(loc, "balance", format!("balance uri : '{w}' expects a positive integer (got '{v}')."));
                                return;
                            }
                        }
                        i += 2;
                    }
                    "whole" => {
                        whole = true;
                        i += 1
                    }
                    "path-only" => {
                        path_only = true;
                        i += 1
                    }
                    other => {
                        d.alert(loc, "balance", format!("balance uri only accepts parameters 'len', 'depth', 'path-only', and 'whole' (got '{other}')."));
                        return;
                    }
                }
            }
            (
                Balance::Uri {
                    len,
                    depth,
                    whole,
                    path_only,
                },
                true,
            )
        }
        "url_param" => {
            if line.arg(2).is_empty() {
                d.alert(
                    loc,
                    "balance",
                    "balance url_param requires an URL parameter name.",
                );
                return;
            }
            if line.len() > 3 {
                unsupported(
                    d,
                    line,
                    &format!("balance url_param {}", line.arg(3)),
                    "only the parameter name is implemented",
                );
                return;
            }
            (
                Balance::UrlParam {
                    name: line.arg(2).to_string(),
                },
                true,
            )
        }
        a if a.starts_with("hdr(") => {
            let Some(name) = a
                .strip_prefix("hdr(")
                .and_then(|r| r.strip_suffix(')'))
                .filter(|n| !n.is_empty())
            else {
                d.alert(
                    loc,
                    "balance",
                    "balance hdr requires an http header field name.",
                );
                return;
            };
            let use_domain_only = match line.arg(2) {
                "" => false,
                "use_domain_only" if line.len() == 3 => true,
                other => {
                    d.alert(
                        loc,
                        "balance",
                        format!("hdr(name) only accepts 'use_domain_only' (got '{other}')."),
                    );
                    return;
                }
            };
            (
                Balance::Hdr {
                    name: name.to_string(),
                    use_domain_only,
                },
                true,
            )
        }
        a if a.starts_with("rdp-cookie") || a == "hash" => {
            unsupported(d, line, &format!("balance {a}"), "use one of roundrobin, static-rr, leastconn, first, source, random, uri, url_param, hdr()");
            return;
        }
        _ => {
            d.alert(loc, "balance", BALANCE_ERR);
            return;
        }
    };
    px.balance = b;
    px.balance_l7 = l7;
}

const COOKIE_OPTS: &str = "'cookie' supports 'rewrite', 'insert', 'prefix', 'indirect', 'nocache', 'postonly', 'domain', 'maxidle', 'dynamic', 'maxlife' and 'attr' options.";

pub(crate) fn cookie(p: &mut Parser<'_>, px: &mut Proxy, line: &Line) {
    let d = &mut p.diags;
    let loc = &line.loc;
    let tight = |d: &mut Diags, m: String| d.alert_shaped(loc, "cookie", Shape::ParsingTight, m);
    if line.arg(1).is_empty() {
        d.alert(loc, "cookie", "'cookie' expects <cookie_name> as argument.");
        return;
    }
    // Re-declaring resets every option.
    let mut c = CookieConfig {
        name: line.arg(1).to_string(),
        loc: loc.clone(),
        ..CookieConfig::default()
    };
    let mut modes = 0;
    let mut i = 2;
    while i < line.len() {
        let w = line.arg(i);
        match w {
            "rewrite" | "insert" | "prefix" => {
                modes += 1;
                c.mode = match w {
                    "rewrite" => CookieMode::Rewrite,
                    "insert" => CookieMode::Insert,
                    _ => CookieMode::Prefix,
                };
            }
            "indirect" => c.indirect = true,
            "nocache" => c.nocache = true,
            "postonly" => c.postonly = true,
            "preserve" => c.preserve = true,
            "httponly" => c.httponly = true,
            "secure" => c.secure = true,
            "dynamic" => c.dynamic = true,
            "domain" => {
                let dom = line.arg(i + 1);
                if dom.is_empty() {
                    tight(d, "'domain' expects <domain> as argument.".to_string());
                    return;
                }
                if dom
                    .bytes()
                    .any(|b| b.is_ascii_control() || b == b';' || b == b' ')
                {
                    tight(d, format!("domain '{dom}' contains invalid characters."));
                    return;
                }
                if !dom[1..].contains('.') {
                    d.warn_shaped(
                        loc,
                        "cookie",
                        Shape::ParsingTight,
                        format!("domain '{dom}' contains no embedded dot, this configuration may not work properly (see RFC6265#5.2.3)."),
                    );
                }
                c.domains.push(dom.to_string());
                i += 1;
            }
            "attr" => {
                let a = line.arg(i + 1);
                if a.is_empty() {
                    tight(d, "'attr' expects <value> as argument.".to_string());
                    return;
                }
                if a.bytes().any(|b| b.is_ascii_control() || b == b';') {
                    tight(d, "attr value contains invalid characters.".to_string());
                    return;
                }
                c.attrs.push(a.to_string());
                i += 1;
            }
            "maxidle" | "maxlife" => {
                let v = line.arg(i + 1);
                match crate::units::parse_time(v, TimeUnit::S) {
                    Ok(t) if t.trailing.is_none() => {
                        let secs = u32::try_from(t.value).unwrap_or(u32::MAX);
                        if w == "maxidle" {
                            c.maxidle = Some(secs)
                        } else {
                            c.maxlife = Some(secs)
                        }
                    }
                    Ok(t) => {
                        let ch = t.trailing.unwrap_or(' ');
                        tight(
                            d,
                            format!("unexpected character '{ch}' in argument to <{w}>."),
                        );
                        return;
                    }
                    Err(crate::units::TimeError::Unexpected(ch)) => {
                        tight(
                            d,
                            format!("unexpected character '{ch}' in argument to <{w}>."),
                        );
                        return;
                    }
                    Err(_) => {
                        tight(
                            d,
                            format!("'{w}' expects <idletime> in seconds as argument."),
                        );
                        return;
                    }
                }
                i += 1;
            }
            _ => {
                d.alert(loc, "cookie", COOKIE_OPTS);
                return;
            }
        }
        i += 1;
    }
    if modes > 1 {
        d.alert(
            loc,
            "cookie",
            "cookie 'rewrite', 'insert' and 'prefix' modes are incompatible.",
        );
        return;
    }
    if c.indirect && c.mode == CookieMode::Rewrite {
        d.alert(
            loc,
            "cookie",
            "cookie 'rewrite' and 'indirect' modes are incompatible.",
        );
        return;
    }
    if c.postonly && c.mode != CookieMode::Insert {
        // 2.6 accepts it and does nothing with it.
        d.warn(
            loc,
            "cookie",
            "cookie 'postonly' option only makes sense with 'insert' mode: ignored.",
        );
        c.postonly = false;
    }
    if c.preserve && c.mode != CookieMode::Insert && !c.indirect {
        d.alert(
            loc,
            "cookie",
            "cookie 'preserve' requires at least 'insert' or 'indirect'.",
        );
        return;
    }
    if (c.maxidle.is_some() || c.maxlife.is_some()) && c.mode != CookieMode::Insert {
        d.alert(
            loc,
            "cookie",
            "cookie 'maxidle' and 'maxlife' only make sense with 'insert' mode.",
        );
        return;
    }
    if c.dynamic {
        unsupported(
            d,
            line,
            "cookie dynamic",
            "'dynamic-cookie-key' is not implemented; give each server a 'cookie' value",
        );
        return;
    }
    px.cookie = Some(c);
}
