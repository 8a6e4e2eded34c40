//! `userlist`, `peers` and `resolvers` sections: recognised and checked by
//! keyword, but switchyard does not use them (a warning at the section line says so).
//! Unknown keywords inside them are errors like everywhere else.

use crate::draft::Line;
use crate::parser::Parser;
use crate::suggest;

fn keywords(kind: &str) -> &'static [&'static str] {
    match kind {
        "userlist" => &["user", "group"],
        "peers" => &[
            "peer",
            "bind",
            "server",
            "table",
            "disabled",
            "enabled",
            "default-server",
            "default-bind",
            "log",
            "shards",
        ],
        _ => &[
            "nameserver",
            "parse-resolv-conf",
            "accepted_payload_size",
            "hold",
            "resolve_retries",
            "timeout",
        ],
    }
}

pub(crate) fn keyword(p: &mut Parser<'_>, kind: &str, _name: &str, line: &Line) {
    let kw = line.arg(0);
    let known = keywords(kind);
    if known.contains(&kw) {
        if kind == "userlist" && line.arg(1).is_empty() {
            p.diags
                .alert(&line.loc, kw, format!("'{kw}' expects <name> as argument."));
        }
        return;
    }
    let hint = suggest::hint(kw, known.iter().copied());
    p.diags.alert(
        &line.loc,
        kw,
        format!("unknown keyword '{kw}' in '{kind}' section{hint}"),
    );
}
