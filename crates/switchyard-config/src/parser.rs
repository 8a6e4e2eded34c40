//! Drives the reading: lines → words → sections → keyword handlers.
//!
//! Errors never stop the reading of a file (HAProxy reports every error in a
//! file), except where HAProxy itself gives up on the rest of the file (the
//! `http-request`/`http-response` keyword list errors are `ERR_ABORT` in 2.6; we
//! keep reading anyway, which only adds messages after the first one).

use crate::cond::{CondStack, Directive};
use crate::draft::{Diags, Kind, Line, Proxy};
use crate::keywords;
use crate::lexer;
use crate::model::*;
use crate::{diag::Shape, Source};

/// The section a line belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Section {
    /// Before the first section keyword.
    None,
    Global,
    /// A proxy or defaults section being read (in `Parser::current`).
    Proxy,
    /// A proxy section whose header was refused: its lines get
    /// "'listen' or 'defaults' expected." as in HAProxy.
    Broken,
    /// `userlist`, `peers`, `resolvers`: recognised, contents checked by name.
    Aux(&'static str, String),
}

pub(crate) struct Parser<'e> {
    pub diags: Diags,
    env: &'e dyn Fn(&str) -> Option<String>,
    pub global: Global,
    /// Every `defaults` section read so far, in order.
    pub defaults: Vec<Proxy>,
    /// Index in `defaults` of the last one (what the next proxy inherits).
    last_defaults: Option<usize>,
    pub proxies: Vec<Proxy>,
    pub current: Option<Proxy>,
    pub section: Section,
    /// `unsetenv`'d names (hidden from the environment handed in).
    unset: Vec<String>,
    /// `expose-experimental-directives` seen in `global` (needed by `normalize-uri` in 2.6).
    pub expose_experimental: bool,
}

/// Section keywords, for "did you mean" and for recognising a section start.
pub(crate) const SECTIONS: &[&str] = &[
    "global",
    "defaults",
    "frontend",
    "backend",
    "listen",
    "userlist",
    "peers",
    "resolvers",
    "mailers",
    "program",
    "http-errors",
    "ring",
    "log-forward",
    "cache",
];

impl<'e> Parser<'e> {
    pub(crate) fn new(env: &'e dyn Fn(&str) -> Option<String>) -> Self {
        Parser {
            diags: Diags::default(),
            env,
            global: Global::default(),
            defaults: Vec::new(),
            last_defaults: None,
            proxies: Vec::new(),
            current: None,
            section: Section::None,
            unset: Vec::new(),
            expose_experimental: false,
        }
    }

    /// The value of an environment variable, `setenv` included.
    pub(crate) fn getenv(&self, name: &str) -> Option<String> {
        getenv(&self.global.setenv, &self.unset, self.env, name)
    }

    pub(crate) fn setenv(&mut self, name: &str, value: &str, overwrite: bool) {
        if !overwrite && self.getenv(name).is_some() {
            return;
        }
        self.unset.retain(|u| u != name);
        self.global
            .setenv
            .push((name.to_string(), value.to_string()));
    }

    pub(crate) fn unsetenv(&mut self, name: &str) {
        self.global.setenv.retain(|(k, _)| k != name);
        self.unset.push(name.to_string());
    }

    pub(crate) fn read(&mut self, src: &Source<'_>) {
        let mut conds = CondStack::default();
        for (idx, raw) in src.text.split('\n').enumerate() {
            let loc = Location {
                file: src.name.to_string(),
                line: idx + 1,
            };
            let section_name = self.section_word();
            let lookup = |name: &str| -> Option<String> {
                match name {
                    ".FILE" => Some(src.name.to_string()),
                    ".LINE" => Some((idx + 1).to_string()),
                    ".SECTION" => Some(section_name.clone()),
                    _ => getenv(&self.global.setenv, &self.unset, self.env, name),
                }
            };
            let words = match lexer::split_line(raw, &lookup) {
                Ok(w) => w,
                Err(e) => {
                    // The line could not be split: name its first blank-separated word.
                    let kw = raw.split_whitespace().next().unwrap_or("");
                    self.diags
                        .alert_shaped(&loc, kw, Shape::ParsingTight, e.message(raw));
                    continue;
                }
            };
            if words.is_empty() {
                continue;
            }
            let line = Line { words, loc };
            if let Directive::Line = conds.directive(&line, &mut self.diags, &lookup) {
                self.line(&line);
            }
        }
        conds.finish(src.name, &mut self.diags);
        // Sections never span files.
        self.close_section();
        self.section = Section::None;
    }

    fn section_word(&self) -> String {
        match &self.section {
            Section::None | Section::Broken => String::new(),
            Section::Global => "global".into(),
            Section::Proxy => self
                .current
                .as_ref()
                .map(|p| p.kind.word().to_string())
                .unwrap_or_default(),
            Section::Aux(w, _) => (*w).to_string(),
        }
    }

    fn close_section(&mut self) {
        if let Some(p) = self.current.take() {
            if p.kind == Kind::Defaults {
                self.defaults.push(p);
                self.last_defaults = Some(self.defaults.len() - 1);
            } else {
                self.proxies.push(p);
            }
        }
    }

    fn line(&mut self, line: &Line) {
        let kw = line.arg(0);
        if kw.is_empty() {
            // HAProxy 2.6 silently drops a line whose first word is empty
            // (`"" acl x ...`, or an unset "${VAR}"): never silent here.
            self.diags.alert(
                &line.loc,
                kw,
                "empty keyword: the line starts with an empty word (HAProxy 2.6 would silently ignore the whole line).",
            );
            return;
        }
        if SECTIONS.contains(&kw) {
            self.close_section();
            self.start_section(line);
            return;
        }
        match self.section.clone() {
            Section::None => self.diags.alert_shaped(
                &line.loc,
                kw,
                Shape::ParsingTight,
                format!("unknown keyword '{kw}' out of section."),
            ),
            Section::Global => keywords::global::keyword(self, line),
            Section::Broken => self
                .diags
                .alert(&line.loc, kw, "'listen' or 'defaults' expected."),
            Section::Aux(kind, name) => keywords::aux::keyword(self, kind, &name, line),
            Section::Proxy => {
                if let Some(mut px) = self.current.take() {
                    keywords::proxy::keyword(self, &mut px, line);
                    self.current = Some(px);
                }
            }
        }
    }

    fn start_section(&mut self, line: &Line) {
        let kw = line.arg(0);
        let loc = &line.loc;
        self.section = match kw {
            "global" => Section::Global,
            "defaults" | "frontend" | "backend" | "listen" => self.start_proxy(line),
            "program" | "log-forward" => {
                let why = if kw == "program" {
                    "switchyard does not start external programs"
                } else {
                    "switchyard does not receive or forward syslog traffic"
                };
                self.diags.alert(
                    loc,
                    kw,
                    format!("'{kw}' sections are not supported by switchyard ({why})."),
                );
                Section::Broken
            }
            _ => {
                let kind = keywords::aux::kind(kw);
                if line.arg(1).is_empty() {
                    self.diags
                        .alert(loc, kw, format!("'{kw}' expects <name> as argument."));
                    Section::Broken
                } else {
                    self.diags.warn(
                        loc,
                        kw,
                        format!(
                            "'{kw} {}' section is checked but not used by switchyard ({}).",
                            line.arg(1),
                            keywords::aux::why_unused(kind)
                        ),
                    );
                    Section::Aux(kind, line.arg(1).to_string())
                }
            }
        };
    }

    fn start_proxy(&mut self, line: &Line) -> Section {
        let kw = line.arg(0);
        let loc = line.loc.clone();
        let kind = match kw {
            "defaults" => Kind::Defaults,
            "frontend" => Kind::Frontend,
            "backend" => Kind::Backend,
            _ => Kind::Listen,
        };
        // defaults [<name>] [from <defaults>] ; <proxy> <name> [from <defaults>]
        let mut args: Vec<&str> = line.words[1..].iter().map(String::as_str).collect();
        let mut from: Option<&str> = None;
        if let Some(pos) = args.iter().position(|a| *a == "from") {
            if pos + 1 >= args.len() || args.len() > pos + 2 {
                self.diags.alert(
                    &loc,
                    kw,
                    format!("'{kw}' expects 'from' followed by a defaults section name."),
                );
                return Section::Broken;
            }
            from = Some(args[pos + 1]);
            args.truncate(pos);
        }
        let name = args.first().copied().unwrap_or("");
        if kind != Kind::Defaults && name.is_empty() {
            self.diags
                .alert(&loc, kw, format!("'{kw}' expects an <id> argument"));
            return Section::Broken;
        }
        if let Some(bad) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "_.:-".contains(*c)))
        {
            self.diags.alert(
                &loc,
                kw,
                format!("character '{bad}' is not permitted in '{kw}' name '{name}'."),
            );
            return Section::Broken;
        }
        if args.len() > 1 {
            self.diags.alert(
                &loc,
                kw,
                "please use the 'bind' keyword for listening addresses.",
            );
            return Section::Broken;
        }
        let base = match from {
            Some(f) => match self.defaults.iter().rposition(|d| d.name == f) {
                Some(i) => Some(i),
                None => {
                    let what = if kind == Kind::Defaults {
                        format!("defaults section '{name}'")
                    } else {
                        format!("{} '{name}'", kind.word())
                    };
                    self.diags.alert(
                        &loc,
                        kw,
                        format!("defaults section '{f}' not found for {what}."),
                    );
                    return Section::Broken;
                }
            },
            None if kind == Kind::Defaults => None,
            None => self.last_defaults,
        };
        if kind != Kind::Defaults {
            self.check_unique_name(kind, name, &loc);
        } else if !name.is_empty() {
            if let Some(prev) = self.defaults.iter().find(|d| d.name == name) {
                self.diags.warn_shaped(
                    &loc,
                    kw,
                    Shape::ParsingCapital,
                    format!(
                        "defaults section '{name}' has the same name as another defaults section declared at {}.",
                        prev.loc
                    ),
                );
            }
        }
        if let Some(i) = base {
            if !self.check_defaults_use(i, kind, from.is_some(), &loc) {
                return Section::Broken;
            }
        }
        let px = match base {
            Some(i) => Proxy::inherit(&self.defaults[i], kind, name.to_string(), loc),
            None => Proxy::builtin(kind, name.to_string(), loc),
        };
        self.current = Some(px);
        Section::Proxy
    }

    /// HAProxy 2.6's rules for inheriting from defaults section `i`: a defaults
    /// with ACL/HTTP rules may only initialise proxies of one kind (frontends or
    /// backends), never a `listen` or another `defaults`; and one should not be
    /// used both by name and implicitly (warning). Returns false on error.
    fn check_defaults_use(&mut self, i: usize, kind: Kind, explicit: bool, loc: &Location) -> bool {
        let kw = kind.word();
        let d = &mut self.defaults[i];
        if explicit {
            d.explicit_ref = true;
        } else {
            d.implicit_ref = true;
        }
        if d.explicit_ref && d.implicit_ref && !d.name.is_empty() {
            let (name, dloc) = (d.name.clone(), d.loc.clone());
            self.diags.warn(
                loc,
                kw,
                format!(
                    "defaults section '{name}' (declared at {dloc}) is explicitly referenced by another proxy and implicitly used here. To avoid any ambiguity don't mix both usage. Add a last defaults section not explicitly used or always use explicit references."
                ),
            );
        }
        let d = &mut self.defaults[i];
        let has_rules = !d.http_request_rules.is_empty()
            || !d.http_response_rules.is_empty()
            || !d.redirect_rules.is_empty();
        if !has_rules {
            return true;
        }
        let msg = match kind {
            Kind::Defaults => Some(format!(
                "a defaults section cannot inherit from a defaults section defining TCP/HTTP rules (defaults section at {}).",
                d.loc
            )),
            Kind::Listen => {
                Some("a listen section cannot inherit from a defaults section defining TCP/HTTP rules.".to_string())
            }
            _ => match d.rules_used_by {
                Some(k) if k != kind => Some(format!(
                    "frontends and backends cannot inherit from the same defaults section if it defines TCP/HTTP rules (defaults section at {}).",
                    d.loc
                )),
                _ => {
                    d.rules_used_by = Some(kind);
                    None
                }
            },
        };
        match msg {
            Some(m) => {
                self.diags.alert_shaped(loc, kw, Shape::ParsingTight, m);
                false
            }
            None => true,
        }
    }

    fn check_unique_name(&mut self, kind: Kind, name: &str, loc: &Location) {
        let clash = self
            .proxies
            .iter()
            .find(|p| p.name == name && ((kind.fe() && p.kind.fe()) || (kind.be() && p.kind.be())));
        if let Some(prev) = clash {
            let msg = format!(
                "{} '{name}' has the same name as {} '{name}' declared at {}.",
                kind.word(),
                type_str(prev.kind),
                prev.loc
            );
            self.diags
                .alert_shaped(loc, kind.word(), Shape::ParsingCapital, msg);
        }
    }
}

/// HAProxy's `proxy_type_str()`: a `listen` is called "proxy" in messages.
pub(crate) fn type_str(kind: Kind) -> &'static str {
    match kind {
        Kind::Listen => "proxy",
        k => k.word(),
    }
}

fn getenv(
    setenv: &[(String, String)],
    unset: &[String],
    env: &dyn Fn(&str) -> Option<String>,
    name: &str,
) -> Option<String> {
    if let Some((_, v)) = setenv.iter().rev().find(|(k, _)| k == name) {
        return Some(v.clone());
    }
    if unset.iter().any(|u| u == name) {
        return None;
    }
    env(name)
}
