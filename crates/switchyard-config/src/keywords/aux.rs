//! Sections switchyard recognises and checks but does not use: `userlist`,
//! `peers`, `resolvers`, `mailers`, `http-errors`, `ring`, `cache`. A warning at
//! the section line says so; unknown keywords inside them are errors like
//! everywhere else. (`program` and `log-forward` are refused in the parser.)

use crate::diag::Shape;
use crate::draft::Line;
use crate::parser::Parser;
use crate::suggest;

/// The section keyword as a `'static` name.
pub(crate) fn kind(kw: &str) -> &'static str {
    match kw {
        "userlist" => "userlist",
        "peers" => "peers",
        "resolvers" => "resolvers",
        "mailers" => "mailers",
        "http-errors" => "http-errors",
        "ring" => "ring",
        _ => "cache",
    }
}

pub(crate) fn why_unused(kind: &str) -> &'static str {
    match kind {
        "userlist" => "HTTP authentication is not implemented",
        "peers" => "stick tables are not implemented, so there is nothing to synchronise",
        "resolvers" => "server names are resolved once at startup with the system resolver",
        "mailers" => "no e-mail alerts are sent",
        "http-errors" => "switchyard serves its built-in error pages",
        "ring" => "logs go to the targets of 'log' lines",
        _ => "responses are not cached",
    }
}

fn keywords(kind: &str) -> &'static [&'static str] {
    match kind {
        "userlist" => &["group", "user"],
        "peers" => &[
            "bind",
            "default-bind",
            "default-server",
            "disabled",
            "enabled",
            "log",
            "peer",
            "server",
            "table",
        ],
        "resolvers" => &[
            "accepted_payload_size",
            "hold",
            "nameserver",
            "parse-resolv-conf",
            "resolve_retries",
            "timeout",
        ],
        "mailers" => &["mailer", "timeout"],
        "http-errors" => &["errorfile"],
        "ring" => &[
            "description",
            "format",
            "maxlen",
            "server",
            "size",
            "timeout",
        ],
        _ => &[
            "max-age",
            "max-object-size",
            "max-secondary-entries",
            "process-vary",
            "total-max-size",
        ],
    }
}

pub(crate) fn keyword(p: &mut Parser<'_>, kind: &str, _name: &str, line: &Line) {
    let kw = line.arg(0);
    let known = keywords(kind);
    if known.contains(&kw) {
        if matches!(kind, "userlist" | "mailers") && line.arg(1).is_empty() {
            p.diags
                .alert(&line.loc, kw, format!("'{kw}' expects <name> as argument."));
        }
        return;
    }
    let hint = suggest::hint(kw, known.iter().copied());
    if kind == "userlist" {
        // HAProxy calls this section 'users' in its message.
        p.diags.alert_shaped(
            &line.loc,
            kw,
            Shape::ParsingTight,
            format!("unknown keyword '{kw}' in 'users' section{hint}"),
        );
    } else {
        p.diags.alert(
            &line.loc,
            kw,
            format!("unknown keyword '{kw}' in '{kind}' section{hint}"),
        );
    }
}
