//! The command line: HAProxy-style flags, and `switchyard -c` giving HAProxy's
//! verdicts, messages and exit codes (0 valid, 1 errors, 2 no listener).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Output};

use switchyard::cli::{self, try_parse_args};

fn args(s: &str) -> Vec<String> {
    std::iter::once("switchyard".to_string())
        .chain(s.split_whitespace().map(str::to_string))
        .collect()
}

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("switchyard-cli-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
    fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const DEFAULTS: &str = "defaults\n    mode http\n    timeout connect 5s\n    timeout client 5s\n    timeout server 5s\n";

fn seed() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/seed/haproxy.cfg")
}

fn run(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("run switchyard")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn haproxy_flags_are_understood() {
    let c = try_parse_args(args("-f a.cfg -f dir -c -q")).unwrap();
    assert_eq!(c.files, [PathBuf::from("a.cfg"), PathBuf::from("dir")]);
    assert!(c.check && c.quiet);
    let c = try_parse_args(args("-f a.cfg -db -p /run/x.pid -sf 12 34")).unwrap();
    assert!(c.foreground);
    assert_eq!(c.pidfile, Some(PathBuf::from("/run/x.pid")));
    assert_eq!(c.finish_pids, [12, 34]);
    let c = try_parse_args(args("-f a.cfg -st 7 -L peer1 -d")).unwrap();
    assert_eq!(c.terminate_pids, [7]);
    assert_eq!(c.local_peer.as_deref(), Some("peer1"));
    assert!(c.debug);
    assert_eq!(try_parse_args(args("-vv")).unwrap().version, 2);
    assert_eq!(try_parse_args(args("-v")).unwrap().version, 1);
    assert!(try_parse_args(args("-f a -W")).unwrap().master_worker);
    assert!(try_parse_args(args("-f a -D")).unwrap().daemon);
    // Everything after `--` is a configuration file, as in HAProxy.
    let c = try_parse_args(args("-c -f a.cfg -- b.cfg -c.cfg")).unwrap();
    assert_eq!(
        c.files,
        [
            PathBuf::from("a.cfg"),
            PathBuf::from("b.cfg"),
            PathBuf::from("-c.cfg")
        ]
    );
}

#[test]
fn usage_errors_and_help() {
    assert!(try_parse_args(args("-c")).is_err(), "-f is required");
    assert!(try_parse_args(args("-f a -x")).is_err());
    assert!(try_parse_args(args("-f a -sf 1 -st 2")).is_err());
    let help = try_parse_args(args("--help")).unwrap_err().to_string();
    for flag in [
        "-f",
        "-c",
        "-q",
        "-v",
        "-d",
        "--foreground",
        "-D",
        "-p",
        "--finish-pids",
        "--terminate-pids",
        "-L",
    ] {
        assert!(help.contains(flag), "help lacks {flag}:\n{help}");
    }
    assert!(cli::version_text().starts_with("switchyard version "));
    assert!(cli::build_text().contains("Refused with an error"));
}

#[test]
fn directories_expand_to_sorted_cfg_files() {
    let s = Scratch::new("dir");
    for n in ["b.cfg", "a.cfg", "c.txt", ".hidden.cfg"] {
        s.file(n, "");
    }
    let c = try_parse_args(vec![
        "switchyard".into(),
        "-f".into(),
        s.0.to_string_lossy().into_owned(),
    ])
    .unwrap();
    let got = cli::config_files(&c).unwrap();
    let names: Vec<String> = got
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["a.cfg", "b.cfg"]);
    let c = try_parse_args(vec![
        "switchyard".into(),
        "-f".into(),
        s.0.join("nope.cfg").to_string_lossy().into_owned(),
    ])
    .unwrap();
    let err = cli::config_files(&c).unwrap_err();
    assert!(
        err.ends_with("nope.cfg : No such file or directory"),
        "{err}"
    );
}

#[test]
fn check_exit_codes_in_process() {
    let s = Scratch::new("rc");
    let check = |file: &Path| {
        let c = try_parse_args(vec![
            "switchyard".into(),
            "-c".into(),
            "-q".into(),
            "-f".into(),
            file.to_string_lossy().into_owned(),
        ])
        .unwrap();
        cli::check(&c)
    };
    assert_eq!(check(&seed()), ExitCode::SUCCESS);
    let broken = s.file(
        "broken.cfg",
        &format!("{DEFAULTS}frontend f\n    bind 127.0.0.1:3990\n    foobar\n"),
    );
    assert_eq!(check(&broken), ExitCode::from(1));
    let nolisten = s.file(
        "nolisten.cfg",
        &format!("{DEFAULTS}backend b\n    server s1 127.0.0.1:4000\n"),
    );
    assert_eq!(check(&nolisten), ExitCode::from(2));
    assert_eq!(check(&s.0.join("missing.cfg")), ExitCode::from(1));
    let dns = s.file(
        "dns.cfg",
        &format!(
            "{DEFAULTS}listen l\n    bind 127.0.0.1:3990\n    server s1 not-a-host.invalid:80\n"
        ),
    );
    assert_eq!(check(&dns), ExitCode::from(1));
}

#[test]
fn seed_check_prints_what_haproxy_prints() {
    let out = run(&["-c", "-f", &seed().to_string_lossy()], Path::new("."));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "Warnings were found.\nConfiguration file is valid\n"
    );
    let err = text(&out.stderr);
    let line = err
        .lines()
        .find(|l| l.contains("http-pretend-keepalive"))
        .expect("warning line");
    assert!(line.starts_with("[WARNING]  ("), "{line}");
    assert!(line.ends_with("haproxy.cfg:24] : 'http-pretend-keepalive' ignored because frontend 'all' has no backend capability."), "{line}");
    // -q: nothing at all, same exit code.
    let out = run(
        &["-c", "-q", "-f", &seed().to_string_lossy()],
        Path::new("."),
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
}

#[test]
fn errors_are_reported_in_haproxy_shape() {
    let s = Scratch::new("shape");
    s.file(
        "unknown_kw.cfg",
        &format!("{DEFAULTS}frontend f\n    bind 127.0.0.1:3990\n    foobar\n"),
    );
    let out = run(&["-c", "-f", "unknown_kw.cfg"], &s.0);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    let err = text(&out.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 3, "{err}");
    assert!(lines[0].starts_with("[ALERT]    ("), "{err}");
    assert!(lines[0].ends_with(") : config : parsing [unknown_kw.cfg:8] : unknown keyword 'foobar' in 'frontend' section"), "{err}");
    assert!(
        lines[1].ends_with(") : config : Error(s) found in configuration file : unknown_kw.cfg"),
        "{err}"
    );
    assert!(
        lines[2].ends_with(") : config : Fatal errors found in configuration."),
        "{err}"
    );
}

#[test]
fn no_listener_missing_file_and_dns() {
    let s = Scratch::new("rc2");
    s.file(
        "b.cfg",
        &format!("{DEFAULTS}backend b\n    server s1 127.0.0.1:4000\n"),
    );
    let out = run(&["-c", "-f", "b.cfg"], &s.0);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stdout),
        "Configuration file has no error but will not start (no listener) => exit(2).\n"
    );

    let out = run(&["-c", "-f", "/nonexistent.cfg"], &s.0);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains(") : config : Cannot open configuration file/directory /nonexistent.cfg : No such file or directory"), "{}", text(&out.stderr));

    s.file(
        "bad_addr.cfg",
        &format!(
            "{DEFAULTS}listen l\n    bind 127.0.0.1:3990\n    server s1 not-a-host.invalid:80\n"
        ),
    );
    let out = run(&["-c", "-f", "bad_addr.cfg"], &s.0);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains(") : config : [bad_addr.cfg:8] : 'server l/s1' : could not resolve address 'not-a-host.invalid'."), "{err}");
    assert!(
        err.contains(") : config : Failed to initialize server(s) addr."),
        "{err}"
    );
}

#[test]
fn directory_is_read_in_order_as_one_configuration() {
    let s = Scratch::new("cfgdir");
    std::fs::create_dir_all(s.0.join("conf.d")).unwrap();
    s.file("conf.d/10-defaults.cfg", DEFAULTS);
    s.file("conf.d/20-site.cfg", "frontend f\n    bind 127.0.0.1:3990\n    default_backend b\nbackend b\n    server s1 127.0.0.1:4000\n");
    s.file("conf.d/README", "not a config");
    let out = run(&["-c", "-f", "conf.d"], &s.0);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "Configuration file is valid\n");
}

#[test]
fn version_flag() {
    let out = run(&["-v"], Path::new("."));
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).starts_with("switchyard version "));
}

fn haproxy_bin() -> Option<PathBuf> {
    let from_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("haproxy"))
            .find(|p| p.is_file())
    });
    from_path.or_else(|| Some(PathBuf::from("/usr/sbin/haproxy")).filter(|p| p.is_file()))
}

/// `[ALERT] ... [file:12] ...` -> Some(12) for the first alert line.
fn first_alert_line(stderr: &str) -> Option<usize> {
    let alert = stderr.lines().find(|l| l.starts_with("[ALERT]"))?;
    let after = &alert[alert.find(']')? + 1..];
    let open = after.find('[')?;
    let close = after[open..].find(']')? + open;
    after[open + 1..close].rsplit(':').next()?.parse().ok()
}

/// `switchyard -c` and `haproxy -c` on every case of the reader's broken-config
/// catalogue: same exit code, same line for the first alert, same final verdict
/// line on stdout; except the divergences each case documents (`# haproxy:`).
#[test]
fn binary_matches_haproxy_on_catalogue() {
    let Some(haproxy) = haproxy_bin() else {
        if std::env::var("SWITCHYARD_SKIP_HAPROXY").as_deref() == Ok("1") {
            return;
        }
        panic!("haproxy not found (install the Debian package 'haproxy' or set SWITCHYARD_SKIP_HAPROXY=1)");
    };
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../switchyard-config/tests/catalogue");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".cfg"))
        .collect();
    names.sort();
    assert!(names.len() >= 30);
    let mut failures = Vec::new();
    let mut compared = 0;
    for name in &names {
        let text = std::fs::read_to_string(dir.join(name)).unwrap();
        if text.lines().any(|l| l.starts_with("# haproxy: ")) {
            continue; // a documented divergence, checked by the reader's differential test
        }
        compared += 1;
        let ours = run(&["-c", "-f", name], &dir);
        let theirs = Command::new(&haproxy)
            .args(["-c", "-f", name])
            .current_dir(&dir)
            .output()
            .unwrap();
        let (o_rc, h_rc) = (ours.status.code(), theirs.status.code());
        let (o_line, h_line) = (
            first_alert_line(&text_of(&ours.stderr)),
            first_alert_line(&text_of(&theirs.stderr)),
        );
        let last = |o: &Output| text_of(&o.stdout).lines().last().map(str::to_string);
        if (o_rc, o_line, last(&ours)) != (h_rc, h_line, last(&theirs)) {
            failures.push(format!(
                "{name}: switchyard rc={o_rc:?} line={o_line:?} stdout={:?}; haproxy rc={h_rc:?} line={h_line:?} stdout={:?}\n{}",
                last(&ours),
                last(&theirs),
                text_of(&ours.stderr)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {compared} differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn text_of(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn unresolvable_log_target_is_an_error() {
    let s = Scratch::new("logdns");
    s.file("log.cfg", &format!("global\n    log not-a-host.invalid:514 local0\n{DEFAULTS}listen l\n    bind 127.0.0.1:3990\n"));
    let out = run(&["-c", "-f", "log.cfg"], &s.0);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains(") : config : parsing [log.cfg:2] : log : invalid address: 'not-a-host.invalid' in 'not-a-host.invalid:514'"), "{err}");
    assert!(
        err.contains("Error(s) found in configuration file : log.cfg"),
        "{err}"
    );
    assert!(
        !err.contains("Failed to initialize server(s) addr."),
        "{err}"
    );
    // A resolvable name and non-network targets are fine.
    s.file("ok.cfg", &format!("global\n    log localhost:514 local0\n    log stdout format raw local0\n    log /dev/log local1\n{DEFAULTS}listen l\n    bind 127.0.0.1:3990\n"));
    let out = run(&["-c", "-f", "ok.cfg"], &s.0);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}
