//! Reading the broken-config catalogue (`tests/catalogue/*.cfg`).
//!
//! Each case carries its expectation in comments, which both HAProxy and
//! switchyard ignore:
//!
//! ```text
//! # catalogue: what the case is about
//! # expect: rc=<0|1|2> [line=<n>] [level=alert|warning|notice] msg=<fragment>[ cli]
//! # haproxy: rc=<n> line=<n|none> (why)     <- only where switchyard deliberately differs
//! ```
//!
//! `rc` is the `-c` exit code; for alerts, `line` is the line of the first alert
//! printed. A trailing ` cli` marks what only the command line checks (DNS).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use switchyard_config::{parse, Level, Outcome, Source};

#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    pub path: PathBuf,
    pub text: String,
    pub rc: i32,
    pub line: Option<usize>,
    pub level: Option<Level>,
    pub msg: String,
    pub cli_only: bool,
    /// `(rc, first alert line)` HAProxy gives where switchyard deliberately differs.
    pub haproxy: Option<(i32, Option<usize>)>,
}

pub fn catalogue_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/catalogue")
}

fn field<'a>(spec: &'a str, key: &str) -> Option<&'a str> {
    spec.split_whitespace().find_map(|w| w.strip_prefix(key))
}

pub fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(catalogue_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "cfg"))
    {
        let text = std::fs::read_to_string(&path).unwrap();
        let expect = text
            .lines()
            .find_map(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{} has no '# expect:' line", path.display()))
            .to_string();
        let (spec, msg) = expect.split_once("msg=").expect("msg= field");
        let (msg, cli_only) = match msg.strip_suffix(" cli") {
            Some(m) => (m.to_string(), true),
            None => (msg.to_string(), false),
        };
        let haproxy = text
            .lines()
            .find_map(|l| l.strip_prefix("# haproxy: "))
            .map(|h| {
                let rc = field(h, "rc=")
                    .and_then(|v| v.parse().ok())
                    .expect("haproxy rc=");
                let line = field(h, "line=").and_then(|v| v.parse().ok());
                (rc, line)
            });
        out.push(Case {
            name: path.file_name().unwrap().to_string_lossy().into_owned(),
            rc: field(spec, "rc=")
                .and_then(|v| v.parse().ok())
                .expect("rc="),
            line: field(spec, "line=").and_then(|v| v.parse().ok()),
            level: field(spec, "level=").map(|l| match l {
                "alert" => Level::Alert,
                "warning" => Level::Warning,
                "notice" => Level::Notice,
                other => panic!("unknown level {other}"),
            }),
            msg,
            cli_only,
            haproxy,
            path,
            text,
        });
    }
    out
}

/// Reads a case the way `switchyard -c -f <name>` run from the catalogue directory would.
pub fn read(case: &Case) -> Outcome {
    parse(
        &[Source {
            name: &case.name,
            text: &case.text,
        }],
        &|_| None,
    )
}

/// The exit code `-c` gives for an outcome (without the command line's DNS step).
pub fn exit_code(out: &Outcome) -> i32 {
    match &out.config {
        None => 1,
        Some(cfg) if cfg.frontends.iter().all(|f| f.binds.is_empty()) => 2,
        Some(_) => 0,
    }
}

/// The line number printed in the first `[ALERT]` line, if it prints one.
pub fn first_alert_line(rendered: &str) -> Option<Option<usize>> {
    let alert = rendered.lines().find(|l| l.starts_with("[ALERT]"))?;
    Some(printed_line(alert))
}

/// `[ALERT] ... [file:12] ...` -> Some(12): the first `[...]` after the level tag.
pub fn printed_line(line: &str) -> Option<usize> {
    let after = &line[line.find(']')? + 1..];
    let open = after.find('[')?;
    let close = after[open..].find(']')? + open;
    after[open + 1..close].rsplit(':').next()?.parse().ok()
}
