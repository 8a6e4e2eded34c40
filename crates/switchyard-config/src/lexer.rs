//! Splits one configuration line into words, the way HAProxy's `parse_line()` does.
//!
//! * blanks (space, tab) separate words; `#` outside quotes starts a comment;
//! * a backslash escapes the next character (`\ `, `\#`, `\\`, `\'`, `\"`, `\$`) or
//!   produces a byte (`\n`, `\r`, `\t`, `\xNN`); before any other character it stays literal;
//! * `"..."` keeps blanks, `#` and `'` literal but still honours escapes and `$` expansion;
//! * `'...'` keeps everything literal;
//! * `$VAR`, `${VAR}`, `${VAR-default}` and `${VAR[*]}` expand inside double quotes
//!   only (observed on 2.6.12 with `.notice`: unquoted `${P}` stays literal; addresses
//!   get their own expansion, see `keywords::server::env_expand`);
//! * quoted and unquoted parts concatenate into one word (`"a b"'c'd` is `a bcd`);
//! * at most [`MAX_LINE_ARGS`] words per line.
//!
//! There is no line continuation: a trailing `\` is a word of its own, as in HAProxy.

/// HAProxy's `MAX_LINE_ARGS`.
pub const MAX_LINE_ARGS: usize = 64;

/// Why a line could not be split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LexError {
    /// `position` is 1-based, counted in bytes of the raw line, pointing at the opening quote.
    UnmatchedQuote { position: usize },
    /// More than [`MAX_LINE_ARGS`] words; `position` is the byte offset of the first extra word.
    TooManyWords { position: usize, rest: String },
}

impl LexError {
    /// HAProxy's text for this error (after the `parsing [file:line]: ` prefix).
    pub fn message(&self, raw_line: &str) -> String {
        match self {
            LexError::UnmatchedQuote { position } => {
                let caret = " ".repeat(position.saturating_sub(1));
                format!(
                    "unmatched quote at position {position}:\n  {}\n  {caret}^",
                    raw_line.trim_end_matches(['\r', '\n'])
                )
            }
            LexError::TooManyWords { position, rest } => format!(
                "too many words, truncating after word {MAX_LINE_ARGS}, position {position}: <{rest}>."
            ),
        }
    }
}

/// Looks up a variable (`.FILE`, `.LINE`, `.SECTION` and the environment).
pub type Lookup<'a> = dyn Fn(&str) -> Option<String> + 'a;

/// Splits `line` into words. Variables are resolved through `lookup`; an unset
/// variable without a default expands to nothing.
pub fn split_line(line: &str, lookup: &Lookup<'_>) -> Result<Vec<String>, LexError> {
    let bytes = line.as_bytes();
    let mut words: Vec<String> = Vec::new();
    let mut cur: Vec<u8> = Vec::new();
    let mut in_word = false;
    let mut i = 0;
    // `${VAR[*]}` splits its value into several words: they are pushed as
    // separate words when the expansion is the whole word.
    let mut pending_split: Option<Vec<String>> = None;

    let push_word = |words: &mut Vec<String>, cur: &mut Vec<u8>, start: usize| {
        if words.len() >= MAX_LINE_ARGS {
            return Err(LexError::TooManyWords {
                position: start,
                rest: String::from_utf8_lossy(cur).into_owned(),
            });
        }
        words.push(String::from_utf8_lossy(cur).into_owned());
        cur.clear();
        Ok(())
    };
    let mut word_start = 0;

    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b' ' | b'\t' | b'\r' | b'\n' => {
                if in_word {
                    finish(
                        &mut words,
                        &mut cur,
                        &mut pending_split,
                        word_start,
                        &push_word,
                    )?;
                    in_word = false;
                }
                i += 1;
            }
            b'#' => break,
            b'\\' => {
                if !in_word {
                    in_word = true;
                    word_start = i;
                }
                i += escape(bytes, i, &mut cur, false);
            }
            b'\'' => {
                if !in_word {
                    in_word = true;
                    word_start = i;
                }
                let open = i;
                i += 1;
                loop {
                    match bytes.get(i) {
                        None => return Err(LexError::UnmatchedQuote { position: open + 1 }),
                        Some(b'\'') => {
                            i += 1;
                            break;
                        }
                        Some(&b) => {
                            cur.push(b);
                            i += 1;
                        }
                    }
                }
            }
            b'"' => {
                if !in_word {
                    in_word = true;
                    word_start = i;
                }
                let open = i;
                let whole = cur.is_empty();
                let mut split = None;
                i += 1;
                loop {
                    match bytes.get(i) {
                        None => return Err(LexError::UnmatchedQuote { position: open + 1 }),
                        Some(b'"') => {
                            i += 1;
                            break;
                        }
                        Some(b'\\') => i += escape(bytes, i, &mut cur, true),
                        Some(b'$') => i += expand(bytes, i, &mut cur, lookup, &mut split),
                        Some(&b) => {
                            cur.push(b);
                            i += 1;
                        }
                    }
                }
                // `"${VAR[*]}"` alone in its word becomes one word per value part.
                let ends_word = matches!(bytes.get(i), None | Some(b' ' | b'\t' | b'#'));
                if whole && ends_word && split.is_some() {
                    cur.clear();
                    pending_split = split;
                }
            }
            _ => {
                if !in_word {
                    in_word = true;
                    word_start = i;
                }
                cur.push(c);
                i += 1;
            }
        }
    }
    if in_word {
        finish(
            &mut words,
            &mut cur,
            &mut pending_split,
            word_start,
            &push_word,
        )?;
    }
    Ok(words)
}

type PushWord = dyn Fn(&mut Vec<String>, &mut Vec<u8>, usize) -> Result<(), LexError>;

fn finish(
    words: &mut Vec<String>,
    cur: &mut Vec<u8>,
    pending_split: &mut Option<Vec<String>>,
    word_start: usize,
    push_word: &PushWord,
) -> Result<(), LexError> {
    match pending_split.take() {
        Some(parts) => {
            for p in parts {
                let mut b = p.into_bytes();
                push_word(words, &mut b, word_start)?;
            }
            Ok(())
        }
        None => push_word(words, cur, word_start),
    }
}

/// Handles a backslash at `bytes[i]`; returns how many bytes were consumed.
fn escape(bytes: &[u8], i: usize, cur: &mut Vec<u8>, in_dquote: bool) -> usize {
    let Some(&next) = bytes.get(i + 1) else {
        cur.push(b'\\');
        return 1;
    };
    match next {
        b' ' | b'\t' | b'#' | b'\\' | b'\'' | b'"' => {
            cur.push(next);
            2
        }
        // `\$` only escapes inside double quotes (outside, `$` is not special).
        b'$' if in_dquote => {
            cur.push(next);
            2
        }
        b'n' => {
            cur.push(b'\n');
            2
        }
        b'r' => {
            cur.push(b'\r');
            2
        }
        b't' => {
            cur.push(b'\t');
            2
        }
        b'x' => {
            let hex = bytes.get(i + 2..i + 4).and_then(|h| {
                let s = std::str::from_utf8(h).ok()?;
                u8::from_str_radix(s, 16).ok()
            });
            match hex {
                Some(b) => {
                    cur.push(b);
                    4
                }
                None => {
                    cur.push(b'\\');
                    1
                }
            }
        }
        _ => {
            // Unknown escape: the backslash is kept.
            cur.push(b'\\');
            1
        }
    }
}

fn is_var_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b == b'.'
}

fn is_var_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'.'
}

/// Expands a `$` reference at `bytes[i]` into `cur`; returns the bytes consumed.
/// A `$` that does not start a variable is literal.
fn expand(
    bytes: &[u8],
    i: usize,
    cur: &mut Vec<u8>,
    lookup: &Lookup<'_>,
    split: &mut Option<Vec<String>>,
) -> usize {
    match bytes.get(i + 1) {
        Some(b'{') => {
            let Some(close) = bytes[i + 2..].iter().position(|&b| b == b'}') else {
                cur.push(b'$');
                return 1;
            };
            let inner = String::from_utf8_lossy(&bytes[i + 2..i + 2 + close]).into_owned();
            let name_len = inner.bytes().take_while(|&b| is_var_char(b)).count();
            let (name, rest) = inner.split_at(name_len);
            let value = lookup(name);
            let mut word_split = false;
            let value = if let Some(default) = rest.strip_prefix('-') {
                Some(value.unwrap_or_else(|| default.to_string()))
            } else if rest == "[*]" {
                word_split = true;
                value
            } else {
                value
            };
            let value = value.unwrap_or_default();
            if word_split {
                *split = Some(value.split_whitespace().map(str::to_string).collect());
            }
            cur.extend_from_slice(value.as_bytes());
            close + 3
        }
        Some(&b) if is_var_start(b) => {
            let len = bytes[i + 1..]
                .iter()
                .take_while(|&&b| is_var_char(b))
                .count();
            let name = String::from_utf8_lossy(&bytes[i + 1..i + 1 + len]);
            cur.extend_from_slice(lookup(&name).unwrap_or_default().as_bytes());
            1 + len
        }
        _ => {
            cur.push(b'$');
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOME" => Some("/root".into()),
            "EMPTY" => Some(String::new()),
            "LIST" => Some("a b  c".into()),
            _ => None,
        }
    }

    fn split(s: &str) -> Vec<String> {
        split_line(s, &env).unwrap()
    }

    #[test]
    fn blanks_and_comments() {
        assert_eq!(
            split("  bind\t127.0.0.1:80   # c"),
            ["bind", "127.0.0.1:80"]
        );
        assert_eq!(split("global#comment"), ["global"]);
        assert!(split("   # only a comment").is_empty());
        assert!(split("").is_empty());
        assert_eq!(split("mode http\r"), ["mode", "http"]);
    }

    #[test]
    fn quotes() {
        assert_eq!(
            split(r#"set-header X-A "a b # c""#),
            ["set-header", "X-A", "a b # c"]
        );
        assert_eq!(split(r"x 'single $HOME \n'"), ["x", r"single $HOME \n"]);
        assert_eq!(split(r#"x "a"'b c'd"#), ["x", "ab cd"]);
        assert_eq!(split(r#"x "it's""#), ["x", "it's"]);
        assert_eq!(split(r#"x """#), ["x", ""]);
    }

    #[test]
    fn escapes() {
        assert_eq!(split(r"x a\ b\#c"), ["x", "a b#c"]);
        assert_eq!(split(r"x \x41\t\\"), ["x", "A\t\\"]);
        assert_eq!(split(r#"x "q\"q""#), ["x", "q\"q"]);
        assert_eq!(split(r"x a\qb"), ["x", r"a\qb"]);
        // No continuation: a trailing backslash is a word.
        assert_eq!(
            split(r"bind 127.0.0.1:3999 \"),
            ["bind", "127.0.0.1:3999", "\\"]
        );
    }

    #[test]
    fn variables() {
        assert_eq!(split(r#"x "${HOME}/a""#), ["x", "/root/a"]);
        // Outside double quotes `$` is literal, as in HAProxy 2.6.
        assert_eq!(split("x $HOME/a"), ["x", "$HOME/a"]);
        assert_eq!(split("x ${HOME}"), ["x", "${HOME}"]);
        assert_eq!(split(r"x \$HOME"), ["x", r"\$HOME"]);
        assert_eq!(split(r#"x "\$HOME""#), ["x", "$HOME"]);
        assert_eq!(split(r#"x "$HOME$HOME""#), ["x", "/root/root"]);
        assert_eq!(split(r#"x "${UNSET-defval}""#), ["x", "defval"]);
        // The default only replaces unset variables, not empty ones.
        assert_eq!(split(r#"x "${EMPTY-d}""#), ["x", ""]);
        assert_eq!(split(r#"x "${UNSET}""#), ["x", ""]);
        assert_eq!(split(r#"x "${LIST[*]}" y"#), ["x", "a", "b", "c", "y"]);
        assert_eq!(split("x 5$ $"), ["x", "5$", "$"]);
        assert_eq!(split("x '${HOME}'"), ["x", "${HOME}"]);
    }

    #[test]
    fn unmatched_quote_position() {
        let line = r#"    http-request set-header X-A "abc"#;
        let err = split_line(line, &env).unwrap_err();
        assert_eq!(err, LexError::UnmatchedQuote { position: 33 });
        let msg = err.message(line);
        assert!(
            msg.starts_with("unmatched quote at position 33:\n"),
            "{msg}"
        );
        assert!(msg.ends_with(&format!("\n  {}^", " ".repeat(32))), "{msg}");
    }

    #[test]
    fn word_limit() {
        let ok: String = (0..64).map(|i| format!("w{i} ")).collect();
        assert_eq!(split(&ok).len(), 64);
        let too_many: String = (0..65).map(|i| format!("w{i} ")).collect();
        match split_line(&too_many, &env) {
            Err(LexError::TooManyWords { rest, .. }) => assert_eq!(rest, "w64"),
            other => panic!("{other:?}"),
        }
    }
}
