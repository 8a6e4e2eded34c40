//! Diagnostics in HAProxy's words and shape.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Notice,
    Warning,
    Alert,
}

impl Level {
    pub fn tag(self) -> &'static str {
        match self {
            Level::Notice => "[NOTICE]",
            Level::Warning => "[WARNING]",
            Level::Alert => "[ALERT]",
        }
    }
}

/// One message. `file`/`line` are set for everything tied to a line of input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub level: Level,
    pub file: Option<String>,
    pub line: Option<usize>,
    /// The keyword the message is about, when there is one (for tests and tooling).
    pub keyword: Option<String>,
    /// The text after the location prefix, as HAProxy words it.
    pub message: String,
}

impl Diagnostic {
    /// Renders the line as HAProxy prints it on stderr, e.g.
    /// `[ALERT]    (1234) : config : parsing [f.cfg:8] : unknown keyword 'foobar' in 'frontend' section`.
    pub fn render(&self, pid: u32) -> String {
        format!("{:<11}({}) : {}", self.level.tag(), pid, self)
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, self.line) {
            (Some(file), Some(line)) => {
                write!(f, "config : parsing [{file}:{line}] : {}", self.message)
            }
            _ => write!(f, "config : {}", self.message),
        }
    }
}
