//! Fixtures for the frontend tests: model structs built directly.

use std::net::{IpAddr, SocketAddr};

use switchyard_config::{Acl, AclCriterion, Condition, Fetch, Location, MatchMethod, Term};

use super::RequestInfo;

pub fn crit(fetch: Fetch, method: MatchMethod, icase: bool, patterns: &[&str]) -> AclCriterion {
    AclCriterion {
        fetch,
        ignore_case: icase,
        method,
        patterns: patterns.iter().map(|p| p.to_string()).collect(),
        nets: Vec::new(),
        loc: Location::default(),
    }
}

pub fn acl(name: &str, criteria: Vec<AclCriterion>) -> Acl {
    Acl {
        name: name.into(),
        criteria,
    }
}

pub fn hdr(name: &str) -> Fetch {
    Fetch::Hdr {
        name: name.into(),
        occ: None,
    }
}

/// Condition from groups of (negated, acl index); `unless` inverts.
pub fn cond(unless: bool, groups: &[&[(bool, usize)]]) -> Condition {
    Condition {
        unless,
        any_of: groups
            .iter()
            .map(|g| {
                g.iter()
                    .map(|&(negated, acl)| Term { negated, acl })
                    .collect()
            })
            .collect(),
    }
}

pub fn when(acl: usize) -> Condition {
    cond(false, &[&[(false, acl)]])
}

/// An owned request to borrow a [`RequestInfo`] from.
pub struct Req {
    pub parts: http::request::Parts,
    pub src: IpAddr,
    pub dst: SocketAddr,
}

impl Req {
    pub fn new(method: &str, uri: &str, headers: &[(&str, &str)]) -> Req {
        let mut b = http::Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let (parts, ()) = b.body(()).unwrap().into_parts();
        Req {
            parts,
            src: "127.0.0.1".parse().unwrap(),
            dst: "127.0.0.1:3000".parse().unwrap(),
        }
    }

    pub fn get(uri: &str) -> Req {
        Req::new("GET", uri, &[])
    }

    pub fn from(mut self, src: &str) -> Req {
        self.src = src.parse().unwrap();
        self
    }

    pub fn info(&self) -> RequestInfo<'_> {
        RequestInfo::from_parts(&self.parts, self.src, self.dst)
    }
}
