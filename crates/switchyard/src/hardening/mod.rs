//! Request hardening: the RFC 9112/9110 rules the HTTP/1 parser does not enforce.
//!
//! The proxy parses request heads with `httparse` and `http` types. They reject most
//! malformed input (CTLs in values, invalid names, obs-fold and whitespace before the
//! colon in requests, bad versions) but are lenient where a proxy must not be
//! (`../shared/docs/proxy-security.md` §1.1, corpus in `hardening/corpus/`):
//!
//! | gap in httparse / `http` | rule | checked by |
//! |---|---|---|
//! | bare LF accepted as line terminator | 12 | [`check_head_bytes`] |
//! | `#` accepted in the target, `http::Uri` then drops the fragment | 16 | [`check_head_bytes`] |
//! | missing / invalid Host, Host vs absolute-form authority | 17, 18 | [`check_request`] |
//! | `Transfer-Encoding: chunked, chunked`, unknown codings, parameters | 2, 3 | [`check_request`] |
//! | `*` with a method other than OPTIONS, authority-form, CONNECT | 17 | [`check_request`] |
//! | unknown expectations (`Expect: y 100-continue`) | 23 | [`check_request`] (417) |
//! | `Upgrade: h2c`, `HTTP2-Settings` forwarded | 25 | [`strip_h2c`] |
//! | hop-by-hop fields (`Keep-Alive`, `TE`, fields named by `Connection`) forwarded | 20 | [`strip_hop_by_hop`] |
//! | chunk extensions and trailer lines not validated | 6, 7 | [`chunked::StrictChunked`] |
//! | path ACLs bypassed by `/%69nternal`, `/x/../internal`, `//internal` | 19 | [`normalize`] |
//!
//! Everything here is pure (no I/O, no allocation on the accept path except in
//! [`normalize`] when a path actually changes), so it is cheap to call on every request.
//!
//! # Wiring (what the connection code calls, in this order)
//! 1. [`check_head`] as soon as a head is parsed: the raw head bytes
//!    ([`check_head_bytes`]) and the parsed head ([`check_request`]);
//! 2. [`normalize_request`] before routing: default path normalisation
//!    ([`normalize::default_path`]) and h2c removal ([`strip_h2c`]); optionally
//!    [`strip_hop_by_hop`] (a departure from HAProxy 2.6, see its docs);
//! 3. for a chunked body, [`chunked::StrictChunked`] over the body bytes that arrived with
//!    the head *before* connecting to a server (so a framing error already received is a
//!    400 with nothing forwarded), then over every further read.
//!
//! On `Err(reject)`: answer `reject.status`, add `Connection: close`, close the
//! connection after the response and forward nothing (as HAProxy does for a 400).

/// A byte class (a `const fn(u8) -> bool`) as a lookup table: one load per byte on the
/// per-request checks.
macro_rules! byte_table {
    ($class:ident) => {{
        let mut t = [false; 256];
        let mut b = 0;
        while b < 256 {
            t[b] = $class(b as u8);
            b += 1;
        }
        t
    }};
}

pub mod chunked;
mod head;
pub mod normalize;
mod semantics;

pub use head::check_head_bytes;
pub use semantics::{check_request, strip_h2c, strip_hop_by_hop};

use http::{Method, Uri, Version};

use crate::proxy::h1::{FieldEdit, FieldSet};

/// Every check on a complete request head: `raw` is the head as received (request line
/// through the empty line), the other arguments its parsed form.
pub fn check_head(
    raw: &[u8],
    method: &Method,
    uri: &Uri,
    version: Version,
    headers: &(impl FieldSet + ?Sized),
) -> Result<(), Reject> {
    check_head_bytes(raw)?;
    check_request(method, uri, version, headers)
}

/// Rewrites a checked request into what switchyard routes and forwards: the path
/// normalised by [`normalize::default_path`] (origin-form and absolute-form; the query is
/// kept) and any h2c upgrade removed. Returns whether anything changed.
///
/// Hop-by-hop removal ([`strip_hop_by_hop`]) is deliberately not part of it: HAProxy 2.6
/// forwards the fields a `Connection` option names and switchyard's engine reproduces
/// that (tests/connmode.rs); calling it is a separate choice (RFC 9110 §7.6.1 says
/// remove them, proxy-security.md rule 20).
pub fn normalize_request(uri: &mut Uri, headers: &mut (impl FieldEdit + ?Sized)) -> bool {
    // The map is only built when there is an h2c offer to remove.
    let mut changed = semantics::offers_h2c(headers) && strip_h2c(headers.map_mut());
    if let Some(pq) = uri.path_and_query() {
        if let std::borrow::Cow::Owned(new) = normalize::default_path_and_query(pq.as_str()) {
            let mut parts = uri.clone().into_parts();
            if let Ok(p) = new.parse() {
                parts.path_and_query = Some(p);
                if let Ok(u) = Uri::from_parts(parts) {
                    *uri = u;
                    changed = true;
                }
            }
        }
    }
    changed
}

/// Why a request was refused: the status to answer and a short reason for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reject {
    pub status: u16,
    pub reason: &'static str,
}

impl Reject {
    pub(crate) const fn bad(reason: &'static str) -> Self {
        Reject {
            status: 400,
            reason,
        }
    }
}

impl std::fmt::Display for Reject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.status, self.reason)
    }
}

impl std::error::Error for Reject {}

/// RFC 9110 §5.6.2 `tchar`.
pub(crate) fn is_tchar(b: u8) -> bool {
    TCHAR[usize::from(b)]
}

const fn tchar(b: u8) -> bool {
    matches!(b,
        b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' | b'^' | b'_' | b'`' | b'|' | b'~'
        | b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z')
}

/// A field value byte (RFC 9110 §5.5): VCHAR, SP, HTAB or obs-text; never CR, LF, NUL or other CTLs.
pub(crate) fn is_field_value_byte(b: u8) -> bool {
    FIELD_VALUE[usize::from(b)]
}

const fn field_value(b: u8) -> bool {
    b == b'\t' || (b >= b' ' && b <= b'~') || b >= 0x80
}

static TCHAR: [bool; 256] = byte_table!(tchar);
static FIELD_VALUE: [bool; 256] = byte_table!(field_value);

/// Iterations of the randomized property tests: `PROPTEST_CASES` (the variable the
/// project's proptest suites read) scales them for longer runs.
#[cfg(test)]
pub(crate) fn test_cases(default: usize) -> usize {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderMap;

    #[test]
    fn normalize_request_rewrites_path_and_strips_h2c() {
        let mut uri: Uri = "/x/../%69nternal//a?q=/../b".parse().unwrap();
        let mut h = HeaderMap::new();
        h.insert("upgrade", "h2c".parse().unwrap());
        assert!(normalize_request(&mut uri, &mut h));
        assert_eq!(uri, "/internal/a?q=/../b");
        assert!(h.is_empty());

        let mut uri: Uri = "http://a.example//internal".parse().unwrap();
        assert!(normalize_request(&mut uri, &mut HeaderMap::new()));
        assert_eq!(uri.to_string(), "http://a.example/internal");

        let mut uri: Uri = "/plain?x".parse().unwrap();
        assert!(!normalize_request(&mut uri, &mut HeaderMap::new()));
        assert_eq!(uri, "/plain?x");
    }

    #[test]
    fn check_head_combines_both_layers() {
        let raw = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        let mut h = HeaderMap::new();
        h.insert("host", "a".parse().unwrap());
        let uri = Uri::from_static("/");
        assert_eq!(
            check_head(raw, &Method::GET, &uri, Version::HTTP_11, &h),
            Ok(())
        );
        let bare_lf = b"GET / HTTP/1.1\nHost: a\n\n";
        assert_eq!(
            check_head(bare_lf, &Method::GET, &uri, Version::HTTP_11, &h)
                .unwrap_err()
                .status,
            400
        );
        assert_eq!(
            check_head(raw, &Method::GET, &uri, Version::HTTP_11, &HeaderMap::new())
                .unwrap_err()
                .reason,
            "HTTP/1.1 request without Host"
        );
    }
}
