//! `http-request` and `http-response` rule lists.
//!
//! Rules run in order; each one's condition is evaluated against the request
//! as modified by the rules before it. `deny` and `redirect` stop with a
//! [`Verdict`], `allow` stops with `Continue`, header and `normalize-uri`
//! actions mutate the request and go on.
//!
//! Header values and redirect targets are HAProxy log-format strings. The
//! supported subset: literal text, `%%`, `%ci` (client address), `%fi` and
//! `%fp` (destination address and port), and `%[fetch]` where fetch is one
//! the ACL engine knows (`path`, `url`, `query`, `method`, `src`, `dst_port`,
//! `req.ver`, `[req.]hdr(n[,occ])`, `[req.]fhdr(n[,occ])`, `[req.]hdr_cnt(n)`,
//! `url_param(n)`/`urlp(n)`, `req.cook(n)`/`cook(n)`) or `dst`, `base`, and
//! `ssl_fc` (always `0`: there is no TLS listener). Converters and other tags
//! are refused when the rules are built, rather than sent literally. As in
//! HAProxy's sample context, `hdr()`, `fhdr()` and `req.cook()` give the last
//! occurrence and `url_param()` the first (checked on HAProxy 2.6.12).
//!
//! In `http-response` rules, `hdr()`-style fetches in values read the
//! response headers, as HAProxy's direction-dependent `hdr` does, while ACLs
//! on request contents never match in their conditions (HAProxy 2.6.12).

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use http::{HeaderMap, HeaderName, HeaderValue};
use switchyard_config::{
    Fetch, HttpRequestAction, HttpRequestRule, HttpResponseAction, HttpResponseRule, NormalizeUri,
    RedirectKind,
};

use super::acl::{compile_fetch, for_each_sample, CompiledFetch, Sample};
use super::{normalize, CompiledAcls, RequestInfo};
use switchyard_config::Condition;

/// Outcome of the request rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Go on with routing and forwarding.
    Continue,
    /// Answer with this status (HAProxy's error page for it).
    Deny(u16),
    /// Answer with a redirect.
    Redirect { code: u16, location: String },
}

/// Compiled `http-request` rules of one proxy.
#[derive(Debug, Default)]
pub struct RequestRules {
    rules: Vec<(ReqAction, Option<Condition>)>,
}

/// Compiled `http-response` rules of one proxy.
#[derive(Debug, Default)]
pub struct ResponseRules {
    rules: Vec<(HeaderAction, Option<Condition>)>,
}

#[derive(Debug)]
enum ReqAction {
    Deny(u16),
    Allow,
    Header(HeaderAction),
    Redirect {
        kind: RedirectKind,
        target: Template,
        code: u16,
    },
    Normalize(NormalizeUri),
}

#[derive(Debug)]
enum HeaderAction {
    Set(HeaderName, Template),
    Add(HeaderName, Template),
    Del(HeaderName),
}

impl RequestRules {
    pub fn build(rules: &[HttpRequestRule]) -> Result<Self, String> {
        let rules = rules
            .iter()
            .map(|r| {
                let action = match &r.action {
                    HttpRequestAction::Deny { status } => ReqAction::Deny(*status),
                    HttpRequestAction::Allow => ReqAction::Allow,
                    HttpRequestAction::SetHeader { name, value } => {
                        ReqAction::Header(HeaderAction::Set(hname(name)?, Template::parse(value)?))
                    }
                    HttpRequestAction::AddHeader { name, value } => {
                        ReqAction::Header(HeaderAction::Add(hname(name)?, Template::parse(value)?))
                    }
                    HttpRequestAction::DelHeader { name } => {
                        ReqAction::Header(HeaderAction::Del(hname(name)?))
                    }
                    HttpRequestAction::Redirect { kind, target, code } => ReqAction::Redirect {
                        kind: *kind,
                        target: Template::parse(target)?,
                        code: *code,
                    },
                    HttpRequestAction::NormalizeUri(n) => ReqAction::Normalize(*n),
                };
                Ok((action, r.cond.clone()))
            })
            .collect::<Result<_, String>>()
            .map_err(|e: String| format!("http-request rule: {e}"))?;
        Ok(RequestRules { rules })
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Runs the rules over the request, mutating its headers and URI.
    pub fn apply(
        &self,
        acls: &CompiledAcls,
        req: &mut http::request::Parts,
        src: IpAddr,
        dst: SocketAddr,
    ) -> Verdict {
        for (action, cond) in &self.rules {
            let info = RequestInfo::from_parts(req, src, dst);
            if !acls.eval_opt(cond.as_ref(), &info) {
                continue;
            }
            match action {
                ReqAction::Deny(status) => return Verdict::Deny(*status),
                ReqAction::Allow => return Verdict::Continue,
                ReqAction::Redirect { kind, target, code } => {
                    let location = redirect_location(*kind, &target.expand(&info, &info), &info);
                    return Verdict::Redirect {
                        code: *code,
                        location,
                    };
                }
                ReqAction::Normalize(n) => {
                    if let Some(u) = normalize::apply(*n, &req.uri) {
                        req.uri = u;
                    }
                }
                ReqAction::Header(h) => {
                    let value = h.value(&info, &info);
                    h.apply(&mut req.headers, value);
                }
            }
        }
        Verdict::Continue
    }
}

impl ResponseRules {
    pub fn build(rules: &[HttpResponseRule]) -> Result<Self, String> {
        let rules = rules
            .iter()
            .map(|r| {
                let action = match &r.action {
                    HttpResponseAction::SetHeader { name, value } => {
                        HeaderAction::Set(hname(name)?, Template::parse(value)?)
                    }
                    HttpResponseAction::AddHeader { name, value } => {
                        HeaderAction::Add(hname(name)?, Template::parse(value)?)
                    }
                    HttpResponseAction::DelHeader { name } => HeaderAction::Del(hname(name)?),
                };
                Ok((action, r.cond.clone()))
            })
            .collect::<Result<_, String>>()
            .map_err(|e: String| format!("http-response rule: {e}"))?;
        Ok(ResponseRules { rules })
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Runs the rules over the response headers; `req` is the request being
    /// answered. Conditions follow [`CompiledAcls::eval_response`]; in values,
    /// `hdr()`-style fetches read the response headers.
    pub fn apply(&self, acls: &CompiledAcls, req: &RequestInfo<'_>, response: &mut HeaderMap) {
        for (action, cond) in &self.rules {
            if !acls.eval_response(cond.as_ref(), req) {
                continue;
            }
            let value = {
                let res_view = RequestInfo {
                    headers: response,
                    ..*req
                };
                action.value(req, &res_view)
            };
            action.apply(response, value);
        }
    }
}

impl HeaderAction {
    /// Expands the value before the headers are borrowed mutably.
    fn value(&self, req: &RequestInfo<'_>, hdrs: &RequestInfo<'_>) -> Option<HeaderValue> {
        match self {
            HeaderAction::Set(_, t) | HeaderAction::Add(_, t) => t.value(req, hdrs),
            HeaderAction::Del(_) => None,
        }
    }

    fn apply(&self, headers: &mut HeaderMap, value: Option<HeaderValue>) {
        match (self, value) {
            (HeaderAction::Set(n, _), Some(v)) => {
                headers.insert(n.clone(), v);
            }
            (HeaderAction::Add(n, _), Some(v)) => {
                headers.append(n.clone(), v);
            }
            (HeaderAction::Set(n, _), None) => {
                // A value that is not a valid header value: the header is removed.
                headers.remove(n);
            }
            (HeaderAction::Del(n), _) => {
                headers.remove(n);
            }
            (HeaderAction::Add(..), None) => {}
        }
    }
}

fn hname(name: &str) -> Result<HeaderName, String> {
    HeaderName::from_bytes(name.as_bytes()).map_err(|_| format!("invalid header name '{name}'"))
}

fn redirect_location(kind: RedirectKind, target: &str, req: &RequestInfo<'_>) -> String {
    let pq = req.uri.path_and_query().map_or("/", |p| p.as_str());
    match kind {
        RedirectKind::Location => target.to_string(),
        // A prefix of "/" adds nothing, so that self-redirects can be written.
        RedirectKind::Prefix if target == "/" => pq.to_string(),
        // No slash trimming: `prefix https://x/` gives `https://x//path`, as HAProxy does.
        RedirectKind::Prefix => format!("{target}{pq}"),
        RedirectKind::Scheme => {
            let host = req
                .headers
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .or_else(|| req.uri.authority().map(|a| a.as_str()))
                .unwrap_or("");
            format!("{target}://{host}{pq}")
        }
    }
}

// === log-format subset ===

#[derive(Debug)]
struct Template {
    parts: Vec<Part>,
    /// Pre-built value when the template is a constant.
    constant: Option<HeaderValue>,
}

#[derive(Debug)]
enum Part {
    Lit(String),
    ClientIp,
    DstIp,
    DstPort,
    /// `base`: the Host header followed by the path.
    Base,
    Fetch(CompiledFetch, Pick),
}

/// Which sample of a multi-valued fetch a log-format expression uses.
#[derive(Debug, Clone, Copy)]
enum Pick {
    First,
    Last,
}

impl Template {
    fn parse(s: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut rest = s;
        while let Some(p) = rest.find('%') {
            lit.push_str(&rest[..p]);
            let after = &rest[p + 1..];
            let (part, used) = if let Some(a) = after.strip_prefix('%') {
                lit.push('%');
                rest = a;
                continue;
            } else if let Some(expr) = after.strip_prefix('[') {
                let end = expr
                    .find(']')
                    .ok_or_else(|| format!("unterminated '%[' in '{s}'"))?;
                (parse_sample_expr(&expr[..end])?, end + 2)
            } else if after.starts_with("ci") {
                (Part::ClientIp, 2)
            } else if after.starts_with("fp") {
                (Part::DstPort, 2)
            } else if after.starts_with("fi") {
                (Part::DstIp, 2)
            } else {
                return Err(format!("unsupported log-format tag in '{s}'"));
            };
            if !lit.is_empty() {
                parts.push(Part::Lit(std::mem::take(&mut lit)));
            }
            parts.push(part);
            rest = &after[used..];
        }
        lit.push_str(rest);
        if !lit.is_empty() {
            parts.push(Part::Lit(lit));
        }
        let constant = match parts.as_slice() {
            [] => Some(HeaderValue::from_static("")),
            [Part::Lit(l)] => {
                Some(HeaderValue::from_str(l).map_err(|_| format!("invalid header value '{l}'"))?)
            }
            _ => None,
        };
        Ok(Template { parts, constant })
    }

    fn value(&self, req: &RequestInfo<'_>, hdrs: &RequestInfo<'_>) -> Option<HeaderValue> {
        match &self.constant {
            Some(v) => Some(v.clone()),
            None => HeaderValue::from_str(&self.expand(req, hdrs)).ok(),
        }
    }

    /// Expands the template; `hdrs` supplies the headers `hdr()` reads.
    fn expand(&self, req: &RequestInfo<'_>, hdrs: &RequestInfo<'_>) -> String {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Lit(l) => out.push_str(l),
                Part::ClientIp => {
                    let _ = write!(out, "{}", req.src);
                }
                Part::DstPort => {
                    let _ = write!(out, "{}", req.dst.port());
                }
                Part::DstIp => {
                    let _ = write!(out, "{}", req.dst.ip());
                }
                Part::Base => {
                    if let Some(h) = req.headers.get(http::header::HOST) {
                        out.push_str(&String::from_utf8_lossy(h.as_bytes()));
                    }
                    out.push_str(req.uri.path());
                }
                Part::Fetch(f, pick) => {
                    let view = if matches!(f, CompiledFetch::Hdr { .. } | CompiledFetch::HdrCnt(_))
                    {
                        hdrs
                    } else {
                        req
                    };
                    let mut last = None::<String>;
                    let first_only = matches!(pick, Pick::First);
                    for_each_sample(f, view, &mut |s| {
                        last = Some(sample_text(s));
                        first_only
                    });
                    if let Some(v) = last {
                        out.push_str(&v);
                    }
                }
            }
        }
        out
    }
}

fn sample_text(s: Sample<'_>) -> String {
    match s {
        Sample::Str(v) => String::from_utf8_lossy(v).into_owned(),
        Sample::Int(i) => i.to_string(),
        Sample::Ip(ip) => ip.to_string(),
        Sample::Bool(b) => u8::from(b).to_string(),
    }
}

/// `name` or `name(arg[,arg])`, no converters.
fn parse_sample_expr(e: &str) -> Result<Part, String> {
    let e = e.trim();
    if e.contains(',') && !e.contains('(') || e.contains("),") {
        return Err(format!("converters are not supported in '%[{e}]'"));
    }
    let (name, args) = match e.split_once('(') {
        Some((n, a)) => {
            let a = a
                .strip_suffix(')')
                .ok_or_else(|| format!("malformed sample expression '{e}'"))?;
            (n, a.split(',').map(str::trim).collect::<Vec<_>>())
        }
        None => (e, Vec::new()),
    };
    let arg = |i: usize| -> Result<String, String> {
        args.get(i)
            .filter(|a| !a.is_empty())
            .map(|a| a.to_string())
            .ok_or_else(|| format!("missing argument in '%[{e}]'"))
    };
    let occ = || -> Result<Option<i32>, String> {
        args.get(1)
            .map(|o| {
                o.parse::<i32>()
                    .map_err(|_| format!("bad occurrence in '%[{e}]'"))
            })
            .transpose()
    };
    match name {
        "dst" => return Ok(Part::DstIp),
        "base" => return Ok(Part::Base),
        // No TLS listener exists, as the configuration reader assumes.
        "ssl_fc" => return Ok(Part::Lit("0".into())),
        _ => {}
    }
    let (fetch, pick) = match name {
        "path" => (Fetch::Path, Pick::First),
        "url" => (Fetch::Url, Pick::First),
        "query" => (Fetch::Query, Pick::First),
        "method" => (Fetch::Method, Pick::First),
        "src" => (Fetch::Src, Pick::First),
        "dst_port" => (Fetch::DstPort, Pick::First),
        "req.ver" | "req_ver" => (Fetch::ReqVer, Pick::First),
        "hdr" | "req.hdr" | "res.hdr" => (
            Fetch::Hdr {
                name: arg(0)?,
                occ: occ()?,
            },
            Pick::Last,
        ),
        "fhdr" | "req.fhdr" | "res.fhdr" => (
            Fetch::Fhdr {
                name: arg(0)?,
                occ: occ()?,
            },
            Pick::Last,
        ),
        "hdr_cnt" | "req.hdr_cnt" | "res.hdr_cnt" => (Fetch::HdrCnt { name: arg(0)? }, Pick::First),
        "url_param" | "urlp" => (Fetch::UrlParam { name: arg(0)? }, Pick::First),
        "req.cook" | "cook" => (Fetch::Cookie { name: arg(0)? }, Pick::Last),
        _ => return Err(format!("unsupported sample fetch '%[{e}]'")),
    };
    Ok(Part::Fetch(compile_fetch(&fetch)?, pick))
}

#[cfg(test)]
mod tests;
