//! Conditional blocks (`.if`/`.elif`/`.else`/`.endif`) and the `.notice`,
//! `.warning`, `.alert`, `.diag` directives (HAProxy 2.4+).
//!
//! Conditions: integers (non-zero is true), `defined(VAR)`, `feature(NAME)`,
//! `streq(a,b)`, `strneq(a,b)`, `version_atleast(X)`, `version_before(X)`,
//! combined with `!`, `&&`, `||` and parentheses. switchyard answers the version
//! tests as the HAProxy version it mimics ([`HAPROXY_VERSION`]), and
//! `feature()` is true for [`FEATURES`] only.

use crate::diag::{Level, Shape};
use crate::draft::{Diags, Line};

/// The HAProxy version whose behaviour switchyard reproduces.
pub const HAPROXY_VERSION: &str = "2.6.12";

/// Build features switchyard has, as HAProxy names them.
pub const FEATURES: &[&str] = &["THREAD", "EPOLL", "GETADDRINFO", "LINUX_SPLICE"];

#[derive(Debug, Clone, Copy)]
struct Frame {
    /// This branch is taken.
    active: bool,
    /// Some branch of this block was already taken.
    done: bool,
    /// The enclosing block is active.
    parent: bool,
    seen_else: bool,
    line: usize,
}

#[derive(Debug, Default)]
pub(crate) struct CondStack {
    frames: Vec<Frame>,
}

pub(crate) enum Directive {
    /// A `.`-directive, handled.
    Consumed,
    /// An ordinary line inside an inactive block.
    Skip,
    /// An ordinary line to process.
    Line,
}

impl CondStack {
    fn active(&self) -> bool {
        self.frames.last().is_none_or(|f| f.active)
    }

    pub(crate) fn directive(
        &mut self,
        line: &Line,
        diags: &mut Diags,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Directive {
        let kw = line.arg(0);
        if !kw.starts_with('.') {
            return if self.active() {
                Directive::Line
            } else {
                Directive::Skip
            };
        }
        let loc = &line.loc;
        let expr = line.words[1..].join(" ");
        match kw {
            ".if" => {
                let parent = self.active();
                let active = parent && eval(&expr, line, diags, lookup);
                self.frames.push(Frame {
                    active,
                    done: active,
                    parent,
                    seen_else: false,
                    line: loc.line,
                });
            }
            ".elif" | ".else" => {
                let Some(mut f) = self.frames.pop() else {
                    diags.alert_shaped(
                        loc,
                        kw,
                        Shape::ParsingTight,
                        format!("'{kw}' without matching '.if'."),
                    );
                    return Directive::Consumed;
                };
                if f.seen_else {
                    diags.alert_shaped(
                        loc,
                        kw,
                        Shape::ParsingTight,
                        format!("'{kw}' after '.else' is unexpected."),
                    );
                }
                if kw == ".else" {
                    f.seen_else = true;
                    f.active = f.parent && !f.done;
                } else {
                    f.active = f.parent && !f.done && eval(&expr, line, diags, lookup);
                }
                f.done |= f.active;
                self.frames.push(f);
            }
            ".endif" if self.frames.pop().is_none() => {
                diags.alert_shaped(
                    loc,
                    kw,
                    Shape::ParsingTight,
                    "'.endif' without matching '.if'.".to_string(),
                );
            }
            ".endif" => {}
            ".notice" | ".warning" | ".alert" | ".diag" if self.active() && line.len() > 2 => {
                diags.alert_shaped(
                    loc,
                    kw,
                    Shape::ParsingTight,
                    format!(
                        "Unexpected argument '{}' for '{kw}'. Use quotes if the message should contain spaces.",
                        line.arg(2)
                    ),
                );
            }
            ".notice" | ".warning" | ".alert" | ".diag" if self.active() => {
                let level = match kw {
                    ".notice" | ".diag" => Level::Notice,
                    ".warning" => Level::Warning,
                    _ => Level::Alert,
                };
                diags.push(
                    level,
                    Some(loc),
                    kw,
                    format!("'{expr}'."),
                    Shape::ParsingTight,
                );
            }
            ".notice" | ".warning" | ".alert" | ".diag" => {}
            _ if self.active() => {
                diags.alert_shaped(
                    loc,
                    kw,
                    Shape::ParsingTight,
                    format!("unknown directive '{kw}'."),
                );
            }
            _ => {}
        }
        Directive::Consumed
    }

    pub(crate) fn finish(&mut self, file: &str, diags: &mut Diags) {
        if let Some(f) = self.frames.first() {
            let loc = crate::model::Location {
                file: file.to_string(),
                line: f.line,
            };
            diags.alert_shaped(
                &loc,
                ".if",
                Shape::ParsingTight,
                "non-terminated '.if' block.".to_string(),
            );
        }
        self.frames.clear();
    }
}

fn eval(
    expr: &str,
    line: &Line,
    diags: &mut Diags,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> bool {
    let mut p = CondParser {
        s: expr.as_bytes(),
        i: 0,
        lookup,
    };
    let r = p.or().and_then(|v| {
        p.ws();
        if p.i < p.s.len() {
            Err(format!("unexpected character '{}'", p.s[p.i] as char))
        } else {
            Ok(v)
        }
    });
    match r {
        Ok(v) => v,
        Err(e) => {
            diags.alert_shaped(
                &line.loc,
                line.arg(0),
                Shape::ParsingTight,
                format!("failed to parse condition '{expr}': {e}."),
            );
            false
        }
    }
}

struct CondParser<'a> {
    s: &'a [u8],
    i: usize,
    lookup: &'a dyn Fn(&str) -> Option<String>,
}

impl CondParser<'_> {
    fn ws(&mut self) {
        while self.s.get(self.i).is_some_and(|c| c.is_ascii_whitespace()) {
            self.i += 1;
        }
    }
    fn eat(&mut self, tok: &str) -> bool {
        self.ws();
        if self.s[self.i..].starts_with(tok.as_bytes()) {
            self.i += tok.len();
            true
        } else {
            false
        }
    }
    fn or(&mut self) -> Result<bool, String> {
        let mut v = self.and()?;
        while self.eat("||") {
            let r = self.and()?;
            v = v || r;
        }
        Ok(v)
    }
    fn and(&mut self) -> Result<bool, String> {
        let mut v = self.term()?;
        while self.eat("&&") {
            let r = self.term()?;
            v = v && r;
        }
        Ok(v)
    }
    fn term(&mut self) -> Result<bool, String> {
        if self.eat("!") {
            return self.term().map(|v| !v);
        }
        if self.eat("(") {
            let v = self.or()?;
            if !self.eat(")") {
                return Err("missing closing ')'".into());
            }
            return Ok(v);
        }
        self.ws();
        let start = self.i;
        while self
            .s
            .get(self.i)
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'-')
        {
            self.i += 1;
        }
        let word = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
        if word.is_empty() {
            return Err("expected a term".into());
        }
        if let Ok(n) = word.parse::<i64>() {
            return Ok(n != 0);
        }
        if !self.eat("(") {
            return Err(format!("unknown term '{word}'"));
        }
        let astart = self.i;
        let Some(close) = self.s[self.i..].iter().position(|&c| c == b')') else {
            return Err("missing closing ')'".into());
        };
        let args = String::from_utf8_lossy(&self.s[astart..astart + close]).into_owned();
        self.i = astart + close + 1;
        let args: Vec<&str> = args.split(',').map(str::trim).collect();
        let arg = |n: usize| args.get(n).copied().unwrap_or("");
        match word.as_str() {
            "defined" => Ok((self.lookup)(arg(0)).is_some()),
            "feature" => Ok(FEATURES.contains(&arg(0))),
            "streq" => Ok(arg(0) == arg(1)),
            "strneq" => Ok(arg(0) != arg(1)),
            "version_atleast" => {
                Ok(cmp_version(HAPROXY_VERSION, arg(0)) != std::cmp::Ordering::Less)
            }
            "version_before" => {
                Ok(cmp_version(HAPROXY_VERSION, arg(0)) == std::cmp::Ordering::Less)
            }
            _ => Err(format!("unknown term '{word}'")),
        }
    }
}

fn cmp_version(a: &str, b: &str) -> std::cmp::Ordering {
    let parse =
        |v: &str| -> Vec<u64> { v.split(['.', '-']).map_while(|p| p.parse().ok()).collect() };
    parse(a).cmp(&parse(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Location;

    fn run(lines: &[&str]) -> (Vec<&'static str>, Diags) {
        let env = |n: &str| (n == "SET").then(|| "1".to_string());
        let mut st = CondStack::default();
        let mut diags = Diags::default();
        let mut kept = Vec::new();
        for (i, l) in lines.iter().enumerate() {
            let words: Vec<String> = l.split_whitespace().map(str::to_string).collect();
            let line = Line {
                words,
                loc: Location {
                    file: "c.cfg".into(),
                    line: i + 1,
                },
            };
            if let Directive::Line = st.directive(&line, &mut diags, &env) {
                kept.push(["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"][i]);
            }
        }
        st.finish("c.cfg", &mut diags);
        (kept, diags)
    }

    #[test]
    fn branches() {
        let (kept, d) = run(&[".if defined(SET)", "x", ".else", "y", ".endif"]);
        assert_eq!(kept, ["b"]);
        assert!(d.list.is_empty());
        let (kept, _) = run(&[
            ".if defined(UNSET)",
            "x",
            ".elif 1",
            "y",
            ".else",
            "z",
            ".endif",
        ]);
        assert_eq!(kept, ["d"]);
        let (kept, _) = run(&[
            ".if version_atleast(2.4) && !version_before(2.6)",
            "x",
            ".endif",
        ]);
        assert_eq!(kept, ["b"]);
        let (kept, _) = run(&[".if 0", ".if 1", "x", ".endif", "y", ".endif", "z"]);
        assert_eq!(kept, ["g"]);
        let (kept, _) = run(&[".if (0 || feature(THREAD)) && streq(a,a)", "x", ".endif"]);
        assert_eq!(kept, ["b"]);
    }

    #[test]
    fn messages_and_errors() {
        let (_, d) = run(&[
            ".notice hello",
            ".if 0",
            ".alert hidden",
            ".endif",
            ".alert boom",
            ".notice a b",
        ]);
        assert_eq!(d.list.len(), 3);
        assert!(d.list[2]
            .message
            .starts_with("Unexpected argument 'b' for '.notice'."));
        assert_eq!(d.list[0].level, Level::Notice);
        assert_eq!(d.list[0].message, "'hello'.");
        assert_eq!(d.list[1].level, Level::Alert);
        let (_, d) = run(&[".if 1", "x"]);
        assert!(d.list[0].message.contains("non-terminated"));
        let (_, d) = run(&[".endif"]);
        assert!(d.has_alerts());
        let (_, d) = run(&[".if bogus(1)", ".endif"]);
        assert!(d.list[0].message.contains("unknown term 'bogus'"));
    }
}
