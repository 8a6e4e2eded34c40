//! A strict, incremental scanner for a chunked request body (RFC 9112 §7.1).
//!
//! It finds where the body ends without buffering it and refuses everything a
//! lenient parser might read differently from the next hop: signs, `0x`, spaces
//! or an empty chunk-size, sizes that do not fit in 64 bits, a chunk extension that
//! is not `;name[=token|"quoted"]`, bare LF or CR anywhere, chunk data not followed by
//! exactly CRLF, trailer lines that are not valid field lines (obs-fold, no colon,
//! CTLs). Extensions are capped at [`MAX_EXT`] bytes per chunk line and the trailer
//! section at [`MAX_TRAILERS`] bytes (so a client cannot grow a buffer with them).
//!
//! Because the scanner validates every framing byte, a body it accepts is framed the
//! same way by any RFC-conformant recipient, so it may be passed through unchanged.

use super::{is_field_value_byte, is_tchar, Reject};

/// Longest accepted chunk extension (all extensions of one chunk line), in bytes.
pub const MAX_EXT: usize = 4096;
/// Longest accepted trailer section, in bytes.
pub const MAX_TRAILERS: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum St {
    Size { value: u64, digits: u8 },
    SizeWs(u64),
    ExtNameStart(u64),
    ExtName(u64),
    ExtAfterName(u64),
    ExtValStart(u64),
    ExtToken(u64),
    ExtQuoted(u64),
    ExtQuotedEsc(u64),
    ExtAfterVal(u64),
    SizeLf(u64),
    Data(u64),
    DataCr,
    DataLf,
    TrailerStart,
    TrailerName,
    TrailerValue,
    TrailerLf,
    FinalLf,
    Done,
}

/// Incremental strict chunked-body scanner. Feed it the bytes that follow the request
/// head with [`StrictChunked::scan`] until [`StrictChunked::is_done`].
#[derive(Debug, Clone)]
pub struct StrictChunked {
    st: St,
    ext_len: usize,
    trailer_len: usize,
    data_total: u64,
}

impl Default for StrictChunked {
    fn default() -> Self {
        Self::new()
    }
}

const fn bad(reason: &'static str) -> Reject {
    Reject::bad(reason)
}

impl StrictChunked {
    pub fn new() -> Self {
        StrictChunked {
            st: St::Size {
                value: 0,
                digits: 0,
            },
            ext_len: 0,
            trailer_len: 0,
            data_total: 0,
        }
    }

    /// True once the last chunk and the trailer section have been seen.
    pub fn is_done(&self) -> bool {
        self.st == St::Done
    }

    /// Chunk-data bytes seen so far (the decoded body length).
    pub fn data_len(&self) -> u64 {
        self.data_total
    }

    /// Advances over `buf` and returns how many of its bytes belong to the body; the
    /// scan stops right after the body's last byte. An error is final: the connection
    /// must answer 400 (or close) and never be reused.
    pub fn scan(&mut self, buf: &[u8]) -> Result<usize, Reject> {
        let mut i = 0;
        while i < buf.len() && self.st != St::Done {
            if let St::Data(n) = self.st {
                let take = n.min((buf.len() - i) as u64);
                i += take as usize;
                self.data_total += take;
                self.st = if take == n {
                    St::DataCr
                } else {
                    St::Data(n - take)
                };
                continue;
            }
            let b = buf[i];
            i += 1;
            self.st = self.step(b)?;
        }
        Ok(i)
    }

    fn ext_byte(&mut self) -> Result<(), Reject> {
        self.ext_len += 1;
        if self.ext_len > MAX_EXT {
            return Err(bad("chunk extension too long"));
        }
        Ok(())
    }

    fn step(&mut self, b: u8) -> Result<St, Reject> {
        let ws = b == b' ' || b == b'\t';
        Ok(match self.st {
            St::Size { value, digits } => match b {
                b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                    let d = u64::from((b as char).to_digit(16).unwrap_or(0));
                    if value == 0 && d == 0 {
                        St::Size {
                            value,
                            digits: digits.max(1),
                        }
                    } else {
                        let v = value
                            .checked_mul(16)
                            .and_then(|v| v.checked_add(d))
                            .ok_or(bad("chunk size overflows 64 bits"))?;
                        St::Size {
                            value: v,
                            digits: digits.saturating_add(1),
                        }
                    }
                }
                _ if digits == 0 => return Err(bad("invalid chunk size")),
                b';' => {
                    self.ext_len = 0;
                    St::ExtNameStart(value)
                }
                b'\r' => St::SizeLf(value),
                _ if ws => {
                    self.ext_len = 0;
                    St::SizeWs(value)
                }
                _ => return Err(bad("invalid chunk size")),
            },
            St::SizeWs(n) => {
                self.ext_byte()?;
                match b {
                    b';' => St::ExtNameStart(n),
                    _ if ws => St::SizeWs(n),
                    _ => return Err(bad("whitespace after chunk size without extension")),
                }
            }
            St::ExtNameStart(n) => {
                self.ext_byte()?;
                match b {
                    _ if ws => St::ExtNameStart(n),
                    _ if is_tchar(b) => St::ExtName(n),
                    _ => return Err(bad("invalid chunk extension name")),
                }
            }
            St::ExtName(n) => {
                self.ext_byte()?;
                match b {
                    _ if is_tchar(b) => St::ExtName(n),
                    _ if ws => St::ExtAfterName(n),
                    b'=' => St::ExtValStart(n),
                    b';' => St::ExtNameStart(n),
                    b'\r' => St::SizeLf(n),
                    _ => return Err(bad("invalid chunk extension")),
                }
            }
            St::ExtAfterName(n) => {
                self.ext_byte()?;
                match b {
                    _ if ws => St::ExtAfterName(n),
                    b'=' => St::ExtValStart(n),
                    b';' => St::ExtNameStart(n),
                    _ => return Err(bad("invalid chunk extension")),
                }
            }
            St::ExtValStart(n) => {
                self.ext_byte()?;
                match b {
                    _ if ws => St::ExtValStart(n),
                    b'"' => St::ExtQuoted(n),
                    _ if is_tchar(b) => St::ExtToken(n),
                    _ => return Err(bad("invalid chunk extension value")),
                }
            }
            St::ExtToken(n) => {
                self.ext_byte()?;
                match b {
                    _ if is_tchar(b) => St::ExtToken(n),
                    _ if ws => St::ExtAfterVal(n),
                    b';' => St::ExtNameStart(n),
                    b'\r' => St::SizeLf(n),
                    _ => return Err(bad("invalid chunk extension value")),
                }
            }
            St::ExtQuoted(n) => {
                self.ext_byte()?;
                match b {
                    b'"' => St::ExtAfterVal(n),
                    b'\\' => St::ExtQuotedEsc(n),
                    b'\t' | b' ' | 0x21 | 0x23..=0x5b | 0x5d..=0x7e | 0x80..=0xff => {
                        St::ExtQuoted(n)
                    }
                    _ => return Err(bad("invalid quoted chunk extension")),
                }
            }
            St::ExtQuotedEsc(n) => {
                self.ext_byte()?;
                match b {
                    b'\t' | b' '..=b'~' | 0x80..=0xff => St::ExtQuoted(n),
                    _ => return Err(bad("invalid quoted-pair in chunk extension")),
                }
            }
            St::ExtAfterVal(n) => {
                self.ext_byte()?;
                match b {
                    _ if ws => St::ExtAfterVal(n),
                    b';' => St::ExtNameStart(n),
                    b'\r' => St::SizeLf(n),
                    _ => return Err(bad("invalid chunk extension")),
                }
            }
            St::SizeLf(n) => match b {
                b'\n' if n == 0 => St::TrailerStart,
                b'\n' => St::Data(n),
                _ => return Err(bad("chunk size line not ended by CRLF")),
            },
            St::Data(_) => unreachable!("data is consumed in bulk by scan"),
            St::DataCr if b == b'\r' => St::DataLf,
            St::DataLf if b == b'\n' => St::Size {
                value: 0,
                digits: 0,
            },
            St::DataCr | St::DataLf => return Err(bad("chunk data not followed by CRLF")),
            St::TrailerStart | St::TrailerName | St::TrailerValue | St::TrailerLf => {
                self.trailer_len += 1;
                if self.trailer_len > MAX_TRAILERS {
                    return Err(bad("trailer section too large"));
                }
                match (self.st, b) {
                    (St::TrailerStart, b'\r') => St::FinalLf,
                    (St::TrailerStart | St::TrailerName, _) if is_tchar(b) => St::TrailerName,
                    (St::TrailerName, b':') => St::TrailerValue,
                    (St::TrailerValue, b'\r') => St::TrailerLf,
                    (St::TrailerValue, _) if is_field_value_byte(b) => St::TrailerValue,
                    (St::TrailerLf, b'\n') => St::TrailerStart,
                    _ => return Err(bad("invalid trailer field line")),
                }
            }
            St::FinalLf if b == b'\n' => St::Done,
            St::FinalLf => return Err(bad("chunked body not ended by CRLF")),
            St::Done => St::Done,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scans `body` in one piece; returns Ok(consumed) only when the body is complete.
    fn whole(body: &[u8]) -> Result<usize, Reject> {
        let mut s = StrictChunked::new();
        let n = s.scan(body)?;
        if s.is_done() {
            Ok(n)
        } else {
            Err(bad("incomplete"))
        }
    }

    #[test]
    fn accepts_valid_bodies() {
        for b in [
            &b"5\r\nhello\r\n0\r\n\r\n"[..],
            b"5;foo=bar\r\nhello\r\n0\r\n\r\n",
            b"5 ;foo = bar ;x\r\nhello\r\n0\r\n\r\n",
            b"5;a=\"b c\\\"d\"\r\nhello\r\n0\r\n\r\n",
            b"A\r\nhelloworld\r\n0\r\n\r\n",
            b"0005\r\nhello\r\n0\r\n\r\n",
            b"5\r\nhello\r\n0\r\nX-T: 1\r\nY:\r\n\r\n",
            b"0\r\n\r\n",
            b"ffffffffffffffff\r\n",
        ] {
            let mut s = StrictChunked::new();
            assert!(s.scan(b).is_ok(), "{}", String::from_utf8_lossy(b));
        }
        let body = b"5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\n";
        assert_eq!(whole(body), Ok(15));
    }

    #[test]
    fn rejects_corpus_tricks() {
        for b in [
            &b"+5\r\nhello\r\n0\r\n\r\n"[..],
            b"0x5\r\nhello\r\n0\r\n\r\n",
            b"-5\r\nhello\r\n0\r\n\r\n",
            b" 5\r\nhello\r\n0\r\n\r\n",
            b"5 \r\nhello\r\n0\r\n\r\n",
            b"\r\nhello\r\n0\r\n\r\n",
            b"10000000000000005\r\nhello\r\n0\r\n\r\n",
            b"ffffffffffffffffff\r\nhello\r\n0\r\n\r\n",
            b"5\nhello\r\n0\r\n\r\n",
            b"5\r\nhelloX\r\n0\r\n\r\n",
            b"5\r\nhello\n0\r\n\r\n",
            b"5\r\nhello\r\n0\n\n",
            b"5 foo\r\nhello\r\n0\r\n\r\n",
            b"5;a=\x00\r\nhello\r\n0\r\n\r\n",
            b"5;a\rb\r\nhello\r\n0\r\n\r\n",
            b"5\r\nhello\r\n0\r\nX-A: y\n\r\n",
            b"5\r\nhello\r\n0\r\nX-A: y\r\n z\r\n\r\n",
            b"\xd9\xa5\r\nhello\r\n0\r\n\r\n",
            b"5\r\nhello\r0\r\n\r\n",
            b"5;\r\nhello\r\n0\r\n\r\n",
            b"5;a=\r\nhello\r\n0\r\n\r\n",
            b"5\r\nhello\r\n0\r\nX-A : y\r\n\r\n",
            b"5\r\nhello\r\n0\r\nX-A: \x01\r\n\r\n",
            b"5\r\nhello\r\n0\r\n\r\r",
        ] {
            assert!(whole(b).is_err(), "{}", String::from_utf8_lossy(b));
        }
    }

    #[test]
    fn caps_extensions_and_trailers() {
        let mut long_ext = b"5;".to_vec();
        long_ext.extend(std::iter::repeat_n(b'a', MAX_EXT + 1));
        long_ext.extend_from_slice(b"\r\nhello\r\n0\r\n\r\n");
        assert_eq!(
            whole(&long_ext).unwrap_err().reason,
            "chunk extension too long"
        );
        let mut long_tr = b"0\r\n".to_vec();
        for _ in 0..(MAX_TRAILERS / 10 + 1) {
            long_tr.extend_from_slice(b"X-T: abc\r\n");
        }
        long_tr.extend_from_slice(b"\r\n");
        assert_eq!(
            whole(&long_tr).unwrap_err().reason,
            "trailer section too large"
        );
    }

    fn gen_body(rng: &mut fastrand::Rng) -> (Vec<u8>, u64) {
        let mut out = Vec::new();
        let mut total = 0;
        for _ in 0..rng.usize(0..5) {
            let n = rng.usize(1..40);
            total += n as u64;
            let size = if rng.bool() {
                format!("{n:x}")
            } else {
                format!("{n:04X}")
            };
            out.extend_from_slice(size.as_bytes());
            match rng.u8(..4) {
                0 => out.extend_from_slice(b";a=b"),
                1 => out.extend_from_slice(b" ; q=\"x;y\""),
                2 => out.extend_from_slice(b";flag;k=v"),
                _ => {}
            }
            out.extend_from_slice(b"\r\n");
            out.extend((0..n).map(|_| rng.u8(..)));
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n");
        if rng.bool() {
            out.extend_from_slice(b"X-Trailer: v\r\n");
        }
        out.extend_from_slice(b"\r\n");
        (out, total)
    }

    /// Property: however a valid body is split across reads, the scanner ends exactly at
    /// its last byte and counts exactly its data bytes (buffer-boundary bugs are a
    /// classic source of chunked desyncs).
    #[test]
    fn random_splits_match_one_shot() {
        let mut rng = fastrand::Rng::with_seed(42);
        for _ in 0..crate::hardening::test_cases(3_000) {
            let (body, total) = gen_body(&mut rng);
            let mut with_next = body.clone();
            with_next.extend_from_slice(b"GET /next HTTP/1.1\r\n\r\n");
            let mut s = StrictChunked::new();
            let mut pos = 0;
            while !s.is_done() {
                let step = rng.usize(1..8).min(with_next.len() - pos);
                let used = s
                    .scan(&with_next[pos..pos + step])
                    .expect("valid body rejected");
                pos += used;
                if used < step {
                    break;
                }
            }
            assert!(s.is_done());
            assert_eq!(pos, body.len());
            assert_eq!(s.data_len(), total);
        }
    }

    /// Property: after any single-byte mutation of a valid body, the scanner either
    /// rejects it or frames it exactly as an independent naive decoder does.
    #[test]
    fn random_mutations_agree_with_a_naive_decoder() {
        let mut rng = fastrand::Rng::with_seed(9);
        let interesting = [b'\r', b'\n', b' ', b';', b'=', b'"', b'0', b'f', b'x', 0u8];
        for _ in 0..crate::hardening::test_cases(20_000) {
            let (mut body, _) = gen_body(&mut rng);
            let i = rng.usize(..body.len());
            let b = interesting[rng.usize(..interesting.len())];
            match rng.u8(..3) {
                0 => body[i] = b,
                1 => body.insert(i, b),
                _ => {
                    body.remove(i);
                }
            }
            if let Ok(n) = whole(&body) {
                assert_eq!(
                    Some(n),
                    naive_end(&body),
                    "{:?}",
                    String::from_utf8_lossy(&body)
                );
            }
        }
    }

    /// Where a minimal decoder (size line = hex digits, then anything up to CRLF) thinks
    /// the body ends.
    fn naive_end(b: &[u8]) -> Option<usize> {
        let mut pos = 0;
        loop {
            let lf = pos + b[pos..].windows(2).position(|w| w == b"\r\n")?;
            let line = &b[pos..lf];
            let hex: Vec<u8> = line
                .iter()
                .copied()
                .take_while(u8::is_ascii_hexdigit)
                .collect();
            let n = u64::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()? as usize;
            pos = lf + 2;
            if n == 0 {
                loop {
                    let lf = pos + b[pos..].windows(2).position(|w| w == b"\r\n")?;
                    let empty = lf == pos;
                    pos = lf + 2;
                    if empty {
                        return Some(pos);
                    }
                }
            }
            pos += n;
            if b.get(pos..pos + 2)? != b"\r\n" {
                return None;
            }
            pos += 2;
        }
    }
}
