//! Property tests of the annotation parsers: nothing panics on any input,
//! the effective policy is always within limits, and valid values survive
//! every way of writing them.

use std::collections::BTreeMap;
use std::time::Duration;

use podlog_policy::{
    format_duration, limits, parse_duration, parse_size, resolve, Compress, Effective, PodPolicy,
    PolicySpec, Rotate, MAX_ERROR_VALUE_CHARS,
};
use proptest::prelude::*;

fn config(cases: u32, file: &'static str) -> ProptestConfig {
    ProptestConfig {
        cases,
        // Integration tests have no lib.rs for proptest to find: name the file.
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::Direct(file),
        )),
        ..ProptestConfig::default()
    }
}

const KEYS: &[&str] = &[
    "podlog.dev/policy",
    "podlog.dev/rotate",
    "podlog.dev/max-file-size",
    "podlog.dev/max-files",
    "podlog.dev/max-total-size",
    "podlog.dev/max-age",
    "podlog.dev/compress",
    "podlog.dev/max-event-bytes",
];

/// Pieces that YAML and the policy parsers care about, to build
/// nearly-valid documents from.
const TOKENS: &[&str] = &[
    "maxFileSize",
    "maxFiles",
    "maxTotalSize",
    "maxAge",
    "maxEventBytes",
    "rotate",
    "compress",
    "delimiter",
    "multiline",
    "start",
    "maxLines",
    "flushAfter",
    "bytes",
    "annotations",
    "containers",
    "c",
    "hourly",
    "gzip",
    "newline",
    ":",
    ": ",
    " ",
    "\n",
    "\n  ",
    "\n    ",
    "- ",
    "[",
    "]",
    "{",
    "}",
    ", ",
    "&a ",
    "*a",
    "&b ",
    "*b",
    "!t ",
    "!!str ",
    "'",
    "\"",
    "\\",
    "10Mi",
    "-1",
    "0",
    "4Ki",
    "99999999999999999999999",
    "1e999",
    "1.5",
    "36h",
    "1h30m",
    "0s",
    "^\\d+",
    "(",
    "(?:",
    "{1000}",
    "~",
    "# c",
    "|",
    ">",
    "---",
    "...",
    "? ",
    "<<: ",
    "\t",
    "\0",
    "é",
];

fn yamlish() -> impl Strategy<Value = String> {
    proptest::collection::vec(proptest::sample::select(TOKENS), 0..80).prop_map(|t| t.concat())
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        ".*",
        "\\PC{0,40}",
        yamlish(),
        "[0-9]{0,30}(Ki|Mi|Gi|Ti|k|M|G|T|mi|)",
        "-?[0-9]{0,25}(d|h|m|s|ms|us)?[0-9]{0,3}(h|m|s)?",
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(KEYS).prop_map(str::to_owned),
        1 => "podlog\\.dev/[a-z-]{0,12}",
        1 => ".{0,20}",
    ]
}

/// Checks what every resolved policy must satisfy.
fn check_effective(e: &Effective) -> Result<(), TestCaseError> {
    prop_assert!(e.max_file_size >= limits::MIN_MAX_FILE_SIZE);
    prop_assert!((limits::MIN_MAX_FILES..=limits::MAX_MAX_FILES).contains(&e.max_files));
    prop_assert!(e.max_total_size >= e.max_file_size);
    prop_assert!(
        (limits::MIN_MAX_EVENT_BYTES..=limits::MAX_MAX_EVENT_BYTES).contains(&e.max_event_bytes)
    );
    prop_assert!(e.max_age.is_none_or(|a| a >= limits::MIN_MAX_AGE));
    Ok(())
}

proptest! {
    #![proptest_config(config(3000, "proptest-regressions/resolve.txt"))]

    #[test]
    fn resolve_never_panics(
        annotations in proptest::collection::btree_map(key(), value(), 0..6),
        container in prop_oneof![Just("c".to_owned()), ".{0,8}"],
    ) {
        let r = resolve(&PolicySpec::default(), &annotations, &container);
        check_effective(&r.effective)?;
        for e in &r.errors {
            prop_assert!(e.value.chars().count() <= MAX_ERROR_VALUE_CHARS + 1);
            prop_assert!(!e.key.is_empty());
            let _ = e.to_string();
        }
    }

    #[test]
    fn policy_yaml_never_panics(text in yamlish(), container in prop_oneof![Just("c"), Just("d")]) {
        let annotations = BTreeMap::from([("podlog.dev/policy".to_owned(), text)]);
        let r = resolve(&PolicySpec::default(), &annotations, container);
        check_effective(&r.effective)?;
    }

    #[test]
    fn node_yaml_never_panics(text in prop_oneof![yamlish(), ".*"]) {
        if let Ok(node) = PolicySpec::from_node_yaml(&text) {
            let r = resolve(&node, &BTreeMap::new(), "c");
            prop_assert_eq!(r.errors, vec![]);
            check_effective(&r.effective)?;
        }
    }

    #[test]
    fn quantity_parsers_never_panic(s in ".*") {
        let _ = parse_size(&s);
        let _ = parse_duration(&s);
    }

    #[test]
    fn durations_round_trip(ms in any::<u64>()) {
        let d = Duration::from_millis(ms);
        prop_assert_eq!(parse_duration(&format_duration(d)), Ok(d));
    }
}

/// A valid setting and the ways to write it.
#[derive(Clone, Debug)]
struct Valid {
    rotate: Option<Rotate>,
    file_kib: Option<u64>,
    files: Option<u32>,
    total_factor: Option<u64>,
    age_s: Option<u64>,
    compress: Option<Compress>,
    event_kib: Option<u64>,
    /// 0: pod-level YAML, 1: short keys, 2: container section.
    place: u8,
}

fn valid() -> impl Strategy<Value = Valid> {
    (
        proptest::option::of(prop_oneof![
            Just(Rotate::Never),
            Just(Rotate::Hourly),
            Just(Rotate::Daily)
        ]),
        proptest::option::of(4_u64..=1 << 20),
        proptest::option::of(2_u32..=1000),
        proptest::option::of(1_u64..=100),
        proptest::option::of(1_u64..=10_000_000),
        proptest::option::of(prop_oneof![
            Just(Compress::None),
            Just(Compress::Gzip),
            Just(Compress::Zstd)
        ]),
        proptest::option::of(1_u64..=65_536),
        0_u8..3,
    )
        .prop_map(
            |(rotate, file_kib, files, total_factor, age_s, compress, event_kib, place)| Valid {
                rotate,
                file_kib,
                files,
                total_factor,
                age_s,
                compress,
                event_kib,
                place,
            },
        )
}

fn word<T: std::fmt::Debug>(v: T) -> String {
    format!("{v:?}").to_lowercase()
}

proptest! {
    #![proptest_config(config(1000, "proptest-regressions/resolve-valid.txt"))]

    #[test]
    fn valid_values_survive(v in valid()) {
        let file = v.file_kib.map(|k| k << 10);
        let total = v.total_factor.map(|f| f * file.unwrap_or(limits::DEFAULT_MAX_FILE_SIZE));
        let age = v.age_s.map(|s| format_duration(Duration::from_secs(s)));
        let fields: Vec<(&str, &str, Option<String>)> = vec![
            ("rotate", "rotate", v.rotate.map(word)),
            ("maxFileSize", "max-file-size", v.file_kib.map(|k| format!("{k}Ki"))),
            ("maxFiles", "max-files", v.files.map(|n| n.to_string())),
            ("maxTotalSize", "max-total-size", total.map(|t| t.to_string())),
            ("maxAge", "max-age", age),
            ("compress", "compress", v.compress.map(word)),
            ("maxEventBytes", "max-event-bytes", v.event_kib.map(|k| format!("{k}Ki"))),
        ];
        let mut annotations = BTreeMap::new();
        let set: Vec<(&str, &str, String)> = fields
            .into_iter()
            .filter_map(|(f, k, v)| v.map(|v| (f, k, v)))
            .collect();
        match v.place {
            0 | 2 => {
                let body: Vec<String> = set.iter().map(|(f, _, v)| format!("{f}: '{v}'")).collect();
                let doc = if v.place == 0 {
                    format!("{{{}}}", body.join(", "))
                } else {
                    format!("containers: {{c: {{{}}}}}", body.join(", "))
                };
                annotations.insert("podlog.dev/policy".to_owned(), doc);
            }
            _ => {
                for (_, k, v) in &set {
                    annotations.insert(format!("podlog.dev/{k}"), v.clone());
                }
            }
        }
        let pod = PodPolicy::from_annotations(&annotations);
        let r = pod.resolve(&PolicySpec::default(), "c");
        prop_assert_eq!(&r.errors, &vec![], "{:?}", annotations);
        let d = Effective::default();
        let e = &r.effective;
        prop_assert_eq!(e.rotate, v.rotate.unwrap_or(d.rotate));
        prop_assert_eq!(e.max_file_size, file.unwrap_or(d.max_file_size));
        prop_assert_eq!(e.max_files, v.files.unwrap_or(d.max_files));
        prop_assert_eq!(
            e.max_total_size,
            total.unwrap_or(e.max_file_size * u64::from(e.max_files))
        );
        prop_assert_eq!(e.max_age, v.age_s.map(Duration::from_secs));
        prop_assert_eq!(e.compress, v.compress.unwrap_or(d.compress));
        prop_assert_eq!(e.max_event_bytes, v.event_kib.map_or(d.max_event_bytes, |k| k << 10));
    }
}

#[test]
// Bounds the real CPU time a hostile document costs: wall-clock on purpose.
#[allow(clippy::disallowed_types)]
fn bombs_finish_quickly_with_an_error() {
    // Nested aliases, a long string aliased many times, and deep nesting,
    // each at the 64 KiB limit.
    let mut laughs = String::from("a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..40 {
        laughs.push_str(&format!(
            "a{i}: &a{i} [{}]\n",
            vec![
                format!(
                    "*a{}",
                    if i == 1 {
                        String::new()
                    } else {
                        (i - 1).to_string()
                    }
                );
                10
            ]
            .join(", ")
        ));
    }
    let long = format!(
        "s: &s '{}'\nt: [{}]\n",
        "x".repeat(30_000),
        vec!["*s"; 8_000].join(", ")
    );
    let deep = format!("{}{}", "[".repeat(32_000), "]".repeat(32_000));
    let deep_maps = "{a: ".repeat(12_000) + &"}".repeat(12_000);
    for text in [laughs, long, deep, deep_maps] {
        assert!(text.len() <= 64 << 10, "{}", text.len());
        let started = std::time::Instant::now();
        let annotations = BTreeMap::from([("podlog.dev/policy".to_owned(), text)]);
        let r = resolve(&PolicySpec::default(), &annotations, "c");
        assert_eq!(r.effective, Effective::default());
        assert_eq!(r.errors.len(), 1, "{:?}", r.errors);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }
}
