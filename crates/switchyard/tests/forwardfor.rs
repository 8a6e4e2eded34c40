//! `option forwardfor [except NET] [header NAME] [if-none]` end to end
//! (behaviour reference §2.9, reg-tests ifnone-forwardfor / except-forwardfor).

mod support;

use support::*;

/// A frontend and a backend, each with its own `option forwardfor` line (or none).
fn run(fe_opt: &str, be_opt: &str, client_headers: &str) -> Seen {
    let srv = Backend::start("s");
    let port = free_port();
    let cfg = format!(
        "defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n    {fe_opt}\n    default_backend be\n\
         backend be\n    {be_opt}\n    server s {}\n",
        srv.addr()
    );
    let _p = Proxy::start(&cfg, port);
    assert_eq!(get(port, "/", client_headers).status, 200);
    srv.requests().remove(0)
}

#[test]
fn added_once_when_frontend_and_backend_both_enable_it() {
    let seen = run("option forwardfor", "option forwardfor", "");
    assert_eq!(seen.all("x-forwarded-for"), ["127.0.0.1"]);
}

#[test]
fn client_value_kept_and_new_line_appended_last() {
    let seen = run(
        "option forwardfor",
        "",
        "X-Forwarded-For: 1.2.3.4\r\nX-Other: y\r\n",
    );
    assert_eq!(seen.all("x-forwarded-for"), ["1.2.3.4", "127.0.0.1"]);
    let names: Vec<String> = seen
        .headers
        .iter()
        .map(|(n, _)| n.to_ascii_lowercase())
        .collect();
    assert_eq!(
        names.last().map(String::as_str),
        Some("x-forwarded-for"),
        "appended as its own last line: {names:?}"
    );
}

#[test]
fn except_network_skips_the_header() {
    let seen = run("option forwardfor except 127.0.0.0/8", "", "");
    assert!(seen.all("x-forwarded-for").is_empty());
    let seen = run("option forwardfor except 10.0.0.0/8", "", "");
    assert_eq!(seen.all("x-forwarded-for"), ["127.0.0.1"]);
}

#[test]
fn custom_header_name() {
    let seen = run("", "option forwardfor header X-Client-IP", "");
    assert_eq!(seen.all("x-client-ip"), ["127.0.0.1"]);
    assert!(seen.all("x-forwarded-for").is_empty());
}

#[test]
fn if_none_only_when_every_enabling_proxy_says_so() {
    let both = run(
        "option forwardfor if-none",
        "option forwardfor if-none",
        "X-Forwarded-For: 9.9.9.9\r\n",
    );
    assert_eq!(both.all("x-forwarded-for"), ["9.9.9.9"]);
    let one = run(
        "option forwardfor if-none",
        "option forwardfor",
        "X-Forwarded-For: 9.9.9.9\r\n",
    );
    assert_eq!(one.all("x-forwarded-for"), ["9.9.9.9", "127.0.0.1"]);
    let absent = run("option forwardfor if-none", "", "");
    assert_eq!(absent.all("x-forwarded-for"), ["127.0.0.1"]);
}

#[test]
fn no_option_no_header() {
    let seen = run("", "", "");
    assert!(seen.all("x-forwarded-for").is_empty());
}
