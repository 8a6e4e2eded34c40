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
    rules: Vec<(usize, Option<Condition>)>,
    default_backend: Option<usize>,
}

impl Router {
    pub fn build(frontend: &Frontend) -> Result<Self, String> {
        let acls = CompiledAcls::compile(&frontend.acls)
            .map_err(|e| format!("frontend '{}': {e}", frontend.name))?;
        let rules = frontend
            .switching_rules
            .iter()
            .map(|r| (r.backend, r.cond.clone()))
            .collect();
        Ok(Router {
            acls,
            rules,
            default_backend: frontend.default_backend,
        })
    }

    /// First matching `use_backend`, else `default_backend`; index into `Config::backends`.
    pub fn route(&self, req: &RequestInfo<'_>) -> Option<usize> {
        self.rules
            .iter()
            .find(|(_, cond)| self.acls.eval_opt(cond.as_ref(), req))
            .map(|(b, _)| *b)
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
