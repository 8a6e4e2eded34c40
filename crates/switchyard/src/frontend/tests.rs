//! Router cases: the seed frontend and switching-rule order.

use switchyard_config::{Fetch, Frontend, MatchMethod as M, SwitchingRule};

use super::testutil::*;
use super::*;

fn rule(backend: usize, cond: Option<Condition>) -> SwitchingRule {
    SwitchingRule {
        backend,
        cond,
        loc: Default::default(),
    }
}

/// The seed: `acl is_engineio path_beg /engine.io`,
/// `use_backend socket-servers if is_engineio`, `default_backend http-servers`.
fn seed() -> Frontend {
    Frontend {
        name: "all".into(),
        acls: vec![acl(
            "is_engineio",
            vec![crit(Fetch::Path, M::Beg, false, &["/engine.io"])],
        )],
        switching_rules: vec![rule(1, Some(when(0)))],
        default_backend: Some(0),
        ..Frontend::default()
    }
}

#[test]
fn seed_routing() {
    let r = Router::build(&seed()).unwrap();
    let route = |uri: &str| r.route(&Req::get(uri).info());
    assert_eq!(route("/foo"), Some(0));
    assert_eq!(route("/engine.io/?EIO=4&transport=polling"), Some(1));
    assert_eq!(route("/engine.io"), Some(1));
    assert_eq!(route("/socket.io/"), Some(0));
    assert_eq!(route("/"), Some(0));
    assert!(r.acls().eval_acl(0, &Req::get("/engine.io/").info()));
}

#[test]
fn first_matching_rule_wins_and_no_default_gives_none() {
    let fe = Frontend {
        acls: vec![
            acl("api", vec![crit(Fetch::Path, M::Beg, false, &["/api"])]),
            acl(
                "local",
                vec![crit(Fetch::Src, M::Ip, false, &["127.0.0.0/8"])],
            ),
            acl(
                "host_a",
                vec![crit(hdr("host"), M::Str, true, &["a.example"])],
            ),
        ],
        switching_rules: vec![
            rule(2, Some(cond(false, &[&[(false, 0), (true, 1)]]))),
            rule(3, Some(cond(false, &[&[(false, 0)], &[(false, 2)]]))),
            rule(4, Some(cond(true, &[&[(false, 1)]]))),
        ],
        default_backend: None,
        ..Frontend::default()
    };
    let r = Router::build(&fe).unwrap();
    assert_eq!(r.route(&Req::get("/api/x").info()), Some(3));
    assert_eq!(
        r.route(&Req::get("/api/x").from("10.0.0.1").info()),
        Some(2)
    );
    assert_eq!(
        r.route(&Req::new("GET", "/", &[("host", "A.example")]).info()),
        Some(3)
    );
    assert_eq!(r.route(&Req::get("/").from("10.0.0.1").info()), Some(4));
    assert_eq!(r.route(&Req::get("/").info()), None);
}

#[test]
fn unconditional_rule_and_build_error() {
    let fe = Frontend {
        switching_rules: vec![rule(5, None)],
        default_backend: Some(0),
        ..Frontend::default()
    };
    assert_eq!(
        Router::build(&fe).unwrap().route(&Req::get("/").info()),
        Some(5)
    );
    let bad = Frontend {
        acls: vec![acl("r", vec![crit(Fetch::Path, M::Reg, false, &["[z-a]"])])],
        ..Frontend::default()
    };
    let err = Router::build(&bad).unwrap_err();
    assert!(err.contains("acl 'r'"), "{err}");
}

/// Rules of one `path_beg` ACL take a shortcut in `route`: random rule lists (`if`,
/// `unless`, `!acl`, with and without `-i`, other fetches, two-term conditions) route
/// every request as the conditions' general evaluation does.
#[test]
fn path_beg_shortcut_routes_as_the_general_evaluation() {
    let mut rng = fastrand::Rng::with_seed(0x9047);
    let words = ["/a", "/ab", "/A", "/", "/engine.io", "/b/c", ""];
    let paths = [
        "/",
        "/a",
        "/ab/x",
        "/A",
        "/engine.io/?x",
        "/b/c/d",
        "/ba",
        "/x?/a",
    ];
    for _ in 0..500 {
        let acls: Vec<_> = (0..rng.usize(1..4))
            .map(|i| {
                let pats: Vec<&str> = (0..rng.usize(1..3))
                    .map(|_| words[rng.usize(..words.len())])
                    .collect();
                let (fetch, method) = match rng.u8(0..4) {
                    0 => (Fetch::Url, M::Beg),
                    1 => (Fetch::Path, M::Str),
                    _ => (Fetch::Path, M::Beg),
                };
                let mut criteria = vec![crit(fetch, method, rng.u8(0..3) == 0, &pats)];
                if rng.u8(0..5) == 0 {
                    criteria.push(crit(Fetch::Path, M::Beg, false, &["/b"]));
                }
                acl(&format!("a{i}"), criteria)
            })
            .collect();
        let n = acls.len();
        let rules = (0..rng.usize(1..4))
            .map(|b| {
                let mut group = vec![(rng.bool(), rng.usize(..n))];
                if rng.u8(0..4) == 0 {
                    group.push((rng.bool(), rng.usize(..n)));
                }
                let groups: [&[(bool, usize)]; 1] = [group.as_slice()];
                rule(b + 1, Some(cond(rng.bool(), &groups)))
            })
            .collect();
        let fe = Frontend {
            acls,
            switching_rules: rules,
            default_backend: Some(0),
            ..Frontend::default()
        };
        let r = Router::build(&fe).unwrap();
        for p in paths {
            let req = Req::get(p);
            assert_eq!(
                r.route(&req.info()),
                r.route_generic(&req.info()),
                "{p} {fe:?}"
            );
        }
    }
}
