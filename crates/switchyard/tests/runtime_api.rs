//! The runtime API (`stats socket`): HAProxy's commands and words, acting on
//! routing immediately; a differential against HAProxy's own answers.

mod support;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use support::*;

fn sock_path(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("sy-cli-{tag}-{}.sock", std::process::id()))
}

fn read_all(mut s: impl Read) -> String {
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    String::from_utf8(out).unwrap()
}

/// One command line over the unix socket; the whole answer (until close).
fn cli(path: &Path, line: &str) -> String {
    let mut s = UnixStream::connect(path).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(format!("{line}\n").as_bytes()).unwrap();
    read_all(s)
}

fn config(port: u16, socket: &str, servers: &str) -> String {
    format!(
        "global\n    stats socket {socket} level admin\n\
         defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n    default_backend be\n\
         backend be\n    balance roundrobin\n{servers}"
    )
}

fn served_by(port: u16, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| {
            let r = get(port, "/", "");
            assert_eq!(r.status, 200);
            r.text()
        })
        .collect()
}

fn count(names: &[String], who: &str) -> usize {
    names.iter().filter(|n| n.as_str() == who).count()
}

#[test]
fn commands_change_routing_at_once() {
    let (s1, s2) = (Backend::start("s1"), Backend::start("s2"));
    let port = free_port();
    let path = sock_path("route");
    let servers = format!("    server s1 {}\n    server s2 {}\n", s1.addr(), s2.addr());
    let cfg = config(port, path.to_str().unwrap(), &servers)
        .replace(" level admin", " mode 600 level admin");
    let p = Proxy::start(&cfg, port);
    // The mode is set after the socket is bound (bind, listen, chmod), so it
    // is checked once the socket has answered a command, not as soon as it
    // accepts.
    assert_eq!(cli(&path, "get weight be/s1"), "1 (initial 1)\n\n");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777,
        0o600
    );
    // The messages are written before the command's answer; the limit only
    // bounds the wait for the thread that collects stderr.
    let said = |m: &str| {
        assert!(
            p.wait_stderr(m, Duration::from_secs(10)).is_some(),
            "{m:?} not in {:?}",
            p.stderr_lines()
        )
    };

    assert_eq!(cli(&path, "set server be/s1 state maint"), "\n");
    said("Server be/s1 is going DOWN for maintenance. 1 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.");
    let names = served_by(port, 4);
    assert_eq!(count(&names, "s2"), 4, "{names:?}");
    let state = cli(&path, "show servers state be");
    let s1_line: Vec<&str> = state
        .lines()
        .find(|l| l.split(' ').nth(3) == Some("s1"))
        .unwrap()
        .split(' ')
        .collect();
    assert_eq!(
        (s1_line[5], s1_line[6]),
        ("0", "1"),
        "stopped, forced maintenance: {state}"
    );

    // Ready again with weight 3: FWRR gives 3 of every 4 picks to s1.
    assert_eq!(
        cli(&path, "set server be/s1 state ready; set weight be/s1 3"),
        "\n\n"
    );
    said("Server be/s1 is UP/READY (leaving forced maintenance).");
    assert_eq!(cli(&path, "get weight be/s1"), "3 (initial 1)\n\n");
    let names = served_by(port, 8);
    assert_eq!(
        (count(&names, "s1"), count(&names, "s2")),
        (6, 2),
        "{names:?}"
    );

    // Drain: no new balanced traffic; percentages are of the initial weight.
    assert_eq!(cli(&path, "set server be/s2 state drain"), "\n");
    said("Server be/s2 enters drain state. 1 active and 0 backup servers online. 0 sessions requeued, 0 total in queue.");
    assert_eq!(count(&served_by(port, 3), "s1"), 3);
    assert_eq!(cli(&path, "set server be/s2 state ready"), "\n");
    assert_eq!(cli(&path, "set server be/s1 weight 0%"), "\n");
    assert_eq!(count(&served_by(port, 3), "s2"), 3, "weight 0: out");
    assert_eq!(cli(&path, "get weight be/s1"), "0 (initial 1)\n\n");
    assert_eq!(
        cli(&path, "disable server be/s2; enable server be/s2"),
        "\n\n"
    );
    assert_eq!(cli(&path, "set server be/s1 weight 100%"), "\n");
    let names = served_by(port, 4);
    assert_eq!((count(&names, "s1"), count(&names, "s2")), (2, 2));

    // Other commands.
    assert_eq!(cli(&path, "show backend"), "# name\nbe\n\n");
    let stat = cli(&path, "show stat");
    assert!(stat.starts_with("# pxname,svname,qcur,qmax,"), "{stat}");
    assert!(stat.lines().any(|l| l.starts_with("be,s1,")), "{stat}");
    let info = cli(&path, "show info");
    assert!(info.starts_with("Name: switchyard\n"), "{info}");
    assert!(info.ends_with("\n\n"));
    assert!(cli(&path, "help").starts_with("The following commands are valid at this level:\n"));
    let unknown = cli(&path, "frobnicate");
    assert!(
        unknown.starts_with(
            "Unknown command, but maybe one of the following ones is a better match:\n"
        ),
        "{unknown}"
    );
    assert!(unknown.contains("  quit                                    : disconnect\n"));
    let _ = std::fs::remove_file(&path);
}

#[test]
fn tcp_socket_prompt_mode_and_default_level() {
    let s1 = Backend::start("s1");
    let port = free_port();
    let cli_port = free_port();
    let servers = format!("    server s1 {}\n", s1.addr());
    // Without `level admin`, HAProxy refuses changes.
    let cfg =
        config(port, &format!("ipv4@127.0.0.1:{cli_port}"), &servers).replace(" level admin", "");
    let _p = Proxy::start(&cfg, port);
    // The runtime API listens once the frontends do, not before: wait for it.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut s = loop {
        match std::net::TcpStream::connect(("127.0.0.1", cli_port)) {
            Ok(s) => break s,
            Err(e) => assert!(std::time::Instant::now() < deadline, "CLI port: {e}"),
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut expect = |send: &str, want: &str| {
        s.write_all(send.as_bytes()).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !got.ends_with(want.as_bytes()) && got.len() < want.len() + 4096 {
            let n = s.read(&mut buf).unwrap();
            assert!(
                n > 0,
                "closed early; got {:?}",
                String::from_utf8_lossy(&got)
            );
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(String::from_utf8_lossy(&got), want);
    };
    expect("prompt\n", "\n> ");
    expect("get weight be/s1\n", "1 (initial 1)\n\n> ");
    expect("get weight be/nope\n", "No such server.\n\n> ");
    expect("set server be/s1 state maint\n", "Permission denied\n\n> ");
    expect("quit\n", "");
    let mut rest = Vec::new();
    assert_eq!(s.read_to_end(&mut rest).unwrap(), 0, "closed after quit");
    assert_eq!(served_by(port, 1), ["s1"], "still in service");
}

/// The same commands, in the same order, through HAProxy's socket and ours.
#[test]
fn answers_match_haproxy() {
    if !haproxy_available() {
        return;
    }
    let (s1, s2) = (Backend::start("s1"), Backend::start("s2"));
    let servers = format!(
        "    server s1 {} weight 3\n    server s2 {}\n",
        s1.addr(),
        s2.addr()
    );
    let commands = [
        "get weight be/s1",
        "set weight be/s1 5",
        "get weight be/s1",
        "set server be/s1 weight 50%",
        "get weight be/s1",
        "get weight nope/s1",
        "get weight be/zz",
        "get weight be",
        "set weight be/s1 300",
        "set weight be/s1 -1",
        "set weight be/s1",
        "set server be/s1 weight abc",
        "set server be/s1 state foo",
        "set server be/s1 state maint",
        "set server be/s2 state drain",
        "disable server zz/s1",
        "enable server be/zz",
        "show servers state nope",
        "show backend",
        "set server be/s1",
        "enable server be/s1; get weight be/s1",
        "set server be/s1 state ready; get weight be/s2",
    ];
    let mut answers = Vec::new();
    for engine in [Engine::Haproxy, Engine::Switchyard] {
        let port = free_port();
        let path = sock_path(&format!("diff-{engine:?}"));
        let p = Proxy::start_engine(
            engine,
            &config(port, path.to_str().unwrap(), &servers),
            port,
        );
        let mut got: Vec<String> = commands.iter().map(|c| cli(&path, c)).collect();
        cli(&path, "set server be/s2 state maint");
        // `show servers state`: compare the columns both know the same way
        // (names, ids, address, states, weights, port, check columns of
        // unchecked servers), not be_id or the time since the last change.
        let state = cli(&path, "show servers state");
        for line in state.lines() {
            let f: Vec<&str> = line.split(' ').collect();
            if f.len() < 20 || line.starts_with('#') {
                got.push(line.to_string());
                continue;
            }
            let mut keep: Vec<&str> = f[1..9].to_vec();
            keep.extend_from_slice(&f[10..]);
            got.push(keep.join(" "));
        }
        // The state-change messages, without the `[LEVEL]   (pid) : ` prefix.
        // The last command's message is the last one written: once it is
        // collected, so are all the earlier ones.
        let _ = p.wait_stderr(
            "Server be/s2 is going DOWN for maintenance",
            Duration::from_secs(10),
        );
        for l in p.stderr_lines() {
            if l.contains("Server be/") || l.contains("has no server available") {
                let (level, text) = l.split_once(" : ").unwrap_or(("", &l));
                got.push(format!("{} {text}", level.split(' ').next().unwrap_or("")));
            }
        }
        answers.push(got);
        let _ = std::fs::remove_file(&path);
    }
    let (h, s) = (&answers[0], &answers[1]);
    assert_eq!(h.len(), s.len(), "haproxy {h:#?}\nswitchyard {s:#?}");
    let mut diffs = Vec::new();
    for (i, (a, b)) in h.iter().zip(s).enumerate() {
        if a != b {
            let what = commands.get(i).copied().unwrap_or("show servers state");
            diffs.push(format!("{what:?}: haproxy {a:?} switchyard {b:?}"));
        }
    }
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
    assert!(
        h.iter().any(|l| l.contains("going DOWN for maintenance"))
            && h.iter()
                .any(|l| l.starts_with("[ALERT] backend 'be' has no server")),
        "messages compared: {h:#?}"
    );
}

/// After a SIGHUP reload the socket acts on the new configuration.
#[test]
fn socket_follows_a_reload() {
    let (s1, s2) = (Backend::start("s1"), Backend::start("s2"));
    let port = free_port();
    let path = sock_path("reload");
    let one = config(
        port,
        path.to_str().unwrap(),
        &format!("    server s1 {}\n", s1.addr()),
    );
    let p = Proxy::start(&one, port);
    assert_eq!(cli(&path, "get weight be/s2"), "No such server.\n\n");
    let two = config(
        port,
        path.to_str().unwrap(),
        &format!(
            "    server s1 {}\n    server s2 {} weight 7\n",
            s1.addr(),
            s2.addr()
        ),
    );
    std::fs::write(&p.config_path, two).unwrap();
    p.signal("HUP");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while cli(&path, "get weight be/s2") != "7 (initial 7)\n\n" {
        assert!(
            std::time::Instant::now() < deadline,
            "{:?}",
            p.stderr_lines()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(cli(&path, "set server be/s1 state maint"), "\n");
    assert_eq!(served_by(port, 3), ["s2", "s2", "s2"]);
    let _ = std::fs::remove_file(&path);
}
