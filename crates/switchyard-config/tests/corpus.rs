//! Every file of `../shared/corpus/haproxy/` (75 real configurations and 3
//! templated ones): the reader never panics, every refusal names file, line and
//! keyword, and the set of accepted files recorded in `tests/corpus_accepted.txt`
//! may only grow. `SWITCHYARD_UPDATE_CORPUS=1` rewrites that list.

use std::path::{Path, PathBuf};
use switchyard_config::{parse, Level, Outcome, Source};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/haproxy")
}

fn files() -> Vec<(String, String)> {
    let dir = corpus_dir();
    let mut out = Vec::new();
    for sub in ["", "templated"] {
        let d = dir.join(sub);
        let mut names: Vec<PathBuf> = std::fs::read_dir(&d)
            .unwrap_or_else(|e| panic!("corpus at {}: {e}", d.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "cfg"))
            .collect();
        names.sort();
        for p in names {
            let rel = p.strip_prefix(&dir).unwrap().to_string_lossy().into_owned();
            let bytes = std::fs::read(&p).unwrap();
            out.push((rel, String::from_utf8_lossy(&bytes).into_owned()));
        }
    }
    out
}

fn read(sources: &[Source<'_>]) -> Outcome {
    let env = |name: &str| match name {
        // A few files expect these from their deployment environment.
        "HOME" => Some("/root".to_string()),
        _ => None,
    };
    std::panic::catch_unwind(|| parse(sources, &env)).unwrap_or_else(|_| {
        panic!(
            "reader panicked on {:?}",
            sources.iter().map(|s| s.name).collect::<Vec<_>>()
        )
    })
}

fn check_diagnostics(name: &str, out: &Outcome, problems: &mut Vec<String>) {
    for d in &out.diagnostics {
        if d.level != Level::Alert {
            continue;
        }
        if d.keyword.is_none() {
            problems.push(format!("{name}: alert without keyword: {}", d.render(0)));
        }
        if d.file.is_none() != d.line.is_none() {
            problems.push(format!(
                "{name}: alert with half a location: {}",
                d.render(0)
            ));
        }
        // Alerts printed without location must still carry it for tooling,
        // except the global summary ones.
        if d.file.is_none() && !d.message.starts_with("Failed") {
            problems.push(format!("{name}: alert without file:line: {}", d.render(0)));
        }
    }
    if out.config.is_none() && !out.has_errors() {
        problems.push(format!("{name}: refused without any alert"));
    }
}

#[test]
fn corpus_is_read_without_panic_and_refusals_are_located() {
    let files = files();
    assert!(
        files.len() >= 78,
        "corpus incomplete: {} files",
        files.len()
    );
    let mut accepted = Vec::new();
    let mut problems = Vec::new();
    let mut refusal_keywords: Vec<String> = Vec::new();
    for (name, text) in &files {
        let out = read(&[Source { name, text }]);
        check_diagnostics(name, &out, &mut problems);
        if out.config.is_some() {
            accepted.push(name.clone());
        } else if let Some(first) = out.diagnostics.iter().find(|d| d.level == Level::Alert) {
            refusal_keywords.push(format!("{name}: {}", first.render(0)));
        }
    }
    // 073-075 are fragments of one configuration, meant to be read together.
    let parts: Vec<&(String, String)> = files
        .iter()
        .filter(|(n, _)| n.starts_with("07") && n.contains("harisekhon"))
        .collect();
    assert_eq!(parts.len(), 3);
    let sources: Vec<Source<'_>> = parts
        .iter()
        .map(|(n, t)| Source { name: n, text: t })
        .collect();
    let together = read(&sources);
    check_diagnostics("073+074+075", &together, &mut problems);
    if together.config.is_some() {
        accepted.push("073+074+075".to_string());
    }

    eprintln!(
        "corpus: {} of {} readings accepted",
        accepted.len(),
        files.len() + 1
    );
    eprintln!("first refusal per file:\n{}", refusal_keywords.join("\n"));
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    let record = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus_accepted.txt");
    if std::env::var("SWITCHYARD_UPDATE_CORPUS").as_deref() == Ok("1") {
        std::fs::write(&record, accepted.join("\n") + "\n").unwrap();
        return;
    }
    let recorded = std::fs::read_to_string(&record).expect("tests/corpus_accepted.txt");
    let lost: Vec<&str> = recorded
        .lines()
        .filter(|l| !l.is_empty() && !accepted.iter().any(|a| a == l))
        .collect();
    assert!(
        lost.is_empty(),
        "files accepted before are now refused: {lost:?}"
    );
    let gained: Vec<&String> = accepted
        .iter()
        .filter(|a| !recorded.lines().any(|l| l == a.as_str()))
        .collect();
    if !gained.is_empty() {
        eprintln!("newly accepted (run with SWITCHYARD_UPDATE_CORPUS=1 to record): {gained:?}");
    }
}
