//! Routing decisions: ACL evaluation, `http-request` rules, `use_backend`.
//! Pure and synchronous: no `.await`, no I/O.

use std::net::{IpAddr, SocketAddr};

use switchyard_config::{Acl, Condition, Frontend};

/// What routing may look at in a request.
pub struct RequestInfo<'a> {
    pub method: &'a http::Method,
    /// The request target as sent (origin or absolute form).
    pub uri: &'a http::Uri,
    pub version: http::Version,
    pub headers: &'a http::HeaderMap,
    pub src: IpAddr,
    pub dst: SocketAddr,
}

/// A proxy's ACLs compiled for fast evaluation (regexes built, patterns lower-cased for `-i`).
#[derive(Debug)]
pub struct CompiledAcls {
    _private: (),
}

impl CompiledAcls {
    pub fn compile(acls: &[Acl]) -> Result<Self, String> {
        let _ = acls;
        unimplemented!("ACL evaluation: being written")
    }

    pub fn eval(&self, cond: &Condition, req: &RequestInfo<'_>) -> bool {
        let _ = (cond, req);
        unimplemented!("ACL evaluation: being written")
    }
}

/// The frontend's switching rules compiled.
#[derive(Debug)]
pub struct Router {
    _private: (),
}

impl Router {
    pub fn build(frontend: &Frontend) -> Result<Self, String> {
        let _ = frontend;
        unimplemented!("routing: being written")
    }

    /// First matching `use_backend`, else `default_backend`; index into `Config::backends`.
    pub fn route(&self, req: &RequestInfo<'_>) -> Option<usize> {
        let _ = req;
        unimplemented!("routing: being written")
    }

    pub fn acls(&self) -> &CompiledAcls {
        unimplemented!("routing: being written")
    }
}
