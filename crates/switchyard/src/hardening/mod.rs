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
//! | chunk extensions and trailer lines not validated | 6, 7 | [`chunked::StrictChunked`] |
//! | path ACLs bypassed by `/%69nternal`, `/x/../internal`, `//internal` | 19 | [`normalize`] |
//!
//! Everything here is pure (no I/O, no allocation on the accept path except in
//! [`normalize`] when a path actually changes), so it is cheap to call on every request.
//!
//! # Wiring (what the connection code calls, in this order)
//! 1. [`check_head_bytes`] on the raw bytes of the request head (request line through the
//!    empty line) as soon as the head is complete, before any parsing result is used;
//! 2. [`check_request`] on the parsed head;
//! 3. [`strip_h2c`] on the headers before they are forwarded;
//! 4. [`normalize::default_path`] on the path before routing (ACLs) and forwarding.
//!
//! On `Err(reject)`: answer `reject.status`, add `Connection: close`, close the
//! connection after the response and forward nothing (as HAProxy does for a 400).

pub mod chunked;
mod head;
pub mod normalize;
mod semantics;

pub use head::check_head_bytes;
pub use semantics::{check_request, strip_h2c};

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
    matches!(b,
        b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' | b'^' | b'_' | b'`' | b'|' | b'~'
        | b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z')
}

/// A field value byte (RFC 9110 §5.5): VCHAR, SP, HTAB or obs-text; never CR, LF, NUL or other CTLs.
pub(crate) fn is_field_value_byte(b: u8) -> bool {
    b == b'\t' || (b' '..=b'~').contains(&b) || b >= 0x80
}
