//! Field-level validation errors, collected so one response lists every problem at once.

use std::collections::BTreeMap;

/// Problems found in a request, keyed by the field name the client sent (camelCase).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FieldErrors(BTreeMap<String, Vec<String>>);

impl FieldErrors {
    pub fn new() -> Self {
        Self::default()
    }

    /// A single problem with one field.
    pub fn single(field: impl Into<String>, message: impl Into<String>) -> Self {
        let mut errors = Self::new();
        errors.add(field, message);
        errors
    }

    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.entry(field.into()).or_default().push(message.into());
    }

    /// Runs a parser, recording its error under `field`; `None` when it failed.
    pub fn check<T, E: std::fmt::Display>(
        &mut self,
        field: &str,
        result: Result<T, E>,
    ) -> Option<T> {
        result
            .map_err(|error| self.add(field, error.to_string()))
            .ok()
    }

    /// Runs a validation that reports its own fields, keeping them with the others; `None`
    /// when it failed.
    pub fn check_all<T>(&mut self, result: Result<T, FieldErrors>) -> Option<T> {
        result
            .map_err(|errors| {
                for (field, messages) in errors.0 {
                    self.0.entry(field).or_default().extend(messages);
                }
            })
            .ok()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(value)` when nothing was recorded.
    pub fn into_result<T>(self, value: T) -> Result<T, Self> {
        if self.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }

    /// The parsed value when every check passed; the collected errors otherwise.
    pub fn finish<T>(self, value: Option<T>) -> Result<T, Self> {
        match value {
            Some(value) if self.is_empty() => Ok(value),
            _ => Err(self),
        }
    }

    pub fn fields(&self) -> &BTreeMap<String, Vec<String>> {
        &self.0
    }

    /// One human sentence summarising the problems, for `detail`.
    pub fn summary(&self) -> String {
        self.0
            .iter()
            .map(|(field, messages)| format!("{field}: {}", messages.join(" ")))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Whether PostgreSQL `text` can store `text`: it cannot hold U+0000.
pub fn storable(text: &str) -> bool {
    !text.contains('\0')
}

/// Whether `text` can serve as a name or an id: no control characters (NUL, newlines, tabs,
/// escapes), which would break logs, headers and displays.
pub fn plain_name(text: &str) -> bool {
    !text.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_is_unstorable_and_controls_are_not_names() {
        assert!(storable("tab\tand\nnewline"));
        assert!(!storable("a\0b"));
        assert!(plain_name("Équipe 42 — général"));
        for bad in ["a\0b", "a\nb", "a\tb", "a\u{1b}[31m", "a\u{7f}", "a\u{85}"] {
            assert!(!plain_name(bad), "{bad:?}");
        }
    }
}
