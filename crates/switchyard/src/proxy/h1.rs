//! HTTP/1.x message heads: parsing (httparse), framing rules and serialisation.
//!
//! Heads are parsed into `http` types so that routing, balancing and cookie code
//! work on one representation. Header names come out lower-cased (as HAProxy's
//! HTX does); values and the order of distinct names are kept. Framing follows
//! RFC 9112 §6.3 strictly: anything ambiguous is a parse error, so a request we
//! cannot frame never reaches a server.

use bytes::{BufMut, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
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
    pub headers: HeaderMap,
}

/// A parsed status line and headers.
#[derive(Debug)]
pub struct ResponseHead {
    pub status: StatusCode,
    /// The server's reason phrase, forwarded as sent.
    pub reason: String,
    pub version: Version,
    pub headers: HeaderMap,
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
pub fn parse_request(
    buf: &[u8],
    limits: Limits,
) -> Result<Option<(RequestHead, usize)>, ParseError> {
    let mut stack = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut heap;
    let raw: &mut [httparse::Header<'_>] = if limits.max_headers <= MAX_HEADERS {
        &mut stack[..limits.max_headers]
    } else {
        heap = vec![httparse::EMPTY_HEADER; limits.max_headers];
        &mut heap
    };
    let mut req = httparse::Request::new(raw);
    let len = match req.parse(buf) {
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
    let headers = header_map(req.headers)?;
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
pub fn parse_response(buf: &[u8]) -> Result<Option<(ResponseHead, usize)>, ParseError> {
    let mut raw = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut res = httparse::Response::new(&mut raw);
    let len = match res.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => return Err(ParseError::TooLarge),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(ParseError::Invalid),
    };
    let status = StatusCode::from_u16(res.code.unwrap_or(0)).map_err(|_| ParseError::Invalid)?;
    let reason = res.reason.unwrap_or("").to_owned();
    let version = version_of(res.version);
    let headers = header_map(res.headers)?;
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

fn header_map(raw: &[httparse::Header<'_>]) -> Result<HeaderMap, ParseError> {
    let mut map = HeaderMap::with_capacity(raw.len());
    for h in raw {
        let name = HeaderName::from_bytes(h.name.as_bytes()).map_err(|_| ParseError::Invalid)?;
        let value = HeaderValue::from_bytes(trim(h.value)).map_err(|_| ParseError::Invalid)?;
        map.append(name, value);
    }
    Ok(map)
}

fn trim(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &v[start..end]
}

/// Request framing (RFC 9112 §6.3). With both `Transfer-Encoding: chunked` and
/// `Content-Length`, chunked wins and `Content-Length` is removed (the caller
/// must then close the client connection after the response, as HAProxy does).
pub fn request_body_kind(head: &mut RequestHead) -> Result<BodyKind, ParseError> {
    if head.headers.contains_key(TRANSFER_ENCODING) {
        if head.version == Version::HTTP_10 || !ends_with_chunked(&head.headers) {
            return Err(ParseError::Framing);
        }
        super::headers::remove_ordered(&mut head.headers, &CONTENT_LENGTH);
        return Ok(BodyKind::StrictChunked);
    }
    let (n, repeated) = content_length(&head.headers)?;
    normalise_length(&mut head.headers, n, repeated);
    match n {
        Some(0) | None => Ok(BodyKind::None),
        Some(n) => Ok(BodyKind::Length(n)),
    }
}

/// Repeated but equal `Content-Length` values are forwarded as one header.
fn normalise_length(headers: &mut HeaderMap, n: Option<u64>, repeated: bool) {
    if let (true, Some(n)) = (repeated, n) {
        headers.insert(CONTENT_LENGTH, HeaderValue::from(n));
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
    if head.headers.contains_key(TRANSFER_ENCODING) {
        super::headers::remove_ordered(&mut head.headers, &CONTENT_LENGTH);
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

fn ends_with_chunked(headers: &HeaderMap) -> bool {
    let last = headers.get_all(TRANSFER_ENCODING).iter().next_back();
    last.and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("chunked"))
}

/// All `Content-Length` values (also comma lists) must agree. Also says whether the
/// value was repeated (several lines or a list), in the same single look-up.
fn content_length(headers: &HeaderMap) -> Result<(Option<u64>, bool), ParseError> {
    let mut found: Option<u64> = None;
    let mut values = 0usize;
    for v in headers.get_all(CONTENT_LENGTH) {
        let s = v.to_str().map_err(|_| ParseError::Framing)?;
        for part in s.split(',') {
            let part = part.trim();
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) || part.len() > 18 {
                return Err(ParseError::Framing);
            }
            let n: u64 = part.parse().map_err(|_| ParseError::Framing)?;
            if found.is_some_and(|f| f != n) {
                return Err(ParseError::Framing);
            }
            found = Some(n);
            values += 1;
        }
    }
    Ok((found, values > 1))
}

/// True when the `Connection` header lists `token` (case-insensitive).
pub fn connection_has(headers: &HeaderMap, token: &str) -> bool {
    headers.get_all(CONNECTION).iter().any(|v| {
        v.to_str()
            .map(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
            .unwrap_or(false)
    })
}

/// Number of `Host` headers (HAProxy rejects more than one).
pub fn host_count(headers: &HeaderMap) -> usize {
    headers.get_all(HOST).iter().count()
}

/// Appends `METHOD target VERSION\r\n` + headers + `extra` + `\r\n`.
pub fn write_request_head(
    out: &mut BytesMut,
    head: &RequestHead,
    extra: &[(HeaderName, HeaderValue)],
) {
    out.put_slice(head.method.as_str().as_bytes());
    out.put_u8(b' ');
    write_target(out, &head.uri);
    out.put_slice(if head.version == Version::HTTP_10 {
        b" HTTP/1.0\r\n"
    } else {
        b" HTTP/1.1\r\n"
    });
    write_headers(out, &head.headers, extra);
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
    headers: &HeaderMap,
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
    write_headers(out, headers, &[]);
}

fn write_headers(out: &mut BytesMut, headers: &HeaderMap, extra: &[(HeaderName, HeaderValue)]) {
    for (name, value) in headers.iter().chain(extra.iter().map(|(n, v)| (n, v))) {
        out.put_slice(name.as_str().as_bytes());
        out.put_slice(b": ");
        out.put_slice(value.as_bytes());
        out.put_slice(b"\r\n");
    }
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
