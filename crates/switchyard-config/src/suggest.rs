//! "did you mean ... maybe ?" hints, using the same idea as HAProxy 2.6: compare
//! the character-pair (bigram) profiles of two words, letters folded to lower
//! case, digits as one class, everything else as a separator class.

const CLASSES: usize = 29;
const EDGE: usize = 28;

fn class(c: u8) -> usize {
    match c.to_ascii_lowercase() {
        c @ b'a'..=b'z' => usize::from(c - b'a') + 1,
        b'0'..=b'9' => 27,
        _ => EDGE,
    }
}

fn fingerprint(word: &str) -> Vec<u16> {
    let mut fp = vec![0u16; CLASSES * CLASSES];
    let mut from = EDGE;
    for &b in word.as_bytes() {
        let to = class(b);
        fp[from * CLASSES + to] = fp[from * CLASSES + to].saturating_add(1);
        from = to;
    }
    fp[from * CLASSES + EDGE] = fp[from * CLASSES + EDGE].saturating_add(1);
    fp
}

fn distance(a: &[u16], b: &[u16]) -> usize {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| usize::from(x.abs_diff(y)))
        .sum()
}

/// The closest candidate, if it is close enough: its distance must not exceed
/// twice the length of either word (HAProxy's acceptance rule).
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
        // HAProxy 2.6 suggests 'tfo' for 'foo' among server keywords.
        assert_eq!(best_match("foo", srv), Some("tfo"));
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
