//! Routing decisions: ACL evaluation, `http-request` rules, `use_backend`.
//! Pure and synchronous: no `.await`, no I/O.
//!
//! - `acl`: sample fetches, match methods, conditions ([`CompiledAcls`]).
//! - `rules`: `http-request` / `http-response` rule lists ([`RequestRules`], [`ResponseRules`]).
//! - `normalize`: HAProxy's `normalize-uri` normalizers.

use std::net::{IpAddr, SocketAddr};

use switchyard_config::{Condition, Frontend};

mod acl;
pub mod normalize;
mod rules;

pub use acl::CompiledAcls;
pub use rules::{RequestRules, ResponseRules, Verdict};

/// What routing may look at in a request.
#[derive(Debug, Clone, Copy)]
pub struct RequestInfo<'a> {
    pub method: &'a http::Method,
    /// The request target as sent (origin or absolute form).
    pub uri: &'a http::Uri,
    pub version: http::Version,
    pub headers: &'a http::HeaderMap,
    pub src: IpAddr,
    pub dst: SocketAddr,
}

impl<'a> RequestInfo<'a> {
    /// A view of a request's head.
    pub fn from_parts(p: &'a http::request::Parts, src: IpAddr, dst: SocketAddr) -> Self {
        RequestInfo {
            method: &p.method,
            uri: &p.uri,
            version: p.version,
            headers: &p.headers,
            src,
            dst,
        }
    }
}

/// The frontend's switching rules compiled.
#[derive(Debug)]
pub struct Router {
    acls: CompiledAcls,
    rules: Vec<Rule>,
    default_backend: Option<usize>,
}

/// One `use_backend` rule.
#[derive(Debug)]
struct Rule {
    backend: usize,
    cond: Option<Condition>,
    /// The rule's test when it is `if <acl>` / `unless <acl>` (possibly `!<acl>`) over an
    /// ACL of a single `path_beg` line without `-i` (the seed's `/engine.io` rule):
    /// the prefixes, and whether a match means the rule does *not* apply. The
    /// condition's general evaluation gives `(any prefix matches != negated) != unless`
    /// for it (one group of one term, one criterion, `path` yields one sample).
    path_beg: Option<(Vec<Vec<u8>>, bool)>,
}

impl Rule {
    #[inline(always)]
    fn applies(&self, acls: &CompiledAcls, req: &RequestInfo<'_>) -> bool {
        match &self.path_beg {
            Some((prefixes, invert)) => {
                let path = req.uri.path().as_bytes();
                prefixes.iter().any(|p| path.starts_with(p)) != *invert
            }
            None => acls.eval_opt(self.cond.as_ref(), req),
        }
    }
}

impl Router {
    pub fn build(frontend: &Frontend) -> Result<Self, String> {
        let acls = CompiledAcls::compile(&frontend.acls)
            .map_err(|e| format!("frontend '{}': {e}", frontend.name))?;
        let rules = frontend
            .switching_rules
            .iter()
            .map(|r| {
                let path_beg = r.cond.as_ref().and_then(|c| match c.any_of.as_slice() {
                    [group] => match group.as_slice() {
                        [t] => acls
                            .path_prefixes(t.acl)
                            .map(|p| (p.to_vec(), t.negated != c.unless)),
                        _ => None,
                    },
                    _ => None,
                });
                Rule {
                    backend: r.backend,
                    cond: r.cond.clone(),
                    path_beg,
                }
            })
            .collect();
        Ok(Router {
            acls,
            rules,
            default_backend: frontend.default_backend,
        })
    }

    /// First matching `use_backend`, else `default_backend`; index into `Config::backends`.
    pub fn route(&self, req: &RequestInfo<'_>) -> Option<usize> {
        for r in &self.rules {
            if r.applies(&self.acls, req) {
                return Some(r.backend);
            }
        }
        self.default_backend
    }

    /// [`Self::route`] by the conditions' general evaluation alone (the tests' model).
    #[cfg(test)]
    fn route_generic(&self, req: &RequestInfo<'_>) -> Option<usize> {
        self.rules
            .iter()
            .find(|r| self.acls.eval_opt(r.cond.as_ref(), req))
            .map(|r| r.backend)
            .or(self.default_backend)
    }

    pub fn acls(&self) -> &CompiledAcls {
        &self.acls
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) mod testutil;
