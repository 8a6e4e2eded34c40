//! Cookie persistence test vectors, most of them observed on HAProxy 2.6.12
//! (behaviour reference §0.4, §0.5, §2.2).

use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use switchyard_config::{CookieConfig, CookieMode};

use super::*;
use crate::backend::balance::testutil::servers_with;

/// `(now + 3) >> 2` encodes as `awggo` at this instant.
const AWGGO: u64 = 448_923_688 * 4 - 3;
/// ... and as `awgg5` at this one.
const AWGG5: u64 = 448_923_705 * 4 - 3;

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

fn now() -> SystemTime {
    at(AWGGO)
}

fn cfg(mode: CookieMode) -> CookieConfig {
    CookieConfig {
        name: "SRVNAME".into(),
        mode,
        ..CookieConfig::default()
    }
}

fn two_servers() -> Vec<Arc<ServerState>> {
    servers_with(&[1, 1], |i, c| c.cookie = Some(format!("S{}", i + 1)))
}

fn req(cookies: &[&'static str]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for c in cookies {
        h.append(COOKIE, HeaderValue::from_static(c));
    }
    h
}

fn set_cookies(h: &HeaderMap) -> Vec<String> {
    h.get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

fn cookie_headers(h: &HeaderMap) -> Vec<String> {
    h.get_all(COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

/// Runs lookup + response for a GET served by `served` and returns the response headers.
fn respond(
    c: &CookieConfig,
    request: &HeaderMap,
    served: &ServerState,
    resp: HeaderMap,
    when: SystemTime,
) -> (RequestCookie, ResponseCookie, HeaderMap) {
    respond_with(c, request, served, resp, when, &Method::GET, StatusCode::OK)
}

fn respond_with(
    c: &CookieConfig,
    request: &HeaderMap,
    served: &ServerState,
    mut resp: HeaderMap,
    when: SystemTime,
    method: &Method,
    status: StatusCode,
) -> (RequestCookie, ResponseCookie, HeaderMap) {
    let s = two_servers();
    let verdict = lookup(c, request, &s, when);
    let flag = apply_response(c, verdict, method, request, served, status, &mut resp, when);
    (verdict, flag, resp)
}

// === parser ===

fn pairs(v: &str) -> Vec<(String, String, bool)> {
    parse_cookie_header(v.as_bytes())
        .map(|p| {
            (
                String::from_utf8_lossy(p.name).into_owned(),
                String::from_utf8_lossy(p.value).into_owned(),
                p.has_equal,
            )
        })
        .collect()
}

fn p(n: &str, v: &str, eq: bool) -> (String, String, bool) {
    (n.into(), v.into(), eq)
}

#[test]
fn parser_shapes() {
    assert_eq!(pairs("a=1"), [p("a", "1", true)]);
    assert_eq!(
        pairs("  a = 1 ;b=2;  c  =3  "),
        [p("a", "1", true), p("b", "2", true), p("c", "3", true)]
    );
    assert_eq!(
        pairs("a,b; b"),
        [p("a", "", false), p("b", "", false), p("b", "", false)]
    );
    assert_eq!(
        pairs("$Version=1; SRVNAME=S1; $Path=/"),
        [
            p("$Version", "1", true),
            p("SRVNAME", "S1", true),
            p("$Path", "/", true)
        ]
    );
    assert_eq!(
        pairs(r#"q="a;b,\"c"; x=1"#),
        [p("q", r#""a;b,\"c""#, true), p("x", "1", true)]
    );
    assert_eq!(pairs("a=1,b=2"), [p("a", "1", true), p("b", "2", true)]);
    assert_eq!(pairs("a=1;"), [p("a", "1", true), p("", "", false)]);
    assert_eq!(pairs(""), []);
    assert_eq!(pairs("x=a=b"), [p("x", "a=b", true)]);
}

#[test]
fn parser_offsets_cover_the_input() {
    let v = "a=1; SRVNAME = S1 ,b";
    let ps: Vec<_> = parse_cookie_header(v.as_bytes()).collect();
    assert_eq!(&v[ps[1].start..ps[1].end], "SRVNAME = S1 ");
    assert_eq!(&v[ps[1].value_start..ps[1].value_start + 2], "S1");
}

// === request side ===

#[test]
fn lookup_verdicts() {
    let s = two_servers();
    let c = cfg(CookieMode::Insert);
    let l = |h: &HeaderMap| lookup(&c, h, &s, now());
    assert_eq!(l(&req(&[])), RequestCookie::None);
    assert_eq!(l(&req(&["other=1"])), RequestCookie::None);
    assert_eq!(l(&req(&["SRVNAME=S2"])), RequestCookie::Valid(1));
    assert_eq!(l(&req(&["SRVNAME=S1; other=1"])), RequestCookie::Valid(0));
    assert_eq!(
        l(&req(&["a=1; SRVNAME=BOGUS; b=2"])),
        RequestCookie::Invalid
    );
    assert_eq!(l(&req(&["SRVNAME="])), RequestCookie::Invalid);
    assert_eq!(
        l(&req(&["srvname=S1"])),
        RequestCookie::None,
        "names are case-sensitive"
    );
    assert_eq!(l(&req(&["SRVNAMEX=S1"])), RequestCookie::None);
    // First occurrence naming a server wins, across headers too.
    assert_eq!(
        l(&req(&["SRVNAME=S1; SRVNAME=S2"])),
        RequestCookie::Valid(0)
    );
    assert_eq!(
        l(&req(&["SRVNAME=BAD; SRVNAME=S2"])),
        RequestCookie::Valid(1)
    );
    assert_eq!(l(&req(&["a=1", "SRVNAME=S2"])), RequestCookie::Valid(1));
    assert_eq!(
        l(&req(&["$Version=1; SRVNAME = S2 ; $Path=/"])),
        RequestCookie::Valid(1)
    );
    // Dates are ignored for server selection.
    assert_eq!(
        l(&req(&["SRVNAME=S2|awggo|awggo"])),
        RequestCookie::Valid(1)
    );
}

#[test]
fn down_maint_and_drain() {
    let s = two_servers();
    let c = cfg(CookieMode::Insert);
    let h = req(&["SRVNAME=S2"]);
    s[1].up.store(false, Ordering::Release);
    assert_eq!(lookup(&c, &h, &s, now()), RequestCookie::Down(1));
    s[1].up.store(true, Ordering::Release);
    s[1].maint.store(true, Ordering::Release);
    assert_eq!(lookup(&c, &h, &s, now()), RequestCookie::Down(1));
    s[1].maint.store(false, Ordering::Release);
    s[1].drain.store(true, Ordering::Release);
    s[1].weight.store(0, Ordering::Relaxed);
    assert_eq!(lookup(&c, &h, &s, now()), RequestCookie::Valid(1));
    // A down server then a valid one: the valid one is used.
    s[1].up.store(false, Ordering::Release);
    let h = req(&["SRVNAME=S2; SRVNAME=S1"]);
    assert_eq!(lookup(&c, &h, &s, now()), RequestCookie::Valid(0));
}

#[test]
fn shared_cookie_value_picks_first_running_server() {
    let s = servers_with(&[1, 1], |_, c| c.cookie = Some("X".into()));
    let c = cfg(CookieMode::Insert);
    s[0].up.store(false, Ordering::Release);
    assert_eq!(
        lookup(&c, &req(&["SRVNAME=X"]), &s, now()),
        RequestCookie::Valid(1)
    );
}

#[test]
fn prepare_request_keeps_cookie_without_indirect() {
    let mut h = req(&["a=1; SRVNAME=BOGUS; b=2"]);
    prepare_request(&cfg(CookieMode::Insert), &mut h);
    assert_eq!(cookie_headers(&h), ["a=1; SRVNAME=BOGUS; b=2"]);
}

#[test]
fn prepare_request_indirect_strips_our_cookie() {
    let mut c = cfg(CookieMode::Insert);
    c.indirect = true;
    let run = |cookies: &[&'static str]| {
        let mut h = req(cookies);
        h.insert("x-other", HeaderValue::from_static("1"));
        prepare_request(&c, &mut h);
        assert_eq!(h.get("x-other").unwrap(), "1");
        cookie_headers(&h)
    };
    assert_eq!(run(&["a=1; SRVNAME=S1; b=2"]), ["a=1; b=2"]);
    assert!(run(&["SRVNAME=S1"]).is_empty());
    assert_eq!(run(&["SRVNAME=S1; b=2"]), ["b=2"]);
    assert_eq!(run(&["a=1; SRVNAME=S1"]), ["a=1"]);
    assert_eq!(run(&["a=1,SRVNAME=S1,b=2"]), ["a=1, b=2"]);
    assert_eq!(run(&["SRVNAME=S1; $Path=/; a=1"]), ["a=1"]);
    assert_eq!(run(&["x=1", "SRVNAME=S1", "y=2"]), ["x=1", "y=2"]);
    assert_eq!(run(&["SRVNAME=S1; SRVNAME=S2; k=v"]), ["k=v"]);
}

#[test]
fn prepare_request_prefix_strips_server_part() {
    let c = cfg(CookieMode::Prefix);
    let mut h = req(&["SRVNAME=S2~fromserver"]);
    let s = two_servers();
    assert_eq!(lookup(&c, &h, &s, now()), RequestCookie::Valid(1));
    prepare_request(&c, &mut h);
    assert_eq!(cookie_headers(&h), ["SRVNAME=fromserver"]);
    let mut h = req(&["a=1; SRVNAME=ZZ~v; b=2", "SRVNAME=plain"]);
    prepare_request(&c, &mut h);
    assert_eq!(cookie_headers(&h), ["a=1; SRVNAME=v; b=2", "SRVNAME=plain"]);
}

// === response side: byte-exact Set-Cookie ===

#[test]
fn insert_without_cookie() {
    let s = two_servers();
    let (v, f, resp) = respond(
        &cfg(CookieMode::Insert),
        &req(&[]),
        &s[1],
        HeaderMap::new(),
        now(),
    );
    assert_eq!(v, RequestCookie::None);
    assert_eq!(f, ResponseCookie::Inserted);
    assert_eq!(set_cookies(&resp), ["SRVNAME=S2; path=/"]);
    assert!(resp.get(CACHE_CONTROL).is_none());
}

#[test]
fn valid_cookie_gets_no_set_cookie() {
    let s = two_servers();
    let (_, f, resp) = respond(
        &cfg(CookieMode::Insert),
        &req(&["SRVNAME=S2"]),
        &s[1],
        HeaderMap::new(),
        now(),
    );
    assert_eq!(f, ResponseCookie::None);
    assert!(resp.is_empty());
}

#[test]
fn bogus_cookie_is_replaced() {
    let s = two_servers();
    let (v, _, resp) = respond(
        &cfg(CookieMode::Insert),
        &req(&["a=1; SRVNAME=BOGUS; b=2"]),
        &s[1],
        HeaderMap::new(),
        now(),
    );
    assert_eq!(v, RequestCookie::Invalid);
    assert_eq!(set_cookies(&resp), ["SRVNAME=S2; path=/"]);
}

#[test]
fn down_server_cookie_is_reissued() {
    let s = two_servers();
    s[1].up.store(false, Ordering::Release);
    let c = cfg(CookieMode::Insert);
    let h = req(&["SRVNAME=S2"]);
    let v = lookup(&c, &h, &s, now());
    assert_eq!(v, RequestCookie::Down(1));
    let mut resp = HeaderMap::new();
    let f = apply_response(
        &c,
        v,
        &Method::GET,
        &h,
        &s[0],
        StatusCode::OK,
        &mut resp,
        now(),
    );
    assert_eq!(f, ResponseCookie::Inserted);
    assert_eq!(set_cookies(&resp), ["SRVNAME=S1; path=/"]);
    // With option persist the caller used the down server: direct, nothing inserted.
    let mut resp = HeaderMap::new();
    let f = apply_response(
        &c,
        v,
        &Method::GET,
        &h,
        &s[1],
        StatusCode::OK,
        &mut resp,
        now(),
    );
    assert_eq!(f, ResponseCookie::None);
}

#[test]
fn all_options_layout() {
    let s = two_servers();
    let c = CookieConfig {
        indirect: true,
        nocache: true,
        httponly: true,
        secure: true,
        domains: vec![".example.com".into(), ".example.org".into()],
        attrs: vec!["SameSite=Lax".into(), "Path=/app".into()],
        ..cfg(CookieMode::Insert)
    };
    let (_, _, resp) = respond(&c, &req(&[]), &s[0], HeaderMap::new(), now());
    assert_eq!(
        set_cookies(&resp),
        ["SRVNAME=S1; path=/; domain=.example.com; domain=.example.org; HttpOnly; Secure; SameSite=Lax; Path=/app"]
    );
}

#[test]
fn server_without_cookie_value_gets_expired_cookie() {
    let s = servers_with(&[1], |_, _| {});
    let c = CookieConfig {
        httponly: true,
        ..cfg(CookieMode::Insert)
    };
    let mut resp = HeaderMap::new();
    apply_response(
        &c,
        RequestCookie::None,
        &Method::GET,
        &HeaderMap::new(),
        &s[0],
        StatusCode::OK,
        &mut resp,
        now(),
    );
    assert_eq!(
        set_cookies(&resp),
        ["SRVNAME=; Expires=Thu, 01-Jan-1970 00:00:01 GMT; path=/; HttpOnly"]
    );
}

fn dated() -> CookieConfig {
    CookieConfig {
        indirect: true,
        nocache: true,
        maxidle: Some(30 * 60),
        maxlife: Some(8 * 3600),
        ..cfg(CookieMode::Insert)
    }
}

#[test]
fn maxidle_maxlife_insert() {
    let s = two_servers();
    let (_, f, resp) = respond(&dated(), &req(&[]), &s[0], HeaderMap::new(), now());
    assert_eq!(f, ResponseCookie::Inserted);
    assert_eq!(set_cookies(&resp), ["SRVNAME=S1|awggo|awggo; path=/"]);
}

#[test]
fn maxidle_refreshes_cookie_without_dates() {
    let s = two_servers();
    let c = CookieConfig {
        maxlife: None,
        ..dated()
    };
    let (v, f, resp) = respond(
        &c,
        &req(&["SRVNAME=S1"]),
        &s[0],
        HeaderMap::new(),
        at(AWGG5),
    );
    assert_eq!(v, RequestCookie::Valid(0));
    assert_eq!(f, ResponseCookie::Updated);
    assert_eq!(set_cookies(&resp), ["SRVNAME=S1|awgg5; path=/"]);
    let (_, f, resp) = respond(
        &dated(),
        &req(&["SRVNAME=S1"]),
        &s[0],
        HeaderMap::new(),
        at(AWGG5),
    );
    assert_eq!(f, ResponseCookie::Updated);
    assert_eq!(set_cookies(&resp), ["SRVNAME=S1|awgg5|awgg5; path=/"]);
}

#[test]
fn dates_refresh_only_when_stale_and_first_date_is_kept() {
    let s = two_servers();
    // A cookie stamped at AWGGO is fresh (4 s resolution, rounded up) at AWGGO.
    let h = req(&["SRVNAME=S1|awggo|awggo"]);
    let (v, f, resp) = respond(&dated(), &h, &s[0], HeaderMap::new(), now());
    assert_eq!((v, f), (RequestCookie::Valid(0), ResponseCookie::None));
    assert!(resp.is_empty());
    // 68 s later: last date refreshed, first date kept.
    let (v, f, resp) = respond(&dated(), &h, &s[0], HeaderMap::new(), at(AWGG5));
    assert_eq!((v, f), (RequestCookie::Valid(0), ResponseCookie::Updated));
    assert_eq!(set_cookies(&resp), ["SRVNAME=S1|awgg5|awggo; path=/"]);
}

#[test]
fn too_old_cookie_is_reinserted() {
    let s = two_servers();
    let c = CookieConfig {
        maxidle: None,
        ..dated()
    };
    let (v, f, resp) = respond(
        &c,
        &req(&["SRVNAME=S1|AAAAB|AAAAB"]),
        &s[0],
        HeaderMap::new(),
        now(),
    );
    assert_eq!((v, f), (RequestCookie::Old, ResponseCookie::Inserted));
    assert_eq!(set_cookies(&resp), ["SRVNAME=S1|awggo|awggo; path=/"]);
}

#[test]
fn idle_cookie_expires_and_future_dates_are_rejected() {
    let s = two_servers();
    let c = CookieConfig {
        maxlife: None,
        ..dated()
    };
    // Last seen 68 s before "now" with maxidle 60 s.
    let c60 = CookieConfig {
        maxidle: Some(60),
        ..c.clone()
    };
    assert_eq!(
        lookup(&c60, &req(&["SRVNAME=S1|awggo"]), &s, at(AWGG5)),
        RequestCookie::Expired
    );
    assert_eq!(
        lookup(&c, &req(&["SRVNAME=S1|awggo"]), &s, at(AWGG5)),
        RequestCookie::Valid(0)
    );
    // More than a day in the future.
    assert_eq!(
        lookup(&c, &req(&["SRVNAME=S1|awgg5"]), &s, at(AWGGO - 2 * 86400)),
        RequestCookie::Expired
    );
    // Garbage dates are ignored.
    assert_eq!(
        lookup(&c60, &req(&["SRVNAME=S1|!!!!!"]), &s, now()),
        RequestCookie::Valid(0)
    );
}

#[test]
fn dates_removed_when_no_longer_configured() {
    let s = two_servers();
    let c = cfg(CookieMode::Insert);
    let (_, f, resp) = respond(
        &c,
        &req(&["SRVNAME=S1|awggo|awggo"]),
        &s[0],
        HeaderMap::new(),
        at(AWGG5),
    );
    assert_eq!(f, ResponseCookie::Updated);
    assert_eq!(set_cookies(&resp), ["SRVNAME=S1; path=/"]);
}

#[test]
fn server_cookie_removed_in_insert_mode() {
    let s = two_servers();
    let mut resp = HeaderMap::new();
    resp.append(SET_COOKIE, HeaderValue::from_static("other=1"));
    resp.append(
        SET_COOKIE,
        HeaderValue::from_static("SRVNAME=fromserver; path=/"),
    );
    resp.append(SET_COOKIE, HeaderValue::from_static("last=2"));
    let (_, f, resp) = respond(&cfg(CookieMode::Insert), &req(&[]), &s[1], resp, now());
    assert_eq!(f, ResponseCookie::Inserted);
    assert_eq!(
        set_cookies(&resp),
        ["other=1", "last=2", "SRVNAME=S2; path=/"]
    );
}

#[test]
fn preserve_keeps_server_cookie_and_inserts_nothing() {
    let s = two_servers();
    let c = CookieConfig {
        preserve: true,
        ..cfg(CookieMode::Insert)
    };
    let mut resp = HeaderMap::new();
    resp.append(
        SET_COOKIE,
        HeaderValue::from_static("SRVNAME=fromserver; path=/"),
    );
    let (_, f, resp) = respond(&c, &req(&[]), &s[1], resp, now());
    assert_eq!(f, ResponseCookie::Provided);
    assert_eq!(set_cookies(&resp), ["SRVNAME=fromserver; path=/"]);
    // Without a server cookie, preserve still inserts.
    let (_, f, _) = respond(&c, &req(&[]), &s[1], HeaderMap::new(), now());
    assert_eq!(f, ResponseCookie::Inserted);
}

#[test]
fn postonly() {
    let s = two_servers();
    let c = CookieConfig {
        postonly: true,
        ..cfg(CookieMode::Insert)
    };
    let run = |m: &Method| {
        respond_with(
            &c,
            &req(&[]),
            &s[1],
            HeaderMap::new(),
            now(),
            m,
            StatusCode::OK,
        )
        .2
    };
    assert!(run(&Method::GET).is_empty());
    assert_eq!(set_cookies(&run(&Method::POST)), ["SRVNAME=S2; path=/"]);
}

#[test]
fn rewrite_mode() {
    let s = two_servers();
    let c = cfg(CookieMode::Rewrite);
    let mut resp = HeaderMap::new();
    resp.append(
        SET_COOKIE,
        HeaderValue::from_static("SRVNAME=fromserver; path=/"),
    );
    let (_, f, resp) = respond(&c, &req(&[]), &s[0], resp, now());
    assert_eq!(f, ResponseCookie::Rewritten);
    assert_eq!(set_cookies(&resp), ["SRVNAME=S1; path=/"]);
    let (_, f, resp) = respond(&c, &req(&[]), &s[0], HeaderMap::new(), now());
    assert_eq!(f, ResponseCookie::None);
    assert!(resp.is_empty());
}

#[test]
fn prefix_mode() {
    let s = two_servers();
    let c = cfg(CookieMode::Prefix);
    let mut resp = HeaderMap::new();
    resp.append(
        SET_COOKIE,
        HeaderValue::from_static("SRVNAME=fromserver; path=/"),
    );
    let (_, f, resp) = respond(&c, &req(&[]), &s[0], resp, now());
    assert_eq!(f, ResponseCookie::Rewritten);
    assert_eq!(set_cookies(&resp), ["SRVNAME=S1~fromserver; path=/"]);
}

#[test]
fn passive_mode_only_reads() {
    let s = two_servers();
    let c = cfg(CookieMode::Passive);
    assert_eq!(
        lookup(&c, &req(&["SRVNAME=S2"]), &s, now()),
        RequestCookie::Valid(1)
    );
    let mut resp = HeaderMap::new();
    resp.append(SET_COOKIE, HeaderValue::from_static("SRVNAME=x"));
    let (_, f, resp) = respond(&c, &req(&[]), &s[0], resp, now());
    assert_eq!(f, ResponseCookie::Provided);
    assert_eq!(set_cookies(&resp), ["SRVNAME=x"]);
}

#[test]
fn indirect_deletes_server_cookie_on_direct_access() {
    let s = two_servers();
    let c = CookieConfig {
        indirect: true,
        ..cfg(CookieMode::Passive)
    };
    let mut resp = HeaderMap::new();
    resp.append(SET_COOKIE, HeaderValue::from_static("SRVNAME=x"));
    let (_, f, resp) = respond(&c, &req(&["SRVNAME=S1"]), &s[0], resp, now());
    assert_eq!(f, ResponseCookie::Deleted);
    assert!(set_cookies(&resp).is_empty());
}

#[test]
fn nocache_only_on_cacheable_responses() {
    let s = two_servers();
    let c = CookieConfig {
        nocache: true,
        ..cfg(CookieMode::Insert)
    };
    let run = |pairs: &[(&'static str, &'static str)], m: &Method, st: u16| {
        let mut resp = HeaderMap::new();
        for (k, v) in pairs {
            resp.append(*k, HeaderValue::from_static(v));
        }
        let st = StatusCode::from_u16(st).unwrap();
        let r = respond_with(&c, &req(&[]), &s[0], resp, now(), m, st).2;
        assert_eq!(set_cookies(&r), ["SRVNAME=S1; path=/"]);
        r.get_all(CACHE_CONTROL).iter().any(|v| v == "private")
    };
    let get = &Method::GET;
    assert!(!run(&[], get, 200), "no validator");
    assert!(run(
        &[("last-modified", "Wed, 21 Oct 2015 07:28:00 GMT")],
        get,
        200
    ));
    assert!(run(&[("etag", "\"x\"")], get, 200));
    assert!(run(
        &[("expires", "Wed, 21 Oct 2035 07:28:00 GMT")],
        get,
        200
    ));
    assert!(run(&[("cache-control", "max-age=60")], get, 200));
    assert!(!run(&[("cache-control", "public")], get, 200));
    assert!(!run(&[("cache-control", "max-age=0")], get, 200));
    // 2.6.12: s-maxage does not override max-age=0 (later versions differ).
    assert!(!run(
        &[("cache-control", "max-age=0, s-maxage=10")],
        get,
        200
    ));
    assert!(!run(
        &[("cache-control", "no-cache"), ("etag", "\"x\"")],
        get,
        200
    ));
    assert!(!run(&[("cache-control", "private, max-age=5")], get, 200));
    assert!(run(
        &[("cache-control", "private, public, max-age=5")],
        get,
        200
    ));
    assert!(!run(&[("pragma", "no-cache"), ("etag", "\"x\"")], get, 200));
    assert!(!run(&[("etag", "\"x\"")], &Method::POST, 200));
    // `public` re-enables caching whatever the method or status.
    assert!(run(
        &[("cache-control", "public, max-age=5")],
        &Method::POST,
        500
    ));
    assert!(!run(&[("etag", "\"x\"")], get, 302));
    assert!(run(&[("etag", "\"x\"")], get, 404));
}

#[test]
fn set_cookie_inserted_into_101() {
    let s = two_servers();
    let (_, f, resp) = respond_with(
        &cfg(CookieMode::Insert),
        &req(&[]),
        &s[0],
        HeaderMap::new(),
        now(),
        &Method::GET,
        StatusCode::SWITCHING_PROTOCOLS,
    );
    assert_eq!(f, ResponseCookie::Inserted);
    assert_eq!(set_cookies(&resp), ["SRVNAME=S1; path=/"]);
}

#[test]
fn base64_dates_roundtrip() {
    for v in [1u32, 63, 64, 448_923_688, (1 << 30) - 1] {
        let mut s = String::new();
        s30_to_b64(v, &mut s);
        assert_eq!(s.len(), 5);
        assert_eq!(b64_to_s30(s.as_bytes()), Some(v), "{s}");
    }
    let mut s = String::new();
    s30_to_b64(448_923_688, &mut s);
    assert_eq!(s, "awggo");
    assert_eq!(b64_to_s30(b"AAAAB"), Some(1));
    assert_eq!(b64_to_s30(b"AA-AB"), None);
}

/// `cookie SRVNAME insert indirect`, servers S1 (a) and S2 (b), balance
/// roundrobin: request `Cookie` headers, the server HAProxy 2.6.12 chose
/// when the cookie named one (else `-`), and the `Cookie` headers it forwarded.
#[test]
fn indirect_matches_haproxy() {
    let c = CookieConfig {
        indirect: true,
        ..cfg(CookieMode::Insert)
    };
    let s = two_servers();
    let cases: &[(&[&str], &str, &[&str])] = &[
        (&["a=1; SRVNAME=S1; b=2"], "a", &["a=1; b=2"]),
        (&["SRVNAME=S1"], "a", &[]),
        (&["SRVNAME=S2; b=2"], "b", &["b=2"]),
        (&["a=1; SRVNAME=S2"], "b", &["a=1"]),
        (&["a=1,SRVNAME=S1,b=2"], "a", &["a=1, b=2"]),
        (&["SRVNAME=S1; $Path=/; a=1"], "a", &["a=1"]),
        (&["x=1", "SRVNAME=S2", "y=2"], "b", &["x=1", "y=2"]),
        (&["SRVNAME=S1; SRVNAME=S2; k=v"], "a", &["k=v"]),
        (&["SRVNAME=BAD; SRVNAME=S2"], "b", &[]),
        (&["SRVNAME=S2; SRVNAME=S1"], "b", &[]),
        (&["a,b; b"], "-", &["a,b; b"]),
        (&["a,SRVNAME=S2; b"], "b", &["a; b"]),
        (
            &["q=\"a;SRVNAME=S1\"; SRVNAME=S2"],
            "b",
            &["q=\"a;SRVNAME=S1\""],
        ),
        (&["  SRVNAME = S2 ;x=1"], "b", &["x=1"]),
        (&["$Version=1; SRVNAME=S2; $Path=/"], "b", &[]),
        (&["SRVNAME="], "-", &[]),
        (&["SRVNAME=S1|abcde"], "a", &[]),
        (&["srvname=S2"], "-", &["srvname=S2"]),
        (&["a=1;SRVNAME=S2;b=2"], "b", &["a=1; b=2"]),
        (&["a=1 ; SRVNAME=S2 ; b=2"], "b", &["a=1; b=2"]),
        (&["SRVNAME=S2;"], "b", &[]),
        (&["SRVNAME=S2, x=1"], "b", &["x=1"]),
        (&["x; SRVNAME=S2"], "b", &["x"]),
        (&["a=1 ; SRVNAME=S2"], "b", &["a=1"]),
        (&["a=1 ;SRVNAME=S1; $Path=/"], "a", &["a=1"]),
        (&["a=1;SRVNAME=S1 ;$Path=/ ; b=1"], "a", &["a=1; b=1"]),
        (&["a=1\t;\tSRVNAME=S2\t,\tb=2"], "b", &["a=1, b=2"]),
    ];
    for (cookies, chosen, forwarded) in cases {
        let mut h = HeaderMap::new();
        for v in *cookies {
            h.append(COOKIE, HeaderValue::from_str(v).unwrap());
        }
        let want = match *chosen {
            "a" => RequestCookie::Valid(0),
            "b" => RequestCookie::Valid(1),
            _ => RequestCookie::Invalid,
        };
        let got = lookup(&c, &h, &s, now());
        if *chosen == "-" {
            assert!(
                !matches!(got, RequestCookie::Valid(_)),
                "{cookies:?}: {got:?}"
            );
        } else {
            assert_eq!(got, want, "{cookies:?}");
        }
        prepare_request(&c, &mut h);
        assert_eq!(cookie_headers(&h), *forwarded, "{cookies:?}");
    }
}

/// Blanks around `=` are removed whenever a cookie is configured (HAProxy 2.6.12).
#[test]
fn blanks_around_equal_are_removed() {
    let run = |c: &CookieConfig, v: &'static str| {
        let mut h = req(&[v]);
        prepare_request(c, &mut h);
        cookie_headers(&h)
    };
    let ins = cfg(CookieMode::Insert);
    assert_eq!(run(&ins, "a = 1; SRVNAME=S1"), ["a=1; SRVNAME=S1"]);
    assert_eq!(run(&ins, "a =1 ;  b= 2"), ["a=1 ;  b=2"]);
    assert_eq!(run(&ins, "a\t=1; b=\t2"), ["a=1; b=2"]);
    // Blanks around an `=` inside a quoted value are not around a pair's `=`.
    assert_eq!(run(&ins, r#"a="x = y"; b=2"#), [r#"a="x = y"; b=2"#]);
    let mut plain = req(&["a=1; SRVNAME=S1; b=x=y"]);
    assert!(prepare_request(&ins, &mut plain).is_none());
    assert_eq!(
        run(&ins, r#"a="x ; y" ; SRVNAME=S1"#),
        [r#"a="x ; y" ; SRVNAME=S1"#]
    );
    assert_eq!(
        run(&cfg(CookieMode::Prefix), "x = 1; SRVNAME = S1~v"),
        ["x=1; SRVNAME=v"]
    );
}

/// `cookie SRVNAME prefix`: what the server receives (HAProxy 2.6.12).
#[test]
fn prefix_matches_haproxy() {
    let c = cfg(CookieMode::Prefix);
    let cases: &[(&[&str], &[&str])] = &[
        (&["SRVNAME=S2~fromserver"], &["SRVNAME=fromserver"]),
        (
            &["a=1; SRVNAME=ZZ~v; b=2", "SRVNAME=plain"],
            &["a=1; SRVNAME=v; b=2", "SRVNAME=plain"],
        ),
        (&["SRVNAME=S1~x~y"], &["SRVNAME=x~y"]),
        (&["SRVNAME=~v"], &["SRVNAME=v"]),
        (&["SRVNAME=S2~"], &["SRVNAME="]),
    ];
    for (cookies, forwarded) in cases {
        let mut h = HeaderMap::new();
        for v in *cookies {
            h.append(COOKIE, HeaderValue::from_str(v).unwrap());
        }
        prepare_request(&c, &mut h);
        assert_eq!(cookie_headers(&h), *forwarded, "{cookies:?}");
    }
}

#[test]
fn stale_dates_without_maxidle_are_removed() {
    // HAProxy 2.6.12: "SRVNAME=S1|abcde" (a past date, no maxidle) is
    // re-emitted without dates.
    let s = two_servers();
    let (v, f, resp) = respond(
        &cfg(CookieMode::Insert),
        &req(&["SRVNAME=S1|abcde"]),
        &s[0],
        HeaderMap::new(),
        now(),
    );
    assert_eq!((v, f), (RequestCookie::Valid(0), ResponseCookie::Updated));
    assert_eq!(set_cookies(&resp), ["SRVNAME=S1; path=/"]);
}

/// `cookie SRVNAME insert nocache` on HAProxy 2.6.12: for each set of
/// response headers, status and method, whether `cache-control: private`
/// was added after the inserted cookie (one string per header set; statuses
/// in order, five methods each).
#[test]
fn nocache_matrix_matches_haproxy() {
    #[rustfmt::skip]
    let variants: &[&[(&str, &str)]] = &[
        &[],
        &[("last-modified", "Wed, 21 Oct 2015 07:28:00 GMT")],
        &[("etag", "\"x\"")],
        &[("expires", "Wed, 21 Oct 2035 07:28:00 GMT")],
        &[("cache-control", "max-age=60")],
        &[("cache-control", "public")],
        &[("cache-control", "max-age=0")],
        &[("cache-control", "max-age=0, s-maxage=10")],
        &[("cache-control", "no-cache"), ("etag", "\"x\"")],
        &[("cache-control", "private, max-age=5")],
        &[("cache-control", "private, public, max-age=5")],
        &[("pragma", "no-cache"), ("etag", "\"x\"")],
        &[("cache-control", "s-maxage=0"), ("etag", "\"x\"")],
        &[("cache-control", "no-store"), ("etag", "\"x\"")],
        &[("cache-control", "no-cache=\"set-cookie\""), ("etag", "\"x\"")],
        &[("cache-control", "Max-Age=30")],
        &[("cache-control", "max-age=30"), ("cache-control", "private")],
        &[("cache-control", "public, no-cache"), ("etag", "\"x\"")],
        &[("cache-control", "private=\"x\""), ("etag", "\"x\"")],
        &[("pragma", "No-Cache"), ("etag", "\"x\"")],
        &[("cache-control", "must-revalidate"), ("etag", "\"x\"")],
        &[("cache-control", "s-maxage=5")],
    ];
    let statuses = [
        200, 203, 204, 206, 300, 301, 302, 304, 404, 405, 410, 414, 500, 501, 503,
    ];
    let methods = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::OPTIONS,
        Method::PUT,
    ];
    #[rustfmt::skip]
    let expected: &[&str] = &[
        "000000000000000000000000000000000000000000000000000000000000000000000000000",
        "110101101011010110101101011010000000000011010110101101011010000001101000000",
        "110101101011010110101101011010000000000011010110101101011010000001101000000",
        "110101101011010110101101011010000000000011010110101101011010000001101000000",
        "110101101011010110101101011010000000000011010110101101011010000001101000000",
        "000000000000000000000000000000000000000000000000000000000000000000000000000",
        "000000000000000000000000000000000000000000000000000000000000000000000000000",
        "000000000000000000000000000000000000000000000000000000000000000000000000000",
        "000000000000000000000000000000000000000000000000000000000000000000000000000",
        "000000000000000000000000000000000000000000000000000000000000000000000000000",
        "111111111111111111111111111111111111111111111111111111111111111111111111111",
        "000000000000000000000000000000000000000000000000000000000000000000000000000",
        "000000000000000000000000000000000000000000000000000000000000000000000000000",
        "000000000000000000000000000000000000000000000000000000000000000000000000000",
        "110101101011010110101101011010000000000011010110101101011010000001101000000",
        "110101101011010110101101011010000000000011010110101101011010000001101000000",
        "000000000000000000000000000000000000000000000000000000000000000000000000000",
        "000000000000000000000000000000000000000000000000000000000000000000000000000",
        "110101101011010110101101011010000000000011010110101101011010000001101000000",
        "000000000000000000000000000000000000000000000000000000000000000000000000000",
        "110101101011010110101101011010000000000011010110101101011010000001101000000",
        "110101101011010110101101011010000000000011010110101101011010000001101000000",
    ];
    let s = two_servers();
    let c = CookieConfig {
        nocache: true,
        ..cfg(CookieMode::Insert)
    };
    let mut failures = Vec::new();
    for (vi, variant) in variants.iter().enumerate() {
        let mut bits = expected[vi].chars();
        for st in statuses {
            for m in &methods {
                let want = bits.next() == Some('1');
                let mut resp = HeaderMap::new();
                for (k, v) in *variant {
                    resp.append(*k, HeaderValue::from_static(v));
                }
                let before = resp
                    .get_all(CACHE_CONTROL)
                    .iter()
                    .filter(|v| *v == "private")
                    .count();
                let status = StatusCode::from_u16(st).unwrap();
                apply_response(
                    &c,
                    RequestCookie::None,
                    m,
                    &HeaderMap::new(),
                    &s[0],
                    status,
                    &mut resp,
                    now(),
                );
                let after = resp
                    .get_all(CACHE_CONTROL)
                    .iter()
                    .filter(|v| *v == "private")
                    .count();
                if (after > before) != want {
                    failures.push(format!(
                        "{variant:?} {st} {m}: HAProxy added private: {want}"
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} divergences:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Response-side cookies recorded on HAProxy 2.6.12, one `listen` per port:
/// 29001 `insert maxidle 30s`, 29002 `insert maxlife 60s`, 29003 `insert
/// indirect maxidle 30s maxlife 60s domain .ex.com httponly` (servers S1, S2,
/// balance roundrobin, the server emits no cookie); 29004 `insert preserve
/// indirect`, 29005 `rewrite`, 29006 passive `indirect`, 29007 `prefix`
/// (one server S1 emitting `Set-Cookie: SRVNAME = fromserver ; path=/`).
/// Each case: request cookies built from the request's second, and the
/// `Set-Cookie` headers HAProxy sent back.
#[test]
fn dates_and_server_cookies_match_haproxy() {
    #[rustfmt::skip]
    let cases: &[(u16, u64, &[&str], &[&str])] = &[
        (29001, 1795698657, &[], &["SRVNAME=S1|awgv5; path=/"]),
        (29001, 1795698657, &["SRVNAME=S1"], &["SRVNAME=S1|awgv5; path=/"]),
        (29001, 1795698657, &["SRVNAME=S1|awgv2"], &["SRVNAME=S1|awgv5; path=/"]),
        (29001, 1795698657, &["SRVNAME=S1|awgvv"], &["SRVNAME=S2|awgv5; path=/"]),
        (29001, 1795698657, &["SRVNAME=S1|awgv7"], &[]),
        (29001, 1795698657, &["SRVNAME=S1|awm2h"], &["SRVNAME=S1|awgv5; path=/"]),
        (29001, 1795698657, &["SRVNAME=S1|awgv2|awgvx"], &["SRVNAME=S1|awgv5; path=/"]),
        (29001, 1795698657, &["SRVNAME=S1|awgv2|awgvi"], &["SRVNAME=S1|awgv5; path=/"]),
        (29001, 1795698657, &["SRVNAME=S1|awgv7|awgvx"], &["SRVNAME=S1|awgv5; path=/"]),
        (29001, 1795698657, &["SRVNAME=S1|awgv2|awm2h"], &["SRVNAME=S1|awgv5; path=/"]),
        (29001, 1795698657, &["SRVNAME=BAD|awgv2|awgvx"], &["SRVNAME=S2|awgv5; path=/"]),
        (29001, 1795698657, &["SRVNAME=S1|zz"], &["SRVNAME=S1|awgv5; path=/"]),
        (29001, 1795698657, &["SRVNAME=S1||awgvx"], &["SRVNAME=S1|awgv5; path=/"]),
        (29001, 1795698657, &["SRVNAME=S2|awgvv", "SRVNAME=S1|awgv2"], &["SRVNAME=S1|awgv5; path=/"]),
        (29002, 1795698657, &[], &["SRVNAME=S1|awgv5|awgv5; path=/"]),
        (29002, 1795698657, &["SRVNAME=S1"], &["SRVNAME=S1|awgv5|awgv5; path=/"]),
        (29002, 1795698657, &["SRVNAME=S1|awgv2"], &["SRVNAME=S1|awgv5|awgv5; path=/"]),
        (29002, 1795698657, &["SRVNAME=S1|awgvv"], &["SRVNAME=S1|awgv5|awgv5; path=/"]),
        (29002, 1795698657, &["SRVNAME=S1|awgv7"], &["SRVNAME=S1|awgv5|awgv5; path=/"]),
        (29002, 1795698657, &["SRVNAME=S1|awm2h"], &["SRVNAME=S1|awgv5|awgv5; path=/"]),
        (29002, 1795698657, &["SRVNAME=S1|awgv2|awgvx"], &["SRVNAME=S1|awgv5|awgvx; path=/"]),
        (29002, 1795698657, &["SRVNAME=S1|awgv2|awgvi"], &["SRVNAME=S2|awgv5|awgv5; path=/"]),
        (29002, 1795698657, &["SRVNAME=S1|awgv7|awgvx"], &[]),
        (29002, 1795698657, &["SRVNAME=S1|awgv2|awm2h"], &["SRVNAME=S1|awgv5|awgv5; path=/"]),
        (29002, 1795698657, &["SRVNAME=BAD|awgv2|awgvx"], &["SRVNAME=S2|awgv5|awgvx; path=/"]),
        (29002, 1795698657, &["SRVNAME=S1|zz"], &["SRVNAME=S1|awgv5|awgv5; path=/"]),
        (29002, 1795698657, &["SRVNAME=S1||awgvx"], &[]),
        (29002, 1795698657, &["SRVNAME=S2|awgvv", "SRVNAME=S1|awgv2"], &["SRVNAME=S2|awgv5|awgv5; path=/"]),
        (29003, 1795698657, &[], &["SRVNAME=S1|awgv5|awgv5; path=/; domain=.ex.com; HttpOnly"]),
        (29003, 1795698657, &["SRVNAME=S1"], &["SRVNAME=S1|awgv5|awgv5; path=/; domain=.ex.com; HttpOnly"]),
        (29003, 1795698657, &["SRVNAME=S1|awgv2"], &["SRVNAME=S1|awgv5|awgv5; path=/; domain=.ex.com; HttpOnly"]),
        (29003, 1795698657, &["SRVNAME=S1|awgvv"], &["SRVNAME=S2|awgv5|awgv5; path=/; domain=.ex.com; HttpOnly"]),
        (29003, 1795698657, &["SRVNAME=S1|awgv7"], &["SRVNAME=S1|awgv5|awgv5; path=/; domain=.ex.com; HttpOnly"]),
        (29003, 1795698657, &["SRVNAME=S1|awm2h"], &["SRVNAME=S1|awgv5|awgv5; path=/; domain=.ex.com; HttpOnly"]),
        (29003, 1795698657, &["SRVNAME=S1|awgv2|awgvx"], &["SRVNAME=S1|awgv5|awgvx; path=/; domain=.ex.com; HttpOnly"]),
        (29003, 1795698657, &["SRVNAME=S1|awgv2|awgvi"], &["SRVNAME=S2|awgv5|awgv5; path=/; domain=.ex.com; HttpOnly"]),
        (29003, 1795698657, &["SRVNAME=S1|awgv7|awgvx"], &[]),
        (29003, 1795698657, &["SRVNAME=S1|awgv2|awm2h"], &["SRVNAME=S1|awgv5|awgv5; path=/; domain=.ex.com; HttpOnly"]),
        (29003, 1795698657, &["SRVNAME=BAD|awgv2|awgvx"], &["SRVNAME=S2|awgv5|awgvx; path=/; domain=.ex.com; HttpOnly"]),
        (29003, 1795698657, &["SRVNAME=S1|zz"], &["SRVNAME=S1|awgv5|awgv5; path=/; domain=.ex.com; HttpOnly"]),
        (29003, 1795698657, &["SRVNAME=S1||awgvx"], &["SRVNAME=S1|awgv5|awgvx; path=/; domain=.ex.com; HttpOnly"]),
        (29003, 1795698657, &["SRVNAME=S2|awgvv", "SRVNAME=S1|awgv2"], &["SRVNAME=S1|awgv5|awgv5; path=/; domain=.ex.com; HttpOnly"]),
        (29004, 1795698657, &[], &["SRVNAME=fromserver ; path=/"]),
        (29004, 1795698657, &["SRVNAME=S1"], &["SRVNAME=fromserver ; path=/"]),
        (29005, 1795698657, &[], &["SRVNAME=S1 ; path=/"]),
        (29005, 1795698657, &["SRVNAME=S1"], &["SRVNAME=S1 ; path=/"]),
        (29006, 1795698657, &[], &["SRVNAME=fromserver ; path=/"]),
        (29006, 1795698657, &["SRVNAME=S1"], &[]),
        (29007, 1795698657, &[], &["SRVNAME=S1~fromserver ; path=/"]),
        (29007, 1795698657, &["SRVNAME=S1"], &["SRVNAME=S1~fromserver ; path=/"]),
    ];
    let s = two_servers();
    for (port, t, cookies, want) in cases {
        let c = match port {
            29001 => CookieConfig {
                maxidle: Some(30),
                ..cfg(CookieMode::Insert)
            },
            29002 => CookieConfig {
                maxlife: Some(60),
                ..cfg(CookieMode::Insert)
            },
            29003 => CookieConfig {
                indirect: true,
                maxidle: Some(30),
                maxlife: Some(60),
                domains: vec![".ex.com".into()],
                httponly: true,
                ..cfg(CookieMode::Insert)
            },
            29004 => CookieConfig {
                preserve: true,
                indirect: true,
                ..cfg(CookieMode::Insert)
            },
            29005 => cfg(CookieMode::Rewrite),
            29006 => CookieConfig {
                indirect: true,
                ..cfg(CookieMode::Passive)
            },
            _ => cfg(CookieMode::Prefix),
        };
        let when = at(*t);
        let mut h = HeaderMap::new();
        for v in *cookies {
            h.append(COOKIE, HeaderValue::from_str(v).unwrap());
        }
        let verdict = lookup(&c, &h, &s, when);
        // The server HAProxy's balancer chose shows in the inserted value.
        let served = match (want.first(), verdict) {
            (Some(w), _) if w.starts_with("SRVNAME=S2") => 1,
            (Some(w), _) if w.starts_with("SRVNAME=S1") && *port < 29004 => 0,
            (_, RequestCookie::Valid(i)) => i,
            _ => 0,
        };
        if let RequestCookie::Valid(i) = verdict {
            assert_eq!(
                i, served,
                "port {port} {cookies:?}: HAProxy used another server"
            );
        }
        let mut resp = HeaderMap::new();
        if *port >= 29004 {
            resp.append(
                SET_COOKIE,
                HeaderValue::from_static("SRVNAME = fromserver ; path=/"),
            );
        }
        apply_response(
            &c,
            verdict,
            &Method::GET,
            &h,
            &s[served],
            StatusCode::OK,
            &mut resp,
            when,
        );
        assert_eq!(
            set_cookies(&resp),
            *want,
            "port {port} {cookies:?} ({verdict:?})"
        );
    }
}

/// With any cookie configured, every `Set-Cookie` loses the blanks around its
/// `=` (HAProxy 2.6.12, `insert preserve`); nothing changes without one.
#[test]
fn set_cookie_blanks_are_normalised() {
    let s = two_servers();
    let c = CookieConfig {
        preserve: true,
        ..cfg(CookieMode::Insert)
    };
    let mut resp = HeaderMap::new();
    for v in [
        "other = 1 ; path=/",
        "third= 3",
        "SRVNAME= v ; x",
        "noeq ; x",
    ] {
        resp.append(SET_COOKIE, HeaderValue::from_static(v));
    }
    let f = apply_response(
        &c,
        RequestCookie::None,
        &Method::GET,
        &HeaderMap::new(),
        &s[0],
        StatusCode::OK,
        &mut resp,
        now(),
    );
    assert_eq!(f, ResponseCookie::Provided);
    assert_eq!(
        set_cookies(&resp),
        ["other=1 ; path=/", "third=3", "SRVNAME=v ; x", "noeq ; x"]
    );
}

/// `option persist` on HAProxy 2.6.12 with `b` (S2) in maintenance.
#[test]
fn persist_stops_at_the_first_matching_server() {
    let s = two_servers();
    let c = cfg(CookieMode::Insert);
    s[1].maint.store(true, Ordering::Release);
    let h = req(&["SRVNAME=S2; SRVNAME=S1"]);
    assert_eq!(lookup_with(&c, &h, &s, now(), true), RequestCookie::Down(1));
    assert_eq!(
        lookup_with(&c, &h, &s, now(), false),
        RequestCookie::Valid(0)
    );
    assert_eq!(lookup(&c, &h, &s, now()), RequestCookie::Valid(0));
    let h = req(&["SRVNAME=S1; SRVNAME=S2"]);
    assert_eq!(
        lookup_with(&c, &h, &s, now(), true),
        RequestCookie::Valid(0)
    );
    // Served by the persisted server: direct, nothing inserted.
    let h = req(&["SRVNAME=S2"]);
    let v = lookup_with(&c, &h, &s, now(), true);
    assert_eq!(v, RequestCookie::Down(1));
    let mut resp = HeaderMap::new();
    let f = apply_response(
        &c,
        v,
        &Method::GET,
        &h,
        &s[1],
        StatusCode::OK,
        &mut resp,
        now(),
    );
    assert_eq!((f, resp.len()), (ResponseCookie::None, 0));
}

/// Header fields as plain lines whose map must never be asked for: the proxy's heads
/// build an `http::HeaderMap` only for rewrites, so the usual exchanges must not need one.
#[derive(Default)]
struct Lines(Vec<(HeaderName, Vec<u8>)>);

impl CookieFields for Lines {
    fn cookie_values(&self, which: CookieField) -> impl Iterator<Item = &[u8]> {
        let name = which.name();
        self.0
            .iter()
            .filter(move |(n, _)| *n == name)
            .map(|(_, v)| &v[..])
    }

    fn append_value(&mut self, name: HeaderName, value: HeaderValue) {
        self.0.push((name, value.as_bytes().to_vec()));
    }

    fn fields_map(&mut self) -> &mut HeaderMap {
        panic!("the usual exchange asked for a HeaderMap")
    }
}

#[test]
fn usual_exchanges_need_no_header_map() {
    let c = cfg(CookieMode::Insert);
    let s = two_servers();
    let get = Method::GET;
    // A client whose cookie names a running server, a server that sets other cookies.
    let mut request = Lines(vec![(COOKIE, b"a=1; SRVNAME=S2; b=2".to_vec())]);
    let verdict = lookup(&c, &request, &s, now());
    assert_eq!(verdict, RequestCookie::Valid(1));
    assert!(prepare_request(&c, &mut request).is_none());
    let mut response = Lines(vec![(SET_COOKIE, b"other=1; path=/".to_vec())]);
    let flag = apply_response(
        &c,
        verdict,
        &get,
        &request,
        &s[1],
        StatusCode::OK,
        &mut response,
        now(),
    );
    assert_eq!(flag, ResponseCookie::None);
    assert_eq!(response.0.len(), 1);
    // A first request: the cookie is appended as a line.
    let request = Lines::default();
    let verdict = lookup(&c, &request, &s, now());
    assert_eq!(verdict, RequestCookie::None);
    let mut response = Lines::default();
    let flag = apply_response(
        &c,
        verdict,
        &get,
        &request,
        &s[0],
        StatusCode::OK,
        &mut response,
        now(),
    );
    assert_eq!(flag, ResponseCookie::Inserted);
    assert_eq!(response.0, [(SET_COOKIE, b"SRVNAME=S1; path=/".to_vec())]);
}

#[test]
fn rewritten_request_cookies_are_returned_as_received() {
    let mut c = cfg(CookieMode::Insert);
    c.indirect = true;
    let mut h = req(&["a=1; SRVNAME=S1"]);
    let original = prepare_request(&c, &mut h).expect("rewritten");
    assert_eq!(cookie_headers(&h), ["a=1"]);
    assert_eq!(cookie_headers(&original), ["a=1; SRVNAME=S1"]);
}
