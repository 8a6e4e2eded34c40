//! Fuzzes the request head path a client's bytes take: the HTTP/1 head parser, then every
//! hardening check, then the normalisation applied before routing. Besides "never panics":
//! - a parsed head never claims more bytes than it was given;
//! - a head the checks accept normalises to a target that parses again as a URI, and
//!   normalising it a second time changes nothing (routing sees one stable path).
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard::hardening::{check_head, normalize_request};
use switchyard::proxy::h1::{parse_request, request_body_kind, Limits};

fuzz_target!(|data: &[u8]| {
    let Ok(Some((mut head, len))) = parse_request(data, Limits::default()) else {
        return;
    };
    assert!(len <= data.len());
    let _ = request_body_kind(&mut head);
    if check_head(
        &data[..len],
        &head.method,
        &head.uri,
        head.version,
        &head.headers,
    )
    .is_err()
    {
        return;
    }
    normalize_request(&mut head.uri, &mut head.headers);
    let once = head.uri.to_string();
    assert!(
        once.parse::<http::Uri>().is_ok(),
        "normalised target does not parse: {once:?}"
    );
    let changed = normalize_request(&mut head.uri, &mut head.headers);
    assert!(
        !changed || head.uri.to_string() == once,
        "normalisation is not idempotent: {once:?}"
    );
});
