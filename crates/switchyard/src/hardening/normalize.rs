//! Path normalisation (RFC 3986 §6.2.2, §5.2.4) and HAProxy's `http-request normalize-uri`.
//!
//! # Default: switchyard normalises the path before routing *and* forwards the result
//!
//! A path ACL (`path_beg /internal`) is only as good as the agreement between what the
//! proxy matches and what the origin serves. `/%69nternal`, `/x/../internal`,
//! `//internal` and `/x/%2e%2e/internal` are all served as `/internal` by common origins,
//! yet HAProxy 2.6 matches its ACLs on the raw path and lets them through unless the
//! configuration adds `http-request normalize-uri` rules (measured: 3/9 of the corpus's
//! ACL cases denied). nginx normalises for its `location` match (9/9).
//!
//! switchyard therefore applies [`default_path`] to every request path before any ACL,
//! `use_backend` rule or balancing hash sees it, and forwards the normalised path, so
//! that routing and the origin see the same string. The transformation only produces a
//! URI that RFC 3986 §6.2.2 defines as equivalent (decoding `%XX` of *unreserved*
//! characters, upper-casing the remaining escapes, removing dot-segments), plus merging
//! repeated slashes, which is not an RFC equivalence but is what nginx (`merge_slashes
//! on`, its default) and most file-serving origins do. Reserved escapes such as `%2F`
//! and `%3F` are never decoded (that would change the path's structure). The query
//! string is left untouched. A configuration that needs raw paths can still match them
//! with `req.uri`-style fetches; the explicit `http-request normalize-uri <op>` actions
//! ([`crate::frontend::normalize::apply`]) stay available for HAProxy compatibility.
//!
//! The steps reuse the frontend's `normalize-uri` normalisers; dot-segment removal is
//! RFC 3986 §5.2.4 (`..` above the root is dropped, like HAProxy's `path-strip-dotdot
//! full`), since `/../internal` must not escape a `path_beg /internal` rule either.

use std::borrow::Cow;

use crate::frontend::normalize::{merge_slashes, percent_decode_unreserved, percent_to_uppercase};

/// The default normalisation applied before routing and forwarding (see the module docs).
/// Idempotent: `default_path(default_path(p)) == default_path(p)`.
pub fn default_path(path: &str) -> Cow<'_, str> {
    if already_normal(path.as_bytes()) {
        return Cow::Borrowed(path);
    }
    let a = percent_decode_unreserved(path);
    let b = percent_to_uppercase(&a);
    let c = merge_slashes(&b);
    let d = remove_dot_segments(&c);
    if d == path {
        Cow::Borrowed(path)
    } else {
        Cow::Owned(d.into_owned())
    }
}

/// A path none of the steps can change: no `%`, no `//`, no segment starting with a dot
/// (so no dot-segment). One pass; paths with dots in segments take the full way.
fn already_normal(path: &[u8]) -> bool {
    let mut prev = 0;
    for &c in path {
        if c == b'%' || (prev == b'/' && (c == b'.' || c == b'/')) {
            return false;
        }
        prev = c;
    }
    path.first() != Some(&b'.')
}

/// [`already_normal`] on the path part of `path?query` (up to the first `?`), without
/// splitting first: the usual request takes one pass and no other work.
#[inline]
fn normal_up_to_query(pq: &[u8]) -> bool {
    let mut prev = 0;
    for &c in pq {
        if c == b'?' {
            break;
        }
        if c == b'%' || (prev == b'/' && (c == b'.' || c == b'/')) {
            return false;
        }
        prev = c;
    }
    pq.first() != Some(&b'.')
}

/// [`default_path`] applied to the path part of an origin-form `path?query`.
#[inline]
pub fn default_path_and_query(pq: &str) -> Cow<'_, str> {
    if normal_up_to_query(pq.as_bytes()) {
        return Cow::Borrowed(pq);
    }
    normalize_path_and_query(pq)
}

/// [`default_path_and_query`] for a path some step may change.
fn normalize_path_and_query(pq: &str) -> Cow<'_, str> {
    let (path, query) = match pq.find('?') {
        Some(i) => (&pq[..i], Some(&pq[i..])),
        None => (pq, None),
    };
    match default_path(path) {
        Cow::Borrowed(_) => Cow::Borrowed(pq),
        Cow::Owned(mut p) => {
            p.push_str(query.unwrap_or(""));
            Cow::Owned(p)
        }
    }
}

/// RFC 3986 §5.2.4 `remove_dot_segments`.
pub fn remove_dot_segments(path: &str) -> Cow<'_, str> {
    if !path.split('/').any(|s| s == "." || s == "..") {
        return Cow::Borrowed(path);
    }
    let mut input = path;
    let mut out = String::with_capacity(path.len());
    while !input.is_empty() {
        if let Some(rest) = input
            .strip_prefix("../")
            .or_else(|| input.strip_prefix("./"))
        {
            input = rest;
        } else if input.starts_with("/./") {
            input = &input[2..];
        } else if input == "/." {
            input = "/";
        } else if input.starts_with("/../") || input == "/.." {
            input = if input == "/.." { "/" } else { &input[3..] };
            match out.rfind('/') {
                Some(i) => out.truncate(i),
                None => out.clear(),
            }
        } else if input == "." || input == ".." {
            input = "";
        } else {
            let start = usize::from(input.starts_with('/'));
            let end = input[start..].find('/').map_or(input.len(), |i| i + start);
            out.push_str(&input[..end]);
            input = &input[end..];
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_path_and_query_shortcut_agrees_with_splitting_first() {
        let alphabet = ['/', '.', '%', '?', 'a', '2', 'e', 'F', '#', '&'];
        let mut rng = fastrand::Rng::with_seed(0x9a7);
        for _ in 0..crate::hardening::test_cases(20_000) {
            let pq: String = (0..rng.usize(0..10))
                .map(|_| alphabet[rng.usize(..alphabet.len())])
                .collect();
            let (path, query) = match pq.find('?') {
                Some(i) => (&pq[..i], &pq[i..]),
                None => (&pq[..], ""),
            };
            let split = match default_path(path) {
                Cow::Borrowed(_) => pq.clone(),
                Cow::Owned(p) => p + query,
            };
            assert_eq!(default_path_and_query(&pq), split, "{pq:?}");
        }
    }

    #[test]
    fn acl_bypass_set_normalises_to_internal() {
        for p in [
            "/%69nternal",
            "/x/../internal",
            "//internal",
            "/./internal",
            "/x/%2e%2e/internal",
            "/%2e/internal",
            "/%2E%2E/internal",
            "/a/b/../../internal",
            "/../internal",
        ] {
            assert_eq!(default_path(p), "/internal", "{p}");
        }
    }

    #[test]
    fn keeps_what_must_not_change() {
        for p in [
            "/",
            "/a/b",
            "/a%2Fb",
            "/a%3Fb",
            "/caf%C3%A9",
            "/%zz",
            "/a%",
            "/a%2",
            "/a/",
        ] {
            assert_eq!(default_path(p), p, "{p}");
            assert!(matches!(default_path(p), Cow::Borrowed(_)));
        }
        assert_eq!(default_path("/a%2fb"), "/a%2Fb");
        assert_eq!(default_path("/a/./b/."), "/a/b/");
        assert_eq!(
            default_path_and_query("/x/../a?b=/../c//d"),
            "/a?b=/../c//d"
        );
        assert_eq!(default_path_and_query("/a?x"), "/a?x");
    }

    #[test]
    fn rfc3986_examples() {
        assert_eq!(remove_dot_segments("/a/b/c/./../../g"), "/a/g");
        assert_eq!(remove_dot_segments("mid/content=5/../6"), "mid/6");
        assert_eq!(remove_dot_segments("/.."), "/");
        assert_eq!(remove_dot_segments("/a/.."), "/");
    }

    fn random_path(rng: &mut fastrand::Rng) -> String {
        let parts = [
            "a", "b", "internal", ".", "..", "", "%2e", "%2E%2e", "%69", "%2F", "x%41", "~", "%zz",
            "é",
        ];
        let mut p = String::new();
        for _ in 0..rng.usize(0..7) {
            p.push('/');
            p.push_str(parts[rng.usize(..parts.len())]);
        }
        if p.is_empty() {
            p.push('/');
        }
        p
    }

    /// Properties: idempotent; never leaves a dot-segment, an empty segment or an
    /// escaped unreserved character; and never decodes or invents a `%2F`.
    #[test]
    fn random_paths_properties() {
        let mut rng = fastrand::Rng::with_seed(3);
        for _ in 0..crate::hardening::test_cases(20_000) {
            let p = random_path(&mut rng);
            let n = default_path(&p).into_owned();
            assert_eq!(default_path(&n), n, "not idempotent for {p:?}");
            assert!(n.starts_with('/'), "{p:?} -> {n:?}");
            let segs: Vec<&str> = n[1..].split('/').collect();
            for (i, s) in segs.iter().enumerate() {
                assert!(*s != "." && *s != "..", "{p:?} -> {n:?}");
                assert!(!s.is_empty() || i + 1 == segs.len(), "{p:?} -> {n:?}");
            }
            assert!(
                !n.contains("%2e")
                    && !n.contains("%2E")
                    && !n.contains("%69")
                    && !n.contains("%41"),
                "{p:?} -> {n:?}"
            );
            assert!(
                n.matches("%2F").count() <= p.matches("%2F").count(),
                "{p:?} -> {n:?}"
            );
        }
    }
}
