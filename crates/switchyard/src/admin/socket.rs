//! The runtime API: `stats socket <path>|ipv4@<ip>:<port>|<ip>:<port>` in
//! `global`, HAProxy 2.6's CLI protocol and words.
//!
//! Protocol: a client sends one line; commands in it may be separated by `;`.
//! Each command's output is followed by an empty line, then the connection
//! closes. `prompt` switches the connection to interactive mode (a `> `
//! prompt after each answer, until `quit` or end of input), as HAProxy does.
//!
//! Commands act on the shared [`ServerState`] atomics, which every balancer
//! reads on each pick: `set server be/s state maint` takes the server out of
//! balancing for the very next request, and weight changes reach roundrobin's
//! FWRR schedule (it re-syncs with the weights on every pick).
//!
//! Only a `level admin` socket may change state; on the others (HAProxy's
//! default level is not admin) those commands answer `Permission denied`,
//! as HAProxy 2.6 does (checked in the differential test).
//!
//! The listeners are bound once at start: a reload (SIGHUP) changes what the
//! commands act on, not the `stats socket` lines themselves.
//!
//! Known gaps, answered with an explicit message rather than silently:
//! `disable|enable health` (health checks cannot be paused from here yet).
//! `srv_time_since_last_change` in `show servers state` counts from the
//! process start (switchyard does not timestamp state changes), and the
//! check columns only reflect the UP/DOWN verdict (no last check status);
//! `srv_f_forced_id` is always 0 (the model does not record whether `id` was
//! written).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use switchyard_config::Balance;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::watch;

use crate::backend::ServerState;
use crate::observability;
use crate::snapshot::{BackendRt, Snapshot};

/// Longest command line accepted (HAProxy's buffer is 16 kB as well).
const MAX_LINE: usize = 16 * 1024;

static STARTED: OnceLock<Instant> = OnceLock::new();

/// Servers without `check` that went through maintenance: HAProxy resets
/// their check health to 0 then and never restores it (only a check would),
/// which `show servers state` shows. Keyed by (backend, server) name.
static HEALTH_RESET: Mutex<BTreeSet<(String, String)>> = Mutex::new(BTreeSet::new());

fn note_maint(be: &BackendRt, i: usize) {
    if let Ok(mut set) = HEALTH_RESET.lock() {
        set.insert((be.cfg.name.clone(), be.cfg.servers[i].name.clone()));
    }
}

/// The bound `stats socket` listeners, not yet serving.
#[derive(Debug, Default)]
pub struct Listeners(Vec<(std::os::fd::OwnedFd, bool, bool)>);

enum Addr {
    Tcp(SocketAddr),
    Unix(String),
}

fn parse_addr(a: &str) -> Addr {
    let bare = a
        .strip_prefix("ipv4@")
        .or_else(|| a.strip_prefix("ipv6@"))
        .unwrap_or(a);
    if let Ok(sa) = bare.parse::<SocketAddr>() {
        return Addr::Tcp(sa);
    }
    Addr::Unix(a.strip_prefix("unix@").unwrap_or(a).to_string())
}

/// Binds every `stats socket` of `global` (a stale unix socket file is
/// replaced, as HAProxy does). Errors are reported HAProxy-style.
pub fn bind(snap: &Snapshot) -> Result<Listeners, String> {
    STARTED.get_or_init(Instant::now);
    let mut out = Listeners::default();
    for s in &snap.config.global.stats_sockets {
        let admin = s.level.as_deref() == Some("admin");
        let r = match parse_addr(&s.address) {
            Addr::Tcp(sa) => std::net::TcpListener::bind(sa).and_then(|l| {
                l.set_nonblocking(true)?;
                Ok((std::os::fd::OwnedFd::from(l), false))
            }),
            Addr::Unix(path) => {
                let _ = std::fs::remove_file(&path);
                std::os::unix::net::UnixListener::bind(&path).and_then(|l| {
                    l.set_nonblocking(true)?;
                    if let Some(m) = s.mode {
                        use std::os::unix::fs::PermissionsExt;
                        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(m))?;
                    }
                    Ok((std::os::fd::OwnedFd::from(l), true))
                })
            }
        };
        match r {
            Ok((fd, unix)) => out.0.push((fd, unix, admin)),
            Err(e) => {
                let msg = format!(
                    "Starting proxy GLOBAL: cannot bind stats socket [{}] ({e})",
                    s.address
                );
                observability::alert(&msg);
                return Err(msg);
            }
        }
    }
    Ok(out)
}

/// Serves the listeners from [`bind`] on the current tokio runtime until
/// `stop` turns true. Each command acts on the configuration running at
/// that moment ([`crate::reload::current`], `snap` before the first publish).
pub fn spawn(listeners: Listeners, snap: Arc<Snapshot>, stop: watch::Receiver<bool>) {
    for (fd, unix, admin) in listeners.0 {
        let listener = if unix {
            tokio::net::UnixListener::from_std(fd.into()).map(Listener::Unix)
        } else {
            tokio::net::TcpListener::from_std(fd.into()).map(Listener::Tcp)
        };
        let Ok(listener) = listener else { continue };
        let (snap, mut stop) = (snap.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    r = listener.accept(snap.clone(), admin) => drop(r),
                    _ = stop.changed() => break,
                }
            }
        });
    }
}

enum Listener {
    Unix(tokio::net::UnixListener),
    Tcp(tokio::net::TcpListener),
}

impl Listener {
    /// Accepts one client and starts serving it.
    async fn accept(&self, snap: Arc<Snapshot>, admin: bool) -> std::io::Result<()> {
        match self {
            Listener::Unix(l) => drop(tokio::spawn(serve(l.accept().await?.0, snap, admin))),
            Listener::Tcp(l) => drop(tokio::spawn(serve(l.accept().await?.0, snap, admin))),
        }
        Ok(())
    }
}

/// One client: a command line, or many in `prompt` mode; an idle client is
/// dropped after 10 s (HAProxy's default `stats timeout`).
async fn serve(stream: impl AsyncRead + AsyncWrite + Unpin, snap: Arc<Snapshot>, admin: bool) {
    let mut stream = BufReader::new(stream);
    let mut interactive = false;
    let mut line = String::new();
    loop {
        line.clear();
        let limit = tokio::time::Duration::from_secs(10);
        let read = tokio::time::timeout(limit, async {
            let mut r = (&mut stream).take(MAX_LINE as u64);
            r.read_line(&mut line).await
        })
        .await;
        let n = match read {
            Ok(Ok(n)) => n,
            _ => return,
        };
        if n == 0 {
            return;
        }
        let mut out = String::new();
        let mut quit = false;
        for cmd in line.trim_end_matches(['\r', '\n']).split(';') {
            let words: Vec<&str> = cmd.split_whitespace().collect();
            match words.as_slice() {
                ["quit"] => {
                    quit = true;
                    break;
                }
                ["prompt"] => {
                    // As HAProxy: an empty answer, then the prompt.
                    interactive = !interactive;
                    out.push('\n');
                    continue;
                }
                [] if interactive => continue,
                _ => {}
            }
            // The running generation after a SIGHUP reload, else the start one.
            let live = crate::reload::current();
            let answer = execute(&words, live.as_deref().unwrap_or(&snap), admin);
            out.push_str(&answer.text);
            if !answer.no_blank {
                out.push('\n');
            }
        }
        if interactive && !quit {
            out.push_str("> ");
        }
        if stream.get_mut().write_all(out.as_bytes()).await.is_err() {
            return;
        }
        if !interactive || quit {
            let _ = stream.get_mut().shutdown().await;
            return;
        }
    }
}

/// What one command prints.
pub struct Answer {
    pub text: String,
    /// HAProxy omits the closing empty line for a few errors.
    pub no_blank: bool,
}

impl From<String> for Answer {
    fn from(text: String) -> Self {
        Answer {
            text,
            no_blank: false,
        }
    }
}

impl From<&str> for Answer {
    fn from(text: &str) -> Self {
        text.to_string().into()
    }
}

/// Commands and their `help` line, in HAProxy's words.
const COMMANDS: &[(&str, &str)] = &[
    ("disable health", "disable health checks"),
    (
        "disable server (DEPRECATED)",
        "disable a server for maintenance (use 'set server' instead)",
    ),
    ("enable health", "enable health checks"),
    (
        "enable server  (DEPRECATED)",
        "enable a disabled server (use 'set server' instead)",
    ),
    ("get weight <bk>/<srv>", "report a server's current weight"),
    ("help [<command>]", "list matching or all commands"),
    ("prompt", "toggle interactive mode with prompt"),
    ("quit", "disconnect"),
    (
        "set server <bk>/<srv> [opts]",
        "change a server's state or weight",
    ),
    (
        "set weight <bk>/<srv> (DEPRECATED)",
        "change a server's weight (use 'set server' instead)",
    ),
    (
        "show backend",
        "list backends in the current running config",
    ),
    (
        "show info",
        "report information about the running process [json|typed]",
    ),
    (
        "show servers state [<backend>]",
        "dump volatile server information (all or for a single backend)",
    ),
    (
        "show stat",
        "report counters for each proxy and server [{json|typed}]",
    ),
];

fn help_line(out: &mut String, cmd: &str, desc: &str) {
    let _ = writeln!(out, "  {cmd:<40}: {desc}");
}

fn help() -> String {
    let mut out = String::from("The following commands are valid at this level:\n");
    for (c, d) in COMMANDS {
        help_line(&mut out, c, d);
    }
    out
}

/// HAProxy's answer to an unknown command: the commands sharing its first
/// word, then the always-available ones.
fn unknown(words: &[&str]) -> String {
    let mut out =
        String::from("Unknown command, but maybe one of the following ones is a better match:\n");
    let first = words.first().copied().unwrap_or("");
    for (c, d) in COMMANDS {
        if !first.is_empty() && c.split(' ').next() == Some(first) {
            help_line(&mut out, c, d);
        }
    }
    for (c, d) in COMMANDS
        .iter()
        .filter(|(c, _)| matches!(*c, "help [<command>]" | "prompt" | "quit"))
    {
        help_line(&mut out, c, d);
    }
    out
}

/// Runs one command (already split into words) and returns what it prints.
pub fn execute(words: &[&str], snap: &Snapshot, admin: bool) -> Answer {
    let mutating = matches!(words, ["disable" | "enable" | "set", ..]);
    if mutating && !admin {
        return "Permission denied\n".into();
    }
    match words {
        ["help", ..] => help().into(),
        ["show", "info", ..] => info(snap).into(),
        ["show", "stat", ..] => super::stats::csv(snap).into(),
        ["show", "backend"] => {
            let mut out = String::from("# name\n");
            for be in &snap.backends {
                let _ = writeln!(out, "{}", be.cfg.name);
            }
            out.into()
        }
        ["show", "servers", "state"] => servers_state(snap, None),
        ["show", "servers", "state", be] => servers_state(snap, Some(be)),
        ["get", "weight", rest @ ..] => with_server(rest.first(), snap, |be, i, s| {
            format!(
                "{} (initial {})\n",
                s.weight.load(Ordering::Relaxed),
                be.cfg.servers[i].weight
            )
            .into()
        }),
        ["set", "weight", target, rest @ ..] => with_server(Some(target), snap, |be, i, s| {
            set_weight(be, i, s, rest.first().copied())
        }),
        ["set", "weight"] => "Require 'backend/server'.\n".into(),
        // As in HAProxy, the deprecated forms are `state maint` and `state ready`.
        ["disable", "server", rest @ ..] => {
            with_server(rest.first(), snap, |be, i, _| set_admin(be, i, true, false))
        }
        ["enable", "server", rest @ ..] => with_server(rest.first(), snap, |be, i, _| {
            set_admin(be, i, false, false)
        }),
        ["disable" | "enable", "health", rest @ ..] => {
            with_server(rest.first(), snap, |_, _, _| {
                "'disable|enable health' is not supported by switchyard (health checks cannot be paused at runtime yet).\n".into()
            })
        }
        ["set", "server", target, rest @ ..] => {
            with_server(Some(target), snap, |be, i, s| set_server(be, i, s, rest))
        }
        ["set", "server"] => "Require 'backend/server'.\n".into(),
        _ => unknown(words).into(),
    }
}

/// Resolves `<be>/<srv>` with HAProxy's error words.
fn with_server(
    target: Option<&&str>,
    snap: &Snapshot,
    f: impl FnOnce(&BackendRt, usize, &ServerState) -> Answer,
) -> Answer {
    let Some((be, srv)) = target.and_then(|t| t.split_once('/')) else {
        return "Require 'backend/server'.\n".into();
    };
    let Some(be) = snap.backends.iter().find(|b| b.cfg.name == be) else {
        return "No such backend.\n".into();
    };
    let Some(i) = be.cfg.servers.iter().position(|s| s.name == srv) else {
        return "No such server.\n".into();
    };
    f(be, i, &be.servers[i])
}

fn set_server(be: &BackendRt, i: usize, s: &ServerState, args: &[&str]) -> Answer {
    match args {
        ["state", st, ..] if matches!(*st, "ready" | "drain" | "maint") => {
            let (maint, drain) = match *st {
                "ready" => (false, false),
                "drain" => (false, true),
                _ => (true, false),
            };
            set_admin(be, i, maint, drain)
        }
        ["state", ..] => {
            "'set server <srv> state' expects 'ready', 'drain' and 'maint'.\n".into()
        }
        ["weight", rest @ ..] => set_weight(be, i, s, rest.first().copied()),
        _ => "usage: set server <backend>/<server> addr | agent | agent-addr | agent-port | agent-send | check-addr | check-port | fqdn | health | ssl | state | weight\n".into(),
    }
}

/// Forced maintenance and drain, HAProxy's `srv_adm_set_ready/drain/maint`
/// (drain and maintenance exclude each other), with HAProxy's messages on
/// stderr for each transition. Requests waiting in the `maxconn` queues are
/// woken so that they see the change.
fn set_admin(be: &BackendRt, i: usize, maint: bool, drain: bool) -> Answer {
    let s = &be.servers[i];
    let was = (
        s.maint.load(Ordering::Acquire),
        s.drain.load(Ordering::Acquire),
    );
    if maint {
        note_maint(be, i);
    }
    s.maint.store(maint, Ordering::Release);
    s.drain.store(drain, Ordering::Release);
    s.touch();
    be.waitlist.wake();
    let name = format!("{}/{}", be.cfg.name, be.cfg.servers[i].name);
    let (active, backup) = {
        let usable = be.servers.iter().filter(|s| usable(s));
        usable.fold(
            (0, 0),
            |(a, b), s| if s.backup { (a, b + 1) } else { (a + 1, b) },
        )
    };
    let none_left = active + backup == 0;
    match (was, (maint, drain)) {
        ((false, _), (true, _)) => {
            let sessions = s.inflight.load(Ordering::Relaxed);
            let queued = s.queued.load(Ordering::Relaxed);
            observability::warning(&format!("Server {name} is going DOWN for maintenance. {active} active and {backup} backup servers left. {sessions} sessions active, 0 requeued, {queued} remaining in queue."));
        }
        ((true, _), (false, false)) => observability::warning(&format!(
            "Server {name} is UP/READY (leaving forced maintenance)."
        )),
        ((true, _), (false, true)) => observability::warning(&format!(
            "Server {name} is UP/DRAIN (leaving forced maintenance)."
        )),
        ((false, false), (false, true)) => observability::warning(&format!("Server {name} enters drain state. {active} active and {backup} backup servers online. 0 sessions requeued, 0 total in queue.")),
        ((false, true), (false, false)) => {
            observability::warning(&format!("Server {name} is UP (leaving forced drain)."))
        }
        _ => return "".into(),
    }
    if none_left && (maint || drain) {
        observability::alert(&format!(
            "backend '{}' has no server available!",
            be.cfg.name
        ));
    }
    "".into()
}

/// UP (or unchecked), not in maintenance or drain.
fn usable(s: &ServerState) -> bool {
    s.running() && !s.drain.load(Ordering::Relaxed)
}

/// `set weight` / `set server ... weight`: absolute `0..=256` or a percentage of
/// the initial weight (HAProxy rounds down: 50% of 1 is 0). Static algorithms
/// (static-rr and the map-based hashes) only take 0% or 100%, as in HAProxy.
fn set_weight(be: &BackendRt, i: usize, s: &ServerState, arg: Option<&str>) -> Answer {
    let Some(arg) = arg else {
        return "Require <weight> or <weight%>.\n".into();
    };
    let initial = be.cfg.servers[i].weight;
    let new = if let Some(pct) = arg.strip_suffix('%') {
        match pct.parse::<i64>() {
            Ok(p) if p >= 0 => (i64::from(initial) * p / 100).min(256),
            Ok(_) => return "Relative weight must be positive.\n".into(),
            Err(_) => return garbage(),
        }
    } else {
        match arg.parse::<i64>() {
            Ok(w) if (0..=256).contains(&w) => w,
            Ok(_) => return "Absolute weight can only be between 0 and 256 inclusive.\n".into(),
            Err(_) if arg.starts_with('-') => {
                return "Absolute weight can only be between 0 and 256 inclusive.\n".into()
            }
            Err(_) => return garbage(),
        }
    } as u32;
    let static_algo = matches!(
        be.cfg.balance,
        Balance::StaticRr
            | Balance::Source
            | Balance::Uri { .. }
            | Balance::UrlParam { .. }
            | Balance::Hdr { .. }
    );
    if static_algo && new != 0 && new != initial {
        return "Backend is using a static LB algorithm and only accepts weights '0%' and '100%'.\n"
            .into();
    }
    s.weight.store(new, Ordering::Release);
    s.touch();
    be.waitlist.wake();
    "".into()
}

/// HAProxy prints this one without the closing empty line.
fn garbage() -> Answer {
    Answer {
        text: "Empty weight string empty or preceded by garbage\n".into(),
        no_blank: true,
    }
}

fn uptime() -> u64 {
    STARTED.get().map_or(0, |t| t.elapsed().as_secs())
}

fn info(snap: &Snapshot) -> String {
    let up = uptime();
    let sum = |f: &dyn Fn(&crate::observability::Counters) -> u64| -> u64 {
        snap.frontends.iter().map(|fe| f(&fe.counters)).sum()
    };
    let mut out = String::with_capacity(512);
    let _ = writeln!(out, "Name: switchyard");
    let _ = writeln!(out, "Version: {}", env!("CARGO_PKG_VERSION"));
    let _ = writeln!(out, "Nbthread: {}", crate::runtime::thread_count(snap));
    let _ = writeln!(out, "Nbproc: 1");
    let _ = writeln!(out, "Process_num: 1");
    let _ = writeln!(out, "Pid: {}", std::process::id());
    let _ = writeln!(
        out,
        "Uptime: {}d {}h{:02}m{:02}s",
        up / 86400,
        up / 3600 % 24,
        up / 60 % 60,
        up % 60
    );
    let _ = writeln!(out, "Uptime_sec: {up}");
    if let Some(m) = snap.config.global.maxconn {
        let _ = writeln!(out, "Maxconn: {m}");
    }
    let _ = writeln!(
        out,
        "CurrConns: {}",
        observability::ACTIVE_CONNS.load(Ordering::Relaxed)
    );
    let _ = writeln!(
        out,
        "CumConns: {}",
        sum(&|c| c.connections.load(Ordering::Relaxed))
    );
    let _ = writeln!(
        out,
        "CumReq: {}",
        sum(&|c| c.requests.load(Ordering::Relaxed))
    );
    let _ = writeln!(out, "Stopping: 0");
    out
}

/// `show servers state`: HAProxy's version-1 format.
fn servers_state(snap: &Snapshot, only: Option<&str>) -> Answer {
    let bes: Vec<(usize, &BackendRt)> = snap
        .backends
        .iter()
        .enumerate()
        .filter(|(_, b)| only.is_none_or(|n| b.cfg.name == n))
        .collect();
    if only.is_some() && bes.is_empty() {
        return "Can't find backend.\n".into();
    }
    let mut out = String::from("1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port\n");
    let since = uptime();
    let reset = HEALTH_RESET.lock().map(|s| s.clone()).unwrap_or_default();
    for (bi, be) in bes {
        // The same proxy id as the stats CSV's `iid`.
        let be_id = snap.frontends.len() + bi + 1;
        for (i, s) in be.servers.iter().enumerate() {
            let cfg = &be.cfg.servers[i];
            let addr = be.addrs[i];
            let op = if s.running() { 2 } else { 0 };
            let mut adm = 0;
            if s.maint.load(Ordering::Relaxed) {
                adm |= if cfg.disabled { 0x04 } else { 0x01 };
            }
            if s.drain.load(Ordering::Relaxed) {
                adm |= 0x08;
            }
            // Check columns: status/result/health/state. Without `check`,
            // HAProxy prints 1 0 <rise> 0, the health being reset to 0 for
            // good by maintenance; with `check` we only know the verdict.
            let (cs, cr, ch, cst) = if cfg.check {
                if s.up.load(Ordering::Relaxed) {
                    (0, 3, cfg.rise + cfg.fall - 1, 6)
                } else {
                    (0, 2, 0, 6)
                }
            } else if s.maint.load(Ordering::Relaxed)
                || cfg.disabled
                || reset.contains(&(be.cfg.name.clone(), cfg.name.clone()))
            {
                (1, 0, 0, 0)
            } else {
                (1, 0, cfg.rise, 0)
            };
            let _ = writeln!(
                out,
                "{be_id} {} {} {} {} {op} {adm} {} {} {since} {cs} {cr} {ch} {cst} 0 0 0 - {} - 0 {} - - 0",
                be.cfg.name,
                s.id,
                cfg.name,
                addr.ip(),
                s.weight.load(Ordering::Relaxed),
                cfg.weight,
                addr.port(),
                cfg.check_port.unwrap_or(0),
            );
        }
    }
    out.into()
}
