//! HTTP/1.x message heads: parsing (httparse), framing rules and serialisation.
//!
//! A head's header fields are kept as [`Fields`]: the `name: value\r\n` lines as they
//! will be forwarded (names lower-cased, as HAProxy's HTX does; values trimmed; order
//! kept), each tagged once at parse time with the [`Known`] name the proxy itself
//! interprets (framing, `Host`, `Connection`, `Upgrade`, ...). Validation, framing and
//! connection handling read those tags instead of hashing names, and a head nobody
//! rewrote is forwarded as one copy of its lines. `http::HeaderMap` is built only when
//! something needs it (rules, header ACLs, cookies, the stats page, a rare rewrite):
//! [`Fields::map_mut`]. Framing follows RFC 9112 §6.3 strictly: anything ambiguous is a
//! parse error, so a request we cannot frame never reaches a server.

use std::cell::RefCell;
use std::mem::MaybeUninit;
use std::sync::{LazyLock, OnceLock};

use bytes::{BufMut, BytesMut};
use http::header::{self, CONTENT_LENGTH};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, Version};

/// HAProxy's `tune.http.maxhdr` default.
pub const MAX_HEADERS: usize = 101;
/// HAProxy's `tune.bufsize` default: a head must fit in one buffer.
pub const MAX_HEAD: usize = 16384;

/// Size limits of a request head (`tune.bufsize`, `tune.http.maxhdr`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest head in bytes: the buffer minus HAProxy's `tune.maxrewrite`
    /// reserve (1024, or half the buffer when smaller).
    pub max_head: usize,
    pub max_headers: usize,
}

impl Limits {
    pub fn new(bufsize: Option<usize>, maxhdr: Option<u32>) -> Self {
        let buf = bufsize.unwrap_or(MAX_HEAD);
        Limits {
            max_head: buf - 1024.min(buf / 2),
            max_headers: maxhdr.map_or(MAX_HEADERS, |m| m as usize),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self::new(None, None)
    }
}

/// Why a head could not be accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// Syntax error, too many headers, invalid header value, bad target.
    Invalid,
    /// The head does not fit in the buffer (`tune.bufsize`), or has more
    /// fields than `tune.http.maxhdr` (requests only).
    TooLarge,
    /// Framing headers contradict each other (CL vs CL, TE on HTTP/1.0, TE not ending in chunked).
    Framing,
}

/// A parsed request line and headers.
#[derive(Debug)]
pub struct RequestHead {
    pub method: Method,
    pub uri: Uri,
    pub version: Version,
    pub headers: Fields,
}

/// A parsed status line and headers.
#[derive(Debug)]
pub struct ResponseHead {
    pub status: StatusCode,
    /// The server's reason phrase, forwarded as sent.
    pub reason: String,
    pub version: Version,
    pub headers: Fields,
}

/// How a message body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    None,
    Length(u64),
    /// A chunked response: framing checked leniently (as a client would read it).
    Chunked,
    /// A chunked request: every framing byte validated by
    /// [`crate::hardening::chunked::StrictChunked`] (extensions, trailers, bare CR/LF).
    StrictChunked,
    /// Response only: the body ends when the server closes.
    UntilClose,
}

/// Parses a request head at the start of `buf`. `Ok(None)`: need more bytes.
///
/// The usual head ([`parse_request_plain`]) is read in one pass; anything else (and any
/// error) goes to httparse. The proxy calls [`parse_request_plain_or_not`]; this is its
/// unboxed form for callers that do not skip checks.
pub fn parse_request(
    buf: &[u8],
    limits: Limits,
) -> Result<Option<(RequestHead, usize)>, ParseError> {
    Ok(parse_request_plain_or_not(buf, limits)?.map(|(head, len, _)| (*head, len)))
}

/// [`parse_request`], also telling whether the head was read by the one-pass reader
/// ([`parse_request_plain`]): such a head passes every line-level rule of
/// [`crate::hardening::check_head_bytes`] (its grammar is a subset of that function's
/// fast path; a test checks it), so the caller need not check its bytes again. The head
/// is boxed where it is made (it is kept boxed while the request is handled).
pub fn parse_request_plain_or_not(
    buf: &[u8],
    limits: Limits,
) -> Result<Option<(Box<RequestHead>, usize, bool)>, ParseError> {
    match parse_request_plain(buf, limits) {
        Some((head, len)) => Ok(Some((head, len, true))),
        None => Ok(
            parse_request_httparse(buf, limits)?.map(|(head, len)| (Box::new(head), len, false))
        ),
    }
}

/// [`parse_request`] by httparse.
fn parse_request_httparse(
    buf: &[u8],
    limits: Limits,
) -> Result<Option<(RequestHead, usize)>, ParseError> {
    // Uninitialised slots: httparse fills what it uses (zeroing 101 slots was ~10% of
    // the parse).
    let mut stack = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut heap;
    let raw: &mut [MaybeUninit<httparse::Header<'_>>] = if limits.max_headers <= MAX_HEADERS {
        &mut stack[..limits.max_headers]
    } else {
        heap = vec![MaybeUninit::uninit(); limits.max_headers];
        &mut heap
    };
    let mut req = httparse::Request::new(&mut []);
    let len = match req.parse_with_uninit_headers(buf, raw) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() >= limits.max_head => {
            return Err(ParseError::TooLarge)
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        // More fields than `tune.http.maxhdr`: too large, not malformed (431).
        Err(httparse::Error::TooManyHeaders) => return Err(ParseError::TooLarge),
        Err(_) => return Err(ParseError::Invalid),
    };
    if len > limits.max_head {
        return Err(ParseError::TooLarge);
    }
    let method =
        Method::from_bytes(req.method.unwrap_or("").as_bytes()).map_err(|_| ParseError::Invalid)?;
    let uri: Uri = req
        .path
        .unwrap_or("")
        .parse()
        .map_err(|_| ParseError::Invalid)?;
    let version = version_of(req.version);
    let headers = Fields::parse(buf, req.headers)?;
    Ok(Some((
        RequestHead {
            method,
            uri,
            version,
            headers,
        },
        len,
    )))
}

/// Parses a response head at the start of `buf`. `Ok(None)`: need more bytes.
///
/// The usual head (see [`parse_response_plain`]) is read in one pass; anything else goes
/// to httparse.
pub fn parse_response(buf: &[u8]) -> Result<Option<(ResponseHead, usize)>, ParseError> {
    match parse_response_plain(buf) {
        Some(done) => Ok(Some(done)),
        None => parse_response_httparse(buf),
    }
}

/// A complete response head in the form servers send: `HTTP/1.0` or `HTTP/1.1`, one
/// space, a three-digit status from 100, one space, a non-empty reason of VCHAR, SP and
/// HTAB, CRLF; then lines `name: value` CRLF (a `tchar` name, one space, a value of
/// VCHAR, SP and HTAB that starts and ends with a VCHAR), at most [`MAX_HEADERS`], and
/// the empty line. Read in one pass, the fields built from the section as it is (as
/// [`Fields::parse`] does for such lines). `None` for anything else: an incomplete head,
/// other spacing, obs-text, bare LF, folding, an empty value... which httparse then reads.
/// What this accepts, httparse accepts with the same result (a differential test checks
/// it); httparse plus the second pass over its lines were ~1,300 instructions for the
/// two-field response of `ka64`.
fn parse_response_plain(buf: &[u8]) -> Option<(ResponseHead, usize)> {
    let start: [u8; 13] = buf.get(..13)?.try_into().ok()?;
    let word = u64::from_le_bytes([
        start[0], start[1], start[2], start[3], start[4], start[5], start[6], start[7],
    ]);
    let version = if word == u64::from_le_bytes(*b"HTTP/1.1") {
        Version::HTTP_11
    } else if word == u64::from_le_bytes(*b"HTTP/1.0") {
        Version::HTTP_10
    } else {
        return None;
    };
    let [b' ', d1 @ b'1'..=b'9', d2 @ b'0'..=b'9', d3 @ b'0'..=b'9', b' '] = start[8..13] else {
        return None;
    };
    let code = u16::from(d1 - b'0') * 100 + u16::from(d2 - b'0') * 10 + u16::from(d3 - b'0');
    let i = 13 + plain_run(&buf[13..]);
    if i == 13 || buf.get(i..i + 2) != Some(b"\r\n") {
        return None;
    }
    let reason = &buf[13..i];
    let first = i + 2;
    let mut headers = spare_fields();
    let (pos, end) = plain_section(buf, first, MAX_HEADERS, &mut headers.lines)?;
    let status = StatusCode::from_u16(code).ok()?;
    // As below: the canonical reason is not copied (compared as bytes: no UTF-8 check).
    let reason = if Some(reason) == status.canonical_reason().map(str::as_bytes) {
        String::new()
    } else {
        std::str::from_utf8(reason).ok()?.to_owned()
    };
    headers.fill_plain(&buf[first..pos]);
    Some((
        ResponseHead {
            status,
            reason,
            version,
            headers,
        },
        end,
    ))
}

/// The header section from `first` when every line is `name: value` CRLF as
/// [`parse_response_plain`] describes, at most `max` of them, followed by the empty line:
/// the lines (offsets from `first`, appended to `lines`, which comes empty), the end of
/// the last line and the end of the head.
fn plain_section(
    buf: &[u8],
    first: usize,
    max: usize,
    lines: &mut Vec<Line>,
) -> Option<(usize, usize)> {
    let mut pos = first;
    let end = loop {
        let rest = buf.get(pos..)?;
        if rest.first() == Some(&b'\r') {
            if rest.get(1) != Some(&b'\n') {
                return None;
            }
            break pos + 2;
        }
        let name = name_len(rest)?;
        if name == 0 || rest.get(name + 1) != Some(&b' ') {
            return None;
        }
        let value = rest.get(name + 2..)?;
        let len = plain_run(value);
        if len == 0
            || !(b'!'..=b'~').contains(&value[0])
            || matches!(value[len - 1], b' ' | b'\t')
            || value.get(len..len + 2) != Some(b"\r\n")
            || lines.len() == max
        {
            return None;
        }
        let colon = pos + name;
        let next = colon + 2 + len + 2;
        lines.push(Line {
            start: (pos - first) as u32,
            colon: (colon - first) as u32,
            end: (next - first) as u32,
            kind: Known::Other,
        });
        pos = next;
    };
    Some((pos, end))
}

/// VCHAR, SP or HTAB: what the one-pass readers take in values and reasons.
fn plain_byte(b: u8) -> bool {
    b == b'\t' || (b' '..=b'~').contains(&b)
}

/// The number of [`plain_byte`]s at the start of `s`, eight bytes at a time: in a word
/// holding a byte below SP, a DEL or a byte from 0x80, the first such byte is found from
/// the word's flags (the lowest flag is exact); an HTAB is stepped over.
fn plain_run(s: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut i = 0;
    while let Some(w) = s.get(i..i + 8) {
        let w = u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
        let below_space = w.wrapping_sub(ONES * 0x20) & !w;
        let del = w ^ (ONES * 0x7f);
        let del = del.wrapping_sub(ONES) & !del;
        let flags = (below_space | del | w) & HIGH;
        if flags == 0 {
            i += 8;
            continue;
        }
        let at = i + (flags.trailing_zeros() / 8) as usize;
        if s[at] != b'\t' {
            return at;
        }
        i = at + 1;
    }
    i + s[i..].iter().take_while(|&&b| plain_byte(b)).count()
}

/// The length of the field name at the start of `s`, when a `:` follows it: a run of
/// letters, digits and `-` is measured eight bytes at a time, any other `tchar` byte by
/// byte. `None` when no `:` follows the `tchar`s (or `s` ends first).
fn name_len(s: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // Per byte below 0x80: high bit set when the byte is within lo..=hi (no carry crosses
    // bytes).
    let within = |w: u64, lo: u64, hi: u64| {
        w.wrapping_add(ONES * (0x80 - lo)) & !w.wrapping_add(ONES * (0x7f - hi))
    };
    let mut i = 0;
    while let Some(b) = s.get(i..i + 8) {
        let w = u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
        let ok = (within(w, 0x61, 0x7a)
            | within(w, 0x41, 0x5a)
            | within(w, 0x30, 0x39)
            | within(w, 0x2d, 0x2d))
            & !w
            & HIGH;
        if ok == HIGH {
            i += 8;
            continue;
        }
        i += ((!ok & HIGH).trailing_zeros() / 8) as usize;
        break;
    }
    let n = i + s[i..]
        .iter()
        .position(|&b| !crate::hardening::is_tchar(b))?;
    (s[n] == b':').then_some(n)
}

/// Target bytes the one-pass request reader takes: RFC 3986 unreserved and reserved
/// characters and `%` (everything else goes to httparse).
const fn plain_target(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'@'
                | b'/'
                | b'?'
                | b'%'
        )
}

/// [`parse_request`] for the usual head: `METHOD target HTTP/1.x` CRLF (a `tchar`
/// method, a target of [`plain_target`] bytes, single spaces), then the header section of
/// [`plain_section`] within `limits`. `None` for anything else, httparse then reads it
/// (a differential test checks that what this takes, httparse reads the same way).
fn parse_request_plain(buf: &[u8], limits: Limits) -> Option<(Box<RequestHead>, usize)> {
    let i = buf.iter().position(|&b| !crate::hardening::is_tchar(b))?;
    if i == 0 || buf[i] != b' ' {
        return None;
    }
    let method = &buf[..i];
    let t = i + 1;
    let j = t + buf[t..].iter().position(|&b| !plain_target(b))?;
    if j == t || buf[j] != b' ' {
        return None;
    }
    let target = &buf[t..j];
    let tail: [u8; 10] = buf.get(j + 1..j + 11)?.try_into().ok()?;
    let version = match &tail {
        b"HTTP/1.1\r\n" => Version::HTTP_11,
        b"HTTP/1.0\r\n" => Version::HTTP_10,
        _ => return None,
    };
    let first = j + 11;
    // A finished request's head, its vectors kept (no allocation), else a new one.
    let mut head = spare_head();
    let parsed = plain_section(buf, first, limits.max_headers, &mut head.headers.lines)
        .filter(|&(_, end)| end <= limits.max_head)
        .and_then(|(pos, end)| {
            let method = Method::from_bytes(method).ok()?;
            // A head to fill already holds the target `/` (see `recycle_head`).
            let uri = match target {
                b"/" => None,
                _ => Some(target_uri(target)?),
            };
            Some((pos, end, method, uri))
        });
    let Some((pos, end, method, uri)) = parsed else {
        recycle_head(head);
        return None;
    };
    head.method = method;
    match uri {
        Some(uri) => head.uri = uri,
        None => debug_assert!(is_slash(&head.uri)),
    }
    head.version = version;
    head.headers.fill_plain(&buf[first..pos]);
    Some((head, end))
}

/// The request target as a `Uri`: what `str::parse` does, without its UTF-8 check (the
/// bytes are ASCII). `/`, the most common target, never gets here: the one-pass reader
/// keeps the `/` a recycled head already holds. Targets up to [`ARENA_TARGET`] bytes are copied into this thread's
/// [`TARGETS`] buffer instead of an allocation of their own: the same parse
/// (`from_maybe_shared` of a `Bytes` is `try_from` without the copy), on shared bytes.
#[inline]
fn target_uri(target: &[u8]) -> Option<Uri> {
    if target.len() > ARENA_TARGET {
        return Uri::try_from(target).ok();
    }
    let bytes = TARGETS
        .try_with(|a| {
            let mut a = a.borrow_mut();
            if a.capacity() < target.len() {
                a.reserve(ARENA_SIZE);
            }
            a.extend_from_slice(target);
            a.split().freeze()
        })
        .ok()?;
    Uri::from_maybe_shared(bytes).ok()
}

/// Whether `uri` is the origin-form target `/` (what `Uri::default()` is).
#[inline]
fn is_slash(uri: &Uri) -> bool {
    uri.scheme().is_none()
        && uri.authority().is_none()
        && uri.path_and_query().is_some_and(|p| p.as_str() == "/")
}

/// The longest target [`target_uri`] copies into [`TARGETS`].
const ARENA_TARGET: usize = 256;
/// The size of a [`TARGETS`] buffer.
const ARENA_SIZE: usize = 4096;

thread_local! {
    /// Request targets, one after the other, each `Uri` holding its slice (a reference
    /// count, no allocation). Once full, the buffer is used again from its start when no
    /// `Uri` holds a slice of it any more (the usual case: targets live while their
    /// request does), else a new one is allocated and the old one is freed with its last
    /// slice. At most [`ARENA_SIZE`] bytes are kept per thread.
    static TARGETS: RefCell<BytesMut> = RefCell::new(BytesMut::new());
}

/// [`parse_response`] by httparse.
fn parse_response_httparse(buf: &[u8]) -> Result<Option<(ResponseHead, usize)>, ParseError> {
    let mut raw = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut res = httparse::Response::new(&mut []);
    let parsed = httparse::ParserConfig::default()
        .parse_response_with_uninit_headers(&mut res, buf, &mut raw);
    let len = match parsed {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => return Err(ParseError::TooLarge),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(ParseError::Invalid),
    };
    let status = StatusCode::from_u16(res.code.unwrap_or(0)).map_err(|_| ParseError::Invalid)?;
    // The usual reason (the status's canonical one) is not copied: an empty reason is
    // written as the canonical one (`write_response_head`).
    let reason = match res.reason.unwrap_or("") {
        r if Some(r) == status.canonical_reason() => String::new(),
        r => r.to_owned(),
    };
    let version = version_of(res.version);
    let headers = Fields::parse(buf, res.headers)?;
    Ok(Some((
        ResponseHead {
            status,
            reason,
            version,
            headers,
        },
        len,
    )))
}

fn version_of(minor: Option<u8>) -> Version {
    match minor {
        Some(0) => Version::HTTP_10,
        _ => Version::HTTP_11,
    }
}

/// [`trim`], returning at once when neither end is whitespace (httparse already skips
/// the leading blanks).
fn trim_fast(v: &[u8]) -> &[u8] {
    match (v.first(), v.last()) {
        (Some(f), Some(l)) if !f.is_ascii_whitespace() && !l.is_ascii_whitespace() => v,
        _ => trim(v),
    }
}

/// Without leading and trailing ASCII whitespace.
fn trim(v: &[u8]) -> &[u8] {
    trim_by(v, u8::is_ascii_whitespace)
}

/// Without leading and trailing spaces and tabs.
fn trim_ows(v: &[u8]) -> &[u8] {
    trim_by(v, |&b| b == b' ' || b == b'\t')
}

fn trim_by(v: &[u8], blank: impl Fn(&u8) -> bool) -> &[u8] {
    let start = v.iter().position(|b| !blank(b)).unwrap_or(v.len());
    let end = v.iter().rposition(|b| !blank(b)).map_or(start, |e| e + 1);
    &v[start..end]
}

/// Request framing (RFC 9112 §6.3). With both `Transfer-Encoding: chunked` and
/// `Content-Length`, chunked wins and `Content-Length` is removed (the caller
/// must then close the client connection after the response, as HAProxy does).
pub fn request_body_kind(head: &mut RequestHead) -> Result<BodyKind, ParseError> {
    if head.headers.has(Known::TransferEncoding) {
        if head.version == Version::HTTP_10 || !ends_with_chunked(&head.headers) {
            return Err(ParseError::Framing);
        }
        head.headers.remove_all(Known::ContentLength);
        return Ok(BodyKind::StrictChunked);
    }
    let (n, repeated) = content_length(&head.headers)?;
    normalise_length(&mut head.headers, n, repeated);
    match n {
        Some(0) | None => Ok(BodyKind::None),
        Some(n) => Ok(BodyKind::Length(n)),
    }
}

/// Repeated but equal `Content-Length` values are forwarded as one header (in the
/// first one's place).
fn normalise_length(headers: &mut impl FieldEdit, n: Option<u64>, repeated: bool) {
    if let (true, Some(n)) = (repeated, n) {
        headers
            .map_mut()
            .insert(CONTENT_LENGTH, HeaderValue::from(n));
    }
}

/// Response framing, given the request method. With both `Transfer-Encoding`
/// and `Content-Length`, the length is dropped (it must be ignored, and
/// forwarding both would let the next hop frame the body differently).
pub fn response_body_kind(
    method: &Method,
    head: &mut ResponseHead,
) -> Result<BodyKind, ParseError> {
    let s = head.status.as_u16();
    if method == Method::HEAD || (100..200).contains(&s) || s == 204 || s == 304 {
        return Ok(BodyKind::None);
    }
    if head.headers.has(Known::TransferEncoding) {
        head.headers.remove_all(Known::ContentLength);
        return Ok(if ends_with_chunked(&head.headers) {
            BodyKind::Chunked
        } else {
            BodyKind::UntilClose
        });
    }
    let (n, repeated) = content_length(&head.headers)?;
    normalise_length(&mut head.headers, n, repeated);
    match n {
        Some(0) => Ok(BodyKind::None),
        Some(n) => Ok(BodyKind::Length(n)),
        None => Ok(BodyKind::UntilClose),
    }
}

fn ends_with_chunked(headers: &impl FieldSet) -> bool {
    let last = headers.values(Known::TransferEncoding).last();
    last.and_then(ascii_str)
        .and_then(|v| v.rsplit(',').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("chunked"))
}

/// All `Content-Length` values (also comma lists) must agree. Also says whether the
/// value was repeated (several lines or a list), in the same single pass. Each element
/// is 1 to 18 digits between optional spaces/tabs (values hold no other whitespace).
#[inline]
fn content_length(headers: &impl FieldSet) -> Result<(Option<u64>, bool), ParseError> {
    // The usual case: one line of 1 to 18 digits, or none.
    let mut lines = headers.values(Known::ContentLength);
    match lines.next() {
        None => Ok((None, false)),
        Some(v)
            if (1..=18).contains(&v.len())
                && v.iter().all(u8::is_ascii_digit)
                && lines.next().is_none() =>
        {
            Ok((Some(digits(v)), false))
        }
        Some(_) => content_length_list(headers),
    }
}

/// The value of 1 to 18 ASCII digits `v`.
#[inline]
fn digits(v: &[u8]) -> u64 {
    v.iter().fold(0u64, |n, &d| n * 10 + u64::from(d - b'0'))
}

/// [`content_length`] for anything but one plain number: lists, repeated lines, errors.
/// Out of line, so that the usual case saves no registers for it.
#[inline(never)]
fn content_length_list(headers: &impl FieldSet) -> Result<(Option<u64>, bool), ParseError> {
    let mut found: Option<u64> = None;
    let mut values = 0usize;
    let mut note = |part: &[u8]| {
        if part.is_empty() || part.len() > 18 || !part.iter().all(u8::is_ascii_digit) {
            return Err(ParseError::Framing);
        }
        let n = digits(part);
        if found.is_some_and(|f| f != n) {
            return Err(ParseError::Framing);
        }
        found = Some(n);
        values += 1;
        Ok(())
    };
    for v in headers.values(Known::ContentLength) {
        if v.contains(&b',') {
            for part in v.split(|&b| b == b',') {
                note(trim_ows(part))?;
            }
        } else {
            // One number, the usual value: no list to split.
            note(trim_ows(v))?;
        }
    }
    Ok((found, values > 1))
}

/// True when the `Connection` header lists `token` (case-insensitive).
/// Inlined to a test of the set of present names when there is no `Connection` line (most
/// heads): the token search, out of line, saved and restored a dozen registers per call.
#[inline]
pub fn connection_has(headers: &(impl FieldSet + ?Sized), token: &str) -> bool {
    headers.has(Known::Connection) && connection_lists(headers, token)
}

/// [`connection_has`] once a `Connection` line exists.
#[inline(never)]
fn connection_lists(headers: &(impl FieldSet + ?Sized), token: &str) -> bool {
    headers.values(Known::Connection).any(|v| {
        ascii_str(v).is_some_and(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    })
}

/// Number of `Host` headers (HAProxy rejects more than one).
pub fn host_count(headers: &(impl FieldSet + ?Sized)) -> usize {
    headers.values(Known::Host).count()
}

/// Appends `METHOD target VERSION\r\n`, the header lines, the lines `extra`
/// appends (the proxy's own: `X-Forwarded-For`, `Connection`), then `\r\n`.
pub fn write_request_head(
    out: &mut BytesMut,
    head: &RequestHead,
    extra: impl FnOnce(&mut BytesMut),
) {
    out.put_slice(head.method.as_str().as_bytes());
    out.put_u8(b' ');
    write_target(out, &head.uri);
    out.put_slice(if head.version == Version::HTTP_10 {
        b" HTTP/1.0\r\n"
    } else {
        b" HTTP/1.1\r\n"
    });
    head.headers.write(out);
    extra(out);
    out.put_slice(b"\r\n");
}

/// The request target as the client sent it (origin, absolute, authority or `*` form).
pub fn write_target(out: &mut BytesMut, uri: &Uri) {
    if uri.scheme().is_some() || (uri.authority().is_some() && uri.path_and_query().is_none()) {
        out.put_slice(uri.to_string().as_bytes());
    } else if let Some(pq) = uri.path_and_query() {
        out.put_slice(pq.as_str().as_bytes());
    } else {
        out.put_slice(uri.path().as_bytes());
    }
}

/// Appends `HTTP/1.x <code> <reason>\r\n` + headers + `\r\n`. HAProxy keeps
/// the version the server answered with; its own responses are HTTP/1.1.
pub fn write_response_head(
    out: &mut BytesMut,
    version: Version,
    status: StatusCode,
    reason: &str,
    headers: &(impl FieldSet + ?Sized),
) {
    out.put_slice(if version == Version::HTTP_10 {
        b"HTTP/1.0 "
    } else {
        b"HTTP/1.1 "
    });
    out.put_slice(status.as_str().as_bytes());
    out.put_u8(b' ');
    if reason.is_empty() {
        out.put_slice(status.canonical_reason().unwrap_or("").as_bytes());
    } else {
        out.put_slice(reason.as_bytes());
    }
    out.put_slice(b"\r\n");
    headers.write(out);
    out.put_slice(b"\r\n");
}

/// The header names the proxy interprets itself, recognised once per line when a head
/// is parsed (by length and bytes of the lower-cased name), so that no later step
/// hashes a name to find them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Known {
    Other,
    Host,
    ContentLength,
    TransferEncoding,
    Connection,
    Upgrade,
    Expect,
    Http2Settings,
    SecWebSocketKey,
    SecWebSocketAccept,
    /// Read by cookie persistence (`cookie ... insert|rewrite|prefix`).
    Cookie,
    SetCookie,
}

impl Known {
    /// The tag of a lower-case field name.
    pub fn of(lower: &[u8]) -> Known {
        // Literal patterns: each comparison has a constant length and compiles to a few
        // word compares, not a `memcmp` call.
        match lower {
            b"host" => Known::Host,
            b"content-length" => Known::ContentLength,
            b"connection" => Known::Connection,
            b"transfer-encoding" => Known::TransferEncoding,
            b"upgrade" => Known::Upgrade,
            b"expect" => Known::Expect,
            b"http2-settings" => Known::Http2Settings,
            b"sec-websocket-key" => Known::SecWebSocketKey,
            b"sec-websocket-accept" => Known::SecWebSocketAccept,
            b"cookie" => Known::Cookie,
            b"set-cookie" => Known::SetCookie,
            _ => Known::Other,
        }
    }

    /// This name's bit in [`Fields`]' set of present names.
    #[inline]
    fn bit(self) -> u16 {
        1 << self as u8
    }

    /// The lower-case name (empty for [`Known::Other`]).
    pub fn as_str(self) -> &'static str {
        match self {
            Known::Other => "",
            Known::Host => "host",
            Known::ContentLength => "content-length",
            Known::TransferEncoding => "transfer-encoding",
            Known::Connection => "connection",
            Known::Upgrade => "upgrade",
            Known::Expect => "expect",
            Known::Http2Settings => "http2-settings",
            Known::SecWebSocketKey => "sec-websocket-key",
            Known::SecWebSocketAccept => "sec-websocket-accept",
            Known::Cookie => "cookie",
            Known::SetCookie => "set-cookie",
        }
    }

    /// The name as `http` spells it; `None` for [`Known::Other`].
    pub fn name(self) -> Option<HeaderName> {
        Some(match self {
            Known::Other => return None,
            Known::Host => header::HOST,
            Known::ContentLength => header::CONTENT_LENGTH,
            Known::TransferEncoding => header::TRANSFER_ENCODING,
            Known::Connection => header::CONNECTION,
            Known::Upgrade => header::UPGRADE,
            Known::Expect => header::EXPECT,
            Known::Http2Settings => HeaderName::from_static("http2-settings"),
            Known::SecWebSocketKey => header::SEC_WEBSOCKET_KEY,
            Known::SecWebSocketAccept => header::SEC_WEBSOCKET_ACCEPT,
            Known::Cookie => header::COOKIE,
            Known::SetCookie => header::SET_COOKIE,
        })
    }
}

/// Read access to header fields by the names the proxy interprets. Implemented by
/// [`Fields`] (the proxy's heads) and by `http::HeaderMap` (what rules, tests and the
/// fuzz targets build), so the checks are written once.
pub trait FieldSet {
    /// The values of every `k` line, trimmed, in order.
    fn values(&self, k: Known) -> Values<'_>;
    /// Whether a line with this (lower-case) name exists.
    fn has_name(&self, name: &HeaderName) -> bool;
    /// Serialises every line as `name: value\r\n` (not the empty line after them).
    fn write(&self, out: &mut BytesMut);

    fn has(&self, k: Known) -> bool {
        self.values(k).next().is_some()
    }

    fn first(&self, k: Known) -> Option<&[u8]> {
        self.values(k).next()
    }
}

/// The rewrites the proxy makes to header fields, keeping the order of the others.
pub trait FieldEdit: FieldSet {
    /// Removes every `k` line.
    fn remove_all(&mut self, k: Known);
    /// Appends `k: value` after the other lines.
    fn push_static(&mut self, k: Known, value: &'static str);
    /// The fields as an `http::HeaderMap`, for the rewrites that need one.
    fn map_mut(&mut self) -> &mut HeaderMap;
}

/// The values of one known header (see [`FieldSet::values`]).
pub enum Values<'a> {
    Lines {
        fields: &'a Fields,
        next: usize,
        k: Known,
    },
    Map(http::header::ValueIter<'a, HeaderValue>),
    Empty,
}

impl<'a> Iterator for Values<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        match self {
            Values::Lines { fields, next, k } => {
                let f: &'a Fields = fields;
                while let Some(l) = f.lines.get(*next) {
                    *next += 1;
                    if l.kind == *k {
                        return Some(f.value(l));
                    }
                }
                None
            }
            Values::Map(it) => it.next().map(HeaderValue::as_bytes),
            Values::Empty => None,
        }
    }
}

/// A value as text when it is visible ASCII (what `HeaderValue::to_str` accepts: values
/// never hold other control bytes than HTAB, so that is plain ASCII).
pub fn ascii_str(v: &[u8]) -> Option<&str> {
    if v.is_ascii() {
        std::str::from_utf8(v).ok()
    } else {
        None
    }
}

/// Lower-cases the name `buf[start..end]`, eight bytes at a time: a name shorter than
/// eight bytes is handled in one word read from its start when the buffer has eight bytes
/// there (the bytes after the name are left as they are). Byte by byte, this was ~7
/// instructions a byte (~200 per request in `ka64` for three names).
fn lower_name(buf: &mut [u8], start: usize, end: usize) {
    let n = end - start;
    if n >= 8 {
        let mut i = start;
        while i + 8 <= end {
            lower8(buf, i, u64::MAX);
            i += 8;
        }
        if i < end {
            // The last eight bytes of the name: lower-casing twice changes nothing.
            lower8(buf, end - 8, u64::MAX);
        }
    } else if start + 8 <= buf.len() {
        lower8(buf, start, (1u64 << (8 * n)) - 1);
    } else {
        buf[start..end].make_ascii_lowercase();
    }
}

/// Lower-cases the ASCII capitals among the eight bytes at `at` whose byte of `mask` is
/// set (little-endian: the low byte of `mask` is `buf[at]`).
fn lower8(buf: &mut [u8], at: usize, mask: u64) {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let Some(word) = buf.get_mut(at..at + 8) else {
        return;
    };
    let w = u64::from_le_bytes([
        word[0], word[1], word[2], word[3], word[4], word[5], word[6], word[7],
    ]);
    let h = w & LOW7;
    // Per byte below 0x80 (no carry crosses bytes): high bit of h + 0x3f set from 'A'
    // (0x41), of h + 0x25 from '[' (0x5b); bytes from 0x80 are never capitals.
    let capital = h.wrapping_add(0x3f3f_3f3f_3f3f_3f3f)
        & !h.wrapping_add(0x2525_2525_2525_2525)
        & !w
        & HIGH
        & mask;
    word.copy_from_slice(&(w | (capital >> 2)).to_le_bytes());
}

/// One field line of [`Fields::buf`]: `buf[start..colon]` is the name, the value runs
/// from `colon + 2` to `end - 2` (`end` is after the CRLF).
#[derive(Debug, Clone, Copy)]
struct Line {
    start: u32,
    colon: u32,
    end: u32,
    kind: Known,
}

/// The header fields of a head (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct Fields {
    /// `name: value\r\n` for every line, as it will be forwarded.
    buf: Vec<u8>,
    lines: Vec<Line>,
    /// Some lines were removed: `buf` is no longer the whole serialisation.
    gaps: bool,
    /// The [`Known`] names among `lines` (bit `1 << kind`): a look-up of a name the head
    /// does not have (most of them, for most heads) scans no line.
    present: u16,
    /// Built on demand; once present it is the fields (`buf`/`lines` are dropped).
    /// Boxed, as the view below: heads are moved between futures, keep them small.
    map: Option<Box<HeaderMap>>,
    /// A read-only copy as a map for [`Fields::get_all`] (tests, tools), built once.
    view: OnceLock<Box<HeaderMap>>,
}

static EMPTY_MAP: LazyLock<HeaderMap> = LazyLock::new(HeaderMap::new);

impl Fields {
    /// Takes httparse's lines (`raw`, slices of `input`): names lower-cased, values
    /// trimmed. httparse already holds names to `tchar` and values to HTAB, SP, VCHAR and
    /// obs-text, the rules of `HeaderName::from_bytes` / `HeaderValue::from_bytes`.
    /// When the lines are already `name: value\r\n`, one after the other (what clients
    /// and servers send), the whole section is copied at once.
    fn parse(input: &[u8], raw: &[httparse::Header<'_>]) -> Result<Fields, ParseError> {
        let mut lines = Vec::with_capacity(raw.len());
        let base = input.as_ptr() as usize;
        let first = raw.first().map_or(0, |h| h.name.as_ptr() as usize - base);
        let mut pos = first;
        for h in raw {
            let n = h.name.as_ptr() as usize - base;
            let value = trim_fast(h.value);
            // An empty value's slice may point anywhere: wrapping arithmetic, then checked.
            let v = (value.as_ptr() as usize).wrapping_sub(base);
            let colon = n + h.name.len();
            let end = v.wrapping_add(value.len());
            // Byte comparisons, not slice ones (those call memcmp for two bytes).
            let canonical = n == pos
                && !h.name.is_empty()
                && v == colon + 2
                && input.get(colon) == Some(&b':')
                && input.get(colon + 1) == Some(&b' ')
                && input.get(end) == Some(&b'\r')
                && input.get(end.wrapping_add(1)) == Some(&b'\n');
            if !canonical {
                return Fields::parse_lines(raw);
            }
            lines.push(Line {
                start: (n - first) as u32,
                colon: (colon - first) as u32,
                end: (end + 2 - first) as u32,
                kind: Known::Other,
            });
            pos = end + 2;
        }
        Ok(Fields::from_plain(&input[first..pos], lines))
    }

    /// The fields of `section`, lines `name: value\r\n` one after the other as `lines`
    /// delimit them (offsets into `section`; kinds not set yet): copied at once, names
    /// lower-cased and tagged.
    fn from_plain(section: &[u8], lines: Vec<Line>) -> Fields {
        let mut f = Fields::parsed(Vec::new(), lines, 0);
        f.fill_plain(section);
        f
    }

    /// [`Fields::from_plain`] into these fields, empty (as [`Fields::clear`] leaves them)
    /// but for `lines`, which hold the lines of `section`: its bytes go into the byte
    /// vector these fields already have (from [`SPARE`], usually).
    fn fill_plain(&mut self, section: &[u8]) {
        debug_assert!(self.buf.is_empty() && self.map.is_none() && self.present == 0);
        self.buf.extend_from_slice(section);
        let mut present = 0;
        for l in &mut self.lines {
            let (start, colon) = (l.start as usize, l.colon as usize);
            lower_name(&mut self.buf, start, colon);
            l.kind = Known::of(&self.buf[start..colon]);
            present |= l.kind.bit();
        }
        self.present = present;
    }

    /// Whether [`SPARE`] keeps these fields' vectors for the next head (not a map, line
    /// vectors of 8 to 32 lines, byte vectors up to [`SPARE_BYTES`]).
    fn reusable(&self) -> bool {
        self.map.is_none()
            && (SPARE_LINES..=32).contains(&self.lines.capacity())
            && self.buf.capacity() <= SPARE_BYTES
    }

    /// Empties the fields for the next head, keeping their vectors when [`SPARE`] would
    /// keep them (else they go there, or to the allocator, as when dropped: the next
    /// [`spare_head`] then takes fields from [`SPARE`]).
    fn clear(&mut self) {
        if !self.reusable() {
            *self = Fields::default();
            return;
        }
        self.empty();
    }

    /// Empties reusable fields, keeping their vectors.
    fn empty(&mut self) {
        self.lines.clear();
        self.buf.clear();
        self.gaps = false;
        self.present = 0;
        if self.view.get().is_some() {
            self.view = OnceLock::new();
        }
    }

    /// Fields just parsed: lines in order, no map built yet.
    fn parsed(buf: Vec<u8>, lines: Vec<Line>, present: u16) -> Fields {
        Fields {
            buf,
            lines,
            gaps: false,
            present,
            map: None,
            view: OnceLock::new(),
        }
    }

    /// [`Fields::parse`] line by line, for heads with other spacing.
    fn parse_lines(raw: &[httparse::Header<'_>]) -> Result<Fields, ParseError> {
        let size: usize = raw.iter().map(|h| h.name.len() + h.value.len() + 4).sum();
        let mut buf = Vec::with_capacity(size);
        let mut lines = Vec::with_capacity(raw.len());
        let mut present = 0;
        for h in raw {
            if h.name.is_empty() {
                return Err(ParseError::Invalid);
            }
            let start = buf.len();
            buf.extend_from_slice(h.name.as_bytes());
            let colon = buf.len();
            buf[start..].make_ascii_lowercase();
            buf.extend_from_slice(b": ");
            buf.extend_from_slice(trim(h.value));
            buf.extend_from_slice(b"\r\n");
            let kind = Known::of(&buf[start..colon]);
            present |= kind.bit();
            lines.push(Line {
                start: start as u32,
                colon: colon as u32,
                end: buf.len() as u32,
                kind,
            });
        }
        Ok(Fields::parsed(buf, lines, present))
    }

    fn name(&self, l: &Line) -> &[u8] {
        &self.buf[l.start as usize..l.colon as usize]
    }

    fn value(&self, l: &Line) -> &[u8] {
        &self.buf[l.colon as usize + 2..l.end as usize - 2]
    }

    /// Number of field lines.
    pub fn len(&self) -> usize {
        match &self.map {
            Some(m) => m.len(),
            None => self.lines.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The fields as a map if [`FieldEdit::map_mut`] built one, else an empty map: for
    /// consumers the caller knows read no header (routing without header ACLs, a
    /// balancer that does not hash a header).
    pub fn built_map(&self) -> &HeaderMap {
        match &self.map {
            Some(m) => m,
            None => LazyLock::force(&EMPTY_MAP),
        }
    }

    /// Whether the map was built.
    pub fn has_map(&self) -> bool {
        self.map.is_some()
    }

    /// The fields as a read-only `HeaderMap` (built once and kept when the fields are
    /// not a map yet): for tests and tools, not for the request path.
    pub fn as_map(&self) -> &HeaderMap {
        match &self.map {
            Some(m) => m,
            None => self.view.get_or_init(|| Box::new(self.build_map())),
        }
    }

    /// `HeaderMap::get_all` over [`Fields::as_map`].
    pub fn get_all<K: http::header::AsHeaderName>(
        &self,
        name: K,
    ) -> http::header::GetAll<'_, HeaderValue> {
        self.as_map().get_all(name)
    }

    /// `HeaderMap::get` over [`Fields::as_map`].
    pub fn get<K: http::header::AsHeaderName>(&self, name: K) -> Option<&HeaderValue> {
        self.as_map().get(name)
    }

    /// Every line as (lower-case name, value), in order.
    pub fn pairs(&self) -> Vec<(String, Vec<u8>)> {
        match &self.map {
            Some(m) => m
                .iter()
                .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
                .collect(),
            None => self
                .lines
                .iter()
                .map(|l| {
                    (
                        String::from_utf8_lossy(self.name(l)).into_owned(),
                        self.value(l).to_vec(),
                    )
                })
                .collect(),
        }
    }

    /// Appends `name: value\r\n` (no map built yet; `name` lower-case, `value` valid).
    fn push_line(&mut self, name: &[u8], value: &[u8], kind: Known) {
        self.view = OnceLock::new();
        let start = self.buf.len();
        self.buf.extend_from_slice(name);
        let colon = self.buf.len();
        self.buf.extend_from_slice(b": ");
        self.buf.extend_from_slice(value);
        self.buf.extend_from_slice(b"\r\n");
        self.lines.push(Line {
            start: start as u32,
            colon: colon as u32,
            end: self.buf.len() as u32,
            kind,
        });
        self.present |= kind.bit();
    }

    fn build_map(&self) -> HeaderMap {
        let mut map = HeaderMap::with_capacity(self.lines.len());
        for l in &self.lines {
            // Both were validated by `Fields::parse` with `http`'s own rules.
            if let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(self.name(l)),
                HeaderValue::from_bytes(self.value(l)),
            ) {
                map.append(n, v);
            }
        }
        map
    }
}

impl From<HeaderMap> for Fields {
    fn from(map: HeaderMap) -> Self {
        let mut f = Fields::default();
        f.map = Some(Box::new(map));
        f
    }
}

/// How many dropped [`Fields`] a thread keeps ([`SPARE`]).
const SPARE_COUNT: usize = 16;
/// The largest byte vector [`SPARE`] keeps.
const SPARE_BYTES: usize = 1024;
/// The capacity of a new line vector of the one-pass readers.
const SPARE_LINES: usize = 8;

thread_local! {
    /// Dropped [`Fields`], emptied with their two vectors kept, for the next heads of the
    /// thread (the response heads: request heads are kept whole, [`HEADS`]). Taking them
    /// from here costs less than the allocator's generic path (~60 instructions per
    /// vector, allocation and release), and one pool access per head less than keeping
    /// the two kinds of vectors apart. Bounded: [`SPARE_COUNT`] fields whose vectors are
    /// [`Fields::reusable`].
    static SPARE: RefCell<Vec<Fields>> = const { RefCell::new(Vec::new()) };
}

/// Empty fields with room for [`SPARE_LINES`] lines (a dropped head's, else new ones).
fn spare_fields() -> Fields {
    SPARE
        .try_with(|s| s.borrow_mut().pop())
        .ok()
        .flatten()
        .unwrap_or_else(|| Fields::parsed(Vec::new(), Vec::with_capacity(SPARE_LINES), 0))
}

/// How many finished request heads a thread keeps for the next ones.
const SPARE_HEADS: usize = 16;

thread_local! {
    /// Finished request heads, fields emptied with their vectors kept ([`recycle_head`]):
    /// the next head read by [`parse_request_plain`] is written into one, without the
    /// allocation of its box and the trips of its vectors through [`Spare`] (~200
    /// instructions per request in `ka64`). Boxes, not heads: the box is what is reused
    /// (the head travels boxed, see [`parse_request_plain_or_not`]).
    #[allow(clippy::vec_box)]
    static HEADS: RefCell<Vec<Box<RequestHead>>> = const { RefCell::new(Vec::new()) };
}

/// A request head to fill: a recycled one, else a new one (vectors from [`Spare`]).
fn spare_head() -> Box<RequestHead> {
    let spare = HEADS.try_with(|h| h.borrow_mut().pop()).ok().flatten();
    match spare {
        Some(mut head) => {
            if head.headers.lines.capacity() == 0 {
                head.headers = spare_fields();
            }
            head
        }
        None => Box::new(RequestHead {
            method: Method::GET,
            // `/`, as `recycle_head` leaves it.
            uri: Uri::default(),
            version: Version::HTTP_11,
            headers: spare_fields(),
        }),
    }
}

/// Gives a request head that is no longer needed back to this thread for the next one
/// (its fields emptied, its target freed: it holds `/`, which the next head keeps when
/// its target is `/` too); dropped when the thread keeps enough.
pub fn recycle_head(mut head: Box<RequestHead>) {
    if !is_slash(&head.uri) {
        head.uri = Uri::default();
    }
    head.headers.clear();
    let _ = HEADS.try_with(|h| {
        let mut h = h.borrow_mut();
        if h.len() < SPARE_HEADS {
            h.push(head);
        }
    });
}

impl Drop for Fields {
    /// Reusable fields go to [`SPARE`] while it has room: what is left here to drop are
    /// empty fields without vectors, which do not come back here.
    fn drop(&mut self) {
        if !self.reusable() {
            return;
        }
        let _ = SPARE.try_with(|s| {
            let Ok(mut s) = s.try_borrow_mut() else {
                return;
            };
            if s.len() < SPARE_COUNT {
                let mut f = std::mem::take(self);
                f.empty();
                s.push(f);
            }
        });
    }
}

impl FieldSet for Fields {
    #[inline]
    fn values(&self, k: Known) -> Values<'_> {
        match &self.map {
            Some(m) => FieldSet::values(&**m, k),
            None if self.present & k.bit() == 0 => Values::Empty,
            None => Values::Lines {
                fields: self,
                next: 0,
                k,
            },
        }
    }

    fn has_name(&self, name: &HeaderName) -> bool {
        match &self.map {
            Some(m) => m.contains_key(name),
            None => {
                let n = name.as_str().as_bytes();
                self.lines.iter().any(|l| self.name(l) == n)
            }
        }
    }

    /// Without a map, the set of present names answers alone: its bit for `k` is set
    /// exactly while a `k` line exists (set by every line added, cleared by
    /// [`FieldEdit::remove_all`], the only removal). Inlined: the generic default was a
    /// call of ~16 instructions, several times per request.
    #[inline]
    fn has(&self, k: Known) -> bool {
        match &self.map {
            Some(m) => FieldSet::has(&**m, k),
            None => self.present & k.bit() != 0,
        }
    }

    fn write(&self, out: &mut BytesMut) {
        if let Some(m) = &self.map {
            return FieldSet::write(&**m, out);
        }
        if self.gaps {
            for l in &self.lines {
                out.put_slice(&self.buf[l.start as usize..l.end as usize]);
            }
        } else {
            out.put_slice(&self.buf);
        }
    }
}

impl FieldEdit for Fields {
    fn remove_all(&mut self, k: Known) {
        if let Some(m) = &mut self.map {
            return FieldEdit::remove_all(&mut **m, k);
        }
        // No such line (the set of present names is exact): nothing changes.
        if self.present & k.bit() == 0 {
            return;
        }
        self.view = OnceLock::new();
        let before = self.lines.len();
        self.lines.retain(|l| l.kind != k);
        self.present &= !k.bit();
        self.gaps |= self.lines.len() != before;
    }

    fn push_static(&mut self, k: Known, value: &'static str) {
        if let Some(m) = &mut self.map {
            return FieldEdit::push_static(&mut **m, k, value);
        }
        self.push_line(k.as_str().as_bytes(), value.as_bytes(), k);
    }

    fn map_mut(&mut self) -> &mut HeaderMap {
        if self.map.is_none() {
            let m = self.build_map();
            self.buf = Vec::new();
            self.lines = Vec::new();
            self.gaps = false;
            self.present = 0;
            self.view = OnceLock::new();
            self.map = Some(Box::new(m));
        }
        self.map.get_or_insert_with(Box::default)
    }
}

/// Cookie persistence reads `Cookie` / `Set-Cookie` through the tags and appends its
/// `Set-Cookie` as a line: the usual exchange builds no `HeaderMap`.
impl crate::backend::sticky::CookieFields for Fields {
    fn cookie_values(
        &self,
        which: crate::backend::sticky::CookieField,
    ) -> impl Iterator<Item = &[u8]> {
        self.values(match which {
            crate::backend::sticky::CookieField::Cookie => Known::Cookie,
            crate::backend::sticky::CookieField::SetCookie => Known::SetCookie,
        })
    }

    fn append_value(&mut self, name: HeaderName, value: HeaderValue) {
        match &mut self.map {
            Some(m) => {
                m.append(name, value);
            }
            None => {
                let n = name.as_str().as_bytes();
                self.push_line(n, value.as_bytes(), Known::of(n));
            }
        }
    }

    fn fields_map(&mut self) -> &mut HeaderMap {
        self.map_mut()
    }
}

impl FieldSet for HeaderMap {
    fn values(&self, k: Known) -> Values<'_> {
        match k.name() {
            Some(n) => Values::Map(self.get_all(n).iter()),
            None => Values::Empty,
        }
    }

    fn has_name(&self, name: &HeaderName) -> bool {
        self.contains_key(name)
    }

    fn write(&self, out: &mut BytesMut) {
        for (name, value) in self {
            put_line(out, name.as_str().as_bytes(), value.as_bytes());
        }
    }
}

impl FieldEdit for HeaderMap {
    fn remove_all(&mut self, k: Known) {
        if let Some(n) = k.name() {
            super::headers::remove_ordered(self, &n);
        }
    }

    fn push_static(&mut self, k: Known, value: &'static str) {
        if let Some(n) = k.name() {
            self.append(n, HeaderValue::from_static(value));
        }
    }

    fn map_mut(&mut self) -> &mut HeaderMap {
        self
    }
}

/// Appends `name: value\r\n`.
pub fn put_line(out: &mut BytesMut, name: &[u8], value: &[u8]) {
    out.put_slice(name);
    out.put_slice(b": ");
    out.put_slice(value);
    out.put_slice(b"\r\n");
}

/// Incremental scanner for a chunked body passing through unchanged: it only
/// finds where the body ends and rejects malformed framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chunked {
    Size {
        value: u64,
        digits: u8,
    },
    Ext(u64),
    SizeLf(u64),
    Data(u64),
    DataCr,
    DataLf,
    /// After the last chunk: at the start of a trailer line (or the final CRLF).
    TrailerStart,
    Trailer,
    TrailerLf,
    FinalLf,
    Done,
}

impl Chunked {
    pub fn new() -> Self {
        Chunked::Size {
            value: 0,
            digits: 0,
        }
    }

    /// Advances over `buf`; returns how many bytes belong to the body. The scan
    /// stops right after the body's last byte (state [`Chunked::Done`]).
    pub fn scan(&mut self, buf: &[u8]) -> Result<usize, ParseError> {
        let mut i = 0;
        while i < buf.len() && *self != Chunked::Done {
            let b = buf[i];
            *self = match *self {
                Chunked::Size { value, digits } => match b {
                    b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' if digits < 15 => {
                        let d = (b as char).to_digit(16).unwrap_or(0) as u64;
                        Chunked::Size {
                            value: value * 16 + d,
                            digits: digits + 1,
                        }
                    }
                    b';' | b' ' | b'\t' if digits > 0 => Chunked::Ext(value),
                    b'\r' if digits > 0 => Chunked::SizeLf(value),
                    _ => return Err(ParseError::Framing),
                },
                Chunked::Ext(n) => match b {
                    b'\r' => Chunked::SizeLf(n),
                    b'\n' => return Err(ParseError::Framing),
                    _ => Chunked::Ext(n),
                },
                Chunked::SizeLf(0) if b == b'\n' => Chunked::TrailerStart,
                Chunked::SizeLf(n) if b == b'\n' => Chunked::Data(n),
                Chunked::Data(n) => {
                    let take = (n as usize).min(buf.len() - i);
                    i += take;
                    let left = n - take as u64;
                    *self = if left == 0 {
                        Chunked::DataCr
                    } else {
                        Chunked::Data(left)
                    };
                    continue;
                }
                Chunked::DataCr if b == b'\r' => Chunked::DataLf,
                Chunked::DataLf if b == b'\n' => Chunked::Size {
                    value: 0,
                    digits: 0,
                },
                Chunked::TrailerStart => match b {
                    b'\r' => Chunked::FinalLf,
                    b'\n' => return Err(ParseError::Framing),
                    _ => Chunked::Trailer,
                },
                Chunked::Trailer => match b {
                    b'\r' => Chunked::TrailerLf,
                    b'\n' => return Err(ParseError::Framing),
                    _ => Chunked::Trailer,
                },
                Chunked::TrailerLf if b == b'\n' => Chunked::TrailerStart,
                Chunked::FinalLf if b == b'\n' => Chunked::Done,
                _ => return Err(ParseError::Framing),
            };
            i += 1;
        }
        Ok(i)
    }
}

impl Default for Chunked {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Removing and appending lines keeps the order of the others, and the set of known
    /// names follows.
    #[test]
    fn fields_keep_their_order_in_place_and_on_the_heap() {
        for n in [0usize, 1, 3, 4, 5, 9] {
            let mut head = String::from("GET / HTTP/1.1\r\n");
            for i in 0..n {
                head.push_str(&format!("X-{i}: v{i}\r\n"));
            }
            head.push_str("Content-Length: 0\r\n\r\n");
            let (mut req, len) = parse_request(head.as_bytes(), Limits::default())
                .unwrap()
                .unwrap();
            assert_eq!(len, head.len());
            assert_eq!(req.headers.len(), n + 1);
            assert_eq!(req.headers.first(Known::ContentLength), Some(&b"0"[..]));
            req.headers.remove_all(Known::ContentLength);
            assert!(!req.headers.has(Known::ContentLength));
            assert!(!req.headers.has(Known::Connection));
            req.headers.push_static(Known::Connection, "close");
            assert_eq!(req.headers.first(Known::Connection), Some(&b"close"[..]));
            let mut out = BytesMut::new();
            req.headers.write(&mut out);
            let mut want = String::new();
            for i in 0..n {
                want.push_str(&format!("x-{i}: v{i}\r\n"));
            }
            want.push_str("connection: close\r\n");
            assert_eq!(std::str::from_utf8(&out).unwrap(), want, "{n} lines");
            assert_eq!(req.headers.len(), n + 1);
        }
    }

    /// `has` (the set of present names) answers as a scan of the lines does, through
    /// removals, additions, both parsers and the map.
    #[test]
    fn has_agrees_with_the_lines_through_every_edit() {
        let all = [
            Known::Other,
            Known::Host,
            Known::ContentLength,
            Known::TransferEncoding,
            Known::Connection,
            Known::Upgrade,
            Known::Expect,
            Known::Http2Settings,
            Known::SecWebSocketKey,
            Known::SecWebSocketAccept,
            Known::Cookie,
            Known::SetCookie,
        ];
        let check = |f: &Fields, what: &str| {
            for k in all {
                let scanned = match &f.map {
                    Some(m) => m.contains_key(k.as_str()) && k != Known::Other,
                    None => f.lines.iter().any(|l| l.kind == k),
                };
                assert_eq!(f.has(k), scanned, "{k:?} {what}");
                if k != Known::Other {
                    assert_eq!(f.has(k), f.values(k).next().is_some(), "{k:?} {what}");
                }
            }
        };
        // The one-pass reader, then httparse (a double space after the colon).
        for head in [
            "GET / HTTP/1.1\r\nHost: a\r\nCookie: c=1\r\nUpgrade: x\r\nHost: b\r\n\r\n",
            "GET / HTTP/1.1\r\nHost:  a\r\nCookie: c=1\r\nUpgrade: x\r\nHost: b\r\n\r\n",
        ] {
            let (mut req, _) = parse_request(head.as_bytes(), Limits::default())
                .unwrap()
                .unwrap();
            check(&req.headers, "parsed");
            assert!(req.headers.has(Known::Host) && !req.headers.has(Known::Expect));
            req.headers.remove_all(Known::Host);
            check(&req.headers, "Host removed");
            assert!(!req.headers.has(Known::Host));
            req.headers.remove_all(Known::Expect);
            check(&req.headers, "nothing removed");
            req.headers.push_static(Known::Expect, "100-continue");
            req.headers.push_static(Known::Host, "c");
            check(&req.headers, "appended");
            assert!(req.headers.has(Known::Host) && req.headers.has(Known::Expect));
            req.headers.remove_all(Known::Other);
            check(&req.headers, "others removed");
            req.headers.map_mut();
            check(&req.headers, "as a map");
            assert!(req.headers.has(Known::Upgrade) && !req.headers.has(Known::SecWebSocketKey));
            req.headers.remove_all(Known::Host);
            check(&req.headers, "map, Host removed");
        }
    }

    #[test]
    fn known_names_are_recognised_by_their_lower_case_spelling_only() {
        let all = [
            Known::Host,
            Known::ContentLength,
            Known::TransferEncoding,
            Known::Connection,
            Known::Upgrade,
            Known::Expect,
            Known::Http2Settings,
            Known::SecWebSocketKey,
            Known::SecWebSocketAccept,
        ];
        for k in all {
            assert_eq!(Known::of(k.as_str().as_bytes()), k);
            assert_eq!(
                Known::of(k.as_str().to_uppercase().as_bytes()),
                Known::Other
            );
            assert_eq!(Known::of(&k.as_str().as_bytes()[1..]), Known::Other);
        }
        assert_eq!(Known::of(b"x-host"), Known::Other);
        assert_eq!(Known::of(b""), Known::Other);
    }

    #[test]
    fn content_length_values_agree_or_fail() {
        let cl = |lines: &[&str]| {
            let mut head = String::from("HTTP/1.1 200 OK\r\n");
            for l in lines {
                head.push_str(&format!("Content-Length:{l}\r\n"));
            }
            head.push_str("\r\n");
            let (resp, _) = parse_response(head.as_bytes()).unwrap().unwrap();
            content_length(&resp.headers)
        };
        assert_eq!(cl(&[]), Ok((None, false)));
        assert_eq!(cl(&[" 13"]), Ok((Some(13), false)));
        assert_eq!(cl(&[" 13", " 13"]), Ok((Some(13), true)));
        assert_eq!(cl(&[" 13, 13"]), Ok((Some(13), true)));
        assert_eq!(cl(&[" 13", " 14"]), Err(ParseError::Framing));
        assert_eq!(cl(&[" 1x"]), Err(ParseError::Framing));
        assert_eq!(cl(&[" 1234567890123456789"]), Err(ParseError::Framing));
        assert_eq!(
            cl(&[" 123456789012345678"]),
            Ok((Some(123456789012345678), false))
        );
    }

    #[test]
    fn lower_name_matches_make_ascii_lowercase() {
        let all: Vec<u8> = (0..=255u8).collect();
        for len in 0..40 {
            for tail in [0usize, 1, 3, 8, 12] {
                for offset in [0usize, 5, 77, 200] {
                    let mut input: Vec<u8> = all
                        .iter()
                        .cycle()
                        .skip(offset)
                        .take(len + tail)
                        .copied()
                        .collect();
                    let mut want = input.clone();
                    want[..len].make_ascii_lowercase();
                    lower_name(&mut input, 0, len);
                    assert_eq!(input, want, "len {len} tail {tail} offset {offset}");
                }
            }
        }
        let mut line = b"X-Forwarded-FOR: ABC\r\n".to_vec();
        lower_name(&mut line, 0, 15);
        assert_eq!(line, b"x-forwarded-for: ABC\r\n");
        let mut short = b"HoST: A\r\n".to_vec();
        lower_name(&mut short, 0, 4);
        assert_eq!(short, b"host: A\r\n");
    }

    /// Runs `check` over random mutations of `heads` (up to three bytes replaced, inserted
    /// or removed; `check` also gets a random number): how many it returned true for, of
    /// how many.
    fn mutations(
        heads: &[&[u8]],
        mut seed: u64,
        mut check: impl FnMut(&[u8], u64) -> bool,
    ) -> (usize, usize) {
        let bytes = [
            b' ', b'\t', b'\r', b'\n', b':', 0x7f, 0x80, 0xff, 0, b'A', b'z', b'0', b'9', b'/',
            b'"', b'.', b'(', b'%', b'#', b'<', b'{', b'\\', b'?', b'@', b'[', b'_',
        ];
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let (mut taken, mut tried) = (0, 0);
        for _ in 0..crate::hardening::test_cases(20_000) {
            let mut input = heads[(next() % heads.len() as u64) as usize].to_vec();
            for _ in 0..=(next() % 3) {
                let at = (next() % input.len() as u64) as usize;
                let b = bytes[(next() % bytes.len() as u64) as usize];
                match next() % 3 {
                    0 => input[at] = b,
                    1 => input.insert(at, b),
                    _ => {
                        input.remove(at);
                    }
                }
            }
            tried += 1;
            taken += usize::from(check(&input, next()));
        }
        (taken, tried)
    }

    #[test]
    fn name_len_finds_the_colon_after_tchars() {
        let reference = |s: &[u8]| {
            let n = s.iter().position(|&b| !crate::hardening::is_tchar(b))?;
            (s[n] == b':').then_some(n)
        };
        let alphabet = b"aZ09-_.!~:; \t\r\n\x00\x7f\x80\xff";
        let letters = b"content-Length9";
        let mut seed = 0x1234_5678_9abc_def1u64;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 24) as usize;
            let s: Vec<u8> = (0..len)
                .map(|i| {
                    let pick = (seed >> (i % 8 * 8)) as usize + i;
                    // Mostly letters, so that long names occur.
                    if !pick.is_multiple_of(4) {
                        letters[pick % letters.len()]
                    } else {
                        alphabet[pick % alphabet.len()]
                    }
                })
                .collect();
            assert_eq!(
                name_len(&s),
                reference(&s),
                "{:?}",
                String::from_utf8_lossy(&s)
            );
        }
        assert_eq!(name_len(b"Content-Length: 13\r\n"), Some(14));
        assert_eq!(name_len(b"X-Forwarded-For-Long-Name: 1"), Some(25));
        assert_eq!(name_len(b"Bad Name: 1"), None);
    }

    /// What the one-pass response reader takes, httparse reads the same way: status,
    /// reason, version, length, fields (serialisation and known names). Mutations and
    /// truncations of usual heads; the reader must also take the usual ones at all.
    #[test]
    fn plain_response_reader_agrees_with_httparse() {
        let heads: [&[u8]; 8] = [
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Length: 13\r\n\r\nHello, world!",
            b"HTTP/1.0 404 Not Found\r\nServer: x\r\nConnection: close\r\n\r\n",
            b"HTTP/1.1 204 No Content\r\n\r\n",
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
            b"HTTP/1.1 299 Custom\tReason \r\nX-A: a\tb\r\nSET-COOKIE: a=1; Path=/\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nA: b\r\n\r\n",
            b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nx-y-z: :: \"q\" ::\r\n\r\n",
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
        ];
        let same = |input: &[u8]| {
            let Some((fast, n)) = parse_response_plain(input) else {
                return false;
            };
            let Ok(Some((slow, m))) = parse_response_httparse(input) else {
                panic!(
                    "httparse refused what the plain reader took: {:?}",
                    String::from_utf8_lossy(input)
                );
            };
            let show = String::from_utf8_lossy(input);
            assert_eq!(
                (n, fast.status, fast.version),
                (m, slow.status, slow.version),
                "{show:?}"
            );
            assert_eq!(fast.reason, slow.reason, "{show:?}");
            assert_eq!(fast.headers.present, slow.headers.present, "{show:?}");
            assert_eq!(fast.headers.pairs(), slow.headers.pairs(), "{show:?}");
            let (mut a, mut b) = (BytesMut::new(), BytesMut::new());
            write_response_head(
                &mut a,
                fast.version,
                fast.status,
                &fast.reason,
                &fast.headers,
            );
            write_response_head(
                &mut b,
                slow.version,
                slow.status,
                &slow.reason,
                &slow.headers,
            );
            assert_eq!(a, b, "{show:?}");
            true
        };
        for h in heads {
            assert!(same(h), "{:?}", String::from_utf8_lossy(h));
            for cut in 0..h.len() {
                same(&h[..cut]);
            }
        }
        let (taken, tried) = mutations(&heads, 0x9e37_79b9_7f4a_7c15, |input, _| same(input));
        assert!(taken > tried / 20 && taken < tried, "{taken} of {tried}");
    }

    /// The same for requests, under the default limits and small ones.
    #[test]
    fn plain_request_reader_agrees_with_httparse() {
        let heads: [&[u8]; 7] = [
            b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n",
            b"GET /a/b?c=d&e=%20f HTTP/1.1\r\nHost: example.com\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n",
            b"POST /submit HTTP/1.0\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello",
            b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
            b"GET http://example.com:80/x HTTP/1.1\r\nHost: example.com:80\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n\r\n",
            b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
            b"GET /~user/(x)/;p=1 HTTP/1.1\r\nX-Forwarded-For: 10.0.0.1\r\nCookie: a=1; b=2\r\nTransfer-Encoding: chunked\r\n\r\n",
        ];
        let limits = [Limits::default(), Limits::new(Some(64), Some(2))];
        let same = |input: &[u8], limits: Limits| {
            let Some((fast, n)) = parse_request_plain(input, limits) else {
                return false;
            };
            let show = String::from_utf8_lossy(input);
            // The caller skips the line-level checks for what this reader takes.
            assert!(
                crate::hardening::check_head_bytes(&input[..n]).is_ok(),
                "{show:?}"
            );
            let Ok(Some((slow, m))) = parse_request_httparse(input, limits) else {
                panic!("httparse refused what the plain reader took: {show:?}");
            };
            assert_eq!(
                (n, &fast.method, fast.version),
                (m, &slow.method, slow.version),
                "{show:?}"
            );
            assert_eq!(fast.uri, slow.uri, "{show:?}");
            assert_eq!(fast.headers.present, slow.headers.present, "{show:?}");
            assert_eq!(fast.headers.pairs(), slow.headers.pairs(), "{show:?}");
            let (mut a, mut b) = (BytesMut::new(), BytesMut::new());
            write_request_head(&mut a, &fast, |_| {});
            write_request_head(&mut b, &slow, |_| {});
            assert_eq!(a, b, "{show:?}");
            true
        };
        for h in heads {
            assert!(
                same(h, Limits::default()),
                "{:?}",
                String::from_utf8_lossy(h)
            );
            for cut in 0..h.len() {
                for l in limits {
                    same(&h[..cut], l);
                }
            }
        }
        let (taken, tried) = mutations(&heads, 0x2545_f491_4f6c_dd1d, |input, r| {
            same(input, limits[(r % 2) as usize])
        });
        assert!(taken > tried / 20 && taken < tried, "{taken} of {tried}");
    }

    #[test]
    fn plain_run_counts_plain_bytes() {
        for bad in [0u8, b'\r', b'\n', 0x1f, 0x7f, 0x80, 0xff] {
            for len in 0..30 {
                for at in 0..=len {
                    let mut s: Vec<u8> = (0..len).map(|i| b" \tAz~!0"[i % 7]).collect();
                    if at < len {
                        s[at] = bad;
                    }
                    assert_eq!(plain_run(&s), at, "bad {bad:#x} len {len} at {at}");
                }
            }
        }
    }

    /// Dropped fields give their vectors to the next heads of the thread, which then read
    /// as if they were new ones.
    /// A head read into a recycled one holds nothing of the previous request, whatever
    /// was done to that one (lines removed or added, a map built, a longer target, a
    /// partial head in between): each is compared with httparse's reading of a new head.
    #[test]
    fn recycled_request_heads_hold_nothing_of_the_last_request() {
        let heads: [&[u8]; 5] = [
            b"GET /a/very/long/target/with/segments?and=query&more=values HTTP/1.1\r\nHost: example.com\r\nUser-Agent: wrk\r\nAccept: */*\r\nCookie: a=1\r\nX-1: 1\r\nX-2: 2\r\nX-3: 3\r\nX-4: 4\r\nX-5: 5\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n",
            b"POST /submit HTTP/1.0\r\nContent-Length: 5\r\n\r\nhello",
            b"OPTIONS * HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
            b"PURGE /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
        ];
        let pooled = || HEADS.with(|h| h.borrow().len());
        let mut rng = fastrand::Rng::with_seed(0x4ead);
        for round in 0..400 {
            let input = heads[rng.usize(..heads.len())];
            if rng.bool() {
                // A partial head: taken from the pool and given back unread.
                let end = input.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
                let cut = rng.usize(..end);
                let before = pooled();
                assert!(parse_request_plain(&input[..cut], Limits::default()).is_none());
                assert_eq!(pooled(), before.max(1), "round {round}");
            }
            let before = pooled();
            let (mut head, n) = parse_request_plain(input, Limits::default()).unwrap();
            assert_eq!(pooled(), before.saturating_sub(1), "round {round}");
            let (slow, m) = parse_request_httparse(input, Limits::default())
                .unwrap()
                .unwrap();
            let show = String::from_utf8_lossy(input);
            assert_eq!(
                (n, &head.method, head.version, &head.uri),
                (m, &slow.method, slow.version, &slow.uri),
                "{show:?}"
            );
            assert_eq!(head.headers.present, slow.headers.present, "{show:?}");
            assert!(!head.headers.gaps && head.headers.map.is_none(), "{show:?}");
            assert_eq!(head.headers.pairs(), slow.headers.pairs(), "{show:?}");
            let (mut a, mut b) = (BytesMut::new(), BytesMut::new());
            write_request_head(&mut a, &head, |_| {});
            write_request_head(&mut b, &slow, |_| {});
            assert_eq!(a, b, "{show:?}");
            // What a request may do to its head before it is given back.
            match rng.usize(..6) {
                0 => head.headers.remove_all(Known::Host),
                1 => head.headers.push_static(Known::Connection, "close"),
                2 => {
                    head.headers.map_mut();
                }
                // Rules may rewrite the target (`set-path`, `set-uri`).
                3 => head.uri = Uri::from_static("/rewritten?q"),
                4 => head.uri = Uri::try_from(String::from("http://a.example/")).unwrap(),
                _ => {}
            }
            recycle_head(head);
            assert_eq!(pooled(), before.clamp(1, SPARE_HEADS), "round {round}");
        }
    }

    /// Short targets, `/` among them (which the one-pass reader does not pass here), are
    /// the `Uri` `try_from` makes of them.
    #[test]
    fn the_slash_target_is_the_parsed_one() {
        for t in [&b"/"[..], b"*", b"//", b"/a", b"a", b"/?", b"/ "] {
            let want = Uri::try_from(t).ok();
            let got = target_uri(t);
            assert_eq!(got, want, "{:?}", String::from_utf8_lossy(t));
            if let (Some(g), Some(w)) = (&got, &want) {
                assert_eq!(
                    (g.path(), g.query(), g.scheme(), g.authority()),
                    (w.path(), w.query(), w.scheme(), w.authority())
                );
                assert_eq!(g.to_string(), w.to_string());
            }
        }
    }

    /// Targets made on the thread's shared buffer are the `Uri`s `try_from` makes, and
    /// stay so while later targets fill the buffer, reuse it from its start or replace
    /// it (some kept alive across that, others dropped at once).
    #[test]
    fn targets_on_the_shared_buffer_are_the_parsed_ones() {
        let mut rng = fastrand::Rng::with_seed(0x7a6e);
        let mut kept: Vec<(Uri, Vec<u8>)> = Vec::new();
        for i in 0..20_000 {
            let len = match rng.usize(..10) {
                0 => rng.usize(ARENA_TARGET - 2..ARENA_TARGET + 40),
                _ => rng.usize(1..40),
            };
            let mut t = vec![b'/'];
            t.extend((1..len).map(|_| b"abc/?=&%20.~"[rng.usize(..12)]));
            let got = target_uri(&t);
            assert_eq!(got, Uri::try_from(&t[..]).ok(), "{t:?}");
            if let Some(u) = got {
                if rng.usize(..8) == 0 {
                    kept.push((u, t));
                }
            }
            if i % 1000 == 999 {
                for (u, t) in &kept {
                    assert_eq!(*u, Uri::try_from(&t[..]).unwrap());
                    assert_eq!(u.to_string().as_bytes(), &t[..]);
                }
                kept.retain(|_| rng.bool());
            }
        }
        drop(kept);
        let cap = TARGETS.with(|a| a.borrow().capacity());
        assert!(cap <= ARENA_SIZE, "{cap}");
    }

    /// An empty buffer only ever asks for more bytes (`exchange::read_response_head` does
    /// not parse one).
    #[test]
    fn an_empty_buffer_is_an_incomplete_head() {
        assert!(matches!(parse_response(b""), Ok(None)));
        assert!(matches!(parse_request(b"", Limits::default()), Ok(None)));
    }

    #[test]
    fn spare_vectors_are_reused_cleanly() {
        let long = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=UTF-8\r\nX-Long: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\nContent-Length: 2\r\n\r\nhi";
        let short = b"HTTP/1.1 204 No Content\r\nA: b\r\n\r\n";
        let count = || SPARE.with(|s| s.borrow().len());
        drop(parse_response(long).unwrap().unwrap());
        let before = count();
        assert!(before >= 1, "{before:?}");
        let kept = SPARE.with(|s| {
            let s = s.borrow();
            let f = s.last().unwrap();
            assert!(f.lines.is_empty() && f.buf.is_empty() && f.present == 0 && !f.gaps);
            (f.lines.capacity(), f.buf.capacity())
        });
        assert!(kept.0 >= SPARE_LINES && kept.1 >= 60, "{kept:?}");
        let (head, _) = parse_response(short).unwrap().unwrap();
        assert_eq!(count(), before - 1);
        assert_eq!(
            (head.headers.lines.capacity(), head.headers.buf.capacity()),
            kept
        );
        assert_eq!(head.headers.pairs(), vec![("a".to_owned(), b"b".to_vec())]);
        let mut out = BytesMut::new();
        write_response_head(
            &mut out,
            head.version,
            head.status,
            &head.reason,
            &head.headers,
        );
        assert_eq!(&out[..], &b"HTTP/1.1 204 No Content\r\na: b\r\n\r\n"[..]);
        drop(head);
        assert_eq!(count(), before);
    }
}
