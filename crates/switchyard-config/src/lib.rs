//! HAProxy configuration reader for switchyard.
//!
//! ```text
//! Source texts ─► lexer (words, quotes, "${VAR}") ─► .if blocks ─► sections/keywords
//!              ─► drafts (defaults inherited) ─► cross-checks ─► Config + Vec<Diagnostic>
//! ```
//!
//! Pure: no I/O, no async, no global state. The caller reads files and hands
//! in their texts and an environment lookup; this crate returns the validated
//! [`model::Config`] (when there are no alerts) and every diagnostic.
//!
//! Code map: `lexer` (words), `cond` (`.if`), `parser` (sections, defaults),
//! `keywords/*` (one file per keyword family), `acl` (ACLs and conditions),
//! `validate` (cross-checks, model building), `units` (times, sizes),
//! `suggest` ("did you mean"), `diag` (messages in HAProxy's shape).
//!
//! # Policy
//! * Every line is either understood, or produces a diagnostic naming its
//!   keyword with file and line — never a silent skip.
//! * Keywords that change routing, balancing, persistence, access control or
//!   what is sent on the wire, and that switchyard does not implement, are
//!   alerts ("'X' is not supported by switchyard (why)"): the configuration is
//!   refused rather than run differently from what its author wrote.
//! * Keywords without such effect (process management, logging details,
//!   error page files, socket tuning) are accepted with a warning saying
//!   switchyard ignores them.
//! * Keywords HAProxy 2.6 itself refuses (`reqadd`, `contimeout`, `nbproc`,
//!   `option forceclose`...) get 2.6's message naming the replacement.
//! * Messages, their location shape and their order follow HAProxy 2.6.12;
//!   `tests/catalogue/` and `tests/differential.rs` check this against the
//!   real `haproxy -c`. As in HAProxy, cross-checks (backend references,
//!   modes, duplicate servers) only run when reading raised no alert.
//!
//! # Deliberate differences from HAProxy 2.6.12
//! * A last line without a final newline is accepted (2.6 refuses it).
//! * Two listeners on the same address are an error (2.6 would share the port).
//! * `use_backend` with a name computed per request (`be_%[...]`) is refused.
//! * Server and bind host names are not resolved here (no DNS in the reader):
//!   binds must be IP literals (or `localhost`); server names are kept as text
//!   and the command line resolves them like HAProxy does at startup.
//! * Some values HAProxy reads with `atol()` (so `maxconn abc` is 0) are
//!   checked strictly.

mod acl;
mod cond;
pub mod diag;
mod draft;
mod keywords;
pub mod lexer;
pub mod logformat;
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
