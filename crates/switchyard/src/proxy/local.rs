//! Answers the proxy gives itself: HAProxy's error pages, `deny` and
//! `redirect` verdicts, the raw 400, and the mapping from a failed exchange to
//! 502/504.

use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::BytesMut;
use http::header::HeaderValue;
use http::{HeaderMap, StatusCode, Version};

use super::body;
use super::error;
use super::exchange::Fail;
use super::h1;
use super::headers;
use super::Client;
use crate::frontend::Verdict;
use crate::observability::LogRecord;
use crate::snapshot::BackendRt;

/// Answers a `deny` (HAProxy's page for the status, `PR--`) or a `redirect`
/// (`LR--`: empty body, `location`, `cache-control: no-cache`).
pub(super) async fn answer_verdict(
    client: &mut Client,
    rec: &mut LogRecord,
    verdict: Verdict,
    version: Version,
    close: bool,
    started: Instant,
) -> bool {
    match verdict {
        Verdict::Redirect { code, location } => {
            rec.term = *b"LR--";
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::FOUND);
            let mut h = HeaderMap::with_capacity(4);
            h.insert(http::header::CONTENT_LENGTH, HeaderValue::from_static("0"));
            match HeaderValue::from_str(&location) {
                Ok(v) => h.insert(http::header::LOCATION, v),
                Err(_) => return generated(client, rec, 500, version, close, started).await,
            };
            // HAProxy marks temporary redirects uncacheable, not permanent ones (observed).
            if !matches!(code, 301 | 308) {
                h.insert(
                    http::header::CACHE_CONTROL,
                    HeaderValue::from_static("no-cache"),
                );
            }
            let reason = status.canonical_reason().unwrap_or("");
            send_local(client, rec, status, reason, h, b"", version, close, started).await
        }
        Verdict::Deny(status) => {
            rec.term = *b"PR--";
            generated(client, rec, status, version, close, started).await
        }
        Verdict::Continue => true,
    }
}

/// Sends a generated error page; returns whether the client connection stays open.
pub(super) async fn generated(
    client: &mut Client,
    rec: &mut LogRecord,
    status: u16,
    version: Version,
    close: bool,
    started: Instant,
) -> bool {
    let page = error::page(status);
    send_local(
        client,
        rec,
        page.status,
        page.reason,
        page.headers,
        page.body,
        version,
        close,
        started,
    )
    .await
}

/// Sends a response the proxy produced itself.
#[allow(clippy::too_many_arguments)]
pub(super) async fn send_local(
    client: &mut Client,
    rec: &mut LogRecord,
    status: StatusCode,
    reason: &str,
    mut headers: HeaderMap,
    body: &[u8],
    version: Version,
    close: bool,
    started: Instant,
) -> bool {
    headers::downstream_connection(&mut headers, version, Version::HTTP_11, close);
    let mut out = BytesMut::with_capacity(256);
    h1::write_response_head(&mut out, Version::HTTP_11, status, reason, &headers);
    out.extend_from_slice(body);
    rec.status = status.as_u16();
    rec.bytes = out.len() as u64;
    rec.t_total = started.elapsed().as_millis() as i64;
    let ok = body::write_all(&mut client.stream, &out, None)
        .await
        .is_ok();
    ok && !close
}

/// The answer to a request `crate::hardening` or the head limits refused: HAProxy's
/// raw 400 for a 400, a raw page in the same shape for 414 and 431, else a bodiless
/// raw answer with the refusal's status (417, 501, 505), always `Connection: close`;
/// nothing was forwarded and the connection closes.
pub(super) async fn raw_reject(
    client: &mut Client,
    rec: &mut LogRecord,
    reject: crate::hardening::Reject,
) -> bool {
    if let Some(page) = error::raw_page(reject.status) {
        let _ = body::write_all(&mut client.stream, page, None).await;
        rec.status = reject.status;
        rec.bytes = 0;
        if rec.term[0] == b'-' {
            rec.term[..2].copy_from_slice(b"PR");
        }
        return false;
    }
    let status = StatusCode::from_u16(reject.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut out = BytesMut::with_capacity(128);
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.extend_from_slice(b" ");
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(
        b"\r\nContent-length: 0\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n",
    );
    let _ = body::write_all(&mut client.stream, &out, None).await;
    rec.status = status.as_u16();
    rec.bytes = 0;
    if rec.term[0] == b'-' {
        rec.term[..2].copy_from_slice(b"PR");
    }
    false
}

pub(super) async fn raw_400(client: &mut Client, rec: &mut LogRecord) -> bool {
    let _ = body::write_all(&mut client.stream, error::RAW_400, None).await;
    rec.status = 400;
    rec.bytes = 0;
    if rec.term[0] == b'-' {
        rec.term[..2].copy_from_slice(b"PR");
    }
    false
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn exchange_failed(
    client: &mut Client,
    rec: &mut LogRecord,
    fail: Fail,
    be: &BackendRt,
    si: usize,
    version: Version,
    close: bool,
    started: Instant,
) -> bool {
    let (status, term): (u16, &[u8; 2]) = match fail {
        Fail::ServerClosed { .. } => (502, b"SH"),
        Fail::ServerTimeout => (504, b"sH"),
        Fail::BadResponse => (502, b"PH"),
        Fail::BadRequestBody => {
            rec.term[..2].copy_from_slice(b"PD");
            return raw_400(client, rec).await;
        }
        Fail::ClientAborted | Fail::ClientTimeout => {
            rec.term[0] = if fail == Fail::ClientTimeout {
                b'c'
            } else {
                b'C'
            };
            rec.term[1] = b'D';
            return false;
        }
    };
    be.server_counters[si]
        .response_errors
        .fetch_add(1, Ordering::Relaxed);
    rec.term[..2].copy_from_slice(term);
    generated(
        client,
        rec,
        status,
        version,
        close || fail != Fail::ServerTimeout,
        started,
    )
    .await
}
