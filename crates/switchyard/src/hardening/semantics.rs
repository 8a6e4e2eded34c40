//! Checks on a parsed request head: framing headers, Host, target form, Expect.

use std::cell::RefCell;

use http::header::{CONNECTION, UPGRADE};
use http::{HeaderMap, HeaderValue, Method, Uri, Version};

use super::{is_tchar, Reject};
use crate::proxy::h1::{ascii_str, FieldSet, Known};

/// Transfer-codings switchyard knows how to pass on (RFC 9112 §7, IANA registry).
/// Anything else is answered with 501 (RFC 9112 §6.1).
const KNOWN_CODINGS: [&str; 5] = ["chunked", "gzip", "x-gzip", "deflate", "compress"];

/// Semantic checks on a parsed request head. Decisions, where the RFCs allow several:
/// - `Transfer-Encoding` with `Content-Length` is refused (400) rather than re-framed:
///   no legitimate client sends both, and refusing removes the whole CL.TE/TE.CL class
///   (nginx does the same; HAProxy re-frames and closes);
/// - `chunked` must be the last coding and appear once over all `Transfer-Encoding`
///   lines; codings take no parameters; unknown codings are a 501; any
///   `Transfer-Encoding` in HTTP/1.0 is a 400;
/// - `Content-Length` is `1*DIGIT` (a list of one repeated value is accepted), fits in u64;
/// - `Host`: required in HTTP/1.1, at most one line, `uri-host [":" port]` without
///   userinfo, `,`, `/`, `?`, `#` or whitespace; with an absolute-form target the Host
///   must name the same authority, case-insensitively and with the scheme's default port
///   optional (a mismatch is refused, not silently rewritten, so that routing, ACLs and
///   logs can never disagree on the host);
/// - target form: origin-form starts with `/`; `*` only with OPTIONS; absolute-form
///   only `http`/`https` without userinfo; authority-form and CONNECT are refused
///   (switchyard is a reverse proxy, not a tunnel: 501);
/// - `Expect`: only `100-continue` (case-insensitive); anything else is a 417 so that an
///   obfuscated expectation can never change how the body is framed downstream.
pub fn check_request(
    method: &Method,
    uri: &Uri,
    version: Version,
    headers: &(impl FieldSet + ?Sized),
) -> Result<(), Reject> {
    check_framing(version, headers)?;
    check_target(method, uri)?;
    check_host(uri, version, headers)?;
    check_expect(headers)
}

fn tokens(v: &[u8]) -> Result<impl Iterator<Item = &str>, Reject> {
    let s = ascii_str(v).ok_or(Reject::bad("non-ASCII framing header"))?;
    Ok(s.split(',').map(|t| t.trim_matches([' ', '\t'])))
}

fn check_framing(version: Version, headers: &(impl FieldSet + ?Sized)) -> Result<(), Reject> {
    let mut saw_te = false;
    let mut chunked_at: Option<usize> = None;
    let mut n = 0usize;
    for v in headers.values(Known::TransferEncoding) {
        saw_te = true;
        for t in tokens(v)? {
            if t.is_empty() {
                continue; // RFC 9110 §5.6.1: empty list elements are ignored.
            }
            n += 1;
            if !t.bytes().all(is_tchar) {
                return Err(Reject::bad(
                    "transfer-coding with parameters or invalid characters",
                ));
            }
            if !KNOWN_CODINGS.iter().any(|c| c.eq_ignore_ascii_case(t)) {
                return Err(Reject {
                    status: 501,
                    reason: "unknown transfer-coding",
                });
            }
            if t.eq_ignore_ascii_case("chunked") {
                if chunked_at.is_some() {
                    return Err(Reject::bad("chunked applied more than once"));
                }
                chunked_at = Some(n);
            }
        }
    }
    if saw_te {
        if version == Version::HTTP_10 {
            return Err(Reject::bad("Transfer-Encoding in HTTP/1.0"));
        }
        if chunked_at.is_none() || chunked_at != Some(n) {
            return Err(Reject::bad("chunked is not the final transfer-coding"));
        }
        if headers.has(Known::ContentLength) {
            return Err(Reject::bad("both Transfer-Encoding and Content-Length"));
        }
        return Ok(());
    }
    let mut len: Option<u64> = None;
    for v in headers.values(Known::ContentLength) {
        for t in tokens(v)? {
            if t.is_empty() || t.len() > 20 || !t.bytes().all(|b| b.is_ascii_digit()) {
                return Err(Reject::bad("invalid Content-Length"));
            }
            let n: u64 = t
                .parse()
                .map_err(|_| Reject::bad("Content-Length overflows"))?;
            if len.is_some_and(|l| l != n) {
                return Err(Reject::bad("conflicting Content-Length values"));
            }
            len = Some(n);
        }
    }
    Ok(())
}

/// Every `%` in the path starts a `%XX` escape (RFC 3986 §2.1). A stray `%` is
/// refused rather than forwarded: the default normalisation decodes escapes of
/// unreserved characters in one pass, and a stray `%` followed by an escaped
/// hex digit (`/%6%39nternal`) would otherwise become a new escape
/// (`/%69nternal`) after the ACLs matched, which the server decodes to
/// `/internal` (found by tests/properties.rs). nginx answers 400 to such paths
/// too; HAProxy 2.6 forwards them as they are (it does not normalise).
fn check_escapes(path: &str) -> Result<(), Reject> {
    let b = path.as_bytes();
    let mut at = 0;
    while let Some(i) = memchr::memchr(b'%', &b[at..]) {
        let i = at + i;
        match (b.get(i + 1), b.get(i + 2)) {
            (Some(h), Some(l)) if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => at = i + 3,
            _ => return Err(Reject::bad("invalid percent-encoding in path")),
        }
    }
    Ok(())
}

fn check_target(method: &Method, uri: &Uri) -> Result<(), Reject> {
    check_escapes(uri.path())?;
    if method == Method::CONNECT {
        return Err(Reject {
            status: 501,
            reason: "CONNECT is not supported",
        });
    }
    match uri.scheme_str() {
        Some(s) if s.eq_ignore_ascii_case("http") || s.eq_ignore_ascii_case("https") => {
            let auth = uri
                .authority()
                .ok_or(Reject::bad("absolute-form without authority"))?;
            if auth.as_str().contains('@') {
                return Err(Reject::bad("userinfo in request-target"));
            }
            if auth.host().is_empty() {
                return Err(Reject::bad("empty host in request-target"));
            }
            Ok(())
        }
        Some(_) => Err(Reject::bad("request-target scheme is not http or https")),
        None if uri.authority().is_some() => Err(Reject::bad("authority-form outside CONNECT")),
        // Origin-form first (the usual target): `*` does not start with `/`, so the order
        // of these two arms decides nothing, and `Uri == str` is ~60 instructions.
        None if uri.path().starts_with('/') => Ok(()),
        None if uri == "*" => {
            if method == Method::OPTIONS {
                Ok(())
            } else {
                Err(Reject::bad("asterisk-form outside OPTIONS"))
            }
        }
        None => Err(Reject::bad("request-target is not in origin-form")),
    }
}

fn check_host(
    uri: &Uri,
    version: Version,
    headers: &(impl FieldSet + ?Sized),
) -> Result<(), Reject> {
    let mut hosts = headers.values(Known::Host);
    let host = hosts.next();
    if hosts.next().is_some() {
        return Err(Reject::bad("more than one Host"));
    }
    let Some(host) = host else {
        if version == Version::HTTP_11 {
            return Err(Reject::bad("HTTP/1.1 request without Host"));
        }
        return Ok(());
    };
    let h = host;
    if !valid_host_cached(h) {
        return Err(Reject::bad("invalid Host"));
    }
    if let Some(auth) = uri.authority().filter(|_| uri.scheme().is_some()) {
        let default_port: &[u8] = if uri
            .scheme_str()
            .is_some_and(|s| s.eq_ignore_ascii_case("https"))
        {
            b"443"
        } else {
            b"80"
        };
        let canon = |a: &[u8]| -> Vec<u8> {
            let a = a.to_ascii_lowercase();
            match a.iter().rposition(|&b| b == b':') {
                Some(i)
                    if !a[i + 1..].contains(&b']')
                        && (a[i + 1..].is_empty() || a[i + 1..] == *default_port) =>
                {
                    a[..i].to_vec()
                }
                _ => a,
            }
        };
        if canon(auth.as_str().as_bytes()) != canon(h) {
            return Err(Reject::bad(
                "Host differs from the request-target authority",
            ));
        }
    }
    Ok(())
}

/// `uri-host [":" port]` (RFC 9110 §7.2, RFC 3986 §3.2.2), minus `,` (a Host that looks
/// like a list is refused, as the proxy-security rules require). An empty Host is
/// valid syntax (RFC 9112 §3.2) and accepted.
pub(crate) fn valid_host(h: &[u8]) -> bool {
    if h.first() == Some(&b'[') {
        return valid_ip_literal_host(h);
    }
    // `:` is not a reg-name byte, so the run of reg-name bytes stops at the first colon,
    // where the port starts; any other byte there makes the host invalid.
    let host_len = reg_name_len(h);
    match h.get(host_len) {
        None => true,
        Some(b':') => valid_port(&h[host_len + 1..]),
        Some(_) => false,
    }
}

/// The longest Host value [`valid_host_cached`] remembers.
const HOST_CACHE: usize = 64;

/// The last Host value [`valid_host`] accepted on this thread (`len` > [`HOST_CACHE`]:
/// none yet).
struct LastHost {
    len: usize,
    bytes: [u8; HOST_CACHE],
}

thread_local! {
    static LAST_HOST: RefCell<LastHost> = const {
        RefCell::new(LastHost {
            len: usize::MAX,
            bytes: [0; HOST_CACHE],
        })
    };
}

/// [`valid_host`], remembering the last value it accepted on this thread: the requests of
/// a keep-alive connection (and most connections of a worker) carry the same Host, and a
/// comparison costs a third of the check. Only an accepted value is remembered and it
/// is compared whole, so every other value is checked: the verdict is `valid_host`'s
/// (a pure function of the bytes), whatever was seen before.
fn valid_host_cached(h: &[u8]) -> bool {
    if h.len() > HOST_CACHE {
        return valid_host(h);
    }
    let seen = LAST_HOST.with(|c| {
        let c = c.borrow();
        c.len == h.len() && c.bytes[..h.len()] == *h
    });
    if seen {
        return true;
    }
    let ok = valid_host(h);
    if ok {
        LAST_HOST.with(|c| {
            let mut c = c.borrow_mut();
            c.bytes[..h.len()].copy_from_slice(h);
            c.len = h.len();
        });
    }
    ok
}

/// The length of the run of reg-name bytes at the start of `h`: eight table look-ups per
/// step while they all hold, then byte by byte.
#[inline]
fn reg_name_len(h: &[u8]) -> usize {
    let ok = |b: u8| REG_NAME[usize::from(b)];
    let mut chunks = h.chunks_exact(8);
    let mut n = 0;
    for c in &mut chunks {
        if !(ok(c[0]) & ok(c[1]) & ok(c[2]) & ok(c[3]) & ok(c[4]) & ok(c[5]) & ok(c[6]) & ok(c[7]))
        {
            break;
        }
        n += 8;
    }
    n + h[n..].iter().position(|&b| !ok(b)).unwrap_or(h.len() - n)
}

/// `"[" IP-literal "]" [":" port]`: hex digits, `:` and `.` between the brackets.
fn valid_ip_literal_host(h: &[u8]) -> bool {
    let Some(close) = h.iter().position(|&b| b == b']') else {
        return false;
    };
    let lit = &h[1..close];
    if lit.is_empty()
        || !lit
            .iter()
            .all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
    {
        return false;
    }
    match &h[close + 1..] {
        [] => true,
        [b':', p @ ..] => valid_port(p),
        _ => false,
    }
}

/// `port = *DIGIT` (RFC 3986 §3.2.3), at most 65535; empty is allowed.
fn valid_port(p: &[u8]) -> bool {
    if p.len() > 5 {
        return false;
    }
    let mut v = 0u32;
    for &b in p {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return false;
        }
        v = v * 10 + u32::from(d);
    }
    v <= 65535
}

/// `reg-name` bytes: unreserved, `%` of pct-encoded, sub-delims except `,`.
const fn reg_name(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'%'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b';'
                | b'='
        )
}

static REG_NAME: [bool; 256] = byte_table!(reg_name);

fn check_expect(headers: &(impl FieldSet + ?Sized)) -> Result<(), Reject> {
    for v in headers.values(Known::Expect) {
        for t in tokens(v).map_err(|_| Reject {
            status: 417,
            reason: "unsupported expectation",
        })? {
            if !t.eq_ignore_ascii_case("100-continue") {
                return Err(Reject {
                    status: 417,
                    reason: "unsupported expectation",
                });
            }
        }
    }
    Ok(())
}

/// Whether [`strip_h2c`] would change anything: an `HTTP2-Settings` line, or an `Upgrade`
/// value naming `h2c` (or not ASCII).
pub(crate) fn offers_h2c(headers: &(impl FieldSet + ?Sized)) -> bool {
    headers.has(Known::Http2Settings)
        || headers
            .values(Known::Upgrade)
            .any(|v| ascii_str(v).is_none_or(|s| s.split(',').any(|t| is_h2c(t.trim()))))
}

/// Removes an `h2c` upgrade (RFC 9113 §3.1 "h2c" is not supported over a proxy; tunnelling
/// it would let the client talk HTTP/2 to the origin past every proxy rule - Bishop Fox
/// 2020): drops `HTTP2-Settings`, the `h2c` protocol from `Upgrade` (the whole header
/// when nothing else is left) and the matching `Connection` tokens. Returns whether
/// anything was removed. Other upgrades (WebSocket) are left to the caller.
pub fn strip_h2c(headers: &mut HeaderMap) -> bool {
    let mut changed = headers.remove("http2-settings").is_some();
    let upgrades: Vec<HeaderValue> = headers.get_all(UPGRADE).iter().cloned().collect();
    if upgrades.iter().any(|v| {
        v.to_str()
            .map_or(true, |s| s.split(',').any(|t| is_h2c(t.trim())))
    }) {
        changed = true;
        headers.remove(UPGRADE);
        let kept: Vec<&str> = upgrades
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|s| s.split(','))
            .map(str::trim)
            .filter(|t| !t.is_empty() && !is_h2c(t))
            .collect();
        if !kept.is_empty() {
            if let Ok(v) = HeaderValue::from_str(&kept.join(", ")) {
                headers.insert(UPGRADE, v);
            }
        }
    }
    if changed {
        let upgrade_left = headers.contains_key(UPGRADE);
        let conns: Vec<HeaderValue> = headers.get_all(CONNECTION).iter().cloned().collect();
        headers.remove(CONNECTION);
        let kept: Vec<&str> = conns
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|s| s.split(','))
            .map(str::trim)
            .filter(|t| {
                !t.is_empty()
                    && !t.eq_ignore_ascii_case("http2-settings")
                    && (upgrade_left || !t.eq_ignore_ascii_case("upgrade"))
            })
            .collect();
        if !kept.is_empty() {
            if let Ok(v) = HeaderValue::from_str(&kept.join(", ")) {
                headers.insert(CONNECTION, v);
            }
        }
    }
    changed
}

/// Removes hop-by-hop fields before forwarding (RFC 9110 §7.6.1): `Keep-Alive`,
/// `Proxy-Connection`, `TE`, and every field named by a `Connection` option, except
/// those that carry framing or routing (`Content-Length`, `Transfer-Encoding`, `Host`) and
/// the upgrade machinery (`Upgrade`, which the caller handles with the `Connection`
/// field itself). Fields the proxy adds (`X-Forwarded-For`) must be added after this
/// call, so a client's `Connection: x-forwarded-for` only removes the client's own copy.
/// Returns how many field lines were removed.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) -> usize {
    let named: Vec<String> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|s| s.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| {
            !t.is_empty()
                && !matches!(
                    t.as_str(),
                    "close"
                        | "keep-alive"
                        | "upgrade"
                        | "connection"
                        | "content-length"
                        | "transfer-encoding"
                        | "host"
                )
        })
        .collect();
    let mut removed = 0;
    for name in named
        .iter()
        .map(String::as_str)
        .chain(["keep-alive", "proxy-connection", "te"])
    {
        if let Ok(n) = http::HeaderName::from_bytes(name.as_bytes()) {
            if let http::header::Entry::Occupied(e) = headers.entry(n) {
                removed += e.remove_entry_mult().1.count();
            }
        }
    }
    removed
}

fn is_h2c(t: &str) -> bool {
    t.split('/')
        .next()
        .is_some_and(|p| p.trim().eq_ignore_ascii_case("h2c"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::{CONTENT_LENGTH, HOST};

    fn head(line: &str, fields: &[(&str, &[u8])]) -> (Method, Uri, Version, HeaderMap) {
        let mut it = line.split(' ');
        let m = Method::from_bytes(it.next().unwrap().as_bytes()).unwrap();
        let u: Uri = it.next().unwrap().parse().unwrap();
        let v = if it.next() == Some("HTTP/1.0") {
            Version::HTTP_10
        } else {
            Version::HTTP_11
        };
        let mut h = HeaderMap::new();
        for (n, val) in fields {
            h.append(
                http::HeaderName::from_bytes(n.as_bytes()).unwrap(),
                HeaderValue::from_bytes(val).unwrap(),
            );
        }
        (m, u, v, h)
    }

    fn check(line: &str, fields: &[(&str, &[u8])]) -> Result<(), u16> {
        let (m, u, v, h) = head(line, fields);
        check_request(&m, &u, v, &h).map_err(|r| r.status)
    }

    const HOST_A: (&str, &[u8]) = ("host", b"a.example");

    #[test]
    fn framing() {
        let ok = |f: &[(&str, &[u8])]| check("POST / HTTP/1.1", &[&[HOST_A], f].concat());
        assert_eq!(ok(&[("transfer-encoding", b"chunked")]), Ok(()));
        assert_eq!(ok(&[("transfer-encoding", b"CHUNKED")]), Ok(()));
        assert_eq!(ok(&[("transfer-encoding", b"gzip, chunked")]), Ok(()));
        assert_eq!(ok(&[("transfer-encoding", b",chunked")]), Ok(()));
        assert_eq!(
            ok(&[
                ("transfer-encoding", b"gzip"),
                ("transfer-encoding", b"chunked")
            ]),
            Ok(())
        );
        assert_eq!(ok(&[("transfer-encoding", b"chunked, chunked")]), Err(400));
        assert_eq!(
            ok(&[
                ("transfer-encoding", b"chunked"),
                ("transfer-encoding", b"chunked")
            ]),
            Err(400)
        );
        assert_eq!(ok(&[("transfer-encoding", b"chunked, gzip")]), Err(400));
        assert_eq!(
            ok(&[
                ("transfer-encoding", b"chunked"),
                ("transfer-encoding", b"gzip")
            ]),
            Err(400)
        );
        assert_eq!(ok(&[("transfer-encoding", b"identity, chunked")]), Err(501));
        assert_eq!(ok(&[("transfer-encoding", b"xchunked")]), Err(501));
        assert_eq!(ok(&[("transfer-encoding", b"\"chunked\"")]), Err(400));
        assert_eq!(ok(&[("transfer-encoding", b"chunked;q=1")]), Err(400));
        assert_eq!(
            ok(&[("transfer-encoding", b"chunked"), ("content-length", b"5")]),
            Err(400)
        );
        assert_eq!(
            check("POST / HTTP/1.0", &[("transfer-encoding", b"chunked")]),
            Err(400)
        );
        assert_eq!(ok(&[("content-length", b"0005")]), Ok(()));
        assert_eq!(ok(&[("content-length", b"5, 5")]), Ok(()));
        assert_eq!(
            ok(&[("content-length", b"5"), ("content-length", b"5")]),
            Ok(())
        );
        for bad in [
            &b"+5"[..],
            b"-1",
            b"0x5",
            b"1_0",
            b"1 0",
            b"",
            b",",
            b"5a",
            b"99999999999999999999",
            b"5, 6",
        ] {
            assert_eq!(
                ok(&[("content-length", bad)]),
                Err(400),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(
            ok(&[("content-length", b"5"), ("content-length", b"6")]),
            Err(400)
        );
        assert_eq!(ok(&[("content-length", b"18446744073709551615")]), Ok(()));
    }

    #[test]
    fn target_forms() {
        assert_eq!(check("OPTIONS * HTTP/1.1", &[HOST_A]), Ok(()));
        assert_eq!(check("GET * HTTP/1.1", &[HOST_A]), Err(400));
        assert_eq!(check("GET a.example:80 HTTP/1.1", &[HOST_A]), Err(400));
        assert_eq!(check("CONNECT a.example:443 HTTP/1.1", &[HOST_A]), Err(501));
        assert_eq!(check("GET http://a.example/x HTTP/1.1", &[HOST_A]), Ok(()));
        assert_eq!(check("GET HTTP://A.EXAMPLE/x HTTP/1.1", &[HOST_A]), Ok(()));
        assert_eq!(
            check("GET http://a.example/x HTTP/1.1", &[("host", b"b.example")]),
            Err(400)
        );
        assert_eq!(
            check(
                "GET http://u@a.example/ HTTP/1.1",
                &[("host", b"u@a.example")]
            ),
            Err(400)
        );
        assert_eq!(check("GET ftp://a.example/ HTTP/1.1", &[HOST_A]), Err(400));
    }

    #[test]
    fn host_rules() {
        assert_eq!(check("GET / HTTP/1.1", &[]), Err(400));
        assert_eq!(check("GET / HTTP/1.0", &[]), Ok(()));
        assert_eq!(check("GET / HTTP/1.1", &[HOST_A, HOST_A]), Err(400));
        assert_eq!(check("GET / HTTP/1.0", &[HOST_A, ("host", b"b")]), Err(400));
        for good in [
            &b"a.example"[..],
            b"a.example:8080",
            b"[::1]:80",
            b"[::1]",
            b"127.0.0.1",
            b"",
            b"a:",
            b"xn--bcher-kva.example",
        ] {
            assert_eq!(
                check("GET / HTTP/1.1", &[("host", good)]),
                Ok(()),
                "{}",
                String::from_utf8_lossy(good)
            );
        }
        for bad in [
            &b"a b"[..],
            b"a/b",
            b"user@a",
            b"a, b",
            b"a:xyz",
            b"a?b",
            b"a#b",
            b"[::1",
            b"a:99999",
            b"[::1]x",
            b"a:1:2",
        ] {
            assert_eq!(
                check("GET / HTTP/1.1", &[("host", bad)]),
                Err(400),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn expectations() {
        let c = |v: &[u8]| {
            check(
                "POST / HTTP/1.1",
                &[HOST_A, ("content-length", b"5"), ("expect", v)],
            )
        };
        assert_eq!(c(b"100-continue"), Ok(()));
        assert_eq!(c(b"100-Continue"), Ok(()));
        assert_eq!(c(b"y 100-continue"), Err(417));
        assert_eq!(c(b"100-continue, x"), Err(417));
    }

    #[test]
    fn h2c_is_stripped_websocket_kept() {
        let (_, _, _, mut h) = head(
            "GET / HTTP/1.1",
            &[
                ("upgrade", b"h2c"),
                ("http2-settings", b"AAMA"),
                ("connection", b"Upgrade, HTTP2-Settings, keep-alive"),
            ],
        );
        assert!(strip_h2c(&mut h));
        assert!(h.get(UPGRADE).is_none() && h.get("http2-settings").is_none());
        assert_eq!(h.get(CONNECTION).unwrap(), "keep-alive");

        let (_, _, _, mut h) = head(
            "GET / HTTP/1.1",
            &[("upgrade", b"websocket"), ("connection", b"Upgrade")],
        );
        assert!(!strip_h2c(&mut h));
        assert_eq!(h.get(UPGRADE).unwrap(), "websocket");
        assert_eq!(h.get(CONNECTION).unwrap(), "Upgrade");

        let (_, _, _, mut h) = head(
            "GET / HTTP/1.1",
            &[("upgrade", b"h2c, websocket"), ("connection", b"upgrade")],
        );
        assert!(strip_h2c(&mut h));
        assert_eq!(h.get(UPGRADE).unwrap(), "websocket");
        assert_eq!(h.get(CONNECTION).unwrap(), "upgrade");
    }

    #[test]
    fn hop_by_hop_fields_are_removed_but_not_framing() {
        let (_, _, _, mut h) = head(
            "POST / HTTP/1.1",
            &[
                (
                    "connection",
                    b"keep-alive, X-Secret, Content-Length, Upgrade",
                ),
                ("x-secret", b"1"),
                ("x-secret", b"2"),
                ("content-length", b"5"),
                ("keep-alive", b"timeout=5"),
                ("proxy-connection", b"keep-alive"),
                ("te", b"trailers"),
                ("upgrade", b"websocket"),
                ("x-kept", b"y"),
            ],
        );
        assert_eq!(strip_hop_by_hop(&mut h), 5);
        let mut left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        left.sort_unstable();
        assert_eq!(left, ["connection", "content-length", "upgrade", "x-kept"]);
    }

    /// Property: a random Content-Length value is accepted exactly when it is a
    /// comma-list of one repeated decimal u64 (an independent oracle: `str::parse`).
    /// `valid_host` before it became one pass, for hosts without brackets (kept as the
    /// model: the one-pass version must accept exactly the same Host values; the
    /// IP-literal branch moved unchanged into `valid_ip_literal_host`, and its port goes
    /// through the same `valid_port`).
    fn valid_host_model(h: &[u8]) -> bool {
        if h.first() == Some(&b'[') {
            return valid_ip_literal_host(h);
        }
        let (host, port) = match h.iter().position(|&b| b == b':') {
            Some(c) => (&h[..c], Some(&h[c + 1..])),
            None => (h, None),
        };
        let reg_name_ok = host.iter().all(|&b| REG_NAME[usize::from(b)]);
        let port_ok = port.is_none_or(|p| {
            p.len() <= 5
                && p.iter().all(u8::is_ascii_digit)
                && (p.is_empty()
                    || p.iter().fold(0u32, |a, &d| a * 10 + u32::from(d - b'0')) <= 65535)
        });
        reg_name_ok && port_ok
    }

    #[test]
    fn valid_host_agrees_with_the_model() {
        for h in [
            &b""[..],
            b"a",
            b"127.0.0.1:8080",
            b"a:",
            b"a:65535",
            b"a:65536",
            b"a:123456",
            b"a:0x1",
            b"a:1:2",
            b"a b",
            b"a,b",
            b"[::1]",
            b"[::1]:80",
            b"[::1]x",
            b"[]",
            b"[::1",
            b":80",
            b"a%41:1",
            b"www.example-host.com:443",
            b"www.example-host.com",
            b"www.exampl,-host.com",
            b"www.example-h/st.com:443",
            b"0123456789abcdef:1",
            b"0123456789abcdef0",
        ] {
            assert_eq!(valid_host(h), valid_host_model(h), "{h:?}");
        }
        let alphabet = b"ab19:[].,%_~ /@\x00\xff-";
        let mut rng = fastrand::Rng::with_seed(0x4057);
        for _ in 0..crate::hardening::test_cases(50_000) {
            let h: Vec<u8> = (0..rng.usize(0..20))
                .map(|_| alphabet[rng.usize(..alphabet.len())])
                .collect();
            assert_eq!(valid_host(&h), valid_host_model(&h), "{h:?}");
        }
    }

    /// The remembered Host never decides for another value: after a valid Host, an
    /// invalid one of the same length (or differing in one byte), a longer or shorter
    /// one, are each checked on their own, as on the next request of a keep-alive
    /// connection.
    #[test]
    fn a_remembered_host_never_answers_for_another() {
        let req = |host: &[u8]| check("GET / HTTP/1.1", &[("host", host)]);
        for _ in 0..2 {
            assert_eq!(req(b"127.0.0.1:8080"), Ok(()));
            assert_eq!(req(b"127.0.0.1:8080"), Ok(()));
            assert_eq!(req(b"127.0.0.1:808x"), Err(400));
            assert_eq!(req(b"127.0.0.1,8080"), Err(400));
            assert_eq!(req(b"127.0.0.1:80800"), Err(400));
            assert_eq!(req(b"127.0.0.1:8080 "), Err(400));
            assert_eq!(req(b"127.0.0.1:808"), Ok(()));
            assert_eq!(req(b"127.0.0.1:8080"), Ok(()));
            assert_eq!(req(b""), Ok(()));
            assert_eq!(req(b"a b"), Err(400));
        }
        let long = [b'a'; HOST_CACHE + 1];
        assert_eq!(req(&long), Ok(()));
        let mut bad = long;
        bad[HOST_CACHE] = b'/';
        assert_eq!(req(&bad), Err(400));
        // Random sequences over a small alphabet (so values repeat and differ by a byte):
        // the cached verdict is always the plain one.
        let alphabet = b"a1:.,/ ";
        let mut rng = fastrand::Rng::with_seed(0x4058);
        for _ in 0..crate::hardening::test_cases(50_000) {
            let h: Vec<u8> = (0..rng.usize(0..6))
                .map(|_| alphabet[rng.usize(..alphabet.len())])
                .collect();
            assert_eq!(valid_host_cached(&h), valid_host(&h), "{h:?}");
        }
    }

    #[test]
    fn random_content_lengths() {
        let mut rng = fastrand::Rng::with_seed(7);
        let alphabet = b"0123456789 ,+-xa\t";
        for _ in 0..crate::hardening::test_cases(20_000) {
            let len = rng.usize(1..12);
            let v: Vec<u8> = (0..len)
                .map(|_| alphabet[rng.usize(..alphabet.len())])
                .collect();
            let Ok(hv) = HeaderValue::from_bytes(&v) else {
                continue;
            };
            let s = std::str::from_utf8(&v).unwrap();
            let parts: Vec<&str> = s.split(',').map(|p| p.trim_matches([' ', '\t'])).collect();
            let nums: Vec<Option<u64>> = parts
                .iter()
                .map(|p| {
                    p.bytes()
                        .all(|b| b.is_ascii_digit())
                        .then(|| p.parse().ok())
                        .flatten()
                })
                .collect();
            let oracle = nums.iter().all(Option::is_some) && nums.windows(2).all(|w| w[0] == w[1]);
            let mut h = HeaderMap::new();
            h.insert(HOST, HeaderValue::from_static("a"));
            h.insert(CONTENT_LENGTH, hv);
            let got =
                check_request(&Method::POST, &Uri::from_static("/"), Version::HTTP_11, &h).is_ok();
            assert_eq!(got, oracle, "{s:?}");
        }
    }
}
