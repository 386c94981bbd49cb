//! Errors in policy input, each naming the key, the value and the reason.
//!
//! A [`PolicyError`] never stops anything: whoever resolves a policy keeps
//! the errors next to the effective policy, which falls back to lower layers
//! for the faulty setting. Displaying the errors (the agent's log, `GET
//! /logs`, a metric) is left to the caller.

use std::fmt;

use crate::quantity::{DurationError, SizeError};

/// Longest value, in characters, kept in a [`PolicyError`]; longer values are
/// cut and end in `…`.
pub const MAX_ERROR_VALUE_CHARS: usize = 80;

/// One faulty setting: where it was, what it said, and why it was refused.
///
/// Displays as `key (field): "value": reason`, for example
/// `podlog.dev/policy (containers.bar.maxFiles): "0": out of range: must be 2..=1000`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyError {
    /// Where the setting came from: an annotation key (`podlog.dev/max-files`,
    /// `podlog.dev/policy`) or `config` for the node defaults.
    pub key: String,
    /// The field's path inside YAML (`maxFiles`, `containers.bar.delimiter`),
    /// empty for a short-key annotation or an error about a whole document.
    pub field: String,
    /// The refused value, rendered as text and cut to
    /// [`MAX_ERROR_VALUE_CHARS`] characters.
    pub value: String,
    /// Why it was refused.
    pub reason: Reason,
}

/// Why a setting was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Reason {
    /// A `podlog.dev/` annotation that podlog does not know.
    #[error("unknown podlog.dev annotation (known: {known})")]
    UnknownKey {
        /// The known keys.
        known: &'static str,
    },
    /// A YAML field that podlog does not know.
    #[error("unknown field (known: {known})")]
    UnknownField {
        /// The fields allowed here.
        known: &'static str,
    },
    /// The same field twice in one mapping; neither is used.
    #[error("duplicate field")]
    Duplicate,
    /// A mapping key that is not a string.
    #[error("keys must be strings")]
    KeyNotString,
    /// A value of the wrong YAML type (a list where a mapping is expected).
    #[error("expected {expected}, found {found}")]
    WrongType {
        /// What the field takes.
        expected: &'static str,
        /// What was there.
        found: &'static str,
    },
    /// A word outside a fixed set.
    #[error("expected one of: {expected}")]
    NotOneOf {
        /// The accepted words.
        expected: &'static str,
    },
    /// A negative number where only non-negative ones make sense.
    #[error("must not be negative")]
    Negative,
    /// A number with a fraction or an exponent where an integer is needed.
    #[error("must be a whole number")]
    NotInteger,
    /// A number too large for the field.
    #[error("too large")]
    Overflow,
    /// A malformed size.
    #[error(transparent)]
    Size(#[from] SizeError),
    /// A malformed duration.
    #[error(transparent)]
    Duration(#[from] DurationError),
    /// A well-formed value outside the field's range.
    #[error("out of range: must be {allowed}")]
    OutOfRange {
        /// The accepted range, in the field's own notation.
        allowed: &'static str,
    },
    /// A required field is missing.
    #[error("missing required field `{field}`")]
    Missing {
        /// The field.
        field: &'static str,
    },
    /// A regular expression that does not compile within podlog's limits.
    #[error("invalid regex: {message}")]
    Regex {
        /// The regex crate's message (first line, cut).
        message: String,
    },
    /// Input larger than podlog parses.
    #[error("{len} bytes is over the limit of {max} bytes")]
    TooLarge {
        /// The input's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// YAML nested deeper than any policy needs.
    #[error("nested deeper than {max} levels")]
    TooDeep {
        /// The limit.
        max: usize,
    },
    /// YAML whose anchors and aliases expand past a small multiple of its
    /// own size (a "billion laughs" document).
    #[error("anchors and aliases expand the document past {max} nodes and bytes")]
    Expansion {
        /// The budget that was exceeded.
        max: usize,
    },
    /// YAML tags (`!foo`) are not part of the policy format.
    #[error("YAML tags are not supported")]
    Tagged,
    /// Not YAML.
    #[error("not valid YAML: {message}")]
    Yaml {
        /// The parser's message (cut).
        message: String,
    },
    /// `maxTotalSize` below `maxFileSize` after merging the layers.
    #[error("maxTotalSize ({total} bytes) is smaller than maxFileSize ({file} bytes)")]
    TotalBelowFileSize {
        /// The effective `maxTotalSize`, in bytes.
        total: u64,
        /// The effective `maxFileSize`, in bytes.
        file: u64,
    },
}

// === impl PolicyError ===

impl PolicyError {
    /// An error for `key`/`field`, keeping at most
    /// [`MAX_ERROR_VALUE_CHARS`] characters of `value`.
    pub fn new(
        key: impl Into<String>,
        field: impl Into<String>,
        value: &str,
        reason: Reason,
    ) -> Self {
        Self {
            key: key.into(),
            field: clip(&field.into()),
            value: clip(value),
            reason,
        }
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key)?;
        if !self.field.is_empty() {
            write!(f, " ({})", self.field)?;
        }
        write!(f, ": {:?}: {}", self.value, self.reason)
    }
}

impl std::error::Error for PolicyError {}

/// Cuts `s` to [`MAX_ERROR_VALUE_CHARS`] characters, marking the cut with `…`.
pub(crate) fn clip(s: &str) -> String {
    match s.char_indices().nth(MAX_ERROR_VALUE_CHARS) {
        Some((end, _)) => format!("{}…", &s[..end]),
        None => s.to_owned(),
    }
}

/// A library's error message cut for display: first line, 200 characters.
pub(crate) fn short_message(message: &str) -> String {
    let line = message.lines().next().unwrap_or("");
    match line.char_indices().nth(200) {
        Some((end, _)) => format!("{}…", &line[..end]),
        None => line.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clips_long_values_on_char_boundaries() {
        assert_eq!(clip("short"), "short");
        let long = "é".repeat(200);
        let c = clip(&long);
        assert_eq!(c.chars().count(), MAX_ERROR_VALUE_CHARS + 1);
        assert!(c.ends_with('…'));
        assert_eq!(clip(&"x".repeat(80)), "x".repeat(80));
    }

    #[test]
    fn displays_key_field_value_reason() {
        let e = PolicyError::new(
            "podlog.dev/policy",
            "containers.bar.maxFiles",
            "0",
            Reason::OutOfRange {
                allowed: "2..=1000",
            },
        );
        assert_eq!(
            e.to_string(),
            "podlog.dev/policy (containers.bar.maxFiles): \"0\": out of range: must be 2..=1000"
        );
        let e = PolicyError::new("podlog.dev/max-files", "", "x\ny", Reason::NotInteger);
        assert_eq!(
            e.to_string(),
            "podlog.dev/max-files: \"x\\ny\": must be a whole number"
        );
    }
}
