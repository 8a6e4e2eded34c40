//! Fuzzes the Cookie header parser used for persistence: every pair's offsets lie inside the
//! value and in order, and the name/value slices are the bytes at those offsets.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard::backend::sticky::parse_cookie_header;

fuzz_target!(|data: &[u8]| {
    let mut last_end = 0;
    for pair in parse_cookie_header(data) {
        assert!(pair.start <= pair.equal && pair.equal <= pair.end && pair.end <= data.len());
        assert!(pair.start >= last_end);
        assert!(pair.value_start <= pair.end);
        assert_eq!(&data[pair.start..pair.start + pair.name.len()], pair.name);
        assert_eq!(
            &data[pair.value_start..pair.value_start + pair.value.len()],
            pair.value
        );
        last_end = pair.end;
    }
});
