//! "did you mean ... maybe ?" hints, reproducing HAProxy 2.6's choices: each
//! word is profiled by its character transitions (letters case-folded, digits
//! as one class, the word's start as one mark, and its end together with
//! punctuation as another), each transition counted in both directions; the
//! candidate with the smallest profile difference wins, the first one on ties.
//! The details were fitted to 148 typos answered by `haproxy -c` 2.6.12 (see
//! `tests/hints.rs`; one of them still differs). For server keywords the order
//! of HAProxy's internal list is unknown, so about one typo in ten gets a
//! different (still close) suggestion than 2.6.12 gives.

const COLS: usize = 32;
const BEGIN: usize = 28;
/// End of word, and any character that is neither a letter nor a digit.
const END: usize = 29;

fn class(c: u8) -> usize {
    match c.to_ascii_lowercase() {
        c @ b'a'..=b'z' => usize::from(c - b'a'),
        b'0'..=b'9' => 26,
        _ => END,
    }
}

fn fingerprint(word: &str) -> Vec<u16> {
    let mut fp = vec![0u16; COLS * COLS];
    let mut bump = |a: usize, b: usize| {
        fp[a * COLS + b] = fp[a * COLS + b].saturating_add(1);
        fp[b * COLS + a] = fp[b * COLS + a].saturating_add(1);
    };
    let mut from = BEGIN;
    for &b in word.as_bytes() {
        let to = class(b);
        bump(from, to);
        from = to;
    }
    bump(from, END);
    fp
}

fn distance(a: &[u16], b: &[u16]) -> usize {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| usize::from(x.abs_diff(y)))
        .sum()
}

/// The closest candidate (the first one on ties, so candidate order matters as
/// in HAProxy), if it is close enough: its distance must not exceed twice the
/// length of either word (HAProxy's acceptance rule).
pub fn best_match<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let fp = fingerprint(word);
    let mut best: Option<(&str, usize)> = None;
    for cand in candidates {
        let d = distance(&fp, &fingerprint(cand));
        if best.is_none_or(|(_, bd)| d < bd) {
            best = Some((cand, d));
        }
    }
    let (cand, d) = best?;
    (d <= 2 * word.len() && d <= 2 * cand.len()).then_some(cand)
}

/// `; did you mean 'x' maybe ?` or an empty string.
pub fn hint<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    match best_match(word, candidates) {
        Some(m) => format!("; did you mean '{m}' maybe ?"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_find_their_keyword() {
        let opts = [
            "forwardfor",
            "httpclose",
            "http-server-close",
            "redispatch",
            "httplog",
        ];
        assert_eq!(best_match("forwardfour", opts), Some("forwardfor"));
        assert_eq!(best_match("redispach", opts), Some("redispatch"));
        let srv = ["weight", "check", "inter", "rise", "fall", "tfo", "backup"];
        assert_eq!(best_match("wieght", srv), Some("weight"));
        assert_eq!(best_match("chekc", srv), Some("check"));
        // Swapped letters keep most transitions (each is counted both ways).
        assert_eq!(
            best_match("ctp-request", ["http-request", "tcp-request"]),
            Some("tcp-request")
        );
        // Ties go to the first candidate, as in HAProxy.
        assert_eq!(best_match("log-ta", ["log-tag", "log"]), Some("log-tag"));
    }

    #[test]
    fn unrelated_words_get_no_hint() {
        assert_eq!(best_match("foobar", ["bind", "mode", "acl"]), None);
        assert_eq!(hint("zzzzzzzz", ["balance"]), "");
        assert_eq!(
            hint("balanse", ["balance"]),
            "; did you mean 'balance' maybe ?"
        );
    }
}
