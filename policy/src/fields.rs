//! Policy fields from YAML trees and from short-key strings.
//!
//! Every field is parsed on its own: a faulty field becomes one
//! [`PolicyError`] and stays unset in the [`PolicySpec`], so the layers below
//! supply it. The same parsers serve the node config, `podlog.dev/policy` and
//! the short keys, so a value means the same wherever it is written.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::error::{clip, PolicyError, Reason};
use crate::model::limits::{DEFAULT_FLUSH_AFTER, DEFAULT_MAX_LINES};
use crate::model::*;
use crate::quantity::{parse_duration, parse_size, DurationError, SizeError};
use crate::yaml::Node;

/// The fields of one layer, in YAML spelling.
pub(crate) const SPEC_FIELDS: &str =
    "rotate, maxFileSize, maxFiles, maxTotalSize, maxAge, compress, delimiter, maxEventBytes, annotations";

/// The fields of a `podlog.dev/policy` document's top level.
pub(crate) const POD_FIELDS: &str = "rotate, maxFileSize, maxFiles, maxTotalSize, maxAge, compress, delimiter, maxEventBytes, annotations, containers";

const DELIMITER_FORMS: &str = "newline, {bytes: \"...\"}, {multiline: {start: REGEX}}";
const MULTILINE_FIELDS: &str = "start, maxLines, flushAfter";

/// Where errors go and how they are labelled.
pub(crate) struct Sink<'a> {
    /// The annotation key (or `config`).
    pub key: &'a str,
    pub errors: &'a mut Vec<PolicyError>,
}

// === impl Sink ===

impl Sink<'_> {
    pub(crate) fn push(&mut self, field: &str, value: &str, reason: Reason) {
        self.errors
            .push(PolicyError::new(self.key, field, value, reason));
    }
}

pub(crate) fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}.{name}")
    }
}

/// The entries of a mapping whose keys are strings, each key once. Other
/// keys and repeated keys are reported and left out.
pub(crate) fn unique_entries<'n>(
    entries: &'n [(Node, Node)],
    prefix: &str,
    sink: &mut Sink<'_>,
) -> Vec<(&'n str, &'n Node)> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for (k, _) in entries {
        if let Node::Str(k) = k {
            *counts.entry(k.as_str()).or_default() += 1;
        }
    }
    let mut out = Vec::new();
    let mut reported = std::collections::BTreeSet::new();
    for (k, v) in entries {
        match k {
            Node::Str(k) if counts[k.as_str()] == 1 => out.push((k.as_str(), v)),
            Node::Str(k) => {
                if reported.insert(k.as_str()) {
                    sink.push(&join(prefix, k), &v.display(), Reason::Duplicate);
                }
            }
            other => sink.push(
                &join(prefix, &other.display()),
                &v.display(),
                Reason::KeyNotString,
            ),
        }
    }
    out
}

/// Parses one layer's mapping. `prefix` is the field path of the mapping
/// (empty at the top). With `containers` allowed, that entry is returned
/// untouched for the caller.
pub(crate) fn parse_spec<'n>(
    node: &'n Node,
    prefix: &str,
    allow_containers: bool,
    sink: &mut Sink<'_>,
) -> (PolicySpec, Option<&'n Node>) {
    let mut spec = PolicySpec::default();
    let mut containers = None;
    let entries = match node {
        Node::Map(entries) => entries,
        other => {
            sink.push(
                prefix,
                &other.display(),
                Reason::WrongType {
                    expected: "a mapping",
                    found: other.kind(),
                },
            );
            return (spec, None);
        }
    };
    for (name, value) in unique_entries(entries, prefix, sink) {
        let path = join(prefix, name);
        if name == "containers" && allow_containers {
            containers = Some(value);
            continue;
        }
        if name == "annotations" {
            if let Some(map) = parse_annotations(value, &path, sink) {
                spec.annotations = map;
            }
            continue;
        }
        if name == "delimiter" {
            match parse_delimiter(value, &path) {
                Ok(d) => spec.delimiter = Some(d),
                Err((at, shown, reason)) => sink.push(&at, &shown, reason),
            }
            continue;
        }
        let known = if allow_containers {
            POD_FIELDS
        } else {
            SPEC_FIELDS
        };
        if let Err(reason) = set_scalar_field(&mut spec, name, value, known) {
            sink.push(&path, &value.display(), reason);
        }
    }
    (spec, containers)
}

/// Sets one of the scalar fields (everything but `delimiter`, `annotations`
/// and `containers`) from a YAML value.
pub(crate) fn set_scalar_field(
    spec: &mut PolicySpec,
    name: &str,
    value: &Node,
    known: &'static str,
) -> Result<(), Reason> {
    match name {
        "rotate" => spec.rotate = Some(Rotate::parse(word(value, "never, hourly, daily")?)?),
        "compress" => spec.compress = Some(Compress::parse(word(value, "none, gzip, zstd")?)?),
        "maxFileSize" => spec.max_file_size = Some(check_max_file_size(size(value)?)?),
        "maxTotalSize" => spec.max_total_size = Some(check_max_total_size(size(value)?)?),
        "maxEventBytes" => spec.max_event_bytes = Some(check_max_event_bytes(size(value)?)?),
        "maxFiles" => spec.max_files = Some(check_max_files(count(value)?)?),
        "maxAge" => spec.max_age = Some(check_max_age(duration(value)?)?),
        _ => return Err(Reason::UnknownField { known }),
    }
    Ok(())
}

fn word<'n>(node: &'n Node, expected: &'static str) -> Result<&'n str, Reason> {
    match node {
        Node::Str(s) => Ok(s.as_str()),
        _ => Err(Reason::NotOneOf { expected }),
    }
}

/// A byte size: a non-negative integer, or a string for [`parse_size`].
pub(crate) fn size(node: &Node) -> Result<u64, Reason> {
    match node {
        Node::Int(i) if *i < 0 => Err(Reason::Negative),
        Node::Int(i) => u64::try_from(*i).map_err(|_| Reason::Overflow),
        Node::BigInt => Err(Reason::Overflow),
        Node::Float(f) => Err(float_reason(*f)),
        Node::Str(s) if s.trim_start().starts_with('-') => Err(Reason::Negative),
        Node::Str(s) => parse_size(s).map_err(|e| Reason::Size(clip_size_error(e))),
        other => Err(Reason::WrongType {
            expected: "a size (512, 10Ki, 10Mi, 1Gi)",
            found: other.kind(),
        }),
    }
}

/// A count: a non-negative integer, or a string of decimal digits.
pub(crate) fn count(node: &Node) -> Result<u64, Reason> {
    match node {
        Node::Int(i) if *i < 0 => Err(Reason::Negative),
        Node::Int(i) => u64::try_from(*i).map_err(|_| Reason::Overflow),
        Node::BigInt => Err(Reason::Overflow),
        Node::Float(f) => Err(float_reason(*f)),
        Node::Str(s) => {
            let t = s.trim();
            if t.starts_with('-') {
                Err(Reason::Negative)
            } else if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
                Err(Reason::NotInteger)
            } else {
                // Leading zeros are harmless; only the magnitude can fail.
                t.parse::<u64>().map_err(|_| Reason::Overflow)
            }
        }
        other => Err(Reason::WrongType {
            expected: "a whole number",
            found: other.kind(),
        }),
    }
}

/// A duration: a string for [`parse_duration`]. A bare number is refused
/// with the duration syntax in the message.
pub(crate) fn duration(node: &Node) -> Result<Duration, Reason> {
    match node {
        Node::Str(s) => parse_duration(s).map_err(|e| Reason::Duration(clip_duration_error(e))),
        Node::Int(_) | Node::BigInt | Node::Float(_) => {
            parse_duration(&node.display()).map_err(|e| Reason::Duration(clip_duration_error(e)))
        }
        other => Err(Reason::WrongType {
            expected: "a duration (36h, 90m, 7d, 1h30m)",
            found: other.kind(),
        }),
    }
}

/// The parser's error with its copy of the value cut like the value itself.
fn clip_size_error(e: SizeError) -> SizeError {
    match e {
        SizeError::Empty => SizeError::Empty,
        SizeError::Syntax { value } => SizeError::Syntax {
            value: clip(&value),
        },
        SizeError::Overflow { value } => SizeError::Overflow {
            value: clip(&value),
        },
    }
}

fn clip_duration_error(e: DurationError) -> DurationError {
    match e {
        DurationError::Empty => DurationError::Empty,
        DurationError::Syntax { value } => DurationError::Syntax {
            value: clip(&value),
        },
        DurationError::Overflow { value } => DurationError::Overflow {
            value: clip(&value),
        },
    }
}

/// Why a float is no size or count: YAML reads integers past 2^128 as
/// floats, and those are too large rather than fractional.
fn float_reason(f: f64) -> Reason {
    if f < 0.0 {
        Reason::Negative
    } else if f >= 18_446_744_073_709_551_616.0 {
        Reason::Overflow
    } else {
        Reason::NotInteger
    }
}

type FieldFailure = (String, String, Reason);

/// `delimiter`: all or nothing; the error names the innermost field at fault.
fn parse_delimiter(node: &Node, path: &str) -> Result<Delimiter, FieldFailure> {
    let fail = |at: &str, n: &Node, reason| Err((at.to_owned(), n.display(), reason));
    let entries = match node {
        Node::Str(s) if s == "newline" => return Ok(Delimiter::Newline),
        Node::Map(entries) if entries.len() == 1 => entries,
        other => {
            return fail(
                path,
                other,
                Reason::NotOneOf {
                    expected: DELIMITER_FORMS,
                },
            )
        }
    };
    let (k, v) = &entries[0];
    match k {
        Node::Str(k) if k == "bytes" => {
            let at = join(path, "bytes");
            match v {
                Node::Str(s) => match check_delimiter_bytes(s) {
                    Ok(()) => Ok(Delimiter::Bytes(s.clone())),
                    Err(reason) => fail(&at, v, reason),
                },
                other => fail(
                    &at,
                    other,
                    Reason::WrongType {
                        expected: "a string",
                        found: other.kind(),
                    },
                ),
            }
        }
        Node::Str(k) if k == "multiline" => {
            parse_multiline(v, &join(path, "multiline")).map(Delimiter::Multiline)
        }
        _ => fail(
            path,
            node,
            Reason::NotOneOf {
                expected: DELIMITER_FORMS,
            },
        ),
    }
}

fn parse_multiline(node: &Node, path: &str) -> Result<Multiline, FieldFailure> {
    let Node::Map(entries) = node else {
        return Err((
            path.to_owned(),
            node.display(),
            Reason::WrongType {
                expected: "a mapping",
                found: node.kind(),
            },
        ));
    };
    let mut errors = Vec::new();
    let mut sink = Sink {
        key: "",
        errors: &mut errors,
    };
    let fields = unique_entries(entries, path, &mut sink);
    if let Some(e) = errors.pop() {
        return Err((e.field, e.value, e.reason));
    }
    let mut start = None;
    let mut max_lines = DEFAULT_MAX_LINES;
    let mut flush_after = DEFAULT_FLUSH_AFTER;
    for (name, value) in fields {
        let at = join(path, name);
        let result = match name {
            "start" => match value {
                Node::Str(s) => StartPattern::new(s).map(|p| start = Some(p)),
                other => Err(Reason::WrongType {
                    expected: "a regular expression (string)",
                    found: other.kind(),
                }),
            },
            "maxLines" => count(value)
                .and_then(check_max_lines)
                .map(|n| max_lines = n),
            "flushAfter" => duration(value)
                .and_then(check_flush_after)
                .map(|d| flush_after = d),
            _ => Err(Reason::UnknownField {
                known: MULTILINE_FIELDS,
            }),
        };
        if let Err(reason) = result {
            return Err((at, value.display(), reason));
        }
    }
    let Some(start) = start else {
        return Err((
            join(path, "start"),
            node.display(),
            Reason::Missing { field: "start" },
        ));
    };
    Ok(Multiline {
        start,
        max_lines,
        flush_after,
    })
}

/// `annotations`: string to string. A faulty entry is reported and left out;
/// the others are kept.
fn parse_annotations(
    node: &Node,
    path: &str,
    sink: &mut Sink<'_>,
) -> Option<BTreeMap<String, String>> {
    let Node::Map(entries) = node else {
        sink.push(
            path,
            &node.display(),
            Reason::WrongType {
                expected: "a mapping of strings",
                found: node.kind(),
            },
        );
        return None;
    };
    let mut map = BTreeMap::new();
    for (k, v) in unique_entries(entries, path, sink) {
        match v {
            Node::Str(s) => {
                map.insert(k.to_owned(), s.clone());
            }
            other => sink.push(
                &join(path, k),
                &other.display(),
                Reason::WrongType {
                    expected: "a string",
                    found: other.kind(),
                },
            ),
        }
    }
    Some(map)
}

/// Checks a spec built by hand (the node layer handed to `resolve`): fields
/// out of range are reported under `key` and unset.
pub(crate) fn sanitize(spec: &PolicySpec, key: &str, errors: &mut Vec<PolicyError>) -> PolicySpec {
    let mut out = spec.clone();
    let mut sink = Sink { key, errors };
    if let Some(n) = out.max_file_size {
        if let Err(r) = check_max_file_size(n) {
            sink.push("maxFileSize", &n.to_string(), r);
            out.max_file_size = None;
        }
    }
    if let Some(n) = out.max_files {
        if let Err(r) = check_max_files(u64::from(n)) {
            sink.push("maxFiles", &n.to_string(), r);
            out.max_files = None;
        }
    }
    if let Some(n) = out.max_total_size {
        if let Err(r) = check_max_total_size(n) {
            sink.push("maxTotalSize", &n.to_string(), r);
            out.max_total_size = None;
        }
    }
    if let Some(d) = out.max_age {
        if let Err(r) = check_max_age(d) {
            sink.push("maxAge", &crate::format_duration(d), r);
            out.max_age = None;
        }
    }
    if let Some(n) = out.max_event_bytes {
        if let Err(r) = check_max_event_bytes(n) {
            sink.push("maxEventBytes", &n.to_string(), r);
            out.max_event_bytes = None;
        }
    }
    if let Some(d) = &out.delimiter {
        if let Err(r) = check_delimiter(d) {
            sink.push("delimiter", &format!("{d:?}"), r);
            out.delimiter = None;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::parse;

    fn layer(text: &str) -> (PolicySpec, Vec<PolicyError>) {
        let node = parse(text).expect("test YAML parses");
        let mut errors = Vec::new();
        let (spec, _) = parse_spec(
            &node,
            "",
            false,
            &mut Sink {
                key: "k",
                errors: &mut errors,
            },
        );
        (spec, errors)
    }

    fn one_error(text: &str) -> (String, String, Reason) {
        let (_, mut errors) = layer(text);
        assert_eq!(errors.len(), 1, "{text:?}: {errors:?}");
        let e = errors.pop().unwrap();
        (e.field, e.value, e.reason)
    }

    #[test]
    fn full_layer() {
        let (spec, errors) = layer(
            "rotate: hourly\nmaxFileSize: 10Mi\nmaxFiles: 3\nmaxTotalSize: 100Mi\nmaxAge: 1h30m\n\
             compress: zstd\ndelimiter: {multiline: {start: '^\\d{4}', maxLines: 50, flushAfter: 500ms}}\n\
             maxEventBytes: 2Mi\nannotations: {fluentd-config: \"<match **>\"}",
        );
        assert_eq!(errors, vec![]);
        assert_eq!(spec.rotate, Some(Rotate::Hourly));
        assert_eq!(spec.max_file_size, Some(10 << 20));
        assert_eq!(spec.max_files, Some(3));
        assert_eq!(spec.max_total_size, Some(100 << 20));
        assert_eq!(spec.max_age, Some(Duration::from_secs(5400)));
        assert_eq!(spec.compress, Some(Compress::Zstd));
        let Some(Delimiter::Multiline(m)) = &spec.delimiter else {
            panic!("{:?}", spec.delimiter)
        };
        assert_eq!(m.start.as_str(), r"^\d{4}");
        assert_eq!(m.max_lines, 50);
        assert_eq!(m.flush_after, Duration::from_millis(500));
        assert_eq!(spec.max_event_bytes, Some(2 << 20));
        assert_eq!(spec.annotations["fluentd-config"], "<match **>");
    }

    #[test]
    fn numbers_as_ints_or_strings() {
        let (spec, errors) = layer("maxFileSize: 8192\nmaxFiles: '7'\nmaxTotalSize: '1048576'");
        assert_eq!(errors, vec![]);
        assert_eq!(spec.max_file_size, Some(8192));
        assert_eq!(spec.max_files, Some(7));
        assert_eq!(spec.max_total_size, Some(1 << 20));
    }

    #[test]
    fn delimiters() {
        let (spec, errors) = layer("delimiter: newline");
        assert_eq!((spec.delimiter, errors), (Some(Delimiter::Newline), vec![]));
        let (spec, errors) = layer("delimiter: {bytes: \"\\r\\n--\\0\"}");
        assert_eq!(
            (spec.delimiter, errors),
            (Some(Delimiter::Bytes("\r\n--\0".into())), vec![])
        );
        let (spec, _) = layer("delimiter: {multiline: {start: '^x'}}");
        assert_eq!(
            spec.delimiter,
            Some(Delimiter::Multiline(Multiline::new(
                StartPattern::new("^x").unwrap()
            )))
        );
    }

    #[test]
    fn each_bad_field_is_named_and_left_unset() {
        let out_of_range = |allowed| Reason::OutOfRange { allowed };
        let cases: Vec<(&str, &str, &str, Reason)> = vec![
            (
                "rotate: weekly",
                "rotate",
                "weekly",
                Reason::NotOneOf {
                    expected: "never, hourly, daily",
                },
            ),
            (
                "rotate: [daily]",
                "rotate",
                "[a list of 1]",
                Reason::NotOneOf {
                    expected: "never, hourly, daily",
                },
            ),
            (
                "compress: true",
                "compress",
                "true",
                Reason::NotOneOf {
                    expected: "none, gzip, zstd",
                },
            ),
            ("maxFileSize: -1", "maxFileSize", "-1", Reason::Negative),
            ("maxFileSize: -1Mi", "maxFileSize", "-1Mi", Reason::Negative),
            ("maxFileSize: 1.5", "maxFileSize", "1.5", Reason::NotInteger),
            (
                "maxFileSize: 1000",
                "maxFileSize",
                "1000",
                out_of_range("at least 4Ki (4096 bytes)"),
            ),
            (
                "maxFileSize: 0",
                "maxFileSize",
                "0",
                out_of_range("at least 4Ki (4096 bytes)"),
            ),
            (
                "maxFileSize: 18446744073709551616",
                "maxFileSize",
                "18446744073709551616",
                Reason::Overflow,
            ),
            (
                "maxFileSize: 200000000000000000000000000000000000000",
                "maxFileSize",
                "(an integer above 2^127)",
                Reason::Overflow,
            ),
            (
                "maxFileSize: 1e400",
                "maxFileSize",
                "1e400",
                Reason::Size(SizeError::Syntax {
                    value: "1e400".into(),
                }),
            ),
            (
                "maxFileSize: 1e30",
                "maxFileSize",
                "1000000000000000000000000000000",
                Reason::Overflow,
            ),
            (
                "maxFileSize: .nan",
                "maxFileSize",
                "NaN",
                Reason::NotInteger,
            ),
            (
                "maxFileSize: 9999999999999999999999999999999999999999999",
                "maxFileSize",
                "10000000000000000000000000000000000000000000",
                Reason::Overflow,
            ),
            (
                "maxFileSize: 99999999999999999999Ti",
                "maxFileSize",
                "99999999999999999999Ti",
                Reason::Size(SizeError::Overflow {
                    value: "99999999999999999999Ti".into(),
                }),
            ),
            (
                "maxFileSize: 17179869184Gi",
                "maxFileSize",
                "17179869184Gi",
                Reason::Size(SizeError::Overflow {
                    value: "17179869184Gi".into(),
                }),
            ),
            (
                "maxFileSize: {a: 1}",
                "maxFileSize",
                "{a}",
                Reason::WrongType {
                    expected: "a size (512, 10Ki, 10Mi, 1Gi)",
                    found: "a mapping",
                },
            ),
            (
                "maxFileSize: ~",
                "maxFileSize",
                "null",
                Reason::WrongType {
                    expected: "a size (512, 10Ki, 10Mi, 1Gi)",
                    found: "null",
                },
            ),
            ("maxFiles: 0", "maxFiles", "0", out_of_range("2..=1000")),
            ("maxFiles: 1", "maxFiles", "1", out_of_range("2..=1000")),
            (
                "maxFiles: 4294967297",
                "maxFiles",
                "4294967297",
                out_of_range("2..=1000"),
            ),
            ("maxFiles: '5x'", "maxFiles", "5x", Reason::NotInteger),
            ("maxFiles: '-3'", "maxFiles", "-3", Reason::Negative),
            ("maxFiles: 2.0", "maxFiles", "2", Reason::NotInteger),
            (
                "maxFiles: '99999999999999999999999'",
                "maxFiles",
                "99999999999999999999999",
                Reason::Overflow,
            ),
            (
                "maxFiles: [1, 2]",
                "maxFiles",
                "[a list of 2]",
                Reason::WrongType {
                    expected: "a whole number",
                    found: "a list",
                },
            ),
            (
                "maxTotalSize: 1Ki",
                "maxTotalSize",
                "1Ki",
                out_of_range("at least 4Ki (4096 bytes), and at least maxFileSize"),
            ),
            (
                "maxAge: 3600",
                "maxAge",
                "3600",
                Reason::Duration(DurationError::Syntax {
                    value: "3600".into(),
                }),
            ),
            ("maxAge: 0s", "maxAge", "0s", out_of_range("at least 1s")),
            (
                "maxAge: 500ms",
                "maxAge",
                "500ms",
                out_of_range("at least 1s"),
            ),
            (
                "maxAge: 99999999999999999999d",
                "maxAge",
                "99999999999999999999d",
                Reason::Duration(DurationError::Overflow {
                    value: "99999999999999999999d".into(),
                }),
            ),
            (
                "maxAge: true",
                "maxAge",
                "true",
                Reason::WrongType {
                    expected: "a duration (36h, 90m, 7d, 1h30m)",
                    found: "a boolean",
                },
            ),
            (
                "maxEventBytes: 100",
                "maxEventBytes",
                "100",
                out_of_range("1Ki..=64Mi"),
            ),
            (
                "maxEventBytes: 1Gi",
                "maxEventBytes",
                "1Gi",
                out_of_range("1Ki..=64Mi"),
            ),
            (
                "maxFileSise: 1Mi",
                "maxFileSise",
                "1Mi",
                Reason::UnknownField { known: SPEC_FIELDS },
            ),
            (
                "containers: {}",
                "containers",
                "{}",
                Reason::UnknownField { known: SPEC_FIELDS },
            ),
            ("1: x", "1", "x", Reason::KeyNotString),
            (
                "maxFiles: 3\nmaxFiles: 4",
                "maxFiles",
                "3",
                Reason::Duplicate,
            ),
            (
                "annotations: [a, b]",
                "annotations",
                "[a list of 2]",
                Reason::WrongType {
                    expected: "a mapping of strings",
                    found: "a list",
                },
            ),
            (
                "annotations: {a: 1}",
                "annotations.a",
                "1",
                Reason::WrongType {
                    expected: "a string",
                    found: "an integer",
                },
            ),
            (
                "annotations: {a: {b: c}}",
                "annotations.a",
                "{b}",
                Reason::WrongType {
                    expected: "a string",
                    found: "a mapping",
                },
            ),
            (
                "delimiter: tab",
                "delimiter",
                "tab",
                Reason::NotOneOf {
                    expected: DELIMITER_FORMS,
                },
            ),
            (
                "delimiter: {bytes: x, multiline: y}",
                "delimiter",
                "{bytes, multiline}",
                Reason::NotOneOf {
                    expected: DELIMITER_FORMS,
                },
            ),
            (
                "delimiter: {bytes: ''}",
                "delimiter.bytes",
                "",
                out_of_range("1..=64 bytes"),
            ),
            (
                "delimiter: {bytes: [x]}",
                "delimiter.bytes",
                "[a list of 1]",
                Reason::WrongType {
                    expected: "a string",
                    found: "a list",
                },
            ),
            (
                "delimiter: {multiline: {}}",
                "delimiter.multiline.start",
                "{}",
                Reason::Missing { field: "start" },
            ),
            (
                "delimiter: {multiline: [x]}",
                "delimiter.multiline",
                "[a list of 1]",
                Reason::WrongType {
                    expected: "a mapping",
                    found: "a list",
                },
            ),
            (
                "delimiter: {multiline: {start: x, maxLines: 0}}",
                "delimiter.multiline.maxLines",
                "0",
                out_of_range("1..=10000"),
            ),
            (
                "delimiter: {multiline: {start: x, maxLines: 10001}}",
                "delimiter.multiline.maxLines",
                "10001",
                out_of_range("1..=10000"),
            ),
            (
                "delimiter: {multiline: {start: x, flushAfter: 2h}}",
                "delimiter.multiline.flushAfter",
                "2h",
                out_of_range("1ms..=1h"),
            ),
            (
                "delimiter: {multiline: {start: x, flushAfter: 0s}}",
                "delimiter.multiline.flushAfter",
                "0s",
                out_of_range("1ms..=1h"),
            ),
            (
                "delimiter: {multiline: {start: x, colour: red}}",
                "delimiter.multiline.colour",
                "red",
                Reason::UnknownField {
                    known: MULTILINE_FIELDS,
                },
            ),
            (
                "delimiter: {multiline: {start: 5}}",
                "delimiter.multiline.start",
                "5",
                Reason::WrongType {
                    expected: "a regular expression (string)",
                    found: "an integer",
                },
            ),
            (
                "delimiter: {multiline: {start: x, start: y}}",
                "delimiter.multiline.start",
                "x",
                Reason::Duplicate,
            ),
        ];
        for (text, field, value, reason) in cases {
            let (spec, errors) = layer(text);
            assert_eq!(
                errors,
                vec![PolicyError::new("k", field, value, reason)],
                "{text:?}"
            );
            assert_eq!(spec.max_file_size, None);
            assert_eq!(spec.max_files, None);
            assert_eq!(spec.delimiter, None);
        }
    }

    #[test]
    fn bad_regexes_are_named() {
        for pattern in ["'('", "'\\w{1000}{1000}'", "'[z-a]'"] {
            let (field, value, reason) =
                one_error(&format!("delimiter: {{multiline: {{start: {pattern}}}}}"));
            assert_eq!(field, "delimiter.multiline.start");
            assert!(!value.is_empty());
            assert!(
                matches!(reason, Reason::Regex { .. }),
                "{pattern}: {reason:?}"
            );
        }
        let long = "a".repeat(5000);
        let (_, value, reason) =
            one_error(&format!("delimiter: {{multiline: {{start: '{long}'}}}}"));
        assert_eq!(value.chars().count(), 81);
        assert_eq!(
            reason,
            Reason::TooLarge {
                len: 5000,
                max: 1024
            }
        );
    }

    #[test]
    fn good_fields_survive_bad_neighbours() {
        let (spec, errors) =
            layer("maxFiles: 0\nmaxFileSize: 1Mi\nrotate: sometimes\ncompress: gzip");
        assert_eq!(errors.len(), 2);
        assert_eq!(spec.max_file_size, Some(1 << 20));
        assert_eq!(spec.compress, Some(Compress::Gzip));
        assert_eq!(spec.max_files, None);
        assert_eq!(spec.rotate, None);
    }

    #[test]
    fn annotations_keep_good_entries() {
        let (spec, errors) = layer("annotations: {a: x, b: 2, c: y}");
        assert_eq!(errors.len(), 1);
        assert_eq!(
            spec.annotations,
            BTreeMap::from([("a".into(), "x".into()), ("c".into(), "y".into())])
        );
    }

    #[test]
    fn not_a_mapping() {
        for text in ["[1, 2]", "5", "hello", "~"] {
            let (spec, errors) = layer(text);
            assert_eq!(spec, PolicySpec::default());
            assert_eq!(errors.len(), 1, "{text}");
            assert!(matches!(errors[0].reason, Reason::WrongType { .. }));
        }
    }

    #[test]
    fn sanitize_unsets_hand_built_values_out_of_range() {
        let spec = PolicySpec {
            max_files: Some(0),
            max_file_size: Some(10),
            max_total_size: Some(1 << 30),
            max_age: Some(Duration::ZERO),
            max_event_bytes: Some(u64::MAX),
            delimiter: Some(Delimiter::Bytes(String::new())),
            ..PolicySpec::default()
        };
        let mut errors = Vec::new();
        let out = sanitize(&spec, "config", &mut errors);
        assert_eq!(errors.len(), 5);
        assert!(errors.iter().all(|e| e.key == "config"));
        assert_eq!(
            out,
            PolicySpec {
                max_total_size: Some(1 << 30),
                ..PolicySpec::default()
            }
        );
    }
}
