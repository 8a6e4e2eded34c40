//! ACL evaluation: sample fetches over a borrowed request, HAProxy's match
//! methods, and conditions in disjunctive normal form.
//!
//! A criterion (one `acl` line) matches when any sample of its fetch matches
//! any of its patterns; declarations of the same ACL are OR-ed; a condition
//! is an OR of AND-groups of possibly negated ACLs, inverted by `unless`.
//! Everything is compiled once (regexes built, `-i` patterns lower-cased,
//! integer ranges parsed) and evaluated without allocation for string, integer
//! and address samples; only absolute-form URLs used with `url` allocate.
//!
//! Multi-valued fetches (`hdr`, `url_param`, `req.cook`) yield every
//! occurrence, so an ACL matches if any occurrence does, as HAProxy's ACL
//! engine does with samples flagged "not last".

use std::borrow::Cow;
use std::net::IpAddr;

use regex::bytes::{Regex, RegexBuilder};
use switchyard_config::{Acl, AclCriterion, Condition, Fetch, IpNet, MatchMethod};

use super::RequestInfo;
use crate::backend::sticky::parse_cookie_header;

/// A proxy's ACLs compiled for fast evaluation (regexes built, patterns lower-cased for `-i`).
#[derive(Debug)]
pub struct CompiledAcls {
    acls: Vec<CompiledAcl>,
    /// Whether some criterion reads request headers, decided once (asked per request).
    reads_headers: bool,
}

#[derive(Debug)]
struct CompiledAcl {
    criteria: Vec<Criterion>,
}

#[derive(Debug)]
struct Criterion {
    fetch: CompiledFetch,
    method: MatchMethod,
    icase: bool,
    patterns: Patterns,
}

#[derive(Debug)]
pub(crate) enum CompiledFetch {
    Path,
    Url,
    Query,
    Method,
    Src,
    DstPort,
    Hdr {
        name: http::HeaderName,
        occ: Option<i32>,
        split: bool,
    },
    HdrCnt(http::HeaderName),
    UrlParam(String),
    Cookie(String),
    ReqVer,
    Always(bool),
}

#[derive(Debug)]
enum Patterns {
    None,
    /// `method` with its default matching (HAProxy's `pat_match_meth`).
    Methods(Vec<MethodPattern>),
    Strings(Vec<Vec<u8>>),
    Regexes(Vec<Regex>),
    Ranges(Vec<(i64, i64)>),
    Nets(Vec<IpNet>),
}

/// A `method` pattern: a well-known method (compared exactly, `-i` ignored)
/// or another token (compared as a string, `-i` honoured). HAProxy
/// recognises well-known names case-sensitively, so `method -i get` never
/// matches a `GET` request, as on HAProxy 2.6.
#[derive(Debug)]
enum MethodPattern {
    Known(&'static str),
    Other(Vec<u8>),
}

const KNOWN_METHODS: [&str; 8] = [
    "OPTIONS", "GET", "HEAD", "POST", "PUT", "DELETE", "TRACE", "CONNECT",
];

/// One value produced by a fetch.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Sample<'a> {
    Str(&'a [u8]),
    Int(i64),
    Ip(IpAddr),
    Bool(bool),
}

impl CompiledFetch {
    /// Whether the fetch reads the request's headers.
    pub(crate) fn reads_headers(&self) -> bool {
        match self {
            CompiledFetch::Hdr { .. } | CompiledFetch::HdrCnt(_) | CompiledFetch::Cookie(_) => true,
            CompiledFetch::Path
            | CompiledFetch::Url
            | CompiledFetch::Query
            | CompiledFetch::Method
            | CompiledFetch::Src
            | CompiledFetch::DstPort
            | CompiledFetch::UrlParam(_)
            | CompiledFetch::ReqVer
            | CompiledFetch::Always(_) => false,
        }
    }
}

impl CompiledAcls {
    pub fn compile(acls: &[Acl]) -> Result<Self, String> {
        let acls = acls
            .iter()
            .map(|a| {
                let criteria = a
                    .criteria
                    .iter()
                    .map(|c| {
                        compile_criterion(c)
                            .map_err(|e| format!("acl '{}' at {}: {e}", a.name, c.loc))
                    })
                    .collect::<Result<_, _>>()?;
                Ok(CompiledAcl { criteria })
            })
            .collect::<Result<Vec<CompiledAcl>, String>>()?;
        let reads_headers = acls
            .iter()
            .flat_map(|a| &a.criteria)
            .any(|c| c.fetch.reads_headers());
        Ok(CompiledAcls {
            acls,
            reads_headers,
        })
    }

    pub fn eval(&self, cond: &Condition, req: &RequestInfo<'_>) -> bool {
        self.eval_in(cond, req, Phase::Request)
    }

    /// Whether any ACL reads request headers (`hdr*`, `req.cook`). The proxy builds the
    /// `HeaderMap` that [`RequestInfo::headers`] points to only when something reads it.
    #[inline]
    pub fn reads_headers(&self) -> bool {
        self.reads_headers
    }

    /// The patterns of ACL `acl` when it is one `path_beg` line without `-i`: it matches
    /// exactly when the path starts with one of them ([`Criterion::matches`]).
    pub(crate) fn path_prefixes(&self, acl: usize) -> Option<&[Vec<u8>]> {
        match self.acls.get(acl)?.criteria.as_slice() {
            [Criterion {
                fetch: CompiledFetch::Path,
                method: MatchMethod::Beg,
                icase: false,
                patterns: Patterns::Strings(p),
            }] => Some(p),
            _ => None,
        }
    }

    /// `None` (no condition) is true.
    pub fn eval_opt(&self, cond: Option<&Condition>, req: &RequestInfo<'_>) -> bool {
        cond.is_none_or(|c| self.eval(c, req))
    }

    /// Evaluates a condition of an `http-response` rule. As in HAProxy, ACLs
    /// on request contents (`path`, `url`, `query`, `hdr*`, `url_param`,
    /// `req.cook`, `req.ver`) never match there (HAProxy warns "will never
    /// match" when loading); `method`, `src`, `dst_port` and constants work.
    pub fn eval_response(&self, cond: Option<&Condition>, req: &RequestInfo<'_>) -> bool {
        cond.is_none_or(|c| self.eval_in(c, req, Phase::Response))
    }

    /// Whether ACL number `acl` (index into the proxy's `acls`) matches.
    pub fn eval_acl(&self, acl: usize, req: &RequestInfo<'_>) -> bool {
        self.acl_matches(acl, req, Phase::Request)
    }

    #[inline(always)]
    fn eval_in(&self, cond: &Condition, req: &RequestInfo<'_>, phase: Phase) -> bool {
        // The usual condition, one ACL (`if is_api`, `unless !is_api`): the general form
        // below with its one group of one term, without the loops.
        if let [group] = cond.any_of.as_slice() {
            if let [t] = group.as_slice() {
                return (self.acl_matches(t.acl, req, phase) != t.negated) != cond.unless;
            }
        }
        let any = cond.any_of.iter().any(|group| {
            group
                .iter()
                .all(|t| self.acl_matches(t.acl, req, phase) != t.negated)
        });
        any != cond.unless
    }

    #[inline(always)]
    fn acl_matches(&self, acl: usize, req: &RequestInfo<'_>, phase: Phase) -> bool {
        let usable = |c: &Criterion| phase == Phase::Request || c.fetch.usable_in_response();
        // One `acl` line (the usual case): the loop below over its one criterion.
        if let Some([c]) = self.acls.get(acl).map(|a| a.criteria.as_slice()) {
            return usable(c) && c.matches(req);
        }
        self.acls
            .get(acl)
            .is_some_and(|a| a.criteria.iter().any(|c| usable(c) && c.matches(req)))
    }
}

/// Which rule set a condition belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Request,
    Response,
}

impl CompiledFetch {
    /// Whether HAProxy can evaluate this ACL fetch in `http-response` rules.
    fn usable_in_response(&self) -> bool {
        matches!(
            self,
            CompiledFetch::Method
                | CompiledFetch::Src
                | CompiledFetch::DstPort
                | CompiledFetch::Always(_)
        )
    }
}

// === compilation ===

fn compile_criterion(c: &AclCriterion) -> Result<Criterion, String> {
    let fetch = compile_fetch(&c.fetch)?;
    let icase = c.ignore_case;
    let patterns = match c.method {
        MatchMethod::Str if c.fetch == Fetch::Method => Patterns::Methods(
            c.patterns
                .iter()
                .map(|p| match KNOWN_METHODS.iter().find(|k| **k == p.as_str()) {
                    Some(k) => MethodPattern::Known(k),
                    None => MethodPattern::Other(p.clone().into_bytes()),
                })
                .collect(),
        ),
        MatchMethod::Found | MatchMethod::Bool => Patterns::None,
        MatchMethod::Reg => Patterns::Regexes(
            c.patterns
                .iter()
                .map(|p| {
                    RegexBuilder::new(p)
                        .case_insensitive(icase)
                        .build()
                        .map_err(|e| format!("invalid regex '{p}': {e}"))
                })
                .collect::<Result<_, _>>()?,
        ),
        MatchMethod::Int | MatchMethod::Len => Patterns::Ranges(parse_ranges(&c.patterns)?),
        MatchMethod::Ip => {
            let mut nets = c.nets.clone();
            if nets.is_empty() {
                for p in &c.patterns {
                    nets.push(parse_net(p).ok_or_else(|| format!("invalid IP address '{p}'"))?);
                }
            }
            Patterns::Nets(nets)
        }
        MatchMethod::Str
        | MatchMethod::Beg
        | MatchMethod::End
        | MatchMethod::Sub
        | MatchMethod::Dir
        | MatchMethod::Dom => Patterns::Strings(
            c.patterns
                .iter()
                .map(|p| {
                    if icase {
                        p.to_ascii_lowercase().into_bytes()
                    } else {
                        p.clone().into_bytes()
                    }
                })
                .collect(),
        ),
    };
    Ok(Criterion {
        fetch,
        method: c.method,
        icase,
        patterns,
    })
}

fn header_name(name: &str) -> Result<http::HeaderName, String> {
    http::HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| format!("invalid header name '{name}'"))
}

pub(crate) fn compile_fetch(f: &Fetch) -> Result<CompiledFetch, String> {
    Ok(match f {
        Fetch::Path => CompiledFetch::Path,
        Fetch::Url => CompiledFetch::Url,
        Fetch::Query => CompiledFetch::Query,
        Fetch::Method => CompiledFetch::Method,
        Fetch::Src => CompiledFetch::Src,
        Fetch::DstPort => CompiledFetch::DstPort,
        Fetch::Hdr { name, occ } => CompiledFetch::Hdr {
            name: header_name(name)?,
            occ: *occ,
            split: true,
        },
        Fetch::Fhdr { name, occ } => CompiledFetch::Hdr {
            name: header_name(name)?,
            occ: *occ,
            split: false,
        },
        Fetch::HdrCnt { name } => CompiledFetch::HdrCnt(header_name(name)?),
        Fetch::UrlParam { name } => CompiledFetch::UrlParam(name.clone()),
        Fetch::Cookie { name } => CompiledFetch::Cookie(name.clone()),
        Fetch::ReqVer => CompiledFetch::ReqVer,
        Fetch::Always(b) => CompiledFetch::Always(*b),
    })
}

/// Integer patterns: `N`, `N:M`, `N:`, `:M`, and `eq|ge|gt|le|lt N`.
fn parse_ranges(patterns: &[String]) -> Result<Vec<(i64, i64)>, String> {
    let num = |s: &str| {
        s.trim()
            .parse::<i64>()
            .map_err(|_| format!("invalid integer pattern '{s}'"))
    };
    let mut out = Vec::new();
    // Operators are separate words (`gt 2`); accept them joined too.
    let mut it = patterns.iter().flat_map(|p| p.split_whitespace());
    while let Some(p) = it.next() {
        let op = p;
        if matches!(op, "eq" | "ge" | "gt" | "le" | "lt") {
            let v = num(it
                .next()
                .ok_or_else(|| format!("missing value after '{op}'"))?)?;
            out.push(match op {
                "eq" => (v, v),
                "ge" => (v, i64::MAX),
                "gt" => (v.saturating_add(1), i64::MAX),
                "le" => (i64::MIN, v),
                _ => (i64::MIN, v.saturating_sub(1)),
            });
            continue;
        }
        out.push(match p.split_once(':') {
            Some(("", hi)) => (i64::MIN, num(hi)?),
            Some((lo, "")) => (num(lo)?, i64::MAX),
            Some((lo, hi)) => (num(lo)?, num(hi)?),
            None => {
                let v = num(p)?;
                (v, v)
            }
        });
    }
    Ok(out)
}

fn parse_net(p: &str) -> Option<IpNet> {
    let (addr, prefix) = match p.split_once('/') {
        Some((a, len)) => (a, Some(len)),
        None => (p, None),
    };
    let addr: IpAddr = addr.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => max,
        Some(len) => match len.parse::<u8>() {
            Ok(n) if n <= max => n,
            // Dotted netmask: 255.255.255.0
            _ => {
                let mask: std::net::Ipv4Addr = len.parse().ok()?;
                u32::from(mask).leading_ones() as u8
            }
        },
    };
    Some(IpNet { addr, prefix })
}

// === evaluation ===

impl Criterion {
    #[inline(always)]
    fn matches(&self, req: &RequestInfo<'_>) -> bool {
        // The usual routing ACL (`path_beg /engine.io`, `path -i /x /y`...): `path` yields
        // exactly one string sample and string patterns are matched by `str_match`, as in
        // the generic walk below (`match_sample`'s string arm), without the sample callback.
        if let (CompiledFetch::Path, Patterns::Strings(pats)) = (&self.fetch, &self.patterns) {
            let v = req.uri.path().as_bytes();
            // `str_match` for the two usual methods without `-i`, spelled out so that the
            // loop does not carry the other methods' code.
            return match (self.method, self.icase) {
                (MatchMethod::Beg, false) => pats.iter().any(|p| v.starts_with(p)),
                (MatchMethod::Str, false) => pats.iter().any(|p| v == p.as_slice()),
                (m, icase) => pats.iter().any(|p| str_match(m, icase, v, p)),
            };
        }
        let mut hit = false;
        for_each_sample(&self.fetch, req, &mut |s| {
            hit = self.match_sample(s);
            hit
        });
        hit
    }

    fn match_sample(&self, s: Sample<'_>) -> bool {
        match self.method {
            MatchMethod::Found => true,
            MatchMethod::Bool => match s {
                Sample::Bool(b) => b,
                Sample::Int(i) => i != 0,
                Sample::Str(v) => parse_int(v).is_some_and(|i| i != 0),
                Sample::Ip(_) => true,
            },
            MatchMethod::Int => {
                let v = match s {
                    Sample::Int(i) => Some(i),
                    Sample::Bool(b) => Some(i64::from(b)),
                    Sample::Str(v) => parse_int(v),
                    Sample::Ip(_) => None,
                };
                v.is_some_and(|v| self.in_ranges(v))
            }
            MatchMethod::Len => with_str(s, |v| self.in_ranges(v.len() as i64)),
            MatchMethod::Ip => {
                let ip = match s {
                    Sample::Ip(ip) => Some(ip),
                    Sample::Str(v) => std::str::from_utf8(v)
                        .ok()
                        .and_then(|v| v.trim().parse().ok()),
                    _ => None,
                };
                match (&self.patterns, ip) {
                    (Patterns::Nets(nets), Some(ip)) => nets.iter().any(|n| n.contains(ip)),
                    _ => false,
                }
            }
            MatchMethod::Reg => with_str(s, |v| match &self.patterns {
                Patterns::Regexes(r) => r.iter().any(|r| r.is_match(v)),
                _ => false,
            }),
            m => with_str(s, |v| match &self.patterns {
                Patterns::Strings(pats) => pats.iter().any(|p| str_match(m, self.icase, v, p)),
                Patterns::Methods(pats) => {
                    let known = KNOWN_METHODS.iter().any(|k| k.as_bytes() == v);
                    pats.iter().any(|p| match p {
                        MethodPattern::Known(k) => k.as_bytes() == v,
                        MethodPattern::Other(o) => !known && eq(self.icase, v, o),
                    })
                }
                _ => false,
            }),
        }
    }

    fn in_ranges(&self, v: i64) -> bool {
        match &self.patterns {
            Patterns::Ranges(r) => r.iter().any(|&(lo, hi)| lo <= v && v <= hi),
            _ => false,
        }
    }
}

fn parse_int(v: &[u8]) -> Option<i64> {
    std::str::from_utf8(v).ok()?.trim().parse().ok()
}

/// Runs `f` on the sample as a string (integers and addresses are formatted).
fn with_str(s: Sample<'_>, f: impl FnOnce(&[u8]) -> bool) -> bool {
    match s {
        Sample::Str(v) => f(v),
        Sample::Int(i) => f(itoa::Buffer::new().format(i).as_bytes()),
        Sample::Bool(b) => f(if b { b"1" } else { b"0" }),
        Sample::Ip(ip) => f(ip.to_string().as_bytes()),
    }
}

fn eq(icase: bool, a: &[u8], b: &[u8]) -> bool {
    if icase {
        a.eq_ignore_ascii_case(b)
    } else {
        a == b
    }
}

fn find(icase: bool, hay: &[u8], needle: &[u8]) -> bool {
    if needle.is_empty() {
        return true;
    }
    if !icase {
        return memchr::memmem::find(hay, needle).is_some();
    }
    hay.windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

/// String match methods; `p` is lower-cased already when `icase`.
#[inline(always)]
fn str_match(m: MatchMethod, icase: bool, v: &[u8], p: &[u8]) -> bool {
    match m {
        MatchMethod::Str => eq(icase, v, p),
        MatchMethod::Beg => v.len() >= p.len() && eq(icase, &v[..p.len()], p),
        MatchMethod::End => v.len() >= p.len() && eq(icase, &v[v.len() - p.len()..], p),
        MatchMethod::Sub => find(icase, v, p),
        MatchMethod::Dir => match_word(v, p, icase, b"/?"),
        MatchMethod::Dom => match_word(v, p, icase, b"/?.:"),
        _ => false,
    }
}

/// HAProxy's `match_word`: `p` (without its leading/trailing delimiters)
/// appears in `v` delimited by `delims` or the string's ends.
fn match_word(v: &[u8], p: &[u8], icase: bool, delims: &[u8]) -> bool {
    let is_delim = |c: u8| delims.contains(&c);
    let mut p = p;
    while let [first, rest @ ..] = p {
        if !is_delim(*first) {
            break;
        }
        p = rest;
    }
    while let [rest @ .., last] = p {
        if !is_delim(*last) {
            break;
        }
        p = rest;
    }
    if p.is_empty() || v.len() < p.len() {
        return false;
    }
    let mut may_match = true;
    for start in 0..=v.len() - p.len() {
        let c = v[start];
        if is_delim(c) {
            may_match = true;
            continue;
        }
        if !may_match {
            continue;
        }
        let end = start + p.len();
        if eq(icase, &v[start..end], p) && (end == v.len() || is_delim(v[end])) {
            return true;
        }
        may_match = false;
    }
    false
}

/// Calls `f` on each sample of the fetch until it returns true.
pub(crate) fn for_each_sample(
    fetch: &CompiledFetch,
    req: &RequestInfo<'_>,
    f: &mut dyn FnMut(Sample<'_>) -> bool,
) {
    match fetch {
        CompiledFetch::Path => {
            f(Sample::Str(req.uri.path().as_bytes()));
        }
        CompiledFetch::Url => {
            f(Sample::Str(url_text(req.uri).as_bytes()));
        }
        CompiledFetch::Query => {
            if let Some(q) = req.uri.query() {
                f(Sample::Str(q.as_bytes()));
            }
        }
        CompiledFetch::Method => {
            f(Sample::Str(req.method.as_str().as_bytes()));
        }
        CompiledFetch::Src => {
            f(Sample::Ip(req.src));
        }
        CompiledFetch::DstPort => {
            f(Sample::Int(i64::from(req.dst.port())));
        }
        CompiledFetch::Hdr { name, occ, split } => {
            header_values(req.headers, name, *split, *occ, f);
        }
        CompiledFetch::HdrCnt(name) => {
            let mut n = 0;
            header_values(req.headers, name, true, None, &mut |_| {
                n += 1;
                false
            });
            f(Sample::Int(n));
        }
        CompiledFetch::UrlParam(name) => {
            let Some(q) = req.uri.query() else { return };
            for p in q.split('&') {
                if let Some(v) = p
                    .strip_prefix(name.as_str())
                    .and_then(|r| r.strip_prefix('='))
                {
                    if f(Sample::Str(v.as_bytes())) {
                        return;
                    }
                }
            }
        }
        CompiledFetch::Cookie(name) => {
            for h in req.headers.get_all(http::header::COOKIE) {
                for p in parse_cookie_header(h.as_bytes()) {
                    if p.has_equal && p.name == name.as_bytes() && f(Sample::Str(p.value)) {
                        return;
                    }
                }
            }
        }
        CompiledFetch::ReqVer => {
            let v: &[u8] = match req.version {
                http::Version::HTTP_09 => b"0.9",
                http::Version::HTTP_10 => b"1.0",
                http::Version::HTTP_2 => b"2.0",
                http::Version::HTTP_3 => b"3.0",
                _ => b"1.1",
            };
            f(Sample::Str(v));
        }
        CompiledFetch::Always(b) => {
            f(Sample::Bool(*b));
        }
    }
}

/// The request target as sent: borrowed for origin form.
pub(crate) fn url_text(uri: &http::Uri) -> Cow<'_, str> {
    match (uri.scheme(), uri.path_and_query()) {
        (None, Some(pq)) => Cow::Borrowed(pq.as_str()),
        _ => Cow::Owned(uri.to_string()),
    }
}

/// Splits a header value on commas outside double quotes (a backslash
/// escapes the next byte inside quotes), trimming blanks. Calls `f` on each
/// part until it returns true; returns whether it did.
pub(crate) fn split_values(v: &[u8], f: &mut dyn FnMut(&[u8]) -> bool) -> bool {
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, &c) in v.iter().enumerate() {
        if escaped {
            escaped = false;
        } else if quoted {
            match c {
                b'\\' => escaped = true,
                b'"' => quoted = false,
                _ => {}
            }
        } else if c == b'"' {
            quoted = true;
        } else if c == b',' {
            if f(v[start..i].trim_ascii()) {
                return true;
            }
            start = i + 1;
        }
    }
    f(v[start..].trim_ascii())
}

/// Every value of a header (comma-split or whole), or the `occ`-th one
/// (1-based; negative counts from the last).
fn header_values(
    headers: &http::HeaderMap,
    name: &http::HeaderName,
    split: bool,
    occ: Option<i32>,
    f: &mut dyn FnMut(Sample<'_>) -> bool,
) {
    let each = |g: &mut dyn FnMut(&[u8]) -> bool| {
        for v in headers.get_all(name) {
            let b = v.as_bytes();
            let stop = if split {
                split_values(b, g)
            } else {
                g(b.trim_ascii())
            };
            if stop {
                return;
            }
        }
    };
    let want = match occ {
        None | Some(0) => {
            each(&mut |v| f(Sample::Str(v)));
            return;
        }
        Some(n) if n > 0 => n as i64,
        Some(n) => {
            let mut count = 0i64;
            each(&mut |_| {
                count += 1;
                false
            });
            count + 1 + i64::from(n)
        }
    };
    if want < 1 {
        return;
    }
    let mut i = 0;
    each(&mut |v| {
        i += 1;
        if i == want {
            f(Sample::Str(v));
            return true;
        }
        false
    });
}

#[cfg(test)]
mod haproxy_observed;
#[cfg(test)]
mod tests;
