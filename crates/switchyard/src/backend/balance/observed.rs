//! Sequences observed on HAProxy 2.6.12 on this machine (sequential requests,
//! one `listen` per case, servers answering their name with `http-request
//! return`), replayed against our algorithms.

use super::testutil::*;
use super::*;

fn seq_of(b: Balance, weights: &[u32], n: usize) -> String {
    let s = servers(weights);
    let bal = build(&b, false, &s);
    sequence(bal.as_ref(), &s, n)
}

/// Names picked for each request, given its URI and headers.
fn picks(
    b: Balance,
    weights: &[u32],
    reqs: &[(&str, Option<(&'static str, &'static str)>)],
) -> String {
    let s = servers(weights);
    let bal = build(&b, false, &s);
    reqs.iter()
        .map(|(uri, h)| {
            let mut hm = http::HeaderMap::new();
            if let Some((k, v)) = h {
                hm.insert(*k, http::HeaderValue::from_static(v));
            }
            let i = bal.pick(&s, &ctx(uri, &hm)).unwrap();
            s[i].name.clone()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn roundrobin_matches_haproxy() {
    let rr = Balance::RoundRobin;
    assert_eq!(
        seq_of(rr.clone(), &[5, 3, 2, 1], 22),
        "a b a c a b a d b c a a b a c a b a d b c a"
    );
    assert_eq!(
        seq_of(rr.clone(), &[1, 2, 3, 4], 20),
        "d c d b c d a d c b d c d b c d a d c b"
    );
    assert_eq!(seq_of(rr.clone(), &[2, 2, 1], 10), "a b a b c a b a b c");
    assert_eq!(
        seq_of(rr.clone(), &[10, 1], 22),
        "a a a a a a a a a a b a a a a a a a a a a b"
    );
    assert_eq!(seq_of(rr.clone(), &[4, 6, 9, 2, 3, 1, 8], 70), "c g b c a g e c b g d c a b g c f g e c b a g c b c g d e a c b g c g b c a g e c b g d c a b g c f g e c b a g c b c g d e a c b g c g b c");
    assert_eq!(seq_of(rr.clone(), &[7, 3, 1, 256, 13], 280), "d d d d d d d d d d d e d d d d d d d d d d d a d d d d d d d d d e d d d d d d d d d d d d b d d d d d d d d e d d d d d d d d a d d d d d d d d d d d e d d d d d d d d d d d d d d d d c d d d d e d d d d d d a d d d d d d d d d d d d d e d d d d d d d d d d d d d d d d d d d b d e d d d a d d d d d d d d d d d d d d d d d e d d d d d d d d d d d d d d d d d d d d e a d d d d d d d d d d d d d d d d d d d e d d d d d d d d d d d d d d d d d a d d d e d d d d d d b d d d d d d d d d d d d d e d d d d d d d d d d d d d d d a d d d d d e d d d d d d d d d");
    // Uneven weights: HAProxy drifts by one pick per round here, and so do we.
    assert_eq!(seq_of(rr.clone(), &[21, 47, 29, 24, 21, 41, 1], 552), "b f c b d f a b c f e b d g f c a b e f b d c b f a b d c e f b f a c d b e f b c f a d b e f c b a f d b c e b f d b a f c b e f d c b a f b e c f d b a f b c e d f b c a b f d e b f c a b f d c e b f b a c d f b e f b c a d f b e c b f d a b f c e b f d a c b f e b d c f b a f b e c d f b a c b f d e b f c a b d f e b c f a b d c f e b f b a d c f b e c b f d a b f e c b d f a b c f e b d g f c a b e f b d c b f a b d c e f b f a c d b e f b c f a d b e f c b a f d b c e b f d b a f c b e f d c b a f b e c f d b a f b c e d f b c a b f d e b f c a b f d c e b f b a c d f b e f b c a d f b e c b f d a b f c e b f d a c b f e b d c f b a f b e c d f b a c b f d e b f c a b d f e b c f a b d c f e b f b a d c f b e c b f d a b f e c b d f a b c f e b d g f c a b e f b d c b f a b d c e f b f a c d b e f b c f a d b e f c b a f d b c e b f d b a f c b e f d c b a f b e c f d b a f b c e d f b c a b f d e b f c a b f d c e b f b a c d f b e f b c a d f b e c b f d a b f c e b f d a c b f e b d c f b a f b e c d f b a c b f d e b f c a b d f e b c f a b d c f e b f b a d c f b e c b f d a b");
    assert_eq!(seq_of(rr.clone(), &[12, 5, 13, 18, 1], 196), "d c d a c d b a d c d a c d e a b c d d a c d a c d b d c a d c a d c d a b d c a d c d a b d c a d c d a c d b a d c d a c d e a b c d d a c d a c d b d c a d c a d c d a b d c a d c d a b d c a d c d a c d b a d c d a c d e a b c d d a c d a c d b d c a d c a d c d a b d c a d c d a b d c a d c d a c d b a d c d a c d e a b c d d a c d a c d b d c a d c a d c d a b d c a d c d a b d c a");
}

#[test]
fn static_rr_matches_haproxy() {
    assert_eq!(
        seq_of(Balance::StaticRr, &[5, 3, 2, 1], 22),
        "a b a b a c a b a c d a b a b a c a b a c d"
    );
    assert_eq!(
        seq_of(Balance::StaticRr, &[2, 4, 6], 12),
        "a c b c b c a c b c b c"
    );
}

#[test]
fn hashes_match_haproxy() {
    let uri = Balance::Uri {
        len: None,
        depth: None,
        whole: false,
        path_only: false,
    };
    let u = |p: &'static str| (p, None);
    assert_eq!(
        picks(
            uri.clone(),
            &[1, 1, 1, 1],
            &[
                u("/url1"),
                u("/url2"),
                u("/url3"),
                u("/url4"),
                u("/x?q"),
                u("/abc/def")
            ]
        ),
        "b c d a b b"
    );
    assert_eq!(
        picks(
            uri,
            &[3, 1, 2],
            &[
                u("/url1"),
                u("/url2"),
                u("/url3"),
                u("/url4"),
                u("/x"),
                u("/y"),
                u("/zz"),
                u("/hello/world")
            ]
        ),
        "a c a b c a a a"
    );
    let up = Balance::UrlParam { name: "uid".into() };
    assert_eq!(
        picks(
            up,
            &[2, 1, 1],
            &[
                u("/?uid=1"),
                u("/?uid=2"),
                u("/?uid=abc"),
                u("/?a=1&uid=zz"),
                u("/"),
                u("/?uid"),
                u("/"),
                u("/?uid=1")
            ]
        ),
        "a b b a a a b a"
    );
    let hdr = Balance::Hdr {
        name: "X-Tenant".into(),
        use_domain_only: false,
    };
    let t = |v: &'static str| ("/", Some(("x-tenant", v)));
    assert_eq!(
        picks(
            hdr,
            &[1, 1, 1],
            &[
                t("t1"),
                t("t2"),
                t("acme"),
                u("/"),
                t(""),
                u("/"),
                t("t1, t2")
            ]
        ),
        "a b b a b c a"
    );
    assert_eq!(seq_of(Balance::Source, &[3, 1, 2, 5], 3), "c c c");
}

#[derive(Clone, Copy)]
enum Step {
    Picks(usize),
    Maint(usize, bool),
    Drain(usize, bool),
    Weight(usize, u32),
}

/// Runs a script against one balancer; returns the pick groups.
fn replay(s: &[Arc<ServerState>], bal: &dyn Balancer, steps: &[Step]) -> Vec<String> {
    use std::sync::atomic::Ordering;
    let mut out = Vec::new();
    for step in steps {
        match *step {
            Step::Picks(n) => out.push(sequence(bal, s, n)),
            Step::Maint(i, on) => s[i].maint.store(on, Ordering::Release),
            Step::Drain(i, on) => s[i].drain.store(on, Ordering::Release),
            Step::Weight(i, w) => s[i].weight.store(w, Ordering::Relaxed),
        }
    }
    out
}

fn run_script(weights: &[u32], steps: &[Step]) -> Vec<String> {
    let s = servers(weights);
    let bal = build(&Balance::RoundRobin, false, &s);
    replay(&s, bal.as_ref(), steps)
}

/// `set server be/x state maint|ready|drain` and `set server be/x weight N`
/// issued between sequential requests on HAProxy 2.6.12.
#[test]
fn roundrobin_runtime_changes_match_haproxy() {
    use Step::*;
    assert_eq!(
        run_script(
            &[1, 1, 1],
            &[
                Picks(2),
                Maint(1, true),
                Picks(4),
                Maint(1, false),
                Picks(9)
            ]
        ),
        ["a b", "c a c a", "c a b c a b c a b"]
    );
    assert_eq!(
        run_script(
            &[3, 2, 1],
            &[
                Picks(3),
                Maint(0, true),
                Picks(5),
                Maint(0, false),
                Picks(12)
            ]
        ),
        ["a b a", "c b b c b", "b a c a b a b a c a b a"]
    );
    assert_eq!(
        run_script(&[1, 1], &[Picks(2), Weight(1, 3), Picks(12)]),
        ["a b", "a b b b a b b b a b b b"]
    );
    assert_eq!(
        run_script(
            &[5, 3, 2, 1],
            &[Picks(5), Weight(0, 1), Picks(10), Weight(3, 4), Picks(14)]
        ),
        [
            "a b a c a",
            "b d b c b b c a d b",
            "c b d d a b c d b d c b d d"
        ]
    );
    // One backend, two scripts in a row (drain, then maint of two servers).
    let s = servers(&[2, 3, 4]);
    let bal = build(&Balance::RoundRobin, false, &s);
    assert_eq!(
        replay(
            &s,
            bal.as_ref(),
            &[
                Picks(4),
                Drain(2, true),
                Picks(5),
                Drain(2, false),
                Picks(12)
            ]
        ),
        ["c b c a", "b b b a b", "a b c b c a c b c a b c"]
    );
    assert_eq!(
        replay(
            &s,
            bal.as_ref(),
            &[
                Picks(3),
                Maint(0, true),
                Picks(2),
                Maint(1, true),
                Picks(2),
                Maint(0, false),
                Picks(3),
                Maint(1, false),
                Picks(12),
            ]
        ),
        ["b c a", "c b", "c c", "c c a", "c b a c b c a c b c b a"]
    );
}

/// `balance uri` options and `hdr(host) [use_domain_only]` over weights
/// 1/2/1/3/1, as HAProxy 2.6.12 chose (one request per target).
#[test]
fn hash_options_match_haproxy() {
    let w = [1, 2, 1, 3, 1];
    let uri = |len, depth, whole, path_only| Balance::Uri {
        len,
        depth,
        whole,
        path_only,
    };
    let uris: &[&str] = &[
        "/",
        "/a",
        "/ab",
        "/abc",
        "/abcd",
        "/abcdef/x",
        "/a/b/c/d",
        "/a/b?q=1",
        "/a?q=1",
        "/x/y/z?k=v&w",
        "/a/bb/ccc",
        "/url1?x",
        "/longer/path/here?and=query",
    ];
    let on_uris = |b: Balance| {
        let reqs: Vec<_> = uris.iter().map(|u| (*u, None)).collect();
        picks(b, &w, &reqs)
    };
    assert_eq!(
        on_uris(uri(Some(4), None, false, false)),
        "e d a b b b d d d b d a c"
    );
    assert_eq!(
        on_uris(uri(None, Some(2), false, false)),
        "e d a b b b d d d b d b c"
    );
    assert_eq!(
        on_uris(uri(None, None, true, false)),
        "e d a b b b d b a c b d d"
    );
    assert_eq!(
        on_uris(uri(Some(6), Some(1), false, false)),
        "e d a b b c d d d b d b d"
    );
    assert_eq!(
        on_uris(uri(Some(5), None, true, false)),
        "e d a b b b d d b c d b b"
    );
    let abs: &[&str] = &[
        "http://h.example/a/b?q",
        "http://h.example",
        "http://h.example?x",
        "http://h.example:8080/zz/y",
    ];
    let mut reqs: Vec<_> = abs.iter().map(|u| (*u, None)).collect();
    reqs.extend(uris.iter().map(|u| (*u, None)));
    assert_eq!(
        picks(uri(None, None, false, true), &w, &reqs),
        "d a a b e d a b b b d d d d b b b"
    );
    let hosts: &[&'static str] = &[
        "www.example.com",
        "example.com",
        "a.b.c.example.org",
        "localhost",
        "www.example.com:8080",
        "x.y",
        "EXAMPLE.COM",
        "a..b",
        "host.",
        "www.test.co.uk",
    ];
    let host_reqs: Vec<_> = hosts.iter().map(|h| ("/", Some(("host", *h)))).collect();
    let hdr = |use_domain_only| Balance::Hdr {
        name: "host".into(),
        use_domain_only,
    };
    // HAProxy answered `b` for `x.y` only when no header followed Host (it
    // reads one byte past the value); with one after it answers `a`, as here.
    assert_eq!(picks(hdr(true), &w, &host_reqs), "d d d b d a d d a c");
    assert_eq!(picks(hdr(false), &w, &host_reqs), "d d c b c b d b d b");
}

/// `balance leastconn`, weights a=1 b=2 c=3, on a freshly started HAProxy
/// 2.6.12: four scenarios in a row, each starting a request every 100 ms
/// that the server holds for the given time (the offsets keep every start and
/// end distinct in time). Replayed as the same events in time order.
#[test]
fn leastconn_with_overlapping_requests_matches_haproxy() {
    #[rustfmt::skip]
    let scenarios: &[(&[u64], &str)] = &[
        (&[2520, 2520, 2520, 460, 460, 2520, 460, 130, 2520, 970, 460, 130, 130, 2520], "a b c c b c c b c b b c c c"),
        (&[2520, 460, 130, 130, 130, 130, 460, 460, 130, 2520, 970, 2520, 460, 460], "a b c c c c b c c b c c b c"),
        (&[970, 2520, 130, 130, 2520, 970, 2520, 130, 970, 970, 460, 970, 130, 130], "a b c c c c b c c c a b c a"),
        (&[130, 2520, 130, 970, 2520, 130, 130, 130, 460, 460, 130, 2520, 2520, 2520], "a c b a b c b c c b c c c a"),
    ];
    let s = servers(&[1, 2, 3]);
    let bal = build(&Balance::LeastConn, false, &s);
    for (durations, want) in scenarios {
        assert_eq!(
            overlapping(bal.as_ref(), &s, durations),
            *want,
            "{durations:?}"
        );
    }
}

/// Starts a request every 100 ms held for the given durations, on one
/// balancer over several scenarios; returns the picks of each scenario.
fn overlapping(b: &dyn Balancer, s: &[Arc<ServerState>], durations: &[u64]) -> String {
    let h = http::HeaderMap::new();
    let mut events: Vec<(u64, bool, usize)> = Vec::new();
    for (i, d) in durations.iter().enumerate() {
        events.push((100 * i as u64, true, i));
        events.push((100 * i as u64 + d, false, i));
    }
    events.sort();
    let mut guards: Vec<Option<_>> = (0..durations.len()).map(|_| None).collect();
    let mut picks = Vec::new();
    for (_, is_start, i) in events {
        if is_start {
            let k = b.pick(s, &ctx("/", &h)).unwrap();
            picks.push(s[k].name.clone());
            guards[i] = Some(s[k].acquire());
        } else {
            guards[i] = None;
        }
    }
    picks.join(" ")
}

/// Scenarios of [`overlapping`] requests: durations, then HAProxy's picks.
type Scenarios = &'static [(&'static [u64], &'static str)];

#[rustfmt::skip]
const SATURATED_RR: Scenarios = &[
    (&[460, 2520, 2520, 970, 2520, 460, 2520, 460, 460, 130, 130, 970, 2520, 130], "a b a c a a a a a a a a a c"),
    (&[460, 460, 460, 130, 2520, 2520, 2520, 130, 970, 2520, 130, 970, 130, 460], "a b a a c a b a a a a a a a"),
    (&[130, 130, 130, 2520, 460, 970, 2520, 2520, 460, 460, 130, 2520, 460, 130], "b a c a b a a c a b a a a a"),
];

#[rustfmt::skip]
const SATURATED_STATIC_RR: Scenarios = &[
    (&[460, 460, 130, 2520, 460, 130, 970, 130, 460, 970, 130, 970, 460, 2520], "a a b a b c a a a b c a a a"),
    (&[130, 130, 970, 970, 2520, 460, 460, 130, 130, 970, 970, 970, 460, 2520], "b c a a b a c a a a a a a c"),
    (&[970, 460, 970, 970, 460, 2520, 130, 970, 130, 2520, 970, 970, 2520, 2520], "a a b a c a a a a a a c a a"),
];

/// Weights a=3 b=2 c=1 with `maxconn 1` on b and c (a never full, so
/// nothing queues): full servers are skipped and requeued as HAProxy 2.6.12
/// does (fresh process, three scenarios in a row).
#[test]
fn saturated_servers_are_skipped_like_haproxy() {
    for (alg, scenarios) in [
        (Balance::RoundRobin, SATURATED_RR),
        (Balance::StaticRr, SATURATED_STATIC_RR),
    ] {
        let s = servers_with(&[3, 2, 1], |i, c| {
            if i > 0 {
                c.maxconn = Some(1)
            }
        });
        let bal = build(&alg, false, &s);
        for (durations, want) in scenarios {
            assert_eq!(
                overlapping(bal.as_ref(), &s, durations),
                *want,
                "{alg:?} {durations:?}"
            );
        }
    }
}
