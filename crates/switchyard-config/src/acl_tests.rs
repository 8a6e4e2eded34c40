//! Unit tests of `acl.rs`.

use super::*;
use crate::draft::Kind;

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

fn crit(s: &str) -> Result<AclCriterion, String> {
    criterion(&words(s), &Location::default(), &mut Vec::new())
}

#[test]
fn fetches_and_methods() {
    let c = crit("path_beg /engine.io").unwrap();
    assert_eq!(
        (c.fetch, c.method, c.patterns),
        (
            Fetch::Path,
            MatchMethod::Beg,
            vec!["/engine.io".to_string()]
        )
    );
    let c = crit("hdr(host) -i example.com www.example.com").unwrap();
    assert_eq!(
        c.fetch,
        Fetch::Hdr {
            name: "host".into(),
            occ: None
        }
    );
    assert!(c.ignore_case);
    assert_eq!(c.patterns.len(), 2);
    let c = crit("hdr_dom(host,-1) -m dom example.com").unwrap();
    assert_eq!(
        (c.fetch, c.method),
        (
            Fetch::Hdr {
                name: "host".into(),
                occ: Some(-1)
            },
            MatchMethod::Dom
        )
    );
    let c = crit("src 127.0.0.0/8 10.0.0.1 ::1 192.168.0.0/255.255.0.0").unwrap();
    assert_eq!(c.nets.len(), 4);
    assert_eq!(c.nets[3].prefix, 16);
    let c = crit("req.cook(SRV) -m found").unwrap();
    assert_eq!(
        (c.fetch, c.method),
        (Fetch::Cookie { name: "SRV".into() }, MatchMethod::Found)
    );
    let c = crit("dst_port 80 8000:8080").unwrap();
    assert_eq!(c.method, MatchMethod::Int);
    let c = crit("hdr_cnt(host) gt 1").unwrap();
    assert_eq!(c.patterns, ["gt 1"]);
    let c = crit("url_param(uid) -m len 3").unwrap();
    assert_eq!(c.method, MatchMethod::Len);
}

#[test]
fn criterion_errors() {
    assert_eq!(
        crit("path_begin /x").unwrap_err(),
        "unknown fetch method 'path_begin' in ACL expression 'path_begin'"
    );
    assert!(crit("src 1.2.3.999")
        .unwrap_err()
        .contains("is not a valid IPv4 or IPv6 address"));
    assert!(crit("path_reg (")
        .unwrap_err()
        .starts_with("regex '(' is invalid"));
    assert!(crit("hdr(host) -m foo x")
        .unwrap_err()
        .contains("unknown matching method 'foo'"));
    assert_eq!(crit("ssl_fc").unwrap().fetch, Fetch::Always(false));
    assert!(crit("ssl_fc_sni")
        .unwrap_err()
        .starts_with("__unsupported__"));
    assert!(crit("path,lower /x")
        .unwrap_err()
        .starts_with("__unsupported__"));
    assert!(crit("hdr() x").is_err());
    assert!(crit("dst_port abc").is_err());
}

const SW: &str = "error detected while parsing switching rule : ";

#[test]
fn conditions() {
    let mut px = Proxy::builtin(Kind::Frontend, "f".into(), Location::default());
    let mut d = Diags::default();
    let acl = |px: &mut Proxy, d: &mut Diags, s: &str| {
        acl_line(
            d,
            px,
            &Line {
                words: words(s),
                loc: Location::default(),
            },
        )
    };
    acl(&mut px, &mut d, "acl a path_beg /a");
    acl(&mut px, &mut d, "acl b method POST");
    acl(&mut px, &mut d, "acl a path_beg /aa");
    assert_eq!(px.acls.len(), 2);
    assert_eq!(px.acls[0].criteria.len(), 2);
    let line = Line {
        words: words("use_backend x if a !b || ! b { path /x } or METH_GET"),
        loc: Location::default(),
    };
    let c = condition(&mut d, &mut px, &line, 2, SW).unwrap();
    assert!(!c.unless);
    assert_eq!(c.any_of.len(), 3);
    assert_eq!(
        c.any_of[0],
        vec![
            Term {
                negated: false,
                acl: 0
            },
            Term {
                negated: true,
                acl: 1
            }
        ]
    );
    assert_eq!(
        c.any_of[1][0],
        Term {
            negated: true,
            acl: 1
        }
    );
    assert_eq!(px.acls[2].name, "{anon#1}");
    assert_eq!(px.acls[3].name, "METH_GET");
    assert_eq!(px.acls[3].criteria[0].patterns, ["GET", "HEAD"]);
    assert!(d.list.is_empty(), "{:?}", d.list);
    let line = Line {
        words: words("use_backend x unless zz"),
        loc: Location::default(),
    };
    assert!(condition(&mut d, &mut px, &line, 2, SW).is_none());
    assert_eq!(
        d.list[0].message,
        "error detected while parsing switching rule : no such ACL : 'zz'."
    );
    let line = Line {
        words: words("use_backend x if { path_beg /x"),
        loc: Location::default(),
    };
    assert!(condition(&mut d, &mut px, &line, 2, SW).is_none());
    assert!(d.list[1]
        .message
        .ends_with("missing closing '}' in condition."));
}
