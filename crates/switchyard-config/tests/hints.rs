//! "did you mean" hints compared with HAProxy 2.6.12. The `.tsv` files hold, for
//! typos of keywords, the message `haproxy -c` printed (Debian 2.6.12 package):
//! `hints_listen.tsv` for a word alone in a `listen` section, `hints_server.tsv`
//! for a word on a `server` line, `hints_option.tsv` for `option <word>`,
//! `hints_global.tsv` for a word in the `global` section.

use switchyard_config::{parse, Level, Source};

fn message(text: &str, line: usize) -> String {
    let out = parse(
        &[Source {
            name: "t.cfg",
            text,
        }],
        &|_| None,
    );
    out.diagnostics
        .iter()
        .find(|d| d.level == Level::Alert && d.line == Some(line))
        .map(|d| d.message.clone())
        .unwrap_or_default()
}

fn compare(
    data: &str,
    build: impl Fn(&str) -> (String, usize),
    strip: impl Fn(&str) -> String,
) -> (usize, Vec<String>) {
    let mut bad = Vec::new();
    let mut total = 0;
    for row in data.lines().filter(|l| !l.is_empty()) {
        let (word, expected) = row.split_once('\t').unwrap();
        if !expected.starts_with("unknown keyword") && !expected.starts_with("unknown option") {
            continue; // a real keyword with missing arguments
        }
        total += 1;
        let (text, line) = build(word);
        let got = strip(&message(&text, line));
        if got != expected {
            bad.push(format!("{word}: got {got:?}, haproxy {expected:?}"));
        }
    }
    (total, bad)
}

#[test]
fn proxy_keyword_hints_match_haproxy() {
    let (total, bad) = compare(
        include_str!("hints_listen.tsv"),
        |w| (format!("listen l\n    bind 127.0.0.1:3990\n    {w}\n"), 3),
        str::to_string,
    );
    assert!(total > 100);
    // The one case where 2.6.12 prefers a farther word (see src/suggest.rs).
    let known = ["ctp-check"];
    let unexpected: Vec<&String> = bad
        .iter()
        .filter(|b| !known.iter().any(|k| b.starts_with(&format!("{k}:"))))
        .collect();
    assert!(
        unexpected.is_empty(),
        "{} of {total} differ:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

#[test]
fn server_keyword_hints_mostly_match_haproxy() {
    let (total, bad) = compare(
        include_str!("hints_server.tsv"),
        |w| {
            (
                format!("listen l\n    bind 127.0.0.1:3990\n    server s0 127.0.0.1:80 {w}\n"),
                3,
            )
        },
        |m| m.strip_prefix("'server l/s0' : ").unwrap_or(m).to_string(),
    );
    assert!(total > 150);
    // HAProxy's internal keyword order is unknown: some ties resolve
    // differently. This number may only go down.
    assert!(
        bad.len() <= 13,
        "{} of {total} differ:\n{}",
        bad.len(),
        bad.join("\n")
    );
    eprintln!(
        "server hints: {} of {total} identical to haproxy",
        total - bad.len()
    );
}

#[test]
fn option_hints_mostly_match_haproxy() {
    let (total, bad) = compare(
        include_str!("hints_option.tsv"),
        |w| {
            (
                format!("listen l\n    bind 127.0.0.1:3990\n    option {w}\n"),
                3,
            )
        },
        str::to_string,
    );
    assert!(total > 100);
    // HAProxy's option table order is unknown; this number may only go down.
    assert!(
        bad.len() <= 4,
        "{} of {total} differ:\n{}",
        bad.len(),
        bad.join("\n")
    );
    eprintln!(
        "option hints: {} of {total} identical to haproxy",
        total - bad.len()
    );
}

#[test]
fn global_keyword_hints_mostly_match_haproxy() {
    let (total, bad) = compare(
        include_str!("hints_global.tsv"),
        |w| (format!("global\n    {w}\n"), 2),
        str::to_string,
    );
    assert!(total > 100);
    // HAProxy's global keyword order is unknown; this number may only go down.
    assert!(
        bad.len() <= 1,
        "{} of {total} differ:\n{}",
        bad.len(),
        bad.join("\n")
    );
    eprintln!(
        "global hints: {} of {total} identical to haproxy",
        total - bad.len()
    );
}
