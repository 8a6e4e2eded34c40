//! `balance url_param <name>`: map-based sdbm hash of the value of the first
//! `name=` parameter of the query string (up to `&`). Without the parameter
//! (or with a bare `name` and no `=`) the request is balanced round robin
//! over the same table, as HAProxy does. `check_post` is not supported.

use std::sync::Arc;

use super::map::MapTable;
use super::{sdbm, Balancer, PickContext};
use crate::backend::ServerState;

#[derive(Debug)]
pub struct UrlParam {
    map: MapTable,
    name: String,
}

impl UrlParam {
    pub fn new(allbackups: bool, nservers: usize, name: &str) -> Self {
        UrlParam {
            map: MapTable::new(allbackups, nservers),
            name: name.to_string(),
        }
    }
}

/// Value of the first `name=` parameter in the query part of `uri`.
pub(crate) fn query_param<'a>(uri: &'a str, name: &str) -> Option<&'a str> {
    let (_, query) = uri.split_once('?')?;
    query
        .split('&')
        .find_map(|p| p.strip_prefix(name).and_then(|rest| rest.strip_prefix('=')))
}

impl Balancer for UrlParam {
    fn pick(&self, servers: &[Arc<ServerState>], ctx: &PickContext<'_>) -> Option<usize> {
        match query_param(ctx.uri, &self.name) {
            Some(v) => self.map.by_hash(servers, ctx, sdbm(v.as_bytes())),
            None => self.map.next_rr(servers, ctx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    #[test]
    fn reference_vectors_and_rr_fallback() {
        let s = servers(&[1, 1, 1]);
        let b = UrlParam::new(false, 3, "uid");
        let h = http::HeaderMap::new();
        let name = |u: &str| s[b.pick(&s, &ctx(u, &h)).unwrap()].name.clone();
        assert_eq!(name("/?uid=1"), "b");
        assert_eq!(name("/p?x=9&uid=2&uid=1"), "c");
        let rr: Vec<_> = ["/", "/?uid", "/?xuid=1", "/"]
            .iter()
            .map(|u| name(u))
            .collect();
        assert_eq!(rr, ["a", "b", "c", "a"]);
    }

    #[test]
    fn param_parsing() {
        assert_eq!(query_param("/?a=1&b=2", "b"), Some("2"));
        assert_eq!(query_param("/?a=", "a"), Some(""));
        assert_eq!(query_param("/?a", "a"), None);
        assert_eq!(query_param("/a=1", "a"), None);
        assert_eq!(query_param("/?ab=1", "a"), None);
    }
}
