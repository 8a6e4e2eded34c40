//! `log-format` strings: literal text and `%` variables, checked when the
//! configuration is read so that the access log never meets a variable it
//! cannot render.
//!
//! Supported: `%%`, `%ci %cp %t %tr %trg %trl %T %Tl %ts %ms %ft %f %b %s
//! %TR %Tw %Tc %Tr %Ta %Tt %Tq %ST %B %CC %CS %tsc %ac %fc %bc %sc %rc %sq
//! %bq %hr %hs %hrl %hsl %r %HM %HU %HP %HQ %HV %pid %H`, each optionally
//! preceded by `{+Q}` (double quotes) or `{-Q}`. Not supported, refused with
//! a message naming them: sample expressions `%[...]`, variables about
//! addresses switchyard does not record (`%fi %fp %si %sp %bi %bp`),
//! `%U`, `%ID`, `%rt`, `%lc`, `%o` and unknown names.

/// One piece of a `log-format` string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogItem {
    Text(String),
    /// A variable by its HAProxy name (`ci`, `Ta`, `tsc`...).
    Var {
        name: String,
        quote: bool,
    },
}

/// Variables the access log can render.
pub const LOG_VARS: &[&str] = &[
    "ci", "cp", "t", "tr", "trg", "trl", "T", "Tl", "ts", "ms", "ft", "f", "b", "s", "TR", "Tw",
    "Tc", "Tr", "Ta", "Tt", "Tq", "ST", "B", "CC", "CS", "tsc", "ac", "fc", "bc", "sc", "rc", "sq",
    "bq", "hr", "hs", "hrl", "hsl", "r", "HM", "HU", "HP", "HQ", "HV", "pid", "H",
];

/// Splits a `log-format` string; `Err` names what cannot be rendered.
pub fn parse_log_format(fmt: &str) -> Result<Vec<LogItem>, String> {
    let mut items = Vec::new();
    let mut text = String::new();
    let b = fmt.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'%' {
            let start = i;
            while i < b.len() && b[i] != b'%' {
                i += 1;
            }
            text.push_str(&fmt[start..i]);
            continue;
        }
        i += 1;
        if b.get(i) == Some(&b'%') {
            text.push('%');
            i += 1;
            continue;
        }
        let mut quote = false;
        if b.get(i) == Some(&b'{') {
            let end = fmt[i..]
                .find('}')
                .ok_or_else(|| "missing '}' after '%{' in log-format.".to_string())?;
            for flag in fmt[i + 1..i + end].split(',') {
                match flag {
                    "+Q" => quote = true,
                    "-Q" | "" => quote = false,
                    other => {
                        return Err(format!(
                            "log-format flag '{other}' is not supported by switchyard (only +Q and -Q are)."
                        ))
                    }
                }
            }
            i += end + 1;
        }
        if b.get(i) == Some(&b'[') {
            return Err(
                "sample expressions '%[...]' in log-format are not supported by switchyard.".into(),
            );
        }
        let start = i;
        while i < b.len() && b[i].is_ascii_alphabetic() {
            i += 1;
        }
        let name = &fmt[start..i];
        if name.is_empty() {
            return Err("'%' without a variable name in log-format.".into());
        }
        if !LOG_VARS.contains(&name) {
            return Err(format!(
                "log-format variable '%{name}' is not supported by switchyard."
            ));
        }
        if !text.is_empty() {
            items.push(LogItem::Text(std::mem::take(&mut text)));
        }
        items.push(LogItem::Var {
            name: name.to_string(),
            quote,
        });
    }
    if !text.is_empty() {
        items.push(LogItem::Text(text));
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_text_variables_and_flags() {
        let v = |n: &str, q: bool| LogItem::Var {
            name: n.into(),
            quote: q,
        };
        assert_eq!(
            parse_log_format("%ci:%cp [%tr] %{+Q}r 100%%").unwrap(),
            vec![
                v("ci", false),
                LogItem::Text(":".into()),
                v("cp", false),
                LogItem::Text(" [".into()),
                v("tr", false),
                LogItem::Text("] ".into()),
                v("r", true),
                LogItem::Text(" 100%".into()),
            ]
        );
        assert!(parse_log_format("%[src]").unwrap_err().contains("%[...]"));
        assert!(parse_log_format("%fi")
            .unwrap_err()
            .contains("'%fi' is not supported"));
        assert!(parse_log_format("%{+X}r").is_err());
        assert!(parse_log_format("a %").is_err());
    }
}
