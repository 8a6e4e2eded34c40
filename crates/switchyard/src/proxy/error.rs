//! Responses the proxy produces itself, byte-compatible with HAProxy 2.6.
//!
//! Two shapes exist, as in HAProxy: errors raised by the HTTP/1 layer before a
//! request was parsed (400 on a parse error, 408 on `timeout http-request`) are
//! sent raw with capitalised header names and `Connection: close`; all others
//! go through the normal response path (lower-case names, connection header
//! decided like for any response).

use http::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, StatusCode};

/// The raw 400 HAProxy's H1 layer sends for an unparsable request.
pub const RAW_400: &[u8] = b"HTTP/1.1 400 Bad request\r\nContent-length: 90\r\nCache-Control: no-cache\r\nConnection: close\r\nContent-Type: text/html\r\n\r\n<html><body><h1>400 Bad request</h1>\nYour browser sent an invalid request.\n</body></html>\n";

/// The raw 408 HAProxy's H1 layer sends when a request head did not arrive in time.
pub const RAW_408: &[u8] = b"HTTP/1.1 408 Request Time-out\r\nContent-length: 110\r\nCache-Control: no-cache\r\nConnection: close\r\nContent-Type: text/html\r\n\r\n<html><body><h1>408 Request Time-out</h1>\nYour browser didn't send a complete request in time.\n</body></html>\n";

/// The raw 414 for a request line longer than the head limit (`tune.bufsize` less
/// the rewrite reserve). HAProxy 2.6 answers its raw 400 here; switchyard gives the
/// precise code (RFC 9110 §15.5.15), in the shape of HAProxy's H1-layer errors.
pub const RAW_414: &[u8] = b"HTTP/1.1 414 URI Too Long\r\nContent-length: 104\r\nCache-Control: no-cache\r\nConnection: close\r\nContent-Type: text/html\r\n\r\n<html><body><h1>414 URI Too Long</h1>\nThe request line is longer than the proxy accepts.\n</body></html>\n";

/// The raw 431 for a header section over the head limit or with more fields than
/// `tune.http.maxhdr` (HAProxy 2.6: raw 400; RFC 6585 §5).
pub const RAW_431: &[u8] = b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-length: 133\r\nCache-Control: no-cache\r\nConnection: close\r\nContent-Type: text/html\r\n\r\n<html><body><h1>431 Request Header Fields Too Large</h1>\nThe request header fields are larger than the proxy accepts.\n</body></html>\n";

/// The raw page the H1 layer sends for `status`, if it has one.
pub fn raw_page(status: u16) -> Option<&'static [u8]> {
    match status {
        400 => Some(RAW_400),
        408 => Some(RAW_408),
        414 => Some(RAW_414),
        431 => Some(RAW_431),
        _ => None,
    }
}

/// A generated (non-raw) error answer: status, reason phrase, headers and body.
pub struct Generated {
    pub status: StatusCode,
    pub reason: &'static str,
    pub headers: HeaderMap,
    pub body: &'static [u8],
}

/// HAProxy's default page for `status`; statuses without one get the 500 page.
pub fn page(status: u16) -> Generated {
    let (status, reason, body): (u16, &'static str, &'static [u8]) = match status {
        400 => (400, "Bad request", b"<html><body><h1>400 Bad request</h1>\nYour browser sent an invalid request.\n</body></html>\n"),
        403 => (403, "Forbidden", b"<html><body><h1>403 Forbidden</h1>\nRequest forbidden by administrative rules.\n</body></html>\n"),
        408 => (408, "Request Time-out", b"<html><body><h1>408 Request Time-out</h1>\nYour browser didn't send a complete request in time.\n</body></html>\n"),
        429 => (429, "Too Many Requests", b"<html><body><h1>429 Too Many Requests</h1>\nYou have sent too many requests in a given amount of time.\n</body></html>\n"),
        502 => (502, "Bad Gateway", b"<html><body><h1>502 Bad Gateway</h1>\nThe server returned an invalid or incomplete response.\n</body></html>\n"),
        503 => (503, "Service Unavailable", b"<html><body><h1>503 Service Unavailable</h1>\nNo server is available to handle this request.\n</body></html>\n"),
        504 => (504, "Gateway Time-out", b"<html><body><h1>504 Gateway Time-out</h1>\nThe server didn't respond in time.\n</body></html>\n"),
        _ => (500, "Internal Server Error", b"<html><body><h1>500 Internal Server Error</h1>\nAn internal server error occurred.\n</body></html>\n"),
    };
    let mut headers = HeaderMap::with_capacity(4);
    headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/html"));
    Generated {
        status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        reason,
        headers,
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_lengths_match_haproxy() {
        for (code, len) in [
            (400, 90),
            (403, 93),
            (408, 110),
            (429, 117),
            (502, 107),
            (503, 107),
            (504, 92),
            (500, 97),
        ] {
            let p = page(code);
            assert_eq!(p.body.len(), len, "{code}");
            assert_eq!(p.headers[CONTENT_LENGTH], len.to_string().as_str());
        }
        assert!(RAW_400.ends_with(page(400).body));
        assert!(RAW_408.ends_with(page(408).body));
    }

    #[test]
    fn raw_pages_declare_their_body_length() {
        for status in [400, 408, 414, 431] {
            let raw = raw_page(status).unwrap();
            let text = std::str::from_utf8(raw).unwrap();
            let (head, body) = text.split_once("\r\n\r\n").unwrap();
            assert!(head.starts_with(&format!("HTTP/1.1 {status} ")), "{head}");
            assert!(
                head.contains(&format!("Content-length: {}\r\n", body.len())),
                "{head}"
            );
            assert!(head.contains("Connection: close"));
            assert!(body.starts_with(&format!("<html><body><h1>{status} ")));
        }
    }
}
