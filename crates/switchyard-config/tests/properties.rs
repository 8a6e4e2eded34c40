//! Property tests: the lexer and the reader never panic on arbitrary input, and
//! their results keep their promises.

use proptest::prelude::*;
use switchyard_config::{lexer, parse, Source};

fn env(name: &str) -> Option<String> {
    (name == "X").then(|| "a b".to_string())
}

/// Lines built from configuration-like pieces, so that most inputs reach deep
/// into the keyword handlers instead of stopping at the first word.
fn config_like() -> impl Strategy<Value = String> {
    let words = prop::sample::select(vec![
        "global",
        "defaults",
        "frontend f",
        "backend b",
        "listen l",
        "bind",
        "127.0.0.1:80",
        ":8080",
        "[::1]:81",
        "server s1",
        "check",
        "weight",
        "300",
        "inter",
        "1m30s",
        "timeout",
        "client",
        "connect",
        "mode",
        "http",
        "tcp",
        "acl a",
        "path_beg",
        "/x",
        "use_backend b",
        "if",
        "unless",
        "!a",
        "||",
        "{",
        "}",
        "default_backend",
        "cookie",
        "SRV",
        "insert",
        "indirect",
        "balance",
        "roundrobin",
        "uri",
        "hdr(host)",
        "option",
        "forwardfor",
        "except",
        "http-request",
        "deny",
        "set-header",
        "\"a b\"",
        "'q'",
        "${X}",
        "\"${X[*]}\"",
        "\\",
        "#",
        "x\\ty",
        ".if",
        ".else",
        ".endif",
        "1",
        "0",
        "http-check",
        "expect",
        "status",
        "200-399",
        "stats",
        "uri",
        "redirect",
        "scheme",
        "https",
        "log",
        "stdout",
        "local0",
        "\"",
        "default-server",
        "maxconn",
        "-1",
        "99999999999",
    ]);
    prop::collection::vec(
        prop::collection::vec(words, 0..8).prop_map(|w| w.join(" ")),
        0..25,
    )
    .prop_map(|lines| lines.join("\n"))
}

proptest! {
    // 400 cases by default; PROPTEST_CASES=<n> for a longer run.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(400),
        ..ProptestConfig::default()
    })]

    #[test]
    fn lexer_never_panics(line in ".{0,300}") {
        match lexer::split_line(&line, &env) {
            Ok(words) => prop_assert!(words.len() <= lexer::MAX_LINE_ARGS),
            Err(e) => { let _ = e.message(&line); }
        }
    }

    #[test]
    fn reader_never_panics_on_any_text(text in "(.{0,60}\n){0,20}") {
        let out = parse(&[Source { name: "p.cfg", text: &text }], &env);
        prop_assert_eq!(out.config.is_some(), !out.has_errors());
    }

    #[test]
    fn reader_keeps_its_promises_on_config_like_text(text in config_like()) {
        let out = parse(&[Source { name: "p.cfg", text: &text }], &env);
        prop_assert_eq!(out.config.is_some(), !out.has_errors());
        let lines = text.split('\n').count();
        for d in &out.diagnostics {
            if let Some(l) = d.line {
                prop_assert!(l >= 1 && l <= lines, "{:?}", d);
            }
        }
        if let Some(cfg) = out.config {
            for fe in &cfg.frontends {
                for r in &fe.switching_rules {
                    prop_assert!(r.backend < cfg.backends.len());
                    for group in r.cond.iter().flat_map(|c| &c.any_of) {
                        for t in group {
                            prop_assert!(t.acl < fe.acls.len());
                        }
                    }
                }
                prop_assert!(fe.default_backend.is_none_or(|b| b < cfg.backends.len()));
            }
            for be in &cfg.backends {
                for s in &be.servers {
                    prop_assert!(s.weight <= 256);
                }
            }
        }
    }
}
