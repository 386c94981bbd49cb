//! Query parameters of the HTTP API: pure parsing and validation.
//!
//! Names follow the kubelet's `/containerLogs` and `kubectl logs` where one
//! exists. Every error names the parameter and the value at fault. Unknown
//! and repeated parameters are refused rather than ignored, so a typo such
//! as `tailLine=5` cannot silently return the whole log.

use crate::node::inventory::{InventoryParams, Requirement};
use std::collections::BTreeMap;

use crate::cri::{self, Stream};
use crate::render::Format;

/// A refused parameter.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{parameter}: {message}")]
pub(crate) struct ParamError {
    pub(crate) parameter: String,
    pub(crate) message: String,
}

fn err(parameter: &str, message: impl Into<String>) -> ParamError {
    ParamError {
        parameter: parameter.to_owned(),
        message: message.into(),
    }
}

/// Parameters of `GET /logs/{namespace}/{pod}/{container}`.
#[derive(Clone, Debug, Default)]
pub(crate) struct LogParams {
    pub(crate) follow: bool,
    pub(crate) tail_lines: Option<u64>,
    pub(crate) since_seconds: Option<u64>,
    /// Nanoseconds since the epoch, exact for every year RFC 3339 writes
    /// (see [`time`]).
    pub(crate) since_time: Option<i128>,
    pub(crate) until_time: Option<i128>,
    pub(crate) limit_bytes: Option<u64>,
    pub(crate) timestamps: bool,
    pub(crate) previous: bool,
    pub(crate) attempt: Option<u32>,
    /// `None` for both streams.
    pub(crate) stream: Option<Stream>,
    pub(crate) format: Option<Format>,
    pub(crate) cursor: Option<String>,
    pub(crate) grep: Option<regex::bytes::Regex>,
    /// Add the pod's labels / annotations to every `json` event.
    pub(crate) labels: bool,
    pub(crate) annotations: bool,
}

/// Splits a raw query string into decoded pairs, refusing repeats and names
/// outside `allowed`.
fn pairs(query: &str, allowed: &[&str]) -> Result<BTreeMap<String, String>, ParamError> {
    let mut out = BTreeMap::new();
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        if !allowed.contains(&k.as_ref()) {
            return Err(err(
                &k,
                format!("unknown parameter (known: {})", allowed.join(", ")),
            ));
        }
        if out.insert(k.to_string(), v.into_owned()).is_some() {
            return Err(err(&k, "given more than once"));
        }
    }
    Ok(out)
}

/// A `PodLogOptions` field podlog has no use for: checked as the other
/// booleans are (given once, `true`, `false`, `1`, `0` or empty) and then
/// ignored, so that a client built for the kubelet's log endpoint is not
/// refused: podlogd reads files, it does not proxy to a backend whose
/// certificate could be skipped.
const IGNORED: &str = "insecureSkipTLSVerifyBackend";

fn boolean(name: &str, v: &str) -> Result<bool, ParamError> {
    match v {
        "" | "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(err(name, format!("{v:?} is not a boolean (true|false)"))),
    }
}

fn uint(name: &str, v: &str, min: u64) -> Result<u64, ParamError> {
    let n: u64 = v
        .parse()
        .map_err(|_| err(name, format!("{v:?} is not a non-negative integer")))?;
    at_least(name, n, min)
}

/// `n`, when it is at least `min`.
pub(crate) fn at_least(name: &str, n: u64, min: u64) -> Result<u64, ParamError> {
    if n < min {
        return Err(err(name, format!("\"{n}\" must be at least {min}")));
    }
    Ok(n)
}

/// An RFC 3339 time, in nanoseconds since the epoch. Any year RFC 3339
/// writes is taken, beyond the range of event times too: such a bound
/// selects what the nearest end of that range would, and still compares
/// exactly with the other bound.
pub(crate) fn time(name: &str, v: &str) -> Result<i128, ParamError> {
    cri::parse_timestamp_wide(v.as_bytes())
        .filter(|&t| !leap_second(v) || t.rem_euclid(86_400 * NANOS_PER_SEC) < NANOS_PER_SEC)
        .ok_or_else(|| {
            err(
                name,
                format!("{v:?} is not an RFC 3339 time (e.g. 2026-11-21T05:26:50Z)"),
            )
        })
}

const NANOS_PER_SEC: i128 = 1_000_000_000;

/// Whether a time that parsed writes second 60, which RFC 3339 (and a
/// JSON Schema `date-time`) allows only as a leap second: 23:59:60 UTC,
/// that is the first second of a UTC day once counted.
fn leap_second(v: &str) -> bool {
    v.get(17..19) == Some("60")
}

/// An attempt number, below a billion.
pub(crate) fn attempt(name: &str, n: u64) -> Result<u32, ParamError> {
    u32::try_from(n)
        .ok()
        .filter(|n| *n < 1_000_000_000)
        .ok_or_else(|| err(name, format!("\"{n}\" is too large")))
}

/// `stdout`, `stderr`, or both (`all` or empty: `None`); also as
/// `PodLogOptions.stream` spells them (`Stdout`, `Stderr`, `All`).
pub(crate) fn stream(name: &str, v: &str) -> Result<Option<Stream>, ParamError> {
    match v {
        "stdout" | "Stdout" => Ok(Some(Stream::Stdout)),
        "stderr" | "Stderr" => Ok(Some(Stream::Stderr)),
        "all" | "All" | "" => Ok(None),
        _ => Err(err(
            name,
            format!("{v:?} is not one of stdout|stderr|all (or Stdout|Stderr|All)"),
        )),
    }
}

/// A cursor as given; it is decoded when the read opens.
pub(crate) fn cursor(name: &str, v: &str) -> Result<String, ParamError> {
    if v.is_empty() {
        return Err(err(name, "empty cursor"));
    }
    Ok(v.to_owned())
}

/// A `grep` pattern, bounded in length and in compiled size. The length
/// is counted in characters, as OpenAPI's `maxLength` counts it.
pub(crate) fn grep(name: &str, v: &str) -> Result<regex::bytes::Regex, ParamError> {
    if v.chars().count() > MAX_GREP {
        return Err(err(
            name,
            format!("pattern longer than {MAX_GREP} characters"),
        ));
    }
    regex::bytes::RegexBuilder::new(v)
        .size_limit(1 << 20)
        .dfa_size_limit(2 << 20)
        .build()
        .map_err(|e| err(name, format!("invalid regex {v:?}: {e}")))
}

const LOG_PARAMS: &[&str] = &[
    "follow",
    "tailLines",
    "sinceSeconds",
    "sinceTime",
    "untilTime",
    "limitBytes",
    "timestamps",
    "previous",
    "attempt",
    "stream",
    "format",
    "cursor",
    "grep",
    "labels",
    "annotations",
    IGNORED,
];

/// Parameters of `GET /logs` that choose containers rather than events.
const SELECT_PARAMS: &[&str] = &["namespace", "labelSelector", "container"];

/// What `GET /logs` asks for: the inventory, or the merged events of every
/// container that matches.
#[derive(Clone, Debug)]
pub(crate) enum LogsQuery {
    Inventory(InventoryParams),
    /// Boxed: the parameters of a read are some five times the size of
    /// an inventory's.
    Merged(Box<MergedParams>),
}

/// The events of every container matching a selection, merged in time
/// order (like `kubectl logs -l`).
#[derive(Clone, Debug, Default)]
pub(crate) struct MergedParams {
    pub(crate) select: InventoryParams,
    /// Only containers of this name.
    pub(crate) container: Option<String>,
    pub(crate) params: LogParams,
}

/// Longest `grep` pattern accepted, in characters (at most 16 KiB).
const MAX_GREP: usize = 4096;

/// Parses the query string of a log request.
///
/// # Errors
///
/// The first parameter at fault, with the reason.
pub(crate) fn parse_log_params(query: &str) -> Result<LogParams, ParamError> {
    log_params(&pairs(query, LOG_PARAMS)?)
}

/// Builds log parameters from decoded pairs whose names are all in
/// `LOG_PARAMS`.
///
/// # Errors
///
/// The first parameter at fault, with the reason.
pub(crate) fn log_params(kv: &BTreeMap<String, String>) -> Result<LogParams, ParamError> {
    let mut p = LogParams::default();
    for (k, v) in kv {
        match k.as_str() {
            "follow" => p.follow = boolean(k, v)?,
            "tailLines" => p.tail_lines = Some(uint(k, v, 0)?),
            "sinceSeconds" => p.since_seconds = Some(uint(k, v, 1)?),
            "sinceTime" => p.since_time = Some(time(k, v)?),
            "untilTime" => p.until_time = Some(time(k, v)?),
            "limitBytes" => p.limit_bytes = Some(uint(k, v, 1)?),
            "timestamps" => p.timestamps = boolean(k, v)?,
            "labels" => p.labels = boolean(k, v)?,
            "annotations" => p.annotations = boolean(k, v)?,
            "previous" => p.previous = boolean(k, v)?,
            "attempt" => p.attempt = Some(attempt(k, uint(k, v, 0)?)?),
            "stream" => p.stream = stream(k, v)?,
            "format" => {
                p.format = Some(match v.as_str() {
                    "text" => Format::Text,
                    "cri" => Format::Cri,
                    "json" => Format::Json,
                    _ => return Err(err(k, format!("{v:?} is not one of text|cri|json"))),
                })
            }
            "cursor" => p.cursor = Some(cursor(k, v)?),
            "grep" => p.grep = Some(grep(k, v)?),
            IGNORED => {
                boolean(k, v)?;
            }
            _ => {
                return Err(err(
                    k,
                    format!("unknown parameter (known: {})", LOG_PARAMS.join(", ")),
                ))
            }
        }
    }
    p.checked()
}

impl LogParams {
    /// The rules between parameters, checked once each is valid alone.
    ///
    /// # Errors
    ///
    /// The parameter at fault, naming the one it conflicts with.
    pub(crate) fn checked(self) -> Result<Self, ParamError> {
        let p = self;
        if p.since_seconds.is_some() && p.since_time.is_some() {
            return Err(err(
                "sinceSeconds",
                "sinceSeconds and sinceTime cannot be combined",
            ));
        }
        if p.cursor.is_some() {
            for (set, name) in [
                (p.tail_lines.is_some(), "tailLines"),
                (p.since_seconds.is_some(), "sinceSeconds"),
                (p.since_time.is_some(), "sinceTime"),
            ] {
                if set {
                    return Err(err(
                        "cursor",
                        format!(
                            "cursor and {name} cannot be combined: each chooses where reading starts"
                        ),
                    ));
                }
            }
        }
        if p.previous && p.attempt.is_some() {
            return Err(err("attempt", "attempt and previous cannot be combined"));
        }
        if let (Some(s), Some(u)) = (p.since_time, p.until_time) {
            if u <= s {
                return Err(err("untilTime", "untilTime must be after sinceTime"));
            }
        }
        Ok(p)
    }
}

/// Parses a Kubernetes label selector (see [`super::selector`]).
///
/// # Errors
///
/// The fault, named.
pub(crate) fn parse_selector(s: &str) -> Result<Vec<Requirement>, ParamError> {
    super::selector::parse(s).map_err(|e| err("labelSelector", e))
}

/// Parses the query string of `GET /logs`: with only `namespace` and
/// `labelSelector` it is the inventory; with `container` or any log
/// parameter it asks for the merged events of the matching containers.
///
/// # Errors
///
/// The parameter at fault. `cursor` and `attempt` name one container's
/// history and are refused here.
pub(crate) fn parse_logs_query(query: &str) -> Result<LogsQuery, ParamError> {
    let allowed: Vec<&str> = SELECT_PARAMS.iter().chain(LOG_PARAMS).copied().collect();
    let mut kv = pairs(query, &allowed)?;
    let mut select = BTreeMap::new();
    for k in SELECT_PARAMS {
        if let Some(v) = kv.remove(*k) {
            select.insert((*k).to_owned(), v);
        }
    }
    let container = select.remove("container");
    let inventory = inventory_params(
        select.get("namespace").map(String::as_str),
        select.get("labelSelector").map(String::as_str),
    )?;
    if kv.is_empty() && container.is_none() {
        return Ok(LogsQuery::Inventory(inventory));
    }
    merged_params(inventory, container, log_params(&kv)?).map(|m| LogsQuery::Merged(Box::new(m)))
}

/// Merged-read parameters: the selection, a container name and log
/// parameters that do not name one container's history.
///
/// # Errors
///
/// The parameter at fault.
pub(crate) fn merged_params(
    select: InventoryParams,
    container: Option<String>,
    params: LogParams,
) -> Result<MergedParams, ParamError> {
    for (set, k) in [
        (params.cursor.is_some(), "cursor"),
        (params.attempt.is_some(), "attempt"),
    ] {
        if set {
            return Err(err(
                k,
                "names one container's history: use /logs/{namespace}/{pod}/{container}",
            ));
        }
    }
    if let Some(c) = &container {
        if !valid_name(c) {
            return Err(err(
                "container",
                format!("{c:?} is not a valid container name"),
            ));
        }
    }
    Ok(MergedParams {
        select,
        container,
        params,
    })
}

/// Inventory parameters: a namespace and a label selector, each optional.
///
/// # Errors
///
/// The parameter at fault.
pub(crate) fn inventory_params(
    namespace: Option<&str>,
    selector: Option<&str>,
) -> Result<InventoryParams, ParamError> {
    let mut p = InventoryParams::default();
    if let Some(ns) = namespace {
        if !valid_name(ns) {
            return Err(err("namespace", format!("{ns:?} is not a valid namespace")));
        }
        p.namespace = Some(ns.to_owned());
    }
    if let Some(s) = selector {
        p.selector = parse_selector(s)?;
    }
    Ok(p)
}

/// A name as it may appear in a path segment: Kubernetes object names and
/// container names use `[a-z0-9.-]`; upper case and `_` are tolerated, `.`
/// and `..` are not.
pub(crate) fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::inventory::selector_matches;

    fn e(q: &str) -> String {
        parse_log_params(q).unwrap_err().parameter
    }

    #[test]
    fn parses_all() {
        let p = parse_log_params(
            "follow=true&sinceTime=2026-11-21T05:26:50Z&untilTime=2026-11-21T07:00:00%2B01:00\
             &limitBytes=5&timestamps=1&attempt=2&stream=stderr&format=json&grep=err%7Cwarn",
        )
        .unwrap();
        assert!(p.follow && p.timestamps && !p.previous);
        assert_eq!(p.limit_bytes, Some(5));
        assert_eq!(p.attempt, Some(2));
        assert_eq!(p.stream, Some(Stream::Stderr));
        assert_eq!(p.format, Some(Format::Json));
        let c = parse_log_params("cursor=abc&follow=1&stream=stdout").unwrap();
        assert_eq!(c.cursor.as_deref(), Some("abc"));
        assert_eq!(
            parse_log_params("tailLines=10").unwrap().tail_lines,
            Some(10)
        );
        assert!(p.grep.unwrap().is_match(b"a warn b"));
        assert!(p.until_time.unwrap() > p.since_time.unwrap());
        let p = parse_log_params("").unwrap();
        assert!(!p.follow && p.tail_lines.is_none() && p.format.is_none());
        assert!(parse_log_params("follow").unwrap().follow);
    }

    #[test]
    fn errors_name_the_parameter() {
        let cases = [
            ("tailLines=-1", "tailLines"),
            ("tailLines=abc", "tailLines"),
            ("sinceSeconds=0", "sinceSeconds"),
            ("sinceTime=yesterday", "sinceTime"),
            ("untilTime=2026-11-21", "untilTime"),
            ("limitBytes=0", "limitBytes"),
            ("follow=yes", "follow"),
            ("stream=stdin", "stream"),
            ("format=xml", "format"),
            ("grep=(", "grep"),
            ("attempt=99999999999", "attempt"),
            ("tailLine=5", "tailLine"),
            ("follow=1&follow=0", "follow"),
            (
                "sinceSeconds=5&sinceTime=2026-11-21T05:26:50Z",
                "sinceSeconds",
            ),
            ("previous=true&attempt=1", "attempt"),
            ("cursor=", "cursor"),
            ("cursor=abc&tailLines=1", "cursor"),
            ("cursor=abc&sinceSeconds=1", "cursor"),
            ("labels=maybe", "labels"),
            (
                "insecureSkipTLSVerifyBackend=null",
                "insecureSkipTLSVerifyBackend",
            ),
            (
                "insecureSkipTLSVerifyBackend=1&insecureSkipTLSVerifyBackend=1",
                "insecureSkipTLSVerifyBackend",
            ),
            (
                "sinceTime=3000-01-01T00:00:01Z&untilTime=3000-01-01T00:00:00Z",
                "untilTime",
            ),
            ("sinceTime=2026-12-31T23:58:60Z", "sinceTime"),
            ("untilTime=2026-12-31T23:59:60%2B01:00", "untilTime"),
        ];
        for (q, want) in cases {
            assert_eq!(e(q), want, "query {q}");
        }
    }

    #[test]
    fn ignored_field_is_a_boolean() {
        for v in ["", "true", "false", "1", "0"] {
            let q = format!("insecureSkipTLSVerifyBackend={v}&tailLines=1");
            assert_eq!(parse_log_params(&q).unwrap().tail_lines, Some(1), "{q}");
        }
    }

    #[test]
    fn times_beyond_event_times_are_taken() {
        let p = parse_log_params("sinceTime=3031-10-16T21:01:28Z&untilTime=3031-10-16T21:01:29Z")
            .unwrap();
        assert_eq!(p.until_time.unwrap() - p.since_time.unwrap(), 1_000_000_000);
        let p = parse_log_params("sinceTime=0001-01-01T00:00:00Z").unwrap();
        assert_eq!(cri::saturate(p.since_time.unwrap()), cri::Nanos::MIN);
    }

    #[test]
    fn second_60_is_a_leap_second_only() {
        for v in [
            "2026-12-31T23:59:60Z",
            "2026-12-31T23:59:60.5Z",
            "2027-01-01T00:59:60+01:00",
            "2026-12-31T22:59:60-01:00",
        ] {
            let t = time("sinceTime", v).unwrap();
            assert_eq!(
                t,
                time("sinceTime", "2027-01-01T00:00:00Z").unwrap() + t % NANOS_PER_SEC,
                "{v}"
            );
        }
        for v in ["2026-12-31T23:58:60Z", "2026-12-31T23:59:60+01:00"] {
            assert!(time("sinceTime", v).is_err(), "{v}");
        }
    }

    #[test]
    fn grep_length_is_in_characters() {
        let longest = "é".repeat(MAX_GREP);
        assert!(grep("grep", &longest).is_ok());
        let e = grep("grep", &format!("{longest}a")).unwrap_err();
        assert_eq!(e.parameter, "grep");
    }

    #[test]
    fn logs_query_is_inventory_or_merged() {
        let inv = |q: &str| matches!(parse_logs_query(q), Ok(LogsQuery::Inventory(_)));
        assert!(inv(""));
        assert!(inv("namespace=a&labelSelector=app%3Dweb"));
        match parse_logs_query("labelSelector=app%3Dweb&follow=true&format=json&labels=1") {
            Ok(LogsQuery::Merged(m)) => {
                assert_eq!(m.select.selector.len(), 1);
                assert!(m.params.follow && m.params.labels);
                assert_eq!(m.params.format, Some(Format::Json));
            }
            other => panic!("{other:?}"),
        }
        match parse_logs_query("container=app") {
            Ok(LogsQuery::Merged(m)) => assert_eq!(m.container.as_deref(), Some("app")),
            other => panic!("{other:?}"),
        }
        let bad = |q: &str| parse_logs_query(q).unwrap_err().parameter;
        assert_eq!(bad("labelSelector=a&cursor=x"), "cursor");
        assert_eq!(bad("follow=1&attempt=0"), "attempt");
        assert_eq!(bad("container=..&follow=1"), "container");
        assert_eq!(bad("tailLines=x"), "tailLines");
        assert_eq!(bad("labelSelector=a%20b&follow=1"), "labelSelector");
        assert_eq!(bad("bogus=1"), "bogus");
    }

    #[test]
    fn selectors() {
        let s = parse_selector("app=web, tier!=db,env,!canary,x==y").unwrap();
        assert_eq!(s.len(), 5);
        let mut labels = BTreeMap::new();
        labels.insert("app".to_owned(), "web".to_owned());
        labels.insert("env".to_owned(), "prod".to_owned());
        labels.insert("x".to_owned(), "y".to_owned());
        assert!(selector_matches(&s, &labels));
        labels.insert("canary".to_owned(), "1".to_owned());
        assert!(!selector_matches(&s, &labels));
        assert!(parse_selector("a b=c").is_err());
        assert!(parse_selector("a=b c").is_err());
    }
}
