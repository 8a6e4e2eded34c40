//! `retry-on` read into [`RetryOn`]: defaults, inheritance from `defaults`,
//! replacement (not accumulation), `none`, `all-retryable-errors`. The error
//! messages are compared with HAProxy's by the catalogue (`retry_on_*.cfg`).

use switchyard_config::*;

fn backend(defaults_lines: &str, backend_lines: &str) -> Backend {
    let text = format!(
        "defaults\n    mode http\n    timeout connect 5s\n    timeout client 5s\n    timeout server 5s\n{defaults_lines}\
         backend b\n{backend_lines}    server s 127.0.0.1:8080\n"
    );
    let out = parse(
        &[Source {
            name: "t.cfg",
            text: &text,
        }],
        &|_| None,
    );
    let msgs: Vec<String> = out.diagnostics.iter().map(|d| d.render(0)).collect();
    let mut cfg = out.config.unwrap_or_else(|| panic!("refused: {msgs:?}"));
    cfg.backends.remove(0)
}

#[test]
fn default_is_conn_failure_only() {
    let r = backend("", "").retry_on;
    assert_eq!(r, RetryOn::CONN_FAILURE);
    assert!(r.contains(RetryOn::CONN_FAILURE));
    assert!(!r.after_send());
    assert!(!r.contains(RetryOn::EMPTY_RESPONSE));
    assert!(RetryOn::STATUSES.iter().all(|&c| !r.status(c)));
}

#[test]
fn keywords_and_status_codes() {
    let r = backend("", "    retry-on empty-response 503 404\n").retry_on;
    assert!(r.contains(RetryOn::EMPTY_RESPONSE));
    assert!(r.after_send());
    assert!(r.status(503) && r.status(404));
    assert!(!r.status(502) && !r.status(200));
    // The set replaces the default: conn-failure is no longer listed.
    assert!(!r.contains(RetryOn::CONN_FAILURE));
    let r = backend(
        "",
        "    retry-on junk-response response-timeout 0rtt-rejected\n",
    )
    .retry_on;
    assert!(r.contains(RetryOn::JUNK_RESPONSE));
    assert!(r.contains(RetryOn::RESPONSE_TIMEOUT));
    assert!(r.contains(RetryOn::ZERO_RTT_REJECTED));
    assert!(!r.contains(RetryOn::EMPTY_RESPONSE));
}

#[test]
fn all_retryable_errors_is_haproxys_list() {
    let r = backend("", "    retry-on all-retryable-errors\n").retry_on;
    for e in [
        RetryOn::CONN_FAILURE,
        RetryOn::EMPTY_RESPONSE,
        RetryOn::JUNK_RESPONSE,
        RetryOn::RESPONSE_TIMEOUT,
        RetryOn::ZERO_RTT_REJECTED,
    ] {
        assert!(r.contains(e), "{e:?}");
    }
    let codes: Vec<u16> = RetryOn::STATUSES
        .iter()
        .copied()
        .filter(|&c| r.status(c))
        .collect();
    assert_eq!(codes, [500, 502, 503, 504]);
}

#[test]
fn none_and_inheritance() {
    assert_eq!(backend("    retry-on none\n", "").retry_on, RetryOn::NONE);
    assert!(!RetryOn::NONE.contains(RetryOn::CONN_FAILURE));
    // Inherited from defaults, replaced by the section's own line.
    let r = backend("    retry-on 502\n", "").retry_on;
    assert!(r.status(502) && !r.contains(RetryOn::CONN_FAILURE));
    let r = backend("    retry-on 502\n", "    retry-on conn-failure\n").retry_on;
    assert_eq!(r, RetryOn::CONN_FAILURE);
    // The last line wins within a section.
    let r = backend("", "    retry-on 500\n    retry-on 504\n").retry_on;
    assert!(r.status(504) && !r.status(500));
}

#[test]
fn every_accepted_status_round_trips() {
    for &c in &RetryOn::STATUSES {
        assert!(RetryOn::keyword(&c.to_string()).unwrap().status(c));
    }
    for bad in ["200", "505", "5xx", "", "none"] {
        assert!(RetryOn::keyword(bad).is_none(), "{bad}");
    }
}
