//! Cookie persistence (`cookie NAME insert|rewrite|prefix ...`), HAProxy 2.6 semantics.
//!
//! Request side ([`lookup`], [`prepare_request`]): every `Cookie` header is
//! parsed with [`parse_cookie_header`] (`;` and `,` delimit pairs, spaces around
//! names and `=` are ignored, `$`-attributes are skipped, quoted values keep
//! their delimiters). Each pair named exactly `NAME` is examined in order; its
//! value is split at the first `|` (dates, insert/rewrite/passive) or `~`
//! (prefix mode). The first occurrence naming a running server wins.
//!
//! Response side ([`apply_response`]): a server-emitted `Set-Cookie: NAME=...`
//! is deleted (insert, unless `preserve`), rewritten or prefixed, then the
//! persistence cookie is appended with HAProxy's exact layout:
//! `NAME=VALUE[|last[|first]]; path=/[; domain=D]...[; HttpOnly][; Secure][; ATTR]...`,
//! followed by `cache-control: private` with `nocache` on cacheable responses.
//!
//! Both sides work on any [`CookieFields`]: the proxy's own heads, so that the
//! usual exchange (the client's cookie names a running server, the server sets
//! none) never builds an `http::HeaderMap`, or a `HeaderMap` (rules, tests).

use std::sync::Arc;
use std::time::SystemTime;

use http::header::{CACHE_CONTROL, COOKIE, SET_COOKIE};
use http::{HeaderMap, HeaderName, HeaderValue};
use switchyard_config::{CookieConfig, CookieMode};

use super::ServerState;

mod cache;
mod header;

pub use cache::cacheable;
use header::is_sp;
pub use header::{parse_cookie_header, prepare_request, CookieIter, CookiePair};

/// Request-side verdict, HAProxy's log flag in brackets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestCookie {
    /// No cookie of that name (N).
    None,
    /// Names a running server: use it, bypassing the balancer (V).
    Valid(usize),
    /// Names only DOWN/MAINT servers (D); with `option persist` the caller may still use it.
    Down(usize),
    /// Names no server (I).
    Invalid,
    /// Idle for longer than `maxidle` (E).
    Expired,
    /// Older than `maxlife` (O).
    Old,
}

impl RequestCookie {
    /// The request cookie flag of HAProxy's log termination state.
    pub fn log_char(self) -> char {
        match self {
            RequestCookie::None => 'N',
            RequestCookie::Valid(_) => 'V',
            RequestCookie::Down(_) => 'D',
            RequestCookie::Invalid => 'I',
            RequestCookie::Expired => 'E',
            RequestCookie::Old => 'O',
        }
    }
}

/// What [`apply_response`] did, HAProxy's response cookie log flag in brackets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseCookie {
    /// Nothing (N).
    None,
    /// A cookie was inserted (I).
    Inserted,
    /// Only the dates of the client's valid cookie were refreshed (U).
    Updated,
    /// The server set the cookie and it was kept (P).
    Provided,
    /// The server's cookie was rewritten or prefixed (R).
    Rewritten,
    /// The server's cookie was deleted (D).
    Deleted,
}

impl ResponseCookie {
    pub fn log_char(self) -> char {
        match self {
            ResponseCookie::None => 'N',
            ResponseCookie::Inserted => 'I',
            ResponseCookie::Updated => 'U',
            ResponseCookie::Provided => 'P',
            ResponseCookie::Rewritten => 'R',
            ResponseCookie::Deleted => 'D',
        }
    }
}
// === The header fields the cookie code reads and writes ===

/// The two header fields cookie persistence reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CookieField {
    /// `Cookie` (requests).
    Cookie,
    /// `Set-Cookie` (responses).
    SetCookie,
}

impl CookieField {
    pub fn name(self) -> HeaderName {
        match self {
            CookieField::Cookie => COOKIE,
            CookieField::SetCookie => SET_COOKIE,
        }
    }
}

/// Header fields as cookie persistence needs them: the values of `Cookie` or
/// `Set-Cookie` read in order, a line appended, and a map for the rare rewrites
/// (blanks around `=`, a server's cookie deleted or rewritten, `indirect` and
/// `prefix` request rewrites, the cacheability check of `nocache`).
pub trait CookieFields {
    /// The values of every `which` line, in order.
    fn cookie_values(&self, which: CookieField) -> impl Iterator<Item = &[u8]>;
    /// Appends `name: value` after the other lines.
    fn append_value(&mut self, name: HeaderName, value: HeaderValue);
    /// The fields as a map (built if they are not one yet).
    fn fields_map(&mut self) -> &mut HeaderMap;
}

impl CookieFields for HeaderMap {
    fn cookie_values(&self, which: CookieField) -> impl Iterator<Item = &[u8]> {
        let name = match which {
            CookieField::Cookie => &COOKIE,
            CookieField::SetCookie => &SET_COOKIE,
        };
        self.get_all(name).into_iter().map(HeaderValue::as_bytes)
    }

    fn append_value(&mut self, name: HeaderName, value: HeaderValue) {
        self.append(name, value);
    }

    fn fields_map(&mut self) -> &mut HeaderMap {
        self
    }
}

// === Dates (maxidle / maxlife) ===

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Encodes the low 30 bits of `v` as 5 base64 characters, most significant first.
fn s30_to_b64(v: u32, out: &mut String) {
    for i in (0..5).rev() {
        out.push(B64[((v >> (6 * i)) & 0x3f) as usize] as char);
    }
}

/// Decodes 5 base64 characters; `None` on any other character.
fn b64_to_s30(s: &[u8]) -> Option<u32> {
    s.iter().take(5).try_fold(0u32, |acc, &c| {
        let d = B64.iter().position(|&b| b == c)? as u32;
        Some((acc << 6) | d)
    })
}

fn unix_secs(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

/// The server part and dates of one persistence cookie value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Parsed<'a> {
    server: &'a [u8],
    /// Seconds since the epoch, 0 when absent (HAProxy stores `value << 2`).
    last: i64,
    first: i64,
}

fn split_value<'a>(cfg: &CookieConfig, value: &'a [u8]) -> Parsed<'a> {
    if cfg.mode == CookieMode::Prefix {
        let end = memchr::memchr(b'~', value).unwrap_or(value.len());
        return Parsed {
            server: &value[..end],
            ..Parsed::default()
        };
    }
    let Some(bar) = memchr::memchr(b'|', value) else {
        return Parsed {
            server: value,
            ..Parsed::default()
        };
    };
    let mut p = Parsed {
        server: &value[..bar],
        ..Parsed::default()
    };
    let rest = &value[bar + 1..];
    if rest.len() >= 5 {
        if let Some(v) = b64_to_s30(&rest[..5]).filter(|&v| v > 0) {
            p.last = i64::from(v) << 2;
        }
    }
    if let Some(bar2) = memchr::memchr(b'|', rest) {
        let tail = &rest[bar2 + 1..];
        if tail.len() >= 5 {
            if let Some(v) = b64_to_s30(&tail[..5]).filter(|&v| v > 0) {
                p.first = i64::from(v) << 2;
            }
        }
    }
    p
}

/// Applies maxlife/maxidle: `Some(Old|Expired)` when the cookie must be ignored.
fn expiry(cfg: &CookieConfig, p: &Parsed<'_>, now: i64) -> Option<RequestCookie> {
    let too_far = |date: i64, max: Option<u32>| {
        max.is_some_and(|m| date != 0 && (now - date > i64::from(m) || date - now > 86400))
    };
    if too_far(p.first, cfg.maxlife) {
        Some(RequestCookie::Old)
    } else if too_far(p.last, cfg.maxidle) {
        Some(RequestCookie::Expired)
    } else {
        None
    }
}

/// Every persistence cookie occurrence, in order over all `Cookie` headers.
fn occurrences<'h>(
    cfg: &'h CookieConfig,
    headers: &'h (impl CookieFields + ?Sized),
) -> impl Iterator<Item = CookiePair<'h>> + 'h {
    headers
        .cookie_values(CookieField::Cookie)
        .flat_map(parse_cookie_header)
        .filter(move |p| p.has_equal && p.name == cfg.name.as_bytes())
}

// === Request side ===

/// Reads every `Cookie` header and decides which server, if any, the client is bound to.
///
/// The first occurrence naming a running server gives `Valid`. Otherwise the
/// last notable outcome wins: `Down` (first matching server, in declaration
/// order, of that occurrence), `Expired`/`Old`, else `Invalid`. This is
/// HAProxy's behaviour without `option persist`; see [`lookup_with`].
pub fn lookup(
    cfg: &CookieConfig,
    headers: &(impl CookieFields + ?Sized),
    servers: &[Arc<ServerState>],
    now: SystemTime,
) -> RequestCookie {
    lookup_with(cfg, headers, servers, now, false)
}

/// [`lookup`] with `option persist` taken into account: when `persist` is
/// set, the first server matching the cookie is used even if it is DOWN or
/// in MAINT (`Down(i)`, the caller sends the request there), and later
/// occurrences are not examined, as HAProxy 2.6 does (verified: with `b` in
/// maintenance, `SRVNAME=S2; SRVNAME=S1` goes to `b` with `option persist`,
/// to `a` without).
pub fn lookup_with(
    cfg: &CookieConfig,
    headers: &(impl CookieFields + ?Sized),
    servers: &[Arc<ServerState>],
    now: SystemTime,
    persist: bool,
) -> RequestCookie {
    let now = unix_secs(now);
    let mut verdict = RequestCookie::None;
    for pair in occurrences(cfg, headers) {
        let parsed = split_value(cfg, pair.value);
        if let Some(e) = expiry(cfg, &parsed, now) {
            verdict = e;
            continue;
        }
        let mut down = None;
        if !parsed.server.is_empty() {
            for (i, s) in servers.iter().enumerate() {
                if s.cookie.as_deref().map(str::as_bytes) != Some(parsed.server) {
                    continue;
                }
                if s.running() {
                    return RequestCookie::Valid(i);
                }
                if persist {
                    return RequestCookie::Down(i);
                }
                down.get_or_insert(i);
            }
        }
        verdict = match (down, verdict) {
            (Some(i), _) => RequestCookie::Down(i),
            (None, RequestCookie::Down(_) | RequestCookie::Expired | RequestCookie::Old) => verdict,
            (None, _) => RequestCookie::Invalid,
        };
    }
    verdict
}

// === Response side ===

/// The cookie of a `Set-Cookie` header (its first pair): the name (blanks
/// trimmed) and the value's start and end offsets.
fn set_cookie_pair(v: &[u8]) -> Option<(&[u8], usize, usize)> {
    let mut i = 0;
    while i < v.len() && is_sp(v[i]) {
        i += 1;
    }
    let eq = i + memchr::memchr(b'=', &v[i..])?;
    if v[i..eq].contains(&b';') {
        return None;
    }
    let name = v[i..eq].trim_ascii_end();
    let mut vb = eq + 1;
    while vb < v.len() && is_sp(v[vb]) {
        vb += 1;
    }
    let mut ve = vb;
    let mut quoted = false;
    while ve < v.len() {
        match v[ve] {
            b'"' => quoted = !quoted,
            b';' if !quoted => break,
            _ => {}
        }
        ve += 1;
    }
    while ve > vb && is_sp(v[ve - 1]) {
        ve -= 1;
    }
    Some((name, vb, ve))
}

/// Applies the response side: insert/refresh the cookie (exact HAProxy layout),
/// delete or keep a server-set cookie of that name (`preserve`), rewrite/prefix,
/// and `cache-control: private` with `nocache` on cacheable responses.
///
/// `request` is the verdict of [`lookup`]; the request counts as *direct* when
/// it names the server that finally served it (`Valid(i)`, or `Down(i)` used
/// through `option persist`). `request_headers` must hold the client's `Cookie`
/// headers as received: the request itself when [`prepare_request`] left them
/// alone, else the copy it returned. The dates of the client's cookie are read
/// there. Call this after the `http-response` rules, so the inserted header
/// cannot be removed by them, as in HAProxy.
#[allow(clippy::too_many_arguments)]
pub fn apply_response(
    cfg: &CookieConfig,
    request: RequestCookie,
    request_method: &http::Method,
    request_headers: &(impl CookieFields + ?Sized),
    served_by: &ServerState,
    status: http::StatusCode,
    response_headers: &mut (impl CookieFields + ?Sized),
    now: SystemTime,
) -> ResponseCookie {
    let direct =
        matches!(request, RequestCookie::Valid(i) | RequestCookie::Down(i) if i == served_by.index);
    let (mut flag, server_set) = server_side(cfg, direct, served_by, response_headers);
    if cfg.mode != CookieMode::Insert || (server_set && cfg.preserve) {
        return flag;
    }
    let now_s = unix_secs(now);
    let (last, first) = client_dates(cfg, request_headers, served_by, direct, now_s);

    let wanted = (!direct
        || ((cfg.maxidle.is_some() || last != 0) && (last == 0 || last < now_s))
        || (cfg.maxlife.is_some() && first == 0)
        || (cfg.maxlife.is_none() && first != 0))
        && (!cfg.postonly || request_method == http::Method::POST);
    if !wanted {
        return flag;
    }
    let value = set_cookie_value(cfg, served_by.cookie.as_deref(), first, now_s);
    if let Ok(v) = HeaderValue::from_str(&value) {
        // The cacheability of the response as the server sent it (the inserted
        // cookie does not change it).
        let private =
            cfg.nocache && cacheable(request_method, status, response_headers.fields_map());
        response_headers.append_value(SET_COOKIE, v);
        flag = if served_by.cookie.is_some() && direct {
            ResponseCookie::Updated
        } else {
            ResponseCookie::Inserted
        };
        if private {
            response_headers.append_value(CACHE_CONTROL, HeaderValue::from_static("private"));
        }
    }
    flag
}

/// Dates carried by the client's cookie: those of the occurrence naming the
/// serving server when direct, else the running values over all occurrences
/// (reset by an expired one), as HAProxy's transaction keeps them.
fn client_dates(
    cfg: &CookieConfig,
    headers: &(impl CookieFields + ?Sized),
    served_by: &ServerState,
    direct: bool,
    now: i64,
) -> (i64, i64) {
    let (mut last, mut first) = (0, 0);
    for pair in occurrences(cfg, headers) {
        let p = split_value(cfg, pair.value);
        if p.last != 0 {
            last = p.last;
        }
        if p.first != 0 {
            first = p.first;
        }
        if expiry(cfg, &p, now).is_some() {
            (last, first) = (0, 0);
            continue;
        }
        if direct && served_by.cookie.as_deref().map(str::as_bytes) == Some(p.server) {
            return (p.last, p.first);
        }
    }
    (last, first)
}

/// The `Set-Cookie` value HAProxy inserts.
fn set_cookie_value(cfg: &CookieConfig, srv_cookie: Option<&str>, first: i64, now: i64) -> String {
    let mut out = String::with_capacity(64);
    out.push_str(&cfg.name);
    match srv_cookie {
        None => out.push_str("=; Expires=Thu, 01-Jan-1970 00:00:01 GMT; path=/"),
        Some(c) => {
            out.push('=');
            out.push_str(c);
            if cfg.maxidle.is_some() || cfg.maxlife.is_some() {
                let stamp = ((now + 3) >> 2) as u32;
                out.push('|');
                s30_to_b64(stamp, &mut out);
                if cfg.maxlife.is_some() {
                    out.push('|');
                    s30_to_b64(
                        if first != 0 {
                            (first >> 2) as u32
                        } else {
                            stamp
                        },
                        &mut out,
                    );
                }
            }
            out.push_str("; path=/");
        }
    }
    for d in &cfg.domains {
        out.push_str("; domain=");
        out.push_str(d);
    }
    if cfg.httponly {
        out.push_str("; HttpOnly");
    }
    if cfg.secure {
        out.push_str("; Secure");
    }
    for a in &cfg.attrs {
        out.push_str("; ");
        out.push_str(a);
    }
    out
}

/// Handles `Set-Cookie: NAME=...` emitted by the server. Returns the log flag
/// and whether such a cookie was present.
///
/// As HAProxy does whenever a persistence cookie is configured, blanks around
/// the `=` of every `Set-Cookie` header's cookie are removed first
/// (`other = 1 ; path=/` -> `other=1 ; path=/`), even with `preserve`.
fn server_side(
    cfg: &CookieConfig,
    direct: bool,
    served_by: &ServerState,
    fields: &mut (impl CookieFields + ?Sized),
) -> (ResponseCookie, bool) {
    let name = cfg.name.as_bytes();
    let needs_work = fields
        .cookie_values(CookieField::SetCookie)
        .any(|v| set_cookie_pair(v).is_some_and(|(n, vb, _)| n == name || !is_normal(v, n, vb)));
    if !needs_work {
        return (ResponseCookie::None, false);
    }
    let headers = fields.fields_map();
    let delete = !cfg.preserve && (cfg.mode == CookieMode::Insert || (direct && cfg.indirect));
    let srv_cookie = served_by.cookie.as_deref().filter(|_| !cfg.preserve);
    let (mut flag, mut found) = (ResponseCookie::None, false);
    let old: Vec<HeaderValue> = headers.get_all(SET_COOKIE).iter().cloned().collect();
    let mut kept = Vec::with_capacity(old.len());
    for v in old {
        let Some(normal) = normalize_set_cookie(v.as_bytes()) else {
            kept.push(v);
            continue;
        };
        let Some((n, vb, ve)) = set_cookie_pair(&normal) else {
            kept.push(v);
            continue;
        };
        if n != name {
            kept.push(HeaderValue::from_bytes(&normal).unwrap_or(v));
            continue;
        }
        found = true;
        let with: Option<Vec<u8>> = match (cfg.mode, srv_cookie) {
            _ if delete => {
                flag = ResponseCookie::Deleted;
                continue;
            }
            (CookieMode::Rewrite, Some(c)) => Some(c.as_bytes().to_vec()),
            (CookieMode::Prefix, Some(c)) => {
                let mut w = Vec::with_capacity(c.len() + 1 + ve - vb);
                w.extend_from_slice(c.as_bytes());
                w.push(b'~');
                w.extend_from_slice(&normal[vb..ve]);
                Some(w)
            }
            _ => None,
        };
        match with {
            Some(w) => {
                kept.push(splice(&normal, vb, ve, &w).unwrap_or(v));
                flag = ResponseCookie::Rewritten;
            }
            None => {
                kept.push(HeaderValue::from_bytes(&normal).unwrap_or(v));
                if flag == ResponseCookie::None {
                    flag = ResponseCookie::Provided;
                }
            }
        }
    }
    headers.remove(SET_COOKIE);
    for v in kept {
        headers.append(SET_COOKIE, v);
    }
    (flag, found)
}

/// Whether [`normalize_set_cookie`] would leave `v` as it is, given its
/// [`set_cookie_pair`] name `n` and value start `vb` (no copy made).
fn is_normal(v: &[u8], n: &[u8], vb: usize) -> bool {
    // Normal: `v` starts with the name, then `=`, then the value.
    v.as_ptr() == n.as_ptr() && vb == n.len() + 1
}

/// The `Set-Cookie` value with leading blanks and blanks around the first
/// `=` removed; `None` when it has no `name=value` pair.
fn normalize_set_cookie(v: &[u8]) -> Option<Vec<u8>> {
    let (name, vb, _) = set_cookie_pair(v)?;
    let mut out = Vec::with_capacity(v.len());
    out.extend_from_slice(name);
    out.push(b'=');
    out.extend_from_slice(&v[vb..]);
    Some(out)
}

/// `b` with bytes `from..to` replaced by `with`.
fn splice(b: &[u8], from: usize, to: usize, with: &[u8]) -> Option<HeaderValue> {
    let mut out = Vec::with_capacity(b.len() + with.len());
    out.extend_from_slice(&b[..from]);
    out.extend_from_slice(with);
    out.extend_from_slice(&b[to..]);
    HeaderValue::from_bytes(&out).ok()
}
#[cfg(test)]
mod props;
#[cfg(test)]
mod tests;
