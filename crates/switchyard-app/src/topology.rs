//! Reads the application topology out of a balancer configuration, so that `demo` starts the
//! nodes exactly where the configuration expects them.
//!
//! Only what `demo` needs is read, and the rules are stated rather than guessed:
//! - the frontend is the first `frontend` section; its first `bind` address is the URL to open;
//! - the socket tier is the backend chosen by `use_backend B if <acl>` where `<acl>` is declared
//!   `acl <acl> path_beg /engine.io`;
//! - the HTTP tier is the frontend's `default_backend`;
//! - each tier's nodes are its backend's `server NAME HOST:PORT ...` lines.
//!
//! Anything else (timeouts, options, health checks) is the balancer's business, not ours.

use std::collections::HashMap;
use std::net::SocketAddr;

use anyhow::{anyhow, bail, Context};

/// One application server as the configuration names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    pub addr: SocketAddr,
}

/// The frontend address and the nodes of each tier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    pub frontend: SocketAddr,
    pub http: Vec<Node>,
    pub socket: Vec<Node>,
}

#[derive(Debug, Default)]
struct Section {
    kind: String,
    name: String,
    lines: Vec<Vec<String>>,
}

fn sections(text: &str) -> Vec<Section> {
    let mut out: Vec<Section> = Vec::new();
    for raw in text.lines() {
        let line = raw.split('#').next().unwrap_or("");
        let words: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
        let Some(first) = words.first() else { continue };
        match first.as_str() {
            "global" | "defaults" | "frontend" | "backend" | "listen" => out.push(Section {
                kind: first.clone(),
                name: words.get(1).cloned().unwrap_or_default(),
                lines: Vec::new(),
            }),
            _ => {
                if let Some(section) = out.last_mut() {
                    section.lines.push(words);
                }
            }
        }
    }
    out
}

fn keyword<'a>(section: &'a Section, key: &'a str) -> impl Iterator<Item = &'a [String]> + 'a {
    section
        .lines
        .iter()
        .filter(move |w| w[0] == key)
        .map(|w| &w[1..])
}

fn parse_addr(text: &str) -> anyhow::Result<SocketAddr> {
    let text = text
        .strip_prefix('*')
        .map_or_else(|| text.to_owned(), |rest| format!("0.0.0.0{rest}"));
    text.parse()
        .with_context(|| format!("{text:?} is not an IP:port address"))
}

fn backend_nodes(all: &[Section], name: &str) -> anyhow::Result<Vec<Node>> {
    let backend = all
        .iter()
        .find(|s| s.kind == "backend" && s.name == name)
        .ok_or_else(|| anyhow!("backend {name:?} is used but not defined"))?;
    let nodes = keyword(backend, "server")
        .filter(|w| w.len() >= 2)
        .map(|w| {
            Ok(Node {
                name: w[0].clone(),
                addr: parse_addr(&w[1])?,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    if nodes.is_empty() {
        bail!("backend {name:?} has no server line");
    }
    Ok(nodes)
}

/// Reads the topology from configuration text.
pub fn parse(text: &str) -> anyhow::Result<Topology> {
    let all = sections(text);
    let frontend = all
        .iter()
        .find(|s| s.kind == "frontend")
        .ok_or_else(|| anyhow!("no frontend section"))?;
    let bind = keyword(frontend, "bind")
        .next()
        .and_then(|w| w.first())
        .ok_or_else(|| anyhow!("frontend {:?} has no bind line", frontend.name))?;
    let engineio_acls: Vec<&str> = keyword(frontend, "acl")
        .filter(|w| w.len() >= 3 && w[1] == "path_beg" && w[2..].iter().any(|p| p == "/engine.io"))
        .map(|w| w[0].as_str())
        .collect();
    let uses: HashMap<&str, &str> = keyword(frontend, "use_backend")
        .filter(|w| w.len() >= 3 && w[1] == "if")
        .map(|w| (w[2].as_str(), w[0].as_str()))
        .collect();
    let socket = engineio_acls
        .iter()
        .find_map(|acl| uses.get(acl))
        .ok_or_else(|| {
            anyhow!("no `use_backend ... if <acl>` with `acl <acl> path_beg /engine.io`")
        })?;
    let http = keyword(frontend, "default_backend")
        .next()
        .and_then(|w| w.first())
        .ok_or_else(|| anyhow!("frontend {:?} has no default_backend", frontend.name))?;
    Ok(Topology {
        frontend: parse_addr(bind)?,
        http: backend_nodes(&all, http)?,
        socket: backend_nodes(&all, socket)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_seed_configuration() {
        let text = std::fs::read_to_string(crate::cli::DEFAULT_CONFIG).expect("seed config");
        let topo = parse(&text).expect("parses");
        assert_eq!(topo.frontend, "127.0.0.1:3000".parse().unwrap());
        let ports = |nodes: &[Node]| {
            nodes
                .iter()
                .map(|n| (n.name.clone(), n.addr.port()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            ports(&topo.http),
            [("node-1".into(), 4000), ("node-2".into(), 4001)]
        );
        assert_eq!(
            ports(&topo.socket),
            [("node-1".into(), 5000), ("node-2".into(), 5001)]
        );
    }

    #[test]
    fn names_what_is_missing() {
        let err = parse("frontend f\n bind 127.0.0.1:1\n default_backend h\n").unwrap_err();
        assert!(err.to_string().contains("path_beg /engine.io"), "{err}");
        let err = parse("frontend f\n bind 127.0.0.1:1\n acl e path_beg /engine.io\n use_backend s if e\n default_backend h\nbackend h\n server a 127.0.0.1:2\n").unwrap_err();
        assert!(
            err.to_string().contains("\"s\" is used but not defined"),
            "{err}"
        );
    }
}
