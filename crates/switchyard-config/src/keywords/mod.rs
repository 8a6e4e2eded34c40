//! Keyword handlers, one file per section family, and the argument helpers
//! they share (with HAProxy's wording of errors).

pub(crate) mod aux;
pub(crate) mod bind;
pub(crate) mod global;
pub(crate) mod lb;
pub(crate) mod option;
pub(crate) mod proxy;
pub(crate) mod rules;
pub(crate) mod server;

use crate::diag::{Level, Shape};
use crate::draft::{Diags, Line};
use crate::units::{self, TimeError, TimeUnit};
use std::time::Duration;

/// How HAProxy words a missing or unreadable time argument: keywords differ.
#[derive(Clone, Copy)]
pub(crate) enum TimeWording {
    /// `timeout ...`: "'timeout client' expects an integer value (in milliseconds)",
    /// "unexpected character 'x' in 'timeout client'".
    Value,
    /// `hard-stop-after`: "'hard-stop-after' expects <time> as argument.",
    /// "unexpected character 'x' in argument to <hard-stop-after>.".
    Argument,
}

/// Reads a time argument. `what` names the keyword in messages (`timeout client`);
/// characters after a valid unit only warn, an overflow is the same error for all.
pub(crate) fn time_arg(
    diags: &mut Diags,
    line: &Line,
    idx: usize,
    what: &str,
    unit: TimeUnit,
    wording: TimeWording,
) -> Option<u64> {
    let text = line.arg(idx);
    let kw = line.arg(0);
    let unit_name = match unit {
        TimeUnit::Ms => "milliseconds",
        TimeUnit::S => "seconds",
    };
    match units::parse_time(text, unit) {
        Ok(t) => {
            if let Some(c) = t.trailing {
                diags.push(
                    Level::Warning,
                    Some(&line.loc),
                    kw,
                    units::trailing_warning(c, text),
                    Shape::Unlocated,
                );
            }
            Some(t.value)
        }
        Err(TimeError::Empty) => {
            let message = match wording {
                TimeWording::Value => format!("'{what}' expects an integer value (in {unit_name})"),
                TimeWording::Argument => format!("'{what}' expects <time> as argument."),
            };
            diags.alert(&line.loc, kw, message);
            None
        }
        Err(TimeError::Unexpected(c)) => {
            let message = match wording {
                TimeWording::Value => format!("unexpected character '{c}' in '{what}'"),
                TimeWording::Argument => {
                    format!("unexpected character '{c}' in argument to <{what}>.")
                }
            };
            diags.alert(&line.loc, kw, message);
            None
        }
        Err(TimeError::Overflow) => {
            diags.alert(
                &line.loc,
                kw,
                format!(
                    "timer overflow in argument '{text}' to '{what}' (maximum value is 2147483647 ms or ~24.8 days)"
                ),
            );
            None
        }
    }
}

pub(crate) fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// Reads an unsigned integer argument: digits only, within `max`.
pub(crate) fn uint_arg(
    diags: &mut Diags,
    line: &Line,
    idx: usize,
    what: &str,
    max: u64,
) -> Option<u64> {
    let text = line.arg(idx);
    if text.is_empty() {
        diags.alert(
            &line.loc,
            line.arg(0),
            format!("'{what}' expects an integer argument."),
        );
        return None;
    }
    match text.parse::<u64>() {
        Ok(v) if v <= max && !text.starts_with('+') => Some(v),
        Ok(_) => {
            diags.alert(
                &line.loc,
                line.arg(0),
                format!("'{what}' value must be between 0 and {max} (got '{text}')."),
            );
            None
        }
        Err(_) => {
            diags.alert(
                &line.loc,
                line.arg(0),
                format!("'{what}' expects an integer argument (got '{text}')."),
            );
            None
        }
    }
}

/// Warns that a keyword is accepted but has no effect in switchyard.
pub(crate) fn ignored(diags: &mut Diags, line: &Line, what: &str, why: &str) {
    diags.warn(
        &line.loc,
        line.arg(0),
        format!("'{what}' is ignored by switchyard ({why})."),
    );
}

/// Refuses a keyword HAProxy knows but switchyard does not implement.
pub(crate) fn unsupported(diags: &mut Diags, line: &Line, what: &str, why: &str) {
    diags.alert(
        &line.loc,
        line.arg(0),
        format!("'{what}' is not supported by switchyard ({why})."),
    );
}

#[cfg(test)]
mod tests;
