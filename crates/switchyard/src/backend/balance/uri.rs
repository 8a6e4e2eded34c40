//! `balance uri [len N] [depth N] [whole] [path-only]`: map-based sdbm hash
//! of the request URI up to `?` (everything with `whole`), limited to the
//! first `len` characters and to `depth` directory levels (the hash stops at
//! the `depth+1`-th slash). `path-only` skips the scheme and authority of an
//! absolute-form URI. `/x` and `/x?q=1` land on the same server.

use std::sync::Arc;

use super::map::MapTable;
use super::{sdbm, Balancer, PickContext};
use crate::backend::ServerState;

#[derive(Debug, Clone, Copy, Default)]
pub struct UriOptions {
    pub len: Option<u32>,
    pub depth: Option<u32>,
    pub whole: bool,
    pub path_only: bool,
}

#[derive(Debug)]
pub struct Uri {
    map: MapTable,
    opts: UriOptions,
}

impl Uri {
    pub fn new(allbackups: bool, nservers: usize, opts: UriOptions) -> Self {
        Uri {
            map: MapTable::new(allbackups, nservers),
            opts,
        }
    }
}

/// The part of an absolute-form URI starting at its path (`""` if none);
/// origin-form targets are returned as is.
pub(crate) fn path_and_query(uri: &str) -> &str {
    if uri.starts_with('/') || uri.starts_with('*') {
        return uri;
    }
    match uri.find("://") {
        Some(p) => {
            let rest = &uri[p + 3..];
            match rest.find(['/', '?']) {
                Some(q) => &rest[q..],
                None => "",
            }
        }
        None => uri,
    }
}

/// The bytes HAProxy hashes for `balance uri`.
pub(crate) fn uri_key<'a>(uri: &'a str, o: &UriOptions) -> &'a [u8] {
    let uri = if o.path_only {
        path_and_query(uri)
    } else {
        uri
    };
    let mut bytes = uri.as_bytes();
    if let Some(len) = o.len.filter(|&l| l > 0) {
        bytes = &bytes[..bytes.len().min(len as usize)];
    }
    let stop_at = o.depth.filter(|&d| d > 0).map(|d| d as usize + 1);
    let mut slashes = 0;
    for (i, &c) in bytes.iter().enumerate() {
        if c == b'/' {
            slashes += 1;
            if Some(slashes) == stop_at {
                return &bytes[..i];
            }
        } else if c == b'?' && !o.whole {
            return &bytes[..i];
        }
    }
    bytes
}

impl Balancer for Uri {
    fn pick(&self, servers: &[Arc<ServerState>], ctx: &PickContext<'_>) -> Option<usize> {
        let h = sdbm(uri_key(ctx.uri, &self.opts));
        self.map.by_hash(servers, ctx, h)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    fn pick(b: &Uri, s: &[Arc<ServerState>], uri: &str) -> String {
        let h = http::HeaderMap::new();
        s[b.pick(s, &ctx(uri, &h)).unwrap()].name.clone()
    }

    #[test]
    fn reference_vectors() {
        let s = servers(&[1, 1, 1]);
        let b = Uri::new(false, 3, UriOptions::default());
        assert_eq!(pick(&b, &s, "/x"), "c");
        assert_eq!(pick(&b, &s, "/y"), "a");
        assert_eq!(pick(&b, &s, "/x?q=1"), "c");
        let s = servers(&[1, 1, 1, 1]);
        let b = Uri::new(false, 4, UriOptions::default());
        let got: Vec<_> = ["/url1", "/url2", "/url3", "/url4"]
            .iter()
            .map(|u| pick(&b, &s, u))
            .collect();
        assert_eq!(got, ["b", "c", "d", "a"]);
    }

    #[test]
    fn key_options() {
        let o = |len, depth, whole, path_only| UriOptions {
            len,
            depth,
            whole,
            path_only,
        };
        let d = UriOptions::default();
        assert_eq!(uri_key("/a/b?c", &d), b"/a/b");
        assert_eq!(uri_key("/a/b?c", &o(None, None, true, false)), b"/a/b?c");
        assert_eq!(uri_key("/a/b/c", &o(None, Some(2), false, false)), b"/a/b");
        assert_eq!(uri_key("/a/b/c", &o(None, Some(1), false, false)), b"/a");
        assert_eq!(uri_key("/abcdef", &o(Some(3), None, false, false)), b"/ab");
        assert_eq!(
            uri_key("http://h:80/p?q", &o(None, None, false, true)),
            b"/p"
        );
        assert_eq!(uri_key("http://h:80/p?q", &d), b"http://h:80/p");
        assert_eq!(path_and_query("http://h"), "");
    }
}
