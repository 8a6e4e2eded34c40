//! Byte-level validation of a request head (RFC 9112 §2.2, §3, §5).

use super::{is_field_value_byte, is_tchar, Reject, TCHAR};

/// Validates the raw request head: from the first byte received for this request
/// through the empty line that ends the header section (bytes after it are ignored).
///
/// Enforces what `httparse` lets through and every line-level rule besides:
/// - lines end in CRLF only: a bare LF or a bare CR anywhere is a 400 (rule 12: one
///   rule for request line, fields and chunk lines; re-emitting is not enough because
///   the byte log would then differ from what routing saw);
/// - at most one leading empty line before the request line is skipped (RFC 9112 §2.2);
/// - request line = `method SP request-target SP HTTP-version CRLF`, one SP each, method a
///   token, target visible ASCII without `#`; `HTTP/x.y` other than 1.0/1.1 is a 505;
/// - field lines: token name, no whitespace before the colon, no obs-fold (a line
///   starting with SP/HTAB, including before the first field), values without CTLs;
/// - a head that does not end with an empty line is a 400.
pub fn check_head_bytes(head: &[u8]) -> Result<(), Reject> {
    if well_formed(head) {
        return Ok(());
    }
    let mut pos = 0;
    if head.starts_with(b"\r\n") {
        pos = 2;
    }
    let line = next_line(head, &mut pos)?;
    check_request_line(line)?;
    loop {
        let line = next_line(head, &mut pos)?;
        if line.is_empty() {
            return Ok(());
        }
        check_field_line(line)?;
    }
}

/// One pass over the bytes for the usual head, with the same grammar as the checks
/// below: `true` only when every rule holds. `false` sends the head through the
/// line-by-line checks, which then name the rule it breaks.
fn well_formed(head: &[u8]) -> bool {
    let rest = head.strip_prefix(b"\r\n").unwrap_or(head);
    let Some(rest) = run(rest, &TCHAR, b' ').and_then(|r| run(r, &TARGET, b' ')) else {
        return false;
    };
    let Some(mut rest) = http_version(rest) else {
        return false;
    };
    loop {
        if rest.starts_with(b"\r\n") {
            return true;
        }
        let Some(value) = run(rest, &TCHAR, b':') else {
            return false;
        };
        let end = value_len(value);
        match value.get(end..end + 2) {
            Some(b"\r\n") => rest = &value[end + 2..],
            _ => return false,
        }
    }
}

/// A non-empty run of bytes of `class` at the start of `s`, then `end`: what follows `end`.
#[inline]
fn run<'a>(s: &'a [u8], class: &[bool; 256], end: u8) -> Option<&'a [u8]> {
    let n = s
        .iter()
        .position(|&b| !class[usize::from(b)])
        .unwrap_or(s.len());
    (n > 0 && s.get(n) == Some(&end)).then(|| &s[n + 1..])
}

/// `HTTP/1.1\r\n` or `HTTP/1.0\r\n` at the start of `s`: what follows it.
#[inline]
fn http_version(s: &[u8]) -> Option<&[u8]> {
    const V11: u64 = u64::from_le_bytes(*b"HTTP/1.1");
    const V10: u64 = u64::from_le_bytes(*b"HTTP/1.0");
    let (v, rest) = s.split_first_chunk::<8>()?;
    let v = u64::from_le_bytes(*v);
    ((v == V11 || v == V10) && rest.starts_with(b"\r\n")).then(|| &rest[2..])
}

/// The length of the run of field-value bytes at the start of `s`. Eight bytes at a
/// time while none of them is below 0x20 or DEL (then all are VCHAR, SP or obs-text);
/// byte by byte from the first word holding one (HTAB is such a byte, and is valid).
#[inline]
fn value_len(s: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut i = 0;
    while let Some(w) = s.get(i..i + 8) {
        let w = u64::from_le_bytes(w.try_into().unwrap_or_default());
        // Some byte below 0x20 (exact as a presence test for thresholds <= 0x80), or
        // some byte equal to 0x7f (a zero byte of `w ^ 0x7f..`).
        let below_space = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
        let del = w ^ (ONES * 0x7f);
        let del = del.wrapping_sub(ONES) & !del & HIGH;
        if below_space | del != 0 {
            break;
        }
        i += 8;
    }
    while i < s.len() && is_field_value_byte(s[i]) {
        i += 1;
    }
    i
}

/// Request-target bytes (visible ASCII without `#`) as a table.
static TARGET: [bool; 256] = byte_table!(target_byte);

const fn target_byte(b: u8) -> bool {
    b >= b'!' && b <= b'~' && b != b'#'
}

/// The next CRLF-terminated line starting at `pos` (without the CRLF).
fn next_line<'a>(buf: &'a [u8], pos: &mut usize) -> Result<&'a [u8], Reject> {
    let start = *pos;
    let rest = &buf[start..];
    let Some(lf) = memchr::memchr(b'\n', rest) else {
        return Err(if memchr::memchr(b'\r', rest).is_some() {
            Reject::bad("bare CR")
        } else {
            Reject::bad("incomplete head")
        });
    };
    if lf == 0 || rest[lf - 1] != b'\r' {
        return Err(Reject::bad("bare LF"));
    }
    let line = &rest[..lf - 1];
    if memchr::memchr(b'\r', line).is_some() {
        return Err(Reject::bad("bare CR"));
    }
    *pos = start + lf + 1;
    Ok(line)
}

fn check_request_line(line: &[u8]) -> Result<(), Reject> {
    let mut parts = line.splitn(3, |&b| b == b' ');
    let method = parts.next().unwrap_or_default();
    let target = parts
        .next()
        .ok_or(Reject::bad("request line without target"))?;
    let version = parts
        .next()
        .ok_or(Reject::bad("request line without version"))?;
    if method.is_empty() || !method.iter().all(|&b| is_tchar(b)) {
        return Err(Reject::bad("invalid method"));
    }
    if target.is_empty()
        || !target
            .iter()
            .all(|&b| (b'!'..=b'~').contains(&b) && b != b'#')
    {
        return Err(Reject::bad("invalid request-target"));
    }
    match version {
        b"HTTP/1.1" | b"HTTP/1.0" => Ok(()),
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            Err(Reject {
                status: 505,
                reason: "HTTP version not supported",
            })
        }
        _ => Err(Reject::bad("invalid HTTP version")),
    }
}

fn check_field_line(line: &[u8]) -> Result<(), Reject> {
    if matches!(line.first(), Some(b' ' | b'\t')) {
        return Err(Reject::bad("obs-fold or whitespace before a field line"));
    }
    let colon = memchr::memchr(b':', line).ok_or(Reject::bad("field line without colon"))?;
    let name = &line[..colon];
    if name.is_empty() {
        return Err(Reject::bad("empty field name"));
    }
    if matches!(name.last(), Some(b' ' | b'\t')) {
        return Err(Reject::bad("whitespace before colon"));
    }
    if !name.iter().all(|&b| is_tchar(b)) {
        return Err(Reject::bad("invalid field name"));
    }
    if !line[colon + 1..].iter().all(|&b| is_field_value_byte(b)) {
        return Err(Reject::bad("control character in field value"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(h: &[u8]) {
        assert_eq!(
            check_head_bytes(h),
            Ok(()),
            "{}",
            String::from_utf8_lossy(h)
        );
    }

    fn status(h: &[u8]) -> u16 {
        check_head_bytes(h)
            .expect_err(&String::from_utf8_lossy(h))
            .status
    }

    #[test]
    fn accepts_valid_heads() {
        ok(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        ok(b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
        ok(b"GET http://a/x?y=1 HTTP/1.0\r\n\r\n");
        ok(b"POST /p HTTP/1.1\r\nHost: a\r\nX-A: caf\xe9\tx\r\nX-Empty:\r\nContent-Length: 5\r\n\r\nhello");
        ok(b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n");
    }

    #[test]
    fn rejects_line_ending_tricks() {
        assert_eq!(status(b"GET / HTTP/1.1\nHost: a\n\n"), 400);
        assert_eq!(status(b"GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/1.1\rHost: a\r\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/1.1\r\nX: a\rb\r\n\r\n"), 400);
        assert_eq!(status(b"\n\nGET / HTTP/1.1\r\n\r\n"), 400);
        assert_eq!(status(b"\r\n\r\nGET / HTTP/1.1\r\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/1.1\r\nHost: a\r\n"), 400);
    }

    #[test]
    fn rejects_request_line_tricks() {
        for h in [
            &b"GET  / HTTP/1.1\r\n\r\n"[..],
            b"GET\t/ HTTP/1.1\r\n\r\n",
            b"G(ET / HTTP/1.1\r\n\r\n",
            b" / HTTP/1.1\r\n\r\n",
            b"GET /a b HTTP/1.1\r\n\r\n",
            b"GET /a#b HTTP/1.1\r\n\r\n",
            b"GET /a\x00 HTTP/1.1\r\n\r\n",
            b"GET /caf\xe9 HTTP/1.1\r\n\r\n",
            b"GET / http/1.1\r\n\r\n",
            b"GET / HTTP/1.32\r\n\r\n",
            b"GET / HTTP/1\r\n\r\n",
            b"GET / HTTP/1.1 \r\n\r\n",
            b"GET /\r\n\r\n",
            b"GET / HTTP/1.1\x00\r\n\r\n",
        ] {
            assert_eq!(status(h), 400, "{}", String::from_utf8_lossy(h));
        }
        assert_eq!(status(b"GET / HTTP/2.0\r\n\r\n"), 505);
    }

    #[test]
    fn rejects_field_tricks() {
        for f in [
            &b"X-A : b"[..],
            b"X-A\t: b",
            b" X-A: b",
            b": b",
            b"X-A",
            b"X A: b",
            b"X(A): b",
            b"X-\x80A: b",
            b"X-A\x7f: b",
            b"X-A: a\x00b",
            b"X-A: a\x01b",
            b"X-A: a\x7fb",
            b"X-A: \x0b",
            b"X-A: \x1b[31m",
        ] {
            let mut h = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
            h.extend_from_slice(f);
            h.extend_from_slice(b"\r\n\r\n");
            assert_eq!(status(&h), 400, "{}", String::from_utf8_lossy(f));
        }
        assert_eq!(status(b"GET / HTTP/1.1\r\nX-A: a\r\n b\r\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/1.1\r\n Host: a\r\n\r\n"), 400);
    }

    /// Long field values go through `value_len` eight bytes at a time: every invalid byte
    /// at every offset is still refused, and every valid one (HTAB, DEL's neighbours,
    /// obs-text) accepted.
    #[test]
    fn long_values_checked_at_every_offset() {
        for len in [7, 8, 9, 15, 16, 17, 31] {
            for at in 0..len {
                for (b, valid) in [
                    (0u8, false),
                    (0x1f, false),
                    (0x7f, false),
                    (b'\r', false),
                    (b'\n', false),
                    (b'\t', true),
                    (b' ', true),
                    (0x7e, true),
                    (0x80, true),
                    (0xff, true),
                ] {
                    let mut v = vec![b'v'; len];
                    v[at] = b;
                    let mut h = b"GET / HTTP/1.1\r\nHost: a\r\nX-Long: ".to_vec();
                    h.extend_from_slice(&v);
                    h.extend_from_slice(b"\r\nX-B: c\r\n\r\n");
                    assert_eq!(check_head_bytes(&h).is_ok(), valid, "{len} {at} {b:#x}");
                }
            }
        }
    }

    /// Property: single-byte mutations of a valid head are accepted only if the result is
    /// still a valid head by an independent, naive re-statement of the grammar.
    #[test]
    fn random_mutations_agree_with_a_naive_model() {
        let base =
            b"POST /p?q=1 HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\nX-A: b c\r\n\r\n";
        let mut rng = fastrand::Rng::with_seed(0x5eed);
        let interesting = [
            0u8, b'\r', b'\n', b' ', b'\t', b':', b'#', 0x7f, 0x80, 0x01, b'a',
        ];
        for _ in 0..crate::hardening::test_cases(20_000) {
            let mut h = base.to_vec();
            let i = rng.usize(..h.len() - 4);
            let b = if rng.bool() {
                interesting[rng.usize(..interesting.len())]
            } else {
                rng.u8(..)
            };
            match rng.u8(..3) {
                0 => h[i] = b,
                1 => h.insert(i, b),
                _ => {
                    h.remove(i);
                }
            }
            let got = check_head_bytes(&h).is_ok();
            assert_eq!(got, naive_valid(&h), "{:?}", String::from_utf8_lossy(&h));
        }
    }

    fn naive_valid(h: &[u8]) -> bool {
        let s: Vec<u8> = h.strip_prefix(b"\r\n").unwrap_or(h).to_vec();
        let Some(end) = s.windows(4).position(|w| w == b"\r\n\r\n") else {
            return false;
        };
        let head = &s[..end];
        let lines: Vec<&[u8]> = head.split(|&b| b == b'\n').collect();
        // Every line but the last must end with CR; no other CR or LF anywhere.
        for (n, l) in lines.iter().enumerate() {
            let body = if n + 1 < lines.len() {
                match l.strip_suffix(b"\r") {
                    Some(b) => b,
                    None => return false,
                }
            } else {
                l
            };
            if body.contains(&b'\r') {
                return false;
            }
        }
        let lines: Vec<&[u8]> = head
            .split(|&b| b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .collect();
        let rl: Vec<&[u8]> = lines[0].split(|&b| b == b' ').collect();
        if rl.len() != 3 || rl[0].is_empty() || !rl[0].iter().all(|&b| is_tchar(b)) {
            return false;
        }
        if rl[1].is_empty()
            || rl[1]
                .iter()
                .any(|&b| !(0x21..0x7f).contains(&b) || b == b'#')
        {
            return false;
        }
        if rl[2] != b"HTTP/1.1" && rl[2] != b"HTTP/1.0" {
            return false;
        }
        lines[1..].iter().all(|l| {
            let Some(c) = l.iter().position(|&b| b == b':') else {
                return false;
            };
            !l[..c].is_empty()
                && l[..c].iter().all(|&b| is_tchar(b))
                && l[c + 1..]
                    .iter()
                    .all(|&b| b == b'\t' || (0x20..0x7f).contains(&b) || b >= 0x80)
        })
    }
}
