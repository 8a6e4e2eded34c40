//! The `Cookie` request header: HAProxy's parser and its in-place rewrite
//! for `indirect` and `prefix` (`http_manage_client_side_cookies`).

use http::header::COOKIE;
use http::{HeaderMap, HeaderValue};
use switchyard_config::{CookieConfig, CookieMode};

use super::{CookieField, CookieFields};

/// One `name=value` pair of a `Cookie` header, with byte offsets into the header value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CookiePair<'a> {
    /// Name, spaces trimmed (may be empty; starts with `$` for attributes).
    pub name: &'a [u8],
    /// Value, spaces trimmed, quotes kept; empty without `=`.
    pub value: &'a [u8],
    /// Whether the pair had an `=` (pairs without one are never persistence cookies).
    pub has_equal: bool,
    /// Offset of the name's first byte.
    pub start: usize,
    /// Offset of the delimiter ending the pair (or the header length).
    pub end: usize,
    /// Offset of the value's first byte.
    pub value_start: usize,
    /// Offset of the `=` (or of the pair's end when there is none).
    pub equal: usize,
}

/// Iterator over the pairs of one `Cookie` header value.
#[derive(Debug, Clone)]
pub struct CookieIter<'a> {
    v: &'a [u8],
    /// Offset of the next pair's leading delimiter (0 before the first pair).
    prev: usize,
    first: bool,
}

/// Splits a `Cookie` header value the way HAProxy does: pairs end at `;` or
/// `,` outside double quotes (backslash escapes inside quotes), blanks around
/// names, `=` and values are ignored. Total on any input, never panics.
pub fn parse_cookie_header(value: &[u8]) -> CookieIter<'_> {
    CookieIter {
        v: value,
        prev: 0,
        first: true,
    }
}

pub(super) fn is_sp(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

/// End of a cookie value: the first `;` or `,` outside quotes.
fn cookie_value_end(v: &[u8], mut i: usize) -> usize {
    let (mut quoted, mut escaped) = (false, false);
    while i < v.len() {
        let c = v[i];
        if escaped {
            escaped = false;
        } else if quoted {
            if c == b'\\' {
                escaped = true;
            } else if c == b'"' {
                quoted = false;
            }
        } else if c == b'"' {
            quoted = true;
        } else if c == b',' || c == b';' {
            return i;
        }
        i += 1;
    }
    i
}

impl<'a> Iterator for CookieIter<'a> {
    type Item = CookiePair<'a>;

    fn next(&mut self) -> Option<CookiePair<'a>> {
        let v = self.v;
        if self.prev >= v.len() {
            return None;
        }
        let mut att_beg = self.prev;
        if !self.first {
            att_beg += 1;
        }
        self.first = false;
        while att_beg < v.len() && is_sp(v[att_beg]) {
            att_beg += 1;
        }
        let (mut equal, mut att_end) = (att_beg, att_beg);
        while equal < v.len() {
            let c = v[equal];
            if c == b'=' || c == b',' || c == b';' {
                break;
            }
            equal += 1;
            if !is_sp(c) {
                att_end = equal;
            }
        }
        let (val_beg, val_end, next, has_equal) = if equal < v.len() && v[equal] == b'=' {
            let mut val_beg = equal + 1;
            while val_beg < v.len() && is_sp(v[val_beg]) {
                val_beg += 1;
            }
            let next = cookie_value_end(v, val_beg);
            let mut val_end = next;
            while val_end > val_beg && is_sp(v[val_end - 1]) {
                val_end -= 1;
            }
            (val_beg, val_end, next, true)
        } else {
            (equal, equal, equal, false)
        };
        self.prev = next;
        Some(CookiePair {
            name: &v[att_beg..att_end],
            value: &v[val_beg..val_end],
            has_equal,
            start: att_beg,
            end: next,
            value_start: val_beg,
            equal,
        })
    }
}

/// Rewrites the forwarded request: removes the persistence cookie with `indirect`,
/// strips `<srvcookie>~` in `prefix` mode.
///
/// The rewrite is HAProxy's, byte for byte (checked against HAProxy 2.6.12):
/// blanks around `=` are removed from every pair whenever a persistence
/// cookie is configured; with `insert indirect` every pair named `NAME` is
/// removed together with the `$`-attributes that follow it, and the
/// delimiter after the removed block replaces the one before it, followed by
/// one space (`a=1,SRVNAME=S1,b=2` -> `a=1, b=2`); a header left empty (or
/// holding only `$`-attributes) is dropped. In prefix mode the value's
/// `<srvcookie>~` part is removed whether or not it named a server.
///
/// Returns the `Cookie` headers as they were when it changed them (for
/// [`super::apply_response`], which reads the client's cookie dates), None when it
/// left them alone: the usual case (`insert` without `indirect`, no blanks
/// around `=`), which neither copies nor builds anything.
pub fn prepare_request(
    cfg: &CookieConfig,
    fields: &mut (impl CookieFields + ?Sized),
) -> Option<HeaderMap> {
    let strip = cfg.mode == CookieMode::Insert && cfg.indirect;
    let prefix = cfg.mode == CookieMode::Prefix;
    let name = cfg.name.as_bytes();
    let needs_change = fields.cookie_values(CookieField::Cookie).any(|v| {
        // Without `indirect` or `prefix`, only blanks around an `=` change anything:
        // a header without any is not parsed.
        if !strip && !prefix && !blank_beside_equal(v) {
            return false;
        }
        parse_cookie_header(v).any(|p| {
            let ours = p.has_equal && p.name == name;
            (p.has_equal && (p.start + p.name.len() != p.equal || p.value_start != p.equal + 1))
                || (ours && (strip || (prefix && p.value.contains(&b'~'))))
        })
    });
    if !needs_change {
        return None;
    }
    let headers = fields.fields_map();
    let old: Vec<HeaderValue> = headers.get_all(COOKIE).iter().cloned().collect();
    let mut original = HeaderMap::with_capacity(old.len());
    headers.remove(COOKIE);
    for v in old {
        original.append(COOKIE, v.clone());
        let rewritten = rewrite_cookie_header(name, v.as_bytes(), strip, prefix);
        if rewritten.is_empty() {
            continue;
        }
        if let Ok(nv) = HeaderValue::from_bytes(&rewritten) {
            headers.append(COOKIE, nv);
        }
    }
    Some(original)
}

/// Whether some `=` of `v` has a blank right before or after it (a necessary
/// condition for a pair with blanks around its `=`).
fn blank_beside_equal(v: &[u8]) -> bool {
    memchr::memchr_iter(b'=', v)
        .any(|i| (i > 0 && is_sp(v[i - 1])) || v.get(i + 1).is_some_and(|&c| is_sp(c)))
}

/// HAProxy's in-place walk over one `Cookie` header (`http_manage_client_side_cookies`).
fn rewrite_cookie_header(name: &[u8], src: &[u8], strip: bool, prefix: bool) -> Vec<u8> {
    let mut v = src.to_vec();
    let (mut prev, mut first) = (0usize, true);
    let mut del_from: Option<usize> = None;
    let mut preserve = false;
    while let Some(p) = (CookieIter { v: &v, prev, first }).next() {
        first = false;
        let att_end = p.start + p.name.len();
        let (equal, mut val_beg, mut next) = (p.equal, p.value_start, p.end);
        let dollar = p.name.first() == Some(&b'$');
        let ours = p.has_equal && p.name == name;
        let tilde = if ours && prefix {
            memchr::memchr(b'~', p.value)
        } else {
            None
        };
        let has_equal = p.has_equal;
        if dollar {
            prev = next;
            continue;
        }
        if has_equal {
            // Blanks around '=' go away.
            let before = equal - att_end;
            v.drain(att_end..equal);
            val_beg -= before;
            let after = val_beg - (att_end + 1);
            v.drain(att_end + 1..val_beg);
            val_beg -= after;
            next -= before + after;
        }
        if ours {
            if strip {
                del_from.get_or_insert(prev);
            } else if let Some(t) = tilde {
                v.drain(val_beg..val_beg + t + 1);
                next -= t + 1;
            }
        } else {
            preserve = true;
            if let Some(from) = del_from.take() {
                let removed = del_hdr_value(&mut v, from, prev);
                next -= removed;
            }
        }
        prev = next;
    }
    if let Some(from) = del_from {
        if preserve {
            v.truncate(from);
            while v.last().is_some_and(|&c| is_sp(c)) {
                v.pop();
            }
        } else {
            v.clear();
        }
    }
    v
}

/// HAProxy's `http_del_hdr_value`: removes `from..next` (`next` is the
/// delimiter before the value that stays), keeping that delimiter and one
/// space. Returns how many bytes were removed.
fn del_hdr_value(v: &mut Vec<u8>, from: usize, mut next: usize) -> usize {
    let end = v.len();
    let mut prev = from;
    if prev == 0 {
        if next < end {
            next += 1;
        }
        while next < end && is_sp(v[next]) {
            next += 1;
        }
    } else {
        while prev > 0 && is_sp(v[prev - 1]) {
            prev -= 1;
        }
        if next < end {
            v[prev] = v[next];
            prev += 1;
            next += 1;
            if prev + 1 < next {
                v[prev] = b' ';
                prev += 1;
            }
            while next < end && is_sp(v[next]) {
                next += 1;
            }
        }
    }
    v.drain(prev..next);
    next - prev
}
