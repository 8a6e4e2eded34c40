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
