//! Differential test: `haproxy -c -f <case>` (HAProxy 2.6, Debian package
//! `haproxy`) against switchyard's reader on the broken-config catalogue: same
//! exit code and same line for the first alert, except the documented
//! divergences (`# haproxy:` lines). Fails when haproxy is missing unless
//! `SWITCHYARD_SKIP_HAPROXY=1`.

mod common;

use std::path::PathBuf;
use std::process::Command;

fn haproxy() -> Option<PathBuf> {
    let from_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("haproxy"))
            .find(|p| p.is_file())
    });
    from_path.or_else(|| Some(PathBuf::from("/usr/sbin/haproxy")).filter(|p| p.is_file()))
}

#[test]
fn same_verdict_and_line_as_haproxy() {
    let Some(bin) = haproxy() else {
        if std::env::var("SWITCHYARD_SKIP_HAPROXY").as_deref() == Ok("1") {
            eprintln!("haproxy not found: differential test skipped (SWITCHYARD_SKIP_HAPROXY=1)");
            return;
        }
        panic!("haproxy not found on PATH nor at /usr/sbin/haproxy: install the Debian package 'haproxy' (.ci/run does) or set SWITCHYARD_SKIP_HAPROXY=1");
    };
    let cases = common::cases();
    let (mut same, mut documented) = (0, 0);
    let mut failures = Vec::new();
    for case in &cases {
        let run = Command::new(&bin)
            .args(["-c", "-f", &case.name])
            .current_dir(common::catalogue_dir())
            .output()
            .expect("run haproxy");
        let h_rc = run.status.code().unwrap_or(-1);
        let h_err = String::from_utf8_lossy(&run.stderr);
        let h_line = common::first_alert_line(&h_err).flatten();

        // Ours: the reader, plus the command line's DNS verdict for `cli` cases.
        let out = common::read(case);
        let rendered: String = out.diagnostics.iter().map(|d| d.render(1) + "\n").collect();
        let (o_rc, o_line) = if case.cli_only {
            (case.rc, case.line)
        } else {
            (
                common::exit_code(&out),
                common::first_alert_line(&rendered).flatten(),
            )
        };

        match case.haproxy {
            Some((rc, line)) => {
                if (h_rc, h_line) != (rc, line) {
                    failures.push(format!("{}: haproxy gave rc={h_rc} line={h_line:?}, the case documents rc={rc} line={line:?}\n{h_err}", case.name));
                }
                documented += 1;
            }
            None => {
                if (h_rc, h_line) == (o_rc, o_line) {
                    same += 1;
                } else {
                    failures.push(format!(
                        "{}: haproxy rc={h_rc} first alert line {h_line:?}; switchyard rc={o_rc} line {o_line:?}\nhaproxy:\n{h_err}switchyard:\n{rendered}",
                        case.name
                    ));
                }
            }
        }
    }
    eprintln!("differential: {} cases, {same} identical verdict+line, {documented} documented divergences", cases.len());
    assert!(
        failures.is_empty(),
        "{} cases differ from haproxy:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// First `[ALERT]`/`[WARNING]` line of a stderr, pid removed.
fn first_message(stderr: &str) -> Option<String> {
    let l = stderr
        .lines()
        .find(|l| l.starts_with("[ALERT]") || l.starts_with("[WARNING]"))?;
    let open = l.find('(')?;
    let close = l[open..].find(')')? + open;
    Some(format!("{}(pid){}", &l[..open], &l[close + 1..]))
}

/// `tests/messages.txt`: one snippet per line (`\n` separates lines within a
/// snippet), appended to a valid `listen`.
/// switchyard's first message (level, location shape and words) and verdict
/// must equal haproxy's, character for character.
#[test]
fn same_first_message_as_haproxy() {
    let Some(bin) = haproxy() else {
        if std::env::var("SWITCHYARD_SKIP_HAPROXY").as_deref() == Ok("1") {
            return;
        }
        panic!("haproxy not found (install the Debian package 'haproxy' or set SWITCHYARD_SKIP_HAPROXY=1)");
    };
    let head = "defaults\n    mode http\n    timeout connect 5s\n    timeout client 5s\n    timeout server 5s\nlisten l\n    bind 127.0.0.1:3990\n    server s0 127.0.0.1:4000\n";
    let dir = std::env::temp_dir().join(format!("switchyard-messages-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut failures = Vec::new();
    let snippets: Vec<&str> = include_str!("messages.txt")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    for (i, snip) in snippets.iter().enumerate() {
        let name = format!("m{i}.cfg");
        // `\n` in a snippet separates lines.
        let text = format!("{head}{}\n", snip.replace("\\n", "\n"));
        std::fs::write(dir.join(&name), &text).unwrap();
        let run = Command::new(&bin)
            .args(["-c", "-f", &name])
            .current_dir(&dir)
            .output()
            .unwrap();
        let theirs = (
            run.status.code().unwrap_or(-1),
            first_message(&String::from_utf8_lossy(&run.stderr)),
        );
        let out = switchyard_config::parse(
            &[switchyard_config::Source {
                name: &name,
                text: &text,
            }],
            &|_| None,
        );
        let rendered: String = out.diagnostics.iter().map(|d| d.render(1) + "\n").collect();
        let ours = (common::exit_code(&out), first_message(&rendered));
        if ours != theirs {
            failures.push(format!(
                "{snip:?}\n  haproxy:     {theirs:?}\n  switchyard:  {ours:?}"
            ));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        failures.is_empty(),
        "{} of {} differ:\n{}",
        failures.len(),
        snippets.len(),
        failures.join("\n")
    );
}
