//! A tiny command-line parser: `--name value` pairs and bare `--switch`es after a subcommand.

use std::collections::HashMap;
use std::str::FromStr;

/// Parsed `--name value` options. Switches (a flag followed by another flag or nothing) map to
/// an empty string.
#[derive(Debug, Default)]
pub struct Args {
    values: HashMap<String, String>,
}

impl Args {
    /// Parses `args` (without the program name or subcommand).
    pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Args, String> {
        let mut values = HashMap::new();
        let mut iter = args.into_iter().peekable();
        while let Some(arg) = iter.next() {
            let name = arg
                .strip_prefix("--")
                .ok_or_else(|| format!("unexpected argument {arg:?}"))?
                .to_string();
            let value = match iter.peek() {
                Some(next) if !next.starts_with("--") => iter.next().unwrap_or_default(),
                _ => String::new(),
            };
            values.insert(name, value);
        }
        Ok(Args { values })
    }

    /// The value of `--name`, parsed, or `default` when absent.
    pub fn get<T: FromStr>(&self, name: &str, default: T) -> Result<T, String> {
        match self.values.get(name) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| format!("invalid value {v:?} for --{name}")),
        }
    }

    /// The value of `--name`, which must be present.
    pub fn required(&self, name: &str) -> Result<&str, String> {
        self.values
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| format!("missing --{name}"))
    }

    /// The value of `--name` if present.
    pub fn optional(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// Whether the bare switch `--name` was given.
    pub fn flag(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Args {
        Args::parse(s.split_whitespace().map(String::from)).unwrap()
    }

    #[test]
    fn values_switches_and_defaults() {
        let a = parse("--port 80 --verbose --conns 5");
        assert_eq!(a.get("port", 0u16).unwrap(), 80);
        assert_eq!(a.get("conns", 1usize).unwrap(), 5);
        assert_eq!(a.get("missing", 7u32).unwrap(), 7);
        assert!(a.flag("verbose"));
        assert!(!a.flag("quiet"));
        assert!(a.required("nope").is_err());
        assert!(a.get::<u16>("verbose", 1).is_err());
    }

    #[test]
    fn rejects_positional_arguments() {
        assert!(Args::parse(["stray".to_string()]).is_err());
    }
}
