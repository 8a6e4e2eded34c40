//! The seed configuration (`../shared/seed/haproxy.cfg`) read into the model.

use std::time::Duration;
use switchyard_config::*;

fn seed_text() -> String {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/seed/haproxy.cfg"
    );
    std::fs::read_to_string(path).expect("seed config")
}

fn no_env(_: &str) -> Option<String> {
    None
}

#[test]
fn seed_is_read_like_haproxy() {
    let text = seed_text();
    let out = parse(
        &[Source {
            name: "haproxy.cfg",
            text: &text,
        }],
        &no_env,
    );
    // Exactly the one warning HAProxy 2.6.12 prints for the seed.
    let msgs: Vec<String> = out.diagnostics.iter().map(|d| d.render(1)).collect();
    assert_eq!(
        msgs,
        ["[WARNING]  (1) : config : parsing [haproxy.cfg:24] : 'http-pretend-keepalive' ignored because frontend 'all' has no backend capability."],
    );
    let cfg = out.config.expect("valid");
    assert_eq!(cfg.frontends.len(), 1);
    assert_eq!(cfg.backends.len(), 2);

    let fe = &cfg.frontends[0];
    assert_eq!(fe.name, "all");
    assert_eq!(fe.mode, Mode::Http);
    assert_eq!(fe.binds.len(), 1);
    assert_eq!(fe.binds[0].addrs, ["127.0.0.1:3000".parse().unwrap()]);
    assert_eq!(fe.timeouts.client, Some(Duration::from_secs(120)));
    assert_eq!(fe.timeouts.connect, Some(Duration::from_millis(5000)));
    assert_eq!(fe.conn_mode, Some(ConnMode::ServerClose));
    assert_eq!(
        fe.forwardfor,
        Some(ForwardFor {
            header: "X-Forwarded-For".into(),
            except: None,
            if_none: false
        })
    );
    assert_eq!(fe.acls.len(), 1);
    assert_eq!(fe.acls[0].name, "is_engineio");
    let crit = &fe.acls[0].criteria[0];
    assert_eq!((&crit.fetch, crit.method), (&Fetch::Path, MatchMethod::Beg));
    assert_eq!(crit.patterns, ["/engine.io"]);
    assert_eq!(fe.switching_rules.len(), 1);
    let rule = &fe.switching_rules[0];
    assert_eq!(cfg.backends[rule.backend].name, "socket-servers");
    assert_eq!(
        rule.cond,
        Some(Condition {
            unless: false,
            any_of: vec![vec![Term {
                negated: false,
                acl: 0
            }]]
        })
    );
    assert_eq!(fe.default_backend, cfg.backend_index("http-servers"));

    let http = &cfg.backends[cfg.backend_index("http-servers").unwrap()];
    assert_eq!(http.mode, Mode::Http);
    assert_eq!(http.balance, Balance::RoundRobin);
    assert_eq!(http.conn_mode, Some(ConnMode::Close));
    assert!(http.forwardfor.is_some());
    assert_eq!(http.retries, 3);
    assert_eq!(http.redispatch, None);
    assert_eq!(http.timeouts.connect, Some(Duration::from_secs(5)));
    assert_eq!(http.timeouts.server, Some(Duration::from_secs(10)));
    assert_eq!(http.cookie, None);
    let names: Vec<_> = http
        .servers
        .iter()
        .map(|s| (s.name.as_str(), s.host.as_str(), s.port))
        .collect();
    assert_eq!(
        names,
        [
            ("node-1", "127.0.0.1", Some(4000)),
            ("node-2", "127.0.0.1", Some(4001))
        ]
    );
    for (i, s) in http.servers.iter().enumerate() {
        assert!(s.check);
        assert_eq!(
            (s.inter, s.fastinter, s.downinter),
            (
                Duration::from_secs(2),
                Duration::from_secs(2),
                Duration::from_secs(2)
            )
        );
        assert_eq!((s.rise, s.fall, s.weight, s.id), (2, 3, 1, i as u32 + 1));
        assert_eq!(s.cookie, None);
        assert!(!s.backup && !s.disabled);
    }

    let sock = &cfg.backends[cfg.backend_index("socket-servers").unwrap()];
    assert_eq!(sock.balance, Balance::LeastConn);
    assert_eq!(sock.timeouts.server, Some(Duration::from_secs(120)));
    assert_eq!(sock.timeouts.connect, Some(Duration::from_secs(5)));
    assert_eq!(sock.conn_mode, None);
    let c = sock.cookie.as_ref().unwrap();
    assert_eq!(
        (c.name.as_str(), c.mode, c.indirect, c.nocache),
        ("SRVNAME", CookieMode::Insert, false, false)
    );
    let cookies: Vec<_> = sock.servers.iter().map(|s| s.cookie.as_deref()).collect();
    assert_eq!(cookies, [Some("S1"), Some("S2")]);
    assert_eq!(sock.servers[1].port, Some(5001));
}
