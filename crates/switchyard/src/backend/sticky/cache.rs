//! Response cacheability, for `cookie ... nocache`.

use http::header::CACHE_CONTROL;
use http::HeaderMap;

/// HAProxy 2.6.12's cacheability rule for `nocache` (checked against it over
/// 22 header sets x 15 statuses x 5 methods). A response starts cacheable
/// when the method is GET/HEAD/OPTIONS/TRACE and the status one of 200, 203,
/// 204, 206, 300, 301, 404, 405, 410, 414, 501. `Pragma: no-cache` makes it
/// uncacheable. Then each `Cache-Control` value, in order: `public` makes it
/// cacheable again (whatever the method and status), `private`, `no-cache`,
/// `no-store`, `max-age=0` and `s-maxage=0` make it uncacheable, other
/// `max-age`/`s-maxage` values count as freshness information. Finally it
/// needs freshness information (or an `Expires` header) or a validator
/// (`ETag`, `Last-Modified`).
pub fn cacheable(method: &http::Method, status: http::StatusCode, headers: &HeaderMap) -> bool {
    use http::Method;
    let mut ok = [Method::GET, Method::HEAD, Method::OPTIONS, Method::TRACE].contains(method)
        && matches!(
            status.as_u16(),
            200 | 203 | 204 | 206 | 300 | 301 | 404 | 405 | 410 | 414 | 501
        );
    if headers
        .get_all(http::header::PRAGMA)
        .iter()
        .any(|v| v.as_bytes().trim_ascii().eq_ignore_ascii_case(b"no-cache"))
    {
        return false;
    }
    let mut fresh = false;
    let values = headers
        .get_all(CACHE_CONTROL)
        .into_iter()
        .flat_map(|v| v.as_bytes().split(|&c| c == b','))
        .map(<[u8]>::trim_ascii);
    for v in values {
        let starts = |p: &[u8]| v.len() >= p.len() && v[..p.len()].eq_ignore_ascii_case(p);
        if v.eq_ignore_ascii_case(b"public") {
            ok = true;
        } else if [
            &b"private"[..],
            b"no-cache",
            b"no-store",
            b"max-age=0",
            b"s-maxage=0",
        ]
        .iter()
        .any(|p| v.eq_ignore_ascii_case(p))
        {
            ok = false;
        } else if starts(b"s-maxage") || starts(b"max-age") {
            fresh = true;
        }
    }
    if !fresh {
        fresh = headers.contains_key(http::header::EXPIRES);
    }
    let validator = headers.contains_key(http::header::ETAG)
        || headers.contains_key(http::header::LAST_MODIFIED);
    ok && (fresh || validator)
}
