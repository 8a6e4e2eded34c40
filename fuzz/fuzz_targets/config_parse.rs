//! Fuzzes the configuration reader: any bytes, read as one or two files.
//! Besides "never panics", checks the reader's promises:
//! - a configuration is returned exactly when no alert was raised;
//! - every diagnostic tied to a file has a line within that file;
//! - every alert names its keyword when it has a location.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard_config::{lexer, parse, Level, Source};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // A NUL byte splits the input into two files, to exercise multi-file reading.
    let (a, b) = match text.split_once('\0') {
        Some((a, b)) => (a.to_string(), Some(b.to_string())),
        None => (text.to_string(), None),
    };
    let env = |name: &str| match name {
        "PORT" => Some("8080".to_string()),
        "EMPTY" => Some(String::new()),
        "LIST" => Some("a b c".to_string()),
        _ => None,
    };
    let mut sources = vec![Source {
        name: "a.cfg",
        text: &a,
    }];
    if let Some(b) = &b {
        sources.push(Source {
            name: "b.cfg",
            text: b,
        });
    }
    let out = parse(&sources, &env);
    assert_eq!(out.config.is_some(), !out.has_errors());
    for d in &out.diagnostics {
        if let (Some(file), Some(line)) = (&d.file, d.line) {
            let src = sources.iter().find(|s| s.name == file).expect("known file");
            assert!(line >= 1 && line <= src.text.split('\n').count(), "{d:?}");
            if d.level == Level::Alert {
                assert!(d.keyword.is_some(), "{d:?}");
            }
        }
        let _ = d.render(1);
    }
    for line in a.split('\n') {
        let _ = lexer::split_line(line, &env);
    }
});
