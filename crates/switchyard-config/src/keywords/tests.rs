//! Unit tests of the keyword handlers: each reads a small configuration and
//! checks the model field or the message the keyword produces.

use crate::model::*;
use crate::{parse, Diagnostic, Level, Outcome, Source};
use std::time::Duration;

const D: &str = "defaults\n    mode http\n    timeout connect 5s\n    timeout client 5s\n    timeout server 5s\n";

fn read(text: &str) -> Outcome {
    parse(
        &[Source {
            name: "t.cfg",
            text,
        }],
        &|n| (n == "ADDR").then(|| "10.0.0.9".to_string()),
    )
}

/// A `listen l` with the given lines after a bind; returns the config.
fn listen(lines: &str) -> Config {
    let out = read(&format!("{D}listen l\n    bind 127.0.0.1:3990\n{lines}\n"));
    let errs: Vec<String> = out
        .diagnostics
        .iter()
        .filter(|d| d.level == Level::Alert)
        .map(|d| d.render(0))
        .collect();
    out.config.unwrap_or_else(|| panic!("refused: {errs:?}"))
}

/// Like [`listen`], with text (a `global` section) before the defaults.
fn listen_in(before: &str, lines: &str) -> Config {
    let out = read(&format!(
        "{before}{D}listen l\n    bind 127.0.0.1:3990\n{lines}\n"
    ));
    assert!(!out.has_errors(), "{:?}", out.diagnostics);
    out.config.unwrap()
}

/// The first alert for a `listen l` with the given lines.
fn alert(lines: &str) -> Diagnostic {
    let out = read(&format!("{D}listen l\n    bind 127.0.0.1:3990\n{lines}\n"));
    out.diagnostics
        .into_iter()
        .find(|d| d.level == Level::Alert)
        .expect("an alert")
}

fn warnings(lines: &str) -> Vec<String> {
    let out = read(&format!("{D}listen l\n    bind 127.0.0.1:3990\n{lines}\n"));
    assert!(out.config.is_some(), "{:?}", out.diagnostics);
    out.diagnostics
        .into_iter()
        .filter(|d| d.level == Level::Warning)
        .map(|d| d.message)
        .collect()
}

#[test]
fn server_options_and_default_server() {
    let cfg = listen(
        "    default-server inter 3s fall 5 weight 10 maxconn 20\n    server a 127.0.0.1:4000 check rise 1 weight 0 backup cookie A id 7\n    server b [::1]:4001 disabled fastinter 500ms downinter 1m maxqueue 4 port 9000 addr 127.0.0.2\n    server c localhost",
    );
    let s = &cfg.backends[0].servers;
    assert_eq!(
        (s[0].inter, s[0].fastinter, s[0].downinter),
        (
            Duration::from_secs(3),
            Duration::from_secs(3),
            Duration::from_secs(3)
        )
    );
    assert_eq!(
        (s[0].rise, s[0].fall, s[0].weight, s[0].maxconn, s[0].id),
        (1, 5, 0, Some(20), 7)
    );
    assert!(s[0].check && s[0].backup && !s[0].disabled);
    assert_eq!(s[0].cookie.as_deref(), Some("A"));
    assert_eq!((s[1].host.as_str(), s[1].port), ("::1", Some(4001)));
    assert_eq!(
        (s[1].fastinter, s[1].downinter),
        (Duration::from_millis(500), Duration::from_secs(60))
    );
    assert!(s[1].disabled && !s[1].check);
    assert_eq!(
        (s[1].maxqueue, s[1].check_port, s[1].check_addr.as_deref()),
        (Some(4), Some(9000), Some("127.0.0.2"))
    );
    assert_eq!((s[1].weight, s[1].id), (10, 2));
    assert_eq!(
        (s[2].host.as_str(), s[2].port, s[2].id),
        ("localhost", None, 3)
    );
}

#[test]
fn server_errors() {
    assert_eq!(
        alert("    server s1 127.0.0.1:4000 weight 257").message,
        "'server l/s1' : weight of server s1 is not within 0 and 256 (257).."
    );
    assert_eq!(
        alert("    server s1 127.0.0.1:4000 fall 0").message,
        "'server l/s1' : 'fall' has to be > 0.."
    );
    assert_eq!(
        alert("    server s1 127.0.0.1:0").message,
        "'server l/s1' : invalid port '0'"
    );
    assert!(alert("    server s1 127.0.0.1:4000 inter 5x")
        .message
        .contains("unexpected character 'x' in 'inter'"));
    assert!(alert("    server s1 unix@/tmp/s")
        .message
        .contains("unix@ server addresses are not supported"));
    assert!(alert("    server s1 127.0.0.1:+1")
        .message
        .contains("relative port '+1'"));
    assert!(alert("    server s1 127.0.0.1:4000 ssl")
        .message
        .contains("'ssl' is not supported by switchyard"));
    assert!(alert("    server s1 127.0.0.1:4000 slowstart 10s")
        .message
        .contains("'slowstart' is not supported"));
    let a = alert("    server s1 127.0.0.1:4000 id 3\n    server s2 127.0.0.1:4001 id 3");
    assert!(a.message.contains("has the same ID (3)"), "{}", a.message);
    assert!(warnings("    server s1 127.0.0.1:4000 init-addr none")[0]
        .contains("'init-addr' is ignored"));
}

#[test]
fn bind_forms() {
    let cfg = listen("    bind :3991\n    bind *:3992-3994 name web maxconn 100\n    bind [::]:3995,ipv4@0.0.0.0:3996\n    bind \"${ADDR}:3997\"\n    bind $ADDR:3998 v4v6");
    let addrs: Vec<String> = cfg.frontends[0]
        .binds
        .iter()
        .flat_map(|b| b.addrs.iter().map(|a| a.to_string()))
        .collect();
    assert_eq!(
        addrs,
        [
            "127.0.0.1:3990",
            "0.0.0.0:3991",
            "0.0.0.0:3992",
            "0.0.0.0:3993",
            "0.0.0.0:3994",
            "[::]:3995",
            "0.0.0.0:3996",
            "10.0.0.9:3997",
            "10.0.0.9:3998"
        ]
    );
    let b = &cfg.frontends[0].binds[2];
    assert_eq!((b.name.as_deref(), b.maxconn), (Some("web"), Some(100)));
    assert!(alert("    bind unix@/tmp/x")
        .message
        .contains("unix@ listeners are not implemented"));
    assert!(alert("    bind fd@3").message.contains("fd@"));
    assert!(alert("    bind :3991 ssl crt /x.pem")
        .message
        .contains("'ssl' is not supported"));
    assert_eq!(
        alert("    bind :3999-3998").message,
        "'bind' : invalid port range '3999-3998'"
    );
    assert!(alert("    bind :3991 frob")
        .message
        .ends_with("unknown keyword 'frob'."));
}

#[test]
fn balance_algorithms() {
    let algo = |l: &str| {
        listen(&format!("    balance {l}")).backends[0]
            .balance
            .clone()
    };
    assert_eq!(algo("static-rr"), Balance::StaticRr);
    assert_eq!(algo("leastconn"), Balance::LeastConn);
    assert_eq!(algo("first"), Balance::First);
    assert_eq!(algo("source"), Balance::Source);
    assert_eq!(algo("random"), Balance::Random { draws: 2 });
    assert_eq!(algo("random(3)"), Balance::Random { draws: 3 });
    assert_eq!(
        algo("uri len 10 depth 2 whole path-only"),
        Balance::Uri {
            len: Some(10),
            depth: Some(2),
            whole: true,
            path_only: true
        }
    );
    assert_eq!(
        algo("url_param uid"),
        Balance::UrlParam { name: "uid".into() }
    );
    assert_eq!(
        algo("hdr(X-Tenant) use_domain_only"),
        Balance::Hdr {
            name: "X-Tenant".into(),
            use_domain_only: true
        }
    );
    assert!(alert("    balance rdp-cookie(x)")
        .message
        .contains("not supported by switchyard"));
    assert!(alert("    balance uri depth 0")
        .message
        .contains("'depth' expects a positive integer (got '0')"));
    assert!(alert("    balance hdr()")
        .message
        .contains("hdr requires an http header field name"));
}

#[test]
fn cookie_modes_and_options() {
    let c = listen("    cookie SRV insert indirect nocache postonly httponly secure domain .a.com domain .b.com attr SameSite=Lax maxidle 30m maxlife 8h")
        .backends[0]
        .cookie
        .clone()
        .unwrap();
    assert_eq!(
        (c.mode, c.indirect, c.nocache, c.postonly, c.httponly, c.secure),
        (CookieMode::Insert, true, true, true, true, true)
    );
    assert_eq!(c.domains, [".a.com", ".b.com"]);
    assert_eq!(c.attrs, ["SameSite=Lax"]);
    assert_eq!((c.maxidle, c.maxlife), (Some(1800), Some(28800)));
    assert_eq!(
        listen("    cookie S prefix").backends[0]
            .cookie
            .as_ref()
            .unwrap()
            .mode,
        CookieMode::Prefix
    );
    assert_eq!(
        listen("    cookie S rewrite").backends[0]
            .cookie
            .as_ref()
            .unwrap()
            .mode,
        CookieMode::Rewrite
    );
    assert_eq!(
        listen("    cookie S").backends[0]
            .cookie
            .as_ref()
            .unwrap()
            .mode,
        CookieMode::Passive
    );
    // Re-declaring resets every option.
    let c = listen("    cookie A insert nocache\n    cookie B insert").backends[0]
        .cookie
        .clone()
        .unwrap();
    assert_eq!((c.name.as_str(), c.nocache), ("B", false));
    assert!(alert("    cookie S rewrite indirect")
        .message
        .contains("'rewrite' and 'indirect' modes are incompatible"));
    // 2.6 accepts postonly outside insert mode and does nothing with it.
    assert!(warnings("    cookie S prefix postonly")[0]
        .contains("only makes sense with 'insert' mode: ignored"));
    assert!(alert("    cookie S insert dynamic")
        .message
        .contains("not supported by switchyard"));
}

#[test]
fn timeouts_and_inheritance() {
    let cfg = listen("    timeout http-request 2s\n    timeout http-keep-alive 500ms\n    timeout tunnel 1h\n    timeout queue 3s\n    timeout check 1s\n    timeout client-fin 1s\n    timeout server-fin 2s\n    timeout client 0");
    let (fe, be) = (&cfg.frontends[0].timeouts, &cfg.backends[0].timeouts);
    assert_eq!(fe.http_request, Some(Duration::from_secs(2)));
    assert_eq!(fe.http_keep_alive, Some(Duration::from_millis(500)));
    assert_eq!(fe.client, None, "timeout 0 means unset");
    assert_eq!(be.tunnel, Some(Duration::from_secs(3600)));
    assert_eq!(
        (be.queue, be.check),
        (Some(Duration::from_secs(3)), Some(Duration::from_secs(1)))
    );
    assert_eq!(
        (be.client_fin, be.server_fin),
        (Some(Duration::from_secs(1)), Some(Duration::from_secs(2)))
    );
    assert_eq!(
        be.connect,
        Some(Duration::from_secs(5)),
        "inherited from defaults"
    );
    // A new defaults section resets everything.
    let out = read(&format!(
        "{D}defaults\nbackend b\n    server s 127.0.0.1:1\n"
    ));
    let cfg = out.config.unwrap();
    assert_eq!(
        (cfg.backends[0].mode, cfg.backends[0].timeouts.connect),
        (Mode::Tcp, None)
    );
}

#[test]
fn options() {
    let be = |l: &str| listen(l).backends.remove(0);
    let ff = be("    option forwardfor except 127.0.0.0/8 header X-Real-IP if-none")
        .forwardfor
        .unwrap();
    assert_eq!(ff.header, "X-Real-IP");
    assert!(ff.if_none);
    assert_eq!(
        ff.except,
        Some(IpNet {
            addr: "127.0.0.0".parse().unwrap(),
            prefix: 8
        })
    );
    assert_eq!(
        be("    option http-keep-alive").conn_mode,
        Some(ConnMode::KeepAlive)
    );
    assert_eq!(
        be("    option httpclose\n    no option httpclose").conn_mode,
        None
    );
    assert_eq!(be("    option redispatch").redispatch, Some(-1));
    assert_eq!(be("    option redispatch 2").redispatch, Some(2));
    assert_eq!(
        be("    option redispatch\n    no option redispatch").redispatch,
        None
    );
    // 2.6.12 takes at most three arguments; a Host header comes with the
    // version in the pre-2.2 style.
    let chk = be(r"    option httpchk GET /health HTTP/1.1\r\nHost:\ www.example.com")
        .httpchk
        .unwrap();
    assert_eq!(
        (chk.method.as_str(), chk.uri.as_str(), chk.version.as_str()),
        ("GET", "/health", "HTTP/1.1")
    );
    assert_eq!(
        chk.headers,
        [("Host".to_string(), "www.example.com".to_string())]
    );
    assert!(alert("    option httpchk GET / HTTP/1.1 www.example.com")
        .message
        .contains("unexpected argument 'www.example.com'"));
    assert_eq!(be("    option httpchk /ping").httpchk.unwrap().uri, "/ping");
    assert_eq!(
        be("    option httpchk").httpchk.unwrap(),
        HttpCheck::default()
    );
    let b = be("    option allbackups\n    option persist\n    option log-health-checks\n    option http-pretend-keepalive");
    assert!(b.allbackups && b.persist && b.log_health_checks && b.pretend_keepalive);
    let cfg = listen("    option httplog clf\n    log stdout format raw local0");
    assert_eq!(cfg.frontends[0].log_format, Some(LogFormat::Clf));
    assert!(listen("    option dontlognull").frontends[0].dontlognull);
    assert!(warnings("    option dontlog-normal")[0]
        .contains("'option dontlog-normal' is ignored by switchyard"));
    assert!(alert("    option originalto")
        .message
        .contains("'option originalto' is not supported"));
    assert_eq!(alert("    option forwardfor foo").message, "'option forwardfor' only supports optional values 'except', 'header' and 'if-none' (got 'foo').");
}

#[test]
fn http_rules() {
    // normalize-uri is experimental in 2.6: refused unless exposed in global.
    let refused = alert("    http-request normalize-uri path-merge-slashes");
    assert!(refused
        .message
        .contains("must be allowed via a global 'expose-experimental-directives'"));
    let cfg = listen_in(
        "global\n    expose-experimental-directives\n",
        "    acl api path_beg /api\n    http-request deny deny_status 429 if api\n    http-request allow\n    http-request set-header X-A \"a b\"\n    http-request add-header X-B c\n    http-request del-header X-C\n    http-request redirect prefix https://x.example code 301\n    http-request normalize-uri path-merge-slashes\n    http-response set-header X-D d unless api\n    http-response del-header Server\n    redirect scheme https if !api",
    );
    let fe = &cfg.frontends[0];
    let acts: Vec<&HttpRequestAction> = fe.http_request_rules.iter().map(|r| &r.action).collect();
    assert_eq!(acts[0], &HttpRequestAction::Deny { status: 429 });
    assert_eq!(acts[1], &HttpRequestAction::Allow);
    assert_eq!(
        acts[2],
        &HttpRequestAction::SetHeader {
            name: "X-A".into(),
            value: "a b".into()
        }
    );
    assert_eq!(
        acts[3],
        &HttpRequestAction::AddHeader {
            name: "X-B".into(),
            value: "c".into()
        }
    );
    assert_eq!(
        acts[4],
        &HttpRequestAction::DelHeader { name: "X-C".into() }
    );
    assert_eq!(
        acts[5],
        &HttpRequestAction::Redirect {
            kind: RedirectKind::Prefix,
            target: "https://x.example".into(),
            code: 301
        }
    );
    assert_eq!(
        acts[6],
        &HttpRequestAction::NormalizeUri(NormalizeUri::PathMergeSlashes)
    );
    // `redirect` lines run after every http-request rule.
    assert_eq!(
        acts[7],
        &HttpRequestAction::Redirect {
            kind: RedirectKind::Scheme,
            target: "https".into(),
            code: 302
        }
    );
    let cond = fe.http_request_rules[7].cond.as_ref().unwrap();
    assert_eq!(
        cond.any_of,
        vec![vec![Term {
            negated: true,
            acl: 0
        }]]
    );
    assert!(fe.http_response_rules[0].cond.as_ref().unwrap().unless);
    assert_eq!(
        fe.http_response_rules[1].action,
        HttpResponseAction::DelHeader {
            name: "Server".into()
        }
    );
    // A listen's rules run once, in its frontend part.
    assert!(cfg.backends[0].http_request_rules.is_empty());
    assert!(alert("    http-request set-path /x")
        .message
        .contains("'http-request set-path' is not supported"));
    assert!(alert("    http-request redirect location /x drop-query")
        .message
        .contains("redirect option 'drop-query'"));
}

#[test]
fn http_check_and_stats() {
    let cfg = listen("    option httpchk\n    http-check send meth GET uri /health ver HTTP/1.1 hdr Host example.com\n    http-check expect status 200-399\n    http-check expect ! rstring ^down\n    stats enable\n    stats uri /stats\n    stats refresh 10s\n    stats auth admin:secret\n    stats realm Ops\n    stats hide-version\n    monitor-uri /alive");
    let be = &cfg.backends[0];
    let chk = be.httpchk.as_ref().unwrap();
    assert_eq!(
        (chk.method.as_str(), chk.uri.as_str(), chk.version.as_str()),
        ("GET", "/health", "HTTP/1.1")
    );
    assert_eq!(
        chk.headers,
        [("Host".to_string(), "example.com".to_string())]
    );
    assert_eq!(
        be.http_check_expect[0],
        HttpCheckExpect::Status {
            negate: false,
            ranges: vec![(200, 399)]
        }
    );
    assert_eq!(
        be.http_check_expect[1],
        HttpCheckExpect::RString {
            negate: true,
            regex: "^down".into()
        }
    );
    let st = cfg.frontends[0].stats.as_ref().unwrap();
    assert_eq!(
        (
            st.uri.as_str(),
            st.refresh,
            st.realm.as_deref(),
            st.hide_version
        ),
        ("/stats", Some(Duration::from_secs(10)), Some("Ops"), true)
    );
    assert_eq!(st.auth, [("admin".to_string(), "secret".to_string())]);
    assert_eq!(cfg.frontends[0].monitor_uri.as_deref(), Some("/alive"));
    assert_eq!(
        listen("    stats enable").frontends[0]
            .stats
            .as_ref()
            .unwrap()
            .uri,
        "/haproxy?stats"
    );
}

#[test]
fn global_section() {
    let out = read(&format!(
        "global\n    maxconn 4000\n    nbthread 2\n    tune.bufsize 32k\n    tune.http.maxhdr 64\n    stats socket ipv4@127.0.0.1:9999 level admin\n    log stdout format raw local0 info\n    setenv NAME web\n    presetenv NAME other\n    daemon\n{D}listen l\n    bind 127.0.0.1:3990\n    log global\n    http-request set-header X-N \"${{NAME}}\"\n"
    ));
    let cfg = out.config.unwrap();
    let g = &cfg.global;
    assert_eq!(
        (g.maxconn, g.nbthread, g.tune_bufsize, g.tune_http_maxhdr),
        (Some(4000), Some(2), Some(32768), Some(64))
    );
    assert_eq!(g.stats_sockets[0].address, "ipv4@127.0.0.1:9999");
    assert_eq!(g.stats_sockets[0].level.as_deref(), Some("admin"));
    assert_eq!(g.stats_sockets[0].mode, None);
    let g2 = listen_in(
        "global\n    stats socket /run/x.sock mode 660 level admin\n",
        "",
    )
    .global;
    assert_eq!(g2.stats_sockets[0].mode, Some(0o660));
    assert_eq!(
        (
            g.logs[0].target.as_str(),
            g.logs[0].format.as_deref(),
            g.logs[0].facility.as_deref()
        ),
        ("stdout", Some("raw"), Some("local0"))
    );
    assert_eq!(
        g.setenv,
        [("NAME".to_string(), "web".to_string())],
        "presetenv does not override"
    );
    assert_eq!(
        cfg.frontends[0].logs.len(),
        1,
        "log global copies the global targets"
    );
    assert_eq!(
        cfg.frontends[0].http_request_rules[0].action,
        HttpRequestAction::SetHeader {
            name: "X-N".into(),
            value: "web".into()
        }
    );
    let daemon = out
        .diagnostics
        .iter()
        .find(|d| d.keyword.as_deref() == Some("daemon"))
        .unwrap();
    assert_eq!(daemon.level, Level::Warning);
    let bad = read("global\n    log 127.0.0.1 kern9\n");
    assert!(bad.diagnostics[0]
        .message
        .contains("unknown log facility 'kern9'"));
}

#[test]
fn server_template() {
    let cfg = listen("    server-template web 3 127.0.0.1:4000 check weight 5\n    server-template api 2-3 10.0.0.1:80");
    let names: Vec<(&str, u32, bool, u32)> = cfg.backends[0]
        .servers
        .iter()
        .map(|s| (s.name.as_str(), s.weight, s.check, s.id))
        .collect();
    assert_eq!(
        names,
        [
            ("web1", 5, true, 1),
            ("web2", 5, true, 2),
            ("web3", 5, true, 3),
            ("api2", 1, false, 4),
            ("api3", 1, false, 5)
        ]
    );
    assert!(alert("    server-template w 3 db.local:80 resolvers dns")
        .message
        .contains("not supported"));
    assert!(alert("    server-template w 0 127.0.0.1:80")
        .message
        .ends_with("Wrong server-template number or range arg '0'."));
    assert!(warnings("    option prefer-last-server")[0].contains("ignored by switchyard"));
}

#[test]
fn wide_port_ranges_stay_fast_and_clash_once() {
    let start = std::time::Instant::now();
    let out = read(&format!(
        "{D}frontend a\n    bind 127.0.0.1:1-65535\nfrontend b\n    bind 127.0.0.1:1000-60000\n"
    ));
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "took {:?}",
        start.elapsed()
    );
    let clashes: Vec<_> = out
        .diagnostics
        .iter()
        .filter(|d| d.message.contains("clashes"))
        .collect();
    assert_eq!(clashes.len(), 1, "one alert per bind line");
    assert!(
        clashes[0]
            .message
            .starts_with("'bind 127.0.0.1:1000' of frontend 'b' clashes"),
        "{}",
        clashes[0].message
    );
}

#[test]
fn http_features_are_dropped_in_tcp_mode() {
    let cfg = listen("    mode tcp\n    option forwardfor\n    cookie S insert\n    balance uri\n    stats enable\n    monitor-uri /m\n    http-request deny\n    redirect scheme https\n    http-response del-header X");
    let (fe, be) = (&cfg.frontends[0], &cfg.backends[0]);
    assert!(fe.forwardfor.is_none() && fe.stats.is_none() && fe.monitor_uri.is_none());
    assert!(fe.http_request_rules.is_empty() && fe.http_response_rules.is_empty());
    assert!(be.cookie.is_none());
    assert_eq!(be.balance, Balance::RoundRobin);
    let w = warnings("    mode tcp\n    balance uri");
    assert!(
        w.iter()
            .any(|m| m.contains("Layer 7 hash not possible for proxy 'l'")),
        "{w:?}"
    );
}

#[test]
fn http_check_send_applies_to_a_later_option_httpchk() {
    let cfg = listen("    http-check send meth HEAD uri /ready\n    option httpchk\n    http-check expect status 204");
    let be = &cfg.backends[0];
    let chk = be.httpchk.as_ref().unwrap();
    assert_eq!(
        (chk.method.as_str(), chk.uri.as_str(), chk.version.as_str()),
        ("HEAD", "/ready", "HTTP/1.0")
    );
    assert_eq!(be.http_check_expect.len(), 1);
    let w = warnings("    http-check expect status 200");
    assert!(
        w.iter()
            .any(|m| m.contains("uses http-check rules without 'option httpchk'")),
        "{w:?}"
    );
    assert!(listen("    http-check expect status 200").backends[0]
        .http_check_expect
        .is_empty());
}

#[test]
fn log_in_a_backend_warns() {
    let out = read(&format!(
        "{D}backend b\n    log global\n    server s 127.0.0.1:1\n"
    ));
    assert!(out.config.is_some());
    assert!(out
        .diagnostics
        .iter()
        .any(|d| d.level == Level::Warning
            && d.message.starts_with("'log' is ignored by switchyard")));
}

#[test]
fn use_service_prometheus_exporter_only() {
    let cfg = listen(
        "    http-request set-header X-A 1\n    http-request use-service prometheus-exporter if { path /metrics }",
    );
    let s = &cfg.frontends[0].services;
    assert_eq!(s.len(), 1);
    assert_eq!(
        (s[0].service, s[0].after_rules, s[0].cond.is_some()),
        (Service::PrometheusExporter, 1, true)
    );
    let a = alert("    http-request use-service lua.hello");
    assert!(
        a.message
            .contains("'use-service lua.hello' is not supported by switchyard (only 'prometheus-exporter' is)."),
        "{}",
        a.message
    );
    assert!(alert("    http-request use-service")
        .message
        .contains("expects a service name."));
    let out = read(&format!(
        "{D}backend b\n    http-request use-service prometheus-exporter\n"
    ));
    assert!(out.has_errors(), "refused in a backend");
}

#[test]
fn log_format_variables_checked() {
    let cfg = listen("    log stdout format raw local0\n    log-format \"%ci %{+Q}r %ST\"");
    assert_eq!(
        cfg.frontends[0].log_format,
        Some(LogFormat::Custom("%ci %{+Q}r %ST".into()))
    );
    let a = alert("    log-format \"%ci %[src]\"");
    assert!(a.message.contains("'%[...]'"), "{}", a.message);
    let out = read(&format!(
        "{D}frontend f\n    mode tcp\n    bind 127.0.0.1:3990\n    log stdout format raw local0\n    log-format \"%ci\"\n    default_backend b\nbackend b\n    mode tcp\n    server s 127.0.0.1:1\n"
    ));
    let cfg = out.config.unwrap();
    assert_eq!(cfg.frontends[0].log_format, Some(LogFormat::TcpLog));
    assert!(out
        .diagnostics
        .iter()
        .any(|d| d.message.contains("Falling back to 'option tcplog'")));
}

#[test]
fn stats_socket_expose_fd_listeners() {
    let g = listen_in(
        "global\n    stats socket /run/x.sock level admin expose-fd listeners\n    stats socket /run/y.sock\n",
        "",
    )
    .global;
    assert!(g.stats_sockets[0].expose_fd_listeners);
    assert_eq!(g.stats_sockets[0].level.as_deref(), Some("admin"));
    assert!(!g.stats_sockets[1].expose_fd_listeners);
    // HAProxy 2.6 knows no other value (message checked against haproxy -c).
    let out = read(&format!(
        "global\n    stats socket /run/x.sock expose-fd foo\n{D}listen l\n    bind 127.0.0.1:3990\n"
    ));
    assert!(out.config.is_none());
    assert!(out.diagnostics.iter().any(
        |d| d.message == "'stats socket' : ''expose-fd' only supports 'listeners' (got 'foo')'"
    ));
}

/// `hard-stop-after` is kept (milliseconds by default), with HAProxy 2.6.12's messages for
/// bad values (checked with `haproxy -c`).
#[test]
fn hard_stop_after() {
    let g = |v: &str| listen_in(&format!("global\n    hard-stop-after {v}\n"), "").global;
    assert_eq!(g("30s").hard_stop_after, Some(Duration::from_secs(30)));
    assert_eq!(g("2m").hard_stop_after, Some(Duration::from_secs(120)));
    assert_eq!(g("1500").hard_stop_after, Some(Duration::from_millis(1500)));
    assert_eq!(g("0").hard_stop_after, Some(Duration::ZERO));
    assert_eq!(listen_in("", "").global.hard_stop_after, None);
    let message = |v: &str| {
        let out = read(&format!(
            "global\n    hard-stop-after {v}\n{D}listen l\n    bind 127.0.0.1:3990\n"
        ));
        out.diagnostics
            .iter()
            .map(|d| (d.level, d.render(0)))
            .find(|(l, _)| *l != Level::Notice)
            .unwrap_or_else(|| panic!("no message for {v:?}"))
    };
    for (v, level, text) in [
        ("", Level::Alert, "parsing [t.cfg:2] : 'hard-stop-after' expects <time> as argument."),
        ("abc", Level::Alert, "parsing [t.cfg:2] : unexpected character 'a' in argument to <hard-stop-after>."),
        ("1.5s", Level::Alert, "parsing [t.cfg:2] : unexpected character '.' in argument to <hard-stop-after>."),
        ("30S", Level::Alert, "parsing [t.cfg:2] : unexpected character 'S' in argument to <hard-stop-after>."),
        ("-1", Level::Alert, "parsing [t.cfg:2] : unexpected character '-' in argument to <hard-stop-after>."),
        ("25d", Level::Alert, "parsing [t.cfg:2] : timer overflow in argument '25d' to 'hard-stop-after' (maximum value is 2147483647 ms or ~24.8 days)"),
        ("30sx", Level::Warning, "unexpected character 'x' after the timer value '30sx', only (us=microseconds,ms=milliseconds,s=seconds,m=minutes,h=hours,d=days) are supported. This will be reported as an error in next versions."),
    ] {
        let (l, rendered) = message(v);
        assert_eq!(l, level, "{v:?}: {rendered}");
        assert!(rendered.ends_with(text), "{v:?}: {rendered}");
    }
}
