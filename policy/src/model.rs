//! The policy model: the partial form each layer writes ([`PolicySpec`]),
//! the resolved form the agent enforces ([`Effective`]), and the limits that
//! every value is checked against.
//!
//! Parsing lives in `fields` and `annotations`; this module only holds the
//! types, their defaults and the per-field range checks.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Serialize, Serializer};

use crate::error::{short_message, Reason};
use crate::quantity::format_duration;

/// Defaults and bounds for every field. A value outside its bounds is an
/// error, never clamped.
pub mod limits {
    use std::time::Duration;

    /// Default `maxFileSize`: 10 MiB, the kubelet's `containerLogMaxSize`.
    pub const DEFAULT_MAX_FILE_SIZE: u64 = 10 << 20;
    /// Smallest `maxFileSize`: 4 KiB. Smaller files would rotate on every
    /// few lines.
    pub const MIN_MAX_FILE_SIZE: u64 = 4 << 10;
    /// Default `maxFiles`: 5, the kubelet's `containerLogMaxFiles`.
    pub const DEFAULT_MAX_FILES: u32 = 5;
    /// Smallest `maxFiles`: 2, as for the kubelet: the file just rotated must
    /// survive next to the new one while tailers finish reading it.
    pub const MIN_MAX_FILES: u32 = 2;
    /// Largest `maxFiles`.
    pub const MAX_MAX_FILES: u32 = 1000;
    /// Smallest `maxTotalSize`: the smallest file size. It must also be at
    /// least the effective `maxFileSize`.
    pub const MIN_MAX_TOTAL_SIZE: u64 = MIN_MAX_FILE_SIZE;
    /// Smallest `maxAge`: one second.
    pub const MIN_MAX_AGE: Duration = Duration::from_secs(1);
    /// Smallest `maxEventBytes`: 1 KiB (the agent's own bound).
    pub const MIN_MAX_EVENT_BYTES: u64 = 1 << 10;
    /// Largest `maxEventBytes`: 64 MiB (the agent's own bound).
    pub const MAX_MAX_EVENT_BYTES: u64 = 64 << 20;
    /// Longest `{bytes: ...}` delimiter, in bytes.
    pub const MAX_DELIMITER_BYTES: usize = 64;
    /// Longest multi-line `start` pattern, in bytes of source.
    pub const MAX_PATTERN_LEN: usize = 1024;
    /// Compiled size limit of a `start` pattern (and of its lazy DFA cache),
    /// in bytes.
    pub const REGEX_SIZE_LIMIT: usize = 1 << 20;
    /// Deepest group nesting in a `start` pattern.
    pub const REGEX_NEST_LIMIT: u32 = 32;
    /// Default multi-line `maxLines`.
    pub const DEFAULT_MAX_LINES: u32 = 1000;
    /// Largest multi-line `maxLines` (the smallest is 1).
    pub const MAX_MAX_LINES: u32 = 10_000;
    /// Default multi-line `flushAfter`: 2 s, as fluent-bit's multiline flush.
    pub const DEFAULT_FLUSH_AFTER: Duration = Duration::from_secs(2);
    /// Smallest multi-line `flushAfter`.
    pub const MIN_FLUSH_AFTER: Duration = Duration::from_millis(1);
    /// Largest multi-line `flushAfter`.
    pub const MAX_FLUSH_AFTER: Duration = Duration::from_secs(3600);
    /// Largest `podlog.dev/policy` annotation parsed, in bytes; larger ones
    /// are refused before parsing.
    pub const MAX_POLICY_YAML_BYTES: usize = 64 << 10;
}

use limits::*;

/// When the active file is rotated besides its size (`rotate`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Rotate {
    /// Only by size (the default).
    #[default]
    Never,
    /// When the file's first event is in an earlier UTC hour than now.
    Hourly,
    /// When the file's first event is in an earlier UTC day than now.
    Daily,
}

/// Compression of rotated files (`compress`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compress {
    /// Rotated files stay as written (the default).
    #[default]
    None,
    /// gzip (`.gz`).
    Gzip,
    /// zstd (`.zst`).
    Zstd,
}

/// A checked multi-line `start` pattern, compiled for bytes (event content
/// may be invalid UTF-8) within [`limits::REGEX_SIZE_LIMIT`].
#[derive(Clone)]
pub struct StartPattern(regex::bytes::Regex);

/// Multi-line event assembly: a line matching `start` begins a new event;
/// other lines join the current one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Multiline {
    /// The pattern a first line matches.
    pub start: StartPattern,
    /// Most lines in one event (1..=10000, default 1000); the next line
    /// starts a new event.
    pub max_lines: u32,
    /// How long an open event waits for more lines before it is emitted
    /// (1ms..=1h, default 2s).
    #[serde(serialize_with = "ser_duration")]
    pub flush_after: Duration,
}

/// How the content of a container's lines is cut into events (`delimiter`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Delimiter {
    /// Each full CRI line is one event (the default).
    #[default]
    Newline,
    /// Events end at this byte sequence inside the content (1..=64 bytes).
    Bytes(String),
    /// Events begin at lines matching a pattern.
    Multiline(Multiline),
}

/// One layer's settings: every field is optional and unset fields come from
/// the layer below (container < pod < node < built-in defaults).
///
/// Values built by the parsers in this crate are within
/// [`limits`]; a hand-built spec is checked again when it is resolved.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PolicySpec {
    /// `rotate`.
    pub rotate: Option<Rotate>,
    /// `maxFileSize`, in bytes: the active file is rotated once larger.
    pub max_file_size: Option<u64>,
    /// `maxFiles`: files kept per container, the active one included.
    pub max_files: Option<u32>,
    /// `maxTotalSize`, in bytes, over all of a container's files.
    pub max_total_size: Option<u64>,
    /// `maxAge`: events older than this are dropped.
    pub max_age: Option<Duration>,
    /// `compress`.
    pub compress: Option<Compress>,
    /// `delimiter`.
    pub delimiter: Option<Delimiter>,
    /// `maxEventBytes`, in bytes.
    pub max_event_bytes: Option<u64>,
    /// `annotations`: free-form context for consumers, merged key by key
    /// across layers (the upper layer wins on a shared key).
    pub annotations: BTreeMap<String, String>,
}

/// A container's resolved policy: every field has a value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Effective {
    /// Time-based rotation (default `never`).
    pub rotate: Rotate,
    /// The active file is rotated once larger than this many bytes
    /// (default 10 MiB, at least 4 KiB).
    pub max_file_size: u64,
    /// Files kept per container, the active one included (default 5,
    /// 2..=1000).
    pub max_files: u32,
    /// Bytes kept per container over all its files, the active one included.
    /// When no layer sets it: `maxFileSize × maxFiles`. Always at least
    /// `max_file_size`.
    pub max_total_size: u64,
    /// Events older than this are dropped; `None` (the default) keeps events
    /// until a size or count limit drops them.
    #[serde(serialize_with = "ser_opt_duration")]
    pub max_age: Option<Duration>,
    /// Compression of rotated files (default `none`).
    pub compress: Compress,
    /// Event delimiting (default `newline`).
    pub delimiter: Delimiter,
    /// Cap on one event's content, in bytes (default 1 MiB, 1 KiB..=64 MiB).
    pub max_event_bytes: u64,
    /// Free-form context passed through to consumers.
    pub annotations: BTreeMap<String, String>,
}

// === impl Rotate ===

impl Rotate {
    /// The rotation period, if any.
    pub fn period(self) -> Option<Duration> {
        match self {
            Rotate::Never => None,
            Rotate::Hourly => Some(Duration::from_secs(3600)),
            Rotate::Daily => Some(Duration::from_secs(86_400)),
        }
    }

    pub(crate) fn parse(s: &str) -> Result<Self, Reason> {
        match s {
            "never" => Ok(Rotate::Never),
            "hourly" => Ok(Rotate::Hourly),
            "daily" => Ok(Rotate::Daily),
            _ => Err(Reason::NotOneOf {
                expected: "never, hourly, daily",
            }),
        }
    }
}

// === impl Compress ===

impl Compress {
    pub(crate) fn parse(s: &str) -> Result<Self, Reason> {
        match s {
            "none" => Ok(Compress::None),
            "gzip" => Ok(Compress::Gzip),
            "zstd" => Ok(Compress::Zstd),
            _ => Err(Reason::NotOneOf {
                expected: "none, gzip, zstd",
            }),
        }
    }
}

// === impl StartPattern ===

impl StartPattern {
    /// Compiles `pattern` within [`limits::MAX_PATTERN_LEN`],
    /// [`limits::REGEX_SIZE_LIMIT`] and [`limits::REGEX_NEST_LIMIT`].
    ///
    /// # Errors
    ///
    /// [`Reason::TooLarge`] for a long pattern, [`Reason::Regex`] for one
    /// that does not compile or compiles too large.
    pub fn new(pattern: &str) -> Result<Self, Reason> {
        if pattern.len() > MAX_PATTERN_LEN {
            return Err(Reason::TooLarge {
                len: pattern.len(),
                max: MAX_PATTERN_LEN,
            });
        }
        regex::bytes::RegexBuilder::new(pattern)
            .size_limit(REGEX_SIZE_LIMIT)
            .dfa_size_limit(REGEX_SIZE_LIMIT)
            .nest_limit(REGEX_NEST_LIMIT)
            .build()
            .map(StartPattern)
            .map_err(|e| Reason::Regex {
                message: short_message(&e.to_string()),
            })
    }

    /// The pattern's source.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The compiled pattern.
    pub fn regex(&self) -> &regex::bytes::Regex {
        &self.0
    }
}

impl PartialEq for StartPattern {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for StartPattern {}

impl fmt::Debug for StartPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("StartPattern").field(&self.as_str()).finish()
    }
}

impl Serialize for StartPattern {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

// === impl Multiline ===

impl Multiline {
    /// A multi-line delimiter with the default `maxLines` and `flushAfter`.
    pub fn new(start: StartPattern) -> Self {
        Self {
            start,
            max_lines: DEFAULT_MAX_LINES,
            flush_after: DEFAULT_FLUSH_AFTER,
        }
    }
}

// === impl Delimiter ===

impl Delimiter {
    /// The bytes of a [`Delimiter::Bytes`] delimiter.
    pub fn bytes(&self) -> Option<&[u8]> {
        match self {
            Delimiter::Bytes(s) => Some(s.as_bytes()),
            _ => None,
        }
    }
}

// === impl Effective ===

impl Default for Effective {
    /// The built-in defaults, used below the node layer.
    fn default() -> Self {
        Self {
            rotate: Rotate::Never,
            max_file_size: DEFAULT_MAX_FILE_SIZE,
            max_files: DEFAULT_MAX_FILES,
            max_total_size: DEFAULT_MAX_FILE_SIZE * DEFAULT_MAX_FILES as u64,
            max_age: None,
            compress: Compress::None,
            delimiter: Delimiter::Newline,
            max_event_bytes: crate::DEFAULT_MAX_EVENT_BYTES,
            annotations: BTreeMap::new(),
        }
    }
}

// === range checks, shared by every parser ===

pub(crate) fn check_max_file_size(n: u64) -> Result<u64, Reason> {
    if n < MIN_MAX_FILE_SIZE {
        return Err(Reason::OutOfRange {
            allowed: "at least 4Ki (4096 bytes)",
        });
    }
    Ok(n)
}

pub(crate) fn check_max_files(n: u64) -> Result<u32, Reason> {
    match u32::try_from(n) {
        Ok(n) if (MIN_MAX_FILES..=MAX_MAX_FILES).contains(&n) => Ok(n),
        _ => Err(Reason::OutOfRange {
            allowed: "2..=1000",
        }),
    }
}

pub(crate) fn check_max_total_size(n: u64) -> Result<u64, Reason> {
    if n < MIN_MAX_TOTAL_SIZE {
        return Err(Reason::OutOfRange {
            allowed: "at least 4Ki (4096 bytes), and at least maxFileSize",
        });
    }
    Ok(n)
}

pub(crate) fn check_max_age(d: Duration) -> Result<Duration, Reason> {
    if d < MIN_MAX_AGE {
        return Err(Reason::OutOfRange {
            allowed: "at least 1s",
        });
    }
    Ok(d)
}

pub(crate) fn check_max_event_bytes(n: u64) -> Result<u64, Reason> {
    if !(MIN_MAX_EVENT_BYTES..=MAX_MAX_EVENT_BYTES).contains(&n) {
        return Err(Reason::OutOfRange {
            allowed: "1Ki..=64Mi",
        });
    }
    Ok(n)
}

pub(crate) fn check_delimiter_bytes(s: &str) -> Result<(), Reason> {
    if s.is_empty() || s.len() > MAX_DELIMITER_BYTES {
        return Err(Reason::OutOfRange {
            allowed: "1..=64 bytes",
        });
    }
    Ok(())
}

pub(crate) fn check_max_lines(n: u64) -> Result<u32, Reason> {
    match u32::try_from(n) {
        Ok(n) if (1..=MAX_MAX_LINES).contains(&n) => Ok(n),
        _ => Err(Reason::OutOfRange {
            allowed: "1..=10000",
        }),
    }
}

pub(crate) fn check_flush_after(d: Duration) -> Result<Duration, Reason> {
    if !(MIN_FLUSH_AFTER..=MAX_FLUSH_AFTER).contains(&d) {
        return Err(Reason::OutOfRange {
            allowed: "1ms..=1h",
        });
    }
    Ok(d)
}

/// Checks a delimiter built by hand (the parsers check as they build).
pub(crate) fn check_delimiter(d: &Delimiter) -> Result<(), Reason> {
    match d {
        Delimiter::Newline => Ok(()),
        Delimiter::Bytes(s) => check_delimiter_bytes(s),
        Delimiter::Multiline(m) => {
            check_max_lines(u64::from(m.max_lines))?;
            check_flush_after(m.flush_after)?;
            Ok(())
        }
    }
}

fn ser_duration<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_duration(*d))
}

fn ser_opt_duration<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_str(&format_duration(*d)),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_within_limits() {
        let d = Effective::default();
        assert_eq!(check_max_file_size(d.max_file_size), Ok(d.max_file_size));
        assert_eq!(check_max_files(u64::from(d.max_files)), Ok(d.max_files));
        assert!(d.max_total_size >= d.max_file_size);
        assert_eq!(
            check_max_event_bytes(d.max_event_bytes),
            Ok(d.max_event_bytes)
        );
        assert_eq!(
            check_flush_after(DEFAULT_FLUSH_AFTER),
            Ok(DEFAULT_FLUSH_AFTER)
        );
        assert_eq!(
            check_max_lines(u64::from(DEFAULT_MAX_LINES)),
            Ok(DEFAULT_MAX_LINES)
        );
    }

    #[test]
    fn start_patterns() {
        assert!(StartPattern::new(r"^\d{4}-\d{2}-\d{2}").is_ok());
        assert!(matches!(
            StartPattern::new("(unclosed"),
            Err(Reason::Regex { .. })
        ));
        // Compiles far past the size limit.
        assert!(matches!(
            StartPattern::new(r"\w{1000}{1000}"),
            Err(Reason::Regex { .. })
        ));
        assert!(matches!(
            StartPattern::new(&"(".repeat(40).to_string()),
            Err(Reason::Regex { .. })
        ));
        let nested = format!("{}a{}", "(".repeat(40), ")".repeat(40));
        assert!(matches!(
            StartPattern::new(&nested),
            Err(Reason::Regex { .. })
        ));
        assert_eq!(
            StartPattern::new(&"a".repeat(2000)).map(|_| ()),
            Err(Reason::TooLarge {
                len: 2000,
                max: MAX_PATTERN_LEN
            })
        );
        // Matches bytes that are not UTF-8.
        let p = StartPattern::new(r"^(?-u:\xff)x").unwrap();
        assert!(p.regex().is_match(b"\xffx"));
    }
}
