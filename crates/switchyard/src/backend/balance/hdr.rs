//! `balance hdr(<name>) [use_domain_only]`: map-based sdbm hash of the first
//! comma-delimited value of the first occurrence of the header. Absent or
//! empty header: round robin over the same table. `use_domain_only` hashes
//! only the label before the top-level domain (`www.example.com` ->
//! `example`), meant for `Host`.

use std::sync::Arc;

use super::map::MapTable;
use super::{sdbm, Balancer, PickContext};
use crate::backend::ServerState;

#[derive(Debug)]
pub struct Hdr {
    map: MapTable,
    name: http::HeaderName,
    use_domain_only: bool,
}

impl Hdr {
    /// An invalid header name can never be present, so every request is
    /// balanced round robin.
    pub fn new(allbackups: bool, nservers: usize, name: &str, use_domain_only: bool) -> Self {
        let name = http::HeaderName::from_bytes(name.as_bytes()).unwrap_or(
            http::HeaderName::from_static("x-switchyard-invalid-header-name"),
        );
        Hdr {
            map: MapTable::new(allbackups, nservers),
            name,
            use_domain_only,
        }
    }
}

/// First comma-delimited value of the first occurrence, trimmed.
pub(crate) fn first_value<'a>(
    headers: &'a http::HeaderMap,
    name: &http::HeaderName,
) -> Option<&'a [u8]> {
    let v = headers.get(name)?.as_bytes();
    let end = memchr::memchr(b',', v).unwrap_or(v.len());
    Some(v[..end].trim_ascii())
}

/// HAProxy's `use_domain_only` key: walking back from the end, the label
/// before the last dot (`www.example.com` -> `example`; no dot: all of it).
/// Ported exactly, including that the byte just before the last dot is never
/// taken as a delimiter (`a..b` -> `a.`). HAProxy also looks at the byte just
/// past the value, which makes its choice for some hosts (`x.y`) depend on
/// what follows the header in its buffer; that byte is treated as not a dot.
pub(crate) fn domain_only(v: &[u8]) -> &[u8] {
    let n = v.len();
    let (mut p, mut end, mut dohash) = (n, n, false);
    while p > 0 {
        if dohash {
            if v[p - 1] == b'.' {
                break;
            }
        } else if p < n && v[p] == b'.' {
            end = p;
            dohash = true;
        }
        p -= 1;
    }
    &v[p..end]
}

impl Balancer for Hdr {
    fn pick(&self, servers: &[Arc<ServerState>], ctx: &PickContext<'_>) -> Option<usize> {
        match first_value(ctx.headers, &self.name) {
            Some(v) if !v.is_empty() => {
                let key = if self.use_domain_only {
                    domain_only(v)
                } else {
                    v
                };
                self.map.by_hash(servers, ctx, sdbm(key))
            }
            _ => self.map.next_rr(servers, ctx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    fn hm(pairs: &[(&'static str, &'static str)]) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, http::HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn hashes_first_value_and_falls_back_to_rr() {
        let s = servers(&[1, 1, 1]);
        let b = Hdr::new(false, 3, "X-Tenant", false);
        let name = |h: &http::HeaderMap| s[b.pick(&s, &ctx("/", h)).unwrap()].name.clone();
        // sdbm("t1") % 3 and sdbm("t2") % 3
        let t1 = (sdbm(b"t1") % 3) as u8;
        let t2 = (sdbm(b"t2") % 3) as u8;
        assert_eq!(
            name(&hm(&[("x-tenant", "t1")])),
            ((b'a' + t1) as char).to_string()
        );
        assert_eq!(
            name(&hm(&[("x-tenant", "t2, t1")])),
            ((b'a' + t2) as char).to_string()
        );
        let rr: Vec<_> = [hm(&[]), hm(&[("x-tenant", "")]), hm(&[]), hm(&[])]
            .iter()
            .map(name)
            .collect();
        assert_eq!(rr, ["a", "b", "c", "a"]);
    }

    #[test]
    fn domain_only_label() {
        assert_eq!(domain_only(b"www.example.com"), b"example");
        assert_eq!(domain_only(b"example.com"), b"example");
        assert_eq!(domain_only(b"localhost"), b"localhost");
        assert_eq!(domain_only(b"a..b"), b"a.");
        assert_eq!(domain_only(b"x.y"), b"x");
        assert_eq!(domain_only(b"www.example.com:8080"), b"example");
        assert_eq!(domain_only(b"host."), b"host");
        assert_eq!(domain_only(b""), b"");
        let s = servers(&[1, 1, 1]);
        let b = Hdr::new(false, 3, "host", true);
        let a = b.pick(&s, &ctx("/", &hm(&[("host", "www.example.com")])));
        let c = b.pick(&s, &ctx("/", &hm(&[("host", "api.example.org")])));
        assert_eq!(a, c);
    }
}
