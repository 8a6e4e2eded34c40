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

/// How HAProxy prefixes the location of a message; it is not uniform, and the
/// exact shape matters to people who grep logs or compare with `haproxy -c`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Shape {
    /// `parsing [file:line] : text` (most keyword errors).
    #[default]
    Parsing,
    /// `parsing [file:line]: text` (lexer errors, some option/stats messages).
    ParsingTight,
    /// `Parsing [file:line]: text` (duplicate proxy names).
    ParsingCapital,
    /// `[file:line] : text` (server lines).
    Bracket,
    /// No location printed even though `file`/`line` are known (post-parse checks,
    /// the timer trailing-garbage warning).
    Unlocated,
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
    /// How the location is printed.
    pub shape: Shape,
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
        match (&self.file, self.line, self.shape) {
            (_, _, Shape::Unlocated) | (None, _, _) | (_, None, _) => {
                write!(f, "config : {}", self.message)
            }
            (Some(file), Some(line), Shape::Parsing) => {
                write!(f, "config : parsing [{file}:{line}] : {}", self.message)
            }
            (Some(file), Some(line), Shape::ParsingTight) => {
                write!(f, "config : parsing [{file}:{line}]: {}", self.message)
            }
            (Some(file), Some(line), Shape::ParsingCapital) => {
                write!(f, "config : Parsing [{file}:{line}]: {}", self.message)
            }
            (Some(file), Some(line), Shape::Bracket) => {
                write!(f, "config : [{file}:{line}] : {}", self.message)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(shape: Shape) -> Diagnostic {
        Diagnostic {
            level: Level::Alert,
            file: Some("f.cfg".into()),
            line: Some(8),
            keyword: Some("foobar".into()),
            message: "unknown keyword 'foobar' in 'frontend' section".into(),
            shape,
        }
    }

    #[test]
    fn shapes_render_like_haproxy() {
        assert_eq!(
            d(Shape::Parsing).render(1234),
            "[ALERT]    (1234) : config : parsing [f.cfg:8] : unknown keyword 'foobar' in 'frontend' section"
        );
        assert!(d(Shape::ParsingTight)
            .to_string()
            .starts_with("config : parsing [f.cfg:8]: "));
        assert!(d(Shape::ParsingCapital)
            .to_string()
            .starts_with("config : Parsing [f.cfg:8]: "));
        assert!(d(Shape::Bracket)
            .to_string()
            .starts_with("config : [f.cfg:8] : "));
        assert!(d(Shape::Unlocated)
            .to_string()
            .starts_with("config : unknown"));
        let mut w = d(Shape::Parsing);
        w.level = Level::Warning;
        assert!(w.render(7).starts_with("[WARNING]  (7) : config : parsing"));
    }
}
