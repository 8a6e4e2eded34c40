//! `http-request use-service prometheus-exporter`: HAProxy 2.6's exporter
//! metric names in the Prometheus text exposition format 0.0.4.
//!
//! Names and labels are HAProxy's (`haproxy_frontend_http_requests_total`,
//! `haproxy_server_status{proxy="be",server="s1",state="UP"}` ...) so that
//! existing dashboards and alerts work unchanged; no `switchyard_` alias.
//! Only figures switchyard really keeps are exported (every value comes from
//! [`Counters`], [`ServerState`] or the configuration); HAProxy metrics we do
//! not measure (rates, timings, check durations...) are absent rather than 0.
//!
//! The text is written by hand rather than with the `prometheus-client` crate:
//! the values already live in our own atomics, a registry would mean copying
//! them into its types on every scrape, and the crate's naming rules (it adds
//! `_total` itself and forbids some of HAProxy's shapes) would fight the goal
//! of byte-compatible names. Writing is one pass over the snapshot into one
//! `String`.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use crate::backend::ServerState;
use crate::observability::{Counters, ACTIVE_CONNS};
use crate::snapshot::{BackendRt, Snapshot};

/// `content-type` of the answer, as HAProxy sends it.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4";

/// Response classes in [`Counters::responses`] order, as HAProxy labels them.
const CODES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "other"];

/// Server states in HAProxy's `haproxy_server_status` order.
const SERVER_STATES: [&str; 5] = ["DOWN", "UP", "MAINT", "DRAIN", "NOLB"];

/// A metric family being written: `# HELP`, `# TYPE`, then samples.
struct Family<'a> {
    out: &'a mut String,
    name: &'static str,
}

impl<'a> Family<'a> {
    fn new(out: &'a mut String, name: &'static str, kind: &str, help: &str) -> Self {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        Family { out, name }
    }

    fn sample(&mut self, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.out.push_str(self.name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"");
                escape_label(v, self.out);
                self.out.push('"');
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }
}

/// Label value escaping of the text format: backslash, double quote, newline.
fn escape_label(v: &str, out: &mut String) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn load(a: &std::sync::atomic::AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

/// HAProxy's server state name for `haproxy_server_status` (a server
/// without `check` is `UP`, as in HAProxy).
pub fn server_state(s: &ServerState) -> &'static str {
    if s.maint.load(Ordering::Relaxed) {
        "MAINT"
    } else if !s.up.load(Ordering::Relaxed) {
        "DOWN"
    } else if s.drain.load(Ordering::Relaxed) {
        "DRAIN"
    } else {
        "UP"
    }
}

/// Per-proxy/server value getter used by the families below.
type Get<'s> = &'s dyn Fn(&Counters) -> u64;

/// The whole exposition.
pub fn render(snap: &Snapshot) -> String {
    let mut out = String::with_capacity(16 * 1024);
    process(&mut out, snap);
    frontends(&mut out, snap);
    backends(&mut out, snap);
    servers(&mut out, snap);
    out
}

fn process(out: &mut String, snap: &Snapshot) {
    let threads = crate::runtime::thread_count(snap);
    Family::new(
        out,
        "haproxy_process_nbthread",
        "gauge",
        "Number of started threads (global.nbthread)",
    )
    .sample(&[], threads);
    Family::new(
        out,
        "haproxy_process_current_connections",
        "gauge",
        "Current number of connections on this worker process",
    )
    .sample(&[], ACTIVE_CONNS.load(Ordering::Relaxed));
    if let Some(m) = snap.config.global.maxconn {
        Family::new(
            out,
            "haproxy_process_max_connections",
            "gauge",
            "Maximum number of concurrent connections.",
        )
        .sample(&[], m);
    }
    Family::new(out, "haproxy_process_build_info", "gauge", "Build info").sample(
        &[("version", concat!("switchyard-", env!("CARGO_PKG_VERSION")))],
        1,
    );
}

fn frontends(out: &mut String, snap: &Snapshot) {
    let fes = &snap.frontends;
    {
        let mut f = Family::new(
            out,
            "haproxy_frontend_status",
            "gauge",
            "Current status of the service, per state label value.",
        );
        // A running frontend is UP (switchyard cannot pause one).
        for fe in fes {
            for (state, on) in [("DOWN", 0), ("UP", 1)] {
                f.sample(&[("proxy", &fe.cfg.name), ("state", state)], on);
            }
        }
    }
    {
        let mut f = Family::new(
            out,
            "haproxy_frontend_current_sessions",
            "gauge",
            "Number of current sessions on the frontend, backend or server",
        );
        for fe in fes {
            f.sample(
                &[("proxy", &fe.cfg.name)],
                fe.counters.current.load(Ordering::Relaxed),
            );
        }
    }
    {
        let mut f = Family::new(
            out,
            "haproxy_frontend_limit_sessions",
            "gauge",
            "Frontend/listener/server's maxconn, backend's fullconn",
        );
        for fe in fes {
            match fe.cfg.maxconn {
                Some(m) => f.sample(&[("proxy", &fe.cfg.name)], m),
                None => f.sample(&[("proxy", &fe.cfg.name)], "NaN"),
            }
        }
    }
    let counters: [(&'static str, &str, Get); 3] = [
        (
            "haproxy_frontend_sessions_total",
            "Total number of sessions since process started",
            &|c| load(&c.connections),
        ),
        (
            "haproxy_frontend_bytes_in_total",
            "Total number of request bytes since process started",
            &|c| load(&c.bytes_in),
        ),
        (
            "haproxy_frontend_bytes_out_total",
            "Total number of response bytes since process started",
            &|c| load(&c.bytes_out),
        ),
    ];
    for (name, help, get) in counters {
        let mut f = Family::new(out, name, "counter", help);
        for fe in fes {
            f.sample(&[("proxy", &fe.cfg.name)], get(&fe.counters));
        }
    }
    let http = || {
        fes.iter()
            .filter(|fe| fe.cfg.mode == switchyard_config::Mode::Http)
    };
    let mut f = Family::new(
        out,
        "haproxy_frontend_http_requests_total",
        "counter",
        "Total number of HTTP requests processed by this object since the worker process started",
    );
    for fe in http() {
        f.sample(&[("proxy", &fe.cfg.name)], load(&fe.counters.requests));
    }
    let mut f = Family::new(
        out,
        "haproxy_frontend_http_responses_total",
        "counter",
        "Total number of HTTP responses with status 100-199 returned by this object since the worker process started",
    );
    for fe in http() {
        for (i, code) in CODES.iter().enumerate() {
            f.sample(
                &[("proxy", &fe.cfg.name), ("code", code)],
                load(&fe.counters.responses[i]),
            );
        }
    }
}

fn backends(out: &mut String, snap: &Snapshot) {
    let bes = &snap.backends;
    {
        let mut f = Family::new(
            out,
            "haproxy_backend_status",
            "gauge",
            "Current status of the service, per state label value.",
        );
        for be in bes {
            let up = be
                .servers
                .iter()
                .any(|s| s.running() && !s.drain.load(Ordering::Relaxed));
            for (state, on) in [("DOWN", !up), ("UP", up)] {
                f.sample(&[("proxy", &be.cfg.name), ("state", state)], u8::from(on));
            }
        }
    }
    type BeGet<'s> = &'s dyn Fn(&BackendRt) -> u64;
    let gauges: [(&'static str, &str, BeGet); 5] = [
        (
            "haproxy_backend_current_queue",
            "Number of current queued connections",
            &|be| be.waitlist.backend_queued() as u64,
        ),
        (
            "haproxy_backend_current_sessions",
            "Number of current sessions on the frontend, backend or server",
            &|be| {
                be.servers
                    .iter()
                    .map(|s| u64::from(s.inflight.load(Ordering::Relaxed)))
                    .sum()
            },
        ),
        (
            "haproxy_backend_active_servers",
            "Total number of active UP servers with a non-zero weight",
            &|be| be.servers.iter().filter(|s| !s.backup && usable(s)).count() as u64,
        ),
        (
            "haproxy_backend_backup_servers",
            "Total number of backup UP servers with a non-zero weight",
            &|be| be.servers.iter().filter(|s| s.backup && usable(s)).count() as u64,
        ),
        (
            "haproxy_backend_weight",
            "Server's effective weight, or sum of active servers' effective weights for a backend",
            &|be| {
                let w = |backup: bool| -> u64 {
                    be.servers
                        .iter()
                        .filter(|s| s.backup == backup && usable(s))
                        .map(|s| u64::from(s.weight.load(Ordering::Relaxed)))
                        .sum()
                };
                if be.servers.iter().any(|s| !s.backup && usable(s)) {
                    w(false)
                } else {
                    w(true)
                }
            },
        ),
    ];
    for (name, help, get) in gauges {
        let mut f = Family::new(out, name, "gauge", help);
        for be in bes {
            f.sample(&[("proxy", &be.cfg.name)], get(be));
        }
    }
    let sum = |be: &BackendRt, get: Get| -> u64 { be.server_counters.iter().map(|c| get(c)).sum() };
    let counters: [(&'static str, &str, BeGet); 7] = [
        (
            "haproxy_backend_sessions_total",
            "Total number of sessions since process started",
            &|be| load(&be.counters.requests),
        ),
        (
            "haproxy_backend_bytes_in_total",
            "Total number of request bytes since process started",
            &|be| load(&be.counters.bytes_in),
        ),
        (
            "haproxy_backend_bytes_out_total",
            "Total number of response bytes since process started",
            &|be| load(&be.counters.bytes_out),
        ),
        (
            "haproxy_backend_connection_errors_total",
            "Total number of failed connections to server since the worker process started",
            &|be| sum(be, &|c| load(&c.connect_errors)),
        ),
        (
            "haproxy_backend_response_errors_total",
            "Total number of invalid responses since the worker process started",
            &|be| sum(be, &|c| load(&c.response_errors)),
        ),
        (
            "haproxy_backend_retry_warnings_total",
            "Total number of server connection retries since the worker process started",
            &|be| load(&be.counters.retries),
        ),
        (
            "haproxy_backend_redispatch_warnings_total",
            "Total number of server redispatches due to connection failures since the worker process started",
            &|be| load(&be.counters.redispatches),
        ),
    ];
    for (name, help, get) in counters {
        let mut f = Family::new(out, name, "counter", help);
        for be in bes {
            f.sample(&[("proxy", &be.cfg.name)], get(be));
        }
    }
    let mut f = Family::new(
        out,
        "haproxy_backend_http_requests_total",
        "counter",
        "Total number of HTTP requests processed by this object since the worker process started",
    );
    for be in bes
        .iter()
        .filter(|b| b.cfg.mode == switchyard_config::Mode::Http)
    {
        f.sample(&[("proxy", &be.cfg.name)], load(&be.counters.requests));
    }
    let mut f = Family::new(
        out,
        "haproxy_backend_http_responses_total",
        "counter",
        "Total number of HTTP responses with status 100-199 returned by this object since the worker process started",
    );
    for be in bes
        .iter()
        .filter(|b| b.cfg.mode == switchyard_config::Mode::Http)
    {
        for (i, code) in CODES.iter().enumerate() {
            f.sample(
                &[("proxy", &be.cfg.name), ("code", code)],
                load(&be.counters.responses[i]),
            );
        }
    }
}

/// Counted in `act`/`bck`: UP (or unchecked), not in maintenance or drain.
fn usable(s: &ServerState) -> bool {
    s.running() && !s.drain.load(Ordering::Relaxed)
}

/// Writes one server's samples: family, `proxy`/`server` labels, index, backend.
type Emit<'e> = &'e dyn Fn(&mut Family, &[(&str, &str)], usize, &BackendRt);

fn servers(out: &mut String, snap: &Snapshot) {
    let each = |f: &mut Family, emit: Emit| {
        for be in &snap.backends {
            for (i, name) in be.server_names.iter().enumerate() {
                emit(f, &[("proxy", &be.cfg.name), ("server", name)], i, be);
            }
        }
    };
    {
        let mut f = Family::new(
            out,
            "haproxy_server_status",
            "gauge",
            "Current status of the service, per state label value.",
        );
        each(&mut f, &|f, labels, i, be| {
            let now = server_state(&be.servers[i]);
            for st in SERVER_STATES {
                let mut l = labels.to_vec();
                l.push(("state", st));
                f.sample(&l, u8::from(st == now));
            }
        });
    }
    type SrvGet<'s> = &'s dyn Fn(&ServerState, &Counters) -> String;
    let gauges: [(&'static str, &str, &str, SrvGet); 6] = [
        (
            "haproxy_server_current_sessions",
            "gauge",
            "Number of current sessions on the frontend, backend or server",
            &|s, _| s.inflight.load(Ordering::Relaxed).to_string(),
        ),
        (
            "haproxy_server_current_queue",
            "gauge",
            "Number of current queued connections",
            &|s, _| s.queued.load(Ordering::Relaxed).to_string(),
        ),
        (
            "haproxy_server_limit_sessions",
            "gauge",
            "Frontend/listener/server's maxconn, backend's fullconn",
            &|s, _| {
                s.maxconn
                    .map_or_else(|| "NaN".to_string(), |m| m.to_string())
            },
        ),
        (
            "haproxy_server_weight",
            "gauge",
            "Server's effective weight, or sum of active servers' effective weights for a backend",
            &|s, _| s.weight.load(Ordering::Relaxed).to_string(),
        ),
        (
            "haproxy_server_sessions_total",
            "counter",
            "Total number of sessions since process started",
            &|_, c| load(&c.requests).to_string(),
        ),
        (
            "haproxy_server_connection_errors_total",
            "counter",
            "Total number of failed connections to server since the worker process started",
            &|_, c| load(&c.connect_errors).to_string(),
        ),
    ];
    for (name, kind, help, get) in gauges {
        let mut f = Family::new(out, name, kind, help);
        each(&mut f, &|f, labels, i, be| {
            f.sample(labels, get(&be.servers[i], &be.server_counters[i]));
        });
    }
    let counters: [(&'static str, &str, Get); 3] = [
        (
            "haproxy_server_response_errors_total",
            "Total number of invalid responses since the worker process started",
            &|c| load(&c.response_errors),
        ),
        (
            "haproxy_server_bytes_in_total",
            "Total number of request bytes since process started",
            &|c| load(&c.bytes_in),
        ),
        (
            "haproxy_server_bytes_out_total",
            "Total number of response bytes since process started",
            &|c| load(&c.bytes_out),
        ),
    ];
    for (name, help, get) in counters {
        let mut f = Family::new(out, name, "counter", help);
        each(&mut f, &|f, labels, i, be| {
            f.sample(labels, get(&be.server_counters[i]));
        });
    }
    let mut f = Family::new(
        out,
        "haproxy_server_http_responses_total",
        "counter",
        "Total number of HTTP responses with status 100-199 returned by this object since the worker process started",
    );
    each(&mut f, &|f, labels, i, be| {
        if be.cfg.mode != switchyard_config::Mode::Http {
            return;
        }
        for (k, code) in CODES.iter().enumerate() {
            let mut l = labels.to_vec();
            l.push(("code", code));
            f.sample(&l, load(&be.server_counters[i].responses[k]));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn family_writes_help_type_and_escaped_labels() {
        let mut out = String::new();
        let mut f = Family::new(&mut out, "haproxy_x_total", "counter", "X.");
        f.sample(&[("proxy", "a\"b\\c\nd"), ("code", "2xx")], 7);
        f.sample(&[], "NaN");
        assert_eq!(
            out,
            "# HELP haproxy_x_total X.\n# TYPE haproxy_x_total counter\nhaproxy_x_total{proxy=\"a\\\"b\\\\c\\nd\",code=\"2xx\"} 7\nhaproxy_x_total NaN\n"
        );
    }
}
