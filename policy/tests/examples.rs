//! The policy examples in `examples/policy/` mean what their comments and
//! `docs/policy.md` say.
//!
//! The CRI logging proposal's pod (`proposal-pod.yaml`) is resolved on the
//! example node (`node-config.yaml`), and the effective policies of its
//! containers `foo` and `bar` are checked field by field. Then the retention
//! planner is driven with an injected clock, never a real one: rotation at
//! UTC hour and day boundaries, retention of the newest whole events within
//! `maxTotalSize` and `maxFiles`, and a day of hourly rotation. Hostile
//! variants of the manifest check that a broken setting falls back and is
//! reported with its key, value and reason.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use podlog_policy::{
    plan, Action, Compress, Delimiter, Effective, EventMark, FileFacts, HeadTrim, Multiline,
    PodPolicy, PolicyError, PolicySpec, Reason, Rotate, StartPattern,
};
use serde_yaml::Value;

const KI: u64 = 1 << 10;
const MI: u64 = 1 << 20;
const S: i64 = 1_000_000_000;
const MIN: i64 = 60 * S;
const H: i64 = 60 * MIN;
const D: i64 = 24 * H;
/// 2026-11-21T00:00:00Z in Unix nanoseconds.
const NOV21: i64 = 1_795_219_200 * S;

/// The pod-level annotation of the design's "Policy" section, verbatim.
const DESIGN_POLICY: &str = r#"containers:
  foo:
    rotate: daily
    annotations: {fluentd-config: "actual fluentd configuration"}
  bar:
    rotate: hourly
    maxFileSize: 10Mi
    maxTotalSize: 100Mi
    delimiter: {multiline: {start: '^\d{4}-\d{2}-\d{2}'}}
"#;

/// How long the agent lets readers finish a rotated file before compressing
/// it (the planner's `compress_grace`, an agent setting).
const GRACE: Duration = Duration::from_secs(300);

// === the example files ===

fn example(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/policy")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// `metadata.annotations` of a Pod manifest. Kubernetes annotation values
/// are strings; anything else is a broken manifest.
fn annotations(manifest: &Value) -> BTreeMap<String, String> {
    let map = manifest["metadata"]["annotations"]
        .as_mapping()
        .expect("the manifest has metadata.annotations");
    map.iter()
        .map(|(k, v)| {
            let k = k.as_str().expect("annotation keys are strings");
            let v = v
                .as_str()
                .unwrap_or_else(|| panic!("annotation {k} is not a string: {v:?}"));
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

fn container_names(manifest: &Value) -> Vec<String> {
    manifest["spec"]["containers"]
        .as_sequence()
        .expect("the manifest has spec.containers")
        .iter()
        .map(|c| {
            assert!(c["image"].is_string(), "every container has an image");
            c["name"]
                .as_str()
                .expect("containers have names")
                .to_owned()
        })
        .collect()
}

fn manifest(text: &str) -> Value {
    let m: Value = serde_yaml::from_str(text).expect("the manifest is YAML");
    assert_eq!(m["apiVersion"].as_str(), Some("v1"));
    assert_eq!(m["kind"].as_str(), Some("Pod"));
    assert!(m["metadata"]["name"].is_string());
    m
}

/// The node defaults of `node-config.yaml`, read the way podlogd reads its
/// config file: `policy` deserialized as a [`PolicySpec`] inside it.
fn node_policy() -> PolicySpec {
    #[derive(serde::Deserialize)]
    struct NodeConfig {
        policy: PolicySpec,
    }
    let text = example("node-config.yaml");
    let config: NodeConfig = serde_yaml::from_str(&text).expect("node-config.yaml parses");
    // The same section through the standalone parser gives the same spec.
    let raw: Value = serde_yaml::from_str(&text).expect("node-config.yaml is YAML");
    let section = serde_yaml::to_string(&raw["policy"]).expect("a YAML value serializes");
    assert_eq!(
        PolicySpec::from_node_yaml(&section),
        Ok(config.policy.clone())
    );
    // Every other key is one that podlogd's config file knows (it refuses
    // unknown keys).
    let known = [
        "logRoot",
        "listen",
        "nodeName",
        "maxEventBytes",
        "criEndpoint",
        "grpcListen",
        "policy",
    ];
    for key in raw.as_mapping().expect("the config is a mapping").keys() {
        let key = key.as_str().expect("config keys are strings");
        assert!(known.contains(&key), "podlogd does not know the key {key}");
    }
    config.policy
}

fn bar_start() -> StartPattern {
    StartPattern::new(r"^\d{4}-\d{2}-\d{2}").expect("the design's pattern compiles")
}

/// What `foo` gets on the example node.
fn foo_expected() -> Effective {
    Effective {
        rotate: Rotate::Daily,
        max_file_size: 20 * MI,
        max_files: 5,
        max_total_size: 120 * MI,
        max_age: Some(Duration::from_secs(7 * 86_400)),
        compress: Compress::Gzip,
        delimiter: Delimiter::Newline,
        max_event_bytes: MI,
        annotations: BTreeMap::from([
            ("cluster".to_owned(), "example-cluster".to_owned()),
            (
                "fluentd-config".to_owned(),
                "actual fluentd configuration".to_owned(),
            ),
        ]),
    }
}

/// What `bar` gets on the example node.
fn bar_expected() -> Effective {
    Effective {
        rotate: Rotate::Hourly,
        max_file_size: 10 * MI,
        max_files: 5,
        max_total_size: 100 * MI,
        max_age: Some(Duration::from_secs(7 * 86_400)),
        compress: Compress::Gzip,
        delimiter: Delimiter::Multiline(Multiline::new(bar_start())),
        max_event_bytes: MI,
        annotations: BTreeMap::from([("cluster".to_owned(), "example-cluster".to_owned())]),
    }
}

fn resolved(container: &str) -> Effective {
    let m = manifest(&example("proposal-pod.yaml"));
    let r = PodPolicy::from_annotations(&annotations(&m)).resolve(&node_policy(), container);
    assert_eq!(r.errors, vec![], "{container}");
    r.effective
}

// === resolving ===

#[test]
fn node_config_holds_the_documented_defaults() {
    let node = node_policy();
    assert_eq!(
        node,
        PolicySpec {
            rotate: Some(Rotate::Never),
            max_file_size: Some(20 * MI),
            max_files: Some(8),
            max_total_size: Some(120 * MI),
            max_age: Some(Duration::from_secs(7 * 86_400)),
            compress: Some(Compress::Gzip),
            delimiter: Some(Delimiter::Newline),
            max_event_bytes: Some(MI),
            annotations: BTreeMap::from([("cluster".to_owned(), "example-cluster".to_owned())]),
        }
    );
}

#[test]
fn proposal_pod_carries_the_design_annotations() {
    let m = manifest(&example("proposal-pod.yaml"));
    let a = annotations(&m);
    assert_eq!(
        a,
        BTreeMap::from([
            ("podlog.dev/max-files".to_owned(), "5".to_owned()),
            ("podlog.dev/policy".to_owned(), DESIGN_POLICY.to_owned()),
        ])
    );
    let pod = PodPolicy::from_annotations(&a);
    assert_eq!(pod.errors().count(), 0);
    // Every section names a container of the pod.
    let names = container_names(&m);
    assert_eq!(names, ["foo", "bar"]);
    for section in pod.container_names() {
        assert!(names.iter().any(|n| n == section), "{section}");
    }
}

#[test]
fn foo_and_bar_resolve_as_designed() {
    assert_eq!(resolved("foo"), foo_expected());
    assert_eq!(resolved("bar"), bar_expected());
    // A container without a section (an injected sidecar, say) gets the node
    // defaults and the pod-wide short key.
    let node = node_policy();
    assert_eq!(
        resolved("sidecar"),
        Effective {
            rotate: Rotate::Never,
            max_file_size: 20 * MI,
            max_files: 5,
            max_total_size: 120 * MI,
            max_age: node.max_age,
            compress: Compress::Gzip,
            delimiter: Delimiter::Newline,
            max_event_bytes: MI,
            annotations: node.annotations,
        }
    );
    // On a node without defaults the built-in ones fill in: `foo`'s total is
    // derived from its file size and count.
    let m = manifest(&example("proposal-pod.yaml"));
    let r = PodPolicy::from_annotations(&annotations(&m)).resolve(&PolicySpec::default(), "foo");
    assert_eq!(r.errors, vec![]);
    assert_eq!(
        (
            r.effective.max_file_size,
            r.effective.max_files,
            r.effective.max_total_size
        ),
        (10 * MI, 5, 50 * MI)
    );
    assert_eq!(r.effective.max_age, None);
    assert_eq!(r.effective.compress, Compress::None);
}

#[test]
fn bar_start_pattern_splits_its_output_into_events() {
    let Delimiter::Multiline(m) = resolved("bar").delimiter else {
        panic!("bar is multi-line")
    };
    // Lines as bar's command prints them.
    let starts = [
        "2026-11-21 10:00:09 INFO request 9 served",
        "2026-11-21 10:00:10 ERROR request 10 failed",
    ];
    let continuations = [
        "java.lang.IllegalStateException: backend unavailable (request 10)",
        "    at com.example.Backend.call(Backend.java:88)",
        "    at java.base/java.lang.Thread.run(Thread.java:1583)",
        " 2026-11-21 is not at the start",
    ];
    for line in starts {
        assert!(m.start.regex().is_match(line.as_bytes()), "{line}");
    }
    for line in continuations {
        assert!(!m.start.regex().is_match(line.as_bytes()), "{line}");
    }
    let manifest_text = example("proposal-pod.yaml");
    assert!(manifest_text.contains("date -u '+%Y-%m-%d %H:%M:%S'"));
}

// === hostile variants ===

fn variant(from: &str, to: &str) -> BTreeMap<String, String> {
    let text = example("proposal-pod.yaml");
    assert_eq!(text.matches(from).count(), 1, "{from}");
    annotations(&manifest(&text.replace(from, to)))
}

#[test]
fn broken_short_key_falls_back_to_the_node_default() {
    let a = variant(
        r#"podlog.dev/max-files: "5""#,
        r#"podlog.dev/max-files: "-3""#,
    );
    let pod = PodPolicy::from_annotations(&a);
    let node = node_policy();
    let error = PolicyError::new("podlog.dev/max-files", "", "-3", Reason::Negative);
    assert_eq!(
        error.to_string(),
        r#"podlog.dev/max-files: "-3": must not be negative"#
    );
    for (name, good) in [("foo", foo_expected()), ("bar", bar_expected())] {
        let r = pod.resolve(&node, name);
        assert_eq!(r.errors, vec![error.clone()], "{name}");
        // maxFiles comes from the node (8); everything else is as before.
        assert_eq!(
            r.effective,
            Effective {
                max_files: 8,
                ..good
            },
            "{name}"
        );
    }
}

#[test]
fn broken_policy_document_is_dropped_whole_short_key_still_applies() {
    // Not YAML any more: the whole document goes, the short key stays.
    let a = variant("rotate: hourly", "rotate: [hourly");
    let node = node_policy();
    for name in ["foo", "bar"] {
        let r = PodPolicy::from_annotations(&a).resolve(&node, name);
        assert_eq!(r.errors.len(), 1, "{name}: {:?}", r.errors);
        let e = &r.errors[0];
        assert_eq!(
            (e.key.as_str(), e.field.as_str()),
            ("podlog.dev/policy", "")
        );
        assert!(matches!(e.reason, Reason::Yaml { .. }), "{e}");
        assert!(e
            .to_string()
            .starts_with("podlog.dev/policy: \"containers:"));
        assert_eq!(r.effective.rotate, Rotate::Never, "{name}");
        assert_eq!(r.effective.max_files, 5, "{name}");
        assert_eq!(r.effective.delimiter, Delimiter::Newline, "{name}");
    }
    // One faulty field in bar's section: only that field falls back.
    let a = variant("maxTotalSize: 100Mi", "maxTotalSize: 100MB");
    let r = PodPolicy::from_annotations(&a).resolve(&node, "bar");
    assert_eq!(
        r.errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
        [
            r#"podlog.dev/policy (containers.bar.maxTotalSize): "100MB": "100MB" is not a size (examples: 512, 10Ki, 10Mi, 1Gi, 5M)"#
        ]
    );
    assert_eq!(
        r.effective,
        Effective {
            max_total_size: 120 * MI,
            ..bar_expected()
        }
    );
}

// === planning with an injected clock ===

/// A file of whole events `(bytes, time)` laid end to end, after `tail`
/// bytes that end the previous file's last event (a `P…F` chain split by a
/// rotation).
fn file(name: &str, tail: u64, events: &[(u64, i64)]) -> FileFacts {
    let mut offset = tail;
    let mut marks = Vec::new();
    for &(bytes, time) in events {
        marks.push(EventMark { offset, time });
        offset += bytes;
    }
    FileFacts {
        name: name.to_owned(),
        size: offset,
        attempt: 0,
        active: false,
        compressed: false,
        first_time: events.first().map(|e| e.1),
        last_time: events.last().map(|e| e.1),
        events: marks,
    }
}

fn active(mut f: FileFacts) -> FileFacts {
    f.active = true;
    f
}

fn rotate(f: &str) -> Action {
    Action::Rotate { file: f.into() }
}

fn rotations(actions: &[Action]) -> Vec<&Action> {
    actions
        .iter()
        .filter(|a| matches!(a, Action::Rotate { .. }))
        .collect()
}

/// Drops the head of `file` before `offset`, an event boundary.
fn trim(files: &mut [FileFacts], file: &str, offset: u64) {
    let f = files
        .iter_mut()
        .find(|f| f.name == file)
        .expect("trims name a file");
    assert!(
        f.events.iter().any(|e| e.offset == offset),
        "cut at an event boundary"
    );
    f.events.retain(|e| e.offset >= offset);
    for e in &mut f.events {
        e.offset -= offset;
    }
    f.size -= offset;
    f.first_time = f.events.first().map(|e| e.time);
}

/// Carries out deletes, trims and compressions the way the executor would
/// (a compressed file shrinks to an eighth and keeps its name plus `.gz`).
/// Rotations are left to the caller.
fn apply(files: &mut Vec<FileFacts>, actions: &[Action]) {
    for a in actions {
        match a {
            Action::Rotate { .. } => {}
            Action::Delete { file } => files.retain(|f| &f.name != file),
            Action::TrimHead { file, offset } => trim(files, file, *offset),
            Action::DropSpan {
                files: deleted,
                trim: cut,
            } => {
                files.retain(|f| !deleted.contains(&f.name));
                if let Some(cut) = cut {
                    trim(files, &cut.file, cut.offset);
                }
            }
            Action::Compress { file } => {
                let f = files
                    .iter_mut()
                    .find(|f| &f.name == file)
                    .expect("compressions name a file");
                f.compressed = true;
                f.size /= 8;
                f.name.push_str(".gz");
            }
        }
    }
}

#[test]
fn bar_rotates_at_the_first_event_of_a_new_utc_hour() {
    let bar = resolved("bar");
    let at = |h: i64, m: i64, s: i64| NOV21 + h * H + m * MIN + s * S;
    // Events from 10:00:07 to the hour's last nanosecond, well under 10Mi.
    let last_ns = at(11, 0, 0) - 1;
    let mut events = vec![
        (300, at(10, 0, 7)),
        (4 * KI, at(10, 20, 0)),
        (300, at(10, 45, 30)),
        (300, last_ns),
    ];
    let f = active(file("0.log", 0, &events));
    // Planned at each event's time: no rotation within the hour.
    for &(_, now) in &events {
        assert_eq!(plan(&bar, std::slice::from_ref(&f), now, GRACE), vec![]);
    }
    // 11:00:00.000 exactly, and the first event of the new hour whenever it
    // comes: the file's first event is in an earlier UTC hour.
    assert_eq!(
        plan(&bar, std::slice::from_ref(&f), at(11, 0, 0), GRACE),
        vec![rotate("0.log")]
    );
    events.push((300, at(11, 0, 2)));
    let f = active(file("0.log", 0, &events));
    assert_eq!(
        plan(&bar, std::slice::from_ref(&f), at(11, 0, 2), GRACE),
        vec![rotate("0.log")]
    );
    // foo, daily, does not rotate at the hour.
    let foo = resolved("foo");
    assert_eq!(
        plan(&foo, std::slice::from_ref(&f), at(11, 0, 2), GRACE),
        vec![]
    );

    // After the rotation the new file starts at 11:00:02 and lasts until 12.
    let new = active(file(
        "0.log",
        0,
        &[(300, at(11, 0, 2)), (300, at(11, 59, 59))],
    ));
    for now in [at(11, 0, 2), at(11, 30, 0), at(12, 0, 0) - 1] {
        assert_eq!(
            rotations(&plan(&bar, std::slice::from_ref(&new), now, GRACE)),
            Vec::<&Action>::new()
        );
    }
    assert_eq!(
        plan(&bar, std::slice::from_ref(&new), at(12, 0, 0), GRACE),
        vec![rotate("0.log")]
    );

    // Within the hour, size alone rotates: larger than maxFileSize, not equal.
    let full = active(file("0.log", 0, &[(10 * MI, at(11, 0, 2))]));
    assert_eq!(
        plan(&bar, std::slice::from_ref(&full), at(11, 0, 3), GRACE),
        vec![]
    );
    let over = active(file(
        "0.log",
        0,
        &[(10 * MI, at(11, 0, 2)), (1, at(11, 0, 3))],
    ));
    assert_eq!(
        plan(&bar, std::slice::from_ref(&over), at(11, 0, 3), GRACE),
        vec![rotate("0.log")]
    );
    // An empty file never rotates by time.
    let empty = active(file("0.log", 0, &[]));
    assert_eq!(plan(&bar, &[empty], at(15, 0, 0), GRACE), vec![]);
}

#[test]
fn foo_rotates_at_a_new_utc_day_only() {
    let foo = resolved("foo");
    let f = active(file(
        "0.log",
        0,
        &[
            (200, NOV21 + 5 * S),
            (200, NOV21 + 12 * H),
            (200, NOV21 + D - S),
        ],
    ));
    // Every hour boundary of the day, and its last nanosecond: no rotation.
    for now in (1..24).map(|h| NOV21 + h * H).chain([NOV21 + D - 1]) {
        assert_eq!(plan(&foo, std::slice::from_ref(&f), now, GRACE), vec![]);
    }
    // Midnight UTC.
    assert_eq!(
        plan(&foo, std::slice::from_ref(&f), NOV21 + D, GRACE),
        vec![rotate("0.log")]
    );
    // A file begun one second before midnight rotates at midnight too: the
    // day of its first event is over.
    let late = active(file("0.log", 0, &[(200, NOV21 + D - S)]));
    assert_eq!(
        plan(&foo, std::slice::from_ref(&late), NOV21 + D - 1, GRACE),
        vec![]
    );
    assert_eq!(
        plan(&foo, std::slice::from_ref(&late), NOV21 + D, GRACE),
        vec![rotate("0.log")]
    );
    // foo's size limit is the node's 20Mi.
    let big = active(file("0.log", 0, &[(20 * MI, NOV21 + H), (1, NOV21 + H)]));
    assert_eq!(
        plan(&foo, std::slice::from_ref(&big), NOV21 + 2 * H, GRACE),
        vec![rotate("0.log")]
    );
}

#[test]
fn bar_retention_keeps_the_newest_whole_events_within_100mi() {
    let bar = resolved("bar");
    let at = |h: i64, m: i64| NOV21 + h * H + m * MIN;
    // Files left from before podlog managed the container (the kubelet's
    // containerLogMaxSize was larger than bar's maxFileSize, or podlogd was
    // down): 146Mi in five files. The 5Mi event at the end of 07:00's file
    // continues for 4Mi into 08:00's (one event, a P…F chain cut by the
    // rotation); 08:00's first own event is a 7Mi stack trace.
    let mut files = vec![
        file(
            "0.log.20261121-070000",
            0,
            &[(9 * MI, at(6, 0)), (9 * MI, at(6, 20)), (9 * MI, at(6, 40))],
        ),
        file(
            "0.log.20261121-080000",
            0,
            &[(9 * MI, at(7, 0)), (9 * MI, at(7, 20)), (5 * MI, at(7, 59))],
        ),
        file(
            "0.log.20261121-090000",
            4 * MI,
            &[
                (7 * MI, at(8, 1)),
                (9 * MI, at(8, 15)),
                (9 * MI, at(8, 30)),
                (9 * MI, at(8, 45)),
                (9 * MI, at(8, 55)),
            ],
        ),
        file(
            "0.log.20261121-100000",
            0,
            &[
                (9 * MI, at(9, 0)),
                (9 * MI, at(9, 10)),
                (9 * MI, at(9, 20)),
                (9 * MI, at(9, 30)),
                (9 * MI, at(9, 40)),
            ],
        ),
        active(file("0.log", 0, &[(3 * MI, at(10, 5)), (MI, at(10, 20))])),
    ];
    let total: u64 = files.iter().map(|f| f.size).sum();
    assert_eq!(total, 146 * MI);
    let now = at(10, 30);
    let actions = plan(&bar, &files, now, GRACE);
    // Kept, newest first: the active file (4Mi, always), 10:00's 45Mi,
    // 09:00's own five events (43Mi): 92Mi. The chain next (9Mi) would make
    // 101Mi, so it goes with everything older, although 8Mi more would fit
    // by bytes. The cut is at 09:00's first own event; the stack trace
    // stays whole. The chain spans 08:00's file and 09:00's head, so that
    // file is deleted and that head trimmed in one step.
    assert_eq!(
        actions,
        vec![
            Action::Delete {
                file: "0.log.20261121-070000".into()
            },
            Action::DropSpan {
                files: vec!["0.log.20261121-080000".into()],
                trim: Some(HeadTrim {
                    file: "0.log.20261121-090000".into(),
                    offset: 4 * MI
                }),
            },
            Action::Compress {
                file: "0.log.20261121-090000".into()
            },
            Action::Compress {
                file: "0.log.20261121-100000".into()
            },
        ]
    );
    // Check the outcome rather than only the list: within both budgets,
    // and planning again with the same time changes nothing.
    let without_compress: Vec<Action> = actions
        .into_iter()
        .filter(|a| !matches!(a, Action::Compress { .. }))
        .collect();
    apply(&mut files, &without_compress);
    let kept: u64 = files.iter().map(|f| f.size).sum();
    assert_eq!(kept, 92 * MI);
    assert!(kept <= bar.max_total_size && kept + 9 * MI > bar.max_total_size);
    assert!(files.len() <= bar.max_files as usize);
    assert_eq!(files[0].events[0].time, at(8, 1));
    let again = plan(&bar, &files, now, GRACE);
    assert!(
        again.iter().all(|a| matches!(a, Action::Compress { .. })),
        "{again:?}"
    );
}

#[test]
fn bar_retention_counts_files_the_active_one_included() {
    let bar = resolved("bar");
    let at = |h: i64, m: i64| NOV21 + h * H + m * MIN;
    // Seven hourly files of 6Mi: 42Mi fits 100Mi, seven files do not fit 5.
    let mut files: Vec<FileFacts> = (3..9)
        .map(|h| {
            file(
                &format!("0.log.20261121-{:02}0000", h + 1),
                0,
                &[(3 * MI, at(h, 0)), (3 * MI, at(h, 30))],
            )
        })
        .collect();
    files.push(active(file("0.log", 0, &[(3 * MI, at(9, 0))])));
    let actions = plan(&bar, &files, at(9, 1), Duration::from_secs(86_400));
    assert_eq!(
        actions,
        ["040000", "050000"]
            .iter()
            .map(|t| Action::Delete {
                file: format!("0.log.20261121-{t}")
            })
            .collect::<Vec<_>>()
    );
}

#[test]
fn bar_cuts_only_between_multiline_events_and_never_inside_a_chain() {
    let bar = resolved("bar");
    let Delimiter::Multiline(m) = &bar.delimiter else {
        panic!("bar is multi-line")
    };
    // CRI lines as containerd writes bar's output, across one rotation. The
    // last line before the rotation is split (P…F) and continues in the new
    // file.
    let rotated = [
        "2026-11-21T10:59:58.000000001Z stdout F 2026-11-21 10:59:58 INFO request 19 served",
        "2026-11-21T10:59:59.000000001Z stdout F 2026-11-21 10:59:59 ERROR request 20 failed",
        "2026-11-21T10:59:59.000000002Z stdout F java.lang.IllegalStateException: backend unavailable (request 20)",
        "2026-11-21T10:59:59.000000003Z stdout F     at com.example.Backend.call(Backend.java:88)",
        "2026-11-21T10:59:59.000000004Z stdout F     at java.base/java.lang.Thread.run(Thread.java:1583)",
        "2026-11-21T10:59:59.900000000Z stdout P 2026-11-21 10:59:59 INFO a very long line, first chunk ",
    ];
    let current = [
        "2026-11-21T11:00:00.100000000Z stdout F and its last chunk",
        "2026-11-21T11:00:01.000000001Z stdout F 2026-11-21 11:00:01 INFO request 21 served",
    ];
    let rotated_facts = facts("0.log.20261121-110000", &rotated, m.start.regex());
    let current_facts = active(facts("0.log", &current, m.start.regex()));
    // Event starts: request 19, the ERROR with its stack trace, the long
    // line; the new file's first bytes end the long line.
    assert_eq!(rotated_facts.events.len(), 3);
    assert!(current_facts.events[0].offset > 0);
    let files = [rotated_facts.clone(), current_facts.clone()];
    // Every budget from "nothing but the active file" to "everything": each
    // cut is at an event start, so the kept part of the rotated file starts
    // with a dated line, and the long line's first chunk is kept whenever
    // its end is (it is pinned with the active file).
    let text = rotated.join("\n") + "\n";
    let mut cuts = std::collections::BTreeSet::new();
    for budget in current_facts.size..=rotated_facts.size + current_facts.size {
        let policy = Effective {
            max_total_size: budget,
            ..bar.clone()
        };
        for action in plan(&policy, &files, NOV21 + 11 * H + 2 * S, GRACE) {
            match action {
                Action::TrimHead { offset, .. } => {
                    let offset = usize::try_from(offset).expect("small");
                    let kept = &text[offset..];
                    let content = kept.splitn(4, ' ').nth(3).expect("a CRI line");
                    assert!(m.start.regex().is_match(content.as_bytes()), "{kept}");
                    cuts.insert(offset);
                }
                Action::Delete { file } => panic!("the chain's head is pinned: {file}"),
                Action::DropSpan { files, .. } => {
                    panic!("the chain's head is pinned: {files:?}")
                }
                Action::Rotate { .. } | Action::Compress { .. } => {}
            }
        }
    }
    // The only cuts: before the ERROR event (its stack trace kept whole) and
    // before the long line's first chunk.
    let marks: Vec<usize> = rotated_facts.events[1..]
        .iter()
        .map(|e| usize::try_from(e.offset).expect("small"))
        .collect();
    assert_eq!(cuts.into_iter().collect::<Vec<_>>(), marks);
}

/// File facts from CRI lines of one stream: an event starts at a line that
/// begins new content (the previous line was `F`) and matches `start`; the
/// lines before a file's first such line continue the previous file's event.
fn facts(name: &str, lines: &[&str], start: &regex::bytes::Regex) -> FileFacts {
    let mut offset = 0;
    let mut events = Vec::new();
    let mut open = false;
    for line in lines {
        let mut parts = line.splitn(4, ' ');
        let time = parts.next().expect("a timestamp");
        let _stream = parts.next();
        let tag = parts.next().expect("a tag");
        let content = parts.next().unwrap_or("");
        if !open && start.is_match(content.as_bytes()) {
            events.push(EventMark {
                offset,
                time: unix_nanos(time),
            });
        }
        open = tag == "P";
        offset += line.len() as u64 + 1;
    }
    FileFacts {
        name: name.to_owned(),
        size: offset,
        attempt: 0,
        active: false,
        compressed: false,
        first_time: lines.first().map(|l| unix_nanos(l)),
        last_time: lines.last().map(|l| unix_nanos(l)),
        events,
    }
}

/// Unix nanoseconds of a `2026-11-21THH:MM:SS.fffffffffZ` timestamp at the
/// start of `line`.
fn unix_nanos(line: &str) -> i64 {
    let t = &line["2026-11-21T".len()..];
    let num = |r: std::ops::Range<usize>| t[r].parse::<i64>().expect("digits");
    NOV21 + num(0..2) * H + num(3..5) * MIN + num(6..8) * S + num(9..18)
}

#[test]
fn a_day_of_hourly_rotation_and_retention() {
    let bar = resolved("bar");
    // bar writes a 2Mi event every 15 minutes from 02:00 to 09:45: 8Mi an
    // hour, so only the hour rotates it. At each tick the agent plans (a
    // timer), the runtime writes, and the agent plans again (a write).
    let mut files = vec![active(file("0.log", 0, &[]))];
    let mut rotated_at = Vec::new();
    let mut deleted = Vec::new();
    for tick in 0..32 {
        let now = NOV21 + 2 * H + tick * 15 * MIN;
        for write in [false, true] {
            if write {
                let f = files.last_mut().expect("an active file");
                f.events.push(EventMark {
                    offset: f.size,
                    time: now,
                });
                f.size += 2 * MI;
                f.first_time = f.first_time.or(Some(now));
                f.last_time = Some(now);
            }
            let mut actions = plan(&bar, &files, now, GRACE);
            if actions.contains(&rotate("0.log")) {
                // Rename, reopen: the file the runtime wrote is now rotated,
                // and the agent plans again with the new set.
                rotated_at.push(now);
                let hhmmss = (now - NOV21) / S;
                let f = files.last_mut().expect("an active file");
                f.active = false;
                f.name = format!(
                    "0.log.20261121-{:02}{:02}{:02}",
                    hhmmss / 3600,
                    hhmmss / 60 % 60,
                    hhmmss % 60
                );
                files.push(active(file("0.log", 0, &[])));
                actions = plan(&bar, &files, now, GRACE);
                assert!(rotations(&actions).is_empty());
            }
            for a in &actions {
                match a {
                    Action::Delete { file } => deleted.push(file.clone()),
                    Action::DropSpan { files, .. } => deleted.extend(files.iter().cloned()),
                    _ => {}
                }
            }
            apply(&mut files, &actions);
        }
        // After each tick: at most 5 files, at most 100Mi.
        assert!(files.len() <= 5, "{tick}: {files:?}");
        assert!(files.iter().map(|f| f.size).sum::<u64>() <= 100 * MI);
    }
    // Rotated at the first tick of every new hour, and never within one.
    assert_eq!(
        rotated_at,
        (3..10).map(|h| NOV21 + h * H).collect::<Vec<_>>()
    );
    // The three oldest hours were deleted, oldest first; the four newest
    // were compressed after the grace period.
    assert_eq!(
        deleted,
        ["030000", "040000", "050000"]
            .iter()
            .map(|t| format!("0.log.20261121-{t}.gz"))
            .collect::<Vec<_>>()
    );
    let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "0.log.20261121-060000.gz",
            "0.log.20261121-070000.gz",
            "0.log.20261121-080000.gz",
            "0.log.20261121-090000.gz",
            "0.log",
        ]
    );
}
