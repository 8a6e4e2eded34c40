//! HAProxy configuration reader for switchyard.
//!
//! ```text
//! Source texts ─► lexer (words, quotes, ${VAR}) ─► sections/keywords ─► Config + Vec<Diagnostic>
//! ```
//!
//! Pure: no I/O, no async, no global state. The caller reads files and hands
//! in their texts and an environment lookup; this crate returns the validated
//! [`model::Config`] (when there are no alerts) and every diagnostic.

mod acl;
mod cond;
pub mod diag;
mod draft;
mod keywords;
pub mod lexer;
pub mod model;
mod parser;
pub mod suggest;
pub mod units;
mod validate;

pub use cond::HAPROXY_VERSION;
pub use diag::{Diagnostic, Level, Shape};
pub use model::*;

/// One configuration file's text and the name used in messages.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    pub name: &'a str,
    pub text: &'a str,
}

/// The result of reading a configuration.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Present when no `Alert` was raised.
    pub config: Option<Config>,
    pub diagnostics: Vec<Diagnostic>,
    /// Files in which reading (not the cross-checks) raised an alert, for
    /// HAProxy's `Error(s) found in configuration file : X` summary lines.
    pub files_with_errors: Vec<String>,
}

impl Outcome {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(|d| d.level == Level::Alert)
    }
    pub fn has_warnings(&self) -> bool {
        self.diagnostics.iter().any(|d| d.level == Level::Warning)
    }
}

/// Reads the files in order as one configuration (sections never span files).
/// `env` answers `${VAR}` lookups; `setenv` in `global` is layered over it.
///
/// Post-parse checks (backend references, modes, duplicate servers, missing
/// timeouts...) only run when reading raised no alert, as in HAProxy, so the
/// first errors reported are always the ones nearest to the text.
pub fn parse(sources: &[Source<'_>], env: &dyn Fn(&str) -> Option<String>) -> Outcome {
    let mut p = parser::Parser::new(env);
    let mut files_with_errors = Vec::new();
    for src in sources {
        let before = p.diags.alerts();
        p.read(src);
        if p.diags.alerts() > before {
            files_with_errors.push(src.name.to_string());
        }
    }
    let parser::Parser {
        mut diags,
        global,
        proxies,
        ..
    } = p;
    let config = if diags.has_alerts() {
        None
    } else {
        validate::finish(global, proxies, &mut diags)
    };
    Outcome {
        config,
        diagnostics: diags.list,
        files_with_errors,
    }
}
