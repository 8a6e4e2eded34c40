//! HAProxy configuration reader for switchyard.
//!
//! ```text
//! Source texts ─► lexer (words, quotes, ${VAR}) ─► sections/keywords ─► Config + Vec<Diagnostic>
//! ```
//!
//! Pure: no I/O, no async, no global state. The caller reads files and hands
//! in their texts and an environment lookup; this crate returns the validated
//! [`model::Config`] (when there are no alerts) and every diagnostic.

pub mod diag;
pub mod model;

pub use diag::{Diagnostic, Level};
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
pub fn parse(sources: &[Source<'_>], env: &dyn Fn(&str) -> Option<String>) -> Outcome {
    let _ = (sources, env);
    unimplemented!("configuration reader: being written (issue 2)")
}
