//! The `global` section, and `log` target lines (shared with proxies).

use super::{ignored, ms, time_arg, unsupported, TimeWording};
use crate::draft::{Diags, Line};
use crate::model::*;
use crate::parser::Parser;
use crate::suggest;
use crate::units::TimeUnit;

/// HAProxy 2.6 global keywords (for "did you mean" and recognition), in an
/// order that reproduces 2.6.12's choices on ties (`tests/hints.rs`).
const GLOBAL_KEYWORDS: &[&str] = &[
    "ca-base",
    "chroot",
    "default-path",
    "crt-base",
    "cpu-map",
    "daemon",
    "description",
    "external-check",
    "gid",
    "group",
    "hard-stop-after",
    "h1-case-adjust",
    "h1-case-adjust-file",
    "insecure-fork-wanted",
    "insecure-setuid-wanted",
    "localpeer",
    "log-tag",
    "log",
    "log-send-hostname",
    "lua-load",
    "lua-load-per-thread",
    "lua-prepend-path",
    "master-worker",
    "maxconn",
    "maxconnrate",
    "maxcomprate",
    "maxcompcpuusage",
    "maxpipes",
    "maxsessrate",
    "maxsslconn",
    "maxsslrate",
    "maxzlibmem",
    "mworker-max-reloads",
    "nbproc",
    "nbthread",
    "node",
    "noepoll",
    "nogetaddrinfo",
    "nokqueue",
    "nopoll",
    "noreuseport",
    "nosplice",
    "pidfile",
    "presetenv",
    "quiet",
    "setenv",
    "resetenv",
    "server-state-base",
    "server-state-file",
    "set-dumpable",
    "spread-checks",
    "ssl-default-bind-ciphers",
    "ssl-default-bind-ciphersuites",
    "ssl-default-bind-curves",
    "ssl-default-bind-options",
    "ssl-default-server-ciphers",
    "ssl-default-server-ciphersuites",
    "ssl-default-server-options",
    "ssl-dh-param-file",
    "ssl-engine",
    "ssl-mode-async",
    "ssl-server-verify",
    "ssl-skip-self-issued-ca",
    "stats",
    "strict-limits",
    "tune.bufsize",
    "tune.http.maxhdr",
    "tune.maxrewrite",
    "tune.ssl.default-dh-param",
    "tune.ssl.cachesize",
    "uid",
    "ulimit-n",
    "unix-bind",
    "unsetenv",
    "user",
    "busy-polling",
    "grace",
    "profiling.tasks",
    "numa-cpu-mapping",
    "issuers-chain-path",
    "zero-warning",
    "nbthread",
    "ssl-load-extra-files",
    "httpclient.resolvers.prefer",
    "httpclient.ssl.verify",
    "tune.buffers.limit",
    "tune.buffers.reserve",
    "tune.comp.maxlevel",
    "tune.fail-alloc",
    "tune.fd.edge-triggered",
    "tune.h2.header-table-size",
    "tune.h2.initial-window-size",
    "tune.h2.max-concurrent-streams",
    "tune.h2.max-frame-size",
    "tune.http.cookielen",
    "tune.http.logurilen",
    "tune.idle-pool.shared",
    "tune.idletimer",
    "tune.lua.forced-yield",
    "tune.lua.maxmem",
    "tune.lua.session-timeout",
    "tune.lua.task-timeout",
    "tune.lua.service-timeout",
    "tune.maxaccept",
    "tune.maxpollevents",
    "tune.memory.hot-size",
    "tune.pattern.cache-size",
    "tune.peers.max-updates-at-once",
    "tune.pipesize",
    "tune.pool-high-fd-ratio",
    "tune.pool-low-fd-ratio",
    "tune.rcvbuf.client",
    "tune.rcvbuf.server",
    "tune.recv_enough",
    "tune.runqueue-depth",
    "tune.sched.low-latency",
    "tune.sndbuf.client",
    "tune.sndbuf.server",
    "tune.ssl.capture-buffer-size",
    "tune.ssl.capture-cipherlist-size",
    "tune.ssl.force-private-cache",
    "tune.ssl.hard-maxrecord",
    "tune.ssl.keylog",
    "tune.ssl.lifetime",
    "tune.ssl.maxrecord",
    "tune.ssl.ssl-ctx-cache-size",
    "tune.vars.global-max-size",
    "tune.vars.proc-max-size",
    "tune.vars.reqres-max-size",
    "tune.vars.sess-max-size",
    "tune.vars.txn-max-size",
    "tune.zlib.memlevel",
    "tune.zlib.windowsize",
    "tune.listener.multi-queue",
    "tune.chksize",
    "ssl-default-bind-sigalgs",
    "ssl-default-bind-client-sigalgs",
    "ssl-default-server-sigalgs",
    "ssl-default-server-client-sigalgs",
    "ssl-default-server-curves",
    "ssl-load-extra-del-ext",
];

pub(crate) fn keyword(p: &mut Parser<'_>, line: &Line) {
    let kw = line.arg(0);
    let loc = &line.loc;
    match kw {
        "maxconn" => {
            if let Some(v) = super::uint_arg(&mut p.diags, line, 1, "maxconn", u32::MAX as u64) {
                p.global.maxconn = Some(v as u32);
            }
        }
        "nbthread" => match line.arg(1).parse::<i64>() {
            Ok(n) if (1..=64).contains(&n) => p.global.nbthread = Some(n as u32),
            Ok(n) => p.diags.alert(loc, kw, format!("'nbthread' value must be between 1 and 64 (was {n})")),
            Err(_) => p.diags.alert(loc, kw, "'nbthread' expects an integer argument."),
        },
        "hard-stop-after" => {
            let wording = TimeWording::Argument;
            if let Some(v) = time_arg(&mut p.diags, line, 1, kw, TimeUnit::Ms, wording) {
                p.global.hard_stop_after = Some(ms(v));
            }
        }
        "nbproc" => p.diags.alert(
            loc,
            kw,
            "nbproc is not supported any more since HAProxy 2.5. Threads will automatically be used on multi-processor machines if available.",
        ),
        "tune.bufsize" => match crate::units::parse_size(line.arg(1)) {
            Ok(n) if n > 0 && n <= i32::MAX as u64 => p.global.tune_bufsize = Some(n as usize),
            _ => p.diags.alert(loc, kw, "'tune.bufsize' expects a positive integer argument."),
        },
        "tune.http.maxhdr" => match line.arg(1).parse::<u32>() {
            Ok(n) if (1..=32767).contains(&n) => p.global.tune_http_maxhdr = Some(n),
            _ => p.diags.alert(loc, kw, "'tune.http.maxhdr' expects a numeric value between 1 and 32767"),
        },
        "setenv" | "presetenv" => {
            if line.arg(1).is_empty() || line.len() != 3 {
                p.diags.alert(loc, kw, format!("'{kw}' expects exactly 2 arguments."));
                return;
            }
            let (n, v) = (line.arg(1).to_string(), line.arg(2).to_string());
            p.setenv(&n, &v, kw == "setenv");
        }
        "unsetenv" => {
            for n in &line.words[1..] {
                p.unsetenv(n);
            }
        }
        "expose-experimental-directives" => p.expose_experimental = true,
        "resetenv" => ignored(&mut p.diags, line, "resetenv", "the environment handed to switchyard is kept"),
        "log" => {
            if let Some(t) = log_target(&mut p.diags, line) {
                p.global.logs.push(t);
            }
        }
        "stats" => match line.arg(1) {
            "socket" => {
                if line.arg(2).is_empty() {
                    p.diags.alert(loc, kw, "'stats socket' requires an address or a path.");
                    return;
                }
                let mut level = None;
                let mut mode = None;
                let mut expose_fd_listeners = false;
                let mut i = 3;
                while i < line.len() {
                    match line.arg(i) {
                        "level" => {
                            let l = line.arg(i + 1);
                            if !matches!(l, "user" | "operator" | "admin") {
                                p.diags.alert(loc, kw, "'level' only supports 'user', 'operator', and 'admin'.");
                                return;
                            }
                            level = Some(l.to_string());
                            i += 2;
                        }
                        "mode" => {
                            match u32::from_str_radix(line.arg(i + 1), 8) {
                                Ok(m) if m <= 0o7777 => mode = Some(m),
                                _ => {
                                    p.diags.alert(loc, kw, format!("'stats socket' : 'mode' expects an octal value (got '{}').", line.arg(i + 1)));
                                    return;
                                }
                            }
                            i += 2;
                        }
                        w @ ("user" | "group" | "uid" | "gid") => {
                            ignored(&mut p.diags, line, &format!("stats socket ... {w}"), "the socket belongs to the user running switchyard");
                            i += 2;
                        }
                        "expose-fd" => {
                            // HAProxy 2.6 knows one value: the listening sockets may be
                            // taken by a new process (`-x`).
                            if line.arg(i + 1) != "listeners" {
                                p.diags.alert(loc, kw, format!("'stats socket' : ''expose-fd' only supports 'listeners' (got '{}')'", line.arg(i + 1)));
                                return;
                            }
                            expose_fd_listeners = true;
                            i += 2;
                        }
                        "process" | "thread" | "severity-output" => i += 2,
                        other => {
                            p.diags.alert(loc, kw, format!("'stats socket' : unknown keyword '{other}'."));
                            return;
                        }
                    }
                }
                p.global.stats_sockets.push(StatsSocket { address: line.arg(2).to_string(), level, mode, expose_fd_listeners, loc: loc.clone() });
            }
            "timeout" | "maxconn" | "bind-process" => {
                ignored(&mut p.diags, line, &format!("stats {}", line.arg(1)), "the runtime API uses its own limits")
            }
            other => p.diags.alert(
                loc,
                kw,
                format!("'stats' only supports 'socket', 'maxconn', 'bind-process' and 'timeout' in 'global' section (got '{other}')."),
            ),
        },
        "daemon" => ignored(&mut p.diags, line, kw, "switchyard always runs in the foreground; use a service manager"),
        "master-worker" => ignored(&mut p.diags, line, kw, "reloads are done with -sf/-st"),
        "lua-load" | "lua-load-per-thread" | "lua-prepend-path" => unsupported(&mut p.diags, line, kw, "Lua is not embedded"),
        "ssl-engine" | "ssl-mode-async" => unsupported(&mut p.diags, line, kw, "TLS is not implemented"),
        "maxconnrate" | "maxsessrate" | "maxsslrate" | "maxcomprate" => {
            unsupported(&mut p.diags, line, kw, "connection rate limits are not implemented")
        }
        // Only keywords HAProxy 2.6 knows: a typo in a `tune.` name is an error.
        k if GLOBAL_KEYWORDS.contains(&k) => {
            ignored(&mut p.diags, line, k, global_reason(k))
        }
        _ => {
            let hint = suggest::hint(kw, GLOBAL_KEYWORDS.iter().copied());
            p.diags.alert(loc, kw, format!("unknown keyword '{kw}' in 'global' section{hint}"));
        }
    }
}

const FACILITIES: &[&str] = &[
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "auth2",
    "ftp", "ntp", "audit", "alert", "cron2", "local0", "local1", "local2", "local3", "local4",
    "local5", "local6", "local7",
];

const LEVELS: &[&str] = &[
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
];

/// `log <target> [len N] [format F] [sample R:S] <facility> [level [minlevel]]`.
pub(crate) fn log_target(d: &mut Diags, line: &Line) -> Option<LogTarget> {
    let loc = &line.loc;
    let target = line.arg(1);
    if target.is_empty() {
        d.alert(
            loc,
            "log",
            "log : expects <address> and <facility> or global as arguments",
        );
        return None;
    }
    let mut format = None;
    let mut i = 2;
    loop {
        match line.arg(i) {
            "len" | "sample" => i += 2,
            "format" => {
                let f = line.arg(i + 1);
                if !matches!(
                    f,
                    "local"
                        | "rfc3164"
                        | "rfc5424"
                        | "priority"
                        | "short"
                        | "timed"
                        | "iso"
                        | "raw"
                ) {
                    d.alert(loc, "log", format!("log : unknown log format '{f}'"));
                    return None;
                }
                format = Some(f.to_string());
                i += 2;
            }
            _ => break,
        }
    }
    let facility = line.arg(i);
    if !FACILITIES.contains(&facility) {
        d.alert(
            loc,
            "log",
            format!("log : unknown log facility '{facility}'"),
        );
        return None;
    }
    // Empty words (an unset "${LEVEL}") count as absent, as in HAProxy.
    for lvl in line.words.iter().skip(i + 1).filter(|w| !w.is_empty()) {
        if !LEVELS.contains(&lvl.as_str()) {
            d.alert(
                loc,
                "log",
                format!("log : unknown optional log level '{lvl}'"),
            );
            return None;
        }
    }
    Some(LogTarget {
        target: target.to_string(),
        format,
        facility: Some(facility.to_string()),
        loc: loc.clone(),
    })
}

/// Why a global keyword switchyard accepts has no effect.
fn global_reason(k: &str) -> &'static str {
    match k {
        "chroot"
        | "user"
        | "group"
        | "uid"
        | "gid"
        | "pidfile"
        | "ulimit-n"
        | "node"
        | "description"
        | "quiet"
        | "set-dumpable"
        | "insecure-fork-wanted"
        | "insecure-setuid-wanted"
        | "cpu-map"
        | "numa-cpu-mapping"
        | "default-path"
        | "expose-experimental-directives"
        | "zero-warning"
        | "strict-limits" => "process setup is left to the command line and the service manager",
        "log-send-hostname" | "log-tag" => "not part of switchyard's log line",
        "mworker-max-reloads" => "an old process finishes its connections after -sf",
        "spread-checks" => "checks follow each server's inter/fastinter/downinter",
        "server-state-base" | "server-state-file" => "server state is not carried across restarts",
        "ca-base" | "crt-base" | "issuers-chain-path" => "TLS is not implemented",
        k if k.starts_with("ssl-")
            || k.starts_with("tune.ssl.")
            || k.starts_with("httpclient.ssl") =>
        {
            "TLS is not implemented"
        }
        k if k.starts_with("tune.") || k.starts_with("max") => {
            "switchyard uses its own buffer and queue sizes"
        }
        _ => "no effect on how switchyard handles traffic",
    }
}
