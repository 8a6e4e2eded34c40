//! The command line, with HAProxy's flags and conventions.
//!
//! ```text
//! switchyard -f FILE|DIR [-f ...] [-c] [-q] [-d|-db] [-p PIDFILE] [-x SOCKET] [-sf PID...|-st PID...] [-L NAME] [-- FILE...]
//! switchyard -v | -vv
//! ```
//!
//! `-c` checks the configuration like `haproxy -c`: exit 0 when valid, 1 on
//! errors, 2 when valid but nothing would listen; messages in HAProxy's shape on
//! stderr, the verdict on stdout, `-q` silences both. HAProxy's multi-letter
//! short flags (`-db`, `-sf`, `-st`, `-Ws`) are rewritten before clap sees them.
//!
//! `-sf`/`-st` PIDs and `-x SOCKET` also say where the listening sockets come
//! from: [`parse_args`] records them for [`crate::handover`], which takes the
//! old process's sockets instead of binding new ones (`-x`: through the old
//! process's `stats socket ... expose-fd listeners`, as HAProxy does).

use std::net::ToSocketAddrs;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgAction, Parser};
use switchyard_config::{Config, Diagnostic, Level, Shape, Source};

/// switchyard: a load balancer that runs HAProxy 2.6 configuration files.
#[derive(Debug, Clone, Default, Parser)]
#[command(
    name = "switchyard",
    disable_version_flag = true,
    override_usage = "switchyard -f <cfgfile|cfgdir> [-f ...] [-c] [-q] [-d|-db] [-p <pidfile>] [-x <socket>] [-sf <pid>...|-st <pid>...]\n       switchyard -v | -vv",
    after_help = "Exit codes with -c: 0 valid, 1 errors, 2 valid but nothing to listen on.\nHAProxy's spellings -db, -sf and -st are accepted as written; arguments after -- are configuration files."
)]
pub struct Cli {
    /// Configuration file, or directory whose *.cfg files are read in lexical
    /// order. Repeatable; files are read in the order given, as one configuration.
    #[arg(short = 'f', value_name = "CFGFILE|CFGDIR", action = ArgAction::Append, allow_hyphen_values = true)]
    pub files: Vec<PathBuf>,

    /// Check the configuration and exit (0 valid, 1 errors, 2 valid but no listener).
    #[arg(short = 'c')]
    pub check: bool,

    /// Quiet: print nothing (exit code only) during startup and -c.
    #[arg(short = 'q')]
    pub quiet: bool,

    /// Print the version and exit; -vv adds build details.
    #[arg(short = 'v', action = ArgAction::Count)]
    pub version: u8,

    /// Debug mode: stay in the foreground and log every request on stderr.
    #[arg(short = 'd')]
    pub debug: bool,

    /// Foreground (HAProxy's -db): switchyard never daemonizes, so this is the default.
    #[arg(long = "foreground")]
    pub foreground: bool,

    /// Daemon mode: refused. switchyard stays in the foreground; use a service manager.
    #[arg(short = 'D')]
    pub daemon: bool,

    /// Master-worker mode (HAProxy's -W/-Ws): refused, reload with -sf instead.
    #[arg(long = "master-worker", hide = true)]
    pub master_worker: bool,

    /// Write the process id to this file once listening.
    #[arg(short = 'p', value_name = "PIDFILE")]
    pub pidfile: Option<PathBuf>,

    /// (-sf) After binding, ask these processes to finish their work and exit (SIGUSR1).
    #[arg(long = "finish-pids", value_name = "PID", num_args = 1.., conflicts_with = "terminate_pids")]
    pub finish_pids: Vec<u32>,

    /// (-st) After binding, stop these processes immediately (SIGTERM).
    #[arg(long = "terminate-pids", value_name = "PID", num_args = 1..)]
    pub terminate_pids: Vec<u32>,

    /// Take the old process's listening sockets through its stats socket (which
    /// needs `expose-fd listeners`); failing is fatal. /dev/null: bind new sockets.
    /// Without -x, the -sf/-st processes are asked directly.
    #[arg(short = 'x', value_name = "SOCKET")]
    pub old_socket: Option<PathBuf>,

    /// Local peer name (accepted for compatibility; sets HAPROXY_LOCALPEER).
    #[arg(short = 'L', value_name = "NAME")]
    pub local_peer: Option<String>,
}

/// Rewrites HAProxy's multi-letter short flags into long ones clap understands.
fn rewrite(arg: String) -> String {
    match arg.as_str() {
        "-db" => "--foreground".into(),
        "-sf" => "--finish-pids".into(),
        "-st" => "--terminate-pids".into(),
        "-W" | "-Ws" => "--master-worker".into(),
        _ => arg,
    }
}

/// Parses the command line (program name first, as `std::env::args()` gives it).
/// Prints help or an error and exits like HAProxy (help: 0, usage error: 1).
/// Records where the listening sockets come from ([`crate::handover::set_sources`]).
pub fn parse_args(args: impl IntoIterator<Item = String>) -> Cli {
    match try_parse_args(args) {
        Ok(cli) => {
            crate::handover::set_sources(handover_sources(&cli));
            cli
        }
        Err(e) => {
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    }
}

/// The processes (`-sf`, then `-st`) and stats socket (`-x`) to take the
/// listening sockets from.
pub fn handover_sources(cli: &Cli) -> crate::handover::Sources {
    crate::handover::Sources {
        pids: cli
            .finish_pids
            .iter()
            .chain(&cli.terminate_pids)
            .copied()
            .collect(),
        stats_socket: cli.old_socket.clone(),
    }
}

/// Like [`parse_args`] without exiting; also checks that `-f` is given unless `-v`.
pub fn try_parse_args(args: impl IntoIterator<Item = String>) -> Result<Cli, clap::Error> {
    // As in HAProxy, every argument after `--` is a configuration file.
    let mut out: Vec<String> = Vec::new();
    let mut files_only = false;
    for (i, a) in args.into_iter().enumerate() {
        if i == 0 {
            out.push(a);
        } else if files_only {
            out.push("-f".into());
            out.push(a);
        } else if a == "--" {
            files_only = true;
        } else {
            out.push(rewrite(a));
        }
    }
    let args = out;
    let cli = Cli::try_parse_from(args)?;
    if cli.files.is_empty() && cli.version == 0 {
        let mut cmd = <Cli as clap::CommandFactory>::command();
        return Err(cmd.error(
            clap::error::ErrorKind::MissingRequiredArgument,
            "no configuration file given: use -f <cfgfile|cfgdir>",
        ));
    }
    Ok(cli)
}

/// `-v` text.
pub fn version_text() -> String {
    format!(
        "switchyard version {} - reads HAProxy {} configuration files\n",
        env!("CARGO_PKG_VERSION"),
        switchyard_config::HAPROXY_VERSION
    )
}

/// The extra `-vv` lines (printed after [`version_text`]): what this build supports.
pub fn build_text() -> String {
    let mut s = String::new();
    s.push_str(
            "Build options: Rust, one tokio runtime per worker thread, HTTP/1.1, no TLS, no Lua\n\
             Supported: defaults/frontend/backend/listen, binds over IPv4/IPv6, http/tcp modes, ACLs,\n\
             use_backend/default_backend, balance roundrobin/static-rr/leastconn/first/source/random/uri/url_param/hdr,\n\
             cookie persistence, health checks (tcp, httpchk), retries/redispatch, forwardfor, http-request/response\n\
             header rules, redirects, stats page and socket\n\
             Refused with an error: stick tables, tcp-request/tcp-response, TLS, PROXY protocol, Lua, unix sockets\n",
    );
    s
}

/// A configuration read from disk.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    /// The files read, in order (directories expanded).
    pub files: Vec<PathBuf>,
    /// Whether any warning was printed (or would have been, with `-q`).
    pub warnings: bool,
}

/// Prefix of HAProxy's stderr lines for this process: `[ALERT]    (pid) : `.
fn line(level: Level, text: &str) -> String {
    format!("{:<11}({}) : {text}", level.tag(), std::process::id())
}

/// `strerror()`-style text (no "(os error N)" suffix).
fn os_error_text(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Expands `-f` arguments: a directory gives its `*.cfg` files in lexical order.
fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for p in paths {
        match std::fs::metadata(p) {
            Ok(m) if m.is_dir() => {
                let rd = std::fs::read_dir(p).map_err(|e| {
                    format!(
                        "config : Cannot open configuration file/directory {} : {}",
                        p.display(),
                        os_error_text(&e)
                    )
                })?;
                let mut names: Vec<String> = rd
                    .filter_map(|e| e.ok())
                    .filter(|e| e.file_type().map(|t| !t.is_dir()).unwrap_or(false))
                    .filter_map(|e| e.file_name().into_string().ok())
                    .filter(|n| n.ends_with(".cfg") && !n.starts_with('.'))
                    .collect();
                names.sort();
                let dir = p.to_string_lossy();
                out.extend(
                    names
                        .into_iter()
                        .map(|n| PathBuf::from(format!("{dir}/{n}"))),
                );
            }
            Ok(_) => out.push(p.clone()),
            Err(e) => {
                return Err(format!(
                    "config : Cannot open configuration file/directory {} : {}",
                    p.display(),
                    os_error_text(&e)
                ))
            }
        }
    }
    Ok(out)
}

/// Resolves server and log target names as HAProxy does at startup (the
/// reader does no DNS). Returns the alerts for names that do not resolve.
fn resolve_names(config: &Config) -> Vec<Diagnostic> {
    let resolves = |host: &str, port: u16| {
        (host, port)
            .to_socket_addrs()
            .map(|mut a| a.next().is_some())
            .unwrap_or(false)
    };
    let alert =
        |loc: &switchyard_config::Location, kw: &str, message: String, shape: Shape| Diagnostic {
            level: Level::Alert,
            file: Some(loc.file.clone()),
            line: Some(loc.line),
            keyword: Some(kw.into()),
            message,
            shape,
        };
    let mut out = Vec::new();
    for b in &config.backends {
        for s in &b.servers {
            if s.host.parse::<std::net::IpAddr>().is_err()
                && !resolves(&s.host, s.port.unwrap_or(0))
            {
                let msg = format!(
                    "'server {}/{}' : could not resolve address '{}'.",
                    b.name, s.name, s.host
                );
                out.push(alert(&s.loc, "server", msg, Shape::Bracket));
            }
        }
    }
    let logs = config
        .global
        .logs
        .iter()
        .chain(config.frontends.iter().flat_map(|f| &f.logs));
    let mut seen = std::collections::HashSet::new();
    for t in logs {
        // Network targets only: `stdout`, `stderr`, paths and rings need no DNS.
        let target = t
            .target
            .strip_prefix("udp@")
            .or_else(|| t.target.strip_prefix("udp4@"))
            .unwrap_or(&t.target);
        let Some((host, port)) = target.rsplit_once(':') else {
            continue;
        };
        if host.is_empty()
            || host.contains(['@', '/', '['])
            || host.parse::<std::net::IpAddr>().is_ok()
        {
            continue;
        }
        if !seen.insert((t.loc.file.clone(), t.loc.line)) {
            continue; // `log global` copies the same line into every proxy
        }
        if !resolves(host, port.parse().unwrap_or(514)) {
            let msg = format!("log : invalid address: '{host}' in '{}'", t.target);
            out.push(alert(&t.loc, "log", msg, Shape::Parsing));
        }
    }
    out
}

/// Reads and checks the configuration named by `-f`, printing every diagnostic
/// on stderr in HAProxy's shape (unless `-q`). On failure returns the exit code.
pub fn load(cli: &Cli) -> Result<Loaded, ExitCode> {
    let quiet = cli.quiet;
    let say = |s: String| {
        if !quiet {
            eprintln!("{s}");
        }
    };
    if cli.daemon {
        say(line(Level::Alert, "-D (daemon mode) is not supported: switchyard stays in the foreground; run it under a service manager."));
        return Err(ExitCode::from(1));
    }
    if cli.master_worker {
        say(line(
            Level::Alert,
            "-W/-Ws (master-worker mode) is not supported: reload with -sf <pid>.",
        ));
        return Err(ExitCode::from(1));
    }
    let files = expand(&cli.files).map_err(|m| {
        say(line(Level::Alert, &m));
        ExitCode::from(1)
    })?;
    let mut texts = Vec::new();
    for f in &files {
        match std::fs::read(f) {
            Ok(bytes) => texts.push((
                f.to_string_lossy().into_owned(),
                String::from_utf8_lossy(&bytes).into_owned(),
            )),
            Err(e) => {
                say(line(
                    Level::Alert,
                    &format!(
                        "config : Cannot open configuration file/directory {} : {}",
                        f.display(),
                        os_error_text(&e)
                    ),
                ));
                return Err(ExitCode::from(1));
            }
        }
    }
    let cfgfiles = texts
        .iter()
        .map(|(n, _)| n.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let localpeer = cli
        .local_peer
        .clone()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default();
    let env = |name: &str| -> Option<String> {
        match name {
            "HAPROXY_CFGFILES" => Some(cfgfiles.clone()),
            "HAPROXY_LOCALPEER" => Some(localpeer.clone()),
            _ => std::env::var(name).ok(),
        }
    };
    let sources: Vec<Source<'_>> = texts
        .iter()
        .map(|(n, t)| Source { name: n, text: t })
        .collect();
    let mut outcome = switchyard_config::parse(&sources, &env);
    let unresolved = outcome
        .config
        .as_ref()
        .map(resolve_names)
        .unwrap_or_default();
    if !unresolved.is_empty() {
        outcome.config = None;
        let servers = unresolved
            .iter()
            .any(|d| d.keyword.as_deref() == Some("server"));
        for d in &unresolved {
            // Log targets are checked while parsing in HAProxy: name the file.
            if let (Some("log"), Some(f)) = (d.keyword.as_deref(), &d.file) {
                if !outcome.files_with_errors.contains(f) {
                    outcome.files_with_errors.push(f.clone());
                }
            }
        }
        outcome.diagnostics.extend(unresolved);
        if servers {
            outcome.diagnostics.push(Diagnostic {
                level: Level::Alert,
                file: None,
                line: None,
                keyword: None,
                message: "Failed to initialize server(s) addr.".into(),
                shape: Shape::Unlocated,
            });
        }
    }
    for d in &outcome.diagnostics {
        say(d.render(std::process::id()));
    }
    let warnings = outcome.has_warnings();
    match outcome.config {
        Some(config) => Ok(Loaded {
            config,
            files,
            warnings,
        }),
        None => {
            for f in &outcome.files_with_errors {
                say(line(
                    Level::Alert,
                    &format!("config : Error(s) found in configuration file : {f}"),
                ));
            }
            say(line(
                Level::Alert,
                "config : Fatal errors found in configuration.",
            ));
            Err(ExitCode::from(1))
        }
    }
}

/// Number of listening sockets the configuration asks for.
pub fn listener_count(config: &Config) -> usize {
    config
        .frontends
        .iter()
        .flat_map(|f| &f.binds)
        .map(|b| b.addrs.len())
        .sum()
}

/// `switchyard -c`: exactly HAProxy's verdicts and exit codes.
pub fn check(cli: &Cli) -> ExitCode {
    let loaded = match load(cli) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let out = |s: &str| {
        if !cli.quiet {
            println!("{s}");
        }
    };
    if loaded.warnings {
        out("Warnings were found.");
    }
    if listener_count(&loaded.config) == 0 {
        out("Configuration file has no error but will not start (no listener) => exit(2).");
        return ExitCode::from(2);
    }
    out("Configuration file is valid");
    ExitCode::SUCCESS
}

/// The files a `-f` list expands to (for reloads and messages).
pub fn config_files(cli: &Cli) -> Result<Vec<PathBuf>, String> {
    expand(&cli.files)
}
