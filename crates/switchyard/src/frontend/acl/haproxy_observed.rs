//! ACL semantics recorded on HAProxy 2.6.12: the configuration below was
//! run by HAProxy with two backends answering 201 ("yes") and 202 ("no");
//! each case sends `x-case: N` so that only rule N can match. Here the same
//! text goes through `switchyard_config::parse` and our [`Router`].

use switchyard_config::{parse, Source};

use crate::frontend::testutil::Req;
use crate::frontend::Router;

const CONFIG: &str = r#"defaults
    mode http
    timeout connect 2s
    timeout client 5s
    timeout server 5s
frontend acl
    bind 127.0.0.1:25000
    acl is_engineio path_beg /engine.io
    acl is_api path_beg -i /API
    acl is_img path_end -i .PNG .jpg
    acl is_img path_end .gif
    acl is_post method POST
    acl local src 127.0.0.0/8
    acl tenant hdr(x-tenant) -m str acme
    use_backend yes if { req.hdr(x-case) -m str 1 } is_engineio
    use_backend yes if { req.hdr(x-case) -m str 2 } is_api
    use_backend yes if { req.hdr(x-case) -m str 3 } is_img
    use_backend yes if { req.hdr(x-case) -m str 4 } is_api is_post
    use_backend yes if { req.hdr(x-case) -m str 5 } is_img || { req.hdr(x-case) -m str 5 } is_post
    use_backend yes if { req.hdr(x-case) -m str 6 } is_img || { req.hdr(x-case) -m str 6 } is_api
    use_backend yes if { req.hdr(x-case) -m str 7 } !local
    use_backend yes if { req.hdr(x-case) -m str 8 } local !is_api
    use_backend yes if { req.hdr(x-case) -m str 9 } { path_sub -i ADMIN }
    use_backend yes if { req.hdr(x-case) -m str 10 } { path_reg ^/api/v[0-9]+/ }
    use_backend yes if { req.hdr(x-case) -m str 11 } { path_dir images }
    use_backend yes if { req.hdr(x-case) -m str 12 } { path_dir /images/ }
    use_backend yes if { req.hdr(x-case) -m str 13 } { hdr_dom(host) -i example.com }
    use_backend yes if { req.hdr(x-case) -m str 14 } { hdr(host) -i www.example.com }
    use_backend yes if { req.hdr(x-case) -m str 15 } { hdr_beg(x-a) two }
    use_backend yes if { req.hdr(x-case) -m str 16 } { hdr(x-a,2) two }
    use_backend yes if { req.hdr(x-case) -m str 17 } { hdr(x-a,-1) one }
    use_backend yes if { req.hdr(x-case) -m str 18 } { req.fhdr(x-a) -m str one,two }
    use_backend yes if { req.hdr(x-case) -m str 19 } { hdr_cnt(x-a) gt 1 }
    use_backend yes if { req.hdr(x-case) -m str 20 } { hdr_sub(user-agent) -i CURL }
    use_backend yes if { req.hdr(x-case) -m str 21 } { src 10.0.0.0/8 }
    use_backend yes if { req.hdr(x-case) -m str 22 } { src 127.0.0.1 }
    use_backend yes if { req.hdr(x-case) -m str 23 } { url_param(sid) abc }
    use_backend yes if { req.hdr(x-case) -m str 24 } { url_param(sid) def }
    use_backend yes if { req.hdr(x-case) -m str 25 } { url_param(sid) -m found }
    use_backend yes if { req.hdr(x-case) -m str 26 } { req.cook(SRVNAME) S1 }
    use_backend yes if { req.hdr(x-case) -m str 27 } { method -i get }
    use_backend yes if { req.hdr(x-case) -m str 28 } { method get }
    use_backend yes if { req.hdr(x-case) -m str 29 } METH_GET
    use_backend yes if { req.hdr(x-case) -m str 30 } { query -m sub b=2 }
    use_backend yes if { req.hdr(x-case) -m str 31 } { query -m found }
    use_backend yes if { req.hdr(x-case) -m str 32 } { url_beg /x? }
    use_backend yes if { req.hdr(x-case) -m str 33 } { dst_port 80:30000 }
    use_backend yes if { req.hdr(x-case) -m str 34 } { dst_port 80 }
    use_backend yes if { req.hdr(x-case) -m str 35 } { req.ver 1.0 }
    use_backend yes if { req.hdr(x-case) -m str 36 } HTTP_1.1
    use_backend yes if { req.hdr(x-case) -m str 37 } { path -m len 3 }
    use_backend yes if { req.hdr(x-case) -m str 38 } { hdr_len(host) gt 5 }
    use_backend yes if { req.hdr(x-case) -m str 39 } { hdr_ip(x-forwarded-for) 192.168.0.0/16 }
    use_backend yes if { req.hdr(x-case) -m str 40 } { hdr_reg(host) -i ^www\. }
    use_backend yes if { req.hdr(x-case) -m str 41 } { hdr(x-q) "a,b" }
    use_backend yes if { req.hdr(x-case) -m str 42 } { hdr_val(content-length) gt 0 }
    use_backend yes if { req.hdr(x-case) -m str 43 } { hdr_end(x-e) -i .COM }
    use_backend yes if { req.hdr(x-case) -m str 44 } LOCALHOST
    use_backend yes if { req.hdr(x-case) -m str 45 } TRUE
    use_backend yes if { req.hdr(x-case) -m str 46 } FALSE
    use_backend yes if { req.hdr(x-case) -m str 47 } tenant
    use_backend yes if { req.hdr(x-case) -m str 48 } { path / } || { req.hdr(x-case) -m str 48 } { path_beg /z } !is_post
    use_backend yes if { req.hdr(x-case) -m str 49 } { hdr(host) -m found } { hdr(host) -m len 0 }
    use_backend yes if { req.hdr(x-case) -m str 50 } { path_beg /a /b } { path_end .js }
    use_backend yes if { req.hdr(x-case) -m str 51 } { hdr_dom(host) com }
    use_backend yes if { req.hdr(x-case) -m str 52 } { path_dir b/c }
    use_backend yes if { req.hdr(x-case) -m str 53 } { path_beg -m beg /q }
    use_backend yes if { req.hdr(x-case) -m str 54 } !is_api
    default_backend no
backend yes
    server y 127.0.0.1:25101
backend no
    server n 127.0.0.1:25102
"#;

/// (case, method, target, HTTP version, headers, routed to "yes")
type Case = (
    u32,
    &'static str,
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
    bool,
);

#[rustfmt::skip]
const CASES: &[Case] = &[
    (1, "GET", "/engine.io/?EIO=4", "1.1", &[("host", "h")], true), // is_engineio
    (1, "GET", "/engine.iox", "1.1", &[("host", "h")], true), // is_engineio
    (1, "GET", "/x/engine.io", "1.1", &[("host", "h")], false), // is_engineio
    (1, "GET", "http://example.com/engine.io/x", "1.1", &[("host", "example.com")], true), // is_engineio
    (1, "GET", "/?p=/engine.io", "1.1", &[("host", "h")], false), // is_engineio
    (2, "GET", "/api/v1", "1.1", &[("host", "h")], true), // is_api
    (2, "GET", "/Api", "1.1", &[("host", "h")], true), // is_api
    (2, "GET", "/apx", "1.1", &[("host", "h")], false), // is_api
    (3, "GET", "/a.png", "1.1", &[("host", "h")], true), // is_img
    (3, "GET", "/a.JPG", "1.1", &[("host", "h")], true), // is_img
    (3, "GET", "/a.gif", "1.1", &[("host", "h")], true), // is_img
    (3, "GET", "/a.GIF", "1.1", &[("host", "h")], false), // is_img
    (3, "GET", "/a.png?x", "1.1", &[("host", "h")], true), // is_img
    (4, "POST", "/api/x", "1.1", &[("host", "h")], true), // is_api is_post
    (4, "GET", "/api/x", "1.1", &[("host", "h")], false), // is_api is_post
    (4, "POST", "/x", "1.1", &[("host", "h")], false), // is_api is_post
    (5, "POST", "/x", "1.1", &[("host", "h")], true), // is_img || is_post
    (5, "GET", "/a.jpg", "1.1", &[("host", "h")], true), // is_img || is_post
    (5, "GET", "/x", "1.1", &[("host", "h")], false), // is_img || is_post
    (6, "GET", "/api", "1.1", &[("host", "h")], true), // is_img or is_api
    (6, "GET", "/x", "1.1", &[("host", "h")], false), // is_img or is_api
    (7, "GET", "/", "1.1", &[("host", "h")], false), // !local
    (8, "GET", "/", "1.1", &[("host", "h")], true), // local !is_api
    (8, "GET", "/api", "1.1", &[("host", "h")], false), // local !is_api
    (9, "GET", "/x/admin/y", "1.1", &[("host", "h")], true), // { path_sub -i ADMIN }
    (9, "GET", "/x/adm/y", "1.1", &[("host", "h")], false), // { path_sub -i ADMIN }
    (10, "GET", "/api/v2/u", "1.1", &[("host", "h")], true), // { path_reg ^/api/v[0-9]+/ }
    (10, "GET", "/api/vx/u", "1.1", &[("host", "h")], false), // { path_reg ^/api/v[0-9]+/ }
    (11, "GET", "/static/images/a.png", "1.1", &[("host", "h")], true), // { path_dir images }
    (11, "GET", "/images", "1.1", &[("host", "h")], true), // { path_dir images }
    (11, "GET", "/myimages/a", "1.1", &[("host", "h")], false), // { path_dir images }
    (11, "GET", "/a/images?x", "1.1", &[("host", "h")], true), // { path_dir images }
    (12, "GET", "/images/", "1.1", &[("host", "h")], true), // { path_dir /images/ }
    (12, "GET", "/x/images", "1.1", &[("host", "h")], true), // { path_dir /images/ }
    (13, "GET", "/", "1.1", &[("host", "www.example.com")], true), // { hdr_dom(host) -i example.com }
    (13, "GET", "/", "1.1", &[("host", "Example.COM:8080")], true), // { hdr_dom(host) -i example.com }
    (13, "GET", "/", "1.1", &[("host", "ample.com")], false), // { hdr_dom(host) -i example.com }
    (13, "GET", "/", "1.1", &[("host", "www.example.com.evil")], true), // { hdr_dom(host) -i example.com }
    (13, "GET", "/", "1.1", &[("host", "example.community")], false), // { hdr_dom(host) -i example.com }
    (14, "GET", "/", "1.1", &[("host", "WWW.EXAMPLE.COM")], true), // { hdr(host) -i www.example.com }
    (14, "GET", "/", "1.1", &[("host", "www.example.com:80")], false), // { hdr(host) -i www.example.com }
    (15, "GET", "/", "1.1", &[("host", "h"), ("x-a", "one, two")], true), // { hdr_beg(x-a) two }
    (15, "GET", "/", "1.1", &[("host", "h"), ("x-a", "one"), ("x-a", "two")], true), // { hdr_beg(x-a) two }
    (15, "GET", "/", "1.1", &[("host", "h"), ("x-a", "one")], false), // { hdr_beg(x-a) two }
    (16, "GET", "/", "1.1", &[("host", "h"), ("x-a", "one, two")], true), // { hdr(x-a,2) two }
    (16, "GET", "/", "1.1", &[("host", "h"), ("x-a", "one"), ("x-a", "two")], true), // { hdr(x-a,2) two }
    (16, "GET", "/", "1.1", &[("host", "h"), ("x-a", "two"), ("x-a", "one")], false), // { hdr(x-a,2) two }
    (17, "GET", "/", "1.1", &[("host", "h"), ("x-a", "two, one")], true), // { hdr(x-a,-1) one }
    (17, "GET", "/", "1.1", &[("host", "h"), ("x-a", "one"), ("x-a", "two")], false), // { hdr(x-a,-1) one }
    (18, "GET", "/", "1.1", &[("host", "h"), ("x-a", "one,two")], true), // { req.fhdr(x-a) -m str one,two }
    (18, "GET", "/", "1.1", &[("host", "h"), ("x-a", "one"), ("x-a", "two")], false), // { req.fhdr(x-a) -m str one,two }
    (19, "GET", "/", "1.1", &[("host", "h"), ("x-a", "one, two")], true), // { hdr_cnt(x-a) gt 1 }
    (19, "GET", "/", "1.1", &[("host", "h"), ("x-a", "one")], false), // { hdr_cnt(x-a) gt 1 }
    (19, "GET", "/", "1.1", &[("host", "h")], false), // { hdr_cnt(x-a) gt 1 }
    (20, "GET", "/", "1.1", &[("host", "h"), ("user-agent", "curl/7.88")], true), // { hdr_sub(user-agent) -i CURL }
    (20, "GET", "/", "1.1", &[("host", "h"), ("user-agent", "wget")], false), // { hdr_sub(user-agent) -i CURL }
    (21, "GET", "/", "1.1", &[("host", "h")], false), // { src 10.0.0.0/8 }
    (22, "GET", "/", "1.1", &[("host", "h")], true), // { src 127.0.0.1 }
    (23, "GET", "/?sid=abc", "1.1", &[("host", "h")], true), // { url_param(sid) abc }
    (23, "GET", "/?sid", "1.1", &[("host", "h")], false), // { url_param(sid) abc }
    (23, "GET", "/?SID=abc", "1.1", &[("host", "h")], false), // { url_param(sid) abc }
    (23, "GET", "/?x=1&sid=abc", "1.1", &[("host", "h")], true), // { url_param(sid) abc }
    (23, "GET", "/?sid=abcd", "1.1", &[("host", "h")], false), // { url_param(sid) abc }
    (24, "GET", "/?sid=abc&sid=def", "1.1", &[("host", "h")], true), // { url_param(sid) def }
    (25, "GET", "/?sid", "1.1", &[("host", "h")], false), // { url_param(sid) -m found }
    (25, "GET", "/?sid=", "1.1", &[("host", "h")], true), // { url_param(sid) -m found }
    (25, "GET", "/?a=1", "1.1", &[("host", "h")], false), // { url_param(sid) -m found }
    (26, "GET", "/", "1.1", &[("host", "h"), ("cookie", "a=1; SRVNAME=S1")], true), // { req.cook(SRVNAME) S1 }
    (26, "GET", "/", "1.1", &[("host", "h"), ("cookie", "SRVNAME=S2; SRVNAME=S1")], true), // { req.cook(SRVNAME) S1 }
    (26, "GET", "/", "1.1", &[("host", "h"), ("cookie", "x=1"), ("cookie", "SRVNAME=S1")], true), // { req.cook(SRVNAME) S1 }
    (26, "GET", "/", "1.1", &[("host", "h"), ("cookie", "srvname=S1")], false), // { req.cook(SRVNAME) S1 }
    (27, "GET", "/", "1.1", &[("host", "h")], false), // { method -i get }
    (27, "POST", "/", "1.1", &[("host", "h")], false), // { method -i get }
    (28, "GET", "/", "1.1", &[("host", "h")], false), // { method get }
    (29, "HEAD", "/", "1.1", &[("host", "h")], true), // METH_GET
    (29, "GET", "/", "1.1", &[("host", "h")], true), // METH_GET
    (29, "POST", "/", "1.1", &[("host", "h")], false), // METH_GET
    (30, "GET", "/x?a=1&b=2", "1.1", &[("host", "h")], true), // { query -m sub b=2 }
    (30, "GET", "/x", "1.1", &[("host", "h")], false), // { query -m sub b=2 }
    (31, "GET", "/x", "1.1", &[("host", "h")], false), // { query -m found }
    (31, "GET", "/x?", "1.1", &[("host", "h")], true), // { query -m found }
    (31, "GET", "/x?a", "1.1", &[("host", "h")], true), // { query -m found }
    (32, "GET", "/x?y", "1.1", &[("host", "h")], true), // { url_beg /x? }
    (32, "GET", "/x", "1.1", &[("host", "h")], false), // { url_beg /x? }
    (33, "GET", "/", "1.1", &[("host", "h")], true), // { dst_port 80:30000 }
    (34, "GET", "/", "1.1", &[("host", "h")], false), // { dst_port 80 }
    (35, "GET", "/", "1.0", &[("host", "h")], true), // { req.ver 1.0 }
    (35, "GET", "/", "1.1", &[("host", "h")], false), // { req.ver 1.0 }
    (36, "GET", "/", "1.0", &[("host", "h")], false), // HTTP_1.1
    (36, "GET", "/", "1.1", &[("host", "h")], true), // HTTP_1.1
    (37, "GET", "/ab", "1.1", &[("host", "h")], true), // { path -m len 3 }
    (37, "GET", "/abc", "1.1", &[("host", "h")], false), // { path -m len 3 }
    (38, "GET", "/", "1.1", &[("host", "abcdef")], true), // { hdr_len(host) gt 5 }
    (38, "GET", "/", "1.1", &[("host", "abc")], false), // { hdr_len(host) gt 5 }
    (39, "GET", "/", "1.1", &[("host", "h"), ("x-forwarded-for", "192.168.1.5, 10.0.0.1")], true), // { hdr_ip(x-forwarded-for) 192.168.0.0/16 }
    (39, "GET", "/", "1.1", &[("host", "h"), ("x-forwarded-for", "10.0.0.1, 192.168.1.5")], true), // { hdr_ip(x-forwarded-for) 192.168.0.0/16 }
    (39, "GET", "/", "1.1", &[("host", "h"), ("x-forwarded-for", "10.0.0.1")], false), // { hdr_ip(x-forwarded-for) 192.168.0.0/16 }
    (40, "GET", "/", "1.1", &[("host", "WWW.x.com")], true), // { hdr_reg(host) -i ^www\. }
    (40, "GET", "/", "1.1", &[("host", "x.www.com")], false), // { hdr_reg(host) -i ^www\. }
    (41, "GET", "/", "1.1", &[("host", "h"), ("x-q", "\"a,b\", c")], false), // { hdr(x-q) "a,b" }
    (41, "GET", "/", "1.1", &[("host", "h"), ("x-q", "a,b")], false), // { hdr(x-q) "a,b" }
    (42, "POST", "/", "1.1", &[("host", "h"), ("content-length", "3")], true), // { hdr_val(content-length) gt 0 }
    (42, "GET", "/", "1.1", &[("host", "h")], false), // { hdr_val(content-length) gt 0 }
    (43, "GET", "/", "1.1", &[("host", "h"), ("x-e", "a.com")], true), // { hdr_end(x-e) -i .COM }
    (43, "GET", "/", "1.1", &[("host", "h"), ("x-e", "a.org")], false), // { hdr_end(x-e) -i .COM }
    (44, "GET", "/", "1.1", &[("host", "h")], true), // LOCALHOST
    (45, "GET", "/", "1.1", &[("host", "h")], true), // TRUE
    (46, "GET", "/", "1.1", &[("host", "h")], false), // FALSE
    (47, "GET", "/", "1.1", &[("host", "h"), ("x-tenant", "acme")], true), // tenant
    (47, "GET", "/", "1.1", &[("host", "h"), ("x-tenant", "ACME")], false), // tenant
    (47, "GET", "/", "1.1", &[("host", "h"), ("x-tenant", "x, acme")], true), // tenant
    (48, "GET", "/", "1.1", &[("host", "h")], true), // { path / } || { path_beg /z } !is_post
    (48, "GET", "/z", "1.1", &[("host", "h")], true), // { path / } || { path_beg /z } !is_post
    (48, "POST", "/z", "1.1", &[("host", "h")], false), // { path / } || { path_beg /z } !is_post
    (48, "GET", "/y", "1.1", &[("host", "h")], false), // { path / } || { path_beg /z } !is_post
    (49, "GET", "/", "1.1", &[("host", "")], true), // { hdr(host) -m found } { hdr(host) -m len 0 }
    (49, "GET", "/", "1.1", &[("host", "a")], false), // { hdr(host) -m found } { hdr(host) -m len 0 }
    (50, "GET", "/b/x.js", "1.1", &[("host", "h")], true), // { path_beg /a /b } { path_end .js }
    (50, "GET", "/c/x.js", "1.1", &[("host", "h")], false), // { path_beg /a /b } { path_end .js }
    (51, "GET", "/", "1.1", &[("host", "a.b.com")], true), // { hdr_dom(host) com }
    (51, "GET", "/", "1.1", &[("host", "a.b.co")], false), // { hdr_dom(host) com }
    (52, "GET", "/a/b/c/d", "1.1", &[("host", "h")], true), // { path_dir b/c }
    (52, "GET", "/a/bb/c/d", "1.1", &[("host", "h")], false), // { path_dir b/c }
    (53, "GET", "/q", "1.1", &[("host", "h")], true), // { path_beg -m beg /q }
    (54, "GET", "/api", "1.1", &[("host", "h")], false), // !is_api
    (54, "GET", "/x", "1.1", &[("host", "h")], true), // !is_api
];

#[test]
fn acl_cases_match_haproxy() {
    let outcome = parse(
        &[Source {
            name: "acl.cfg",
            text: CONFIG,
        }],
        &|_| None,
    );
    let config = outcome.config.expect("configuration parses");
    let fe = config.frontends.iter().find(|f| f.name == "acl").unwrap();
    let router = Router::build(fe).unwrap();
    let mut failures = Vec::new();
    for (n, method, uri, version, headers, yes) in CASES {
        let n_str = n.to_string();
        let mut all: Vec<(&str, &str)> = vec![("x-case", n_str.as_str())];
        all.extend_from_slice(headers);
        let mut r = Req::new(method, uri, &all);
        r.parts.version = match *version {
            "1.0" => http::Version::HTTP_10,
            _ => http::Version::HTTP_11,
        };
        r.dst = "127.0.0.1:25000".parse().unwrap();
        let got = router
            .route(&r.info())
            .map(|b| config.backends[b].name.as_str());
        let want = if *yes { "yes" } else { "no" };
        if got != Some(want) {
            failures.push(format!(
                "case {n} {method} {uri} {headers:?}: got {got:?}, HAProxy {want}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} divergences:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
