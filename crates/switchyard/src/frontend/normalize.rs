//! HAProxy's `http-request normalize-uri` normalizers (`uri_normalizer.c`).
//!
//! The path normalizers (`path-merge-slashes`, `path-strip-dotdot`,
//! `path-strip-dot`) work on the path only; the percent-encoding ones on the
//! path and the query. Invalid percent sequences are left as they are (the
//! `strict` variants, which answer 400, are not part of the model).

use std::borrow::Cow;

use switchyard_config::NormalizeUri;

/// Applies one normalizer to a request target; `None` when nothing changed.
pub fn apply(n: NormalizeUri, uri: &http::Uri) -> Option<http::Uri> {
    let pq = uri.path_and_query()?.as_str();
    let (path, query) = match pq.find('?') {
        Some(q) => (&pq[..q], Some(&pq[q..])),
        None => (pq, None),
    };
    let new_pq: Cow<'_, str> = match n {
        NormalizeUri::PathMergeSlashes => join(merge_slashes(path), query),
        NormalizeUri::PathStripDotdot => join(strip_dotdot(path), query),
        NormalizeUri::PathStripDot => join(strip_dot(path), query),
        NormalizeUri::PercentDecodeUnreserved => percent_decode_unreserved(pq),
        NormalizeUri::PercentToUppercase => percent_to_uppercase(pq),
    };
    if new_pq == pq {
        return None;
    }
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(new_pq.parse().ok()?);
    http::Uri::from_parts(parts).ok()
}

fn join<'a>(path: Cow<'a, str>, query: Option<&str>) -> Cow<'a, str> {
    match (path, query) {
        (p, None) => p,
        (p, Some(q)) => Cow::Owned(format!("{p}{q}")),
    }
}

/// `//` -> `/`.
pub fn merge_slashes(path: &str) -> Cow<'_, str> {
    if !path.contains("//") {
        return Cow::Borrowed(path);
    }
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if c == '/' && out.ends_with('/') {
            continue;
        }
        out.push(c);
    }
    Cow::Owned(out)
}

/// Removes each `..` segment together with the segment before it:
/// `/foo/../bar/` -> `/bar/`, `/foo//../` -> `/foo/`. `..` segments that
/// would climb above the root are kept (`/../bar/` unchanged, `/bar/../../` ->
/// `/../`), as without HAProxy's `full` option.
pub fn strip_dotdot(path: &str) -> Cow<'_, str> {
    if !path.split('/').any(|s| s == "..") {
        return Cow::Borrowed(path);
    }
    let rooted = path.starts_with('/');
    let segs: Vec<&str> = path.split('/').skip(usize::from(rooted)).collect();
    let mut kept: Vec<&str> = Vec::with_capacity(segs.len());
    let mut up = 0usize;
    for (i, seg) in segs.iter().enumerate().rev() {
        if *seg == ".." {
            up += 1;
            if i == segs.len() - 1 {
                // A final `..` keeps the directory form: `/a/b/..` -> `/a/`.
                kept.push("");
            }
        } else if up > 0 && !(i == segs.len() - 1 && seg.is_empty()) {
            up -= 1;
        } else {
            kept.push(seg);
        }
    }
    kept.extend(std::iter::repeat_n("..", up));
    kept.reverse();
    let body = kept.join("/");
    Cow::Owned(if rooted { format!("/{body}") } else { body })
}

/// Removes `.` segments: `/./bar/` -> `/bar/`, `/a/.` -> `/a/`, `/.` -> `/`.
pub fn strip_dot(path: &str) -> Cow<'_, str> {
    if !path.split('/').any(|s| s == ".") {
        return Cow::Borrowed(path);
    }
    let segs: Vec<&str> = path.split('/').collect();
    let last = segs.len() - 1;
    let mut kept: Vec<&str> = Vec::with_capacity(segs.len());
    for (i, s) in segs.iter().enumerate() {
        if *s == "." {
            if i == last {
                kept.push("");
            }
            continue;
        }
        kept.push(s);
    }
    Cow::Owned(kept.join("/"))
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

fn is_unreserved(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~')
}

/// `%61` -> `a` for unreserved characters only.
pub fn percent_decode_unreserved(s: &str) -> Cow<'_, str> {
    rewrite_percent(s, |hi, lo, out| {
        let c = (hi << 4) | lo;
        if is_unreserved(c) {
            out.push(c as char);
            true
        } else {
            false
        }
    })
}

/// `%2f` -> `%2F`.
pub fn percent_to_uppercase(s: &str) -> Cow<'_, str> {
    rewrite_percent(s, |hi, lo, out| {
        out.push('%');
        out.push(
            char::from_digit(u32::from(hi), 16)
                .unwrap_or('0')
                .to_ascii_uppercase(),
        );
        out.push(
            char::from_digit(u32::from(lo), 16)
                .unwrap_or('0')
                .to_ascii_uppercase(),
        );
        true
    })
}

/// Walks `%XX` sequences; `f` may write a replacement and return true.
fn rewrite_percent(s: &str, f: impl Fn(u8, u8, &mut String) -> bool) -> Cow<'_, str> {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(hi), Some(lo)) = (hex(b[i + 1]), hex(b[i + 2])) {
                if f(hi, lo, &mut out) {
                    i += 3;
                    continue;
                }
            }
        }
        let ch = s[i..].chars().next().unwrap_or('\u{fffd}');
        out.push(ch);
        i += ch.len_utf8();
    }
    if out == s {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_slashes_examples() {
        assert_eq!(merge_slashes("//"), "/");
        assert_eq!(merge_slashes("/foo//bar"), "/foo/bar");
        assert_eq!(merge_slashes("/foo///bar//"), "/foo/bar/");
        assert_eq!(merge_slashes("/a/b"), "/a/b");
    }

    #[test]
    fn strip_dotdot_examples() {
        assert_eq!(strip_dotdot("/foo/../"), "/");
        assert_eq!(strip_dotdot("/foo/../bar/"), "/bar/");
        assert_eq!(strip_dotdot("/foo/bar/../"), "/foo/");
        assert_eq!(strip_dotdot("/../bar/"), "/../bar/");
        assert_eq!(strip_dotdot("/bar/../../"), "/../");
        assert_eq!(strip_dotdot("/foo//../"), "/foo/");
        assert_eq!(strip_dotdot("/a/b/.."), "/a/");
        assert_eq!(strip_dotdot("/a/..b/c"), "/a/..b/c");
        assert_eq!(strip_dotdot("/a/b/../../c"), "/c");
    }

    #[test]
    fn strip_dot_examples() {
        assert_eq!(strip_dot("/."), "/");
        assert_eq!(strip_dot("/./bar/"), "/bar/");
        assert_eq!(strip_dot("/a/./a"), "/a/a");
        assert_eq!(strip_dot("/.well-known/"), "/.well-known/");
        assert_eq!(strip_dot("/a/."), "/a/");
    }

    #[test]
    fn percent_examples() {
        assert_eq!(percent_decode_unreserved("/%6f"), "/o");
        assert_eq!(percent_decode_unreserved("/%6F%2f%7E"), "/o%2f~");
        assert_eq!(percent_decode_unreserved("/%zz%4"), "/%zz%4");
        assert_eq!(percent_to_uppercase("/%2f?a=%3d"), "/%2F?a=%3D");
        assert_eq!(percent_to_uppercase("/%zz%a"), "/%zz%a");
        assert_eq!(percent_to_uppercase("/é%e9"), "/é%E9");
    }

    #[test]
    fn random_paths_are_idempotent_and_valid() {
        let mut rng = fastrand::Rng::with_seed(11);
        let parts = [
            "/", "//", ".", "..", "a", "%2f", "%61", "%zz", "b.c", "?", "=", "~",
        ];
        for _ in 0..20_000 {
            let mut path = String::from("/");
            for _ in 0..rng.usize(0..10) {
                path.push_str(parts[rng.usize(0..parts.len())]);
            }
            let path = path.replace('?', "");
            for f in [
                merge_slashes,
                strip_dot,
                strip_dotdot,
                percent_to_uppercase,
                percent_decode_unreserved,
            ] {
                let once = f(&path).into_owned();
                assert_eq!(f(&once), once.as_str(), "{path}");
                assert!(once.starts_with('/'), "{path} -> {once}");
            }
            let d = strip_dotdot(&path);
            // Only leading `..` segments (above the root) may remain.
            let mut segs = d.split('/').skip(1).skip_while(|s| *s == "..");
            assert!(!segs.any(|s| s == ".."), "{path} -> {d}");
            let u: http::Uri = format!("{path}?q=%2f").parse().unwrap();
            for n in [
                NormalizeUri::PathMergeSlashes,
                NormalizeUri::PathStripDotdot,
                NormalizeUri::PathStripDot,
                NormalizeUri::PercentDecodeUnreserved,
                NormalizeUri::PercentToUppercase,
            ] {
                if let Some(v) = apply(n, &u) {
                    assert!(v.path().starts_with('/'), "{u} -> {v}");
                }
            }
        }
    }

    /// Each path through each normalizer, as HAProxy 2.6.12 rewrote it
    /// (`http-request normalize-uri <n>` then `return ... lf-string "%[url]"`).
    #[test]
    fn normalizers_match_haproxy() {
        let order = [
            NormalizeUri::PathMergeSlashes,
            NormalizeUri::PathStripDotdot,
            NormalizeUri::PathStripDot,
            NormalizeUri::PercentDecodeUnreserved,
            NormalizeUri::PercentToUppercase,
        ];
        #[rustfmt::skip]
        let cases: &[(&str, [&str; 5])] = &[
        ("/a//b", ["/a/b", "/a//b", "/a//b", "/a//b", "/a//b"]),
        ("//", ["/", "//", "//", "//", "//"]),
        ("///x//y/", ["/x/y/", "///x//y/", "///x//y/", "///x//y/", "///x//y/"]),
        ("/a//b?c//d", ["/a/b?c//d", "/a//b?c//d", "/a//b?c//d", "/a//b?c//d", "/a//b?c//d"]),
        ("/foo/../", ["/foo/../", "/", "/foo/../", "/foo/../", "/foo/../"]),
        ("/foo/../bar/", ["/foo/../bar/", "/bar/", "/foo/../bar/", "/foo/../bar/", "/foo/../bar/"]),
        ("/foo/bar/../", ["/foo/bar/../", "/foo/", "/foo/bar/../", "/foo/bar/../", "/foo/bar/../"]),
        ("/../bar/", ["/../bar/", "/../bar/", "/../bar/", "/../bar/", "/../bar/"]),
        ("/bar/../../", ["/bar/../../", "/../", "/bar/../../", "/bar/../../", "/bar/../../"]),
        ("/foo//../", ["/foo/../", "/foo/", "/foo//../", "/foo//../", "/foo//../"]),
        ("/a/b/..", ["/a/b/..", "/a/", "/a/b/..", "/a/b/..", "/a/b/.."]),
        ("/a/..b/c", ["/a/..b/c", "/a/..b/c", "/a/..b/c", "/a/..b/c", "/a/..b/c"]),
        ("/a/b/../../c", ["/a/b/../../c", "/c", "/a/b/../../c", "/a/b/../../c", "/a/b/../../c"]),
        ("/a/./b", ["/a/./b", "/a/./b", "/a/b", "/a/./b", "/a/./b"]),
        ("/.", ["/.", "/.", "/", "/.", "/."]),
        ("/./bar/", ["/./bar/", "/./bar/", "/bar/", "/./bar/", "/./bar/"]),
        ("/a/.", ["/a/.", "/a/.", "/a/", "/a/.", "/a/."]),
        ("/.well-known/", ["/.well-known/", "/.well-known/", "/.well-known/", "/.well-known/", "/.well-known/"]),
        ("/a/./b?x=./y", ["/a/./b?x=./y", "/a/./b?x=./y", "/a/b?x=./y", "/a/./b?x=./y", "/a/./b?x=./y"]),
        ("/%6f", ["/%6f", "/%6f", "/%6f", "/o", "/%6F"]),
        ("/%6F%2f%7E", ["/%6F%2f%7E", "/%6F%2f%7E", "/%6F%2f%7E", "/o%2f~", "/%6F%2F%7E"]),
        ("/%zz%4", ["/%zz%4", "/%zz%4", "/%zz%4", "/%zz%4", "/%zz%4"]),
        ("/%2f?a=%3d", ["/%2f?a=%3d", "/%2f?a=%3d", "/%2f?a=%3d", "/%2f?a=%3d", "/%2F?a=%3D"]),
        ("/a?%61=%62", ["/a?%61=%62", "/a?%61=%62", "/a?%61=%62", "/a?a=b", "/a?%61=%62"]),
        ("/%41%5a%30%2D%2e%5F%7e%20", ["/%41%5a%30%2D%2e%5F%7e%20", "/%41%5a%30%2D%2e%5F%7e%20", "/%41%5a%30%2D%2e%5F%7e%20", "/AZ0-._~%20", "/%41%5A%30%2D%2E%5F%7E%20"]),
        ("/a/%2e%2e/b", ["/a/%2e%2e/b", "/a/%2e%2e/b", "/a/%2e%2e/b", "/a/../b", "/a/%2E%2E/b"]),
        ("/x/../..?q=/../", ["/x/../..?q=/../", "/../?q=/../", "/x/../..?q=/../", "/x/../..?q=/../", "/x/../..?q=/../"]),
        ("/..", ["/..", "/../", "/..", "/..", "/.."]),
        ("/a/../..", ["/a/../..", "/../", "/a/../..", "/a/../..", "/a/../.."]),
        ("/a%2F..%2fb", ["/a%2F..%2fb", "/a%2F..%2fb", "/a%2F..%2fb", "/a%2F..%2fb", "/a%2F..%2Fb"]),
        ("/a/./../b/.", ["/a/./../b/.", "/a/b/.", "/a/../b/", "/a/./../b/.", "/a/./../b/."]),
        ("/./.", ["/./.", "/./.", "/", "/./.", "/./."]),
        ("/a/..//b", ["/a/../b", "//b", "/a/..//b", "/a/..//b", "/a/..//b"]),
        ("/a/b/../c/./d/", ["/a/b/../c/./d/", "/a/c/./d/", "/a/b/../c/d/", "/a/b/../c/./d/", "/a/b/../c/./d/"]),
        ];
        for (input, want) in cases {
            let u: http::Uri = input.parse().unwrap();
            for (n, w) in order.iter().zip(want) {
                let got = apply(*n, &u).unwrap_or_else(|| u.clone());
                assert_eq!(got.to_string(), *w, "{n:?} {input}");
            }
        }
    }

    #[test]
    fn apply_keeps_query_and_authority() {
        let u: http::Uri = "/a//b/./c/../d?x=//y".parse().unwrap();
        let u = apply(NormalizeUri::PathMergeSlashes, &u).unwrap();
        assert_eq!(u, "/a/b/./c/../d?x=//y");
        let u = apply(NormalizeUri::PathStripDot, &u).unwrap();
        let u = apply(NormalizeUri::PathStripDotdot, &u).unwrap();
        assert_eq!(u, "/a/b/d?x=//y");
        assert!(apply(NormalizeUri::PathStripDot, &u).is_none());
        let abs: http::Uri = "http://h:8/%61//b".parse().unwrap();
        let abs = apply(NormalizeUri::PercentDecodeUnreserved, &abs).unwrap();
        assert_eq!(abs.to_string(), "http://h:8/a//b");
    }
}
