//! Reading typed settings from environment variables, collecting every problem at once.
//!
//! Startup should fail with one message that lists *every* bad variable, so an operator fixes
//! them in one go instead of restarting once per typo.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

/// Looks a variable up by name.
type Lookup = Box<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Where settings come from: the process environment in production, a map in unit tests.
pub struct Env {
    lookup: Lookup,
    errors: Vec<String>,
}

impl Env {
    /// Reads the process environment, after loading `.env` from the working directory (when
    /// present) without overriding variables that are already set.
    pub fn from_process() -> Self {
        // A missing `.env` is the normal case outside development.
        let _ = dotenvy::dotenv();
        Self::with_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings from a fixed map (unit tests).
    pub fn from_map(map: HashMap<String, String>) -> Self {
        Self::with_lookup(move |name| map.get(name).cloned())
    }

    fn with_lookup(lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> Self {
        Self {
            lookup: Box::new(lookup),
            errors: Vec::new(),
        }
    }

    /// The raw value of `name`; empty strings count as unset.
    pub fn raw(&self, name: &str) -> Option<String> {
        (self.lookup)(name).filter(|value| !value.trim().is_empty())
    }

    /// A string setting with a default.
    pub fn string(&self, name: &str, default: &str) -> String {
        self.raw(name).unwrap_or_else(|| default.to_owned())
    }

    /// A parsed setting with a default; a value that does not parse is recorded as an error
    /// (explained by `expected`) and the default is returned so reading can go on.
    pub fn parsed<T: FromStr>(&mut self, name: &str, default: T, expected: &str) -> T {
        match self.raw(name) {
            None => default,
            Some(value) => match value.trim().parse() {
                Ok(parsed) => parsed,
                Err(_) => {
                    self.invalid(name, &value, expected);
                    default
                }
            },
        }
    }

    /// An optional parsed setting.
    pub fn optional<T: FromStr>(&mut self, name: &str, expected: &str) -> Option<T> {
        let value = self.raw(name)?;
        match value.trim().parse() {
            Ok(parsed) => Some(parsed),
            Err(_) => {
                self.invalid(name, &value, expected);
                None
            }
        }
    }

    /// A boolean setting (`true/false`, `1/0`, `yes/no`, `on/off`).
    pub fn flag(&mut self, name: &str, default: bool) -> bool {
        match self.raw(name).map(|v| v.trim().to_ascii_lowercase()) {
            None => default,
            Some(v) if matches!(v.as_str(), "true" | "1" | "yes" | "on") => true,
            Some(v) if matches!(v.as_str(), "false" | "0" | "no" | "off") => false,
            Some(v) => {
                self.invalid(name, &v, "true or false");
                default
            }
        }
    }

    /// Records a problem with `name` that a caller detected itself.
    pub fn error(&mut self, name: &str, problem: impl fmt::Display) {
        self.errors.push(format!("{name}: {problem}"));
    }

    fn invalid(&mut self, name: &str, value: &str, expected: &str) {
        self.errors
            .push(format!("{name}: expected {expected}, got {value:?}"));
    }

    /// Ends reading: every recorded problem, or the built value.
    pub fn finish<T>(self, value: T) -> Result<T, ConfigError> {
        if self.errors.is_empty() {
            Ok(value)
        } else {
            Err(ConfigError(self.errors))
        }
    }
}

/// Every configuration problem found, one per line.
#[derive(Debug)]
pub struct ConfigError(pub Vec<String>);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "invalid configuration:")?;
        for line in &self.0 {
            writeln!(f, "  - {line}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_map(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn every_bad_variable_is_reported_by_name() {
        let mut env = env(&[("PORT", "eighty"), ("HERALD_AUTO_MIGRATE", "maybe")]);
        let port: u16 = env.parsed("PORT", 8080, "a TCP port number");
        let migrate = env.flag("HERALD_AUTO_MIGRATE", true);
        assert_eq!((port, migrate), (8080, true));
        let message = env.finish(()).unwrap_err().to_string();
        assert!(message.contains("PORT: expected a TCP port number, got \"eighty\""));
        assert!(message.contains("HERALD_AUTO_MIGRATE: expected true or false"));
    }

    #[test]
    fn empty_values_count_as_unset() {
        let mut env = env(&[("PORT", " ")]);
        assert_eq!(env.parsed::<u16>("PORT", 8080, "a port"), 8080);
        assert!(env.finish(()).is_ok());
    }
}
