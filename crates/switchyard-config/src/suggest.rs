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

/// The transition counts of a word, as sorted `(cell, count)` pairs (sparse:
/// a word has at most twice as many cells as characters, plus two).
fn fingerprint(word: &str) -> Vec<(usize, u32)> {
    let mut cells: Vec<usize> = Vec::with_capacity(2 * word.len() + 2);
    let mut from = BEGIN;
    for &b in word.as_bytes().iter().chain(std::iter::once(&0)) {
        let to = if b == 0 { END } else { class(b) };
        cells.push(from * COLS + to);
        cells.push(to * COLS + from);
        from = to;
    }
    cells.sort_unstable();
    let mut fp: Vec<(usize, u32)> = Vec::with_capacity(cells.len());
    for c in cells {
        match fp.last_mut() {
            Some((last, n)) if *last == c => *n += 1,
            _ => fp.push((c, 1)),
        }
    }
    fp
}

/// Sum of the count differences over all cells (a merge of two sorted lists).
fn distance(a: &[(usize, u32)], b: &[(usize, u32)]) -> usize {
    let (mut i, mut j, mut d) = (0, 0, 0usize);
    while i < a.len() || j < b.len() {
        match (a.get(i), b.get(j)) {
            (Some(&(ca, na)), Some(&(cb, nb))) if ca == cb => {
                d += na.abs_diff(nb) as usize;
                i += 1;
                j += 1;
            }
            (Some(&(ca, na)), Some(&(cb, _))) if ca < cb => {
                d += na as usize;
                i += 1;
            }
            (Some(&(_, na)), None) => {
                d += na as usize;
                i += 1;
            }
            (_, Some(&(_, nb))) => {
                d += nb as usize;
                j += 1;
            }
            (None, None) => break,
        }
    }
    d
}

/// The closest candidate (the first one on ties, so candidate order matters as
/// in HAProxy), if it is close enough: its distance must not exceed 2.5 times
/// the length of either word (with transitions counted both ways, this is the
/// bound that best reproduces 2.6.12's answers).
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
    (2 * d <= 5 * word.len() && 2 * d <= 5 * cand.len()).then_some(cand)
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
