//! `http-request` / `http-response` rule cases.

use switchyard_config::{
    Fetch, HttpRequestAction as A, HttpRequestRule, HttpResponseAction as RA, HttpResponseRule,
    MatchMethod as M,
};

use super::*;
use crate::frontend::testutil::*;

fn rq(action: A, cond: Option<Condition>) -> HttpRequestRule {
    HttpRequestRule {
        action,
        cond,
        loc: Default::default(),
    }
}

fn acls() -> CompiledAcls {
    CompiledAcls::compile(&[
        acl("admin", vec![crit(Fetch::Path, M::Beg, false, &["/admin"])]),
        acl(
            "local",
            vec![crit(Fetch::Src, M::Ip, false, &["127.0.0.0/8"])],
        ),
    ])
    .unwrap()
}

fn run(rules: Vec<HttpRequestRule>, req: &mut Req) -> Verdict {
    let r = RequestRules::build(&rules).unwrap();
    r.apply(&acls(), &mut req.parts, req.src, req.dst)
}

fn set(name: &str, value: &str) -> A {
    A::SetHeader {
        name: name.into(),
        value: value.into(),
    }
}

#[test]
fn deny_unless_local_and_allow_stops() {
    let rules = || {
        vec![
            rq(
                A::Deny { status: 403 },
                Some(cond(false, &[&[(false, 0), (true, 1)]])),
            ),
            rq(A::Allow, Some(when(1))),
            rq(A::Deny { status: 429 }, None),
        ]
    };
    assert_eq!(
        run(rules(), &mut Req::get("/admin").from("10.0.0.1")),
        Verdict::Deny(403)
    );
    assert_eq!(run(rules(), &mut Req::get("/admin")), Verdict::Continue);
    assert_eq!(
        run(rules(), &mut Req::get("/x").from("10.0.0.1")),
        Verdict::Deny(429)
    );
}

#[test]
fn header_actions_in_order() {
    let mut r = Req::new("GET", "/", &[("x-a", "1"), ("x-a", "2"), ("x-del", "z")]);
    let v = run(
        vec![
            rq(set("X-A", "one"), None),
            rq(
                A::AddHeader {
                    name: "x-b".into(),
                    value: "b1".into(),
                },
                None,
            ),
            rq(
                A::AddHeader {
                    name: "x-b".into(),
                    value: "b2".into(),
                },
                None,
            ),
            rq(
                A::DelHeader {
                    name: "X-Del".into(),
                },
                None,
            ),
            rq(set("x-src", "%[src]:%fp %% %ci"), None),
            rq(set("x-host", "[%[req.hdr(host)]]"), None),
            rq(set("x-path", "%[path]?%[url_param(q)]"), None),
        ],
        &mut r,
    );
    assert_eq!(v, Verdict::Continue);
    let h = &r.parts.headers;
    let all = |n: &str| {
        h.get_all(n)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(all("x-a"), ["one"]);
    assert_eq!(all("x-b"), ["b1", "b2"]);
    assert!(all("x-del").is_empty());
    assert_eq!(all("x-src"), ["127.0.0.1:3000 % 127.0.0.1"]);
    assert_eq!(all("x-host"), ["[]"]);
    assert_eq!(all("x-path"), ["/?"]);
}

#[test]
fn conditions_see_earlier_changes() {
    let a = CompiledAcls::compile(&[acl(
        "marked",
        vec![crit(hdr("x-mark"), M::Found, false, &[])],
    )])
    .unwrap();
    let rules = RequestRules::build(&[
        rq(set("x-mark", "1"), None),
        rq(A::Deny { status: 403 }, Some(when(0))),
    ])
    .unwrap();
    let mut r = Req::get("/");
    assert_eq!(
        rules.apply(&a, &mut r.parts, r.src, r.dst),
        Verdict::Deny(403)
    );
}

#[test]
fn last_occurrence_in_sample_context() {
    let mut r = Req::new(
        "GET",
        "/p?q=7",
        &[("x-f", "a, b"), ("x-f", "c"), ("host", "h.example")],
    );
    run(
        vec![
            rq(set("x-last", "%[hdr(x-f)]"), None),
            rq(set("x-first", "%[hdr(x-f,1)]"), None),
            rq(set("x-full", "%[fhdr(x-f,1)]"), None),
            rq(
                set(
                    "x-q",
                    "%[url_param(q)] %[query] %[method] %[req.ver] %[hdr_cnt(x-f)]",
                ),
                None,
            ),
            rq(set("x-host", "%[req.hdr(host)]"), None),
        ],
        &mut r,
    );
    let g = |n: &str| {
        r.parts
            .headers
            .get(n)
            .unwrap()
            .to_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(g("x-last"), "c");
    assert_eq!(g("x-first"), "a");
    assert_eq!(g("x-full"), "a, b");
    assert_eq!(g("x-q"), "7 q=7 GET 1.1 3");
    assert_eq!(g("x-host"), "h.example");
}

#[test]
fn unsupported_log_format_is_refused() {
    for v in [
        "%[src,ipmask(24)]",
        "%[hdr(host),lower]",
        "%[nope]",
        "%T",
        "%[path",
    ] {
        let err = RequestRules::build(&[rq(set("x", v), None)]).unwrap_err();
        assert!(err.contains("http-request"), "{v}: {err}");
    }
    assert!(RequestRules::build(&[rq(set("bad name", "v"), None)]).is_err());
}

#[test]
fn redirects() {
    let redir = |kind, target: &str, code| {
        rq(
            A::Redirect {
                kind,
                target: target.into(),
                code,
            },
            None,
        )
    };
    assert_eq!(
        run(
            vec![redir(RedirectKind::Location, "/new", 302)],
            &mut Req::get("/old")
        ),
        Verdict::Redirect {
            code: 302,
            location: "/new".into()
        }
    );
    assert_eq!(
        run(
            vec![redir(RedirectKind::Prefix, "https://example.com", 301)],
            &mut Req::get("/pfx/a?b=1")
        ),
        Verdict::Redirect {
            code: 301,
            location: "https://example.com/pfx/a?b=1".into()
        }
    );
    assert_eq!(
        run(
            vec![redir(RedirectKind::Prefix, "/", 302)],
            &mut Req::get("/a?b")
        ),
        Verdict::Redirect {
            code: 302,
            location: "/a?b".into()
        }
    );
    assert_eq!(
        run(
            vec![redir(RedirectKind::Scheme, "https", 302)],
            &mut Req::new("GET", "/x?y=1", &[("host", "h.example:8080")])
        ),
        Verdict::Redirect {
            code: 302,
            location: "https://h.example:8080/x?y=1".into()
        }
    );
    assert_eq!(
        run(
            vec![redir(
                RedirectKind::Location,
                "https://%[hdr(host)]/login",
                303
            )],
            &mut Req::new("GET", "/", &[("host", "h")])
        ),
        Verdict::Redirect {
            code: 303,
            location: "https://h/login".into()
        }
    );
}

/// Location headers produced by HAProxy 2.6.12 for the same rules.
#[test]
fn redirects_match_haproxy() {
    let redir = |kind, target: &str, code| {
        vec![rq(
            A::Redirect {
                kind,
                target: target.into(),
                code,
            },
            None,
        )]
    };
    let loc = |rules, r: &mut Req| match run(rules, r) {
        Verdict::Redirect { location, .. } => location,
        v => panic!("{v:?}"),
    };
    let prefix = RedirectKind::Prefix;
    assert_eq!(
        loc(
            redir(prefix, "https://example.com/", 301),
            &mut Req::get("/a?b=1")
        ),
        "https://example.com//a?b=1"
    );
    assert_eq!(
        loc(
            redir(prefix, "https://example.com", 302),
            &mut Req::new("GET", "http://abs.example/x?y", &[("host", "abs.example")])
        ),
        "https://example.com/x?y"
    );
    let mut no_host = Req::get("/x");
    no_host.parts.version = http::Version::HTTP_10;
    assert_eq!(
        loc(redir(RedirectKind::Scheme, "https", 302), &mut no_host),
        "https:///x"
    );
    assert_eq!(
        loc(
            redir(RedirectKind::Scheme, "https", 302),
            &mut Req::new("GET", "http://abs.example/x?y", &[("host", "abs.example")])
        ),
        "https://abs.example/x?y"
    );
    assert_eq!(
        loc(
            redir(
                RedirectKind::Location,
                "https://%[hdr(host)]%[path]?src=%[src]",
                308
            ),
            &mut Req::new("GET", "/p/q?z=1", &[("host", "h.ex")])
        ),
        "https://h.ex/p/q?src=127.0.0.1"
    );
    let mut r = Req::new("GET", "/", &[("x-in", "a, b"), ("x-in", "c")]);
    r.dst = "127.0.0.1:27005".parse().unwrap();
    run(
        vec![
            rq(
                set("x-a", "%[hdr(x-in)]|%[src]|%[dst_port]|%ci|%fp|%%"),
                None,
            ),
            rq(
                A::AddHeader {
                    name: "x-b".into(),
                    value: "%[req.hdr(x-in,1)]".into(),
                },
                None,
            ),
        ],
        &mut r,
    );
    assert_eq!(
        r.parts.headers["x-a"],
        "c|127.0.0.1|27005|127.0.0.1|27005|%"
    );
    assert_eq!(r.parts.headers["x-b"], "a");
}

#[test]
fn normalize_uri_rules_then_acl() {
    use switchyard_config::NormalizeUri as N;
    let mut r = Req::get("/static//..//admin/%61bc/./x?k=%2f");
    let v = run(
        vec![
            rq(A::NormalizeUri(N::PathMergeSlashes), None),
            rq(A::NormalizeUri(N::PathStripDotdot), None),
            rq(A::NormalizeUri(N::PathStripDot), None),
            rq(A::NormalizeUri(N::PercentDecodeUnreserved), None),
            rq(A::NormalizeUri(N::PercentToUppercase), None),
            rq(
                A::Deny { status: 403 },
                Some(cond(false, &[&[(false, 0), (true, 1)]])),
            ),
        ],
        &mut r,
    );
    assert_eq!(r.parts.uri, "/admin/abc/x?k=%2F");
    // /admin reached only after normalisation, and the client is local.
    assert_eq!(v, Verdict::Continue);
    let mut r = Req::get("/static//..//admin/").from("10.1.1.1");
    let v = run(
        vec![
            rq(A::NormalizeUri(N::PathMergeSlashes), None),
            rq(A::NormalizeUri(N::PathStripDotdot), None),
            rq(
                A::Deny { status: 403 },
                Some(cond(false, &[&[(false, 0), (true, 1)]])),
            ),
        ],
        &mut r,
    );
    assert_eq!(v, Verdict::Deny(403));
}

/// `http-response` rules as HAProxy 2.6.12 runs them: values read response
/// headers with `hdr()`; ACLs on request contents never match (their
/// negation always does); `method`, `src`, `dst_port` and `TRUE` work.
#[test]
fn response_rules_match_haproxy() {
    let a = CompiledAcls::compile(&[
        acl(
            "ct_text",
            vec![crit(hdr("content-type"), M::Beg, false, &["text"])],
        ),
        acl("p", vec![crit(Fetch::Path, M::Beg, false, &["/"])]),
        acl("get", vec![crit(Fetch::Method, M::Str, false, &["GET"])]),
        acl(
            "local",
            vec![crit(Fetch::Src, M::Ip, false, &["127.0.0.1"])],
        ),
        acl("port", vec![crit(Fetch::DstPort, M::Int, false, &["3000"])]),
        acl(
            "sid",
            vec![crit(
                Fetch::UrlParam { name: "a".into() },
                M::Found,
                false,
                &[],
            )],
        ),
        acl(
            "ck",
            vec![crit(
                Fetch::Cookie { name: "c".into() },
                M::Found,
                false,
                &[],
            )],
        ),
        acl("v11", vec![crit(Fetch::ReqVer, M::Str, false, &["1.1"])]),
        acl("q", vec![crit(Fetch::Query, M::Found, false, &[])]),
        acl("t", vec![crit(Fetch::Always(true), M::Bool, false, &[])]),
    ])
    .unwrap();
    let rr = |action, cond| HttpResponseRule {
        action,
        cond,
        loc: Default::default(),
    };
    let add = |n: &str| RA::AddHeader {
        name: n.into(),
        value: "yes".into(),
    };
    let mut rules = vec![rr(
        RA::SetHeader {
            name: "x-k".into(),
            value: "%[hdr(content-type)]|%[res.hdr(x-srv)]".into(),
        },
        None,
    )];
    for i in 0..10 {
        rules.push(rr(add(&format!("x-{i}")), Some(when(i))));
    }
    rules.push(rr(add("x-not-p"), Some(cond(false, &[&[(true, 1)]]))));
    rules.push(rr(
        RA::DelHeader {
            name: "server".into(),
        },
        None,
    ));
    let rules = ResponseRules::build(&rules).unwrap();
    let req = Req::new(
        "GET",
        "/?a=1",
        &[("cookie", "c=1"), ("content-type", "req/ct")],
    );
    let mut resp = http::HeaderMap::new();
    resp.insert("content-type", HeaderValue::from_static("text/plain"));
    resp.insert("x-srv", HeaderValue::from_static("from-server"));
    resp.insert("server", HeaderValue::from_static("x"));
    rules.apply(&a, &req.info(), &mut resp);
    assert_eq!(resp["x-k"], "text/plain|from-server");
    let mut added: Vec<&str> = resp
        .keys()
        .map(|k| k.as_str())
        .filter(|k| k.starts_with("x-") && *k != "x-k" && *k != "x-srv")
        .collect();
    added.sort_unstable();
    assert_eq!(added, ["x-2", "x-3", "x-4", "x-9", "x-not-p"]);
    assert!(resp.get("server").is_none());
}

/// `lf-string "[%[req.cook(x)]][%[url_param(p)]][%[req.hdr(h)]][%[req.fhdr(h)]]"`
/// on HAProxy 2.6.12.
#[test]
fn sample_context_occurrences_match_haproxy() {
    let fmt = "[%[req.cook(x)]][%[url_param(p)]][%[req.hdr(h)]][%[req.fhdr(h)]]";
    let run_fmt = |uri: &str, headers: &[(&str, &str)]| {
        let mut r = Req::new("GET", uri, headers);
        run(vec![rq(set("x-out", fmt), None)], &mut r);
        r.parts.headers["x-out"].to_str().unwrap().to_string()
    };
    assert_eq!(
        run_fmt(
            "/?p=1&p=2",
            &[("cookie", "x=1; x=2"), ("h", "a, b"), ("h", "c")]
        ),
        "[2][1][c][c]"
    );
    assert_eq!(
        run_fmt(
            "/?p",
            &[("cookie", "a=0, x = \"q;r\" ; y=1"), ("cookie", "x=3")]
        ),
        "[3][][][]"
    );
    assert_eq!(run_fmt("/", &[("cookie", "x=")]), "[][][][]");
    assert_eq!(run_fmt("/", &[("cookie", "x")]), "[][][][]");
}
