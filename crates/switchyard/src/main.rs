//! The `switchyard` binary: read the configuration, then run it.
//!
//! Temporary argument handling (`-f FILE`..., `-c`, `-db`) until the CLI module
//! lands; it will replace `args()` and `load()` below.

use std::process::ExitCode;

use switchyard::{observability, runtime, snapshot::Snapshot};
use switchyard_config::{Level, Source};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let files: Vec<String> = args
        .windows(2)
        .filter(|w| w[0] == "-f")
        .map(|w| w[1].clone())
        .collect();
    if files.is_empty() {
        eprintln!("usage: switchyard -f <config> [-f <config>...] [-c] [-db]");
        return ExitCode::from(1);
    }
    let Some(config) = load(&files) else {
        return ExitCode::from(1);
    };
    if args.iter().any(|a| a == "-c") {
        println!("Configuration file is valid");
        return ExitCode::SUCCESS;
    }
    let snap = match Snapshot::build(config) {
        Ok(s) => s,
        Err(e) => {
            observability::alert(&e);
            return ExitCode::from(1);
        }
    };
    match runtime::run(snap, || {}) {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::from(1),
    }
}

fn load(files: &[String]) -> Option<switchyard_config::Config> {
    let mut texts = Vec::new();
    for f in files {
        match std::fs::read_to_string(f) {
            Ok(t) => texts.push((f.clone(), t)),
            Err(e) => {
                observability::alert(&format!(
                    "config : Cannot open configuration file/directory {f} : {e}"
                ));
                return None;
            }
        }
    }
    let sources: Vec<Source<'_>> = texts
        .iter()
        .map(|(n, t)| Source { name: n, text: t })
        .collect();
    let outcome = switchyard_config::parse(&sources, &|k| std::env::var(k).ok());
    for d in &outcome.diagnostics {
        if d.level >= Level::Warning {
            eprintln!("{}", d.render(std::process::id()));
        }
    }
    outcome.config
}
