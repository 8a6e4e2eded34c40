//! ACL fetch and match-method cases.

use switchyard_config::{Fetch, IpNet, MatchMethod as M};

use super::*;
use crate::frontend::testutil::*;

/// Whether a single-criterion ACL matches the request.
fn m(c: AclCriterion, r: &Req) -> bool {
    let acls = CompiledAcls::compile(&[acl("a", vec![c])]).unwrap();
    acls.eval_acl(0, &r.info())
}

#[test]
fn path_beg_engine_io() {
    let c = || crit(Fetch::Path, M::Beg, false, &["/engine.io"]);
    assert!(m(c(), &Req::get("/engine.io/?EIO=4&transport=polling")));
    assert!(m(c(), &Req::get("/engine.io")));
    assert!(!m(c(), &Req::get("/foo")));
    assert!(!m(c(), &Req::get("/Engine.io/")));
    assert!(!m(c(), &Req::get("/x/engine.io")));
    // Absolute form: the path after the authority.
    assert!(m(c(), &Req::get("http://example.com/engine.io/x")));
    // The query is not part of the path.
    assert!(!m(c(), &Req::get("/?x=/engine.io")));
    assert!(m(
        crit(Fetch::Path, M::Str, false, &["/a"]),
        &Req::get("/a?x=1")
    ));
}

#[test]
fn ignore_case_and_or_of_patterns() {
    let c = || crit(Fetch::Path, M::End, true, &[".PNG", ".jpg"]);
    assert!(m(c(), &Req::get("/a/b.png")));
    assert!(m(c(), &Req::get("/a/b.JPG")));
    assert!(!m(c(), &Req::get("/a/b.gif")));
    assert!(!m(
        crit(Fetch::Path, M::End, false, &[".PNG"]),
        &Req::get("/b.png")
    ));
    assert!(m(
        crit(Fetch::Path, M::Sub, true, &["ADMIN"]),
        &Req::get("/x/admin/y")
    ));
    // HAProxy quirk: well-known method names are matched exactly, `-i` or not.
    let meth = |icase, p: &str| crit(Fetch::Method, M::Str, icase, &[p]);
    assert!(!m(meth(true, "get"), &Req::get("/")));
    assert!(m(meth(true, "GET"), &Req::get("/")));
    assert!(!m(meth(false, "get"), &Req::get("/")));
    assert!(m(meth(true, "purge"), &Req::new("PURGE", "/", &[])));
    assert!(!m(meth(false, "purge"), &Req::new("PURGE", "/", &[])));
    assert!(m(crit(Fetch::Method, M::Beg, true, &["g"]), &Req::get("/")));
}

#[test]
fn regex_dir_dom_len() {
    let r = |p| crit(Fetch::Path, M::Reg, false, &[p]);
    assert!(m(r(r"^/api/v[0-9]+/"), &Req::get("/api/v2/users")));
    assert!(!m(r(r"^/api/v[0-9]+/"), &Req::get("/api/vx/users")));
    assert!(m(
        crit(Fetch::Path, M::Reg, true, &["^/API"]),
        &Req::get("/api")
    ));
    let dir = |p| crit(Fetch::Path, M::Dir, false, &[p]);
    assert!(m(dir("images"), &Req::get("/static/images/a.png")));
    assert!(m(dir("/images/"), &Req::get("/images")));
    assert!(!m(dir("images"), &Req::get("/static/myimages/a.png")));
    let dom = |p| crit(hdr("host"), M::Dom, true, &[p]);
    assert!(m(
        dom("example.com"),
        &Req::new("GET", "/", &[("host", "www.Example.com:8080")])
    ));
    assert!(m(
        dom("www"),
        &Req::new("GET", "/", &[("host", "www.example.com")])
    ));
    assert!(!m(
        dom("ample.com"),
        &Req::new("GET", "/", &[("host", "www.example.com")])
    ));
    let len = |p| crit(Fetch::Path, M::Len, false, &[p]);
    assert!(m(len("3"), &Req::get("/ab")));
    assert!(m(len("2:4"), &Req::get("/abc")));
    assert!(!m(len("5:"), &Req::get("/abc")));
}

#[test]
fn hdr_comma_splitting_occurrences_and_fhdr() {
    let r = Req::new(
        "GET",
        "/",
        &[("x-a", "one, two"), ("x-a", "three"), ("x-q", "\"a,b\", c")],
    );
    let h = |p| crit(hdr("X-A"), M::Str, false, &[p]);
    assert!(m(h("one"), &r));
    assert!(m(h("two"), &r));
    assert!(m(h("three"), &r));
    assert!(!m(h("one, two"), &r));
    let occ = |occ, p| {
        crit(
            Fetch::Hdr {
                name: "x-a".into(),
                occ: Some(occ),
            },
            M::Str,
            false,
            &[p],
        )
    };
    assert!(m(occ(2, "two"), &r));
    assert!(!m(occ(2, "one"), &r));
    assert!(m(occ(-1, "three"), &r));
    assert!(m(occ(-3, "one"), &r));
    assert!(!m(occ(-4, "one"), &r));
    let f = |p| {
        crit(
            Fetch::Fhdr {
                name: "x-a".into(),
                occ: None,
            },
            M::Str,
            false,
            &[p],
        )
    };
    assert!(m(f("one, two"), &r));
    assert!(!m(f("two"), &r));
    assert!(m(crit(hdr("x-q"), M::Str, false, &["\"a,b\""]), &r));
    let cnt = |p| crit(Fetch::HdrCnt { name: "x-a".into() }, M::Int, false, &[p]);
    assert!(m(cnt("3"), &r));
    assert!(m(cnt("gt 2"), &r));
    assert!(!m(cnt("lt 3"), &r));
    let found = crit(hdr("x-missing"), M::Found, false, &[]);
    assert!(!m(found, &r));
    assert!(m(crit(hdr("x-a"), M::Found, false, &[]), &r));
}

#[test]
fn src_cidr_and_ip() {
    let c = |nets: Vec<IpNet>| AclCriterion {
        nets,
        ..crit(Fetch::Src, M::Ip, false, &[])
    };
    let net = |a: &str, p| IpNet {
        addr: a.parse().unwrap(),
        prefix: p,
    };
    assert!(m(c(vec![net("127.0.0.0", 8)]), &Req::get("/")));
    assert!(m(
        c(vec![net("10.0.0.0", 8), net("127.0.0.1", 32)]),
        &Req::get("/")
    ));
    assert!(!m(c(vec![net("10.0.0.0", 8)]), &Req::get("/")));
    assert!(m(
        c(vec![net("10.0.0.0", 8)]),
        &Req::get("/").from("10.2.3.4")
    ));
    assert!(m(
        c(vec![net("10.0.0.0", 8)]),
        &Req::get("/").from("::ffff:10.2.3.4")
    ));
    assert!(m(
        c(vec![net("2001:db8::", 32)]),
        &Req::get("/").from("2001:db8::7")
    ));
    // Patterns given only as text are parsed too.
    assert!(m(
        crit(Fetch::Src, M::Ip, false, &["127.0.0.0/8"]),
        &Req::get("/")
    ));
    assert!(m(
        crit(Fetch::Src, M::Ip, false, &["127.0.0.0/255.0.0.0"]),
        &Req::get("/")
    ));
    // hdr_ip style: an address in a header.
    let r = Req::new("GET", "/", &[("x-forwarded-for", "192.168.1.5, 10.0.0.1")]);
    assert!(m(
        crit(hdr("x-forwarded-for"), M::Ip, false, &["192.168.0.0/16"]),
        &r
    ));
}

#[test]
fn url_param_query_cookie_version_port() {
    let p = |v| crit(Fetch::UrlParam { name: "sid".into() }, M::Str, false, &[v]);
    assert!(m(p("abc"), &Req::get("/x?a=1&sid=abc")));
    assert!(!m(p("abc"), &Req::get("/x?sid")));
    assert!(!m(
        crit(Fetch::UrlParam { name: "sid".into() }, M::Found, false, &[]),
        &Req::get("/x?sid")
    ));
    assert!(m(
        crit(Fetch::UrlParam { name: "sid".into() }, M::Found, false, &[]),
        &Req::get("/x?sid=")
    ));
    assert!(!m(p("abc"), &Req::get("/x?xsid=abc")));
    assert!(m(
        crit(Fetch::Query, M::Sub, false, &["b=2"]),
        &Req::get("/x?a=1&b=2")
    ));
    assert!(!m(
        crit(Fetch::Query, M::Found, false, &[]),
        &Req::get("/x")
    ));
    let ck = |v| {
        crit(
            Fetch::Cookie {
                name: "SRVNAME".into(),
            },
            M::Str,
            false,
            &[v],
        )
    };
    let r = Req::new(
        "GET",
        "/",
        &[("cookie", "a=1; SRVNAME=S2"), ("cookie", "b=2")],
    );
    assert!(m(ck("S2"), &r));
    assert!(!m(ck("S1"), &r));
    assert!(m(crit(Fetch::ReqVer, M::Str, false, &["1.1"]), &r));
    assert!(m(crit(Fetch::DstPort, M::Int, false, &["3000"]), &r));
    assert!(m(
        crit(Fetch::DstPort, M::Int, false, &["80", "2000:4000"]),
        &r
    ));
    assert!(!m(crit(Fetch::DstPort, M::Int, false, &["80"]), &r));
    assert!(m(
        crit(Fetch::Url, M::Beg, false, &["/x?"]),
        &Req::get("/x?y")
    ));
    assert!(m(
        crit(Fetch::Url, M::Beg, false, &["http://h/"]),
        &Req::get("http://h/x")
    ));
}

#[test]
fn always_and_bool() {
    assert!(m(
        crit(Fetch::Always(true), M::Bool, false, &[]),
        &Req::get("/")
    ));
    assert!(!m(
        crit(Fetch::Always(false), M::Bool, false, &[]),
        &Req::get("/")
    ));
    let r = Req::new("GET", "/", &[("x-a", "1")]);
    assert!(m(
        crit(Fetch::HdrCnt { name: "x-a".into() }, M::Bool, false, &[]),
        &r
    ));
    assert!(!m(
        crit(Fetch::HdrCnt { name: "x-b".into() }, M::Bool, false, &[]),
        &r
    ));
}

#[test]
fn conditions_dnf_negation_unless() {
    let acls = CompiledAcls::compile(&[
        acl("is_api", vec![crit(Fetch::Path, M::Beg, false, &["/api"])]),
        acl(
            "is_post",
            vec![crit(Fetch::Method, M::Str, false, &["POST"])],
        ),
        // Two declarations of the same name are OR-ed.
        acl(
            "is_img",
            vec![
                crit(Fetch::Path, M::End, false, &[".png"]),
                crit(Fetch::Path, M::End, false, &[".jpg"]),
            ],
        ),
    ])
    .unwrap();
    let get_api = Req::get("/api/x");
    let post_api = Req::new("POST", "/api/x", &[]);
    let jpg = Req::get("/a.jpg");
    let e = |c: &Condition, r: &Req| acls.eval(c, &r.info());
    let and = cond(false, &[&[(false, 0), (false, 1)]]);
    assert!(!e(&and, &get_api));
    assert!(e(&and, &post_api));
    let or = cond(false, &[&[(false, 1)], &[(false, 2)]]);
    assert!(e(&or, &jpg));
    assert!(e(&or, &post_api));
    assert!(!e(&or, &get_api));
    let not = cond(false, &[&[(true, 0)]]);
    assert!(e(&not, &jpg));
    assert!(!e(&not, &get_api));
    let unless = cond(true, &[&[(false, 0)]]);
    assert!(e(&unless, &jpg));
    assert!(!e(&unless, &get_api));
    assert!(acls.eval_opt(None, &jpg.info()));
    // Unknown ACL index is false, never a panic.
    assert!(!e(&cond(false, &[&[(false, 9)]]), &jpg));
}

#[test]
fn compile_errors() {
    let bad_re = acl("x", vec![crit(Fetch::Path, M::Reg, false, &["("])]);
    assert!(CompiledAcls::compile(&[bad_re]).is_err());
    let bad_int = acl("x", vec![crit(Fetch::DstPort, M::Int, false, &["abc"])]);
    assert!(CompiledAcls::compile(&[bad_int]).is_err());
    let bad_hdr = acl("x", vec![crit(hdr("bad header"), M::Str, false, &["a"])]);
    assert!(CompiledAcls::compile(&[bad_hdr]).is_err());
}

#[test]
fn match_word_edges() {
    assert!(match_word(b"/a/b/c", b"b", false, b"/?"));
    assert!(match_word(b"/a/b/c", b"b/c", false, b"/?"));
    assert!(!match_word(b"/a/bb/c", b"b", false, b"/?"));
    assert!(match_word(b"/a/B?x", b"b", true, b"/?"));
    assert!(!match_word(b"/a", b"//", false, b"/?"));
    assert!(!match_word(b"", b"a", false, b"/?"));
}

#[test]
fn int_ranges() {
    let r = |p: &[&str]| parse_ranges(&p.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    assert_eq!(r(&["5"]).unwrap(), [(5, 5)]);
    assert_eq!(
        r(&["1:3", ":2", "4:"]).unwrap(),
        [(1, 3), (i64::MIN, 2), (4, i64::MAX)]
    );
    assert_eq!(
        r(&["gt", "3", "le", "1"]).unwrap(),
        [(4, i64::MAX), (i64::MIN, 1)]
    );
    assert!(r(&["ge"]).is_err());
}

#[test]
fn split_values_is_total_and_keeps_every_byte() {
    let parts = |v: &[u8]| {
        let mut out: Vec<Vec<u8>> = Vec::new();
        split_values(v, &mut |p| {
            out.push(p.to_vec());
            false
        });
        out
    };
    assert_eq!(parts(b"a, b"), [b"a".to_vec(), b"b".to_vec()]);
    assert_eq!(parts(br#""a,b", c"#), [br#""a,b""#.to_vec(), b"c".to_vec()]);
    // An escaped quote keeps the comma quoted; an escaped backslash does not.
    assert_eq!(parts(br#""x\", y"#), [br#""x\", y"#.to_vec()]);
    assert_eq!(parts(br#""x\\", y"#), [br#""x\\""#.to_vec(), b"y".to_vec()]);
    assert_eq!(parts(br#""abc\"#), [br#""abc\"#.to_vec()]);
    assert_eq!(parts(b""), [b"".to_vec()]);
    let mut rng = fastrand::Rng::with_seed(5);
    for _ in 0..20_000 {
        let v: Vec<u8> = (0..rng.usize(0..24))
            .map(|_| b"a,\" \\\t"[rng.usize(0..6)])
            .collect();
        let got = parts(&v);
        // Every non-blank byte of the input lands in exactly one part.
        let kept: usize = got
            .iter()
            .map(|p| p.iter().filter(|c| !c.is_ascii_whitespace()).count())
            .sum();
        let commas_split = got.len() - 1;
        let non_blank = v.iter().filter(|c| !c.is_ascii_whitespace()).count();
        assert_eq!(
            kept + commas_split,
            non_blank,
            "{:?}",
            String::from_utf8_lossy(&v)
        );
    }
}

/// `Criterion::matches` takes a shortcut for a path fetch with string patterns: it gives
/// the generic walk's verdict (sample callback, `match_sample`) for every string method,
/// with and without `-i`, one or several patterns.
#[test]
fn path_shortcut_agrees_with_the_generic_walk() {
    let methods = [M::Str, M::Beg, M::End, M::Sub, M::Dir, M::Dom];
    let alphabet = ['/', 'a', 'B', '.', 'e', '?', '-'];
    let mut rng = fastrand::Rng::with_seed(0xac1);
    let word = |rng: &mut fastrand::Rng, max: usize| -> String {
        (0..rng.usize(0..max))
            .map(|_| alphabet[rng.usize(..alphabet.len())])
            .collect()
    };
    for _ in 0..3_000 {
        let method = methods[rng.usize(..methods.len())];
        let pats: Vec<String> = (0..rng.usize(1..4)).map(|_| word(&mut rng, 5)).collect();
        let pats: Vec<&str> = pats.iter().map(String::as_str).collect();
        let c = compile_criterion(&crit(Fetch::Path, method, rng.bool(), &pats)).unwrap();
        let path = format!("/{}", word(&mut rng, 9).replace('?', ""));
        let req = Req::get(&path);
        let info = req.info();
        let mut generic = false;
        for_each_sample(&c.fetch, &info, &mut |s| {
            generic = c.match_sample(s);
            generic
        });
        assert_eq!(c.matches(&info), generic, "{method:?} {pats:?} {path:?}");
    }
}
