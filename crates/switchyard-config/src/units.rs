//! Time and size values, with HAProxy 2.6's rounding, limits and messages.
//!
//! Time: `<digits>[us|ms|s|m|h|d]`, units case-sensitive. A bare number is in the
//! keyword's default unit (milliseconds for timeouts and check intervals, seconds
//! for cookie `maxidle`/`maxlife`). Conversion rounds up (`500us` is 1 ms). Values of
//! 2^31 ms or more overflow. Characters left after a valid unit (`5sec`, `1m30s`)
//! only warn and the first number+unit is kept, as 2.6 does.

/// Unit in which a bare number is read, and in which the result is expressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeUnit {
    Ms,
    S,
}

impl TimeUnit {
    fn micros(self) -> u128 {
        match self {
            TimeUnit::Ms => 1_000,
            TimeUnit::S => 1_000_000,
        }
    }
}

/// A parsed time value and an optional warning about trailing characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Time {
    /// In the requested unit.
    pub value: u64,
    /// The character that followed the unit, when there was one.
    pub trailing: Option<char>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimeError {
    /// Nothing to read.
    Empty,
    /// The first character that is neither a digit nor a unit.
    Unexpected(char),
    /// 2^31 ms (~24.8 days) or more.
    Overflow,
}

/// Largest accepted timer in milliseconds (HAProxy's `TIMER_LOOK_BACK` limit).
pub const MAX_TIMER_MS: u64 = i32::MAX as u64;

/// Parses a time value. `unit` is both the default unit and the unit of the result.
pub fn parse_time(text: &str, unit: TimeUnit) -> Result<Time, TimeError> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    if text.is_empty() {
        return Err(TimeError::Empty);
    }
    if digits == 0 {
        return Err(TimeError::Unexpected(text.chars().next().unwrap_or(' ')));
    }
    let (num, rest) = text.split_at(digits);
    let (unit_us, after): (u128, &str) = if let Some(r) = rest.strip_prefix("us") {
        (1, r)
    } else if let Some(r) = rest.strip_prefix("ms") {
        (1_000, r)
    } else if let Some(r) = rest.strip_prefix('s') {
        (1_000_000, r)
    } else if let Some(r) = rest.strip_prefix('m') {
        (60_000_000, r)
    } else if let Some(r) = rest.strip_prefix('h') {
        (3_600_000_000, r)
    } else if let Some(r) = rest.strip_prefix('d') {
        (86_400_000_000, r)
    } else if rest.is_empty() {
        (unit.micros(), rest)
    } else {
        return Err(TimeError::Unexpected(rest.chars().next().unwrap_or(' ')));
    };
    // Long digit strings overflow anyway: cap to avoid u128 overflow on absurd input.
    let n: u128 = if num.len() > 30 {
        return Err(TimeError::Overflow);
    } else {
        num.parse().map_err(|_| TimeError::Overflow)?
    };
    let micros = n * unit_us;
    let value = micros.div_ceil(unit.micros());
    // The result must fit a signed 32-bit count of the requested unit
    // (2^31 ms, ~24.8 days, for timers; 2^31 s for cookie ages).
    if value > u128::from(MAX_TIMER_MS) {
        return Err(TimeError::Overflow);
    }
    Ok(Time {
        value: u64::try_from(value).map_err(|_| TimeError::Overflow)?,
        trailing: after.chars().next(),
    })
}

/// The warning 2.6 prints (without location) for `5sec`-like values.
pub fn trailing_warning(c: char, text: &str) -> String {
    format!(
        "unexpected character '{c}' after the timer value '{text}', only \
         (us=microseconds,ms=milliseconds,s=seconds,m=minutes,h=hours,d=days) are supported. \
         This will be reported as an error in next versions."
    )
}

/// Parses a size: digits with an optional `k`, `m` or `g` suffix (powers of 1024,
/// case-insensitive). Returns the first unexpected character on error.
pub fn parse_size(text: &str) -> Result<u64, Option<char>> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(text.chars().next());
    }
    let n: u64 = text[..digits].parse().map_err(|_| None)?;
    let rest = &text[digits..];
    let mult: u64 = match rest {
        "" => 1,
        "k" | "K" => 1 << 10,
        "m" | "M" => 1 << 20,
        "g" | "G" => 1 << 30,
        _ => return Err(rest.chars().next()),
    };
    n.checked_mul(mult).ok_or(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> u64 {
        let t = parse_time(s, TimeUnit::Ms).unwrap();
        assert_eq!(t.trailing, None, "{s}");
        t.value
    }

    #[test]
    fn units() {
        assert_eq!(ms("5000"), 5000);
        assert_eq!(ms("120s"), 120_000);
        assert_eq!(ms("5ms"), 5);
        assert_eq!(ms("2m"), 120_000);
        assert_eq!(ms("1h"), 3_600_000);
        assert_eq!(ms("1d"), 86_400_000);
        assert_eq!(ms("0"), 0);
        // Rounded up.
        assert_eq!(ms("500us"), 1);
        assert_eq!(ms("1001us"), 2);
    }

    #[test]
    fn seconds_default_unit() {
        let s = |x| parse_time(x, TimeUnit::S).unwrap().value;
        assert_eq!(s("30"), 30);
        assert_eq!(s("30m"), 1800);
        assert_eq!(s("8h"), 28_800);
        assert_eq!(s("500ms"), 1);
    }

    #[test]
    fn errors() {
        assert_eq!(parse_time("", TimeUnit::Ms), Err(TimeError::Empty));
        assert_eq!(
            parse_time("5x", TimeUnit::Ms),
            Err(TimeError::Unexpected('x'))
        );
        assert_eq!(
            parse_time("5S", TimeUnit::Ms),
            Err(TimeError::Unexpected('S'))
        );
        assert_eq!(
            parse_time("1.5s", TimeUnit::Ms),
            Err(TimeError::Unexpected('.'))
        );
        assert_eq!(
            parse_time("-5", TimeUnit::Ms),
            Err(TimeError::Unexpected('-'))
        );
        assert_eq!(parse_time("25d", TimeUnit::Ms), Err(TimeError::Overflow));
        assert_eq!(
            parse_time("2147483648", TimeUnit::Ms),
            Err(TimeError::Overflow)
        );
        assert_eq!(ms("2147483647"), 2_147_483_647);
        assert_eq!(
            parse_time("99999999999999999999999999999999999", TimeUnit::Ms),
            Err(TimeError::Overflow)
        );
    }

    #[test]
    fn trailing_characters_only_warn() {
        let t = parse_time("1m30s", TimeUnit::Ms).unwrap();
        assert_eq!((t.value, t.trailing), (60_000, Some('3')));
        let t = parse_time("5sec", TimeUnit::Ms).unwrap();
        assert_eq!((t.value, t.trailing), (5_000, Some('e')));
        assert!(trailing_warning('e', "5sec").contains("after the timer value '5sec'"));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("16384"), Ok(16384));
        assert_eq!(parse_size("32k"), Ok(32768));
        assert_eq!(parse_size("1M"), Ok(1 << 20));
        assert_eq!(parse_size("x"), Err(Some('x')));
        assert_eq!(parse_size("3q"), Err(Some('q')));
    }
}
