//! Fuzzes the strict chunked-body scanner: the same bytes fed whole and in two pieces must
//! give the same verdict and the same body length (framing never depends on how TCP split
//! the stream), and the scanner never claims more bytes than it was given.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard::hardening::chunked::StrictChunked;

fn run(pieces: &[&[u8]]) -> Result<(usize, bool, u64), ()> {
    let mut s = StrictChunked::new();
    let mut used = 0;
    for p in pieces {
        if s.is_done() {
            break;
        }
        let n = s.scan(p).map_err(|_| ())?;
        assert!(n <= p.len());
        used += n;
    }
    Ok((used, s.is_done(), s.data_len()))
}

fuzz_target!(|data: &[u8]| {
    let Some((&cut, body)) = data.split_first() else {
        return;
    };
    let cut = usize::from(cut).min(body.len());
    let whole = run(&[body]);
    let split = run(&[&body[..cut], &body[cut..]]);
    assert_eq!(
        whole, split,
        "verdict depends on where the stream was split at {cut}"
    );
});
