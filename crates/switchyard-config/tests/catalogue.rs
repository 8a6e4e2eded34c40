//! Golden test: switchyard's verdict and messages for every broken-config case
//! (see `tests/common/mod.rs` for the format).

mod common;

use switchyard_config::Level;

#[test]
fn catalogue_matches_expectations() {
    let cases = common::cases();
    assert!(
        cases.len() >= 30,
        "the catalogue must stay at least as broad as the reference doc"
    );
    let mut failures = Vec::new();
    for case in &cases {
        let out = common::read(case);
        let rendered: String = out.diagnostics.iter().map(|d| d.render(1) + "\n").collect();
        let rc = common::exit_code(&out);
        // The reader does no DNS: unresolvable servers are the command line's job.
        let want_rc = if case.cli_only { 0 } else { case.rc };
        if rc != want_rc {
            failures.push(format!(
                "{}: rc {rc}, expected {want_rc}\n{rendered}",
                case.name
            ));
            continue;
        }
        if case.cli_only {
            continue;
        }
        match case.level {
            Some(level) => {
                let found = out.diagnostics.iter().any(|d| {
                    d.level == level
                        && d.message.contains(&case.msg)
                        && (case.line.is_none() || d.line == case.line)
                });
                if !found {
                    failures.push(format!(
                        "{}: no {level:?} at line {:?} containing {:?}\n{rendered}",
                        case.name, case.line, case.msg
                    ));
                    continue;
                }
                if level == Level::Alert {
                    if let Some(line) = case.line {
                        let first = common::first_alert_line(&rendered).flatten();
                        if first != Some(line) {
                            failures.push(format!(
                                "{}: first alert printed at {first:?}, expected {line}\n{rendered}",
                                case.name
                            ));
                        }
                    }
                }
            }
            None => {
                if out.diagnostics.iter().any(|d| d.level >= Level::Warning) {
                    failures.push(format!("{}: expected no warning\n{rendered}", case.name));
                }
            }
        }
        // Every alert names its keyword and, when tied to a line, file and line.
        for d in out.diagnostics.iter().filter(|d| d.level == Level::Alert) {
            if d.file.is_some() && d.keyword.is_none() {
                failures.push(format!(
                    "{}: alert without keyword: {}",
                    case.name,
                    d.render(1)
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn printed_line_parser() {
    assert_eq!(
        common::printed_line("[ALERT]    (1) : config : parsing [a.cfg:12] : x"),
        Some(12)
    );
    assert_eq!(
        common::printed_line("[ALERT]    (1) : config : [a.cfg:3] : 'server l/s' : x"),
        Some(3)
    );
    assert_eq!(
        common::printed_line("[ALERT]    (1) : config : Proxy 'f': unable [x]"),
        None
    );
}
